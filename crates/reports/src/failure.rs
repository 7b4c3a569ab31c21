//! DMARC failure (forensic) reports: RFC 6591's ARF report with
//! `Feedback-Type: auth-failure`, one per message that failed, with the
//! failed message's header (and sometimes body) returned; and the
//! plain-text look-alike Exim sends without a `message/feedback-report` part.
//!
//! A failure report is about one message, so besides the report fields it
//! keeps what identifies that message (subject, From, To, Message-ID, Date)
//! and where it came from (source IP, envelope, authentication results).
//! ARF reports of other feedback types (`abuse`, `fraud`) are complaints,
//! read by the bounce classifier, and refused here.

use mail_parser::{DateTime, Message, MessageParser, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

use super::ReportError;
use herald_message::scan::{fields, one_line};

/// Bytes of a `message/feedback-report` part read. Real ones are under a
/// kilobyte; the cap bounds the work of a hostile one.
pub(crate) const MAX_ARF: usize = 64 * 1024;

/// Bytes of a plain-text notice read, for the same reason.
const MAX_NOTICE: usize = 256 * 1024;

/// RFC 6591 section 3.1 `Delivery-Result` values.
const DELIVERY_RESULTS: &[&str] = &["delivered", "spam", "policy", "reject", "other"];

/// One DMARC failure report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    /// `auth-failure` (RFC 6591).
    pub feedback_type: String,
    /// ARF `Version` (`1`).
    pub version: Option<String>,
    /// The reporting software (`Lua/1.0`, `OpenDMARC-Filter/1.3.2`).
    pub user_agent: Option<String>,
    /// When the reporter received the message, Unix seconds.
    pub arrival_date: Option<i64>,
    /// When the report was written (the `Date` of its own message), Unix
    /// seconds: what dates a report that gives no `Arrival-Date` (Netease).
    /// Left out of the JSON when unknown; not part of what identifies the
    /// report, as two deliveries of one report may be dated apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_date: Option<i64>,
    /// The IP address that sent the message, canonical when it parses.
    pub source_ip: Option<String>,
    /// The receiver's MTA (the name after `dns;`).
    pub reporting_mta: Option<String>,
    /// The envelope sender, without angle brackets.
    pub original_mail_from: Option<String>,
    /// The envelope recipients, without angle brackets.
    pub original_rcpt_to: Vec<String>,
    /// The reporter's queue id of the message.
    pub original_envelope_id: Option<String>,
    /// The domain the report is about (`Reported-Domain`, else the domain of
    /// the returned message's From), lower-case.
    pub reported_domain: Option<String>,
    /// `Authentication-Results` the reporter computed, white space folded.
    pub authentication_results: Vec<String>,
    /// What failed: `dmarc`, `dkim`, `spf`, `bodyhash`, `signature`, …
    pub auth_failure: Option<String>,
    /// What the receiver did with the message: `delivered`, `spam`,
    /// `policy`, `reject` or `other` (a reporter's own word is mapped to the
    /// RFC 6591 one it contains, else `other`).
    pub delivery_result: Option<String>,
    /// Which identifiers aligned: `none`, `dkim`, `spf`, `dkim,spf`.
    pub identity_alignment: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_selector: Option<String>,
    /// The SPF record the reporter found.
    pub spf_dns: Option<String>,
    /// The returned message's Subject, decoded.
    pub subject: Option<String>,
    /// The returned message's From address.
    pub from: Option<String>,
    /// The returned message's To addresses, comma-separated.
    pub to: Option<String>,
    /// The returned message's Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The returned message's Date, as written.
    pub date: Option<String>,
}

/// Reads a failure report from its message and the text of its
/// `message/feedback-report` part.
pub(crate) fn from_arf(msg: &Message<'_>, arf: &str) -> Result<FailureReport, ReportError> {
    let fields = fields(herald_message::scan::clip(arf, MAX_ARF));
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let all = |name: &'static str| {
        fields
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let feedback_type = get("feedback-type")
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| ReportError::Invalid("the message/feedback-report part has no Feedback-Type field".into()))?;
    if feedback_type != "auth-failure" {
        return Err(ReportError::NotAReport(format!(
            "an ARF report of Feedback-Type {feedback_type}: a complaint, not a DMARC failure report \
             (those are auth-failure, RFC 6591)"
        )));
    }
    let sample = sample_of(msg);
    let mut authentication_results: Vec<String> = all("authentication-results").map(one_line).collect();
    if authentication_results.is_empty() {
        authentication_results = sample.as_ref().map(|s| s.auth_results.clone()).unwrap_or_default();
    }
    let reported_domain = get("reported-domain")
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .or_else(|| sample.as_ref().and_then(|s| s.from_domain.clone()));
    let sample = sample.unwrap_or_default();
    Ok(FailureReport {
        feedback_type,
        version: get("version").map(str::to_string),
        user_agent: get("user-agent").map(str::to_string),
        arrival_date: get("arrival-date").or_else(|| get("received-date")).and_then(unix_time),
        report_date: date_of(msg),
        source_ip: get("source-ip").map(ip),
        reporting_mta: get("reporting-mta").map(mta),
        original_mail_from: get("original-mail-from").and_then(unbracket),
        original_rcpt_to: all("original-rcpt-to").filter_map(unbracket).collect(),
        original_envelope_id: get("original-envelope-id").map(str::to_string),
        reported_domain,
        authentication_results,
        auth_failure: get("auth-failure").map(str::to_ascii_lowercase),
        delivery_result: get("delivery-result").map(delivery_result),
        identity_alignment: get("identity-alignment").map(|v| v.to_ascii_lowercase().replace(' ', "")),
        dkim_domain: get("dkim-domain").map(str::to_ascii_lowercase),
        dkim_selector: get("dkim-selector").map(str::to_string),
        spf_dns: get("spf-dns").map(str::to_string),
        subject: sample.subject,
        from: sample.from,
        to: sample.to,
        message_id: sample.message_id,
        date: sample.date,
    })
}

/// Reads a failure report sent as plain text only, as Exim does:
///
/// ```text
/// A message claiming to be from you has failed the published DMARC
/// policy for your domain.
///
///   Sender Domain: example.com
///   Sender IP Address: 203.0.113.68
///   Received Date: Mon, 07 Apr 2025 23:16:09 +0200
///   SPF Alignment: no
///   DKIM Alignment: no
///   DMARC Results: None, Accept
///
/// ------ This is a copy of the headers that were received before the error
/// was detected.
/// ```
///
/// `None` when the message is not one.
pub(crate) fn from_text(msg: &Message<'_>) -> Option<FailureReport> {
    let text = msg.parts.iter().find_map(|p| match &p.body {
        PartType::Text(t) => Some(herald_message::scan::clip(t, MAX_NOTICE)),
        _ => None,
    })?;
    let lower = text.to_ascii_lowercase();
    let subject = msg.subject().unwrap_or("").to_ascii_lowercase();
    let about_dmarc = lower.contains("dmarc") || subject.contains("dmarc");
    let failed = lower.contains("failed the published dmarc policy")
        || subject.contains("forensic report")
        || subject.contains("failure report");
    if !(about_dmarc && failed) {
        return None;
    }
    let mut report = FailureReport {
        feedback_type: "auth-failure".into(),
        auth_failure: Some("dmarc".into()),
        report_date: date_of(msg),
        ..FailureReport::default()
    };
    let (mut spf_aligned, mut dkim_aligned) = (None, None);
    let block_start = lower
        .find("copy of the headers")
        .and_then(|at| lower[at..].find('\n').map(|nl| at + nl + 1))
        .or_else(|| lower.find("\nreceived:").map(|at| at + 1));
    let notice = &text[..block_start.unwrap_or(text.len())];
    for line in notice.lines() {
        let Some((name, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "sender domain" => report.reported_domain = Some(value.to_ascii_lowercase()),
            "sender ip address" => report.source_ip = Some(ip(value)),
            "received date" => report.arrival_date = unix_time(value),
            "spf alignment" => spf_aligned = Some(value.eq_ignore_ascii_case("yes")),
            "dkim alignment" => dkim_aligned = Some(value.eq_ignore_ascii_case("yes")),
            _ => {}
        }
    }
    if spf_aligned.is_some() || dkim_aligned.is_some() {
        let aligned: Vec<&str> = [(dkim_aligned, "dkim"), (spf_aligned, "spf")]
            .into_iter()
            .filter(|(a, _)| *a == Some(true))
            .map(|(_, m)| m)
            .collect();
        report.identity_alignment = Some(if aligned.is_empty() {
            "none".into()
        } else {
            aligned.join(",")
        });
    }
    let headers = block_start.map(|at| text[at..].trim_start());
    let sample = headers
        .and_then(|h| MessageParser::default().parse_headers(h.as_bytes()))
        .map(|m| sample_from(&m))
        .or_else(|| sample_of(msg));
    if let Some(sample) = sample {
        report.authentication_results = sample.auth_results;
        if report.reported_domain.is_none() {
            report.reported_domain = sample.from_domain;
        }
        report.subject = sample.subject;
        report.from = sample.from;
        report.to = sample.to;
        report.message_id = sample.message_id;
        report.date = sample.date;
    }
    (report.source_ip.is_some() || !report.authentication_results.is_empty()).then_some(report)
}

/// What a failure report says of the message it returns.
#[derive(Debug, Default)]
struct Sample {
    subject: Option<String>,
    from: Option<String>,
    from_domain: Option<String>,
    to: Option<String>,
    message_id: Option<String>,
    date: Option<String>,
    auth_results: Vec<String>,
}

/// The returned message: a `message/rfc822` part, or the header alone in a
/// `text/rfc822-headers` part.
fn sample_of(msg: &Message<'_>) -> Option<Sample> {
    msg.parts.iter().find_map(|part| match &part.body {
        PartType::Message(m) => Some(sample_from(m)),
        PartType::Text(_) | PartType::Binary(_) | PartType::InlineBinary(_) => {
            let sub = part.content_type().and_then(|c| c.subtype())?;
            if !sub.eq_ignore_ascii_case("rfc822-headers") {
                return None;
            }
            let m = MessageParser::default().parse_headers(part.contents())?;
            Some(sample_from(&m))
        }
        _ => None,
    })
}

fn sample_from(m: &Message<'_>) -> Sample {
    let raw = |name: &str| {
        m.headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| one_line(v))
            .filter(|v| !v.is_empty())
    };
    let from = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let from_domain = from
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase());
    let to: Vec<&str> = m
        .to()
        .map(|a| a.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    Sample {
        subject: m.subject().map(one_line),
        from,
        from_domain,
        to: (!to.is_empty()).then(|| to.join(", ")),
        // Kept as written when mail-parser finds no id in it (`<id@ host>`).
        message_id: m
            .message_id()
            .map(str::to_string)
            .or_else(|| raw("message-id").and_then(|v| unbracket(&v))),
        date: raw("date"),
        auth_results: m
            .headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case("authentication-results"))
            .map(|(_, v)| one_line(v))
            .filter(|v| !v.is_empty())
            .collect(),
    }
}

/// The `Date` of a message, as Unix seconds, when it is a real date.
fn date_of(msg: &Message<'_>) -> Option<i64> {
    msg.date().filter(|d| d.is_valid()).map(DateTime::to_timestamp)
}

/// An RFC 5322 date as Unix seconds.
fn unix_time(v: &str) -> Option<i64> {
    DateTime::parse_rfc822(v.trim())
        .filter(DateTime::is_valid)
        .map(|d| d.to_timestamp())
}

/// An address without its angle brackets; `None` for the null sender.
fn unbracket(v: &str) -> Option<String> {
    let v = v.trim();
    let v = v
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(v)
        .trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The address alone: some reporters add the host's name
/// (`192.0.2.1 (mx.example.com)`) or brackets.
fn ip(v: &str) -> String {
    let v = v.split_whitespace().next().unwrap_or("");
    let v = v.trim_start_matches('[').trim_end_matches(']');
    v.parse::<std::net::IpAddr>()
        .map_or_else(|_| v.to_string(), |ip| ip.to_string())
}

/// `dns; mx.example.com` → `mx.example.com`.
fn mta(v: &str) -> String {
    v.rsplit(';').next().unwrap_or(v).trim().to_ascii_lowercase()
}

/// The RFC 6591 word for what the receiver did. Reporters write their own
/// (`smg-policy-action`); the RFC word inside is meant, as parsedmarc reads
/// it.
fn delivery_result(v: &str) -> String {
    let v = v.to_ascii_lowercase();
    DELIVERY_RESULTS
        .iter()
        .find(|r| v.contains(*r))
        .map_or("other", |r| r)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARF: &str = "From: reporter@receiver.example\r\nTo: ruf@example.com\r\nSubject: report\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nA failure report.\r\n\
        --b\r\nContent-Type: message/feedback-report\r\n\r\n\
        Feedback-Type: auth-failure\r\nVersion: 1\r\nUser-Agent: Test/1.0\r\n\
        Original-Mail-From: <bounce@example.com>\r\nOriginal-Rcpt-To: <a@receiver.example>\r\n\
        Original-Rcpt-To: <b@receiver.example>\r\nArrival-Date: Tue, 30 Apr 2019 02:09:00 +0000\r\n\
        Source-IP: [192.0.2.7]\r\nReporting-MTA: dns; MX.receiver.example\r\n\
        Authentication-Results: mx.receiver.example;\r\n dkim=fail header.d=example.com\r\n\
        Auth-Failure: dmarc\r\nDelivery-Result: Rejected\r\nIdentity-Alignment: none\r\n\r\n\
        --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
        From: \"Shop\" <news@Example.COM>\r\nTo: a@receiver.example\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n\
        Message-ID: <1@example.com>\r\nDate: Tue, 30 Apr 2019 02:08:00 +0000\r\n\r\n--b--\r\n";

    fn parse(raw: &str) -> Result<crate::Report, ReportError> {
        crate::parse_report(raw.as_bytes())
    }

    #[test]
    fn reads_an_rfc_6591_report() {
        let crate::Report::Failure(r) = parse(ARF).unwrap() else {
            panic!()
        };
        assert_eq!(r.feedback_type, "auth-failure");
        assert_eq!(r.arrival_date, Some(1_556_590_140));
        assert_eq!(r.source_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(r.reporting_mta.as_deref(), Some("mx.receiver.example"));
        assert_eq!(r.original_mail_from.as_deref(), Some("bounce@example.com"));
        assert_eq!(r.original_rcpt_to, ["a@receiver.example", "b@receiver.example"]);
        assert_eq!(
            r.authentication_results,
            ["mx.receiver.example; dkim=fail header.d=example.com"]
        );
        assert_eq!(r.delivery_result.as_deref(), Some("reject"));
        assert_eq!(
            r.reported_domain.as_deref(),
            Some("example.com"),
            "from the sample's From"
        );
        assert_eq!(r.subject.as_deref(), Some("Café"));
        assert_eq!(r.message_id.as_deref(), Some("1@example.com"));
    }

    #[test]
    fn complaints_are_not_failure_reports() {
        let abuse = ARF.replace("Feedback-Type: auth-failure", "Feedback-Type: abuse");
        assert!(matches!(parse(&abuse), Err(ReportError::NotAReport(m)) if m.contains("abuse")));
    }

    #[test]
    fn delivery_results_map_to_rfc_words() {
        assert_eq!(delivery_result("smg-policy-action"), "policy");
        assert_eq!(delivery_result("Delivered"), "delivered");
        assert_eq!(delivery_result("quarantined"), "other");
    }
}
