//! Rows as the rest of Herald sees them.

use herald_types::{
    AccountId, AccountKind, AccountName, AccountSettings, AccountStatus, ApiKeyId, DkimKeyId, DomainId, DomainName,
    EventId, EventKind, KeyScope, MessageId, SenderRule, SmtpCredentialId,
};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: AccountName,
    /// The master of a sub-account; `None` for a master.
    pub parent: Option<AccountRef>,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
    pub settings: AccountSettings,
}

/// Another account named by a row: its id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub id: AccountId,
    pub name: AccountName,
}

impl Account {
    pub fn kind(&self) -> AccountKind {
        if self.parent.is_some() {
            AccountKind::Sub
        } else {
            AccountKind::Master
        }
    }

    pub fn parent_id(&self) -> Option<&AccountId> {
        self.parent.as_ref().map(|p| &p.id)
    }

    pub fn is_active(&self) -> bool {
        self.status == AccountStatus::Active
    }

    /// The brand's master account: the parent of a sub, a master itself.
    /// Brand-wide suppressions live there.
    pub fn brand(&self) -> &AccountId {
        self.parent_id().unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: AccountName,
    pub parent: Option<AccountId>,
}

/// Which accounts to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountFilter {
    All,
    /// Master accounts only.
    Masters,
    /// The sub-accounts of one master.
    SubsOf(AccountId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub account: AccountId,
    /// The key's public first part, shown in listings and used for lookup.
    pub prefix: String,
    /// argon2id PHC string of the whole key.
    pub hash: String,
    pub scope: KeyScope,
    pub label: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub account: AccountId,
    pub prefix: String,
    pub hash: String,
    pub scope: KeyScope,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCredential {
    pub id: SmtpCredentialId,
    pub account: AccountId,
    pub username: String,
    /// argon2id PHC string of the password.
    pub hash: String,
    pub label: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewSmtpCredential {
    pub id: SmtpCredentialId,
    pub account: AccountId,
    pub username: String,
    pub hash: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedSender {
    pub account: AccountId,
    pub rule: SenderRule,
    pub created_at: OffsetDateTime,
}

/// Which events to list. Every field but `account` narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub account: Option<AccountId>,
    pub kinds: Vec<EventKind>,
    pub recipient: Option<String>,
    pub message_id: Option<MessageId>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Only events after this one (the previous page's last id).
    pub after: Option<EventId>,
    /// Only events with this bounce class (bounced and expired events).
    pub bounce_class: Option<herald_types::BounceClass>,
    /// Only events of messages with this tag.
    pub tag: Option<String>,
    /// Only events of messages with this metadata key and value.
    pub metadata: Option<(String, String)>,
    /// Only events of this stream.
    pub stream: Option<String>,
}

/// The DKIM signing algorithms Herald uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsaSha256 => "rsa-sha256",
            Self::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa-sha256" => Some(Self::RsaSha256),
            "ed25519-sha256" => Some(Self::Ed25519Sha256),
            _ => None,
        }
    }
}

/// Where a key is in its life: published but not yet seen in DNS, signing,
/// still published after a newer key took over, or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    Pending,
    Active,
    Retiring,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "active" => Some(Self::Active),
            "retiring" => Some(Self::Retiring),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub id: DkimKeyId,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// Sealed private key (see `herald-auth`); opaque to the store.
    pub private_key: String,
    /// The `p=` value of the DNS record.
    pub public_key: String,
    pub state: KeyState,
    pub created_at: OffsetDateTime,
    pub changed_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewDkimKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    pub private_key: String,
    pub public_key: String,
    pub state: KeyState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: DomainId,
    pub account: AccountId,
    pub name: DomainName,
    pub created_at: OffsetDateTime,
    pub verified_at: Option<OffsetDateTime>,
    /// Oldest first.
    pub keys: Vec<DkimKey>,
}

impl Domain {
    /// The selectors whose keys should be in DNS: every key not retired.
    pub fn published_selectors(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|k| k.state != KeyState::Retired)
            .map(|k| k.selector.clone())
            .collect()
    }
}

/// An address an account no longer sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub account: AccountId,
    /// Lower-case: the key lookups compare with.
    pub address: String,
    /// As it was given: the local part's case kept, the domain lower-cased.
    pub shown: String,
    /// unsubscribe, complaint, hard_bounce, soft_bounces, manual or import.
    pub reason: String,
    /// The event that caused it, if one did.
    pub source_event: Option<EventId>,
    /// Kept for every account of the brand (the entry belongs to the brand's
    /// master account): complaints and unsubscribes.
    pub brand: bool,
    pub created_at: OffsetDateTime,
}

/// An entry to add to a suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuppression {
    /// The account whose list it joins: for a brand-wide entry, the brand's
    /// master account.
    pub account: AccountId,
    /// As given; the store keys it lower-cased and keeps this form (its
    /// domain lower-cased) to show.
    pub address: String,
    pub reason: String,
    pub source_event: Option<EventId>,
    pub brand: bool,
}

/// Which entries of a list to show, in address order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionFilter {
    /// Entries whose address contains this (case-insensitive).
    pub search: Option<String>,
    pub reason: Option<String>,
    /// Entries after this address (the previous page's last).
    pub after: Option<String>,
}

/// The state of an idempotency key when a request claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free: this request acts and then completes it.
    Claimed,
    /// Another request with this key is still being handled.
    InProgress { fingerprint: String },
    /// A request with this key was answered.
    Done {
        fingerprint: String,
        status: u16,
        body: String,
    },
}

/// What the first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub account: Account,
    pub key: ApiKey,
}

/// Whether a webhook is posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookStatus {
    Active,
    /// Failed for too long, or turned off; nothing is posted until enabled.
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, herald_types::InvalidValue> {
        match s {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(herald_types::InvalidValue::new(
                "webhook status",
                s,
                "active or disabled",
            )),
        }
    }
}

/// A postback URL of an account and how far it has been served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: herald_types::WebhookId,
    pub account: AccountId,
    pub url: String,
    /// The event types posted; empty: all.
    pub kinds: Vec<EventKind>,
    /// 1: each event alone (a JSON object); more: up to this many per post
    /// (a JSON array).
    pub batch_size: u32,
    /// Signs each post (`Herald-Signature`).
    pub secret: String,
    pub status: WebhookStatus,
    /// The position (in storage order) of the last event posted.
    pub cursor: i64,
    /// Since when posts have been failing, if they are.
    pub failing_since: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Webhook {
    /// The events a webhook is owed (with `EventStore::page_events` after
    /// its cursor): its account's, of its kinds.
    pub fn owed(&self) -> EventFilter {
        EventFilter {
            account: Some(self.account.clone()),
            kinds: self.kinds.clone(),
            ..EventFilter::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub account: AccountId,
    pub url: String,
    pub kinds: Vec<EventKind>,
    pub batch_size: u32,
    pub secret: String,
}

/// The counters of the hourly rollups, in the order of [`Counts`].
pub const COUNTERS: [&str; 15] = [
    "accepted",
    "delivered",
    "deferred",
    "bounced_hard",
    "bounced_soft",
    "dropped",
    "expired",
    "complained",
    "unsubscribed",
    "opened",
    "opened_unique",
    "opened_machine",
    "clicked",
    "clicked_unique",
    "clicked_machine",
];

/// Counts of [`COUNTERS`], by position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [i64; COUNTERS.len()]);

impl Counts {
    /// The count of a counter by name (0 for an unknown name).
    pub fn get(&self, name: &str) -> i64 {
        COUNTERS.iter().position(|c| *c == name).map_or(0, |i| self.0[i])
    }

    pub fn add(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Hard and soft bounces.
    pub fn bounced(&self) -> i64 {
        self.get("bounced_hard") + self.get("bounced_soft")
    }

    /// Recipients whose delivery ended: delivered, bounced or expired.
    pub fn ended(&self) -> i64 {
        self.get("delivered") + self.bounced() + self.get("expired")
    }

    /// The rates a sender watches, each over its base; absent when the base
    /// is 0: delivery and bounce rates of the deliveries that ended;
    /// complaint, open, click (unique human ones) and unsubscribe rates of
    /// the delivered; acceptance rate of every attempt (deferrals included).
    pub fn rates(&self) -> Vec<(&'static str, f64)> {
        let delivered = self.get("delivered");
        let attempted = self.ended() + self.get("deferred");
        [
            ("delivery_rate", delivered, self.ended()),
            ("bounce_rate", self.bounced(), self.ended()),
            ("complaint_rate", self.get("complained"), delivered),
            ("open_rate", self.get("opened_unique"), delivered),
            ("click_rate", self.get("clicked_unique"), delivered),
            ("unsubscribe_rate", self.get("unsubscribed"), delivered),
            ("acceptance_rate", delivered, attempted),
        ]
        .into_iter()
        .filter(|(_, _, base)| *base > 0)
        // Counts stay far below 2^52.
        .map(|(name, n, base)| {
            #[allow(clippy::cast_precision_loss)]
            (name, n as f64 / base as f64)
        })
        .collect()
    }

    /// One of [`Counts::rates`] by name.
    pub fn rate(&self, name: &str) -> Option<f64> {
        self.rates().into_iter().find(|(n, _)| *n == name).map(|(_, r)| r)
    }
}

/// Periods of a stats answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsPeriod {
    Hour,
    Day,
}

/// What a stats answer is broken down by, beside the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsGroup {
    /// The account (a master's own and each sub's).
    Account,
    Stream,
    SenderDomain,
    /// The address Herald sent from.
    SourceIp,
    ReceivingDomain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub accounts: Vec<AccountId>,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub period: StatsPeriod,
    pub group: Option<StatsGroup>,
}

/// One period (and group) of a stats answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub period: OffsetDateTime,
    /// The group's value (an account id, a domain, an IP); empty without a
    /// group, or where the events had none.
    pub group: String,
    pub counts: Counts,
}
