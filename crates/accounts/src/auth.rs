//! Authentication: an API key or an SMTP username/password to an account.
//!
//! API keys are checked with a keyed HMAC in constant time (microseconds;
//! see `secret`). argon2 is deliberately slow (tens of milliseconds) and
//! stays for SMTP passwords (and API keys made by earlier versions, until
//! their first use rehashes them). A client sends its password with every
//! session, so the first successful argon2 check is remembered as a SHA-256
//! of what was presented, in memory only; later checks skip argon2 but
//! still read the row, so a revocation or suspension takes effect at once.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use herald_store::Account;
use herald_types::{AccountId, AccountName, ApiKeyId, KeyScope};
use sha2::{Digest, Sha256};

use crate::{Accounts, AccountsError, AccountsResult, Caller, secret};

/// Past this many remembered secrets the cache starts afresh; a bound on
/// memory when keys churn, at the cost of a few extra argon2 checks.
const CACHE_LIMIT: usize = 10_000;

/// A verified API key.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: ApiKeyId,
    pub account: Account,
    pub admin: bool,
}

/// Secrets already verified by argon2, as SHA-256 digests keyed by the row
/// they matched.
#[derive(Debug, Default)]
pub struct VerifyCache {
    seen: Mutex<HashMap<String, [u8; 32]>>,
}

impl VerifyCache {
    fn digest(secret: &str) -> [u8; 32] {
        Sha256::digest(secret.as_bytes()).into()
    }

    fn knows(&self, row: &str, secret: &str) -> bool {
        let digest = Self::digest(secret);
        self.seen
            .lock()
            .map(|seen| seen.get(row).is_some_and(|d| d == &digest))
            .unwrap_or(false)
    }

    fn remember(&self, row: &str, secret: &str) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= CACHE_LIMIT {
                seen.clear();
            }
            seen.insert(row.to_owned(), Self::digest(secret));
        }
    }
}

/// A hash that no secret matches, checked when there is no row to check, so
/// that "no such key or user" takes as long as "wrong secret".
pub(crate) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| secret::hash(&secret::new_password()).unwrap_or_default())
}

impl Accounts {
    /// argon2 off the async workers, consulting the cache first.
    async fn check_secret(&self, row: Option<(&str, &str)>, presented: &str) -> AccountsResult<bool> {
        if let Some((id, _)) = row
            && self.cache.knows(id, presented)
        {
            return Ok(true);
        }
        let stored = row.map_or_else(|| decoy_hash().to_owned(), |(_, hash)| hash.to_owned());
        let secret = presented.to_owned();
        let ok = tokio::task::spawn_blocking(move || secret::verify(&secret, &stored))
            .await
            .map_err(|e| AccountsError::Internal(format!("argon2 task: {e}")))?;
        let ok = ok && row.is_some();
        if let (true, Some((id, _))) = (ok, row) {
            self.cache.remember(id, presented);
        }
        Ok(ok)
    }

    /// Refuses a suspended account, or a sub whose master is suspended.
    pub(crate) async fn ensure_active(&self, account: &Account) -> AccountsResult<()> {
        if !account.is_active() {
            return Err(AccountsError::Suspended(account.name.to_string()));
        }
        if let Some(parent) = account.parent_id()
            && let Some(master) = self.store.account_by_id(parent).await?
            && !master.is_active()
        {
            return Err(AccountsError::Suspended(master.name.to_string()));
        }
        Ok(())
    }

    /// The account owning a verified secret, if it may act.
    async fn active_owner(&self, id: &AccountId) -> AccountsResult<Account> {
        let account = self
            .store
            .account_by_id(id)
            .await?
            .ok_or(AccountsError::Unauthenticated)?;
        self.ensure_active(&account).await?;
        Ok(account)
    }

    /// Checks a presented API key: `Unauthenticated` if unknown, wrong or
    /// revoked, `Suspended` if its account may not act.
    pub async fn authenticate_key(&self, presented: &str) -> AccountsResult<Principal> {
        // Not even shaped like a key: the shape is public, so refusing at
        // once leaks nothing.
        let prefix = secret::prefix_of(presented).ok_or(AccountsError::Unauthenticated)?;
        let row = self.store.api_key_by_prefix(prefix).await?;
        let verified = match &row {
            None => {
                // The same work as a wrong key, so timing tells nothing more
                // than the (public) prefix does.
                let _ = secret::key_hash(&self.key_pepper, presented);
                false
            }
            Some(key) => match secret::key_matches(&self.key_pepper, presented, &key.hash) {
                Some(ok) => ok,
                None => {
                    // An argon2 hash from an earlier version: checked once
                    // the slow way, then stored under the keyed hash.
                    let ok = self
                        .check_secret(Some((key.id.as_str(), key.hash.as_str())), presented)
                        .await?;
                    if ok
                        && let Err(e) = self
                            .store
                            .set_api_key_hash(&key.id, &secret::key_hash(&self.key_pepper, presented))
                            .await
                    {
                        tracing::warn!(key = %key.prefix, error = %e, "cannot rehash an API key; it keeps its argon2 hash");
                    }
                    ok
                }
            },
        };
        let key = match row {
            Some(key) if verified && key.revoked_at.is_none() => key,
            _ => return Err(AccountsError::Unauthenticated),
        };
        Ok(Principal {
            account: self.active_owner(&key.account).await?,
            admin: key.scope == KeyScope::Admin,
            key_id: key.id,
        })
    }

    /// Checks an SMTP AUTH username and password; the same rules as keys.
    pub async fn authenticate_smtp(&self, username: &str, password: &str) -> AccountsResult<Account> {
        let row = self.store.smtp_credential_by_username(username).await?;
        let verified = self
            .check_secret(row.as_ref().map(|c| (c.id.as_str(), c.hash.as_str())), password)
            .await?;
        let credential = match row {
            Some(c) if verified && c.revoked_at.is_none() => c,
            _ => return Err(AccountsError::Unauthenticated),
        };
        self.active_owner(&credential.account).await
    }

    /// The caller for a verified key, acting on its own account or, when
    /// `on_behalf_of` names one, on that account: one of its subs (any
    /// account for an admin key). Anything else is `NotFound`.
    pub async fn caller(&self, principal: Principal, on_behalf_of: Option<&str>) -> AccountsResult<Caller> {
        let key_account = principal.account;
        let account = match on_behalf_of {
            None => key_account.clone(),
            Some(name) => {
                let name = AccountName::parse(name).map_err(|_| AccountsError::NotFound("account"))?;
                if name == key_account.name {
                    key_account.clone()
                } else {
                    let target = self.store.account_by_name(&name).await?;
                    match target {
                        Some(t) if principal.admin || t.parent_id() == Some(&key_account.id) => t,
                        _ => return Err(AccountsError::NotFound("account")),
                    }
                }
            }
        };
        Ok(Caller {
            account,
            admin: principal.admin,
            key_account: Some(key_account),
        })
    }
}
