//! The HTTP API's payloads: what clients send and receive, with their
//! OpenAPI schemas. Shared by the server, the CLI's `--json` output and the
//! tests, so all three agree on every field name by construction.
//!
//! L0: serde and schema derives only. Times are RFC 3339 in UTC with
//! milliseconds. Secrets appear only in the `Created*` answers, which exist
//! exactly once per secret.

pub mod checks;
pub mod dmarc;
pub mod monitor;
pub mod patterns;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `unauthorized`, `account_suspended`,
    /// `forbidden`, `not_found`, `conflict`, `invalid_request`,
    /// `unavailable`, `internal`.
    #[schema(example = "not_found")]
    pub code: String,
    /// For humans; may change between versions.
    #[schema(example = "account not found")]
    pub message: String,
    /// The request field at fault, for validation errors: `to[2].email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "to[2].email")]
    pub field: Option<String>,
}

/// A list answer. Lists that can grow without bound will add a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Master,
    Sub,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Suspended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Its own account, and a master's subs through `Herald-Account`.
    Account,
    /// The operator: every account; creates master accounts.
    Admin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    #[schema(example = "acc_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    #[schema(example = "acme-eu")]
    pub name: String,
    pub kind: AccountKind,
    /// The master's name, for a sub-account.
    #[schema(example = "acme")]
    pub parent: Option<String>,
    pub status: AccountStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub settings: AccountSettings,
}

/// What an account chose for its mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AccountSettings {
    /// Add an open pixel to the HTML of bulk mail.
    pub track_opens: bool,
    /// Send links in the HTML of bulk mail through the click tracker.
    pub track_clicks: bool,
    /// Hard bounces of an address within 30 days that suppress it.
    pub hard_bounce_threshold: u32,
    /// Soft bounces (deferrals that ended, expiries) within 24 hours that
    /// suppress an address.
    pub soft_bounce_threshold: u32,
    /// Where people's replies to bulk mail are forwarded.
    pub reply_forward_to: Option<String>,
    /// Where people's replies to bulk mail are posted as JSON.
    pub reply_url: Option<String>,
    /// An `alert` event when the last 24 hours' bounce rate is over this
    /// percentage (default 2).
    pub bounce_alert_percent: f64,
    /// An `alert` event when the last 24 hours' complaint rate is over this
    /// percentage (default 0.05).
    pub complaint_alert_percent: f64,
    /// Recipients a UTC day the account may send (absent: no quota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_quota: Option<u32>,
    /// Recipients a minute (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    /// The spam score (spamd) over which its mail is held (absent: the
    /// server's `[spamd] threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam_threshold: Option<f64>,
    /// Where its alerts are mailed, beside the `alert` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_email: Option<String>,
    /// Streams that send in a domain of their own: stream name to sending
    /// domain. Their mail is DKIM-signed and bounces in that domain.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stream_domains: std::collections::BTreeMap<String, String>,
}

/// A change of settings; fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountSettings {
    #[serde(default)]
    pub track_opens: Option<bool>,
    #[serde(default)]
    pub track_clicks: Option<bool>,
    /// 1 or more.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub hard_bounce_threshold: Option<u32>,
    /// 1 or more.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub soft_bounce_threshold: Option<u32>,
    /// An address; `""` stops forwarding.
    #[serde(default)]
    #[schema(value_type = Option<patterns::EmailAddressOrEmpty>)]
    pub reply_forward_to: Option<String>,
    /// An http(s) URL whose host is public; `""` stops posting.
    #[serde(default)]
    #[schema(value_type = Option<patterns::HttpUrlOrEmpty>)]
    pub reply_url: Option<String>,
    /// A percentage, 0.01 to 100.
    #[serde(default)]
    #[schema(minimum = 0.01, maximum = 100)]
    pub bounce_alert_percent: Option<f64>,
    /// A percentage, 0.01 to 100.
    #[serde(default)]
    #[schema(minimum = 0.01, maximum = 100)]
    pub complaint_alert_percent: Option<f64>,
    /// Recipients a UTC day; 0 removes the quota. Only the account's master
    /// or an admin key may set it (403 for the account's own key).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    pub daily_quota: Option<u32>,
    /// Recipients a minute; 0 removes the limit. Set like the quota.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    pub rate_per_minute: Option<u32>,
    /// The spam score over which the account's mail is held, 1 to 1000.
    /// Set like the quota (403 for the account's own key).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub spam_threshold: Option<f64>,
    /// Where alerts are mailed (an address); `""` stops mailing them.
    #[serde(default)]
    #[schema(value_type = Option<patterns::EmailAddressOrEmpty>)]
    pub alert_email: Option<String>,
    /// Streams' own sending domains, merged into the current ones: stream
    /// name (1–32 of a-z, 0-9, '-', '_') to a domain the brand registered;
    /// `""` takes a stream's domain away. A stream with a domain writes
    /// From that domain (or a parent or subdomain), is DKIM-signed and
    /// bounces in it, and no other stream writes from it. At most 32.
    #[serde(default)]
    pub stream_domains: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// 1–63 of a-z, 0-9, '.', '_', '-'; unique across Herald.
    #[schema(value_type = patterns::AccountName)]
    pub name: String,
    /// The master of the new account. A master's key always creates its own
    /// subs (omit it, or give its own name); an admin key creates a master
    /// account when it is omitted.
    #[serde(default)]
    #[schema(value_type = Option<patterns::AccountName>)]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    #[schema(example = "key_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    /// The key's public start, enough to recognise it; never the key.
    #[schema(example = "hrld_k3j9x0p2qa")]
    pub prefix: String,
    pub scope: KeyScope,
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[serde(default)]
    pub label: Option<String>,
    /// `admin` only when the caller's key is an admin key. Default `account`.
    #[serde(default)]
    pub scope: Option<KeyScope>,
}

/// A new API key. `key` is shown this once and cannot be recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: String,
    #[serde(flatten)]
    pub record: ApiKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmtpCredential {
    #[schema(example = "cred_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    #[schema(example = "acme-eu-x7k2m9qa")]
    pub username: String,
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSmtpCredential {
    #[serde(default)]
    pub label: Option<String>,
}

/// A new SMTP credential. `password` is shown this once and cannot be recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedSmtpCredential {
    pub password: String,
    #[serde(flatten)]
    pub record: SmtpCredential,
}

/// What a test post to a webhook did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookTest {
    /// The URL answered 2xx.
    pub delivered: bool,
    /// Why not: the class of the failure (`HTTP 500`, `connection failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the post took.
    pub millis: u32,
}

/// A post to a webhook, from its delivery log (the last 100 are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Events in the post.
    pub events: u32,
    pub delivered: bool,
    /// The class of the failure (`HTTP 5xx`, `timeout`, …), never the
    /// receiver's text.
    pub error: Option<String>,
    /// How long the post took.
    pub millis: u32,
}

/// A re-send: the webhook posts again every event after `after` (storage
/// position), from its next round on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookResend {
    pub webhook: String,
    pub after: i64,
    /// False when the webhook had not posted that far yet (nothing moved).
    pub moved: bool,
    /// The webhook's status: a disabled one posts nothing until enabled.
    pub status: String,
}

/// A dashboard user of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    #[schema(example = "usr_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    #[schema(example = "ops@acme.com")]
    pub email: String,
    /// The account the user belongs to.
    pub account: String,
    /// Operator power: acts on any account, like an admin key.
    pub operator: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_login_at: Option<OffsetDateTime>,
    /// Sign-ins are refused until then (too many failures).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub locked_until: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = patterns::EmailAddress, example = "ops@acme.com")]
    pub email: String,
    /// 10 to 256 characters; without one Herald chooses one and returns it once.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
    /// Admin keys only.
    #[serde(default)]
    pub operator: bool,
}

/// A new user; `password` only when Herald chose it (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(flatten)]
    pub record: User,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sender {
    /// An exact address, or `@domain` for every address at that domain.
    #[schema(example = "@acme.com")]
    pub sender: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSender {
    /// An exact address, or `@domain` for every address at that domain.
    #[schema(value_type = patterns::SenderRule)]
    pub sender: String,
    /// Admin keys only: approve even though the brand has not verified the
    /// domain (logged). Without it, the brand must have registered and
    /// verified the domain or a parent of it.
    #[serde(default, rename = "override")]
    pub force: bool,
}

/// A remote server's answer and where in the dialogue it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmtpAnswer {
    #[schema(example = 550)]
    pub code: u16,
    #[schema(example = "5.1.1")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    #[schema(example = "user unknown")]
    pub text: String,
    /// connect, greeting, ehlo, starttls, mail, rcpt, data, dns or queue.
    #[schema(example = "rcpt")]
    pub phase: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bounce {
    /// `hard` (the address will never work) or `soft`.
    #[schema(example = "hard")]
    pub class: String,
    /// Sisimai's taxonomy: userunknown, mailboxfull, hostunknown, expired, …
    #[schema(example = "userunknown")]
    pub reason: String,
}

/// One event in a message's life; the same shape in webhooks and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    #[schema(example = "evt_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    /// accepted, delivered, deferred, bounced, dropped, expired, opened,
    /// clicked, complained or unsubscribed.
    #[serde(rename = "type")]
    #[schema(example = "bounced")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(example = "main")]
    pub account: String,
    #[schema(example = "transactional")]
    pub stream: String,
    #[schema(example = "msg_0190f0b8a1c27d3e8f00112233445566")]
    pub message_id: String,
    pub recipient: Option<String>,
    pub sender: Option<String>,
    pub source_ip: Option<String>,
    pub mx: Option<String>,
    pub smtp: Option<SmtpAnswer>,
    pub bounce: Option<Bounce>,
    /// Why a message was not sent to this recipient (`dropped`), such as
    /// `suppressed: unsubscribe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "suppressed: unsubscribe")]
    pub reason: Option<String>,
    /// The labels the sender gave the message.
    #[serde(default)]
    #[schema(example = json!(["welcome"]))]
    pub tags: Vec<String>,
    /// The key-value pairs the sender gave the message.
    #[serde(default)]
    #[schema(example = json!({"order": "1234"}))]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Opens and clicks: the reader's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Opens and clicks: the reader's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Opens and clicks: made by a machine (a privacy proxy or link scanner)
    /// rather than a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<bool>,
    /// Clicks: the link followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Opens and clicks: how many times this reader opened the message (or
    /// followed this link) within the coalescing window this event stands
    /// for; 1 for a single one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// `accepted` and `held`: the content's spam score from SpamAssassin's
    /// spamd, when Herald is configured to ask it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam: Option<SpamScore>,
}

/// What releasing or dropping a held message did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldOutcome {
    #[schema(example = "msg_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    /// The recipients released for delivery (or dropped).
    pub recipients: u32,
}

/// What SpamAssassin's spamd said of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpamScore {
    #[schema(example = 1000.0)]
    pub score: f64,
    /// The account's threshold: over it, the message is held.
    #[schema(example = 5.0)]
    pub threshold: f64,
    /// The rules that hit.
    #[schema(example = json!(["GTUBE", "MISSING_DATE"]))]
    pub rules: Vec<String>,
}

// Scores are finite numbers.
impl Eq for SpamScore {}

/// A page of events and the cursor for the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<Event>,
    /// Pass as `cursor` to get the events after this page. Present even when
    /// the page is short, so a client can poll for new events with it.
    pub next_cursor: Option<String>,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueuedRecipient {
    pub address: String,
    /// pending, delivered, bounced, expired or purged.
    pub status: String,
    pub attempts: u16,
    /// When the next attempt is due, while pending.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub next_attempt: Option<OffsetDateTime>,
}

/// A message in the delivery queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueuedMessage {
    pub id: String,
    /// The account's id.
    pub account: String,
    pub sender: String,
    pub size: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub recipients: Vec<QueuedRecipient>,
}

/// A delivery destination (a provider such as `google`, or a set of MX
/// hosts) and what Herald has learned from its answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueDestination {
    /// The queue's key: the provider and port, or the hosts and port.
    #[schema(example = "google:25")]
    pub key: String,
    /// The provider's name, when the destination has one.
    pub provider: Option<String>,
    /// The address Herald sends from (absent: the system's choice).
    pub source_ip: Option<String>,
    /// normal, backoff or suspended.
    #[schema(example = "backoff")]
    pub state: String,
    /// The response rule that backed it off or suspended it.
    pub rule: Option<String>,
    /// Until when it is paused.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// The share of its limits in force (1 normally; lowered by back-offs,
    /// climbing back as answers improve).
    pub rate_factor: f64,
    /// Jobs waiting for a connection.
    pub queued: u64,
    pub connections: u64,
    pub max_connections: u64,
    pub messages_per_minute: Option<u32>,
    /// Recipients since the server started.
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
    /// STARTTLS handshakes that failed (then sent in plain text, or not at
    /// all when TLS is required).
    pub tls_failures: u64,
}

/// A warming source address (or sending domain) and one provider: where
/// it stands in its plan today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WarmupState {
    /// `ip:192.0.2.10` or `domain:news.example.com`.
    pub key: String,
    pub pool: Option<String>,
    pub plan: String,
    /// The plan's day, 1 = the first.
    pub day: i64,
    /// The plan's length in days.
    pub days: u64,
    /// The provider (a destination's name, or its hosts); `*` before any mail.
    pub provider: String,
    pub daily_cap: u32,
    pub hourly_cap: u32,
    pub sent_today: u32,
    pub sent_this_hour: u32,
    /// What may still go today.
    pub headroom_today: u32,
}

/// A day's TLS-RPT counts (RFC 8460): per recipient domain with an
/// MTA-STS policy, the policy, sessions that succeeded and failed, and the
/// failures by result type and MX host — the `policies` of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TlsReportDay {
    #[schema(example = "2026-12-07")]
    pub day: String,
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<serde_json::Value>,
}

/// A DNS record a domain publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DnsRecord {
    /// spf, dkim, dmarc, return_path or tracking.
    pub kind: String,
    #[schema(example = "hrld20261123r._domainkey.acme.com")]
    pub name: String,
    /// TXT or CNAME.
    #[serde(rename = "type")]
    pub rtype: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DkimKey {
    #[schema(example = "hrld20261123r")]
    pub selector: String,
    /// rsa-sha256 or ed25519-sha256.
    pub algorithm: String,
    /// pending (published, not yet found in DNS), active (signing),
    /// retiring (replaced, still published) or retired.
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A sending domain, its keys and the records to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Domain {
    #[schema(example = "acme.com")]
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When every record was last found as expected.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub verified_at: Option<OffsetDateTime>,
    pub keys: Vec<DkimKey>,
    pub records: Vec<DnsRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    #[schema(value_type = patterns::DomainName)]
    pub name: String,
}

/// One record as found in DNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordCheck {
    pub record: DnsRecord,
    /// ok, missing or wrong.
    pub status: String,
    /// What was found instead, for a wrong record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DomainVerification {
    pub domain: Domain,
    /// Every record as expected.
    pub verified: bool,
    /// A rotation's new keys were found and now sign.
    pub switched: bool,
    pub checks: Vec<RecordCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the store does not answer.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_key_flattens_the_record_beside_the_secret() {
        let at = time::macros::datetime!(2026-11-23 08:15:26.123 UTC);
        let created = CreatedApiKey {
            key: "hrld_x_y".into(),
            record: ApiKey {
                id: "key_1".into(),
                prefix: "hrld_x".into(),
                scope: KeyScope::Admin,
                label: None,
                created_at: at,
                revoked_at: None,
            },
        };
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["key"], "hrld_x_y");
        assert_eq!(json["prefix"], "hrld_x");
        assert_eq!(json["scope"], "admin");
        assert_eq!(json["created_at"], "2026-11-23T08:15:26.123Z");
        assert!(json["revoked_at"].is_null());
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        let err = serde_json::from_str::<CreateAccount>(r#"{"name":"a","parnet":"b"}"#).unwrap_err();
        assert!(err.to_string().contains("parnet"), "{err}");
    }
}

/// An address, as `"jane@example.net"`, `"Jane Doe <jane@example.net>"` or
/// `{"email": "jane@example.net", "name": "Jane Doe"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MailboxInput {
    Text(String),
    Parts {
        email: String,
        #[serde(default)]
        name: Option<String>,
    },
}

/// A recipient. `substitutions` fill `{{key}}` in the subject and bodies of
/// this recipient's copy only; a message with any gets one copy per `to`
/// recipient, each addressed to that recipient alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecipientInput {
    Text(String),
    Parts {
        email: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        substitutions: std::collections::BTreeMap<String, String>,
    },
}

/// A file attached to the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub filename: String,
    /// Defaults to `application/octet-stream`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The file, base64-encoded.
    pub content: String,
}

/// A message to send: built from its parts, or given whole as `raw`. Its
/// schema ([`patterns`]) states the rules that tie the fields together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendMessage {
    /// The sender; an approved sender of the account. With `raw`, the
    /// envelope sender (the raw From header when omitted).
    pub from: Option<MailboxInput>,
    pub to: Vec<RecipientInput>,
    pub cc: Vec<RecipientInput>,
    /// Receive the message without appearing in it.
    pub bcc: Vec<RecipientInput>,
    pub reply_to: Option<MailboxInput>,
    pub subject: Option<String>,
    /// The text part; made from `html` when only that is given.
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<AttachmentInput>,
    /// Extra headers, such as `X-Campaign`.
    pub headers: std::collections::BTreeMap<String, String>,
    /// Labels that come back in every event of the message.
    pub tags: Vec<String>,
    /// Key-value pairs that come back in every event of the message.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// `transactional` (the default) or a bulk stream such as `newsletter`.
    pub stream: Option<String>,
    /// A complete RFC 5322 message, sent as given to `to`, `cc` and `bcc`
    /// (none of the other content fields may be set).
    pub raw: Option<String>,
}

/// Adds `T`'s schema, and those it refers to, to `schemas`.
fn add_schema<T: ToSchema>(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

impl utoipa::PartialSchema for MailboxInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        patterns::for_utoipa(patterns::mailbox_input())
    }
}

impl ToSchema for MailboxInput {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        add_schema::<patterns::MailboxText>(schemas);
        add_schema::<patterns::EmailAddress>(schemas);
    }
}

impl utoipa::PartialSchema for RecipientInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        patterns::for_utoipa(patterns::recipient_input())
    }
}

impl ToSchema for RecipientInput {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        add_schema::<patterns::MailboxText>(schemas);
        add_schema::<patterns::EmailAddress>(schemas);
    }
}

impl utoipa::PartialSchema for AttachmentInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        patterns::for_utoipa(patterns::attachment_input())
    }
}

impl ToSchema for AttachmentInput {}

/// The schema of a message to send (`SendMessage`), with the rules that tie
/// its fields together (see [`patterns::components`]).
impl utoipa::PartialSchema for SendMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        patterns::for_utoipa(patterns::send_message())
    }
}

impl ToSchema for SendMessage {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        add_schema::<MailboxInput>(schemas);
        add_schema::<RecipientInput>(schemas);
        add_schema::<AttachmentInput>(schemas);
        add_schema::<patterns::StreamName>(schemas);
        add_schema::<patterns::RawMessage>(schemas);
        add_schema::<patterns::Tag>(schemas);
    }
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecipientResult {
    #[schema(example = "jane@example.net")]
    pub email: String,
    /// `queued`; `dropped` (never sent, see `reason`); or `failed` (not
    /// stored, so not sent: send to this recipient again).
    #[schema(example = "queued")]
    pub status: String,
    /// The message that carries this recipient's copy.
    #[schema(example = "msg_0190f0b8a1c27d3e8f00112233445566")]
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "suppressed: unsubscribe")]
    pub reason: Option<String>,
}

/// The answer to a send: the message id and each recipient's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendResult {
    /// The message; with per-recipient substitutions, the first copy (each
    /// recipient names its own in `recipients`).
    #[schema(example = "msg_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    pub recipients: Vec<RecipientResult>,
    /// What to fix in the content (the message was sent all the same): no
    /// text part, no `<html>`/`<body>`, images without `alt`, HTML over
    /// 102 KB (Gmail clips it), links through URL shorteners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ContentWarning>,
}

/// One thing to fix in a sent message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContentWarning {
    /// `text_missing`, `html_no_html`, `html_no_body`, `image_no_alt`,
    /// `html_clipped` or `url_shortener`.
    #[schema(example = "image_no_alt")]
    pub code: String,
    #[schema(example = "2 images without alt text: readers who block images see nothing in their place")]
    pub message: String,
}

/// One recipient of a sent message: where it stands and how it got there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageRecipient {
    #[schema(example = "jane@example.net")]
    pub email: String,
    /// queued, deferred, delivered, bounced, dropped or expired.
    #[schema(example = "delivered")]
    pub status: String,
    /// Every event of this recipient, oldest first (opens and clicks too).
    pub events: Vec<Event>,
}

/// A sent message, as its events tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageState {
    #[schema(example = "msg_0190f0b8a1c27d3e8f00112233445566")]
    pub id: String,
    #[schema(example = "transactional")]
    pub stream: String,
    pub sender: Option<String>,
    pub tags: Vec<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub recipients: Vec<MessageRecipient>,
}

/// An address on a suppression list: mail to it is dropped, not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Suppression {
    pub address: String,
    /// unsubscribe, complaint, hard_bounce, soft_bounces, manual, import, or
    /// the reason an import named.
    pub reason: String,
    /// The event that caused it (a bounce, a complaint, an unsubscribe).
    pub source_event: Option<String>,
    /// Kept for every account of the brand (complaints, unsubscribes); the
    /// entry belongs to the brand's master account.
    pub brand: bool,
    /// The account whose list holds it.
    pub account: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A page of a suppression list, by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuppressionPage {
    pub data: Vec<Suppression>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppression {
    #[schema(value_type = patterns::EmailAddress)]
    pub address: String,
    /// `manual` when not given.
    #[serde(default)]
    #[schema(value_type = Option<patterns::SuppressionReason>)]
    pub reason: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportedSuppressions {
    /// Good lines, imported.
    pub rows: u64,
    /// Of them, addresses that were not on the list before.
    pub added: u64,
    /// Bad lines, skipped (none with `strict`: the file is refused).
    #[serde(default)]
    pub skipped: u64,
    /// The first 1,000 bad lines, each with its number and why.
    #[serde(default)]
    pub errors: Vec<ImportError>,
}

/// A line an import skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportError {
    /// Its number in the file, from 1.
    pub line: u64,
    pub reason: String,
}

/// A postback URL of the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event types posted; empty: all.
    pub events: Vec<String>,
    /// 1: each event alone, as a JSON object; more: up to this many per
    /// post, as a JSON array.
    pub batch_size: u32,
    /// `active` or `disabled` (failed for too long; enable it again).
    pub status: String,
    /// Since when posts have been failing, if they are.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Signs each post (`Herald-Signature`); shown only when created.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An http:// or https:// URL whose host is (or resolves to) a public
    /// address.
    #[schema(value_type = patterns::HttpUrl)]
    pub url: String,
    /// Event types to post; all when left out.
    #[serde(default)]
    #[schema(value_type = Vec<patterns::EventKind>)]
    pub events: Vec<String>,
    /// 1–1000, default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub batch_size: Option<u32>,
}

/// One period (and group) of stats: the counts and the rates made of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsRow {
    /// The period's start.
    #[serde(with = "time::serde::rfc3339")]
    pub period: OffsetDateTime,
    /// The group's value (account name, stream, domain or IP), when grouped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
    /// accepted, delivered, deferred, bounced_hard, bounced_soft, dropped,
    /// expired, complained, unsubscribed, opened, opened_unique,
    /// opened_machine, clicked, clicked_unique, clicked_machine.
    pub counts: std::collections::BTreeMap<String, i64>,
    /// delivery_rate (delivered of those that ended), bounce_rate,
    /// complaint_rate, open_rate and click_rate (unique human ones of the
    /// delivered), unsubscribe_rate, acceptance_rate (delivered of every
    /// attempt, deferrals included); absent when their base is 0.
    pub rates: std::collections::BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    pub by: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
    pub data: Vec<StatsRow>,
}

/// One thing that weighs on a reputation score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReputationReason {
    /// authentication, bounce_rate, complaint_rate, acceptance_rate,
    /// volume_steadiness, blocklists.
    pub factor: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Points taken off the 100.
    pub impact: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReputationScore {
    /// 0–100.
    pub score: u32,
    pub reasons: Vec<ReputationReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IpReputation {
    pub ip: String,
    #[serde(flatten)]
    pub reputation: ReputationScore,
}

/// The acting account's reputation over the last 7 days, and each of the
/// IPs it sent from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reputation {
    pub account: String,
    #[serde(flatten)]
    pub reputation: ReputationScore,
    pub ips: Vec<IpReputation>,
}
