//! Answers no rule names: the reply class decides between delivered,
//! deferred and bounced; the reason comes from the bounce classifier
//! (`herald-feedback`), or from the enhanced code alone when it cannot
//! name one.

use herald_bounces::Reason;
use herald_types::BounceClass;

use crate::{Answer, Outcome};

/// RFC 3463 subjects that mean the address or its domain does not exist.
const HARD: [&str; 3] = ["5.1.1", "5.1.2", "5.1.10"];

/// The reason for an enhanced status code, in Sisimai's taxonomy.
pub fn reason_of_enhanced(enhanced: Option<&str>) -> Reason {
    match enhanced.unwrap_or("") {
        "5.1.1" | "4.1.1" | "5.1.0" => Reason::UserUnknown,
        "5.1.2" | "4.1.2" | "4.4.4" | "5.4.4" => Reason::HostUnknown,
        "5.1.10" => Reason::NotAccept,
        "5.1.6" => Reason::HasMoved,
        "5.2.1" | "4.2.1" | "5.7.9" | "5.7.13" => Reason::Suspend,
        "5.2.2" | "4.2.2" => Reason::MailboxFull,
        "5.2.3" | "5.3.4" | "4.3.4" => Reason::MesgTooBig,
        "5.3.0" | "4.3.0" | "5.3.5" | "4.4.3" => Reason::SystemError,
        "4.3.1" | "5.3.1" => Reason::SystemFull,
        "4.4.1" | "4.4.2" | "5.4.0" | "4.4.0" => Reason::NetworkError,
        "4.4.5" | "4.7.28" | "4.7.0" => Reason::Speeding,
        "5.5.4" | "5.5.2" | "5.5.1" => Reason::SyntaxError,
        "5.6.0" | "5.6.7" => Reason::ContentError,
        "5.7.1" | "5.7.0" | "4.7.1" => Reason::Blocked,
        "5.7.26" | "5.7.23" | "5.7.25" => Reason::AuthFailure,
        "4.7.5" | "5.7.10" | "5.7.11" => Reason::FailedStartTls,
        _ => Reason::Undefined,
    }
}

/// The classifier's reason for an answer, or the enhanced code's.
pub fn reason(answer: &Answer<'_>) -> Reason {
    let named = herald_bounces::classify_reply(answer.code, answer.enhanced, answer.text);
    if named == Reason::Undefined {
        reason_of_enhanced(answer.enhanced)
    } else {
        named
    }
}

/// Hard for reasons that say the address cannot work, or a 5xx whose
/// enhanced code says so.
pub fn class_of(reason: Reason, answer: &Answer<'_>) -> BounceClass {
    let permanent = answer.code >= 500;
    let hard =
        herald_bounces::is_hard(reason, permanent) || (permanent && answer.enhanced.is_some_and(|e| HARD.contains(&e)));
    if hard { BounceClass::Hard } else { BounceClass::Soft }
}

/// The reply class decides; the reason is named as well as it can be. The
/// retry wait is filled in by the caller.
pub fn classify(answer: &Answer<'_>) -> Outcome {
    match answer.code {
        200..=299 => Outcome::Delivered,
        // Anything else that is not a 5xx (a 3xx where none belongs, a
        // code out of range) is a passing problem, never a bounce.
        500..=599 => {
            let reason = reason(answer);
            Outcome::Bounced {
                class: class_of(reason, answer),
                reason,
            }
        }
        _ => Outcome::Deferred {
            retry_after: std::time::Duration::ZERO,
            reason: reason(answer),
            give_up_after: None,
            then: None,
        },
    }
}
