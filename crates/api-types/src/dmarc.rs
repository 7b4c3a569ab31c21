//! DMARC reports: what an upload or an import did with each report, the
//! stored reports, and the summary of `GET /api/v1/dmarc/summary` and
//! `herald dmarc summary --json`.
//!
//! Rates are fractions (0.0 to 1.0) of the messages in the same tally.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// What happened to one report handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Read and stored.
    Imported,
    /// The same report (reporter and report id) was stored before.
    Duplicate,
    /// Not a readable report: kept with the error, listed by
    /// `GET /api/v1/dmarc/reports?broken=true`.
    Failed,
}

/// One report handed in, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportOutcome {
    pub status: ImportStatus,
    /// `aggregate`, `failure` or `tlsrpt`; absent when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The stored report's id (the broken report's id when it failed).
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Rows of the report (aggregate records, TLS policies).
    pub records: u64,
    /// Messages (or TLS sessions) the report covers.
    pub messages: u64,
    /// Why it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The file or part it came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
}

/// The answer to an upload: one outcome per report found in the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    pub reports: Vec<ImportOutcome>,
}

/// A stored report, without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DmarcReport {
    pub id: i64,
    /// `aggregate`, `failure` or `tlsrpt`.
    pub kind: String,
    pub org_name: String,
    pub report_id: String,
    pub domain: String,
    #[serde(with = "time::serde::rfc3339")]
    pub begin: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// `mx`, `api` or `import`.
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    pub records: u64,
    pub messages: u64,
}

/// A report that could not be read, kept with its error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BrokenDmarcReport {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    pub error: String,
    /// Bytes kept.
    pub size: u64,
    /// SHA-256 of the bytes.
    pub digest: String,
}

/// A page of reports; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DmarcReportPage {
    pub data: Vec<DmarcReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page of broken reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BrokenDmarcReportPage {
    pub data: Vec<BrokenDmarcReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Messages counted by their authentication results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tally {
    pub messages: u64,
    /// DMARC pass: aligned SPF or aligned DKIM passed.
    pub dmarc_pass: u64,
    /// SPF passed for the domain checked (aligned or not).
    pub spf_pass: u64,
    /// SPF passed and aligned with the From domain (DMARC's SPF verdict).
    pub spf_aligned: u64,
    /// At least one DKIM signature passed.
    pub dkim_pass: u64,
    /// A DKIM signature of the From domain passed (DMARC's DKIM verdict).
    pub dkim_aligned: u64,
    /// Messages by the disposition the receiver applied.
    pub disposition_none: u64,
    pub disposition_quarantine: u64,
    pub disposition_reject: u64,
    /// `dmarc_pass_rate`, `spf_pass_rate`, `spf_alignment_rate`,
    /// `dkim_pass_rate`, `dkim_alignment_rate` (absent with no messages).
    pub rates: std::collections::BTreeMap<String, f64>,
}

/// One day of a summary (UTC, by the start of each report's period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayTally {
    /// `2026-11-23`.
    pub day: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// One reporting provider of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReporterTally {
    pub org_name: String,
    pub reports: u64,
    #[serde(flatten)]
    pub tally: Tally,
}

/// What a source of mail in the domain's name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceLabel {
    /// An IP Herald sends from, inside the domain's SPF record, or signing
    /// with the domain's DKIM key.
    Yours,
    /// A service known by its reverse DNS (an ESP, a provider).
    Service,
    /// Mail signed by the domain (DKIM pass) relayed by a host outside its
    /// SPF (SPF fail): a forwarder or mailing list.
    Forwarder,
    /// None of the above: a misconfigured service of yours, or a spoofer.
    Unknown,
}

impl SourceLabel {
    /// The label as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yours => "yours",
            Self::Service => "service",
            Self::Forwarder => "forwarder",
            Self::Unknown => "unknown",
        }
    }
}

/// A known service, from the reverse-DNS map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KnownService {
    /// `Intuit Mailchimp`.
    pub name: String,
    /// `Marketing`, `Email Provider`, `ISP`, …
    #[serde(rename = "type")]
    pub kind: String,
}

/// One sending IP of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceTally {
    pub ip: String,
    /// The PTR name, when the IP has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_dns: Option<String>,
    pub label: SourceLabel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<KnownService>,
    /// Why the label, in words.
    pub why: String,
    /// The reporters that saw it.
    pub reporters: Vec<String>,
    #[serde(flatten)]
    pub tally: Tally,
}

/// The policy the reports say the domain published (the latest report's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedPolicy {
    /// `none`, `quarantine` or `reject`.
    pub p: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp: Option<String>,
    /// 100 when not given.
    pub pct: u8,
    /// `r` or `s`.
    pub adkim: String,
    pub aspf: String,
}

/// What enforcing a stricter policy would have done to the period's mail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Enforcement {
    /// Messages failing DMARC: what `quarantine` would send to spam and
    /// `reject` would refuse.
    pub failing: u64,
    /// Of those, from your own sources: legitimate mail that would be lost.
    pub yours: u64,
    /// From forwarders (usually legitimate, often rescued by ARC).
    pub forwarded: u64,
    /// From known services and unknown sources.
    pub others: u64,
}

/// The next step for the domain's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    /// `advance` (the next rung), `hold` (already at reject 100%), `review`
    /// (much failing mail from unknown sources: look at them first), `fix`
    /// (your own mail fails; stepped back a rung when under 90%) or
    /// `collect` (not enough data yet). The policy stays as published
    /// unless the action moves it.
    pub action: String,
    /// The policy to publish next (the current one when holding).
    pub p: String,
    pub pct: u8,
    /// The share of your own sources' mail that passes DMARC (forwarders
    /// left out), on which the step is decided.
    pub compliance: f64,
    /// Why, in words.
    pub reason: String,
}

/// `GET /api/v1/dmarc/summary`: the domain's last N days of reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DmarcSummary {
    pub domain: String,
    pub days: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Aggregate reports counted.
    pub reports: u64,
    /// True when the window held more records than a summary counts
    /// (2,000,000): the figures are of the reports counted.
    pub truncated: bool,
    /// Failure (forensic) reports received in the period.
    pub failure_reports: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PublishedPolicy>,
    pub totals: Tally,
    pub by_day: Vec<DayTally>,
    pub by_reporter: Vec<ReporterTally>,
    /// Sources by volume, largest first.
    pub sources: Vec<SourceTally>,
    pub enforcement: Enforcement,
    pub recommendation: Recommendation,
}

#[cfg(test)]
mod tests {
    use super::SourceLabel;

    #[test]
    fn a_source_label_reads_as_its_json() {
        for l in [
            SourceLabel::Yours,
            SourceLabel::Service,
            SourceLabel::Forwarder,
            SourceLabel::Unknown,
        ] {
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
    }
}
