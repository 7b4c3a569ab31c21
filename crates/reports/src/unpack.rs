//! Unwrapping what a report arrives in: gzip, raw zlib, zip and mail
//! messages.
//!
//! Reporters attach their XML gzipped (`.xml.gz`), zipped (`.zip`), as a
//! bare zlib stream (AOL: RFC 1950, no gzip header), or as is, under any
//! content type (`application/octet-stream`, Mimecast's bare
//! `application/gzip` body with bytes after the gzip member); TLS reports come
//! as `application/tlsrpt+gzip`; failure reports as a `message/feedback-report`
//! part, or (Netease) base64-encoded under a name. So every part of a
//! message is judged by its content; only a `message/feedback-report` label
//! is taken at its word, as RFC 6591 makes it the mark of a failure report.
//! A message may carry several reports, one per attachment: each is read.
//!
//! Inflating is the one place where a few bytes become many: every byte
//! inflated draws from the input's shared [`Budget`], read in chunks and
//! refused the moment it would pass the limit, so a bomb is never allocated.

use std::io::{Cursor, ErrorKind, Read};

use flate2::read::{GzDecoder, ZlibDecoder};
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::{Budget, Found, Limits, PartError, Report, ReportError, Sniffed, failure, read_any, sniff};

/// Bytes inflated per read. Small enough to sit on the stack; large enough
/// that the per-call cost of the decoder does not show.
const CHUNK: usize = 32 * 1024;

/// Entries of a zip looked at. Reporters put one file in a zip; a zip of
/// thousands of tiny entries is work for nothing.
const MAX_ZIP_ENTRIES: usize = 16;

/// Parts of one message looked at. A report message has two or three; the
/// cap bounds the work a message of thousands of empty parts can cause.
const MAX_PARTS: usize = 64;

/// Lines that may start a MIME boundary (`--…`) in a message before it is
/// parsed: mail-parser builds every part it finds, so a message of millions
/// of empty parts would cost memory long before [`MAX_PARTS`] applies.
const MAX_BOUNDARY_LINES: usize = 4096;

/// Longest header field name taken for one when telling a message from
/// garbage (RFC 5322 sets none; real ones are under 80).
const MAX_FIELD_NAME: usize = 128;

/// Inflates a gzip member. Only the first member is read: Mimecast sends its
/// gzip with a line end after the member, which a reader of concatenated
/// members would take for a broken second one.
pub(crate) fn gunzip(bytes: &[u8], budget: &mut Budget) -> Result<Vec<u8>, ReportError> {
    inflate(GzDecoder::new(bytes), "gzip", budget)
}

/// Inflates a raw zlib stream (RFC 1950), as AOL sends its reports. Bytes
/// after the stream's end are ignored, as after a gzip member.
pub(crate) fn inflate_zlib(bytes: &[u8], budget: &mut Budget) -> Result<Vec<u8>, ReportError> {
    inflate(ZlibDecoder::new(bytes), "zlib", budget)
}

/// Everything a decoder gives, under the budget; its errors named by
/// `format`.
fn inflate(decoder: impl Read, format: &str, budget: &mut Budget) -> Result<Vec<u8>, ReportError> {
    read_bounded(decoder, budget).map_err(|e| match e {
        Unpack::TooLarge => budget.too_large(),
        Unpack::Io(e) => ReportError::Archive(format!("{format}: {}", io_words(&e))),
    })
}

/// Reads every report among the first [`MAX_ZIP_ENTRIES`] entries of a
/// zip. The entries share the budget; one that is no report is skipped, one
/// that fails beside readable ones is listed, one that is hostile ends the
/// search.
pub(crate) fn unzip(bytes: &[u8], limits: &Limits, nesting: usize, budget: &mut Budget) -> Result<Found, ReportError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ReportError::Archive(format!("zip: {e}")))?;
    let mut search = Search::default();
    search.found.unread = archive.len().saturating_sub(MAX_ZIP_ENTRIES);
    for index in 0..archive.len().min(MAX_ZIP_ENTRIES) {
        let entry = archive
            .by_index(index)
            .map_err(|e| ReportError::Archive(format!("zip entry {}: {e}", index + 1)))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let place = format!("zip entry {name:?}");
        let read = read_bounded(entry, budget)
            .map_err(|e| match e {
                Unpack::TooLarge => budget.too_large(),
                Unpack::Io(e) => ReportError::Archive(format!("zip entry {name:?}: {}", io_words(&e))),
            })
            .and_then(|data| read_any(&data, limits, nesting + 1, budget));
        if search.add(read, &place, false, limits).is_break() {
            break;
        }
    }
    search.finish(ReportError::Archive("the zip holds no file".into()))
}

/// The reports of several parts, gathered: what was read, why the rest
/// failed, and the first hostile error, after which nothing more is read.
#[derive(Default)]
struct Search {
    found: Found,
    /// The most telling error, for when nothing is read.
    best: Option<ReportError>,
    failed: Vec<PartError>,
    fatal: Option<ReportError>,
}

impl Search {
    /// Adds one part's result. `html`: the part is a web page, whose errors
    /// say nothing. Breaks once the input turned out hostile.
    fn add(
        &mut self,
        read: Result<Found, ReportError>,
        place: &str,
        html: bool,
        limits: &Limits,
    ) -> std::ops::ControlFlow<()> {
        match read {
            Ok(inner) => self.found.absorb(inner, place, limits.max_reports),
            Err(e) if is_fatal(&e) => {
                self.failed.push(PartError {
                    part: place.to_owned(),
                    error: e.clone(),
                });
                self.fatal = Some(e);
                return std::ops::ControlFlow::Break(());
            }
            Err(_) if html => {}
            Err(e) => {
                // A part that reads but is no report (a schema, a notice) is
                // not a failed report.
                if !matches!(e, ReportError::NotAReport(_) | ReportError::Empty) {
                    self.failed.push(PartError {
                        part: place.to_owned(),
                        error: e.clone(),
                    });
                }
                keep(e, &mut self.best);
            }
        }
        std::ops::ControlFlow::Continue(())
    }

    /// The reports found, with the parts that failed beside them; or,
    /// when none was read, the hostile error, else the most telling one.
    fn finish(mut self, nothing: ReportError) -> Result<Found, ReportError> {
        if self.found.reports.is_empty() {
            return Err(self.fatal.or(self.best).unwrap_or(nothing));
        }
        self.found.unreadable.append(&mut self.failed);
        Ok(self.found)
    }
}

enum Unpack {
    TooLarge,
    Io(std::io::Error),
}

/// Reads a decoder to its end, drawing every byte from the budget before it
/// is kept. The buffer grows at most to what the budget allows.
fn read_bounded(mut reader: impl Read, budget: &mut Budget) -> Result<Vec<u8>, Unpack> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Unpack::Io(e)),
        };
        if budget.take(n).is_err() {
            return Err(Unpack::TooLarge);
        }
        if out.capacity() - out.len() < n {
            // Double as `Vec` would, but never past what may still come.
            let want = (out.capacity() * 2)
                .max(CHUNK)
                .min(out.len() + n + budget.left())
                .max(out.len() + n);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

/// A decoder's error in a postmaster's words.
fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::UnexpectedEof => "the data ends early (a truncated download or attachment)".into(),
        ErrorKind::InvalidInput | ErrorKind::InvalidData => format!("corrupt data ({e})"),
        _ => e.to_string(),
    }
}

/// Errors that end the search at once: the input is hostile, and looking
/// further would only spend more on it.
fn is_fatal(e: &ReportError) -> bool {
    matches!(
        e,
        ReportError::TooLarge { .. }
            | ReportError::TooNested { .. }
            | ReportError::TooDeep { .. }
            | ReportError::EntityDeclaration
    )
}

/// Finds the reports in a mail message: a failure report's
/// `message/feedback-report` part first (a failure report is the whole
/// message), else every part whose content is a report (XML, JSON, gzip,
/// zlib, zip) and every attached message (a forwarded report), and when
/// none of them is one, a plain-text failure report without an ARF part.
/// Only the first [`MAX_PARTS`] parts are read.
pub(crate) fn message(
    bytes: &[u8],
    limits: &Limits,
    nesting: usize,
    budget: &mut Budget,
) -> Result<Found, ReportError> {
    // An mbox's separator line (`From sender date`) is no header.
    let first;
    let bytes = if herald_message::mbox::is_mbox(bytes) {
        first = herald_message::mbox::split_mbox(bytes).into_iter().next();
        first.as_deref().unwrap_or(&[])
    } else {
        bytes
    };
    let not_mail = || ReportError::NotAReport("the content is neither XML, JSON, gzip, zip nor a mail message".into());
    if !starts_with_header(bytes) {
        return Err(not_mail());
    }
    let boundaries = bytes.windows(3).filter(|w| *w == b"\n--").count();
    if boundaries > MAX_BOUNDARY_LINES {
        return Err(ReportError::NotAReport(format!(
            "a message of {boundaries} MIME boundary lines; a report has a handful"
        )));
    }
    let msg = MessageParser::default().parse(bytes).ok_or_else(not_mail)?;
    in_message(&msg, limits, nesting, budget)
}

fn in_message(msg: &Message<'_>, limits: &Limits, nesting: usize, budget: &mut Budget) -> Result<Found, ReportError> {
    if nesting > limits.max_nesting {
        return Err(ReportError::TooNested {
            limit: limits.max_nesting,
        });
    }
    let parts = &msg.parts[..msg.parts.len().min(MAX_PARTS)];

    // A failure report (RFC 6591): its ARF part names it.
    if let Some(fields) = parts.iter().find_map(feedback_fields) {
        return failure::from_arf(msg, &fields).map(|r| Found {
            reports: vec![Report::Failure(r)],
            ..Found::default()
        });
    }

    let mut search = Search::default();
    // Parts past the ceiling are not read, but a report among them is
    // counted, so that what was left out is said.
    search.found.unread = msg.parts[parts.len()..]
        .iter()
        .filter(|p| matches!(&p.body, PartType::Message(_)) || leaf(p).is_some_and(looks_like_report))
        .count();
    let mut attachment = 0;
    let mut hostile = false;
    for part in parts {
        let Some(bytes) = leaf(part) else { continue };
        // Text that starts like a message is the human-readable notice, not
        // a report; an HTML body starts with `<` and fails as XML below.
        if !looks_like_report(bytes) {
            continue;
        }
        attachment += 1;
        let place = place(attachment, part);
        let html = matches!(part.body, PartType::Html(_)) || is_html(bytes);
        if search
            .add(read_any(bytes, limits, nesting + 1, budget), &place, html, limits)
            .is_break()
        {
            hostile = true;
            break;
        }
    }

    if !hostile {
        for part in parts {
            if let PartType::Message(inner) = &part.body {
                attachment += 1;
                let place = place(attachment, part);
                if search
                    .add(in_message(inner, limits, nesting + 1, budget), &place, false, limits)
                    .is_break()
                {
                    hostile = true;
                    break;
                }
            }
        }
    }

    if !hostile
        && search.found.reports.is_empty()
        && let Some(report) = failure::from_text(msg)
    {
        return Ok(Found {
            reports: vec![Report::Failure(report)],
            ..Found::default()
        });
    }
    search.finish(ReportError::NotAReport(
        "the message has no report attached (no XML, JSON, gzip, zlib or zip part, and no \
         message/feedback-report part)"
            .into(),
    ))
}

/// The bytes of a part that holds content (not a container).
fn leaf<'a>(part: &'a MessagePart<'_>) -> Option<&'a [u8]> {
    match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(b),
        PartType::Text(t) | PartType::Html(t) => Some(t.as_bytes()),
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

/// Whether a part's content could be a report (not text, not empty).
fn looks_like_report(bytes: &[u8]) -> bool {
    !matches!(sniff(bytes), Sniffed::Message | Sniffed::Empty)
}

/// How an error names a part: its place among the report-like parts, and
/// its file name when it has one.
fn place(n: usize, part: &MessagePart<'_>) -> String {
    match part.attachment_name() {
        Some(name) => format!("attachment {n} ({:?})", herald_message::scan::clip(name, 200)),
        None => format!("attachment {n}"),
    }
}

/// Keeps the more telling of two errors: one from a part that looked like a
/// report beats "not a report" from the human-readable text.
fn keep(e: ReportError, best: &mut Option<ReportError>) {
    if best.is_none() || matches!(best, Some(ReportError::NotAReport(_))) {
        *best = Some(e);
    }
}

/// Whether the first line is a header field (`Name: value`): what makes
/// bytes a message rather than garbage.
fn starts_with_header(bytes: &[u8]) -> bool {
    let name_len = bytes
        .iter()
        .take(MAX_FIELD_NAME + 1)
        .position(|&b| !(b.is_ascii_graphic() && b != b':'))
        .unwrap_or(bytes.len());
    name_len > 0 && name_len <= MAX_FIELD_NAME && bytes.get(name_len) == Some(&b':')
}

/// The fields of a `message/feedback-report` part, or of a part that is one
/// in all but its content type (starts with `Feedback-Type:`).
fn feedback_fields(part: &MessagePart<'_>) -> Option<String> {
    let bytes: &[u8] = match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b,
        PartType::Text(t) => t.as_bytes(),
        _ => return None,
    };
    let labelled = part
        .content_type()
        .and_then(|c| c.subtype())
        .is_some_and(|s| s.eq_ignore_ascii_case("feedback-report"));
    let head = &bytes[..bytes.len().min(64)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(head.len());
    let looks = head[start..]
        .get(..14)
        .is_some_and(|h| h.eq_ignore_ascii_case(b"feedback-type:"));
    (labelled || looks).then(|| String::from_utf8_lossy(&bytes[..bytes.len().min(failure::MAX_ARF)]).into_owned())
}

fn is_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let lower = head.to_ascii_lowercase();
    herald_message::scan::find(&lower, b"<html").is_some()
        || herald_message::scan::find(&lower, b"<!doctype html").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zip(name: &str, data: &[u8]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        w.start_file(name, opts).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap().into_inner()
    }

    const REPORT: &[u8] = b"<feedback><report_metadata><org_name>r</org_name><report_id>1</report_id>\
        <date_range><begin>1</begin><end>2</end></date_range></report_metadata>\
        <policy_published><domain>example.com</domain></policy_published>\
        <record><row><source_ip>192.0.2.1</source_ip><count>7</count></row></record></feedback>";

    fn small() -> Limits {
        Limits {
            max_unpacked: 64 * 1024,
            ..Limits::default()
        }
    }

    #[test]
    fn a_gzip_bomb_is_refused_within_the_budget() {
        // 16 MiB of zeros deflate to about 16 KiB.
        let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        let mut budget = Budget::new(64 * 1024);
        assert_eq!(
            gunzip(&bomb, &mut budget),
            Err(ReportError::TooLarge { limit: 64 * 1024 })
        );
        assert_eq!(
            crate::parse_report_with(&bomb, &small()),
            Err(ReportError::TooLarge { limit: 64 * 1024 })
        );
    }

    #[test]
    fn a_zip_bomb_is_refused_within_the_budget() {
        let bomb = zip("report.xml", &vec![b'a'; 8 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        assert_eq!(
            crate::parse_report_with(&bomb, &small()),
            Err(ReportError::TooLarge { limit: 64 * 1024 })
        );
    }

    #[test]
    fn the_budget_is_shared_by_all_members() {
        // Two entries of 40 KiB: each fits the 64 KiB budget, both do not.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for name in ["a.txt", "b.txt"] {
            w.start_file(name, opts).unwrap();
            w.write_all(&[b'x'; 40 * 1024]).unwrap();
        }
        let data = w.finish().unwrap().into_inner();
        let err = crate::parse_report_with(&data, &small()).unwrap_err();
        assert_eq!(err, ReportError::TooLarge { limit: 64 * 1024 });
    }

    #[test]
    fn gzip_and_zip_round_trip() {
        let r = crate::parse_report(&gzip(REPORT)).unwrap();
        assert_eq!(r.kind(), "aggregate");
        let r = crate::parse_report(&zip("r.xml", REPORT)).unwrap();
        let Report::Aggregate(r) = r else { panic!("{r:?}") };
        assert_eq!(r.message_count(), 7);
    }

    #[test]
    fn trailing_bytes_after_a_gzip_member_are_ignored() {
        let mut data = gzip(REPORT);
        data.extend_from_slice(b"\r\n");
        let mut budget = Budget::new(1 << 20);
        assert_eq!(gunzip(&data, &mut budget).unwrap(), REPORT);
    }

    #[test]
    fn a_truncated_gzip_is_an_archive_error() {
        let data = gzip(REPORT);
        for cut in [10, data.len() / 2, data.len() - 4] {
            let err = crate::parse_report(&data[..cut]).unwrap_err();
            assert!(
                matches!(&err, ReportError::Archive(m) if m.contains("gzip")),
                "{cut}: {err}"
            );
        }
        let err = crate::parse_report(&zip("r.xml", REPORT)[..60]).unwrap_err();
        assert!(matches!(err, ReportError::Archive(_)), "{err}");
    }

    #[test]
    fn a_report_is_found_by_content_whatever_the_label() {
        let msg = format!(
            "From: dmarc@reporter.example\r\nTo: rua@example.com\r\nSubject: Report\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThis is a DMARC report.\r\n\
             --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            base64_free_encoding(&gzip(REPORT))
        );
        let r = crate::parse_report(msg.as_bytes()).unwrap();
        assert_eq!(r.kind(), "aggregate");
    }

    #[test]
    fn a_message_without_a_report_says_so() {
        let msg = b"From: a@example.com\r\nSubject: hello\r\n\r\nJust text.\r\n";
        let err = crate::parse_report(msg).unwrap_err();
        assert!(matches!(err, ReportError::NotAReport(m) if m.contains("no report attached")));
    }

    #[test]
    fn damaged_archives_and_messages_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let message = format!(
            "From: r@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
             Content-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
            base64_free_encoding(&gzip(REPORT))
        );
        let samples = [gzip(REPORT), zip("r.xml", REPORT), message.into_bytes()];
        for round in 0..2000 {
            let mut data = samples[round % samples.len()].clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % data.len();
                match next() % 3 {
                    0 => data[at] = next() as u8,
                    1 => data.insert(at, next() as u8),
                    _ => data.truncate(at.max(2)),
                }
            }
            let _ = crate::parse_report_with(&data, &small());
        }
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn report(org: &str) -> Vec<u8> {
        String::from_utf8(REPORT.to_vec())
            .unwrap()
            .replace("<org_name>r</org_name>", &format!("<org_name>{org}</org_name>"))
            .into_bytes()
    }

    /// A report message with these attachments (file name, bytes), base64.
    fn mail(attachments: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut msg = String::from(
            "From: noreply-dmarc@reporter.example\r\nTo: rua@example.com\r\nSubject: Reports\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nThese are DMARC reports.\r\n",
        );
        for (name, data) in attachments {
            msg.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64_free_encoding(data)
            ));
        }
        msg.push_str("--b--\r\n");
        msg.into_bytes()
    }

    fn orgs(found: &Found) -> Vec<&str> {
        found
            .reports
            .iter()
            .map(|r| match r {
                Report::Aggregate(a) => a.org_name.as_str(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_raw_zlib_stream_is_read_as_aol_sends_it() {
        let data = zlib(REPORT);
        assert_eq!(data[0], 0x78);
        let Report::Aggregate(r) = crate::parse_report(&data).unwrap() else {
            panic!("not an aggregate report")
        };
        assert_eq!(r.message_count(), 7);
        // Attached to a message under any name, and with bytes after it.
        let mut trailing = data.clone();
        trailing.extend_from_slice(b"\r\n");
        let found = crate::parse_reports(&mail(&[("aol.xml.z", trailing)])).unwrap();
        assert_eq!(orgs(&found), ["r"]);
    }

    #[test]
    fn a_zlib_bomb_is_refused_within_the_budget() {
        let bomb = zlib(&vec![0u8; 16 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
        let mut budget = Budget::new(64 * 1024);
        assert_eq!(
            inflate_zlib(&bomb, &mut budget),
            Err(ReportError::TooLarge { limit: 64 * 1024 })
        );
        // The budget is the one gzip draws on: a zlib half and a gzip half
        // of it together pass it.
        let half = vec![b' '; 40 * 1024];
        let both = mail(&[("a.z", zlib(&half)), ("b.gz", gzip(&half))]);
        let err = crate::parse_reports_within(&both, &small(), &mut Budget::new(64 * 1024)).unwrap_err();
        assert_eq!(err, ReportError::TooLarge { limit: 64 * 1024 });
    }

    #[test]
    fn a_truncated_zlib_stream_is_an_archive_error() {
        let data = zlib(REPORT);
        for cut in [4, data.len() / 2, data.len() - 2] {
            let err = crate::parse_report(&data[..cut]).unwrap_err();
            assert!(
                matches!(&err, ReportError::Archive(m) if m.starts_with("zlib")),
                "{cut}: {err}"
            );
        }
    }

    #[test]
    fn every_report_attached_to_a_message_is_read() {
        let msg = mail(&[
            ("google.xml", report("google")),
            ("yahoo.xml.gz", gzip(&report("yahoo"))),
            ("outlook.zip", zip("outlook.xml", &report("outlook"))),
            ("aol.xml.z", zlib(&report("aol"))),
        ]);
        let found = crate::parse_reports(&msg).unwrap();
        assert_eq!(orgs(&found), ["google", "yahoo", "outlook", "aol"]);
        assert!(found.unreadable.is_empty() && found.unread == 0, "{found:?}");
        // The first alone, for callers that want one.
        assert!(matches!(crate::parse_report(&msg), Ok(Report::Aggregate(a)) if a.org_name == "google"));
    }

    #[test]
    fn a_broken_attachment_beside_good_ones_is_named() {
        let truncated = gzip(&report("yahoo"));
        let msg = mail(&[
            ("google.xml", report("google")),
            ("yahoo.xml.gz", truncated[..truncated.len() / 2].to_vec()),
            ("schema.xml", b"<xs:schema/>".to_vec()),
        ]);
        let found = crate::parse_reports(&msg).unwrap();
        assert_eq!(orgs(&found), ["google"]);
        let said: Vec<String> = found.unreadable.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 1, "a schema is no failed report: {said:?}");
        assert!(
            said[0].starts_with("attachment 2 (\"yahoo.xml.gz\"): the archive cannot be unpacked: gzip:"),
            "{said:?}"
        );
        // Alone, the broken one is the message's error, as before.
        let alone = mail(&[("yahoo.xml.gz", truncated[..truncated.len() / 2].to_vec())]);
        assert!(matches!(crate::parse_reports(&alone), Err(ReportError::Archive(_))));
    }

    #[test]
    fn a_bomb_after_a_report_ends_the_search_but_keeps_the_report() {
        let msg = mail(&[
            ("google.xml", report("google")),
            ("bomb.gz", gzip(&vec![0u8; 1024 * 1024])),
            ("yahoo.xml", report("yahoo")),
        ]);
        let found = crate::parse_reports_within(&msg, &small(), &mut Budget::new(64 * 1024)).unwrap();
        assert_eq!(orgs(&found), ["google"], "nothing is read after the bomb");
        assert_eq!(found.unreadable[0].error, ReportError::TooLarge { limit: 64 * 1024 });
    }

    #[test]
    fn a_thousand_attachments_are_read_up_to_the_ceiling() {
        let attachments: Vec<(String, Vec<u8>)> = (0..1000)
            .map(|i| (format!("r{i}.xml"), report(&format!("org{i}"))))
            .collect();
        let list: Vec<(&str, Vec<u8>)> = attachments.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        let started = std::time::Instant::now();
        let found = crate::parse_reports(&mail(&list)).unwrap();
        // The root and the text part are parts too.
        assert_eq!(found.reports.len(), MAX_PARTS - 2);
        assert_eq!(found.unread, 1000 - (MAX_PARTS - 2));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn a_zip_yields_every_report_up_to_its_ceiling() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for i in 0..MAX_ZIP_ENTRIES + 4 {
            w.start_file(format!("{i}.xml"), opts).unwrap();
            w.write_all(&report(&format!("org{i}"))).unwrap();
        }
        let data = w.finish().unwrap().into_inner();
        let found = crate::parse_reports(&data).unwrap();
        assert_eq!(found.reports.len(), MAX_ZIP_ENTRIES);
        assert_eq!(found.unread, 4);
    }

    #[test]
    fn reports_past_the_ceiling_are_counted_not_read() {
        let msg = mail(&[("a.xml", report("a")), ("b.xml", report("b")), ("c.xml", report("c"))]);
        let limits = Limits {
            max_reports: 2,
            ..Limits::default()
        };
        let found = crate::parse_reports_within(&msg, &limits, &mut Budget::new(1 << 20)).unwrap();
        assert_eq!((orgs(&found), found.unread), (vec!["a", "b"], 1));
    }

    /// Base64 without a dependency, for building test messages.
    fn base64_free_encoding(data: &[u8]) -> String {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for (i, c) in data.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                out.push_str("\r\n");
            }
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    out.push(ABC[(n >> (18 - 6 * k)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}
