//! From bytes to stored rows: a report is read ([`prepare`], CPU only, so an
//! importer can spread it over threads) and then stored in batches
//! ([`crate::Dmarc::store`]). Bytes that are no report are kept as a broken
//! report with the reason: nothing handed in is dropped.

use herald_api_types::dmarc::{ImportOutcome, ImportStatus};
use herald_feedback::dmarc::{Report, parse_report};
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

/// Reads `bytes` (any kind of report, any wrapping) into what the store
/// keeps. Never fails: what cannot be read becomes a broken report.
pub fn prepare(bytes: &[u8], origin: Origin, source_name: Option<String>, now: OffsetDateTime) -> Prepared {
    let parsed = parse_report(bytes).map_err(|e| e.to_string());
    match parsed.and_then(|report| to_row(report, bytes, origin, source_name.clone(), now)) {
        Ok(row) => Prepared::Report(row),
        Err(error) => Prepared::Broken(NewBrokenReport {
            digest: digest(bytes),
            received_at: now,
            origin: origin.as_str().to_owned(),
            source_name,
            error,
            raw: bytes.to_vec(),
        }),
    }
}

/// [`prepare`] for each message of an mbox file, or for `bytes` when it
/// is not one. `source_name` gets `#N` (the message's place) for mbox parts.
pub fn prepare_all(bytes: &[u8], origin: Origin, source_name: Option<String>, now: OffsetDateTime) -> Vec<Prepared> {
    if !herald_feedback::mbox::is_mbox(bytes) {
        return vec![prepare(bytes, origin, source_name, now)];
    }
    herald_feedback::mbox::split_mbox(bytes)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let name = Some(match &source_name {
                Some(n) => format!("{n}#{}", i + 1),
                None => format!("#{}", i + 1),
            });
            prepare(part, origin, name, now)
        })
        .collect()
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

fn unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn to_row(
    report: Report,
    bytes: &[u8],
    origin: Origin,
    source_name: Option<String>,
    now: OffsetDateTime,
) -> Result<NewReport, String> {
    let body = crate::body::encode(&report)?;
    let row = |kind, org_name, report_id, domain, begin, end, records, messages| NewReport {
        kind,
        org_name,
        report_id,
        domain,
        begin,
        end,
        received_at: now,
        origin: origin.as_str().to_owned(),
        source_name: source_name.clone(),
        record_count: records,
        message_count: messages,
        body: body.clone(),
    };
    Ok(match &report {
        Report::Aggregate(a) => {
            let (begin, end) = (unix(a.begin.min(a.end)), unix(a.end.max(a.begin)));
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
            // A failure report carries no id: its bytes are its identity.
            let at = f.arrival_date.map_or(now, unix);
            let org = f
                .reporting_mta
                .clone()
                .or_else(|| f.user_agent.clone())
                .unwrap_or_else(|| "unknown".to_owned());
            let domain = f.reported_domain.clone().unwrap_or_default().to_ascii_lowercase();
            row(ReportKind::Failure, org, digest(bytes), domain, at, at, 1, 1)
        }
        Report::TlsRpt(t) => {
            let domain = t
                .policies
                .first()
                .map(|p| p.policy_domain.to_ascii_lowercase())
                .unwrap_or_default();
            let sessions = t.policies.iter().map(|p| p.successful + p.failed).sum();
            row(
                ReportKind::TlsRpt,
                t.organization_name.clone(),
                t.report_id.clone(),
                domain,
                unix(t.begin.min(t.end)),
                unix(t.end.max(t.begin)),
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
        let Prepared::Report(row) = prepare(REPORT.as_bytes(), Origin::Api, Some("r.xml".into()), now) else {
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

    #[test]
    fn unreadable_bytes_are_kept_with_the_reason() {
        let bytes = b"<feedback><report_metadata><org_name>x</org_name></report_metadata></feedback>";
        let Prepared::Broken(b) = prepare(bytes, Origin::Mx, None, unix(0)) else {
            panic!("read a broken report")
        };
        assert!(b.error.contains("report_id"), "{}", b.error);
        assert_eq!(b.raw, bytes);
        assert_eq!(b.digest.len(), 64);
        assert_eq!(b.digest, digest(bytes));
        let o = outcome(&Prepared::Broken(b), Stored::New(7));
        assert_eq!((o.status, o.id), (ImportStatus::Failed, 7));
    }
}
