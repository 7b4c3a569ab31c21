//! Who may send as which name.
//!
//! - The account must be active (and its brand's master too), looked at
//!   for every message ([`Accounts::standing`]: remembered only until a
//!   change of status is announced), so a suspension stops an open SMTP
//!   session at its next `MAIL FROM`.
//! - The envelope sender and every author address (each address of each
//!   `From:` and `Sender:`, and addresses written in their display names)
//!   must be allowed by one of the account's approved senders.
//! - Whatever the approvals say, an address in a domain that *another*
//!   brand verified is refused: approvals made before that brand verified
//!   it, or by an operator's override, cannot send in its name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_accounts::{Accounts, Caller, Standing};
use herald_message::Authors;
use herald_types::{AccountId, DomainName, EmailAddress, ReversePath, SenderRule, SubmitError};

/// How long an account's approvals are remembered: a change by the CLI or
/// the API applies within this time. (The account's status is not cached.)
const APPROVALS_TTL: Duration = Duration::from_secs(5);
/// How long a domain's owner is remembered.
const OWNER_TTL: Duration = Duration::from_secs(10);
/// Past this many remembered domains the cache starts afresh.
const OWNER_CACHE_LIMIT: usize = 100_000;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What acceptance needs of an account.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    pub name: String,
    /// Its approved senders.
    pub rules: Arc<Vec<SenderRule>>,
    /// Its brand's master account.
    pub brand: AccountId,
    /// Its settings (the quota and rate among them).
    pub settings: herald_types::AccountSettings,
}

/// Remembered values, each with when it was read.
type Cache<K, V> = Mutex<HashMap<K, (Instant, V)>>;

/// The sender rules, with the caches they need.
pub struct SenderPolicy {
    accounts: Accounts,
    approvals: Cache<AccountId, Arc<Vec<SenderRule>>>,
    owners: Cache<DomainName, Option<AccountId>>,
}

impl std::fmt::Debug for SenderPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderPolicy").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> SubmitError {
    tracing::warn!(error = %e, "cannot read the account's sending rules");
    SubmitError::Unavailable
}

impl SenderPolicy {
    pub fn new(accounts: Accounts) -> Self {
        Self {
            accounts,
            approvals: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
        }
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The account's facts. Its standing (and its master's) counts from
    /// the next message after a change: a suspended account is refused
    /// from then on. `Suspended` for a suspended or missing account.
    pub async fn facts(&self, account: &AccountId) -> Result<AccountFacts, SubmitError> {
        let found = match self.accounts.standing(account).await.map_err(unavailable)? {
            Standing::Active(found) => found,
            Standing::Suspended(name) => return Err(SubmitError::Suspended(name)),
            Standing::Missing => return Err(SubmitError::Suspended(account.to_string())),
        };
        let cached = lock(&self.approvals)
            .get(account)
            .filter(|(at, _)| at.elapsed() < APPROVALS_TTL)
            .map(|(_, r)| r.clone());
        let rules = match cached {
            Some(r) => r,
            None => {
                let listed = self
                    .accounts
                    .list_senders(&Caller::operator((*found).clone()))
                    .await
                    .map_err(unavailable)?;
                let rules = Arc::new(listed.into_iter().map(|r| r.rule).collect::<Vec<_>>());
                lock(&self.approvals).insert(account.clone(), (Instant::now(), rules.clone()));
                rules
            }
        };
        Ok(AccountFacts {
            name: found.name.to_string(),
            rules,
            brand: found.brand().clone(),
            settings: found.settings.clone(),
        })
    }

    /// The brand that verified `domain` (or a parent), cached briefly.
    pub async fn owner(&self, domain: &DomainName) -> Result<Option<AccountId>, SubmitError> {
        let cached = lock(&self.owners)
            .get(domain)
            .filter(|(at, _)| at.elapsed() < OWNER_TTL)
            .map(|(_, o)| o.clone());
        if let Some(owner) = cached {
            return Ok(owner);
        }
        let owner = self
            .accounts
            .domain_owner(domain)
            .await
            .map_err(unavailable)?
            .map(|o| o.brand);
        let mut owners = lock(&self.owners);
        if owners.len() >= OWNER_CACHE_LIMIT {
            owners.clear();
        }
        owners.insert(domain.clone(), (Instant::now(), owner.clone()));
        Ok(owner)
    }

    /// Refuses an address in a domain another brand verified.
    async fn not_foreign(&self, facts: &AccountFacts, address: &EmailAddress) -> Result<(), SubmitError> {
        match self.owner(address.domain()).await? {
            Some(brand) if brand != facts.brand => Err(SubmitError::ForeignDomain(address.to_string())),
            _ => Ok(()),
        }
    }

    /// The envelope sender: not null, not another brand's, approved.
    pub async fn check_sender(&self, account: &AccountId, sender: &ReversePath) -> Result<AccountFacts, SubmitError> {
        let facts = self.facts(account).await?;
        let ReversePath::Address(from) = sender else {
            return Err(SubmitError::NullSender);
        };
        self.not_foreign(&facts, from).await?;
        if !facts.rules.iter().any(|r| r.allows(from)) {
            return Err(SubmitError::SenderNotApproved(from.to_string()));
        }
        Ok(facts)
    }

    /// Every author address: not another brand's, approved.
    pub async fn check_authors(&self, facts: &AccountFacts, authors: &Authors) -> Result<(), SubmitError> {
        for address in authors.all() {
            self.not_foreign(facts, address).await?;
            if !facts.rules.iter().any(|r| r.allows(address)) {
                return Err(SubmitError::FromNotApproved(address.to_string()));
            }
        }
        Ok(())
    }
}
