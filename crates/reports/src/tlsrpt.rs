//! SMTP TLS reports (RFC 8460): JSON about the TLS sessions a sender's MTAs
//! tried with a domain's MX hosts, per MTA-STS or DANE policy, with counts
//! of successes and failures and the failures' kinds.
//!
//! Read through `serde_json::Value` rather than a derived schema because
//! real reporters bend it: counts as strings, `mx-host` and `policy-string`
//! as a single string instead of a list, optional fields left out or null,
//! summaries without a failure count. The output types are Herald's own,
//! snake_case, for the store.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ReportError;

/// One TLS report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsReport {
    pub organization_name: String,
    pub report_id: String,
    pub contact_info: Option<String>,
    /// The period covered, Unix seconds (`date-range`, RFC 3339).
    pub begin: i64,
    pub end: i64,
    pub policies: Vec<TlsPolicy>,
}

impl TlsReport {
    /// Sessions the report covers, successful and failed.
    pub fn session_count(&self) -> u64 {
        self.policies
            .iter()
            .map(|p| p.successful.saturating_add(p.failed))
            .sum()
    }
}

/// The sessions under one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsPolicy {
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: String,
    /// The policy as the sender found it (MTA-STS lines, TLSA records).
    pub policy_strings: Vec<String>,
    /// Empty when the reporter left it out (seen with `no-policy-found`).
    pub policy_domain: String,
    pub mx_host: Vec<String>,
    /// `total-successful-session-count`.
    pub successful: u64,
    /// `total-failure-session-count`.
    pub failed: u64,
    pub failures: Vec<FailureDetail>,
}

/// Failed sessions of one kind, from one sending MTA to one MX.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// `starttls-not-supported`, `certificate-expired`,
    /// `validation-failure`, `sts-policy-fetch-error`, …
    pub result_type: String,
    pub sending_mta_ip: Option<String>,
    pub receiving_mx_hostname: Option<String>,
    pub receiving_mx_helo: Option<String>,
    pub receiving_ip: Option<String>,
    pub failed_session_count: u64,
    pub additional_information: Option<String>,
    pub failure_reason_code: Option<String>,
}

/// Reads a TLS report from JSON bytes. serde_json refuses nesting past 128
/// levels, so deep input costs an error, not the stack.
pub(crate) fn parse(bytes: &[u8]) -> Result<TlsReport, ReportError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if bytes.len() > super::MAX_JSON {
        return Err(ReportError::Json(format!(
            "{} bytes of JSON: more than the {} a TLS report may have",
            bytes.len(),
            super::MAX_JSON
        )));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ReportError::Json(e.to_string()))?;
    let Value::Object(root) = value else {
        return Err(ReportError::Json("the JSON is not an object".into()));
    };
    let organization_name = text(&root, "organization-name")
        .ok_or_else(|| ReportError::Json("no organization-name: not an RFC 8460 TLS report".into()))?;
    let report_id = text(&root, "report-id").ok_or_else(|| ReportError::Invalid("no report-id".into()))?;
    let range = root
        .get("date-range")
        .and_then(Value::as_object)
        .ok_or_else(|| ReportError::Invalid("no date-range".into()))?;
    let begin = datetime(range, "start-datetime")?;
    let end = datetime(range, "end-datetime")?;
    let policies = match root.get("policies") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).map(policy).collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ReportError::Invalid("policies is not a list".into())),
    };
    Ok(TlsReport {
        organization_name,
        report_id,
        contact_info: text(&root, "contact-info"),
        begin,
        end,
        policies,
    })
}

fn policy(entry: &Map<String, Value>) -> TlsPolicy {
    let empty = Map::new();
    let policy = entry.get("policy").and_then(Value::as_object).unwrap_or(&empty);
    let summary = entry.get("summary").and_then(Value::as_object).unwrap_or(&empty);
    TlsPolicy {
        policy_type: text(policy, "policy-type").unwrap_or_default().to_ascii_lowercase(),
        policy_strings: texts(policy, "policy-string"),
        policy_domain: text(policy, "policy-domain").unwrap_or_default().to_ascii_lowercase(),
        mx_host: texts(policy, "mx-host"),
        successful: count(summary, "total-successful-session-count"),
        failed: count(summary, "total-failure-session-count"),
        failures: match entry.get("failure-details") {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).map(failure).collect(),
            _ => Vec::new(),
        },
    }
}

fn failure(d: &Map<String, Value>) -> FailureDetail {
    FailureDetail {
        result_type: text(d, "result-type").unwrap_or_default().to_ascii_lowercase(),
        sending_mta_ip: text(d, "sending-mta-ip"),
        receiving_mx_hostname: text(d, "receiving-mx-hostname"),
        receiving_mx_helo: text(d, "receiving-mx-helo"),
        receiving_ip: text(d, "receiving-ip"),
        failed_session_count: count(d, "failed-session-count"),
        additional_information: text(d, "additional-information"),
        failure_reason_code: text(d, "failure-reason-code"),
    }
}

/// A string field, trimmed; numbers are taken as their text; empty is none.
fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list of strings, or a single string standing for a list of one.
fn texts(m: &Map<String, Value>, key: &str) -> Vec<String> {
    match m.get(key) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_string()],
        _ => Vec::new(),
    }
}

/// A count: a number, or a string of digits; absent or unreadable is 0.
fn count(m: &Map<String, Value>, key: &str) -> u64 {
    match m.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
    .min(super::MAX_RECORD_COUNT)
}

/// An RFC 3339 date-time as Unix seconds.
fn datetime(m: &Map<String, Value>, key: &str) -> Result<i64, ReportError> {
    let v = text(m, key).ok_or_else(|| ReportError::Invalid(format!("date-range has no {key}")))?;
    mail_parser::DateTime::parse_rfc3339(&v)
        .filter(mail_parser::DateTime::is_valid)
        .map(|d| d.to_timestamp())
        .ok_or_else(|| ReportError::Invalid(format!("date-range {key} {v:?} is not an RFC 3339 date-time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_reporters_variations() {
        let json = br#"{"organization-name":"R","report-id":"1",
            "date-range":{"start-datetime":"2024-01-09T00:00:00Z","end-datetime":"2024-01-09T23:59:59.000+01:00"},
            "policies":[{"policy":{"policy-type":"STS","mx-host":"mx.example.com","policy-domain":"Example.com"},
              "summary":{"total-successful-session-count":"12"},
              "failure-details":[{"result-type":"starttls-not-supported","failed-session-count":3.0}]}]}"#;
        let r = parse(json).unwrap();
        assert_eq!((r.begin, r.end), (1_704_758_400, 1_704_844_799 - 3600));
        let p = &r.policies[0];
        assert_eq!(
            (p.policy_type.as_str(), p.policy_domain.as_str()),
            ("sts", "example.com")
        );
        assert_eq!(p.mx_host, ["mx.example.com"]);
        assert_eq!((p.successful, p.failed), (12, 0));
        assert_eq!(p.failures[0].failed_session_count, 3);
        assert_eq!(r.session_count(), 12);
    }

    #[test]
    fn other_json_is_not_a_tls_report() {
        assert!(matches!(parse(b"{\"a\":1}"), Err(ReportError::Json(m)) if m.contains("organization-name")));
        assert!(matches!(parse(b"{\"a\":"), Err(ReportError::Json(_))));
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(parse(deep.as_bytes()), Err(ReportError::Json(_))));
        let bad_date = br#"{"organization-name":"R","report-id":"1","date-range":{"start-datetime":"yesterday","end-datetime":"2024-01-09T00:00:00Z"}}"#;
        assert!(matches!(parse(bad_date), Err(ReportError::Invalid(m)) if m.contains("yesterday")));
    }
}
