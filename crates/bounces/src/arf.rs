//! Feedback-loop complaints: ARF (RFC 5965, `multipart/report;
//! report-type=feedback-report` with a `message/feedback-report` part), and
//! the older non-ARF formats still sent by some providers (Microsoft's JMRP
//! with `X-HmXmrOriginalRecipient`, Apple Mail's one-click unsubscribe).
//!
//! The recipient is who complained: `Original-Rcpt-To` (one per address),
//! else `Removal-Recipient`, else the `To` of the returned message.

use crate::mime::Doc;
use crate::util::{addresses, fields, first_address};
use crate::{Failure, Reason};

/// The complaints in a report; empty when it is not one.
pub(crate) fn read(doc: &Doc) -> Vec<Failure> {
    let mut feedback_type = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut remote = None;
    for part in &doc.feedback {
        for (name, value) in fields(part) {
            match name.as_str() {
                "feedback-type" if feedback_type.is_none() => {
                    feedback_type = value.split_whitespace().next().map(|s| s.to_ascii_lowercase())
                }
                "original-rcpt-to" | "removal-recipient" => {
                    for (_, a) in addresses(&value) {
                        if !recipients.contains(&a) {
                            recipients.push(a);
                        }
                    }
                }
                "reporting-mta" => remote = value.split(';').next_back().map(|s| s.trim().to_ascii_lowercase()),
                _ => {}
            }
        }
    }
    let jmrp = doc.original_header("x-hmxmroriginalrecipient").and_then(first_address);
    let apple = doc
        .header("x-apple-unsubscribe")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if doc.feedback.is_empty() && jmrp.is_none() && !apple {
        return Vec::new();
    }
    if apple && feedback_type.is_none() {
        feedback_type = Some("opt-out".into());
    }
    if recipients.is_empty() {
        let fallback = jmrp
            .or_else(|| doc.original_header("to").and_then(first_address))
            .or_else(|| {
                if apple {
                    doc.header("to").and_then(first_address)
                } else {
                    None
                }
            });
        recipients.extend(fallback);
    }
    let feedback_type = feedback_type.or(Some("abuse".into()));
    if recipients.is_empty() {
        recipients.push(String::new());
    }
    let diagnostic = doc
        .texts
        .first()
        .map(|t| crate::util::one_line(crate::util::clip(t, 1024)))
        .unwrap_or_default();
    recipients
        .into_iter()
        .map(|recipient| Failure {
            recipient,
            status: None,
            reply_code: None,
            reason: Reason::Feedback,
            hard: false,
            action: None,
            diagnostic: diagnostic.clone(),
            remote_mta: remote.clone(),
            feedback_type: feedback_type.clone(),
        })
        .collect()
}
