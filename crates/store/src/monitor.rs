//! What the deliverability center watches and what it told accounts:
//! blocklist listings (one row per listing, from the check that found it
//! to the one that found it gone), the targets each account is concerned
//! by (rewritten by each scheduled check), and alerts (one open row per
//! account and condition).

use async_trait::async_trait;
use herald_types::{AccountId, AlertId};
use time::OffsetDateTime;

use crate::StoreResult;

/// A listing as a check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenListing {
    /// The address or domain listed.
    pub target: String,
    /// `ip` or `domain`.
    pub kind: String,
    /// The list's zone.
    pub list: String,
    /// The list's name for people.
    pub name: String,
    pub codes: Vec<String>,
    pub reason: String,
    pub delist_url: Option<String>,
    /// Points the listing takes off a reputation score.
    pub weight: u32,
}

/// A stored listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub id: i64,
    pub seen: SeenListing,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
    pub last_seen_at: OffsetDateTime,
}

/// Which listings to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingFilter {
    /// Only these targets (`None`: every target).
    pub targets: Option<Vec<String>>,
    /// Only listings that have not ended.
    pub active_only: bool,
    /// Only listings that ended after this (or have not ended).
    pub since: Option<OffsetDateTime>,
}

/// A target an account is concerned by, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonitorTarget {
    pub account: AccountId,
    /// The address or domain checked.
    pub target: String,
    /// `sending_ip`, `spf:<domain>`, `sending_domain`, `return_path`,
    /// `tracking`.
    pub origin: String,
}

/// A new condition to tell an account about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub account: AccountId,
    pub kind: String,
    /// The condition: one open alert per account and key.
    pub key: String,
    pub message: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: AlertId,
    pub account: AccountId,
    pub kind: String,
    pub key: String,
    pub message: String,
    pub opened_at: OffsetDateTime,
    pub notified_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    pub acknowledged_at: Option<OffsetDateTime>,
}

/// What [`MonitorStore::open_alert`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOpened {
    /// No open alert had the key: this one is new.
    New(Alert),
    /// An open alert already has the key.
    Existing(Alert),
}

/// Which alerts to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only these accounts' (`None`: every account's).
    pub accounts: Option<Vec<AccountId>>,
    /// Only open ones (`Some(false)`: only resolved ones).
    pub open: Option<bool>,
    pub kind: Option<String>,
    /// Opened at or after.
    pub since: Option<OffsetDateTime>,
}

#[async_trait]
pub trait MonitorStore: Send + Sync {
    /// Records that a check saw `seen` listed at `at`: a new listing when
    /// none of this target and list is open (true), else the open one's
    /// last sighting, codes and reason are updated (false).
    async fn listing_seen(&self, seen: &SeenListing, at: OffsetDateTime) -> StoreResult<bool>;

    /// Ends the open listing of `target` on `list`; whether one was open.
    async fn listing_ended(&self, target: &str, list: &str, at: OffsetDateTime) -> StoreResult<bool>;

    /// Listings, newest first, at most `limit`.
    async fn listings(&self, filter: &ListingFilter, limit: u32) -> StoreResult<Vec<Listing>>;

    /// Replaces every account's targets with `targets`.
    async fn replace_monitor_targets(&self, targets: &[MonitorTarget]) -> StoreResult<()>;

    /// The targets of these accounts (`None`: of all).
    async fn monitor_targets(&self, accounts: Option<&[AccountId]>) -> StoreResult<Vec<MonitorTarget>>;

    /// Opens an alert unless one with its account and key is open (even
    /// when several nodes try at once: one wins, the others see it).
    async fn open_alert(&self, new: &NewAlert, at: OffsetDateTime) -> StoreResult<AlertOpened>;

    /// Notes that an open alert was notified again at `at`, with the
    /// condition's current message, unless another node did since
    /// `previous` (its `notified_at` as read): whether this call did.
    async fn alert_notified(
        &self,
        id: &AlertId,
        message: &str,
        previous: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Resolves the open alert of `account` with `key`; it, if one was open.
    async fn resolve_alert(&self, account: &AccountId, key: &str, at: OffsetDateTime) -> StoreResult<Option<Alert>>;

    /// Marks an alert of one of `accounts` acknowledged (the first time
    /// only); it, or `None` when no such alert is theirs.
    async fn acknowledge_alert(
        &self,
        accounts: &[AccountId],
        id: &AlertId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<Alert>>;

    /// Alerts, newest first, at most `limit`.
    async fn list_alerts(&self, filter: &AlertFilter, limit: u32) -> StoreResult<Vec<Alert>>;
}
