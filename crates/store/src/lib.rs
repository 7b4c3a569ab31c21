//! Herald's storage contract: traits and errors, no SQL.
//!
//! Everything Herald keeps beyond the spool — accounts, credentials, approved
//! senders, events, suppressions, stats and DMARC reports — goes
//! through the traits here. Backends live elsewhere (`herald-store-sql` has
//! SQLite and PostgreSQL) and only the binary picks one, so every service is
//! written and unit-tested against `Arc<dyn Store>`.
//!
//! Contract common to every method: calls are safe from many tasks at once;
//! each call is one transaction (it happens entirely or not at all); an
//! `Err(StoreError::Unavailable)` means nothing was written and the caller may
//! retry later. Secrets never reach the store in clear: it holds argon2 hashes
//! and public prefixes only.

pub mod dmarc;
mod error;
mod model;
pub mod monitor;
pub mod retention;
pub mod stats;
mod timed;
pub mod users;

use async_trait::async_trait;
use herald_types::{
    AccountId, AccountName, AccountSettings, AccountStatus, ApiKeyId, DkimKeyId, DomainId, DomainName, Event,
    MessageId, SenderRule, SmtpCredentialId,
};

pub use dmarc::{
    BrokenReport, NewBrokenReport, NewReport, ReportFilter, ReportKind, ReportStore, Stored, StoredReport,
};
pub use error::{StoreError, StoreResult};
pub use model::{
    Account, AccountFilter, AccountRef, ApiKey, ApprovedSender, Bootstrap, COUNTERS, Counts, DkimAlgorithm, DkimKey,
    Domain, EventFilter, IdempotencyClaim, KeyState, NewAccount, NewApiKey, NewDkimKey, NewSmtpCredential,
    NewSuppression, NewWebhook, SmtpCredential, StatsGroup, StatsPeriod, StatsQuery, StatsRow, Suppression,
    SuppressionFilter, Webhook, WebhookStatus,
};
pub use monitor::{
    Alert, AlertFilter, AlertOpened, Listing, ListingFilter, MonitorStore, MonitorTarget, NewAlert, SeenListing,
};
pub use retention::{Prunable, RetentionStore};
pub use timed::timed;
pub use users::{NewUser, Session, User, UserStore};

/// Accounts, master and sub.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account. `Conflict` if the name is taken; `NotFound` if the
    /// parent does not exist. The store does not judge whether the parent may
    /// have subs: that rule belongs to the caller.
    async fn create_account(&self, new: NewAccount) -> StoreResult<Account>;

    async fn account_by_id(&self, id: &AccountId) -> StoreResult<Option<Account>>;

    async fn account_by_name(&self, name: &AccountName) -> StoreResult<Option<Account>>;

    /// Accounts in name order.
    async fn list_accounts(&self, filter: AccountFilter) -> StoreResult<Vec<Account>>;

    /// `NotFound` if the account does not exist.
    async fn set_account_status(&self, id: &AccountId, status: AccountStatus) -> StoreResult<()>;

    /// Replaces the account's settings. `NotFound` if it does not exist.
    async fn set_account_settings(&self, id: &AccountId, settings: &AccountSettings) -> StoreResult<()>;

    /// Detaches a sub from its master, making it a master. `NotFound` if the
    /// account does not exist.
    async fn promote_account(&self, id: &AccountId) -> StoreResult<()>;

    /// Deletes an account with its keys, credentials and senders. `Conflict`
    /// while it still has sub-accounts; `NotFound` if it does not exist.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<()>;
}

/// API keys and SMTP credentials: public identifiers and hashes (keyed
/// HMAC for API keys, argon2 for passwords).
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// `Conflict` if the prefix is taken (a collision of random prefixes: the
    /// caller draws a new key); `NotFound` if the account does not exist.
    async fn insert_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey>;

    /// The key with this public prefix, revoked or not. One indexed lookup:
    /// this is on the path of every API request.
    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKey>>;

    /// The account's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, account: &AccountId) -> StoreResult<Vec<ApiKey>>;

    /// Revokes a key of this account. `NotFound` if the account has no such
    /// key (so a key id of another account is never revealed); revoking a
    /// revoked key succeeds and keeps the first revocation time.
    async fn revoke_api_key(&self, account: &AccountId, id: &ApiKeyId) -> StoreResult<()>;

    /// Replaces a key's stored hash (an old scheme's, on its first use
    /// under a newer one). `NotFound` if there is no such key.
    async fn set_api_key_hash(&self, id: &ApiKeyId, hash: &str) -> StoreResult<()>;

    /// `Conflict` if the username is taken; `NotFound` if the account does not exist.
    async fn insert_smtp_credential(&self, new: NewSmtpCredential) -> StoreResult<SmtpCredential>;

    /// The credential with this username, revoked or not.
    async fn smtp_credential_by_username(&self, username: &str) -> StoreResult<Option<SmtpCredential>>;

    async fn list_smtp_credentials(&self, account: &AccountId) -> StoreResult<Vec<SmtpCredential>>;

    /// Same contract as [`CredentialStore::revoke_api_key`].
    async fn revoke_smtp_credential(&self, account: &AccountId, id: &SmtpCredentialId) -> StoreResult<()>;
}

/// Approved senders per account.
#[async_trait]
pub trait SenderStore: Send + Sync {
    /// `Conflict` if the account already has this rule.
    async fn add_sender(&self, account: &AccountId, rule: &SenderRule) -> StoreResult<ApprovedSender>;

    /// The account's rules in the order they were added.
    async fn list_senders(&self, account: &AccountId) -> StoreResult<Vec<ApprovedSender>>;

    /// `NotFound` if the account has no such rule.
    async fn remove_sender(&self, account: &AccountId, rule: &SenderRule) -> StoreResult<()>;
}

/// Events, written in batches by the event pipeline and read by the API.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Inserts a batch in one transaction. An event whose id is already
    /// stored is skipped, so a batch retried after an unclear failure never
    /// doubles anything.
    async fn insert_events(&self, events: &[Event]) -> StoreResult<()>;

    /// Events of one account matching `filter`, oldest first, after the
    /// cursor, at most `limit`. Pages stay stable while events arrive: new
    /// events only ever come after the last page.
    async fn list_events(&self, filter: &EventFilter, limit: u32) -> StoreResult<Vec<Event>>;

    /// Events matching `filter` (its `after` ignored) stored after
    /// position `after`, in storage order, with their positions. A cursor
    /// on positions never skips an event stored after a page was read.
    async fn page_events(&self, filter: &EventFilter, after: i64, limit: u32) -> StoreResult<Vec<(i64, Event)>>;

    /// How many events [`EventStore::page_events`] would return without a
    /// limit, counted up to `cap` (a webhook's backlog, for metrics).
    async fn count_events_after(&self, filter: &EventFilter, after: i64, cap: u32) -> StoreResult<u64>;
}

/// Sending domains and their DKIM keys.
#[async_trait]
pub trait DomainStore: Send + Sync {
    /// Creates a domain with its first keys. `Conflict` if any account has
    /// the domain already; `NotFound` if the account does not exist.
    async fn create_domain(&self, account: &AccountId, name: &DomainName, keys: Vec<NewDkimKey>)
    -> StoreResult<Domain>;

    /// A domain by name, with its keys, whichever account has it.
    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>>;

    /// The account's domains, by name, with their keys.
    async fn list_domains(&self, account: &AccountId) -> StoreResult<Vec<Domain>>;

    /// Deletes a domain of this account with its keys. `NotFound` if the
    /// account has no such domain.
    async fn delete_domain(&self, account: &AccountId, name: &DomainName) -> StoreResult<()>;

    /// Adds keys to a domain (a rotation). `Conflict` on a selector in use.
    async fn add_dkim_keys(&self, domain: &DomainId, keys: Vec<NewDkimKey>) -> StoreResult<()>;

    /// Sets the states of several keys of one domain in one transaction, so
    /// a switch (new keys active, old ones retiring) is never half done.
    async fn set_key_states(&self, domain: &DomainId, states: &[(DkimKeyId, KeyState)]) -> StoreResult<()>;

    /// Records the last time every record verified (`None`: it did not).
    async fn set_domain_verified(&self, domain: &DomainId, at: Option<time::OffsetDateTime>) -> StoreResult<()>;
}

/// Suppressed addresses per account; brand-wide entries live on the
/// brand's master account and count for all its accounts.
#[async_trait]
pub trait SuppressionStore: Send + Sync {
    /// Adds an entry (address compared lower-case). An address already on
    /// that account's list keeps its first entry, except that a brand-wide
    /// entry replaces an account-only one; returns whether this call added
    /// or widened it.
    async fn suppress(&self, entry: &NewSuppression) -> StoreResult<bool>;

    /// Adds many entries in one transaction (an import); returns how many
    /// were new.
    async fn suppress_many(&self, entries: &[NewSuppression]) -> StoreResult<u64>;

    /// What stops mail from `account` to any of `addresses`: the account's
    /// own entries and, when `brand` names its brand's master account, that
    /// account's brand-wide entries. One query, for a message's recipients.
    async fn suppressed(
        &self,
        account: &AccountId,
        brand: Option<&AccountId>,
        addresses: &[String],
    ) -> StoreResult<Vec<Suppression>>;

    /// One page of an account's list, by address.
    async fn list_suppressions(
        &self,
        account: &AccountId,
        filter: &SuppressionFilter,
        limit: u32,
    ) -> StoreResult<Vec<Suppression>>;

    /// Removes an address from an account's list; whether it was there.
    async fn remove_suppression(&self, account: &AccountId, address: &str) -> StoreResult<bool>;
}

/// What a bounce that comes back needs to find its message.
#[async_trait]
pub trait MessageIndexStore: Send + Sync {
    /// The messages that carried this Message-ID header (most recent first):
    /// an `accepted` event with `header_id` records it.
    async fn messages_by_header_id(&self, header_id: &str) -> StoreResult<Vec<(MessageId, AccountId)>>;

    /// The recipient at `index` of a message's queued recipients (the VERP
    /// token's index), with the account, from its `accepted` events.
    async fn recipient_at(&self, message: &MessageId, index: u32) -> StoreResult<Option<(AccountId, String)>>;

    /// How many events match (for bounce thresholds).
    async fn count_events(&self, filter: &EventFilter) -> StoreResult<u64>;
}

/// Answers remembered under `Idempotency-Key`s, so a retried request
/// returns the first answer instead of acting twice.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with this fingerprint. A key made before
    /// `expired_before` is forgotten first. Exactly one of several
    /// concurrent claims of a free key wins.
    async fn claim_idempotency(
        &self,
        account: &AccountId,
        key: &str,
        fingerprint: &str,
        expired_before: time::OffsetDateTime,
    ) -> StoreResult<IdempotencyClaim>;

    /// Records the answer for a claimed key.
    async fn complete_idempotency(&self, account: &AccountId, key: &str, status: u16, body: &str) -> StoreResult<()>;

    /// Gives a claimed key up (the request failed before acting).
    async fn release_idempotency(&self, account: &AccountId, key: &str) -> StoreResult<()>;

    /// Forgets every key made before `before`; returns how many.
    async fn purge_idempotency(&self, before: time::OffsetDateTime) -> StoreResult<u64>;
}

/// Postback URLs and the events they are owed. Each webhook keeps a cursor
/// into the events in storage order, so what it is owed survives restarts
/// without a copy of each event.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates a webhook owed the events stored from now on.
    async fn create_webhook(&self, new: &NewWebhook) -> StoreResult<Webhook>;

    /// An account's webhooks, or every webhook (`None`), by creation.
    async fn list_webhooks(&self, account: Option<&AccountId>) -> StoreResult<Vec<Webhook>>;

    async fn webhook(&self, id: &herald_types::WebhookId) -> StoreResult<Option<Webhook>>;

    /// Whether it existed.
    async fn delete_webhook(&self, id: &herald_types::WebhookId) -> StoreResult<bool>;

    /// Records a successful post of the events after `from` up to `to`
    /// and clears the failure, if the webhook's cursor is still `from`;
    /// `false` when it moved meanwhile (a re-send rewound it).
    async fn webhook_delivered(&self, id: &herald_types::WebhookId, from: i64, to: i64) -> StoreResult<bool>;

    /// Moves a webhook's cursor back to `to` (never forward), so every
    /// event stored after it is posted again; whether it moved.
    async fn rewind_webhook(&self, id: &herald_types::WebhookId, to: i64) -> StoreResult<bool>;

    /// Records a post (delivered or not); the last
    /// [`WEBHOOK_ATTEMPTS_KEPT`] of each webhook are kept.
    async fn record_webhook_attempt(&self, attempt: &NewWebhookAttempt) -> StoreResult<()>;

    /// A webhook's recorded posts, newest first.
    async fn webhook_attempts(&self, id: &herald_types::WebhookId, limit: u32) -> StoreResult<Vec<WebhookAttempt>>;

    /// Records a failed post: the first failure's time is kept.
    async fn webhook_failed(
        &self,
        id: &herald_types::WebhookId,
        at: time::OffsetDateTime,
        error: &str,
    ) -> StoreResult<()>;

    /// Enables (clearing the failure) or disables a webhook.
    async fn set_webhook_status(&self, id: &herald_types::WebhookId, status: WebhookStatus) -> StoreResult<()>;
}

/// The posts kept per webhook in its delivery log.
pub const WEBHOOK_ATTEMPTS_KEPT: i64 = 100;

/// A post to a webhook, as it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookAttempt {
    pub webhook: herald_types::WebhookId,
    pub at: time::OffsetDateTime,
    /// The storage positions of the first and last event posted.
    pub first: i64,
    pub last: i64,
    pub events: u32,
    pub delivered: bool,
    /// The class of the failure (never the target's text).
    pub error: Option<String>,
    pub millis: u32,
}

/// A recorded post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub id: i64,
    pub attempt: NewWebhookAttempt,
}

/// Hourly rollups of the events, kept by `insert_events` in the same
/// transaction (see [`COUNTERS`]).
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// The counts of `query.accounts` per period (and group), oldest first.
    async fn stats(&self, query: &StatsQuery) -> StoreResult<Vec<StatsRow>>;
}

/// The whole store, as services hold it: `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    AccountStore
    + CredentialStore
    + SenderStore
    + EventStore
    + DomainStore
    + SuppressionStore
    + IdempotencyStore
    + MessageIndexStore
    + WebhookStore
    + StatsStore
    + ReportStore
    + RetentionStore
    + MonitorStore
    + UserStore
{
    /// "sqlite" or "postgres", for logs and `/healthz`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip; `Unavailable` when the database cannot be reached.
    async fn ping(&self) -> StoreResult<()>;

    /// First-start setup, exactly once per store even with several nodes
    /// starting together: if no bootstrap happened yet, creates the master
    /// account (or reuses a master of that name) and inserts the admin key,
    /// and returns them; otherwise returns `None` and writes nothing.
    async fn bootstrap(&self, account: NewAccount, key: NewApiKey) -> StoreResult<Option<Bootstrap>>;
}
