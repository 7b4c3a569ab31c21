//! Reports about mail sent in a domain's name, as mailbox providers send
//! them: DMARC aggregate reports (RFC 7489 appendix C and RFC 9990), DMARC
//! failure reports (RFC 6591 and the plain-text look-alikes) and SMTP TLS
//! reports (RFC 8460).
//!
//! [`parse_reports`] takes whatever arrived (a file, an upload, a message to
//! the `rua` address) and finds out what it is from its content, never from
//! a name: gzip, raw zlib (RFC 1950, as AOL sends) and zip are unpacked, a
//! message's attachments are searched, XML is an aggregate report, JSON a TLS
//! report, a `message/feedback-report` part a failure report (an ARF report
//! of another feedback type, `abuse`, is a complaint for
//! `herald_bounces::parse`, and refused here). One input may hold several
//! reports (a message with an attachment per report, a zip of several): all
//! are returned ([`Found`]), with what could not be read beside them. An mbox
//! file is split first ([`herald_message::mbox::split_mbox`]); given one
//! whole, only its first message is read. [`parse_report`] is the first report
//! alone.
//!
//! Hostile input is bounded ([`Limits`]): unpacked bytes, XML nesting,
//! container nesting and reports per input have ceilings, and XML entities
//! are never expanded (a DTD that declares one is refused), so a bomb costs a
//! clear error.

mod aggregate;
mod failure;
mod tlsrpt;
mod unpack;

pub use aggregate::{AggregateReport, DkimAuth, PolicyPublished, PolicyReason, Record, SpfAuth, parse_aggregate};
pub use failure::FailureReport;
pub use tlsrpt::{FailureDetail, TlsPolicy, TlsReport};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes one input may unpack to by default: the largest real reports,
/// from the biggest receivers about the biggest senders, are tens of
/// megabytes of XML.
pub const MAX_UNPACKED: usize = 64 * 1024 * 1024;

/// XML nesting allowed by default: a report needs 5 levels
/// (`feedback/record/auth_results/dkim/domain`), extensions a few more.
pub const MAX_XML_DEPTH: usize = 32;

/// Containers inside containers allowed by default: a report needs 2 (a
/// message holding a gzip); a forwarded report 3.
pub const MAX_NESTING: usize = 4;

/// Records one aggregate report may hold by default. The largest real
/// reports hold tens of thousands; each record costs a few hundred bytes
/// once read, so the ceiling bounds what 64 MiB of tiny records could cost.
pub const MAX_RECORDS: usize = 250_000;

/// Messages one record may count: more than any receiver sees from one IP
/// in a day, and small enough that no sum of counts can overflow.
pub const MAX_RECORD_COUNT: u64 = 1 << 40;

/// Reports one input may yield by default: a report message carries one,
/// a zip of a day's reports a few dozen. The ceiling bounds a zip of zips of
/// tiny reports, which nesting and the unpacking budget alone allow by the
/// ten thousand.
pub const MAX_REPORTS: usize = 256;

/// Bytes of JSON a TLS report may have. Real ones are kilobytes; read as a
/// JSON tree, each byte can cost tens, so the ceiling is kept low.
pub const MAX_JSON: usize = 4 * 1024 * 1024;

/// Ceilings on the work one input may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes gzip, zlib and zip members may inflate to, all of them together.
    /// (Base64 and quoted-printable only shrink, so they need no ceiling.)
    pub max_unpacked: usize,
    /// Nesting of XML elements.
    pub max_depth: usize,
    /// Containers inside containers (a zip in a message in a gzip…).
    pub max_nesting: usize,
    /// Records of one aggregate report.
    pub max_records: usize,
    /// Reports read from one input; the rest are counted in
    /// [`Found::unread`].
    pub max_reports: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_unpacked: MAX_UNPACKED,
            max_depth: MAX_XML_DEPTH,
            max_nesting: MAX_NESTING,
            max_records: MAX_RECORDS,
            max_reports: MAX_REPORTS,
        }
    }
}

/// What a report turned out to be. Stored as JSON, tagged with its
/// [`kind`](Report::kind): `{"kind": "aggregate", "org_name": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Report {
    Aggregate(AggregateReport),
    Failure(FailureReport),
    TlsRpt(TlsReport),
}

impl Report {
    /// `aggregate`, `failure` or `tlsrpt`.
    pub fn kind(&self) -> &'static str {
        match self {
            Report::Aggregate(_) => "aggregate",
            Report::Failure(_) => "failure",
            Report::TlsRpt(_) => "tlsrpt",
        }
    }
}

/// Why bytes are not a report, in words a postmaster can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// Nothing (or only white space) to read.
    Empty,
    /// Unpacking went past [`Limits::max_unpacked`].
    TooLarge { limit: usize },
    /// Containers nested past [`Limits::max_nesting`].
    TooNested { limit: usize },
    /// XML nested past [`Limits::max_depth`].
    TooDeep { limit: usize },
    /// The XML declares entities, which are never expanded.
    EntityDeclaration,
    /// A gzip, zlib or zip that does not unpack.
    Archive(String),
    /// XML that could not be read, with where and why.
    Xml(String),
    /// JSON that is not a TLS report.
    Json(String),
    /// Well-formed, but a required part is missing or wrong.
    Invalid(String),
    /// Readable, but no kind of report this knows.
    NotAReport(String),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Empty => write!(f, "the input is empty: nothing to read"),
            ReportError::TooLarge { limit } => write!(
                f,
                "the report unpacks to more than {limit} bytes (a compression bomb, or a report \
                 larger than the configured limit)"
            ),
            ReportError::TooNested { limit } => write!(
                f,
                "archives and messages are nested more than {limit} deep (a report needs two: \
                 a message holding a gzip or zip)"
            ),
            ReportError::TooDeep { limit } => write!(
                f,
                "the XML nests elements more than {limit} deep; a DMARC report needs 5"
            ),
            ReportError::EntityDeclaration => write!(
                f,
                "the XML declares entities (<!ENTITY>), which DMARC reports never need and which \
                 are refused because expanding them is an attack"
            ),
            ReportError::Archive(e) => write!(f, "the archive cannot be unpacked: {e}"),
            ReportError::Xml(e) => write!(f, "the XML cannot be read: {e}"),
            ReportError::Json(e) => write!(f, "the JSON is not a TLS report: {e}"),
            ReportError::Invalid(e) => write!(f, "the report is incomplete or wrong: {e}"),
            ReportError::NotAReport(e) => write!(f, "not a DMARC or TLS report: {e}"),
        }
    }
}

impl std::error::Error for ReportError {}

/// Everything one input held: each report read from it and, beside them,
/// the parts that looked like reports but could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// In the order they appear in the input; at least one.
    pub reports: Vec<Report>,
    /// Parts (attachments, zip entries) that looked like a report (XML,
    /// JSON, gzip, zlib, zip) and failed while others were read. A part that
    /// is readable but no report (an attached schema, a notice) is not here.
    pub unreadable: Vec<PartError>,
    /// Report-like parts and zip entries left unread past the ceilings
    /// (parts of a message, entries of a zip, [`Limits::max_reports`]).
    pub unread: usize,
}

impl Found {
    fn one(report: Report) -> Self {
        Self {
            reports: vec![report],
            ..Self::default()
        }
    }

    /// Adds what a part held, naming the part in its errors; reports past
    /// `max` are counted as unread.
    fn absorb(&mut self, inner: Found, part: &str, max: usize) {
        for report in inner.reports {
            if self.reports.len() < max {
                self.reports.push(report);
            } else {
                self.unread += 1;
            }
        }
        self.unreadable.extend(inner.unreadable.into_iter().map(|e| PartError {
            part: format!("{part}, {}", e.part),
            error: e.error,
        }));
        self.unread += inner.unread;
    }
}

/// A part of an input that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartError {
    /// Where it is: `attachment 2 ("report.xml.gz")`, `entry "b.xml"`.
    pub part: String,
    pub error: ReportError,
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.part, self.error)
    }
}

/// Reads every report in `bytes` (any kind, any wrapping) with the default
/// limits. `Err` when none could be read, with the most telling reason.
///
/// Linear in the input plus what it unpacks.
pub fn parse_reports(bytes: &[u8]) -> Result<Found, ReportError> {
    let limits = Limits::default();
    parse_reports_within(bytes, &limits, &mut Budget::new(limits.max_unpacked))
}

/// [`parse_reports`] with explicit limits, drawing on a budget shared with
/// other inputs: the messages of one mbox, or one upload, unpack no more in
/// all than one input may.
pub fn parse_reports_within(bytes: &[u8], limits: &Limits, budget: &mut Budget) -> Result<Found, ReportError> {
    read_any(bytes, limits, 0, budget)
}

/// Reads the first report of any kind, in any wrapping, with the default
/// limits.
///
/// Linear in the input plus what it unpacks.
pub fn parse_report(bytes: &[u8]) -> Result<Report, ReportError> {
    parse_report_with(bytes, &Limits::default())
}

/// [`parse_report`] with explicit limits.
pub fn parse_report_with(bytes: &[u8], limits: &Limits) -> Result<Report, ReportError> {
    let mut budget = Budget::new(limits.max_unpacked);
    parse_report_within(bytes, limits, &mut budget)
}

/// [`parse_report_with`] drawing on a budget shared with other inputs.
pub fn parse_report_within(bytes: &[u8], limits: &Limits, budget: &mut Budget) -> Result<Report, ReportError> {
    let found = read_any(bytes, limits, 0, budget)?;
    found
        .reports
        .into_iter()
        .next()
        .ok_or_else(|| ReportError::NotAReport("no report found".into()))
}

/// What the first bytes say the content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Gzip,
    Zlib,
    Zip,
    Xml,
    Json,
    Message,
    Empty,
}

fn sniff(bytes: &[u8]) -> Sniffed {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Sniffed::Gzip;
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    if is_zlib_header(bytes) {
        return Sniffed::Zlib;
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Sniffed::Xml;
    }
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Sniffed::Empty,
        Some(b'<') => Sniffed::Xml,
        Some(b'{') => Sniffed::Json,
        Some(_) => Sniffed::Message,
    }
}

/// Whether `bytes` start with an RFC 1950 (zlib) header: deflate (CM 8)
/// with a window of at most 32 KiB, no preset dictionary (a report could
/// not name one), and the header check (`CMF*256 + FLG` a multiple of 31).
/// Every zlib library writes `0x78` first; a smaller window gives a first
/// byte that is a printable letter (`H`, `X`, `h`), so then the second must
/// not be printable too, or a header such as `Hj…` could pass for one.
fn is_zlib_header(bytes: &[u8]) -> bool {
    let [cmf, flg, ..] = *bytes else { return false };
    let deflate = cmf & 0x0f == 8 && cmf >> 4 <= 7;
    let no_dictionary = flg & 0x20 == 0;
    let checked = (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0;
    let unlike_text = cmf == 0x78 || !(flg.is_ascii_graphic() || flg.is_ascii_whitespace());
    deflate && no_dictionary && checked && unlike_text
}

/// Reads `bytes` as whatever their content says they are. `nesting` counts
/// the containers (archives, messages) already opened around them.
pub(crate) fn read_any(
    bytes: &[u8],
    limits: &Limits,
    nesting: usize,
    budget: &mut Budget,
) -> Result<Found, ReportError> {
    if nesting > limits.max_nesting {
        return Err(ReportError::TooNested {
            limit: limits.max_nesting,
        });
    }
    match sniff(bytes) {
        Sniffed::Empty => Err(ReportError::Empty),
        Sniffed::Gzip => {
            let inner = unpack::gunzip(bytes, budget)?;
            read_any(&inner, limits, nesting + 1, budget)
        }
        Sniffed::Zlib => {
            let inner = unpack::inflate_zlib(bytes, budget)?;
            read_any(&inner, limits, nesting + 1, budget)
        }
        Sniffed::Zip => unpack::unzip(bytes, limits, nesting, budget),
        Sniffed::Xml => parse_aggregate(bytes, limits).map(|r| Found::one(Report::Aggregate(r))),
        Sniffed::Json => tlsrpt::parse(bytes).map(|r| Found::one(Report::TlsRpt(r))),
        Sniffed::Message => unpack::message(bytes, limits, nesting, budget),
    }
}

/// What is left of [`Limits::max_unpacked`] while one input is read: every
/// gzip, zlib and zip member inflated anywhere inside it draws from the same
/// budget, so a bomb split over many members costs no more than one.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    left: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self { limit, left: limit }
    }

    /// Bytes that may still be unpacked.
    pub fn left(&self) -> usize {
        self.left
    }

    /// Draws `n` bytes, or says the input unpacks to too much.
    pub(crate) fn take(&mut self, n: usize) -> Result<(), ReportError> {
        self.left = self.left.checked_sub(n).ok_or(self.too_large())?;
        Ok(())
    }

    pub(crate) fn too_large(&self) -> ReportError {
        ReportError::TooLarge { limit: self.limit }
    }
}

/// Lower-cases and trims an enumerated value, and maps the synonyms real
/// reporters use to the RFC's word (`hardfail` is SPF's `fail`).
pub(crate) fn normalise(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "hardfail" => "fail".to_string(),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_not_the_name() {
        assert_eq!(sniff(b"\x1f\x8b\x08"), Sniffed::Gzip);
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Zip);
        assert_eq!(sniff(b"\x78\x9c\x0b"), Sniffed::Zlib);
        assert_eq!(sniff(b"\x78\xda\x0b"), Sniffed::Zlib);
        assert_eq!(sniff(b"\x78\x01\x0b"), Sniffed::Zlib);
        assert_eq!(sniff(b"\xef\xbb\xbf  <?xml"), Sniffed::Xml);
        assert_eq!(sniff(b"\n {\"a\":1}"), Sniffed::Json);
        assert_eq!(sniff(b"From: a@b\r\n"), Sniffed::Message);
        assert_eq!(sniff(b" \r\n\t"), Sniffed::Empty);
        assert_eq!(parse_report(b""), Err(ReportError::Empty));
    }

    #[test]
    fn a_zlib_header_is_told_from_text() {
        // Every header zlib writes for a 32 KiB window, and a smaller one.
        for head in [[0x78, 0x01], [0x78, 0x5e], [0x78, 0x9c], [0x78, 0xda], [0x48, 0x89]] {
            assert!(is_zlib_header(&head), "{head:x?}");
        }
        // A preset dictionary, a bad check, another method, a header line
        // whose first two letters pass the check (`HK`, 0x48 0x4b).
        for head in [[0x78, 0xbb], [0x78, 0x9d], [0x79, 0x9c], [0x48, 0x4b]] {
            assert!(!is_zlib_header(&head), "{head:x?}");
        }
        assert_eq!(sniff(b"HK-Field: x\r\n"), Sniffed::Message);
        assert_eq!(sniff(b"X-Report: y\r\n"), Sniffed::Message);
    }

    #[test]
    fn synonyms_are_mapped() {
        assert_eq!(normalise(" HardFail "), "fail");
        assert_eq!(normalise("Pass"), "pass");
    }

    #[test]
    fn containers_nest_only_so_deep() {
        // A gzip of a gzip of … of a report.
        let mut data = b"<feedback/>".to_vec();
        for _ in 0..6 {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut enc, &data).unwrap();
            data = enc.finish().unwrap();
        }
        assert_eq!(parse_report(&data), Err(ReportError::TooNested { limit: 4 }));
    }
}
