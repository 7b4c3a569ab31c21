//! DMARC aggregate reports: the XML of RFC 7489 appendix C, its pre-RFC
//! draft and RFC 9990's `urn:ietf:params:xml:ns:dmarc-2.0`, read as real
//! reporters write them.
//!
//! Why not mail-auth's parser: it stops at the first element that is not
//! `<feedback>` (ikea's stray `<xs:schema>`), at an unescaped `<` in a value
//! and at bytes that are not UTF-8, all of which real reports contain and
//! parsedmarc reads. This reader knows elements by their local name,
//! whatever the namespace or case, closes what a reporter forgot to close,
//! takes a `<` that starts no tag for text, and never expands an entity.
//!
//! Why not quick-xml: measured on parsedmarc's 909 KB sample (2,286
//! records), quick-xml's event loop alone, doing nothing with the events,
//! takes 2.0 ms, about 1.1 million records a second, and the importer's
//! budget is well above that. A report needs only elements, their text and
//! the skipping of everything else (comments, CDATA, processing
//! instructions, DOCTYPE), so this is one pass over the bytes that looks
//! only at `<`, reads each tag's name once, matches an end tag against the
//! element it expects by comparing bytes, and borrows every value from the
//! document (copying only the values it keeps): 1.5 ms for the same sample
//! with the report built, 1.5 million records a second on one core
//! (`benches/dmarc.rs` runs both).
//!
//! Values of enumerated fields are lower-cased (`Pass` → `pass`) and
//! `hardfail` is read as `fail`. A report that ends before `</feedback>` is
//! refused as truncated: its records would be counted short.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Limits, ReportError, normalise};

/// One aggregate report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AggregateReport {
    /// `<version>` (RFC 7489 `1.0`; absent in the draft schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `xmlns` of `<feedback>` (`urn:ietf:params:xml:ns:dmarc-2.0` for
    /// RFC 9990), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The reporting organisation (`google.com`, `Outlook.com`).
    pub org_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_contact_info: Option<String>,
    /// Unique per reporter; with `org_name` the report's identity.
    pub report_id: String,
    /// The period covered, Unix seconds, inclusive.
    pub begin: i64,
    pub end: i64,
    /// `<error>` elements of the metadata.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// RFC 9990 `<generator>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    pub policy: PolicyPublished,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<Record>,
}

impl AggregateReport {
    /// Messages the report covers: the sum of the records' counts.
    pub fn message_count(&self) -> u64 {
        self.records.iter().fold(0u64, |n, r| n.saturating_add(r.count))
    }
}

/// The DMARC record the reporter found and applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyPublished {
    pub domain: String,
    /// `r` or `s`; `r` (the RFC's default) when the report leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adkim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspf: Option<String>,
    /// `none`, `quarantine`, `reject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sp: Option<String>,
    /// RFC 9990: policy for non-existent subdomains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub np: Option<String>,
    /// RFC 7489 only (removed by RFC 9990).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pct: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fo: Option<String>,
    /// RFC 9990 `t`: `y` or `n`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub testing: Option<String>,
    /// RFC 9990: `psl` or `treewalk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_method: Option<String>,
}

/// One row: messages from one source IP with the same results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// The sending IP, in canonical form when it parses as one.
    pub source_ip: String,
    pub count: u64,
    /// `none`, `quarantine`, `reject` (and RFC 9990's `pass`).
    pub disposition: String,
    /// DMARC's aligned DKIM and SPF verdicts: `pass` or `fail`.
    pub dkim: String,
    pub spf: String,
    /// Why the receiver applied another disposition than the policy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<PolicyReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envelope_from: Option<String>,
    /// The RFC 5322.From domain (the report's policy domain when absent).
    pub header_from: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dkim_results: Vec<DkimAuth>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub spf_results: Vec<SpfAuth>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyReason {
    /// `forwarded`, `sampled_out`, `trusted_forwarder`, `mailing_list`,
    /// `local_policy`, `other`, `policy_test_mode`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// One DKIM signature the receiver checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DkimAuth {
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// `none`, `pass`, `fail`, `policy`, `neutral`, `temperror`, `permerror`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

/// The SPF check the receiver did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpfAuth {
    pub domain: String,
    /// `mfrom` or `helo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `none`, `neutral`, `pass`, `fail`, `softfail`, `temperror`,
    /// `permerror` (`hardfail` is read as `fail`).
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub human_result: Option<String>,
}

/// Where in a report the reader is: the elements that hold others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Outside,
    Feedback,
    Metadata,
    DateRange,
    Policy,
    Record,
    Row,
    Evaluated,
    Reason,
    Identifiers,
    AuthResults,
    Dkim,
    Spf,
    /// An element that holds only text (a [`Field`]), or is unknown.
    Skip,
}

/// Longest element name of the schema (`extra_contact_info`), with room.
/// A longer name is an extension, matched by no rule.
const NAME_BYTES: usize = 24;

/// An element name read once: where it ends, where its local part starts
/// (after the last `:`), and whether it has upper case.
struct ScannedName {
    local_start: usize,
    end: usize,
    upper: bool,
}

impl ScannedName {
    /// The local name (`dmarc:record` → `record`).
    fn local<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        &b[self.local_start..self.end]
    }
}

/// What a byte is to an element name: not part of one, part of one, an
/// upper-case letter, or the prefix separator.
const NOT_NAME: u8 = 0;
const NAME: u8 = 1;
const UPPER: u8 = 2;
const COLON: u8 = 3;
const NAME_CLASS: [u8; 256] = {
    let mut t = [NOT_NAME; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_uppercase() {
            UPPER
        } else if b == b':' {
            COLON
        } else if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            NAME
        } else {
            NOT_NAME
        };
        c += 1;
    }
    t
};

/// Reads the element name starting at `from`, in one pass.
fn scan_name(b: &[u8], from: usize) -> ScannedName {
    let mut name = ScannedName {
        local_start: from,
        end: from,
        upper: false,
    };
    let rest = b.get(from..).unwrap_or_default();
    for (i, &c) in rest.iter().enumerate() {
        match NAME_CLASS[c as usize] {
            NAME => {}
            UPPER => name.upper = true,
            COLON => name.local_start = from + i + 1,
            _ => {
                name.end = from + i;
                return name;
            }
        }
    }
    name.end = b.len();
    name
}

/// A local name as the schema spells it, in lower case: the name itself
/// when the reporter wrote it so (nearly always, and then nothing is
/// copied), else lowered into `buf`.
fn schema_name<'a>(local: &'a [u8], upper: bool, buf: &'a mut [u8; NAME_BYTES]) -> &'a [u8] {
    if !upper {
        return local;
    }
    let Some(to) = buf.get_mut(..local.len()) else {
        return b"";
    };
    for (to, from) in to.iter_mut().zip(local) {
        *to = from.to_ascii_lowercase();
    }
    to
}

/// One open element: its name as written (an end tag spelt the same is
/// matched without reading it), its local name (end tags otherwise match it
/// without regard to case), the context it opened and the field its text
/// goes to.
struct Open<'a> {
    qname: &'a [u8],
    name: &'a [u8],
    ctx: Ctx,
    field: Field,
}

/// Reads an aggregate report from XML bytes.
pub fn parse_aggregate(bytes: &[u8], limits: &Limits) -> Result<AggregateReport, ReportError> {
    let text = decode(bytes);
    if text.trim().is_empty() {
        return Err(ReportError::Empty);
    }
    let s: &str = &text;
    let b = s.as_bytes();
    let mut out = Builder::default();
    let mut seen_feedback = false;
    let mut closed_feedback = false;
    let mut stack: Vec<Open<'_>> = Vec::with_capacity(16);
    // Where the text of the element being read starts: after the last start
    // or end tag. Comments, CDATA and stray `<` inside it are text's
    // business (`leaf_text`), so they do not move it.
    let mut content = 0;
    let mut at = 0;
    while let Some(lt) = find(b, b'<', at) {
        let rest = &b[lt + 1..];
        match rest.first() {
            Some(b'/') => {
                // Nearly always the end of the element last opened, spelt
                // the same: compare the bytes and skip reading a name.
                let top = stack.last().map_or(&b""[..], |o| o.qname);
                let (name, gt) = match rest.get(1..top.len() + 2) {
                    Some(r) if !top.is_empty() && r.starts_with(top) && r[top.len()] == b'>' => {
                        (stack.last().map(|o| o.name).unwrap_or_default(), lt + 2 + top.len())
                    }
                    _ => {
                        let name = scan_name(b, lt + 2);
                        let gt = find(b, b'>', name.end).ok_or_else(|| unclosed(lt, "end tag"))?;
                        (name.local(b), gt)
                    }
                };
                at = gt + 1;
                // Close what the reporter left open, up to the matching
                // element; an end tag nothing opened is ignored.
                let Some(pos) = stack.iter().rposition(|o| o.name.eq_ignore_ascii_case(name)) else {
                    continue;
                };
                // Each element closed here, the ones left open first, files
                // what it read (a record left open is still a record).
                while stack.len() > pos {
                    let Some(open) = stack.pop() else { break };
                    let value = if open.field == Field::None {
                        Cow::Borrowed("")
                    } else {
                        leaf_text(&s[content..lt])
                    };
                    out.close(open.ctx, open.field, &value, limits)?;
                    if open.ctx == Ctx::Feedback {
                        closed_feedback = true;
                    }
                }
                content = at;
                if closed_feedback {
                    break;
                }
            }
            Some(b'!') if rest.starts_with(b"!--") => {
                at = find_str(b, b"-->", lt + 4).ok_or_else(|| unclosed(lt, "comment"))? + 3;
            }
            Some(b'!') if rest.starts_with(b"![CDATA[") => {
                at = find_str(b, b"]]>", lt + 9).ok_or_else(|| unclosed(lt, "CDATA section"))? + 3;
            }
            Some(b'!') if rest.get(1..8).is_some_and(|d| d.eq_ignore_ascii_case(b"DOCTYPE")) => {
                at = doctype(b, lt)?;
            }
            Some(b'!') => at = find(b, b'>', lt).ok_or_else(|| unclosed(lt, "declaration"))? + 1,
            Some(b'?') => at = find_str(b, b"?>", lt + 2).ok_or_else(|| unclosed(lt, "processing instruction"))? + 2,
            Some(&c) if is_name_start(c) => {
                let name = scan_name(b, lt + 1);
                // A `<` not followed by a name and then white space, `/` or
                // `>` is text a reporter forgot to escape, as in
                // `<email><bad-xml@bad-xml.net></email>` or
                // `bad<xml.net</header_from>`.
                let gt = match b.get(name.end) {
                    Some(b'>') => name.end,
                    Some(b' ' | b'\t' | b'\r' | b'\n' | b'/') => {
                        tag_end(b, name.end).ok_or_else(|| unclosed(lt, "tag"))?
                    }
                    _ => {
                        at = lt + 1;
                        continue;
                    }
                };
                at = gt + 1;
                let empty = gt > name.end && b[gt - 1] == b'/';
                let local = name.local(b);
                let mut buf = [0; NAME_BYTES];
                let lower = schema_name(local, name.upper, &mut buf);
                let parent = stack.last().map_or(Ctx::Outside, |o| o.ctx);
                let ctx = child_ctx(parent, lower, seen_feedback);
                let field = if ctx == Ctx::Skip {
                    field(parent, lower)
                } else {
                    Field::None
                };
                if ctx == Ctx::Feedback {
                    seen_feedback = true;
                    out.report.namespace = attribute(&s[name.end..gt], "xmlns").map(|v| v.trim().to_string());
                }
                out.open(ctx);
                if empty {
                    out.close(ctx, field, "", limits)?;
                } else {
                    if stack.len() >= limits.max_depth {
                        return Err(ReportError::TooDeep {
                            limit: limits.max_depth,
                        });
                    }
                    stack.push(Open {
                        qname: &b[lt + 1..name.end],
                        name: local,
                        ctx,
                        field,
                    });
                }
                content = at;
            }
            // `<` before a space, digit or the end: text.
            _ => at = lt + 1,
        }
    }
    if !seen_feedback {
        return Err(ReportError::NotAReport("XML without a <feedback> element".into()));
    }
    if !closed_feedback {
        return Err(ReportError::Xml(
            "the report ends before </feedback>: the file is truncated".into(),
        ));
    }
    finish(out.report)
}

/// An error for markup that starts at `at` and never ends.
fn unclosed(at: usize, what: &str) -> ReportError {
    ReportError::Xml(format!("the {what} at byte {at} is never closed (a truncated file?)"))
}

/// The first `needle` at or after `from`, eight bytes at a time: the text
/// between tags is what the reader spends its time crossing.
fn find(b: &[u8], needle: u8, from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let hay = b.get(from..)?;
    let pattern = ONES * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut offset = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A byte equal to the needle is zero after the xor; the lowest byte
        // flagged by the zero-byte test is always a true one.
        let x = u64::from_le_bytes(word) ^ pattern;
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&c| c == needle).map(|i| offset + i)
}

/// The first `needle` string at or after `from`.
fn find_str(b: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    herald_message::scan::find(b.get(from..)?, needle).map(|i| from + i)
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The `>` that ends a start tag, skipping quoted attribute values (which
/// may hold `>`); `None` when the tag never ends or another starts first.
fn tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(&c) = b.get(i) {
        match c {
            b'>' => return Some(i),
            b'"' | b'\'' => i = find(b, c, i + 1)?,
            b'<' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Skips a `<!DOCTYPE …>` starting at `lt`, refusing one whose internal
/// subset declares entities: they are never expanded, and no report needs
/// one ("billion laughs" is all they are used for here).
fn doctype(b: &[u8], lt: usize) -> Result<usize, ReportError> {
    let gt = find(b, b'>', lt).ok_or_else(|| unclosed(lt, "DOCTYPE"))?;
    // Only a `[` inside the tag opens an internal subset: looking past `>`
    // would cross the rest of the document once per DOCTYPE.
    let end = match b[lt..gt].iter().position(|&c| c == b'[').map(|i| lt + i) {
        // An internal subset: it ends at `]`, then `>`.
        Some(open) => {
            let close = find(b, b']', open).ok_or_else(|| unclosed(lt, "DOCTYPE"))?;
            find(b, b'>', close).ok_or_else(|| unclosed(lt, "DOCTYPE"))?
        }
        _ => gt,
    };
    let decl = b[lt..end].to_ascii_uppercase();
    if herald_message::scan::find(&decl, b"<!ENTITY").is_some() {
        return Err(ReportError::EntityDeclaration);
    }
    Ok(end + 1)
}

/// An attribute's value in the attribute text of a start tag.
fn attribute<'a>(attrs: &'a str, wanted: &str) -> Option<&'a str> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let value_len = after[1..].find(quote)?;
        if name == wanted {
            return Some(&after[1..1 + value_len]);
        }
        rest = &after[value_len + 2..];
    }
}

/// The text of an element: entity and character references decoded
/// (unknown entities kept as written, never expanded), CDATA taken as is,
/// comments and processing instructions dropped, a stray `<` kept.
fn leaf_text(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|c| c == b'&' || c == b'<') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let skip = |rest: &str, open: usize, close: &str| rest[open..].find(close).map(|e| open + e + close.len());
        if let Some(r) = rest.strip_prefix('&') {
            match r.bytes().take(MAX_REFERENCE).position(|c| c == b';') {
                Some(semi) => {
                    reference(&r[..semi], &mut out);
                    rest = &r[semi + 1..];
                }
                None => {
                    out.push('&');
                    rest = r;
                }
            }
        } else if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find("]]>").unwrap_or(body.len());
            out.push_str(&body[..end]);
            rest = body.get(end + 3..).unwrap_or("");
        } else if rest.starts_with("<!--") {
            // An unclosed comment or instruction takes the rest of the text
            // with it: searching again from the next byte would cross the
            // text once per `<!--`.
            rest = skip(rest, 4, "-->").map_or("", |end| &rest[end..]);
        } else if rest.starts_with("<?") {
            rest = skip(rest, 2, "?>").map_or("", |end| &rest[end..]);
        } else {
            out.push('<');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Longest `&…;` reference read; anything longer is a bare `&`.
const MAX_REFERENCE: usize = 16;

/// Appends what `&name;` stands for: a character reference, one of XML's
/// five predefined entities, or else the reference as written.
fn reference(name: &str, out: &mut String) {
    let char_ref = name
        .strip_prefix("#x")
        .or_else(|| name.strip_prefix("#X"))
        .map(|hex| u32::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| name.strip_prefix('#').and_then(|dec| dec.parse().ok()))
        .and_then(char::from_u32);
    let predefined = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    };
    match char_ref.or(predefined) {
        Some(c) => out.push(c),
        None => {
            out.push('&');
            out.push_str(name);
            out.push(';');
        }
    }
}

/// The report being built, and the record, reason and auth result being
/// read.
#[derive(Default)]
struct Builder {
    report: AggregateReport,
    record: Record,
    reason: PolicyReason,
    dkim: DkimAuth,
    spf: SpfAuth,
}

impl Builder {
    /// Starts afresh what an element opens.
    fn open(&mut self, ctx: Ctx) {
        match ctx {
            Ctx::Record => self.record = Record::default(),
            Ctx::Reason => self.reason = PolicyReason::default(),
            Ctx::Dkim => self.dkim = DkimAuth::default(),
            Ctx::Spf => self.spf = SpfAuth::default(),
            _ => {}
        }
    }

    /// Files what an element read once it closes: a finished record or
    /// result, or a value.
    fn close(&mut self, ctx: Ctx, field: Field, value: &str, limits: &Limits) -> Result<(), ReportError> {
        let Builder {
            report,
            record,
            reason,
            dkim,
            spf,
        } = self;
        match ctx {
            Ctx::Record => {
                if report.records.len() >= limits.max_records {
                    return Err(ReportError::Invalid(format!(
                        "more than {} records in one report",
                        limits.max_records
                    )));
                }
                finish_record(record, report.records.len())?;
                report.records.push(std::mem::take(record));
            }
            Ctx::Reason => record.reasons.push(std::mem::take(reason)),
            Ctx::Dkim => record.dkim_results.push(std::mem::take(dkim)),
            Ctx::Spf => record.spf_results.push(std::mem::take(spf)),
            Ctx::Skip => store(field, value.trim_ascii(), report, record, reason, dkim, spf)?,
            _ => {}
        }
        Ok(())
    }
}

/// The context an element opens, from its parent's and its name.
fn child_ctx(parent: Ctx, name: &[u8], seen_feedback: bool) -> Ctx {
    match (parent, name) {
        (Ctx::Outside, b"feedback") if !seen_feedback => Ctx::Feedback,
        // Anything around <feedback> (ikea's <xs:schema>) is looked through.
        (Ctx::Outside, _) => Ctx::Outside,
        (Ctx::Feedback, b"report_metadata") => Ctx::Metadata,
        (Ctx::Feedback, b"policy_published") => Ctx::Policy,
        (Ctx::Feedback, b"record") => Ctx::Record,
        (Ctx::Metadata, b"date_range") => Ctx::DateRange,
        (Ctx::Record, b"row") => Ctx::Row,
        (Ctx::Record, b"identifiers") => Ctx::Identifiers,
        (Ctx::Record, b"auth_results") => Ctx::AuthResults,
        (Ctx::Row, b"policy_evaluated") => Ctx::Evaluated,
        (Ctx::Evaluated, b"reason") => Ctx::Reason,
        (Ctx::AuthResults, b"dkim") => Ctx::Dkim,
        (Ctx::AuthResults, b"spf") => Ctx::Spf,
        _ => Ctx::Skip,
    }
}

/// Stores a value in its field.
fn store(
    field: Field,
    v: &str,
    report: &mut AggregateReport,
    record: &mut Record,
    reason: &mut PolicyReason,
    dkim: &mut DkimAuth,
    spf: &mut SpfAuth,
) -> Result<(), ReportError> {
    match field {
        Field::Version => report.version = text(v),
        Field::OrgName => report.org_name = v.to_string(),
        Field::Email => report.email = text(v),
        Field::ExtraContactInfo => report.extra_contact_info = text(v),
        Field::ReportId => report.report_id = v.to_string(),
        Field::Error => report.errors.push(v.to_string()),
        Field::Generator => report.generator = text(v),
        Field::Begin => report.begin = timestamp(v, "begin")?,
        Field::End => report.end = timestamp(v, "end")?,
        Field::PolicyDomain => report.policy.domain = v.to_ascii_lowercase(),
        Field::Adkim => report.policy.adkim = word(v),
        Field::Aspf => report.policy.aspf = word(v),
        Field::P => report.policy.p = word(v),
        Field::Sp => report.policy.sp = word(v),
        Field::Np => report.policy.np = word(v),
        Field::Pct => report.policy.pct = v.parse::<u16>().ok().map(|p| p.min(100) as u8),
        Field::Fo => report.policy.fo = text(v),
        Field::Testing => report.policy.testing = word(v),
        Field::DiscoveryMethod => report.policy.discovery_method = word(v),
        Field::SourceIp => record.source_ip = ip(v),
        Field::Count => {
            record.count = v
                .parse()
                .ok()
                .filter(|n| *n <= super::MAX_RECORD_COUNT)
                .ok_or_else(|| ReportError::Invalid(format!("record count {v:?} is not a plausible number")))?
        }
        Field::EvaluatedDisposition => record.disposition = normalise(v),
        Field::EvaluatedDkim => record.dkim = normalise(v),
        Field::EvaluatedSpf => record.spf = normalise(v),
        Field::ReasonType => reason.kind = normalise(v),
        Field::ReasonComment => reason.comment = text(v),
        Field::EnvelopeTo => record.envelope_to = text(v).map(|s| s.to_ascii_lowercase()),
        Field::EnvelopeFrom => record.envelope_from = Some(v.to_ascii_lowercase()),
        Field::HeaderFrom => record.header_from = v.to_ascii_lowercase(),
        Field::DkimDomain => dkim.domain = v.to_ascii_lowercase(),
        Field::DkimSelector => dkim.selector = text(v),
        Field::DkimResult => dkim.result = normalise(v),
        Field::DkimHumanResult => dkim.human_result = text(v),
        Field::SpfDomain => spf.domain = v.to_ascii_lowercase(),
        Field::SpfScope => spf.scope = word(v),
        Field::SpfResult => spf.result = normalise(v),
        Field::SpfHumanResult => spf.human_result = text(v),
        Field::None => {}
    }
    Ok(())
}

/// An element that carries a value, and so where its text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Version,
    OrgName,
    Email,
    ExtraContactInfo,
    ReportId,
    Error,
    Generator,
    Begin,
    End,
    PolicyDomain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Fo,
    Testing,
    DiscoveryMethod,
    SourceIp,
    Count,
    EvaluatedDisposition,
    EvaluatedDkim,
    EvaluatedSpf,
    ReasonType,
    ReasonComment,
    EnvelopeTo,
    EnvelopeFrom,
    HeaderFrom,
    DkimDomain,
    DkimSelector,
    DkimResult,
    DkimHumanResult,
    SpfDomain,
    SpfScope,
    SpfResult,
    SpfHumanResult,
    /// An element whose text nobody reads (extensions, unknown ones).
    None,
}

/// The field an element is, from its parent's context and its name: looked
/// up once, when it opens.
fn field(parent: Ctx, name: &[u8]) -> Field {
    match (parent, name) {
        (Ctx::Feedback, b"version") => Field::Version,
        (Ctx::Metadata, b"org_name") => Field::OrgName,
        (Ctx::Metadata, b"email") => Field::Email,
        (Ctx::Metadata, b"extra_contact_info") => Field::ExtraContactInfo,
        (Ctx::Metadata, b"report_id") => Field::ReportId,
        (Ctx::Metadata, b"error") => Field::Error,
        (Ctx::Metadata, b"generator") => Field::Generator,
        (Ctx::DateRange, b"begin") => Field::Begin,
        (Ctx::DateRange, b"end") => Field::End,
        (Ctx::Policy, b"domain") => Field::PolicyDomain,
        (Ctx::Policy, b"adkim") => Field::Adkim,
        (Ctx::Policy, b"aspf") => Field::Aspf,
        (Ctx::Policy, b"p") => Field::P,
        (Ctx::Policy, b"sp") => Field::Sp,
        (Ctx::Policy, b"np") => Field::Np,
        (Ctx::Policy, b"pct") => Field::Pct,
        (Ctx::Policy, b"fo") => Field::Fo,
        (Ctx::Policy, b"testing") => Field::Testing,
        (Ctx::Policy, b"discovery_method") => Field::DiscoveryMethod,
        (Ctx::Row, b"source_ip") => Field::SourceIp,
        (Ctx::Row, b"count") => Field::Count,
        (Ctx::Evaluated, b"disposition") => Field::EvaluatedDisposition,
        (Ctx::Evaluated, b"dkim") => Field::EvaluatedDkim,
        (Ctx::Evaluated, b"spf") => Field::EvaluatedSpf,
        (Ctx::Reason, b"type") => Field::ReasonType,
        (Ctx::Reason, b"comment") => Field::ReasonComment,
        (Ctx::Identifiers, b"envelope_to") => Field::EnvelopeTo,
        (Ctx::Identifiers, b"envelope_from") => Field::EnvelopeFrom,
        (Ctx::Identifiers, b"header_from") => Field::HeaderFrom,
        (Ctx::Dkim, b"domain") => Field::DkimDomain,
        (Ctx::Dkim, b"selector") => Field::DkimSelector,
        (Ctx::Dkim, b"result") => Field::DkimResult,
        (Ctx::Dkim, b"human_result") => Field::DkimHumanResult,
        (Ctx::Spf, b"domain") => Field::SpfDomain,
        (Ctx::Spf, b"scope") => Field::SpfScope,
        (Ctx::Spf, b"result") => Field::SpfResult,
        (Ctx::Spf, b"human_result") => Field::SpfHumanResult,
        _ => Field::None,
    }
}

fn finish_record(record: &mut Record, index: usize) -> Result<(), ReportError> {
    if record.source_ip.is_empty() {
        return Err(ReportError::Invalid(format!("record {} has no source_ip", index + 1)));
    }
    for field in [&mut record.disposition, &mut record.dkim, &mut record.spf] {
        if field.is_empty() {
            "none".clone_into(field);
        }
    }
    Ok(())
}

fn finish(mut report: AggregateReport) -> Result<AggregateReport, ReportError> {
    if report.org_name.is_empty() {
        // Some reporters leave the name out but give their address.
        if let Some(domain) = report.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d) {
            report.org_name = domain.to_string();
        } else {
            return Err(ReportError::Invalid("no org_name".into()));
        }
    }
    if report.report_id.is_empty() {
        return Err(ReportError::Invalid("no report_id".into()));
    }
    if report.policy.domain.is_empty() {
        return Err(ReportError::Invalid("no policy_published domain".into()));
    }
    // RFC 7489 section 6.3: relaxed alignment unless the record says strict.
    for mode in [&mut report.policy.adkim, &mut report.policy.aspf] {
        mode.get_or_insert_with(|| "r".into());
    }
    let domain = report.policy.domain.clone();
    for r in &mut report.records {
        if r.header_from.is_empty() {
            r.header_from.clone_from(&domain);
        }
    }
    Ok(report)
}

fn text(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn word(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| normalise(v))
}

fn ip(v: &str) -> String {
    // Rust reads only canonical dotted quads (no leading zeros), so an IPv4
    // address that parses is already written as its canonical form; only
    // IPv6 needs rewriting (`2001:DB8::1` → `2001:db8::1`).
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => ip.to_string(),
        _ => v.to_string(),
    }
}

/// Unix times a report may name: years 1 to 9999, what a calendar date
/// can say (a value past them would be clamped to something it never said).
const UNIX_TIMES: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Unix seconds; some reporters write them with a fraction.
fn timestamp(v: &str, what: &str) -> Result<i64, ReportError> {
    v.parse::<i64>()
        .ok()
        // A float past i64 saturates, and the range refuses it.
        .or_else(|| v.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
        .filter(|t| UNIX_TIMES.contains(t))
        .ok_or_else(|| ReportError::Invalid(format!("date_range {what} {v:?} is not a Unix time")))
}

/// Bytes as text: UTF-8 (after a BOM) where it is, UTF-16 after its BOM,
/// Latin-1 where the declaration says so, and otherwise UTF-8 with the bad
/// bytes replaced.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        return Cow::Owned(utf16(rest, u16::from_le_bytes));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        return Cow::Owned(utf16(rest, u16::from_be_bytes));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(100)]).to_ascii_lowercase();
            if head.starts_with("<?xml")
                && ["iso-8859-1", "latin1", "windows-1252"]
                    .iter()
                    .any(|e| head.contains(e))
            {
                Cow::Owned(bytes.iter().map(|&b| b as char).collect())
            } else {
                String::from_utf8_lossy(bytes)
            }
        }
    }
}

fn utf16(bytes: &[u8], read: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|c| read([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<AggregateReport, ReportError> {
        parse_aggregate(xml.as_bytes(), &Limits::default())
    }

    const MINIMAL: &str = "<feedback><report_metadata><org_name>r</org_name><report_id>1</report_id>\
        <date_range><begin>10</begin><end>20</end></date_range></report_metadata>\
        <policy_published><domain>Example.COM</domain><p>None</p></policy_published>\
        <record><row><source_ip>2001:DB8::1</source_ip><count>3</count><policy_evaluated>\
        <disposition>none</disposition><dkim>PASS</dkim><spf>fail</spf></policy_evaluated></row>\
        <identifiers></identifiers><auth_results><spf><domain>x.example</domain>\
        <result>hardfail</result></spf></auth_results></record></feedback>";

    #[test]
    fn reads_and_normalises_a_minimal_report() {
        let r = parse(MINIMAL).unwrap();
        assert_eq!(
            (r.org_name.as_str(), r.report_id.as_str(), r.begin, r.end),
            ("r", "1", 10, 20)
        );
        assert_eq!(r.policy.domain, "example.com");
        assert_eq!(r.policy.p.as_deref(), Some("none"));
        let rec = &r.records[0];
        assert_eq!(rec.source_ip, "2001:db8::1");
        assert_eq!((rec.count, rec.dkim.as_str(), rec.spf.as_str()), (3, "pass", "fail"));
        assert_eq!(
            rec.header_from, "example.com",
            "header_from falls back to the policy domain"
        );
        assert_eq!(rec.spf_results[0].result, "fail", "hardfail is fail");
    }

    #[test]
    fn elements_left_open_are_closed_with_what_they_read() {
        // No </record>, no </row>: the record is still a record.
        let open_record = MINIMAL
            .replace("</policy_evaluated></row>", "</policy_evaluated>")
            .replace(
                "</record></feedback>",
                "</record><record><row><source_ip>192.0.2.9</source_ip><count>5</row></feedback>",
            );
        let r = parse(&open_record).unwrap();
        let records: Vec<(&str, u64)> = r.records.iter().map(|x| (x.source_ip.as_str(), x.count)).collect();
        assert_eq!(records, [("2001:db8::1", 3), ("192.0.2.9", 5)]);
    }

    #[test]
    fn counts_and_records_have_ceilings() {
        let huge = MINIMAL.replace("<count>3</count>", "<count>18446744073709551615</count>");
        assert!(matches!(parse(&huge), Err(ReportError::Invalid(m)) if m.contains("plausible")));
        let record = "<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>";
        let many = MINIMAL.replace("</feedback>", &format!("{}</feedback>", record.repeat(3)));
        let limits = Limits {
            max_records: 3,
            ..Limits::default()
        };
        assert!(
            matches!(parse_aggregate(many.as_bytes(), &limits), Err(ReportError::Invalid(m)) if m.contains("more than 3 records"))
        );
        assert_eq!(parse(&many).unwrap().records.len(), 4);
    }

    /// Inputs whose cost would grow with the square of their size if the
    /// reader searched past where it should: each is 2 to 4 MB, read in
    /// milliseconds when linear and in hours when not.
    #[test]
    fn hostile_repetitions_cost_linear_time() {
        let doctypes = format!("{}{MINIMAL}", "<!DOCTYPE>".repeat(300_000));
        assert_eq!(parse(&doctypes).unwrap().records.len(), 1);
        let comments = MINIMAL.replace(
            "<org_name>r</org_name>",
            &format!("<org_name>r<!x{}></org_name>", "<!--".repeat(500_000)),
        );
        assert!(parse(&comments).is_ok());
        let instructions = MINIMAL.replace(
            "<org_name>r</org_name>",
            &format!("<org_name>r<!x{}></org_name>", "<?".repeat(1_000_000)),
        );
        assert!(parse(&instructions).is_ok());
    }

    #[test]
    fn stray_angle_brackets_are_text() {
        let with = |field: &str| MINIMAL.replace("<org_name>r</org_name>", &format!("<org_name>{field}</org_name>"));
        assert_eq!(parse(&with("b<c.d")).unwrap().org_name, "b<c.d");
        assert_eq!(parse(&with("<x@y.z>")).unwrap().org_name, "<x@y.z>");
        assert_eq!(parse(&with("1 < 2")).unwrap().org_name, "1 < 2");
        assert_eq!(
            parse(&with("a<!-- c -->b<?p x?><![CDATA[<&>]]>")).unwrap().org_name,
            "ab<&>"
        );
    }

    #[test]
    fn markup_that_is_not_elements_is_skipped() {
        let doc = format!(
            "<?xml version=\"1.0\"?><!-- <feedback> in a comment --><!DOCTYPE feedback SYSTEM \"x.dtd\">\
             <dmarc:Feedback xmlns=\"urn:x\" other='a>b'>{}",
            &MINIMAL["<feedback>".len()..].replace("</feedback>", "</dmarc:Feedback>")
        );
        let r = parse(&doc).unwrap();
        assert_eq!(r.namespace.as_deref(), Some("urn:x"));
        assert_eq!(r.records.len(), 1);
    }

    #[test]
    fn truncated_and_broken_markup_is_an_error() {
        for cut in [
            MINIMAL.len() / 2,
            MINIMAL.len() - 3,
            MINIMAL.len() - "</feedback>".len(),
        ] {
            assert!(matches!(parse(&MINIMAL[..cut]), Err(ReportError::Xml(_))), "{cut}");
        }
        assert!(matches!(parse("<feedback><!-- never closed"), Err(ReportError::Xml(m)) if m.contains("comment")));
        assert!(matches!(
            parse("<feedback a=\"1><x/></feedback>"),
            Err(ReportError::Xml(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // Mutations of a real report and random bytes, through every path.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"<>/!?-[]&;#x\"' =abcdefghijklmnopqrstuvwxyz0123456789\n\xff\xc3";
        for round in 0..3000 {
            let mut doc = MINIMAL.as_bytes().to_vec();
            if round % 3 == 0 {
                doc = (0..(next() % 300)).map(|_| next() as u8).collect();
            }
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % doc.len().max(1);
                let byte = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 if !doc.is_empty() => doc[at] = byte,
                    1 => doc.insert(at.min(doc.len()), byte),
                    _ => doc.truncate(at),
                }
            }
            let _ = parse_aggregate(&doc, &Limits::default());
            let _ = crate::parse_report(&doc);
        }
    }

    #[test]
    fn entities_are_never_expanded() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\
            <feedback>&lol2;</feedback>";
        assert_eq!(parse(bomb), Err(ReportError::EntityDeclaration));
        let undeclared = MINIMAL.replace("<org_name>r</org_name>", "<org_name>a&amp;b &unknown; &#65;</org_name>");
        assert_eq!(parse(&undeclared).unwrap().org_name, "a&b &unknown; A");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("<feedback>{}{}</feedback>", "<x>".repeat(100), "</x>".repeat(100));
        assert_eq!(parse(&deep), Err(ReportError::TooDeep { limit: 32 }));
    }

    #[test]
    fn byte_order_marks_and_bad_bytes() {
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(MINIMAL.as_bytes());
        assert!(parse_aggregate(&bom, &Limits::default()).is_ok());
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend(MINIMAL.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(parse_aggregate(&utf16, &Limits::default()).unwrap().records.len(), 1);
        let bad = MINIMAL
            .replace("<org_name>r", "<org_name>r\u{fffd}")
            .replace('\u{fffd}', "");
        let mut bytes = bad.into_bytes();
        let at = bytes.windows(4).position(|w| w == b"r</o").unwrap() + 1;
        bytes.insert(at, 0xff);
        assert_eq!(
            parse_aggregate(&bytes, &Limits::default()).unwrap().org_name,
            "r\u{fffd}"
        );
    }

    #[test]
    fn required_parts_are_named_when_missing() {
        let no_id = MINIMAL.replace("<report_id>1</report_id>", "");
        assert_eq!(parse(&no_id), Err(ReportError::Invalid("no report_id".into())));
        let bad_count = MINIMAL.replace("<count>3</count>", "<count>three</count>");
        assert!(matches!(parse(&bad_count), Err(ReportError::Invalid(m)) if m.contains("three")));
        assert!(matches!(parse("<html><body/></html>"), Err(ReportError::NotAReport(_))));
    }
}
