//! What the deliverability center watches: blocklist answers and listings
//! (`GET /api/v1/checks/blocklists/{target}`, `GET /api/v1/blocklists`,
//! `herald check blocklists`, `herald blocklists`) and alerts
//! (`GET /api/v1/alerts`, `herald alerts`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// What one list said about one address or domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListStatus {
    /// The list names it (an answer the list documents as a listing).
    Listed,
    /// No record: not listed.
    Clean,
    /// No usable answer: a timeout, a SERVFAIL, or an answer the list
    /// documents as a refusal of the query (Spamhaus' 127.255.255.254 for
    /// queries through public resolvers, URIBL's 127.0.0.1), or one outside
    /// 127.0.0.0/8 (a resolver that rewrites NXDOMAIN).
    Error,
}

/// What kind of thing was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Ip,
    Network,
    Domain,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Network => "network",
            Self::Domain => "domain",
        }
    }
}

/// One list's answer for one address or domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListAnswer {
    /// The list's DNS zone.
    #[schema(example = "zen.spamhaus.org")]
    pub list: String,
    /// Its name for people.
    #[schema(example = "Spamhaus ZEN")]
    pub name: String,
    /// The address or domain asked about (for a network, one of its
    /// sampled addresses).
    #[schema(example = "192.0.2.10")]
    pub address: String,
    pub status: ListStatus,
    /// The A records of the answer.
    #[schema(example = json!(["127.0.0.2"]))]
    pub codes: Vec<String>,
    /// What each code means, as the list documents it.
    #[schema(example = json!(["SBL: a spam source or spam operation"]))]
    pub meanings: Vec<String>,
    /// The list's TXT record for a listing, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Where to look the listing up and ask for removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delist_url: Option<String>,
}

/// A live check of one target against the configured lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlocklistReport {
    #[schema(example = "192.0.2.10")]
    pub target: String,
    pub kind: TargetKind,
    /// The addresses or domains asked about: the target itself, or for a
    /// network a sample (its first and last addresses, and one address of
    /// each /24 — /64 for IPv6 — up to 16).
    pub checked: Vec<String>,
    /// Some list names it.
    pub listed: bool,
    /// Answers that could not be read; the check is incomplete.
    pub errors: u32,
    pub answers: Vec<ListAnswer>,
    /// Listings recorded for the target by the scheduled checks (only for
    /// targets the caller's account is concerned by).
    pub history: Vec<Listing>,
}

/// One listing as the scheduled checks saw it: from the check that first
/// found it to the one that found it gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Listing {
    /// The listed address or domain.
    #[schema(example = "192.0.2.10")]
    pub target: String,
    pub kind: TargetKind,
    #[schema(example = "zen.spamhaus.org")]
    pub list: String,
    #[schema(example = "Spamhaus ZEN")]
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When a check first found it gone; absent while listed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ended_at: Option<OffsetDateTime>,
    /// The last check that saw it listed.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    pub codes: Vec<String>,
    /// The codes' meanings and the list's TXT record.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delist_url: Option<String>,
    /// Why the target is watched for the caller: `sending_ip`,
    /// `spf:<domain>`, `sending_domain`, `return_path`, `tracking`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds.
    Open,
    /// The condition ended.
    Resolved,
}

/// One condition that needs a person: a rate over its threshold, a
/// listing, a source failing DMARC, a deferral storm, a disabled webhook,
/// a warm-up cap, a certificate about to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    #[schema(example = "alr_01J...")]
    pub id: String,
    /// The account it is addressed to.
    #[schema(example = "main")]
    pub account: String,
    /// `bounce_rate`, `complaint_rate`, `blocklist`, `dmarc_unknown_source`,
    /// `dmarc_missing`, `deferral_storm`, `webhook_disabled`, `warmup_cap`,
    /// `certificate_expiry`.
    #[schema(example = "blocklist")]
    pub kind: String,
    /// The condition, stable while it holds: one open alert per key.
    #[schema(example = "blocklist:zen.spamhaus.org:192.0.2.10")]
    pub key: String,
    pub state: AlertState,
    #[schema(example = "192.0.2.10 is listed on Spamhaus ZEN (SBL: a spam source)")]
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// The last time it was notified (once a day while it holds).
    #[serde(with = "time::serde::rfc3339")]
    pub notified_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub acknowledged_at: Option<OffsetDateTime>,
}

/// What one run of the scheduled blocklist check did
/// (`POST /api/v1/blocklists/check`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlocklistRun {
    /// Addresses and domain names asked about.
    pub targets: u64,
    /// Lookups made (targets × the lists that apply to each).
    pub queries: u64,
    /// Active listings after the run.
    pub listed: u64,
    /// Lookups without a usable answer.
    pub errors: u64,
    /// Listings that started and ended in this run.
    pub started: u64,
    pub ended: u64,
    pub seconds: f64,
}
