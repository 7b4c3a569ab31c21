//! What the deliverability center keeps: reports about mail sent in a
//! domain's name (DMARC aggregate and failure reports, SMTP TLS reports) and
//! the reports that could not be read.
//!
//! A report is one row. Its parsed content is an opaque `body` (Herald
//! keeps compressed JSON there) that the store never reads: the analytics decode the bodies of one domain's
//! reports for a period, which is a handful of rows a day per reporter.
//! That keeps an import to one insert per report (a reporter's row counts
//! are unbounded, and importing a year of reports must take seconds), and
//! lets the report format grow without migrations.
//!
//! A report's identity is its kind, reporting organisation and report id;
//! the same report twice is stored once. A broken report keeps its bytes,
//! identified by their SHA-256, with the error that stopped it.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// What kind of report a row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// DMARC aggregate (RFC 7489 appendix C, RFC 9990).
    Aggregate,
    /// DMARC failure report (RFC 6591).
    Failure,
    /// SMTP TLS report (RFC 8460).
    TlsRpt,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aggregate => "aggregate",
            Self::Failure => "failure",
            Self::TlsRpt => "tlsrpt",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "aggregate" => Ok(Self::Aggregate),
            "failure" => Ok(Self::Failure),
            "tlsrpt" => Ok(Self::TlsRpt),
            other => Err(format!("unknown report kind {other:?}")),
        }
    }
}

/// A report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub kind: ReportKind,
    /// The reporting organisation, as the report names it.
    pub org_name: String,
    /// Unique per reporter (for failure reports, which carry none, a digest
    /// of the report's bytes).
    pub report_id: String,
    /// The domain the report is about (the policy domain), lower-case.
    pub domain: String,
    /// The period the report covers.
    pub begin: OffsetDateTime,
    pub end: OffsetDateTime,
    pub received_at: OffsetDateTime,
    /// How it arrived: `mx`, `api` or `import`.
    pub origin: String,
    /// A file name, or the address it was mailed from.
    pub source_name: Option<String>,
    pub record_count: u64,
    pub message_count: u64,
    /// The parsed report, encoded by the caller; never read by the store.
    pub body: Vec<u8>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    pub id: i64,
    pub kind: ReportKind,
    pub org_name: String,
    pub report_id: String,
    pub domain: String,
    pub begin: OffsetDateTime,
    pub end: OffsetDateTime,
    pub received_at: OffsetDateTime,
    pub origin: String,
    pub source_name: Option<String>,
    pub record_count: u64,
    pub message_count: u64,
    /// Present when asked for ([`ReportFilter::with_body`]).
    pub body: Option<Vec<u8>>,
}

/// What storing a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new row, with its id.
    New(i64),
    /// The same report (or the same broken bytes) was stored before, under
    /// this id; nothing was written.
    Duplicate(i64),
}

impl Stored {
    pub fn id(self) -> i64 {
        match self {
            Self::New(id) | Self::Duplicate(id) => id,
        }
    }
}

/// Bytes that are not a readable report, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBrokenReport {
    /// SHA-256 of `raw`, hex: the same bytes twice are kept once.
    pub digest: String,
    pub received_at: OffsetDateTime,
    pub origin: String,
    pub source_name: Option<String>,
    pub error: String,
    pub raw: Vec<u8>,
}

/// A kept broken report, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenReport {
    pub id: i64,
    pub digest: String,
    pub received_at: OffsetDateTime,
    pub origin: String,
    pub source_name: Option<String>,
    pub error: String,
    pub size: u64,
}

/// Which reports to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub kind: Option<ReportKind>,
    /// Reports about exactly this domain.
    pub domain: Option<String>,
    /// Reports whose period ends at or after this…
    pub since: Option<OffsetDateTime>,
    /// …and begins before this.
    pub until: Option<OffsetDateTime>,
    /// Rows after this id (a cursor).
    pub after: Option<i64>,
    /// Whether to read the bodies.
    pub with_body: bool,
}

/// The deliverability center's reports.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores reports in one transaction; for each, whether it was new or
    /// already stored (same kind, org_name and report_id), in order.
    async fn insert_reports(&self, reports: &[NewReport]) -> StoreResult<Vec<Stored>>;

    /// Keeps a broken report; the same bytes twice are kept once.
    async fn insert_broken_report(&self, report: &NewBrokenReport) -> StoreResult<Stored>;

    /// Reports matching `filter`, by id, at most `limit`.
    async fn list_reports(&self, filter: &ReportFilter, limit: u32) -> StoreResult<Vec<StoredReport>>;

    /// Broken reports after id `after` (0 for the first page), by id.
    async fn list_broken_reports(&self, after: i64, limit: u32) -> StoreResult<Vec<BrokenReport>>;

    /// The bytes of a broken report.
    async fn broken_report_bytes(&self, id: i64) -> StoreResult<Option<Vec<u8>>>;
}
