//! The SQL shared by both backends, as one macro instantiated per backend.
//!
//! Why a macro and not generics over `sqlx::Database`: the generic bounds for
//! "this row type decodes i64, String and Option<_>, this pool executes" run
//! to dozens of lines per function and hide the SQL; the macro keeps each
//! query next to its mapping and still type-checks against each driver.

// The SELECT heads are macros, not consts, so that `concat!` builds each
// query as a `&'static str`: sqlx 0.9 accepts only static SQL unless told
// otherwise, which keeps values out of SQL text by construction.

/// Rows per multi-row INSERT on SQLite: 22 columns each, well under its
/// limit of 32,766 bound values.
pub(crate) const EVENT_ROWS: usize = 200;
/// Rows per multi-row INSERT on PostgreSQL. sqlx's cost per statement grows
/// faster than its bound values there: 1,000 events took 230 ms as 5
/// statements of 200 rows and 35 ms as 20 of 50 (measured with
/// log_min_duration_statement: PostgreSQL itself spent under 5 ms a
/// statement either way).
pub(crate) const PG_ROWS: usize = 50;

/// SELECT list and joins that produce an [`herald_store::Account`].
macro_rules! account_select {
    () => {
        "SELECT a.id, a.name, a.status, a.created_at, a.settings, p.id AS parent_id, p.name AS parent_name \
         FROM accounts a LEFT JOIN accounts p ON p.id = a.parent_id"
    };
}

macro_rules! api_key_select {
    () => {
        "SELECT id, account_id, prefix, hash, scope, label, created_at, revoked_at FROM api_keys"
    };
}

macro_rules! smtp_credential_select {
    () => {
        "SELECT id, account_id, username, hash, label, created_at, revoked_at FROM smtp_credentials"
    };
}

macro_rules! event_select {
    () => {
        "SELECT id, at, kind, account_id, stream, message_id, recipient, sender, source_ip, mx, smtp_code, \
         smtp_enhanced, smtp_text, smtp_phase, bounce_class, bounce_reason, tags, metadata, engagement, reason, rcpt_index, \
         spam FROM events"
    };
}

macro_rules! domain_select {
    () => {
        "SELECT id, account_id, name, created_at, verified_at FROM domains"
    };
}

macro_rules! dkim_key_select {
    () => {
        "SELECT id, selector, algorithm, private_key, public_key, state, created_at, changed_at FROM dkim_keys"
    };
}

/// Implements every store trait for `$store`, which has a field `pool` of
/// the backend's pool type and a `$row` row type.
macro_rules! impl_sql_store {
    ($store:ty, $row:ty, $backend:literal) => {
        use async_trait::async_trait;
        use herald_store::{
            Account, AccountFilter, AccountRef, AccountStore, ApiKey, ApprovedSender, Bootstrap, CredentialStore,
            DkimAlgorithm, DkimKey, Domain, DomainStore, EventFilter, EventStore, KeyState, NewAccount, NewApiKey,
            NewDkimKey, NewSmtpCredential, SenderStore, SmtpCredential, Store, StoreError, StoreResult, Suppression,
            SuppressionStore, IdempotencyStore, IdempotencyClaim, MessageIndexStore, NewSuppression, SuppressionFilter,
            NewWebhook, Webhook, WebhookStatus, WebhookStore, StatsGroup, StatsPeriod, StatsQuery, StatsRow, StatsStore,
        };
        use herald_types::{
            AccountId, AccountName, AccountSettings, AccountStatus, ApiKeyId, BounceClass, BounceInfo, DkimKeyId, DomainId, DomainName,
            Event, EventId, EventKind, KeyScope, MessageId, SenderRule, SmtpAnswer, SmtpCredentialId, WebhookId,
        };
        use sqlx::Row as _;

        use $crate::error::{self, Context, ForeignKey};
        use $crate::time_ms;

        fn col<T>(row: &$row, name: &str) -> StoreResult<T>
        where
            T: for<'r> sqlx::Decode<'r, <$row as sqlx::Row>::Database> + sqlx::Type<<$row as sqlx::Row>::Database>,
        {
            row.try_get::<T, _>(name).map_err(|e| error::corrupt(name, e))
        }

        fn parsed<T, E: std::fmt::Display>(row: &$row, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> StoreResult<T> {
            let raw: String = col(row, name)?;
            parse(&raw).map_err(|e| error::corrupt(name, e))
        }

        fn opt_time(row: &$row, name: &str) -> StoreResult<Option<time::OffsetDateTime>> {
            Ok(col::<Option<i64>>(row, name)?.map(time_ms::from_ms))
        }

        fn account_from(row: &$row) -> StoreResult<Account> {
            let parent_id: Option<String> = col(row, "parent_id")?;
            let parent = match parent_id {
                Some(id) => Some(AccountRef {
                    id: AccountId::parse(&id).map_err(|e| error::corrupt("parent_id", e))?,
                    name: parsed(row, "parent_name", AccountName::parse)?,
                }),
                None => None,
            };
            Ok(Account {
                id: parsed(row, "id", AccountId::parse)?,
                name: parsed(row, "name", AccountName::parse)?,
                parent,
                status: parsed(row, "status", AccountStatus::parse)?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                settings: parsed(row, "settings", |s| serde_json::from_str::<AccountSettings>(s))?,
            })
        }

        fn api_key_from(row: &$row) -> StoreResult<ApiKey> {
            Ok(ApiKey {
                id: parsed(row, "id", ApiKeyId::parse)?,
                account: parsed(row, "account_id", AccountId::parse)?,
                prefix: col(row, "prefix")?,
                hash: col(row, "hash")?,
                scope: parsed(row, "scope", KeyScope::parse)?,
                label: col(row, "label")?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                revoked_at: opt_time(row, "revoked_at")?,
            })
        }

        fn smtp_credential_from(row: &$row) -> StoreResult<SmtpCredential> {
            Ok(SmtpCredential {
                id: parsed(row, "id", SmtpCredentialId::parse)?,
                account: parsed(row, "account_id", AccountId::parse)?,
                username: col(row, "username")?,
                hash: col(row, "hash")?,
                label: col(row, "label")?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                revoked_at: opt_time(row, "revoked_at")?,
            })
        }

        fn event_from(row: &$row) -> StoreResult<Event> {
            let code: Option<i32> = col(row, "smtp_code")?;
            let smtp = match code {
                Some(code) => Some(SmtpAnswer {
                    code: u16::try_from(code).map_err(|e| error::corrupt("smtp_code", e))?,
                    enhanced: col(row, "smtp_enhanced")?,
                    text: col::<Option<String>>(row, "smtp_text")?.unwrap_or_default(),
                    phase: col::<Option<String>>(row, "smtp_phase")?.unwrap_or_default(),
                }),
                None => None,
            };
            let class: Option<String> = col(row, "bounce_class")?;
            let bounce = match class.as_deref() {
                Some(c) => Some(BounceInfo {
                    class: if c == "hard" { BounceClass::Hard } else { BounceClass::Soft },
                    reason: col::<Option<String>>(row, "bounce_reason")?.unwrap_or_default(),
                }),
                None => None,
            };
            let ip: Option<String> = col(row, "source_ip")?;
            let json = |name: &str| -> StoreResult<Option<String>> { col(row, name) };
            let tags = match json("tags")? {
                Some(t) => serde_json::from_str(&t).map_err(|e| error::corrupt("tags", e))?,
                None => Vec::new(),
            };
            let metadata = match json("metadata")? {
                Some(m) => serde_json::from_str(&m).map_err(|e| error::corrupt("metadata", e))?,
                None => Vec::new(),
            };
            let engagement = match json("engagement")? {
                Some(g) => Some(serde_json::from_str(&g).map_err(|e| error::corrupt("engagement", e))?),
                None => None,
            };
            let spam = match json("spam")? {
                Some(g) => Some(serde_json::from_str(&g).map_err(|e| error::corrupt("spam", e))?),
                None => None,
            };
            Ok(Event {
                id: parsed(row, "id", EventId::parse)?,
                kind: parsed(row, "kind", EventKind::parse)?,
                at: time_ms::from_ms(col(row, "at")?),
                account: parsed(row, "account_id", AccountId::parse)?,
                stream: col(row, "stream")?,
                message_id: parsed(row, "message_id", MessageId::parse)?,
                recipient: col(row, "recipient")?,
                sender: col(row, "sender")?,
                source_ip: ip.map(|i| i.parse().map_err(|e| error::corrupt("source_ip", e))).transpose()?,
                mx: col(row, "mx")?,
                smtp,
                bounce,
                reason: col(row, "reason")?,
                rcpt_index: col::<Option<i64>>(row, "rcpt_index")?.and_then(|i| u32::try_from(i).ok()),
                // Kept in message_ids, not on the event.
                header_id: None,
                tags,
                metadata,
                engagement,
                spam,
            })
        }

        /// The WHERE clauses of an event filter, after `WHERE 1 = 1`.
        /// Adds what `events` count to the hourly rollups, in `tx`.
        async fn update_stats(
            tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            events: &[&Event],
        ) -> StoreResult<()> {
            use herald_store::stats::{engagement_key, rollup};
            // Which human opens and clicks are the first of their message
            // and recipient: those the insert below adds.
            let mut keys: Vec<(String, String, &'static str)> = events.iter().filter_map(|e| engagement_key(e)).collect();
            keys.sort();
            keys.dedup();
            let mut firsts = std::collections::HashSet::new();
            for chunk in keys.chunks(rows_per_insert()) {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO engagement_firsts (message_id, recipient, kind) ");
                q.push_values(chunk, |mut b, (m, r, k)| {
                    b.push_bind(m.clone()).push_bind(r.clone()).push_bind(*k);
                });
                q.push(" ON CONFLICT DO NOTHING RETURNING message_id, recipient, kind");
                for row in q.build().fetch_all(&mut **tx).await.map_err(error::plain)? {
                    firsts.insert((col::<String>(&row, "message_id")?, col::<String>(&row, "recipient")?, col::<String>(&row, "kind")?));
                }
            }
            // Each first counts once, on the first event that carries it.
            let rows = rollup(events.iter().copied(), |e| {
                engagement_key(e).is_some_and(|(m, r, k)| firsts.remove(&(m, r, k.to_owned())))
            });
            let rows: Vec<_> = rows.into_iter().collect();
            for chunk in rows.chunks(rows_per_insert()) {
                let mut q = sqlx::QueryBuilder::new("INSERT INTO stats_hourly (account_id, dim, hour, value, ");
                q.push(herald_store::COUNTERS.join(", ")).push(") ");
                q.push_values(chunk, |mut b, (k, c)| {
                    b.push_bind(k.account.clone())
                        .push_bind(k.dim)
                        .push_bind(k.hour)
                        .push_bind(k.value.clone());
                    for n in c.0 {
                        b.push_bind(n);
                    }
                });
                q.push(" ON CONFLICT (account_id, dim, hour, value) DO UPDATE SET ");
                let sums: Vec<String> = herald_store::COUNTERS.iter().map(|c| format!("{c} = stats_hourly.{c} + excluded.{c}")).collect();
                q.push(sums.join(", "));
                q.build().execute(&mut **tx).await.map_err(error::plain)?;
            }
            Ok(())
        }

        fn like_escaped(s: &str) -> String {
            s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        }

        fn push_event_filter(q: &mut sqlx::QueryBuilder<<$row as sqlx::Row>::Database>, f: &EventFilter) {
                if let Some(a) = &f.account {
                q.push(" AND account_id = ").push_bind(a.as_str().to_owned());
            }
            if !f.kinds.is_empty() {
                q.push(" AND kind IN (");
                let mut list = q.separated(", ");
                for k in &f.kinds {
                    list.push_bind(k.as_str());
                }
                q.push(")");
            }
            if let Some(r) = &f.recipient {
                q.push(" AND recipient = ").push_bind(r.clone());
            }
            if let Some(m) = &f.message_id {
                q.push(" AND message_id = ").push_bind(m.as_str().to_owned());
            }
            if let Some(t) = f.since {
                q.push(" AND at >= ").push_bind(time_ms::to_ms(t));
            }
            if let Some(t) = f.until {
                q.push(" AND at < ").push_bind(time_ms::to_ms(t));
            }
            if let Some(c) = f.bounce_class {
                q.push(" AND bounce_class = ").push_bind(c.as_str());
            }
            if let Some(s) = &f.stream {
                q.push(" AND stream = ").push_bind(s.clone());
            }
            // Tags and metadata are stored as JSON text: match the JSON of
            // the tag, or of the [key, value] pair, as written.
            if let Some(tag) = &f.tag {
                let json = serde_json::to_string(tag).unwrap_or_default();
                q.push(" AND tags LIKE ").push_bind(format!("%{}%", like_escaped(&json))).push(" ESCAPE '\\'");
            }
            if let Some(pair) = &f.metadata {
                let json = serde_json::to_string(pair).unwrap_or_default();
                q.push(" AND metadata LIKE ").push_bind(format!("%{}%", like_escaped(&json))).push(" ESCAPE '\\'");
            }
            if let Some(after) = &f.after {
                q.push(" AND id > ").push_bind(after.as_str().to_owned());
            }
        }

        fn dkim_key_from(row: &$row) -> StoreResult<DkimKey> {
            Ok(DkimKey {
                id: parsed(row, "id", DkimKeyId::parse)?,
                selector: col(row, "selector")?,
                algorithm: parsed(row, "algorithm", |s| DkimAlgorithm::parse(s).ok_or("unknown algorithm"))?,
                private_key: col(row, "private_key")?,
                public_key: col(row, "public_key")?,
                state: parsed(row, "state", |s| KeyState::parse(s).ok_or("unknown key state"))?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                changed_at: time_ms::from_ms(col(row, "changed_at")?),
            })
        }

        fn sender_from(row: &$row) -> StoreResult<ApprovedSender> {
            Ok(ApprovedSender {
                account: parsed(row, "account_id", AccountId::parse)?,
                rule: parsed(row, "rule", SenderRule::parse)?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
            })
        }

        const NEW_ACCOUNT: Context = Context {
            unique: "account name already taken",
            foreign_key: ForeignKey::Missing("parent account"),
        };
        const NEW_KEY: Context = Context {
            unique: "API key prefix already taken",
            foreign_key: ForeignKey::Missing("account"),
        };
        const NEW_CREDENTIAL: Context = Context {
            unique: "SMTP username already taken",
            foreign_key: ForeignKey::Missing("account"),
        };
        const NEW_SENDER: Context = Context {
            unique: "sender already approved for this account",
            foreign_key: ForeignKey::Missing("account"),
        };
        const NEW_DOMAIN: Context = Context {
            unique: "domain already registered",
            foreign_key: ForeignKey::Missing("account"),
        };
        const NEW_DKIM_KEY: Context = Context {
            unique: "DKIM selector already in use for this domain",
            foreign_key: ForeignKey::Missing("domain"),
        };
        const DELETE_ACCOUNT: Context = Context {
            unique: "account",
            foreign_key: ForeignKey::StillReferenced("the account still has sub-accounts"),
        };

        impl $store {
            async fn fetch_account(&self, sql: &'static str, value: &str) -> StoreResult<Option<Account>> {
                let row = sqlx::query(sql).bind(value).fetch_optional(&self.pool).await.map_err(error::plain)?;
                row.as_ref().map(account_from).transpose()
            }

            /// `sql` sets `revoked_at = COALESCE(revoked_at, $1)` for `id = $2 AND account_id = $3`.
            async fn revoke(&self, sql: &'static str, account: &AccountId, id: &str, what: &'static str) -> StoreResult<()> {
                let done = sqlx::query(sql)
                    .bind(time_ms::to_ms(time_ms::now()))
                    .bind(id)
                    .bind(account.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found(what)) } else { Ok(()) }
            }
        }

        #[async_trait]
        impl AccountStore for $store {
            async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
                let id = AccountId::generate();
                sqlx::query("INSERT INTO accounts (id, name, parent_id, status, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id.as_str())
                    .bind(new.name.as_str())
                    .bind(new.parent.as_ref().map(|p| p.as_str()))
                    .bind(AccountStatus::Active.as_str())
                    .bind(time_ms::to_ms(time_ms::now()))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| error::map(e, NEW_ACCOUNT))?;
                self.account_by_id(&id).await?.ok_or(StoreError::not_found("account"))
            }

            async fn account_by_id(&self, id: &AccountId) -> StoreResult<Option<Account>> {
                self.fetch_account(concat!(account_select!(), " WHERE a.id = $1"), id.as_str()).await
            }

            async fn account_by_name(&self, name: &AccountName) -> StoreResult<Option<Account>> {
                self.fetch_account(concat!(account_select!(), " WHERE a.name = $1"), name.as_str()).await
            }

            async fn list_accounts(&self, filter: AccountFilter) -> StoreResult<Vec<Account>> {
                let rows = match &filter {
                    AccountFilter::All => {
                        sqlx::query(concat!(account_select!(), " ORDER BY a.name")).fetch_all(&self.pool).await
                    }
                    AccountFilter::Masters => {
                        sqlx::query(concat!(account_select!(), " WHERE a.parent_id IS NULL ORDER BY a.name"))
                            .fetch_all(&self.pool)
                            .await
                    }
                    AccountFilter::SubsOf(parent) => {
                        sqlx::query(concat!(account_select!(), " WHERE a.parent_id = $1 ORDER BY a.name"))
                            .bind(parent.as_str())
                            .fetch_all(&self.pool)
                            .await
                    }
                }
                .map_err(error::plain)?;
                rows.iter().map(account_from).collect()
            }

            async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> StoreResult<()> {
                let done = sqlx::query("UPDATE accounts SET status = $1 WHERE id = $2")
                    .bind(status.as_str())
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("account")) } else { Ok(()) }
            }

            async fn set_account_settings(&self, id: &AccountId, settings: &AccountSettings) -> StoreResult<()> {
                let json = serde_json::to_string(settings).map_err(|e| StoreError::Backend(e.to_string()))?;
                let done = sqlx::query("UPDATE accounts SET settings = $1 WHERE id = $2")
                    .bind(json)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("account")) } else { Ok(()) }
            }

            async fn promote_account(&self, id: &AccountId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE accounts SET parent_id = NULL WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("account")) } else { Ok(()) }
            }

            async fn delete_account(&self, id: &AccountId) -> StoreResult<()> {
                // The foreign key (ON DELETE RESTRICT) is the guard against
                // orphaned subs, also against a sub created concurrently.
                let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| error::map(e, DELETE_ACCOUNT))?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("account")) } else { Ok(()) }
            }
        }

        #[async_trait]
        impl CredentialStore for $store {
            async fn insert_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
                insert_api_key(&self.pool, &new).await?;
                self.api_key_by_prefix(&new.prefix).await?.ok_or(StoreError::not_found("API key"))
            }

            async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKey>> {
                let row = sqlx::query(concat!(api_key_select!(), " WHERE prefix = $1"))
                    .bind(prefix)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.as_ref().map(api_key_from).transpose()
            }

            async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>> {
                let rows = sqlx::query(concat!(api_key_select!(), " WHERE account_id = $1 ORDER BY created_at, id"))
                    .bind(account.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(error::plain)?;
                rows.iter().map(api_key_from).collect()
            }

            async fn revoke_api_key(&self, account: &AccountId, id: &ApiKeyId) -> StoreResult<()> {
                self.revoke(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND account_id = $3",
                    account, id.as_str(), "API key").await
            }

            async fn set_api_key_hash(&self, id: &ApiKeyId, hash: &str) -> StoreResult<()> {
                let done = sqlx::query("UPDATE api_keys SET hash = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("API key"));
                }
                Ok(())
            }

            async fn insert_smtp_credential(&self, new: NewSmtpCredential) -> StoreResult<SmtpCredential> {
                sqlx::query(
                    "INSERT INTO smtp_credentials (id, account_id, username, hash, label, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(new.id.as_str())
                .bind(new.account.as_str())
                .bind(&new.username)
                .bind(&new.hash)
                .bind(new.label.as_deref())
                .bind(time_ms::to_ms(time_ms::now()))
                .execute(&self.pool)
                .await
                .map_err(|e| error::map(e, NEW_CREDENTIAL))?;
                self.smtp_credential_by_username(&new.username).await?.ok_or(StoreError::not_found("SMTP credential"))
            }

            async fn smtp_credential_by_username(&self, username: &str) -> StoreResult<Option<SmtpCredential>> {
                let row = sqlx::query(concat!(smtp_credential_select!(), " WHERE username = $1"))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.as_ref().map(smtp_credential_from).transpose()
            }

            async fn list_smtp_credentials(&self, account: &AccountId) -> StoreResult<Vec<SmtpCredential>> {
                let rows =
                    sqlx::query(concat!(smtp_credential_select!(), " WHERE account_id = $1 ORDER BY created_at, id"))
                        .bind(account.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(error::plain)?;
                rows.iter().map(smtp_credential_from).collect()
            }

            async fn revoke_smtp_credential(&self, account: &AccountId, id: &SmtpCredentialId) -> StoreResult<()> {
                self.revoke(
                    "UPDATE smtp_credentials SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND account_id = $3",
                    account, id.as_str(), "SMTP credential").await
            }
        }

        #[async_trait]
        impl SenderStore for $store {
            async fn add_sender(&self, account: &AccountId, rule: &SenderRule) -> StoreResult<ApprovedSender> {
                let created_at = time_ms::now();
                sqlx::query("INSERT INTO approved_senders (account_id, rule, created_at) VALUES ($1, $2, $3)")
                    .bind(account.as_str())
                    .bind(rule.to_string())
                    .bind(time_ms::to_ms(created_at))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| error::map(e, NEW_SENDER))?;
                Ok(ApprovedSender { account: account.clone(), rule: rule.clone(), created_at })
            }

            async fn list_senders(&self, account: &AccountId) -> StoreResult<Vec<ApprovedSender>> {
                let rows = sqlx::query(
                    "SELECT account_id, rule, created_at FROM approved_senders WHERE account_id = $1 ORDER BY created_at, rule",
                )
                .bind(account.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(error::plain)?;
                rows.iter().map(sender_from).collect()
            }

            async fn remove_sender(&self, account: &AccountId, rule: &SenderRule) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM approved_senders WHERE account_id = $1 AND rule = $2")
                    .bind(account.as_str())
                    .bind(rule.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("sender")) } else { Ok(()) }
            }
        }

        #[async_trait]
        impl EventStore for $store {
            async fn insert_events(&self, events: &[Event]) -> StoreResult<()> {
                // Many rows per statement: one round trip and one parse for
                // up to EVENT_ROWS events, all in one transaction.
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                // The events this call stores (not those a retried batch
                // stored before): only they count in the rollups.
                let mut inserted: std::collections::HashSet<String> = std::collections::HashSet::with_capacity(events.len());
                for chunk in events.chunks(rows_per_insert()) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO events (id, at, kind, account_id, stream, message_id, recipient, sender, source_ip, \
                         mx, smtp_code, smtp_enhanced, smtp_text, smtp_phase, bounce_class, bounce_reason, tags, metadata, \
                         engagement, reason, rcpt_index, spam) ",
                    );
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id.as_str().to_owned())
                            .push_bind(time_ms::to_ms(e.at))
                            .push_bind(e.kind.as_str())
                            .push_bind(e.account.as_str().to_owned())
                            .push_bind(e.stream.clone())
                            .push_bind(e.message_id.as_str().to_owned())
                            .push_bind(e.recipient.clone())
                            .push_bind(e.sender.clone())
                            .push_bind(e.source_ip.map(|ip| ip.to_string()))
                            .push_bind(e.mx.clone())
                            .push_bind(e.smtp.as_ref().map(|s| i32::from(s.code)))
                            .push_bind(e.smtp.as_ref().and_then(|s| s.enhanced.clone()))
                            .push_bind(e.smtp.as_ref().map(|s| s.text.clone()))
                            .push_bind(e.smtp.as_ref().map(|s| s.phase.clone()))
                            .push_bind(e.bounce.as_ref().map(|b| b.class.as_str()))
                            .push_bind(e.bounce.as_ref().map(|b| b.reason.clone()))
                            .push_bind((!e.tags.is_empty()).then(|| serde_json::to_string(&e.tags).unwrap_or_default()))
                            .push_bind((!e.metadata.is_empty()).then(|| serde_json::to_string(&e.metadata).unwrap_or_default()))
                            .push_bind(e.engagement.as_ref().map(|g| serde_json::to_string(g).unwrap_or_default()))
                            .push_bind(e.reason.clone())
                            .push_bind(e.rcpt_index.map(i64::from))
                            .push_bind(e.spam.as_ref().map(|g| serde_json::to_string(g).unwrap_or_default()));
                    });
                    q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
                    for row in q.build().fetch_all(&mut *tx).await.map_err(error::plain)? {
                        inserted.insert(col::<String>(&row, "id")?);
                    }
                }
                let fresh: Vec<&Event> = events.iter().filter(|e| inserted.contains(e.id.as_str())).collect();
                update_stats(&mut tx, &fresh).await?;
                // The Message-ID headers accepted events name, so a bounce
                // that carries only that finds its message.
                let headers: Vec<&Event> = events.iter().filter(|e| e.header_id.is_some()).collect();
                for chunk in headers.chunks(rows_per_insert()) {
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO message_ids (header_id, message_id, account_id, created_at) ");
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.header_id.clone().unwrap_or_default())
                            .push_bind(e.message_id.as_str().to_owned())
                            .push_bind(e.account.as_str().to_owned())
                            .push_bind(time_ms::to_ms(e.at));
                    });
                    q.push(" ON CONFLICT (header_id, message_id) DO NOTHING");
                    q.build().execute(&mut *tx).await.map_err(error::plain)?;
                }
                tx.commit().await.map_err(error::plain)
            }

            async fn page_events(&self, f: &EventFilter, after: i64, limit: u32) -> StoreResult<Vec<(i64, Event)>> {
                let position = position();
                let head = concat!(event_select!(), " WHERE 1 = 1");
                let mut q = sqlx::QueryBuilder::new(head.replacen("SELECT ", &format!("SELECT {position} AS position, "), 1));
                let unpaged = EventFilter { after: None, ..f.clone() };
                push_event_filter(&mut q, &unpaged);
                q.push(format!(" AND {position} > ")).push_bind(after);
                q.push(format!(" ORDER BY {position} LIMIT ")).push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(|r| Ok((col::<i64>(r, "position")?, event_from(r)?))).collect()
            }

            async fn count_events_after(&self, f: &EventFilter, after: i64, cap: u32) -> StoreResult<u64> {
                let position = position();
                let mut q = sqlx::QueryBuilder::new("SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM events WHERE 1 = 1");
                let unpaged = EventFilter { after: None, ..f.clone() };
                push_event_filter(&mut q, &unpaged);
                q.push(format!(" AND {position} > ")).push_bind(after);
                q.push(" LIMIT ").push_bind(i64::from(cap)).push(") AS owed");
                let row = q.build().fetch_one(&self.pool).await.map_err(error::plain)?;
                Ok(u64::try_from(col::<i64>(&row, "n")?).unwrap_or(0))
            }

            async fn list_events(&self, f: &EventFilter, limit: u32) -> StoreResult<Vec<Event>> {
                // Built clause by clause so each query names only the columns
                // it filters on, and the database can use its indexes.
                let mut q = sqlx::QueryBuilder::new(concat!(event_select!(), " WHERE 1 = 1"));
                push_event_filter(&mut q, f);
                q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(event_from).collect()
            }
        }

        async fn insert_dkim_keys(
            tx: &mut sqlx::Transaction<'_, <$row as sqlx::Row>::Database>,
            domain: &DomainId,
            keys: &[NewDkimKey],
        ) -> StoreResult<()> {
            let now = time_ms::to_ms(time_ms::now());
            for k in keys {
                sqlx::query(
                    "INSERT INTO dkim_keys (id, domain_id, selector, algorithm, private_key, public_key, state, created_at, changed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(DkimKeyId::generate().as_str())
                .bind(domain.as_str())
                .bind(&k.selector)
                .bind(k.algorithm.as_str())
                .bind(&k.private_key)
                .bind(&k.public_key)
                .bind(k.state.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(|e| error::map(e, NEW_DKIM_KEY))?;
            }
            Ok(())
        }

        impl $store {
            async fn domain_with_keys(&self, row: &$row) -> StoreResult<Domain> {
                let id = parsed(row, "id", DomainId::parse)?;
                let keys = sqlx::query(concat!(dkim_key_select!(), " WHERE domain_id = $1 ORDER BY created_at, id"))
                    .bind(id.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(Domain {
                    id,
                    account: parsed(row, "account_id", AccountId::parse)?,
                    name: parsed(row, "name", DomainName::parse)?,
                    created_at: time_ms::from_ms(col(row, "created_at")?),
                    verified_at: opt_time(row, "verified_at")?,
                    keys: keys.iter().map(dkim_key_from).collect::<StoreResult<_>>()?,
                })
            }
        }

        #[async_trait]
        impl DomainStore for $store {
            async fn create_domain(&self, account: &AccountId, name: &DomainName, keys: Vec<NewDkimKey>) -> StoreResult<Domain> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let id = DomainId::generate();
                sqlx::query("INSERT INTO domains (id, account_id, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .bind(name.as_str())
                    .bind(time_ms::to_ms(time_ms::now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| error::map(e, NEW_DOMAIN))?;
                insert_dkim_keys(&mut tx, &id, &keys).await?;
                tx.commit().await.map_err(error::plain)?;
                self.domain(name).await?.ok_or(StoreError::not_found("domain"))
            }

            async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>> {
                let row = sqlx::query(concat!(domain_select!(), " WHERE name = $1"))
                    .bind(name.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                match row {
                    Some(row) => Ok(Some(self.domain_with_keys(&row).await?)),
                    None => Ok(None),
                }
            }

            async fn list_domains(&self, account: &AccountId) -> StoreResult<Vec<Domain>> {
                let rows = sqlx::query(concat!(domain_select!(), " WHERE account_id = $1 ORDER BY name"))
                    .bind(account.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(error::plain)?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(self.domain_with_keys(row).await?);
                }
                Ok(out)
            }

            async fn delete_domain(&self, account: &AccountId, name: &DomainName) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM domains WHERE account_id = $1 AND name = $2")
                    .bind(account.as_str())
                    .bind(name.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("domain")) } else { Ok(()) }
            }

            async fn add_dkim_keys(&self, domain: &DomainId, keys: Vec<NewDkimKey>) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                insert_dkim_keys(&mut tx, domain, &keys).await?;
                tx.commit().await.map_err(error::plain)
            }

            async fn set_key_states(&self, domain: &DomainId, states: &[(DkimKeyId, KeyState)]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let now = time_ms::to_ms(time_ms::now());
                for (key, state) in states {
                    let done = sqlx::query("UPDATE dkim_keys SET state = $1, changed_at = $2 WHERE id = $3 AND domain_id = $4")
                        .bind(state.as_str())
                        .bind(now)
                        .bind(key.as_str())
                        .bind(domain.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(error::plain)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::not_found("DKIM key"));
                    }
                }
                tx.commit().await.map_err(error::plain)
            }

            async fn set_domain_verified(&self, domain: &DomainId, at: Option<time::OffsetDateTime>) -> StoreResult<()> {
                let done = sqlx::query("UPDATE domains SET verified_at = $1 WHERE id = $2")
                    .bind(at.map(time_ms::to_ms))
                    .bind(domain.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 { Err(StoreError::not_found("domain")) } else { Ok(()) }
            }
        }

        /// The form of a suppressed address kept to show: its domain
        /// lower-cased, its local part as given; `None` when that is the
        /// lower-cased key itself.
        fn shown_address(address: &str) -> Option<String> {
            let shown = match address.rsplit_once('@') {
                Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
                None => address.to_owned(),
            };
            (shown != address.to_lowercase()).then_some(shown)
        }

        fn suppression_from(row: &$row) -> StoreResult<Suppression> {
            let source: Option<String> = col(row, "source_event")?;
            Ok(Suppression {
                account: parsed(row, "account_id", AccountId::parse)?,
                shown: col::<Option<String>>(row, "shown")?.map_or_else(|| col(row, "address"), Ok)?,
                address: col(row, "address")?,
                reason: col(row, "reason")?,
                source_event: source.map(|s| EventId::parse(&s).map_err(|e| error::corrupt("source_event", e))).transpose()?,
                brand: col::<i32>(row, "brand")? != 0,
                created_at: time_ms::from_ms(col(row, "created_at")?),
            })
        }

        async fn insert_suppression<'e, E>(exec: E, e: &NewSuppression) -> StoreResult<bool>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            // A brand-wide entry replaces an account-only one (its reason
            // is the stronger); otherwise the first entry stays.
            let done = sqlx::query(
                "INSERT INTO suppressions (account_id, address, reason, source_event, brand, created_at, shown) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (account_id, address) DO UPDATE SET reason = excluded.reason, \
                 source_event = excluded.source_event, brand = 1, created_at = excluded.created_at, \
                 shown = COALESCE(excluded.shown, suppressions.shown) \
                 WHERE excluded.brand = 1 AND suppressions.brand = 0",
            )
            .bind(e.account.as_str())
            .bind(e.address.to_lowercase())
            .bind(&e.reason)
            .bind(e.source_event.as_ref().map(|id| id.as_str().to_owned()))
            .bind(i32::from(e.brand))
            .bind(time_ms::to_ms(time_ms::now()))
            .bind(shown_address(&e.address))
            .execute(exec)
            .await
            .map_err(|e| error::map(e, Context { unique: "suppressed", foreign_key: ForeignKey::Missing("account") }))?;
            Ok(done.rows_affected() > 0)
        }

        #[async_trait]
        impl SuppressionStore for $store {
            async fn suppress(&self, entry: &NewSuppression) -> StoreResult<bool> {
                insert_suppression(&self.pool, entry).await
            }

            async fn suppress_many(&self, entries: &[NewSuppression]) -> StoreResult<u64> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let mut added = 0;
                for e in entries {
                    if insert_suppression(&mut *tx, e).await? {
                        added += 1;
                    }
                }
                tx.commit().await.map_err(error::plain)?;
                Ok(added)
            }

            async fn suppressed(&self, account: &AccountId, brand: Option<&AccountId>, addresses: &[String]) -> StoreResult<Vec<Suppression>> {
                if addresses.is_empty() {
                    return Ok(Vec::new());
                }
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT account_id, address, shown, reason, source_event, brand, created_at FROM suppressions WHERE (account_id = ",
                );
                q.push_bind(account.as_str().to_owned());
                if let Some(b) = brand.filter(|b| *b != account) {
                    q.push(" OR (brand = 1 AND account_id = ").push_bind(b.as_str().to_owned()).push(")");
                }
                q.push(") AND address IN (");
                let mut list = q.separated(", ");
                for a in addresses {
                    list.push_bind(a.to_lowercase());
                }
                q.push(")");
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(suppression_from).collect()
            }

            async fn list_suppressions(&self, account: &AccountId, f: &SuppressionFilter, limit: u32) -> StoreResult<Vec<Suppression>> {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT account_id, address, shown, reason, source_event, brand, created_at FROM suppressions WHERE account_id = ",
                );
                q.push_bind(account.as_str().to_owned());
                if let Some(search) = &f.search {
                    // LIKE with the pattern's own wildcards escaped.
                    let escaped = search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                    q.push(" AND address LIKE ").push_bind(format!("%{escaped}%")).push(" ESCAPE '\\'");
                }
                if let Some(r) = &f.reason {
                    q.push(" AND reason = ").push_bind(r.clone());
                }
                if let Some(after) = &f.after {
                    q.push(" AND address > ").push_bind(after.to_lowercase());
                }
                q.push(" ORDER BY address LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(suppression_from).collect()
            }

            async fn remove_suppression(&self, account: &AccountId, address: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM suppressions WHERE account_id = $1 AND address = $2")
                    .bind(account.as_str())
                    .bind(address.to_lowercase())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }
        }

        /// Rows per multi-row INSERT on this backend.
        fn rows_per_insert() -> usize {
            if $backend == "postgres" { $crate::queries::PG_ROWS } else { $crate::queries::EVENT_ROWS }
        }

        /// The column that orders events as they were stored.
        fn position() -> &'static str {
            if $backend == "sqlite" { "rowid" } else { "seq" }
        }

        fn webhook_from(row: &$row) -> StoreResult<Webhook> {
            let kinds: Vec<String> = parsed(row, "kinds", |s| serde_json::from_str::<Vec<String>>(s))?;
            Ok(Webhook {
                id: parsed(row, "id", WebhookId::parse)?,
                account: parsed(row, "account_id", AccountId::parse)?,
                url: col(row, "url")?,
                kinds: kinds
                    .iter()
                    .map(|k| EventKind::parse(k).map_err(|e| error::corrupt("kinds", e)))
                    .collect::<StoreResult<_>>()?,
                batch_size: u32::try_from(col::<i64>(row, "batch_size")?).map_err(|e| error::corrupt("batch_size", e))?,
                secret: col(row, "secret")?,
                status: parsed(row, "status", WebhookStatus::parse)?,
                cursor: col(row, "cursor")?,
                failing_since: opt_time(row, "failing_since")?,
                last_error: col(row, "last_error")?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
            })
        }

        #[async_trait]
        impl StatsStore for $store {
            async fn stats(&self, query: &StatsQuery) -> StoreResult<Vec<StatsRow>> {
                if query.accounts.is_empty() {
                    return Ok(Vec::new());
                }
                let bucket: i64 = match query.period {
                    StatsPeriod::Hour => 3600,
                    StatsPeriod::Day => 86_400,
                };
                // Each breakdown has its own rows; the account group reads
                // the totals, per account.
                let (dim, group) = match query.group {
                    None => (herald_store::stats::TOTAL, "''"),
                    Some(StatsGroup::Account) => (herald_store::stats::TOTAL, "account_id"),
                    Some(g) => (herald_store::stats::dim(g).unwrap_or_default(), "value"),
                };
                // One account by hour reads its rows as they are (one per hour
                // and value, in key order); anything else adds them up.
                let plain = query.period == StatsPeriod::Hour
                    && query.accounts.len() == 1
                    && query.group != Some(StatsGroup::Account);
                let mut q = if plain {
                    sqlx::QueryBuilder::new(format!(
                        "SELECT hour AS period, {group} AS grp, {} FROM stats_hourly WHERE account_id IN (",
                        herald_store::COUNTERS.join(", ")
                    ))
                } else {
                    let sums: Vec<String> =
                        herald_store::COUNTERS.iter().map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}")).collect();
                    sqlx::QueryBuilder::new(format!(
                        "SELECT (hour / {bucket}) * {bucket} AS period, {group} AS grp, {} FROM stats_hourly WHERE account_id IN (",
                        sums.join(", ")
                    ))
                };
                let mut list = q.separated(", ");
                for a in &query.accounts {
                    list.push_bind(a.as_str().to_owned());
                }
                q.push(") AND dim = ").push_bind(dim);
                q.push(" AND hour >= ").push_bind(query.since.unix_timestamp().div_euclid(bucket) * bucket);
                q.push(" AND hour < ").push_bind(query.until.unix_timestamp());
                if plain {
                    q.push(" ORDER BY hour, value");
                } else {
                    q.push(" GROUP BY period, grp ORDER BY period, grp");
                }
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter()
                    .map(|r| {
                        // By position: the counters follow period and group.
                        let mut counts = herald_store::Counts::default();
                        for (i, slot) in counts.0.iter_mut().enumerate() {
                            *slot = r
                                .try_get::<Option<i64>, usize>(i + 2)
                                .map_err(|e| error::corrupt(herald_store::COUNTERS[i], e))?
                                .unwrap_or(0);
                        }
                        Ok(StatsRow {
                            period: time::OffsetDateTime::from_unix_timestamp(col::<i64>(r, "period")?)
                                .map_err(|e| error::corrupt("period", e))?,
                            group: col(r, "grp")?,
                            counts,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl WebhookStore for $store {
            async fn create_webhook(&self, new: &NewWebhook) -> StoreResult<Webhook> {
                let id = WebhookId::generate();
                let kinds: Vec<&str> = new.kinds.iter().map(|k| k.as_str()).collect();
                let now = time::OffsetDateTime::now_utc();
                // Owed what is stored from now on: the cursor starts at the
                // last position, read in the same statement.
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO webhooks (id, account_id, url, kinds, batch_size, secret, status, cursor, created_at) VALUES (",
                );
                q.separated(", ")
                    .push_bind(id.as_str().to_owned())
                    .push_bind(new.account.as_str().to_owned())
                    .push_bind(new.url.clone())
                    .push_bind(serde_json::to_string(&kinds).unwrap_or_default())
                    .push_bind(i64::from(new.batch_size))
                    .push_bind(new.secret.clone())
                    .push("'active'")
                    .push(format!("COALESCE((SELECT MAX({}) FROM events), 0)", position()))
                    .push_bind(time_ms::to_ms(now));
                q.push(")");
                q.build()
                    .execute(&self.pool)
                    .await
                    .map_err(|e| error::map(e, NEW_KEY))?;
                self.webhook(&id).await?.ok_or_else(|| StoreError::not_found("webhook"))
            }

            async fn list_webhooks(&self, account: Option<&AccountId>) -> StoreResult<Vec<Webhook>> {
                let mut q = sqlx::QueryBuilder::new("SELECT * FROM webhooks");
                if let Some(a) = account {
                    q.push(" WHERE account_id = ").push_bind(a.as_str().to_owned());
                }
                q.push(" ORDER BY id");
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(webhook_from).collect()
            }

            async fn webhook(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
                let row = sqlx::query("SELECT * FROM webhooks WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.as_ref().map(webhook_from).transpose()
            }

            async fn delete_webhook(&self, id: &WebhookId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn webhook_delivered(&self, id: &WebhookId, from: i64, to: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE webhooks SET cursor = $1, failing_since = NULL, last_error = NULL WHERE id = $2 AND cursor = $3",
                )
                .bind(to)
                .bind(id.as_str())
                .bind(from)
                .execute(&self.pool)
                .await
                .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn rewind_webhook(&self, id: &WebhookId, to: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE webhooks SET cursor = $1 WHERE id = $2 AND cursor > $1")
                    .bind(to)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_webhook_attempt(&self, a: &herald_store::NewWebhookAttempt) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                sqlx::query(
                    "INSERT INTO webhook_attempts (webhook_id, at, first_pos, last_pos, events, delivered, error, millis) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(a.webhook.as_str())
                .bind(time_ms::to_ms(a.at))
                .bind(a.first)
                .bind(a.last)
                .bind(i64::from(a.events))
                .bind(i64::from(a.delivered))
                .bind(a.error.as_deref())
                .bind(i64::from(a.millis))
                .execute(&mut *tx)
                .await
                .map_err(|e| error::map(e, error::Context { unique: "attempt exists", foreign_key: ForeignKey::Missing("webhook") }))?;
                sqlx::query(
                    "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <= \
                     (SELECT id FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                )
                .bind(a.webhook.as_str())
                .bind(herald_store::WEBHOOK_ATTEMPTS_KEPT)
                .execute(&mut *tx)
                .await
                .map_err(error::plain)?;
                tx.commit().await.map_err(error::plain)
            }

            async fn webhook_attempts(&self, id: &WebhookId, limit: u32) -> StoreResult<Vec<herald_store::WebhookAttempt>> {
                let rows = sqlx::query(
                    "SELECT id, webhook_id, at, first_pos, last_pos, events, delivered, error, millis \
                     FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(id.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::plain)?;
                rows.iter()
                    .map(|row| {
                        Ok(herald_store::WebhookAttempt {
                            id: col(row, "id")?,
                            attempt: herald_store::NewWebhookAttempt {
                                webhook: parsed(row, "webhook_id", WebhookId::parse)?,
                                at: time_ms::from_ms(col(row, "at")?),
                                first: col(row, "first_pos")?,
                                last: col(row, "last_pos")?,
                                events: u32::try_from(col::<i64>(row, "events")?).unwrap_or(u32::MAX),
                                delivered: col::<i64>(row, "delivered")? != 0,
                                error: col(row, "error")?,
                                millis: u32::try_from(col::<i64>(row, "millis")?).unwrap_or(u32::MAX),
                            },
                        })
                    })
                    .collect()
            }

            async fn webhook_failed(&self, id: &WebhookId, at: time::OffsetDateTime, error_text: &str) -> StoreResult<()> {
                sqlx::query("UPDATE webhooks SET failing_since = COALESCE(failing_since, $1), last_error = $2 WHERE id = $3")
                    .bind(time_ms::to_ms(at))
                    .bind(error_text)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(())
            }

            async fn set_webhook_status(&self, id: &WebhookId, status: WebhookStatus) -> StoreResult<()> {
                let sql = match status {
                    WebhookStatus::Active => "UPDATE webhooks SET status = 'active', failing_since = NULL, last_error = NULL WHERE id = $1",
                    WebhookStatus::Disabled => "UPDATE webhooks SET status = 'disabled' WHERE id = $1",
                };
                let done = sqlx::query(sql)
                    .bind(id.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("webhook"));
                }
                Ok(())
            }
        }

        #[async_trait]
        impl MessageIndexStore for $store {
            async fn messages_by_header_id(&self, header_id: &str) -> StoreResult<Vec<(MessageId, AccountId)>> {
                let rows = sqlx::query(
                    "SELECT message_id, account_id FROM message_ids WHERE header_id = $1 ORDER BY created_at DESC, message_id DESC",
                )
                .bind(header_id)
                .fetch_all(&self.pool)
                .await
                .map_err(error::plain)?;
                rows.iter()
                    .map(|r| Ok((parsed(r, "message_id", MessageId::parse)?, parsed(r, "account_id", AccountId::parse)?)))
                    .collect()
            }

            async fn recipient_at(&self, message: &MessageId, index: u32) -> StoreResult<Option<(AccountId, String)>> {
                let row = sqlx::query(
                    "SELECT account_id, recipient FROM events WHERE message_id = $1 AND kind = 'accepted' AND rcpt_index = $2 LIMIT 1",
                )
                .bind(message.as_str())
                .bind(i64::from(index))
                .fetch_optional(&self.pool)
                .await
                .map_err(error::plain)?;
                let Some(row) = row else { return Ok(None) };
                let recipient: Option<String> = col(&row, "recipient")?;
                Ok(recipient.map(|r| Ok::<_, StoreError>((parsed(&row, "account_id", AccountId::parse)?, r))).transpose()?)
            }

            async fn count_events(&self, f: &EventFilter) -> StoreResult<u64> {
                let mut q = sqlx::QueryBuilder::new("SELECT count(*) AS n FROM events WHERE 1 = 1");
                push_event_filter(&mut q, f);
                let row = q.build().fetch_one(&self.pool).await.map_err(error::plain)?;
                let n: i64 = col(&row, "n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }

        #[async_trait]
        impl IdempotencyStore for $store {
            async fn claim_idempotency(&self, account: &AccountId, key: &str, fingerprint: &str, expired_before: time::OffsetDateTime) -> StoreResult<IdempotencyClaim> {
                sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND created_at < $3")
                    .bind(account.as_str())
                    .bind(key)
                    .bind(time_ms::to_ms(expired_before))
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                let done = sqlx::query(
                    "INSERT INTO idempotency_keys (account_id, key, fingerprint, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (account_id, key) DO NOTHING",
                )
                .bind(account.as_str())
                .bind(key)
                .bind(fingerprint)
                .bind(time_ms::to_ms(time_ms::now()))
                .execute(&self.pool)
                .await
                .map_err(|e| error::map(e, Context { unique: "idempotency key", foreign_key: ForeignKey::Missing("account") }))?;
                if done.rows_affected() > 0 {
                    return Ok(IdempotencyClaim::Claimed);
                }
                let row = sqlx::query("SELECT fingerprint, status, body FROM idempotency_keys WHERE account_id = $1 AND key = $2")
                    .bind(account.as_str())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                // Gone between the insert and the select: given up by its
                // first request, so the key is free for another try.
                let Some(row) = row else { return Err(StoreError::conflict("idempotency key")) };
                let fingerprint: String = col(&row, "fingerprint")?;
                let status: Option<i32> = col(&row, "status")?;
                let body: Option<String> = col(&row, "body")?;
                Ok(match (status, body) {
                    (Some(status), Some(body)) => IdempotencyClaim::Done {
                        fingerprint,
                        status: u16::try_from(status).map_err(|e| error::corrupt("status", e))?,
                        body,
                    },
                    _ => IdempotencyClaim::InProgress { fingerprint },
                })
            }

            async fn complete_idempotency(&self, account: &AccountId, key: &str, status: u16, body: &str) -> StoreResult<()> {
                sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE account_id = $3 AND key = $4")
                    .bind(i32::from(status))
                    .bind(body)
                    .bind(account.as_str())
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(())
            }

            async fn release_idempotency(&self, account: &AccountId, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2 AND status IS NULL")
                    .bind(account.as_str())
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(())
            }

            async fn purge_idempotency(&self, before: time::OffsetDateTime) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(time_ms::to_ms(before))
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(done.rows_affected())
            }
        }

        async fn insert_api_key<'e, E>(exec: E, new: &NewApiKey) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = <$row as sqlx::Row>::Database>,
        {
            sqlx::query(
                "INSERT INTO api_keys (id, account_id, prefix, hash, scope, label, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(new.id.as_str())
            .bind(new.account.as_str())
            .bind(&new.prefix)
            .bind(&new.hash)
            .bind(new.scope.as_str())
            .bind(new.label.as_deref())
            .bind(time_ms::to_ms(time_ms::now()))
            .execute(exec)
            .await
            .map_err(|e| error::map(e, NEW_KEY))?;
            Ok(())
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(error::plain)?;
                Ok(())
            }

            async fn bootstrap(&self, account: NewAccount, key: NewApiKey) -> StoreResult<Option<Bootstrap>> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                // The marker is written first: on SQLite a write as the first
                // statement takes the write lock at once (waiting through
                // busy_timeout), and on PostgreSQL a second node's insert waits
                // for the first node's commit, then does nothing.
                let marked = sqlx::query("INSERT INTO meta (key, value) VALUES ('bootstrapped_at', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(time_ms::to_ms(time_ms::now()).to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                if marked.rows_affected() == 0 {
                    return Ok(None);
                }
                let existing = sqlx::query(concat!(account_select!(), " WHERE a.name = $1"))
                    .bind(account.name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                let account_id = match existing.as_ref().map(account_from).transpose()? {
                    Some(found) if found.parent.is_some() => {
                        return Err(StoreError::conflict(format!(
                            "bootstrap account {} exists as a sub-account",
                            found.name
                        )));
                    }
                    Some(found) => found.id,
                    None => {
                        let id = AccountId::generate();
                        sqlx::query("INSERT INTO accounts (id, name, parent_id, status, created_at) VALUES ($1, $2, NULL, $3, $4)")
                            .bind(id.as_str())
                            .bind(account.name.as_str())
                            .bind(AccountStatus::Active.as_str())
                            .bind(time_ms::to_ms(time_ms::now()))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| error::map(e, NEW_ACCOUNT))?;
                        id
                    }
                };
                let key = NewApiKey { account: account_id.clone(), ..key };
                insert_api_key(&mut *tx, &key).await?;
                tx.commit().await.map_err(error::plain)?;
                let account = self.account_by_id(&account_id).await?.ok_or(StoreError::not_found("account"))?;
                let key = self.api_key_by_prefix(&key.prefix).await?.ok_or(StoreError::not_found("API key"))?;
                Ok(Some(Bootstrap { account, key }))
            }
        }
    };
}
