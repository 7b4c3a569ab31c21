//! Sorting mail that comes to a reply address: what a machine sent is
//! recorded and dropped, what a person wrote is passed on.
//!
//! - auto-replies: RFC 3834 `Auto-Submitted` (anything but `no`), the
//!   headers vacation responders add (`X-Autoreply`, `X-Autorespond`,
//!   Exchange's `X-Auto-Response-Suppress`, `Precedence: auto_reply`), and
//!   out-of-office subjects in the common languages;
//! - challenge-response requests (Boxbe, SpamArrest, ChoiceMail and the
//!   like): their headers, and subjects asking the sender to confirm;
//! - delivery notices: DSNs, read receipts (`disposition-notification`),
//!   feedback reports, and anything from a mailer daemon.

use mail_parser::{HeaderValue, Message, MessageParser};

/// What came to a reply address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    AutoReply,
    Challenge,
    DeliveryNotice,
    /// A person's reply: passed on.
    Person,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoReply => "auto_reply",
            Self::Challenge => "challenge",
            Self::DeliveryNotice => "delivery_notice",
            Self::Person => "reply",
        }
    }
}

const AUTO_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "autoresponse",
    "vacation",
    "away from the office",
    "away from my desk",
    "on leave",
    "abwesenheit",
    "automatische antwort",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "autosvar",
    "automaattinen vastaus",
    "resposta automática",
    "automatyczna odpowiedź",
];

const CHALLENGE_HEADERS: &[&str] = &[
    "x-boxbe-",
    "x-spamarrest",
    "x-spam-arrest",
    "x-choicemail-registration-request",
    "x-bluebottle-request",
    "x-mailbox-challenge",
    "x-cr-",
];

const CHALLENGE_SUBJECTS: &[&str] = &[
    "please confirm your",
    "confirm your email",
    "confirm your message",
    "verify your email",
    "verify your message",
    "sender verification",
    "awaiting your approval",
    "approval required",
    "is protected by",
    "spam arrest",
    "boxbe",
    "challenge",
    "verification required",
    "please verify",
];

const NOTICE_SUBJECTS: &[&str] = &[
    "delivery status notification",
    "undeliverable",
    "undelivered mail",
    "returned mail",
    "delivery failure",
    "mail delivery failed",
    "read:",
    "read receipt",
    "gelesen:",
    "lu :",
];

fn text(v: &HeaderValue<'_>) -> String {
    match v {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(", "),
        HeaderValue::ContentType(c) => format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()),
        _ => String::new(),
    }
}

fn header(m: &Message<'_>, name: &str) -> Option<String> {
    m.header(name).map(text)
}

fn has_header_prefix(m: &Message<'_>, prefixes: &[&str]) -> bool {
    m.headers().iter().any(|h| {
        let name = h.name().to_ascii_lowercase();
        prefixes.iter().any(|p| name.starts_with(p))
    })
}

/// Sorts a message that came to a reply address. `report` is what the
/// bounce reader made of it (a DSN, an ARF report or an auto-reply).
pub fn sort_reply(raw: &[u8], report: Option<&crate::Report>) -> ReplyKind {
    match report.map(|r| &r.kind) {
        Some(crate::Kind::AutoReply) => return ReplyKind::AutoReply,
        Some(crate::Kind::Bounce | crate::Kind::Feedback) => return ReplyKind::DeliveryNotice,
        None => {}
    }
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return ReplyKind::Person;
    };
    let subject = m.subject().unwrap_or_default().to_lowercase();
    let has = |list: &[&str]| list.iter().any(|p| subject.contains(p));

    // Delivery notices first: a bounce of an auto-reply is still a notice.
    let report = match m.header("Content-Type") {
        Some(HeaderValue::ContentType(c)) => {
            c.ctype().eq_ignore_ascii_case("multipart") && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        }
        _ => false,
    };
    let from = m
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if report || from.contains("mailer-daemon") || from.starts_with("postmaster@") || has(NOTICE_SUBJECTS) {
        return ReplyKind::DeliveryNotice;
    }
    if has_header_prefix(&m, CHALLENGE_HEADERS) || has(CHALLENGE_SUBJECTS) {
        return ReplyKind::Challenge;
    }
    let auto_submitted = header(&m, "Auto-Submitted").is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"));
    let precedence = header(&m, "Precedence")
        .map(|p| p.trim().to_ascii_lowercase())
        .is_some_and(|p| matches!(p.as_str(), "auto_reply" | "bulk" | "junk"));
    if auto_submitted
        || precedence
        || m.header("X-Autoreply").is_some()
        || m.header("X-Autorespond").is_some()
        || m.header("X-Auto-Response-Suppress").is_some()
        || has(AUTO_SUBJECTS)
    {
        return ReplyKind::AutoReply;
    }
    ReplyKind::Person
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(headers: &str) -> ReplyKind {
        sort_reply(format!("{headers}\r\n\r\nbody\r\n").as_bytes(), None)
    }

    #[test]
    fn machines_are_told_apart_from_people() {
        assert_eq!(sorted("From: a@x.test\r\nSubject: Re: Spring news"), ReplyKind::Person);
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Re: Spring news\r\nAuto-Submitted: no"),
            ReplyKind::Person
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Re: news\r\nAuto-Submitted: auto-replied"),
            ReplyKind::AutoReply
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Automatic reply: Spring news"),
            ReplyKind::AutoReply
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: =?utf-8?q?R=C3=A9ponse_automatique?="),
            ReplyKind::AutoReply
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Re: news\r\nX-Auto-Response-Suppress: All"),
            ReplyKind::AutoReply
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Please confirm your message\r\nX-Boxbe-Message: 1"),
            ReplyKind::Challenge
        );
        assert_eq!(
            sorted("From: a@x.test\r\nSubject: Re: news\r\nX-Spamarrest-noauth: 1"),
            ReplyKind::Challenge
        );
        assert_eq!(
            sorted("From: MAILER-DAEMON@x.test\r\nSubject: Undelivered Mail Returned to Sender"),
            ReplyKind::DeliveryNotice
        );
        assert_eq!(
            sorted(
                "From: a@x.test\r\nSubject: Read: Spring news\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=x"
            ),
            ReplyKind::DeliveryNotice
        );
    }
}
