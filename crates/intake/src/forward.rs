//! Mail Herald sends in its own name: a person's reply passed on to the
//! account's forwarding address.
//!
//! A stranger on the internet writes the reply, so nothing in it may choose
//! an identity: the notice is a new message from the platform
//! (`forwarding@<bounce domain>`, envelope and `From:`), with the person's
//! address in `Reply-To:` (so answering the notice answers them) and the
//! reply attached unchanged as `message/rfc822`. No tenant's DKIM key signs
//! it — the platform's domain is nobody's sending domain — and no header of
//! the reply is obeyed. Forwards are limited per account, so a flood of
//! replies cannot turn Herald into a mail cannon aimed at a tenant.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_message::{Attachment, Draft, HeaderBlock, authors, build};
use herald_types::{AccountId, EmailAddress};

/// The local part Herald sends its own notices from, at the bounce domain.
pub const FORWARDING_LOCAL: &str = "forwarding";
/// Most characters of the original subject carried into the notice's.
const MAX_SUBJECT: usize = 200;

/// The notice forwarding `original` (a person's reply to `recipient`'s copy
/// of `message`) to `to`, from `forwarding@<bounce_domain>`.
pub fn notice(
    original: &[u8],
    bounce_domain: &str,
    to: &EmailAddress,
    message: &str,
    recipient: &str,
) -> Result<Vec<u8>, herald_message::MessageError> {
    let block = HeaderBlock::parse(original).ok();
    // The person's address, when their From parses cleanly; a reply whose
    // From does not is still passed on, without a Reply-To.
    let person = block
        .as_ref()
        .and_then(|b| authors(b).ok())
        .and_then(|a| a.first_from().cloned());
    let subject: String = block
        .as_ref()
        .and_then(|b| b.get("Subject"))
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SUBJECT)
        .collect();
    let who = person
        .as_ref()
        .map_or_else(|| "someone".to_owned(), ToString::to_string);
    let text = format!(
        "{who} replied to message {message} sent to {recipient}.\r\n\
         The reply is attached as it arrived. Answering this message answers {who}.\r\n"
    );
    build(&Draft {
        from: (
            Some("Herald reply forwarding".to_owned()),
            format!("{FORWARDING_LOCAL}@{bounce_domain}"),
        ),
        to: vec![(None, to.to_string())],
        reply_to: person.map(|p| (None, p.to_string())),
        subject: if subject.is_empty() {
            "Fwd: a reply".to_owned()
        } else {
            format!("Fwd: {subject}")
        },
        text: Some(text),
        // RFC 3834: a machine sent this; auto-responders stay silent.
        headers: vec![("Auto-Submitted".to_owned(), "auto-generated".to_owned())],
        attachments: vec![Attachment {
            content_type: "message/rfc822".to_owned(),
            filename: "reply.eml".to_owned(),
            content: original.to_vec(),
        }],
        id_domain: bounce_domain.to_owned(),
        ..Draft::default()
    })
}

/// Forwards per account per hour, as a token bucket.
#[derive(Debug)]
pub struct ForwardLimit {
    per_hour: u32,
    buckets: Mutex<HashMap<AccountId, (f64, Instant)>>,
}

/// Past this many accounts tracked, full buckets are forgotten.
const TRACKED: usize = 100_000;

impl ForwardLimit {
    pub fn new(per_hour: u32) -> Self {
        Self {
            per_hour,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one forward for `account`; `false` when it has used its hour.
    pub fn take(&self, account: &AccountId) -> bool {
        self.take_at(account, Instant::now(), true)
    }

    /// Whether `account` has a forward left, without taking it (so a reply
    /// refused for another reason costs nothing).
    pub fn has_room(&self, account: &AccountId) -> bool {
        self.take_at(account, Instant::now(), false)
    }

    fn take_at(&self, account: &AccountId, now: Instant, take: bool) -> bool {
        let capacity = f64::from(self.per_hour);
        let rate = capacity / Duration::from_secs(3600).as_secs_f64();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= TRACKED {
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < capacity);
        }
        let (tokens, at) = buckets.entry(account.clone()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPLY: &[u8] = b"From: Jane <jane@example.net>\r\nTo: r123@mta.test\r\nSubject: Re: spring sale\r\n\
DKIM-Signature: v=1; d=example.net; s=x; b=abc\r\nX-Herald-Stream: newsletter\r\n\r\nYes please!\r\n";

    #[test]
    fn a_notice_is_the_platforms_message_with_the_reply_attached() {
        let to = EmailAddress::parse("inbox@acme.test").unwrap();
        let bytes = notice(REPLY, "mta.test", &to, "msg_1", "jane@example.net").unwrap();
        let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        let from = m.from().unwrap().first().unwrap().address().unwrap();
        assert_eq!(from, "forwarding@mta.test");
        assert_eq!(
            m.reply_to().unwrap().first().unwrap().address(),
            Some("jane@example.net")
        );
        assert_eq!(m.subject(), Some("Fwd: Re: spring sale"));
        let top = String::from_utf8_lossy(&bytes[..bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .to_ascii_lowercase();
        assert!(
            !top.contains("dkim-signature") && !top.contains("x-herald"),
            "nothing of the reply's own header: {top}"
        );
        assert!(top.contains("auto-submitted: auto-generated"));
        let attached = m.attachment(0).unwrap();
        assert!(attached.is_message(), "the reply is attached as message/rfc822");
    }

    #[test]
    fn forwards_are_limited_per_account_and_come_back_with_time() {
        let limit = ForwardLimit::new(2);
        let (a, b) = (AccountId::generate(), AccountId::generate());
        let t0 = Instant::now();
        assert!(limit.take_at(&a, t0, false), "looking takes nothing");
        assert!(limit.take_at(&a, t0, true) && limit.take_at(&a, t0, true));
        assert!(
            !limit.take_at(&a, t0, false) && !limit.take_at(&a, t0, true),
            "the third in the hour waits"
        );
        assert!(limit.take_at(&b, t0, true), "another account has its own");
        assert!(
            limit.take_at(&a, t0 + Duration::from_secs(1800), true),
            "half an hour gives one back"
        );
    }
}
