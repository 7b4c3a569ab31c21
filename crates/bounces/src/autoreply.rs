//! Automatic replies (RFC 3834): vacation and out-of-office answers. They
//! say `Auto-Submitted: auto-replied`, or carry the de-facto headers
//! (`X-Autoreply`, `X-Autorespond`, `X-Vacation`, `Precedence: auto_reply`),
//! or a subject that says so. The recipient is the one who is away: the
//! reply's sender.

use crate::mime::Doc;
use crate::util::{first_address, fold, matches_any};

const SUBJECTS: &[&str] = &[
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automatic reply",
    "automatische antwort",
    "out of office",
    "out of the office",
    "out-of-office",
    "vacation",
    "away from my mail",
    "abwesenheit",
    "respuesta automática",
    "réponse automatique",
    "reponse automatique",
    "absence",
    "on leave",
];

/// The address that answered automatically, or `None` when the message is
/// not an automatic reply.
pub(crate) fn read(doc: &Doc) -> Option<String> {
    let auto = doc.header("auto-submitted").map(fold).unwrap_or_default();
    let subject = fold(doc.header("subject").unwrap_or(""));
    let flagged = auto.starts_with("auto-replied")
        || doc.header("x-autoreply").is_some()
        || doc.header("x-autorespond").is_some()
        || doc.header("x-autoresponder").is_some()
        || doc.header("x-vacation").is_some()
        || doc.header("x-ms-exchange-inbox-rules-loop").is_some()
        || doc.header("precedence").is_some_and(|p| fold(p).contains("auto_reply"));
    let subject_says = matches_any(&subject, SUBJECTS);
    // A subject alone is weak evidence ("Out of office party?"): it counts
    // with an Auto-Submitted value, or when it says it was sent by a machine.
    let by_subject = subject_says && (auto.starts_with("auto-") || looks_like_reply(&subject));
    if !(flagged || by_subject) {
        return None;
    }
    let from = doc.header("from").and_then(first_address).unwrap_or_default();
    Some(from)
}

fn looks_like_reply(subject: &str) -> bool {
    matches_any(subject, &["auto", "automatic", "automatique", "automática"])
        || ["out of office:", "out of the office:", "vacation:", "abwesenheit:"]
            .iter()
            .any(|p| subject.starts_with(p))
}
