//! A message personalised per recipient, kept once.
//!
//! A send with substitutions to a thousand people is one message to the
//! spool, not a thousand: what differs per recipient (subject, text, HTML,
//! the `To:` line) is kept as the draft and each recipient's values, and
//! what is the same for all — the attachments, often the bulk of the
//! bytes — is encoded once into finished MIME parts. Each recipient's copy
//! is rendered just before it is sent ([`render`]), borrowing those parts.
//!
//! Stored form: [`MAGIC`], the JSON of [`Personal`] (its length first), then
//! each attachment part's bytes (its length first). The magic line has no
//! colon, so no message submitted by SMTP or as `raw` can be taken for one:
//! its header block would not parse.

use std::borrow::Cow;
use std::collections::BTreeMap;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::mime::{BodyPart, MimePart};
use serde::{Deserialize, Serialize};

use crate::build::Mailbox;
use crate::template::{Context, substitute};
use crate::{Attachment, MessageError, html_to_text};

/// The first bytes of a stored personalised message.
pub const MAGIC: &[u8] = b"HERALD-PERSONAL/1\r\n";

/// One recipient: their address, display name and values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalRecipient {
    pub name: Option<String>,
    pub address: String,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// The parts of a message that differ per recipient, and the recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub from: Mailbox,
    #[serde(default)]
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The Message-ID every copy carries (without brackets): bounces that
    /// name only it find the message.
    pub message_id: String,
    /// Unix seconds: the `Date:` of every copy.
    pub date: i64,
    /// In the order of the envelope's recipients.
    pub recipients: Vec<PersonalRecipient>,
}

/// Whether a spooled body is a personalised message.
pub fn is_personal(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// The stored form of `personal` with `attachments`, each encoded once,
/// straight into the result (no copy of a part is kept aside).
pub fn encode(personal: &Personal, attachments: &[Attachment]) -> Result<Vec<u8>, MessageError> {
    let json = serde_json::to_vec(personal).map_err(|e| MessageError::Invalid(e.to_string()))?;
    let estimate: usize = attachments
        .iter()
        .map(|a| a.content.len() / 3 * 4 + a.content.len() / 38 + 1024)
        .sum();
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len() + estimate);
    out.extend_from_slice(MAGIC);
    put_len(&mut out, json.len());
    out.extend_from_slice(&json);
    for a in attachments {
        let at = out.len();
        put_len(&mut out, 0);
        MimePart::new(a.content_type.clone(), BodyPart::Binary(Cow::Borrowed(&a.content)))
            .attachment(a.filename.clone())
            .write_part(&mut out);
        let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX).to_le_bytes();
        out[at..at + 4].copy_from_slice(&len);
    }
    Ok(out)
}

/// A stored personalised message read back: the draft and recipients, and
/// the attachment parts, borrowed from `body`.
#[derive(Debug)]
pub struct Stored<'a> {
    pub personal: Personal,
    pub parts: Vec<&'a [u8]>,
}

fn take<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
    let value = rest.get(4..4 + len)?;
    *rest = &rest[4 + len..];
    Some(value)
}

/// Reads a stored personalised message.
pub fn decode(body: &[u8]) -> Result<Stored<'_>, MessageError> {
    let corrupt = || MessageError::Invalid("a damaged personalised message".to_owned());
    let mut rest = body.strip_prefix(MAGIC).ok_or_else(corrupt)?;
    let json = take(&mut rest).ok_or_else(corrupt)?;
    let personal: Personal = serde_json::from_slice(json).map_err(|e| MessageError::Invalid(e.to_string()))?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        parts.push(take(&mut rest).ok_or_else(corrupt)?);
    }
    Ok(Stored { personal, parts })
}

fn address(m: &Mailbox) -> Address<'static> {
    Address::new_address(m.0.clone(), m.1.clone())
}

/// The text of the parts that differ for recipient `index`: subject, text
/// and HTML with their values filled in (HTML-escaped in HTML).
pub fn personalised(p: &Personal, index: usize) -> Option<(String, Option<String>, Option<String>)> {
    let r = p.recipients.get(index)?;
    let subject = substitute(&p.subject, &r.values, Context::Text).replace(['\r', '\n'], " ");
    let html = p.html.as_deref().map(|h| substitute(h, &r.values, Context::Html));
    let text = match (&p.text, &html) {
        (Some(t), _) => Some(substitute(t, &r.values, Context::Text)),
        (None, Some(h)) => Some(html_to_text(h)),
        (None, None) => None,
    };
    Some((subject, text, html))
}

/// Recipient `index`'s copy: their `To:` and values, the shared parts.
pub fn render(stored: &Stored<'_>, index: usize) -> Result<Vec<u8>, MessageError> {
    let p = &stored.personal;
    let r = p
        .recipients
        .get(index)
        .ok_or_else(|| MessageError::Invalid(format!("no recipient {index} in a personalised message")))?;
    let (subject, text, html) = personalised(p, index).unwrap_or_default();
    let mut b = MessageBuilder::new()
        .from(address(&p.from))
        .to(address(&(r.name.clone(), r.address.clone())))
        .subject(Text::new(subject))
        .message_id(p.message_id.clone())
        .date(Date::new(p.date));
    if let Some(reply_to) = &p.reply_to {
        b = b.reply_to(address(reply_to));
    }
    for (name, value) in &p.headers {
        b = b.header(name.clone(), Text::new(value.clone()));
    }
    let mut alternatives = Vec::new();
    if let Some(t) = text {
        alternatives.push(MimePart::new("text/plain", t));
    }
    if let Some(h) = html {
        alternatives.push(MimePart::new("text/html", h));
    }
    let content = if alternatives.len() == 1 {
        alternatives.remove(0)
    } else {
        MimePart::new("multipart/alternative", alternatives)
    };
    let body = if stored.parts.is_empty() {
        content
    } else {
        let mut mixed = vec![content];
        mixed.extend(
            stored
                .parts
                .iter()
                .map(|part| MimePart::raw(BodyPart::Binary(Cow::Borrowed(*part)))),
        );
        MimePart::new("multipart/mixed", mixed)
    };
    b.body(body)
        .write_to_vec()
        .map_err(|e| MessageError::Invalid(e.to_string()))
}

/// The copy for the recipient with this address (as the envelope names
/// them; addresses are unique in a personalised message, case aside).
pub fn render_for(stored: &Stored<'_>, address: &str) -> Result<Vec<u8>, MessageError> {
    let index = stored
        .personal
        .recipients
        .iter()
        .position(|r| r.address.eq_ignore_ascii_case(address))
        .ok_or_else(|| MessageError::Invalid(format!("{address} is not a recipient of this personalised message")))?;
    render(stored, index)
}

/// The size of recipient `index`'s copy, without rendering the shared
/// parts: for checking the size limit before anything is stored.
pub fn rendered_size(p: &Personal, parts_len: usize, index: usize) -> usize {
    let (subject, text, html) = personalised(p, index).unwrap_or_default();
    // Quoted-printable or base64 grows text by a third at most; headers
    // and boundaries take a few kilobytes.
    let variable = subject.len() + text.map_or(0, |t| t.len()) + html.map_or(0, |h| h.len());
    let headers: usize = p.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    parts_len + variable / 3 * 4 + headers + 4096
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn personal() -> Personal {
        let rcpt = |name: &str, address: &str, first: &str| PersonalRecipient {
            name: Some(name.into()),
            address: address.into(),
            values: BTreeMap::from([("name".to_owned(), first.to_owned())]),
        };
        Personal {
            from: (Some("Acme".into()), "news@acme.test".into()),
            reply_to: None,
            subject: "For {{name}}".into(),
            text: None,
            html: Some("<html><body><p>Hi {{name}}</p></body></html>".into()),
            headers: vec![("X-Campaign".into(), "spring".into())],
            message_id: "abc@mta.test".into(),
            date: 1_796_000_000,
            recipients: vec![
                rcpt("Jane", "jane@example.net", "Jane <3"),
                rcpt("Joe", "joe@example.net", "Joe"),
            ],
        }
    }

    #[test]
    fn each_recipient_gets_their_copy_and_the_attachments_are_kept_once() {
        let big = vec![7u8; 300_000];
        let attachments = vec![Attachment {
            content_type: "application/octet-stream".into(),
            filename: "big.bin".into(),
            content: big.clone(),
        }];
        let stored_bytes = encode(&personal(), &attachments).unwrap();
        assert!(is_personal(&stored_bytes));
        assert!(
            stored_bytes.len() < 300_000 * 4 / 3 + 20_000,
            "the attachment once: {}",
            stored_bytes.len()
        );
        let stored = decode(&stored_bytes).unwrap();
        for (i, (who, name)) in [("jane@example.net", "Jane &lt;3"), ("joe@example.net", "Joe")]
            .iter()
            .enumerate()
        {
            let copy = render(&stored, i).unwrap();
            let m = MessageParser::default().parse(&copy).unwrap();
            assert_eq!(m.to().unwrap().first().unwrap().address(), Some(*who));
            assert_eq!(
                m.message_id(),
                Some("abc@mta.test"),
                "every copy carries the Message-ID"
            );
            assert!(
                m.body_html(0).unwrap().contains(&format!("Hi {name}")),
                "{:?}",
                m.body_html(0)
            );
            assert!(m.body_text(0).is_some(), "a text part made from the HTML");
            assert_eq!(m.attachment(0).unwrap().attachment_name(), Some("big.bin"));
            assert_eq!(m.attachment(0).unwrap().contents(), &big[..]);
            assert!(copy.len() <= rendered_size(&stored.personal, stored.parts.iter().map(|p| p.len()).sum(), i));
        }
        assert_eq!(
            MessageParser::default()
                .parse(&render(&stored, 0).unwrap())
                .unwrap()
                .subject(),
            Some("For Jane <3")
        );
        assert!(render(&stored, 2).is_err());
        assert!(
            decode(&stored_bytes[..stored_bytes.len() - 10]).is_err(),
            "a cut body is damage"
        );
    }
}
