//! Listings, monitored targets and alerts (`herald_store::MonitorStore`),
//! as a macro instantiated per backend beside `impl_sql_store!`, whose
//! helpers (`col`, `parsed`, `opt_time`, `error`, `time_ms`) it uses.

macro_rules! listing_select {
    () => {
        "SELECT id, target, kind, list, name, codes, reason, delist_url, weight, started_at, last_seen_at, ended_at \
         FROM blocklist_listings"
    };
}

macro_rules! alert_select {
    () => {
        "SELECT id, account_id, kind, key, message, opened_at, notified_at, resolved_at, acknowledged_at FROM alerts"
    };
}

/// Target rows per INSERT: 3 values each.
pub(crate) const TARGET_ROWS: usize = 300;
/// Targets per `IN (...)` of a listings query.
pub(crate) const TARGETS_PER_QUERY: usize = 500;

macro_rules! impl_monitor_store {
    ($store:ty, $row:ty) => {
        use herald_store::{
            Alert, AlertFilter, AlertOpened, Listing, ListingFilter, MonitorStore, MonitorTarget, NewAlert,
            SeenListing,
        };
        use herald_types::AlertId;

        fn listing_from(row: &$row) -> StoreResult<Listing> {
            let codes: String = col(row, "codes")?;
            Ok(Listing {
                id: col(row, "id")?,
                seen: SeenListing {
                    target: col(row, "target")?,
                    kind: col(row, "kind")?,
                    list: col(row, "list")?,
                    name: col(row, "name")?,
                    codes: codes.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect(),
                    reason: col(row, "reason")?,
                    delist_url: col(row, "delist_url")?,
                    weight: u32::try_from(col::<i64>(row, "weight")?).map_err(|e| error::corrupt("weight", e))?,
                },
                started_at: time_ms::from_ms(col(row, "started_at")?),
                last_seen_at: time_ms::from_ms(col(row, "last_seen_at")?),
                ended_at: opt_time(row, "ended_at")?,
            })
        }

        fn alert_from(row: &$row) -> StoreResult<Alert> {
            Ok(Alert {
                id: parsed(row, "id", AlertId::parse)?,
                account: parsed(row, "account_id", AccountId::parse)?,
                kind: col(row, "kind")?,
                key: col(row, "key")?,
                message: col(row, "message")?,
                opened_at: time_ms::from_ms(col(row, "opened_at")?),
                notified_at: time_ms::from_ms(col(row, "notified_at")?),
                resolved_at: opt_time(row, "resolved_at")?,
                acknowledged_at: opt_time(row, "acknowledged_at")?,
            })
        }

        #[async_trait]
        impl MonitorStore for $store {
            async fn listing_seen(&self, seen: &SeenListing, at: time::OffsetDateTime) -> StoreResult<bool> {
                let at = time_ms::to_ms(at);
                let codes = seen.codes.join(",");
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let inserted = sqlx::query(
                    "INSERT INTO blocklist_listings (target, kind, list, name, codes, reason, delist_url, weight, \
                     started_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $8, $8) \
                     ON CONFLICT (target, list) WHERE ended_at IS NULL DO NOTHING RETURNING id",
                )
                .bind(&seen.target)
                .bind(&seen.kind)
                .bind(&seen.list)
                .bind(&seen.name)
                .bind(&codes)
                .bind(&seen.reason)
                .bind(&seen.delist_url)
                .bind(at)
                .bind(i64::from(seen.weight))
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::plain)?
                .is_some();
                if !inserted {
                    sqlx::query(
                        "UPDATE blocklist_listings SET last_seen_at = $1, codes = $2, reason = $3, delist_url = $4, \
                         name = $5, weight = $8 WHERE target = $6 AND list = $7 AND ended_at IS NULL",
                    )
                    .bind(at)
                    .bind(&codes)
                    .bind(&seen.reason)
                    .bind(&seen.delist_url)
                    .bind(&seen.name)
                    .bind(&seen.target)
                    .bind(&seen.list)
                    .bind(i64::from(seen.weight))
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                }
                tx.commit().await.map_err(error::plain)?;
                Ok(inserted)
            }

            async fn listing_ended(&self, target: &str, list: &str, at: time::OffsetDateTime) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE blocklist_listings SET ended_at = $1 WHERE target = $2 AND list = $3 AND ended_at IS NULL",
                )
                .bind(time_ms::to_ms(at))
                .bind(target)
                .bind(list)
                .execute(&self.pool)
                .await
                .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn listings(&self, f: &ListingFilter, limit: u32) -> StoreResult<Vec<Listing>> {
                // Long target lists are asked in chunks (bound values are
                // limited per statement) and merged.
                if let Some(targets) = &f.targets
                    && targets.len() > $crate::monitor_queries::TARGETS_PER_QUERY
                {
                    let mut all = Vec::new();
                    for chunk in targets.chunks($crate::monitor_queries::TARGETS_PER_QUERY) {
                        let part = ListingFilter {
                            targets: Some(chunk.to_vec()),
                            ..f.clone()
                        };
                        all.extend(self.listings(&part, limit).await?);
                    }
                    all.sort_by(|a, b| (b.started_at, b.id).cmp(&(a.started_at, a.id)));
                    all.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                    return Ok(all);
                }
                let mut q = sqlx::QueryBuilder::new(listing_select!());
                q.push(" WHERE 1 = 1");
                if let Some(targets) = &f.targets {
                    if targets.is_empty() {
                        return Ok(Vec::new());
                    }
                    q.push(" AND target IN (");
                    let mut sep = q.separated(", ");
                    for t in targets {
                        sep.push_bind(t.clone());
                    }
                    q.push(")");
                }
                if f.active_only {
                    q.push(" AND ended_at IS NULL");
                }
                if let Some(since) = f.since {
                    q.push(" AND (ended_at IS NULL OR ended_at >= ")
                        .push_bind(time_ms::to_ms(since))
                        .push(")");
                }
                q.push(" ORDER BY started_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(listing_from).collect()
            }

            async fn replace_monitor_targets(&self, targets: &[MonitorTarget]) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                sqlx::query("DELETE FROM monitor_targets")
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                // Accounts deleted since the targets were gathered are left
                // out (their rows would break the foreign key).
                let existing: std::collections::HashSet<String> = sqlx::query("SELECT id FROM accounts")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(error::plain)?
                    .iter()
                    .map(|r| col::<String>(r, "id"))
                    .collect::<StoreResult<_>>()?;
                let mut unique: Vec<&MonitorTarget> =
                    targets.iter().filter(|t| existing.contains(t.account.as_str())).collect();
                unique.sort();
                unique.dedup();
                for chunk in unique.chunks($crate::monitor_queries::TARGET_ROWS) {
                    let mut q = sqlx::QueryBuilder::new("INSERT INTO monitor_targets (account_id, target, origin) ");
                    q.push_values(chunk, |mut b, t| {
                        b.push_bind(t.account.as_str().to_owned())
                            .push_bind(t.target.clone())
                            .push_bind(t.origin.clone());
                    });
                    q.push(" ON CONFLICT DO NOTHING");
                    match q.build().execute(&mut *tx).await {
                        Ok(_) => {}
                        Err(e) if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) => {
                            return Err(StoreError::not_found("account"));
                        }
                        Err(e) => return Err(error::plain(e)),
                    }
                }
                tx.commit().await.map_err(error::plain)?;
                Ok(())
            }

            async fn monitor_targets(&self, accounts: Option<&[AccountId]>) -> StoreResult<Vec<MonitorTarget>> {
                let mut q = sqlx::QueryBuilder::new("SELECT account_id, target, origin FROM monitor_targets");
                if let Some(accounts) = accounts {
                    if accounts.is_empty() {
                        return Ok(Vec::new());
                    }
                    q.push(" WHERE account_id IN (");
                    let mut sep = q.separated(", ");
                    for a in accounts {
                        sep.push_bind(a.as_str().to_owned());
                    }
                    q.push(")");
                }
                q.push(" ORDER BY target, account_id, origin");
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter()
                    .map(|r| {
                        Ok(MonitorTarget {
                            account: parsed(r, "account_id", AccountId::parse)?,
                            target: col(r, "target")?,
                            origin: col(r, "origin")?,
                        })
                    })
                    .collect()
            }

            async fn open_alert(&self, new: &NewAlert, at: time::OffsetDateTime) -> StoreResult<AlertOpened> {
                let id = AlertId::generate();
                let at = time_ms::to_ms(at);
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let inserted = sqlx::query(
                    "INSERT INTO alerts (id, account_id, kind, key, message, opened_at, notified_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) \
                     ON CONFLICT (account_id, key) WHERE resolved_at IS NULL DO NOTHING RETURNING id",
                )
                .bind(id.as_str())
                .bind(new.account.as_str())
                .bind(&new.kind)
                .bind(&new.key)
                .bind(&new.message)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| {
                    if e.as_database_error().is_some_and(|d| d.is_foreign_key_violation()) {
                        StoreError::not_found("account")
                    } else {
                        error::plain(e)
                    }
                })?
                .is_some();
                let row = sqlx::query(concat!(alert_select!(), " WHERE account_id = $1 AND key = $2 AND resolved_at IS NULL"))
                    .bind(new.account.as_str())
                    .bind(&new.key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                tx.commit().await.map_err(error::plain)?;
                let alert = alert_from(&row)?;
                Ok(if inserted { AlertOpened::New(alert) } else { AlertOpened::Existing(alert) })
            }

            async fn alert_notified(
                &self,
                id: &AlertId,
                message: &str,
                previous: time::OffsetDateTime,
                at: time::OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE alerts SET notified_at = $1, message = $2 WHERE id = $3 AND notified_at = $4 \
                     AND resolved_at IS NULL",
                )
                .bind(time_ms::to_ms(at))
                .bind(message)
                .bind(id.as_str())
                .bind(time_ms::to_ms(previous))
                .execute(&self.pool)
                .await
                .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn resolve_alert(
                &self,
                account: &AccountId,
                key: &str,
                at: time::OffsetDateTime,
            ) -> StoreResult<Option<Alert>> {
                let row = sqlx::query(
                    "UPDATE alerts SET resolved_at = $1 WHERE account_id = $2 AND key = $3 AND resolved_at IS NULL \
                     RETURNING id, account_id, kind, key, message, opened_at, notified_at, resolved_at, acknowledged_at",
                )
                .bind(time_ms::to_ms(at))
                .bind(account.as_str())
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::plain)?;
                row.as_ref().map(alert_from).transpose()
            }

            async fn acknowledge_alert(
                &self,
                accounts: &[AccountId],
                id: &AlertId,
                at: time::OffsetDateTime,
            ) -> StoreResult<Option<Alert>> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let row = sqlx::query(concat!(alert_select!(), " WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                let Some(row) = row else { return Ok(None) };
                let mut alert = alert_from(&row)?;
                if !accounts.contains(&alert.account) {
                    return Ok(None);
                }
                if alert.acknowledged_at.is_none() {
                    let at = time_ms::to_ms(at);
                    sqlx::query("UPDATE alerts SET acknowledged_at = $1 WHERE id = $2 AND acknowledged_at IS NULL")
                        .bind(at)
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(error::plain)?;
                    alert.acknowledged_at = Some(time_ms::from_ms(at));
                }
                tx.commit().await.map_err(error::plain)?;
                Ok(Some(alert))
            }

            async fn list_alerts(&self, f: &AlertFilter, limit: u32) -> StoreResult<Vec<Alert>> {
                let mut q = sqlx::QueryBuilder::new(alert_select!());
                q.push(" WHERE 1 = 1");
                if let Some(accounts) = &f.accounts {
                    if accounts.is_empty() {
                        return Ok(Vec::new());
                    }
                    q.push(" AND account_id IN (");
                    let mut sep = q.separated(", ");
                    for a in accounts {
                        sep.push_bind(a.as_str().to_owned());
                    }
                    q.push(")");
                }
                match f.open {
                    Some(true) => {
                        q.push(" AND resolved_at IS NULL");
                    }
                    Some(false) => {
                        q.push(" AND resolved_at IS NOT NULL");
                    }
                    None => {}
                }
                if let Some(kind) = &f.kind {
                    q.push(" AND kind = ").push_bind(kind.clone());
                }
                if let Some(since) = f.since {
                    q.push(" AND opened_at >= ").push_bind(time_ms::to_ms(since));
                }
                q.push(" ORDER BY opened_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(alert_from).collect()
            }
        }
    };
}
