//! Operations on accounts, keys, credentials and senders, with their rules.
//!
//! Two notions decide what a caller may do:
//! - its *authority*: the account whose key is in use (for the CLI, the
//!   account named on the command line). Account management — create,
//!   suspend, promote, delete — is judged on it: a master manages its own subs.
//! - its *acting account* ([`Caller::account`]): the account whose keys,
//!   credentials and senders a request reads and changes; a master may pick
//!   one of its subs with `Herald-Account`.

use herald_store::{
    Account, AccountFilter, ApiKey, ApprovedSender, NewAccount, NewApiKey, NewSmtpCredential, SmtpCredential,
};
use std::collections::BTreeMap;

use herald_types::{
    AccountName, AccountSettings, AccountStatus, ApiKeyId, DomainName, KeyScope, SenderRule, SmtpCredentialId,
};

use crate::{Accounts, AccountsError, AccountsResult, Caller, SettingsPatch, secret};

/// Streams of one account with a sending domain of their own, at most.
const MAX_STREAM_DOMAINS: usize = 32;
fn too_many_stream_domains() -> AccountsError {
    AccountsError::Unprocessable(format!(
        "stream_domains: at most {MAX_STREAM_DOMAINS} streams have a domain of their own"
    ))
}

/// Tries before giving up when a random prefix or username is already taken.
const COLLISION_RETRIES: usize = 3;

/// A new API key: its record and the key itself, to show exactly once.
#[derive(Clone)]
pub struct IssuedKey {
    pub record: ApiKey,
    pub secret: String,
}

/// A new SMTP credential: its record and the password, to show exactly once.
#[derive(Clone)]
pub struct IssuedCredential {
    pub record: SmtpCredential,
    pub password: String,
}

impl std::fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedKey")
            .field("prefix", &self.record.prefix)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("username", &self.record.username)
            .finish_non_exhaustive()
    }
}

/// Which state change a management call makes, for messages.
#[derive(Debug, Clone, Copy)]
enum Change {
    Suspend,
    Reactivate,
    Promote,
    Delete,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Reactivate => "reactivate",
            Self::Promote => "promote",
            Self::Delete => "delete",
        }
    }
}

fn authority(caller: &Caller) -> &Account {
    caller.key_account.as_ref().unwrap_or(&caller.account)
}

/// Runs `attempt` again while it meets a uniqueness conflict: inserting a
/// fresh secret, that can only mean its random prefix or username was taken.
async fn until_unique<T, Fut>(mut attempt: impl FnMut() -> Fut) -> AccountsResult<T>
where
    Fut: std::future::Future<Output = AccountsResult<T>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(AccountsError::Conflict(_)) if tries < COLLISION_RETRIES => tries += 1,
            other => return other,
        }
    }
}

pub(crate) async fn hash_off_thread(secret: String) -> AccountsResult<String> {
    tokio::task::spawn_blocking(move || secret::hash(&secret))
        .await
        .map_err(|e| AccountsError::Internal(format!("argon2 task: {e}")))?
        .map_err(AccountsError::Internal)
}

impl Accounts {
    /// An account by name for the operator (no visibility rule).
    pub async fn find(&self, name: &str) -> AccountsResult<Account> {
        let name = AccountName::parse(name)?;
        self.store
            .account_by_name(&name)
            .await?
            .ok_or(AccountsError::NotFound("account"))
    }

    /// The named account if the caller may see it: its own account, its
    /// subs, anything for an admin. Otherwise `NotFound`.
    pub async fn account(&self, caller: &Caller, name: &str) -> AccountsResult<Account> {
        let target = self.find(name).await.map_err(|e| match e {
            AccountsError::Invalid(_) => AccountsError::NotFound("account"),
            other => other,
        })?;
        let auth = authority(caller);
        let visible = caller.admin
            || target.id == auth.id
            || target.id == caller.account.id
            || target.parent_id() == Some(&auth.id);
        if visible {
            Ok(target)
        } else {
            Err(AccountsError::NotFound("account"))
        }
    }

    /// For an admin, every account; otherwise the caller's subs.
    pub async fn list_accounts(&self, caller: &Caller) -> AccountsResult<Vec<Account>> {
        let filter = if caller.admin {
            AccountFilter::All
        } else {
            AccountFilter::SubsOf(authority(caller).id.clone())
        };
        Ok(self.store.list_accounts(filter).await?)
    }

    /// Creates an account. A master's key creates its own subs; an admin
    /// creates a master (no parent) or a sub of any master.
    pub async fn create_account(&self, caller: &Caller, name: &str, parent: Option<&str>) -> AccountsResult<Account> {
        if caller.admin {
            return self.create_as_operator(name, parent).await;
        }
        let auth = authority(caller);
        if parent.is_some_and(|p| AccountName::parse(p).ok().as_ref() != Some(&auth.name)) {
            return Err(AccountsError::NotFound("parent account"));
        }
        self.create_under(name, Some(auth.clone())).await
    }

    /// Creates a master account, or a sub of the master named `parent`, with
    /// operator power (the CLI; an admin key).
    pub async fn create_as_operator(&self, name: &str, parent: Option<&str>) -> AccountsResult<Account> {
        let parent = match parent {
            Some(p) => Some(self.find(p).await?),
            None => None,
        };
        self.create_under(name, parent).await
    }

    /// Every account, for the operator.
    pub async fn list_all(&self, filter: AccountFilter) -> AccountsResult<Vec<Account>> {
        Ok(self.store.list_accounts(filter).await?)
    }

    async fn create_under(&self, name: &str, parent: Option<Account>) -> AccountsResult<Account> {
        let name = AccountName::parse(name)?;
        if let Some(p) = &parent
            && p.parent.is_some()
        {
            return Err(AccountsError::Forbidden(format!(
                "{} is a sub-account; only master accounts have sub-accounts",
                p.name
            )));
        }
        let new = NewAccount {
            name,
            parent: parent.map(|p| p.id),
        };
        let account = self.store.create_account(new).await?;
        tracing::info!(account = %account.name, kind = account.kind().as_str(), "account created");
        Ok(account)
    }

    /// The target of a management call, if the caller may manage it: an
    /// admin any account but the one of the key in use; a master its subs.
    async fn managed(&self, caller: &Caller, name: &str, change: Change) -> AccountsResult<Account> {
        let target = self.account(caller, name).await?;
        let auth = authority(caller);
        if caller.key_account.as_ref().is_some_and(|k| k.id == target.id) {
            return Err(AccountsError::Forbidden(format!(
                "cannot {} the account whose key makes this request",
                change.verb()
            )));
        }
        if caller.admin || target.parent_id() == Some(&auth.id) {
            Ok(target)
        } else {
            Err(AccountsError::Forbidden(format!(
                "only the master of {} or an admin may {} it",
                target.name,
                change.verb()
            )))
        }
    }

    pub async fn set_status(&self, caller: &Caller, name: &str, status: AccountStatus) -> AccountsResult<Account> {
        let change = match status {
            AccountStatus::Active => Change::Reactivate,
            AccountStatus::Suspended => Change::Suspend,
        };
        let target = self.managed(caller, name, change).await?;
        self.store.set_account_status(&target.id, status).await?;
        self.standings.announce();
        tracing::info!(account = %target.name, status = status.as_str(), "account status changed");
        self.find(name).await
    }

    /// Changes an account's settings: the account itself, its master or an
    /// admin may. Settings not given stay as they are.
    pub async fn update_settings(&self, caller: &Caller, name: &str, patch: &SettingsPatch) -> AccountsResult<Account> {
        let target = self.account(caller, name).await?;
        let mut settings = target.settings.clone();
        if patch.daily_quota.is_some() || patch.rate_per_minute.is_some() || patch.spam_threshold.is_some() {
            // A limit is set from above: the operator, or the master for its
            // sub. An account's own key cannot lift its own.
            let own = caller.key_account.as_ref().is_none_or(|k| k.id == target.id);
            if !caller.admin && own {
                return Err(AccountsError::Forbidden(
                    "an account's quota, rate and spam threshold are set by its master or the operator".to_owned(),
                ));
            }
            if let Some(t) = patch.spam_threshold {
                if !(1.0..=1000.0).contains(&t) {
                    return Err(AccountsError::Invalid(herald_types::InvalidValue::new(
                        "spam_threshold",
                        &t.to_string(),
                        "a score from 1 to 1000",
                    )));
                }
                // Hundredths: 100 to 100,000.
                #[allow(clippy::cast_possible_truncation)]
                {
                    settings.spam_threshold_centi = Some((t * 100.0).round() as i32);
                }
            }
            if let Some(q) = patch.daily_quota {
                settings.daily_quota = (q > 0).then_some(q);
            }
            if let Some(r) = patch.rate_per_minute {
                settings.rate_per_minute = (r > 0).then_some(r);
            }
        }
        if let Some(v) = patch.track_opens {
            settings.track_opens = v;
        }
        if let Some(v) = patch.track_clicks {
            settings.track_clicks = v;
        }
        for (given, field, what) in [
            (
                patch.hard_bounce_threshold,
                &mut settings.hard_bounce_threshold,
                "hard_bounce_threshold",
            ),
            (
                patch.soft_bounce_threshold,
                &mut settings.soft_bounce_threshold,
                "soft_bounce_threshold",
            ),
        ] {
            if let Some(v) = given {
                if v == 0 {
                    return Err(AccountsError::Invalid(herald_types::InvalidValue::new(
                        what,
                        "0",
                        "a number of bounces, 1 or more",
                    )));
                }
                *field = v;
            }
        }
        if let Some(to) = patch.reply_forward_to.as_deref().map(str::trim) {
            settings.reply_forward_to = if to.is_empty() {
                None
            } else {
                Some(herald_types::EmailAddress::parse(to)?.to_string())
            };
        }
        if let Some(to) = patch.alert_email.as_deref().map(str::trim) {
            settings.alert_email = if to.is_empty() {
                None
            } else {
                Some(herald_types::EmailAddress::parse(to)?.to_string())
            };
        }
        if let Some(url) = patch.reply_url.as_deref().map(str::trim) {
            settings.reply_url = if url.is_empty() {
                None
            } else {
                Some(self.check_tenant_url("reply_url", url).await?)
            };
        }
        for (given, field, what) in [
            (
                patch.bounce_alert_percent,
                &mut settings.bounce_alert_bp,
                "bounce_alert_percent",
            ),
            (
                patch.complaint_alert_percent,
                &mut settings.complaint_alert_bp,
                "complaint_alert_percent",
            ),
        ] {
            if let Some(p) = given {
                if !(0.01..=100.0).contains(&p) {
                    return Err(AccountsError::Invalid(herald_types::InvalidValue::new(
                        what,
                        &p.to_string(),
                        "a percentage from 0.01 to 100",
                    )));
                }
                // Basis points: 0.01% steps, 1 to 10,000.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    *field = (p * 100.0).round() as u32;
                }
            }
        }
        if let Some(streams) = &patch.stream_domains {
            self.set_stream_domains(&target, &mut settings, streams).await?;
        }
        self.store.set_account_settings(&target.id, &settings).await?;
        // Quotas and rates count at once, here and in other processes.
        self.standings.announce();
        tracing::info!(account = %target.name, ?settings, "account settings changed");
        self.find(name).await
    }

    /// Merges streams' sending domains into `settings`. Each domain must be
    /// one the account's brand registered (its keys sign the stream's
    /// mail); another brand's domain and an unknown one get the same
    /// answer, so the check tells nothing about who registered what.
    async fn set_stream_domains(
        &self,
        target: &Account,
        settings: &mut AccountSettings,
        streams: &BTreeMap<String, String>,
    ) -> AccountsResult<()> {
        // Bounded before any store lookup: one lookup per stream named.
        if streams.len() > MAX_STREAM_DOMAINS {
            return Err(too_many_stream_domains());
        }
        for (stream, domain) in streams {
            if !herald_types::is_stream_name(stream) {
                return Err(AccountsError::Invalid(herald_types::InvalidValue::new(
                    "stream_domains",
                    stream,
                    "a stream name: 1 to 32 of a-z, 0-9, '-' and '_'",
                )));
            }
            let domain = domain.trim();
            if domain.is_empty() {
                settings.stream_domains.remove(stream);
                continue;
            }
            let name = DomainName::parse(domain)?;
            let registered = match self.store.domain(&name).await? {
                Some(d) => self
                    .store
                    .account_by_id(&d.account)
                    .await?
                    .is_some_and(|owner| owner.brand() == target.brand()),
                None => false,
            };
            if !registered {
                return Err(AccountsError::Unprocessable(format!(
                    "stream_domains: {name} is not a sending domain of this brand; add it with `herald domain add` first"
                )));
            }
            settings.stream_domains.insert(stream.clone(), name.to_string());
        }
        if settings.stream_domains.len() > MAX_STREAM_DOMAINS {
            return Err(too_many_stream_domains());
        }
        Ok(())
    }

    /// Makes a sub-account a master; its former master no longer sees it.
    pub async fn promote(&self, caller: &Caller, name: &str) -> AccountsResult<Account> {
        let target = self.managed(caller, name, Change::Promote).await?;
        if target.parent.is_none() {
            return Err(AccountsError::Conflict(format!(
                "{} is already a master account",
                target.name
            )));
        }
        self.store.promote_account(&target.id).await?;
        self.standings.announce();
        tracing::info!(account = %target.name, "account promoted to master");
        self.find(name).await
    }

    pub async fn delete(&self, caller: &Caller, name: &str) -> AccountsResult<()> {
        let target = self.managed(caller, name, Change::Delete).await?;
        self.store.delete_account(&target.id).await?;
        self.standings.announce();
        tracing::info!(account = %target.name, "account deleted");
        Ok(())
    }

    /// Makes the first master account and its admin key, once per store.
    /// `None` when the store was bootstrapped before.
    pub async fn bootstrap(&self, name: &str) -> AccountsResult<Option<(Account, IssuedKey)>> {
        let name = AccountName::parse(name)?;
        let fresh = secret::new_api_key();
        let new_key = NewApiKey {
            id: ApiKeyId::generate(),
            // Replaced by the store with the bootstrap account's id.
            account: herald_types::AccountId::generate(),
            prefix: fresh.prefix.clone(),
            hash: secret::key_hash(&self.key_pepper, &fresh.key),
            scope: KeyScope::Admin,
            label: Some("bootstrap".to_owned()),
        };
        let done = self.store.bootstrap(NewAccount { name, parent: None }, new_key).await?;
        Ok(done.map(|b| {
            (
                b.account,
                IssuedKey {
                    record: b.key,
                    secret: fresh.key,
                },
            )
        }))
    }

    /// Issues an API key for the acting account. Only an admin may issue an
    /// admin-scoped key.
    pub async fn issue_api_key(
        &self,
        caller: &Caller,
        scope: KeyScope,
        label: Option<String>,
    ) -> AccountsResult<IssuedKey> {
        if scope == KeyScope::Admin && !caller.admin {
            return Err(AccountsError::Forbidden(
                "only an admin may issue admin keys".to_owned(),
            ));
        }
        let issued = until_unique(|| {
            let label = label.clone();
            async move {
                let fresh = secret::new_api_key();
                let new = NewApiKey {
                    id: ApiKeyId::generate(),
                    account: caller.account.id.clone(),
                    prefix: fresh.prefix.clone(),
                    hash: secret::key_hash(&self.key_pepper, &fresh.key),
                    scope,
                    label,
                };
                let record = self.store.insert_api_key(new).await?;
                Ok(IssuedKey {
                    record,
                    secret: fresh.key,
                })
            }
        })
        .await?;
        tracing::info!(account = %caller.account.name, prefix = %issued.record.prefix, scope = scope.as_str(), "API key issued");
        Ok(issued)
    }

    pub async fn list_api_keys(&self, caller: &Caller) -> AccountsResult<Vec<ApiKey>> {
        Ok(self.store.list_api_keys(&caller.account.id).await?)
    }

    /// Revokes one of the acting account's keys, named by id or prefix.
    pub async fn revoke_api_key(&self, caller: &Caller, id_or_prefix: &str) -> AccountsResult<ApiKey> {
        let id = match ApiKeyId::parse(id_or_prefix) {
            Ok(id) => id,
            Err(_) => match self.store.api_key_by_prefix(id_or_prefix).await? {
                Some(k) if k.account == caller.account.id => k.id,
                _ => return Err(AccountsError::NotFound("API key")),
            },
        };
        self.store.revoke_api_key(&caller.account.id, &id).await?;
        let keys = self.store.list_api_keys(&caller.account.id).await?;
        let key = keys
            .into_iter()
            .find(|k| k.id == id)
            .ok_or(AccountsError::NotFound("API key"))?;
        tracing::info!(account = %caller.account.name, prefix = %key.prefix, "API key revoked");
        Ok(key)
    }

    pub async fn issue_smtp_credential(
        &self,
        caller: &Caller,
        label: Option<String>,
    ) -> AccountsResult<IssuedCredential> {
        let issued = until_unique(|| {
            let label = label.clone();
            async move {
                let password = secret::new_password();
                let new = NewSmtpCredential {
                    id: SmtpCredentialId::generate(),
                    account: caller.account.id.clone(),
                    username: secret::new_username(caller.account.name.as_str()),
                    hash: hash_off_thread(password.clone()).await?,
                    label,
                };
                let record = self.store.insert_smtp_credential(new).await?;
                Ok(IssuedCredential { record, password })
            }
        })
        .await?;
        tracing::info!(account = %caller.account.name, username = %issued.record.username, "SMTP credential issued");
        Ok(issued)
    }

    pub async fn list_smtp_credentials(&self, caller: &Caller) -> AccountsResult<Vec<SmtpCredential>> {
        Ok(self.store.list_smtp_credentials(&caller.account.id).await?)
    }

    /// Revokes one of the acting account's credentials, by id or username.
    pub async fn revoke_smtp_credential(
        &self,
        caller: &Caller,
        id_or_username: &str,
    ) -> AccountsResult<SmtpCredential> {
        let id = match SmtpCredentialId::parse(id_or_username) {
            Ok(id) => id,
            Err(_) => match self.store.smtp_credential_by_username(id_or_username).await? {
                Some(c) if c.account == caller.account.id => c.id,
                _ => return Err(AccountsError::NotFound("SMTP credential")),
            },
        };
        self.store.revoke_smtp_credential(&caller.account.id, &id).await?;
        let all = self.store.list_smtp_credentials(&caller.account.id).await?;
        let credential = all
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(AccountsError::NotFound("SMTP credential"))?;
        tracing::info!(account = %caller.account.name, username = %credential.username, "SMTP credential revoked");
        Ok(credential)
    }

    pub async fn list_senders(&self, caller: &Caller) -> AccountsResult<Vec<ApprovedSender>> {
        Ok(self.store.list_senders(&caller.account.id).await?)
    }

    pub async fn remove_sender(&self, caller: &Caller, rule: &str) -> AccountsResult<()> {
        let rule = SenderRule::parse(rule).map_err(|_| AccountsError::NotFound("sender"))?;
        self.store.remove_sender(&caller.account.id, &rule).await?;
        tracing::info!(account = %caller.account.name, sender = %rule, "sender removed");
        Ok(())
    }
}
