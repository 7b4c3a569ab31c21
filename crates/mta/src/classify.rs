//! What a remote answer means for a recipient: delivered, try later, or
//! bounced (hard or soft, with a reason).
//!
//! The reply class decides between delivered, deferred and bounced; the
//! reason comes from the same classifier that reads bounce messages
//! (`herald-feedback`), so a synchronous answer and a later DSN for the same
//! problem carry the same reason. When the classifier cannot name one, the
//! enhanced code alone picks it.

use herald_types::{BounceClass, SmtpAnswer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Deferred,
    Bounced { class: BounceClass, reason: &'static str },
}

/// RFC 3463 subjects that mean the address or its domain does not exist.
const HARD: [&str; 3] = ["5.1.1", "5.1.2", "5.1.10"];

/// The reason for an enhanced status code, in Sisimai's taxonomy.
pub fn reason_of(enhanced: Option<&str>, code: u16) -> &'static str {
    match enhanced.unwrap_or("") {
        "5.1.1" | "4.1.1" | "5.1.0" => "userunknown",
        "5.1.2" | "4.1.2" | "4.4.4" => "hostunknown",
        "5.1.10" => "notaccept",
        "5.1.6" => "hasmoved",
        "5.2.1" | "4.2.1" => "suspend",
        "5.2.2" | "4.2.2" => "mailboxfull",
        "5.2.3" | "5.3.4" | "4.3.4" => "mesgtoobig",
        "5.3.0" | "4.3.0" | "5.3.5" => "systemerror",
        "4.3.1" | "5.3.1" => "systemfull",
        "4.4.1" | "4.4.2" | "5.4.0" | "4.4.0" => "networkerror",
        "4.4.3" => "systemerror",
        "5.4.4" => "hostunknown",
        "4.4.5" | "4.7.28" | "4.7.0" => "speeding",
        "5.5.4" | "5.5.2" | "5.5.1" => "syntaxerror",
        "5.6.0" | "5.6.7" => "contenterror",
        "5.7.1" | "5.7.0" => "blocked",
        "5.7.26" | "5.7.23" | "5.7.25" => "authfailure",
        "4.7.1" => "blocked",
        "5.7.9" | "5.7.13" => "suspend",
        _ if code >= 500 => "undefined",
        _ => "undefined",
    }
}

pub fn classify(answer: &SmtpAnswer) -> Verdict {
    match answer.code {
        200..=299 => Verdict::Delivered,
        400..=499 => Verdict::Deferred,
        _ => {
            let enhanced = answer.enhanced.as_deref();
            let named = herald_feedback::classify_reply(answer.code, enhanced, &answer.text);
            let reason = if named == herald_feedback::Reason::Undefined {
                reason_of(enhanced, answer.code)
            } else {
                named.as_str()
            };
            let hard = herald_feedback::is_hard(named, true) || enhanced.is_some_and(|e| HARD.contains(&e));
            Verdict::Bounced {
                class: if hard { BounceClass::Hard } else { BounceClass::Soft },
                reason,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: u16, enhanced: Option<&str>) -> SmtpAnswer {
        SmtpAnswer {
            code,
            enhanced: enhanced.map(str::to_owned),
            text: String::new(),
            phase: "rcpt".into(),
        }
    }

    #[test]
    fn reply_classes_decide_and_enhanced_codes_pick_hard_and_reason() {
        assert_eq!(classify(&answer(250, Some("2.0.0"))), Verdict::Delivered);
        assert_eq!(classify(&answer(451, Some("4.3.0"))), Verdict::Deferred);
        assert_eq!(classify(&answer(421, None)), Verdict::Deferred);
        let hard = |e| Verdict::Bounced {
            class: BounceClass::Hard,
            reason: reason_of(Some(e), 550),
        };
        assert_eq!(classify(&answer(550, Some("5.1.1"))), hard("5.1.1"));
        assert_eq!(classify(&answer(550, Some("5.1.2"))), hard("5.1.2"));
        assert_eq!(classify(&answer(556, Some("5.1.10"))), hard("5.1.10"));
        assert_eq!(
            classify(&answer(552, Some("5.2.2"))),
            Verdict::Bounced {
                class: BounceClass::Soft,
                reason: "mailboxfull"
            }
        );
        // A bare 554 says too little to name a reason (Sisimai's "onhold"),
        // and too little to suppress the address.
        assert!(
            matches!(
                classify(&answer(554, None)),
                Verdict::Bounced {
                    class: BounceClass::Soft,
                    reason: "onhold" | "undefined"
                }
            ),
            "{:?}",
            classify(&answer(554, None))
        );
        assert_eq!(reason_of(Some("5.1.1"), 550), "userunknown");
        assert_eq!(reason_of(Some("5.1.2"), 550), "hostunknown");
        assert_eq!(reason_of(Some("5.7.1"), 550), "blocked");
    }
}
