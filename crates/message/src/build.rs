//! A MIME message from the parts an API caller gives.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;

use crate::{MessageError, html_to_text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub content_type: String,
    pub filename: String,
    pub content: Vec<u8>,
}

/// An address with an optional display name.
pub type Mailbox = (Option<String>, String);

/// What the send API was given, after validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Extra headers, sent as given (encoded when not ASCII).
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// The domain of the generated Message-ID.
    pub id_domain: String,
}

fn address(m: &Mailbox) -> Address<'static> {
    match &m.0 {
        Some(name) => Address::new_address(Some(name.clone()), m.1.clone()),
        None => Address::new_address(None::<String>, m.1.clone()),
    }
}

fn list(ms: &[Mailbox]) -> Address<'static> {
    Address::new_list(ms.iter().map(address).collect())
}

/// Builds the message: multipart/alternative when there is text and HTML
/// (text generated from the HTML when only HTML is given), multipart/mixed
/// around it when there are attachments. Bcc recipients are never written.
pub fn build(d: &Draft) -> Result<Vec<u8>, MessageError> {
    let message_id = format!("{}@{}", uuid::Uuid::now_v7().simple(), d.id_domain);
    let mut b = MessageBuilder::new()
        .from(address(&d.from))
        .subject(Text::new(d.subject.clone()))
        .message_id(message_id);
    if !d.to.is_empty() {
        b = b.to(list(&d.to));
    }
    if !d.cc.is_empty() {
        b = b.cc(list(&d.cc));
    }
    if let Some(r) = &d.reply_to {
        b = b.reply_to(address(r));
    }
    let text = match (&d.text, &d.html) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(html)) => Some(html_to_text(html)),
        (None, None) => None,
    };
    if let Some(t) = text {
        b = b.text_body(t);
    }
    if let Some(h) = &d.html {
        b = b.html_body(h.clone());
    }
    for (name, value) in &d.headers {
        b = b.header(name.clone(), Text::new(value.clone()));
    }
    for a in &d.attachments {
        b = b.attachment(a.content_type.clone(), a.filename.clone(), a.content.clone());
    }
    b.write_to_vec().map_err(|e| MessageError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn draft() -> Draft {
        Draft {
            from: (Some("Acme News".into()), "news@acme.test".into()),
            to: vec![
                (Some("Jane Doe".into()), "jane@example.net".into()),
                (None, "joe@example.net".into()),
            ],
            cc: vec![(None, "boss@example.net".into())],
            reply_to: Some((None, "help@acme.test".into())),
            subject: "Grüße from Acme".into(),
            html: Some("<html><body><p>Hello <b>Jane</b></p></body></html>".into()),
            headers: vec![("X-Campaign".into(), "spring".into())],
            attachments: vec![Attachment {
                content_type: "application/pdf".into(),
                filename: "invoice.pdf".into(),
                content: b"%PDF-1.4 not really".to_vec(),
            }],
            id_domain: "mta.test".into(),
            ..Draft::default()
        }
    }

    #[test]
    fn drafts_build_into_messages_a_parser_reads_back() {
        let raw = build(&draft()).unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("Grüße from Acme"));
        assert_eq!(m.from().unwrap().first().unwrap().address(), Some("news@acme.test"));
        assert_eq!(m.to().unwrap().iter().count(), 2);
        assert!(m.message_id().unwrap().ends_with("@mta.test"));
        assert!(m.date().is_some());
        assert_eq!(m.header_raw("X-Campaign").map(str::trim), Some("spring"));
        let text = m.body_text(0).unwrap();
        assert!(
            text.contains("Hello") && text.contains("Jane"),
            "text generated from HTML: {text}"
        );
        assert!(m.body_html(0).unwrap().contains("<b>Jane</b>"));
        let att = m.attachment(0).unwrap();
        assert_eq!(att.attachment_name(), Some("invoice.pdf"));
        assert_eq!(att.contents(), b"%PDF-1.4 not really");
        // (Random boundaries and ids may spell "bcc"; a header line may not.)
        assert!(
            !String::from_utf8_lossy(&raw)
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:"))
        );
    }

    #[test]
    fn text_only_drafts_stay_single_part() {
        let d = Draft {
            from: (None, "a@acme.test".into()),
            to: vec![(None, "b@example.net".into())],
            subject: "plain".into(),
            text: Some("just text".into()),
            id_domain: "mta.test".into(),
            ..Draft::default()
        };
        let raw = String::from_utf8(build(&d).unwrap()).unwrap();
        assert!(raw.contains("Content-Type: text/plain"), "{raw}");
        assert!(!raw.contains("multipart"), "{raw}");
    }
}
