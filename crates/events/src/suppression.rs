//! The suppression stage: keeps each account's list from what the events
//! say, so nobody has to clean lists by hand.
//!
//! - A hard bounce (the address does not exist) suppresses once the
//!   account's hard threshold is reached within 30 days (1 by default: at
//!   once).
//! - Soft bounces (a message that failed for good for a reason that may pass:
//!   mailbox full, blocked, expired in the queue) suppress once the soft
//!   threshold is reached within 24 hours (4 by default).
//! - A complaint suppresses for every account of the brand.
//!
//! Unsubscribes are suppressed where they are taken (the tracker), before
//! their event exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_store::{EventFilter, NewSuppression, Store, StoreResult};
use herald_types::{AccountId, AccountSettings, BounceClass, Event, EventKind};

use crate::Stage;

/// Hard bounces count within this window.
pub const HARD_WINDOW: time::Duration = time::Duration::days(30);
/// Soft bounces count within this window.
pub const SOFT_WINDOW: time::Duration = time::Duration::hours(24);
/// How long an account's settings are remembered.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// An account's thresholds and the brand its brand-wide entries go to.
#[derive(Clone)]
struct Facts {
    settings: AccountSettings,
    brand: AccountId,
}

pub struct Suppressor {
    store: Arc<dyn Store>,
    facts: Mutex<HashMap<AccountId, (Instant, Option<Facts>)>>,
}

impl std::fmt::Debug for Suppressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suppressor").finish_non_exhaustive()
    }
}

impl Suppressor {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            facts: Mutex::new(HashMap::new()),
        })
    }

    async fn facts(&self, account: &AccountId) -> StoreResult<Option<Facts>> {
        let cached = self
            .facts
            .lock()
            .ok()
            .and_then(|m| m.get(account).filter(|(at, _)| at.elapsed() < CACHE_TTL).cloned());
        if let Some((_, facts)) = cached {
            return Ok(facts);
        }
        let facts = self.store.account_by_id(account).await?.map(|a| Facts {
            settings: a.settings.clone(),
            brand: a.brand().clone(),
        });
        if let Ok(mut m) = self.facts.lock() {
            m.insert(account.clone(), (Instant::now(), facts.clone()));
        }
        Ok(facts)
    }

    /// How many bounces of `class` this account had to `recipient` within
    /// `window`, this one included.
    async fn bounces(
        &self,
        account: &AccountId,
        recipient: &str,
        class: BounceClass,
        window: time::Duration,
    ) -> StoreResult<u64> {
        let filter = EventFilter {
            account: Some(account.clone()),
            kinds: vec![EventKind::Bounced, EventKind::Expired],
            recipient: Some(recipient.to_owned()),
            since: Some(time::OffsetDateTime::now_utc() - window),
            bounce_class: Some(class),
            ..EventFilter::default()
        };
        self.store.count_events(&filter).await
    }

    /// The entry an event calls for, if any.
    async fn entry(&self, e: &Event) -> StoreResult<Option<NewSuppression>> {
        let Some(recipient) = e.recipient.as_deref() else {
            return Ok(None);
        };
        let wanted = match (e.kind, e.bounce.as_ref().map(|b| b.class)) {
            (EventKind::Bounced | EventKind::Expired, Some(class)) => Some(class),
            (EventKind::Complained, _) => None,
            _ => return Ok(None),
        };
        let Some(facts) = self.facts(&e.account).await? else {
            return Ok(None);
        };
        let entry = |account: &AccountId, reason: &str, brand: bool| NewSuppression {
            account: account.clone(),
            address: recipient.to_ascii_lowercase(),
            reason: reason.to_owned(),
            source_event: Some(e.id.clone()),
            brand,
        };
        Ok(match wanted {
            None => Some(entry(&facts.brand, "complaint", true)),
            Some(BounceClass::Hard) => {
                let threshold = u64::from(facts.settings.hard_bounce_threshold);
                (threshold <= 1
                    || self
                        .bounces(&e.account, recipient, BounceClass::Hard, HARD_WINDOW)
                        .await?
                        >= threshold)
                    .then(|| entry(&e.account, "hard_bounce", false))
            }
            Some(BounceClass::Soft) => {
                let threshold = u64::from(facts.settings.soft_bounce_threshold);
                (threshold <= 1
                    || self
                        .bounces(&e.account, recipient, BounceClass::Soft, SOFT_WINDOW)
                        .await?
                        >= threshold)
                    .then(|| entry(&e.account, "soft_bounces", false))
            }
        })
    }
}

#[async_trait]
impl Stage for Suppressor {
    /// Every suppression the batch calls for, or an error: the pipeline
    /// then tries the batch again (each entry is idempotent), so a store
    /// that fails for a while delays suppressions but never loses one.
    async fn stored(&self, batch: &[Event]) -> Result<(), String> {
        for e in batch {
            let Some(entry) = self.entry(e).await.map_err(|err| err.to_string())? else {
                continue;
            };
            if self.store.suppress(&entry).await.map_err(|err| err.to_string())? {
                metrics::counter!("herald_suppressions_total", "reason" => entry.reason.clone()).increment(1);
                tracing::info!(account = %entry.account, address = %entry.address, reason = %entry.reason,
                    event = %e.id, "address suppressed");
            }
        }
        Ok(())
    }
}
