//! From bytes to stored rows: reports are read ([`prepare`], CPU only, so an
//! importer can spread it over threads) and then stored in batches
//! ([`crate::Dmarc::store`]). One input may hold several reports (a message
//! with one attached per day, a zip): each becomes a row. Bytes that are no
//! report are kept as a broken report with the reason, and so is an input
//! of which only some reports could be read (with the others' reasons):
//! nothing handed in is dropped.

use herald_api_types::dmarc::{ImportOutcome, ImportStatus};
use herald_reports::{Budget, Limits, Report, parse_reports_within};
use herald_store::{NewBrokenReport, NewReport, ReportKind, Stored};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How a report reached Herald.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Mailed to a report address of the inbound MX.
    Mx,
    /// Posted to `POST /api/v1/dmarc/reports`.
    Api,
    /// `herald dmarc import`.
    Import,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mx => "mx",
            Self::Api => "api",
            Self::Import => "import",
        }
    }
}

/// A report read and ready to store, or bytes kept as broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    Report(NewReport),
    Broken(NewBrokenReport),
}

/// Bytes of a broken report kept: the first 64 MiB of anything larger (a
/// report is megabytes; what is larger is no report, and the start shows
/// what it was).
pub const MAX_BROKEN_KEPT: usize = 64 * 1024 * 1024;
/// Messages of one mbox read; the rest are left out, which the last
/// outcome says.
pub const MAX_MBOX_MESSAGES: usize = 100_000;

/// Reads `bytes` (any kind of report, any wrapping) into what the store
/// keeps: a row per report they hold. Never fails: what cannot be read
/// becomes a broken report.
pub fn prepare(bytes: &[u8], origin: Origin, source_name: Option<String>, now: OffsetDateTime) -> Vec<Prepared> {
    let mut budget = Budget::new(Limits::default().max_unpacked);
    prepare_within(bytes, origin, source_name, now, &mut budget)
}

fn prepare_within(
    bytes: &[u8],
    origin: Origin,
    source_name: Option<String>,
    now: OffsetDateTime,
    budget: &mut Budget,
) -> Vec<Prepared> {
    let found = match parse_reports_within(bytes, &Limits::default(), budget) {
        Ok(found) => found,
        Err(e) => return vec![broken(bytes, origin, source_name, e.to_string(), now)],
    };
    let mut out = Vec::with_capacity(found.reports.len() + 1);
    let mut problems: Vec<String> = found.unreadable.iter().map(ToString::to_string).collect();
    for report in found.reports {
        match to_row(report, origin, source_name.clone(), now) {
            Ok(row) => out.push(Prepared::Report(row)),
            Err(e) => problems.push(e),
        }
    }
    if found.unread > 0 {
        problems.push(format!(
            "{} more report attachments or zip entries were left unread (one input is read up to a ceiling of \
             parts, zip entries and reports)",
            found.unread
        ));
    }
    if !problems.is_empty() {
        let error = match out.len() {
            0 => problems.join("; "),
            n => format!(
                "{n} report{} read from it; not read: {}",
                if n == 1 { "" } else { "s" },
                problems.join("; ")
            ),
        };
        out.push(broken(bytes, origin, source_name, error, now));
    }
    out
}

fn broken(bytes: &[u8], origin: Origin, source_name: Option<String>, error: String, now: OffsetDateTime) -> Prepared {
    let mut error = clean(&error);
    if bytes.len() > MAX_BROKEN_KEPT {
        error.push_str(&format!(" (the first {MAX_BROKEN_KEPT} of {} bytes kept)", bytes.len()));
    }
    Prepared::Broken(NewBrokenReport {
        digest: digest(bytes),
        received_at: now,
        origin: origin.as_str().to_owned(),
        source_name: source_name.map(|n| clean(&n)),
        error,
        raw: bytes[..bytes.len().min(MAX_BROKEN_KEPT)].to_vec(),
    })
}

/// [`prepare`] for each message of an mbox file, or for `bytes` when it
/// is not one. `source_name` gets `#N` (the message's place) for mbox
/// parts. The messages of one mbox share one unpacking budget, so an mbox
/// of bombs costs no more than one.
pub fn prepare_all(bytes: &[u8], origin: Origin, source_name: Option<String>, now: OffsetDateTime) -> Vec<Prepared> {
    let mut budget = Budget::new(Limits::default().max_unpacked);
    if !herald_message::mbox::is_mbox(bytes) {
        return prepare_within(bytes, origin, source_name, now, &mut budget);
    }
    let parts = herald_message::mbox::split_mbox(bytes);
    if parts.is_empty() {
        // Only separators and blank lines: still something handed in,
        // kept as broken so that nothing is dropped without a trace.
        let error = "the mbox holds no message".to_owned();
        return vec![broken(bytes, origin, source_name, error, now)];
    }
    let total = parts.len();
    let mut out: Vec<Prepared> = parts
        .into_iter()
        .take(MAX_MBOX_MESSAGES)
        .enumerate()
        .flat_map(|(i, part)| {
            let name = Some(match &source_name {
                Some(n) => format!("{n}#{}", i + 1),
                None => format!("#{}", i + 1),
            });
            prepare_within(&part, origin, name, now, &mut budget)
        })
        .collect();
    if total > MAX_MBOX_MESSAGES {
        out.push(broken(
            &[],
            origin,
            source_name,
            format!("the mbox holds {total} messages; only the first {MAX_MBOX_MESSAGES} were read"),
            now,
        ));
    }
    out
}

/// Text as the store keeps it: control characters (a NUL from `&#0;` or a
/// raw byte, which PostgreSQL refuses in text) become U+FFFD.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c })
        .collect()
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

/// A Unix time as a date, clamped to the dates `time` can hold (the
/// parsers refuse times past them; this keeps a bad one from turning into
/// 1970).
fn unix(seconds: i64) -> OffsetDateTime {
    let min = time::PrimitiveDateTime::MIN.assume_utc();
    let max = time::PrimitiveDateTime::MAX.assume_utc();
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(if seconds < 0 { min } else { max })
}

/// A report's period, begin first whatever order it was written in.
fn period(begin: i64, end: i64) -> (OffsetDateTime, OffsetDateTime) {
    let (a, b) = (unix(begin), unix(end));
    (a.min(b), a.max(b))
}

fn to_row(
    report: Report,
    origin: Origin,
    source_name: Option<String>,
    now: OffsetDateTime,
) -> Result<NewReport, String> {
    let body = crate::body::encode(&report)?;
    let row = |kind, org_name: String, report_id: String, domain: String, begin, end, records, messages| NewReport {
        kind,
        org_name: clean(&org_name),
        report_id: clean(&report_id),
        domain: clean(&domain),
        begin,
        end,
        received_at: now,
        origin: origin.as_str().to_owned(),
        source_name: source_name.as_deref().map(clean),
        record_count: records,
        message_count: messages,
        body: body.clone(),
    };
    Ok(match &report {
        Report::Aggregate(a) => {
            let (begin, end) = period(a.begin, a.end);
            row(
                ReportKind::Aggregate,
                a.org_name.clone(),
                a.report_id.clone(),
                a.policy.domain.clone(),
                begin,
                end,
                a.records.len() as u64,
                a.message_count(),
            )
        }
        Report::Failure(f) => {
            // A failure report carries no id: what it says is its identity
            // (not its bytes, which differ by the Received field each
            // delivery of the same report adds).
            let identity = herald_reports::FailureReport {
                report_date: None,
                ..f.clone()
            };
            let id = digest(&serde_json::to_vec(&identity).map_err(|e| format!("cannot encode the report: {e}"))?);
            // Dated by its own account of when the message arrived, else
            // by when the report was written; the import time only when
            // it says neither (an archive imported a year late is still
            // counted in its own days).
            let at = f.arrival_date.or(f.report_date).map_or(now, unix);
            let org = f
                .reporting_mta
                .clone()
                .or_else(|| f.user_agent.clone())
                .unwrap_or_else(|| "unknown".to_owned());
            let domain = f.reported_domain.clone().unwrap_or_default().to_ascii_lowercase();
            row(ReportKind::Failure, org, id, domain, at, at, 1, 1)
        }
        Report::TlsRpt(t) => {
            let domain = t
                .policies
                .first()
                .map(|p| p.policy_domain.to_ascii_lowercase())
                .unwrap_or_default();
            let sessions = t.session_count();
            let (begin, end) = period(t.begin, t.end);
            row(
                ReportKind::TlsRpt,
                t.organization_name.clone(),
                t.report_id.clone(),
                domain,
                begin,
                end,
                t.policies.len() as u64,
                sessions,
            )
        }
    })
}

/// What storing `prepared` came to, for the caller.
pub fn outcome(prepared: &Prepared, stored: Stored) -> ImportOutcome {
    match prepared {
        Prepared::Report(r) => ImportOutcome {
            status: match stored {
                Stored::New(_) => ImportStatus::Imported,
                Stored::Duplicate(_) => ImportStatus::Duplicate,
            },
            kind: Some(r.kind.as_str().to_owned()),
            id: stored.id(),
            org_name: Some(r.org_name.clone()),
            report_id: Some(r.report_id.clone()),
            domain: Some(r.domain.clone()),
            records: r.record_count,
            messages: r.message_count,
            error: None,
            source_name: r.source_name.clone(),
        },
        Prepared::Broken(b) => ImportOutcome {
            status: ImportStatus::Failed,
            kind: None,
            id: stored.id(),
            org_name: None,
            report_id: None,
            domain: None,
            records: 0,
            messages: 0,
            error: Some(b.error.clone()),
            source_name: b.source_name.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "<feedback><report_metadata><org_name>Reporter</org_name><report_id>r-1</report_id>\
        <date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>\
        <policy_published><domain>Example.com</domain><p>none</p></policy_published>\
        <record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated><disposition>none</disposition>\
        <dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>\
        </identifiers><auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>\
        <record><row><source_ip>192.0.2.2</source_ip><count>4</count><policy_evaluated><disposition>none</disposition>\
        <dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>\
        </identifiers><auth_results><spf><domain>example.com</domain><result>fail</result></spf></auth_results></record>\
        </feedback>";

    #[test]
    fn an_aggregate_report_becomes_one_row() {
        let now = unix(1_800_000_000);
        let out = prepare(REPORT.as_bytes(), Origin::Api, Some("r.xml".into()), now);
        let [Prepared::Report(row)] = &out[..] else {
            panic!("not read")
        };
        assert_eq!(row.kind, ReportKind::Aggregate);
        assert_eq!(
            (row.org_name.as_str(), row.report_id.as_str(), row.domain.as_str()),
            ("Reporter", "r-1", "example.com")
        );
        assert_eq!((row.record_count, row.message_count), (2, 7));
        assert_eq!(
            (row.begin, row.end, row.received_at),
            (unix(1_700_000_000), unix(1_700_086_399), now)
        );
        assert_eq!(row.origin, "api");
        let body = crate::body::decode(&row.body).expect("the body reads back");
        assert!(matches!(body, Report::Aggregate(a) if a.records.len() == 2));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(bytes).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn the_messages_of_an_mbox_share_one_budget() {
        use base64::Engine as _;
        // Each message carries 40 MiB of zeros gzipped: the first unpacks
        // (and is no report), the second would pass the 64 MiB of the
        // whole mbox.
        let bomb = base64::engine::general_purpose::STANDARD.encode(gzip(&vec![0u8; 40 << 20]));
        let message = format!(
            "From: r@example.net\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n{bomb}\r\n"
        );
        let mbox = format!(
            "From r@example.net Mon Nov 23 08:15:26 2026\n{message}\nFrom r@example.net Mon Nov 23 08:15:27 2026\n{message}\n"
        );
        let out = prepare_all(mbox.as_bytes(), Origin::Import, Some("bombs.mbox".into()), unix(0));
        let errors: Vec<String> = out
            .iter()
            .map(|p| match p {
                Prepared::Broken(b) => b.error.clone(),
                Prepared::Report(r) => panic!("read a report: {r:?}"),
            })
            .collect();
        assert_eq!(errors.len(), 2);
        assert!(!errors[0].contains("unpacks to more than"), "{}", errors[0]);
        assert!(errors[1].contains("unpacks to more than"), "{}", errors[1]);
        assert!(matches!(&out[1], Prepared::Broken(b) if b.source_name.as_deref() == Some("bombs.mbox#2")));
    }

    #[test]
    fn an_mbox_of_only_separators_is_kept_as_broken() {
        // Found by fuzzing (fuzz/regressions/dmarc_unpack): an mbox whose
        // messages are all blank came back as nothing at all.
        for input in [&b"From "[..], b"From a@b Mon Nov 23 08:15:26 2026\n\nFrom x\r\n\r\n"] {
            let out = prepare_all(input, Origin::Import, Some("empty.mbox".into()), unix(0));
            match &out[..] {
                [Prepared::Broken(b)] => {
                    assert_eq!(b.raw, input);
                    assert!(b.error.contains("no message"), "{}", b.error);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A report email with these attachments, base64.
    fn mail(attachments: &[(&str, Vec<u8>)]) -> Vec<u8> {
        use base64::Engine as _;
        let mut msg = String::from(
            "From: noreply@reporter.example\r\nSubject: Reports\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nReports.\r\n",
        );
        for (name, data) in attachments {
            msg.push_str(&format!(
                "--b\r\nContent-Type: application/gzip; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode(data)
            ));
        }
        msg.push_str("--b--\r\n");
        msg.into_bytes()
    }

    #[test]
    fn every_report_of_a_message_is_a_row_and_a_broken_one_is_kept_beside_them() {
        let second = REPORT.replace("<report_id>r-1</report_id>", "<report_id>r-2</report_id>");
        let bad = gzip(second.as_bytes());
        let msg = mail(&[
            ("one.xml.gz", gzip(REPORT.as_bytes())),
            ("two.xml.gz", gzip(second.as_bytes())),
            ("three.xml.gz", bad[..bad.len() / 2].to_vec()),
        ]);
        let out = prepare_all(&msg, Origin::Mx, Some("smtp".into()), unix(0));
        let ids: Vec<&str> = out
            .iter()
            .filter_map(|p| match p {
                Prepared::Report(r) => Some(r.report_id.as_str()),
                Prepared::Broken(_) => None,
            })
            .collect();
        assert_eq!(ids, ["r-1", "r-2"]);
        let Some(Prepared::Broken(b)) = out.last() else {
            panic!("{out:?}")
        };
        assert_eq!(b.raw, msg, "the message is kept whole");
        assert!(
            b.error
                .starts_with("2 reports read from it; not read: attachment 3 (\"three.xml.gz\"): the archive"),
            "{}",
            b.error
        );
    }

    #[test]
    fn a_failure_report_is_dated_by_its_arrival_else_its_own_date() {
        let arf = |arrival: &str| {
            format!(
                "From: ruf@reporter.example\r\nDate: Mon, 01 Dec 2025 10:00:00 +0000\r\nSubject: DMARC failure\r\n\
                 MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nA failure report.\r\n\
                 --b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nVersion: 1\r\n\
                 {arrival}Source-IP: 192.0.2.9\r\nReported-Domain: example.com\r\nAuth-Failure: dmarc\r\n\r\n\
                 --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: x@example.com\r\nSubject: hi\r\n\r\n--b--\r\n"
            )
        };
        let imported = unix(1_800_000_000);
        let at = |text: String| match &prepare(text.as_bytes(), Origin::Import, None, imported)[..] {
            [Prepared::Report(r)] => (r.begin, r.end, r.received_at),
            other => panic!("{other:?}"),
        };
        let arrived = unix(1_764_500_000); // Sun, 30 Nov 2025 10:53:20 UTC
        assert_eq!(
            at(arf("Arrival-Date: Sun, 30 Nov 2025 10:53:20 +0000\r\n")),
            (arrived, arrived, imported)
        );
        let written = unix(1_764_583_200); // the report's Date
        assert_eq!(at(arf("")), (written, written, imported));
        // The report's date is not its identity: the same report dated
        // apart is one report.
        let ids: Vec<String> = [arf(""), arf("").replace("10:00:00", "11:00:00")]
            .iter()
            .map(|t| match &prepare(t.as_bytes(), Origin::Import, None, imported)[..] {
                [Prepared::Report(r)] => r.report_id.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids[0], ids[1]);
    }

    #[test]
    fn control_characters_never_reach_the_store() {
        let xml = REPORT.replace(
            "<org_name>Reporter</org_name>",
            "<org_name>Re&#0;por\u{1}ter</org_name>",
        );
        let out = prepare(xml.as_bytes(), Origin::Api, Some("a\0b".into()), unix(0));
        let [Prepared::Report(row)] = &out[..] else {
            panic!("not read")
        };
        assert_eq!(row.org_name, "Re\u{fffd}por\u{fffd}ter");
        assert_eq!(row.source_name.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn unreadable_bytes_are_kept_with_the_reason() {
        let bytes = b"<feedback><report_metadata><org_name>x</org_name></report_metadata></feedback>";
        let out = prepare(bytes, Origin::Mx, None, unix(0));
        let [Prepared::Broken(b)] = &out[..] else {
            panic!("read a broken report")
        };
        assert!(b.error.contains("report_id"), "{}", b.error);
        assert_eq!(b.raw, bytes);
        assert_eq!(b.digest.len(), 64);
        assert_eq!(b.digest, digest(bytes));
        let o = outcome(&Prepared::Broken(b.clone()), Stored::New(7));
        assert_eq!((o.status, o.id), (ImportStatus::Failed, 7));
    }
}
