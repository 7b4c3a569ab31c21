//! From a send request to the messages it becomes: every field checked
//! (an error names the field), MIME built, substitutions filled.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use base64::Engine;
// Headers the request's own fields set, or that only Herald writes: the
// document states the same list.
use herald_api_types::patterns::RESERVED_HEADERS;
use herald_api_types::{MailboxInput, RecipientInput, SendMessage};
use herald_message::personal::{Personal, PersonalRecipient};
use herald_message::{Attachment, Draft, HeaderBlock, TemplateContext, build, has_placeholders, substitute};
use herald_types::{AccountId, DEFAULT_STREAM, EmailAddress, Envelope, ReversePath, is_stream_name};
use time::OffsetDateTime;

use crate::ApiError;

/// Recipients one request may name (to, cc and bcc together).
pub const MAX_RECIPIENTS: usize = 1000;
const MAX_TAGS: usize = 10;
const MAX_TAG_LEN: usize = 128;
const MAX_METADATA: usize = 20;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 1000;

/// What the request becomes: one message, or one per `to` recipient when
/// it carries substitutions.
#[derive(Debug)]
pub struct Composed {
    pub messages: Vec<(Envelope, Vec<u8>)>,
    /// The messages are in the personalised stored form
    /// (`herald_message::personal`), for `Submit::submit_personal`.
    pub personal: bool,
}

/// Where and for whom.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub account: &'a AccountId,
    pub client_ip: IpAddr,
    pub id_domain: &'a str,
    pub max_size: usize,
}

struct Rcpt {
    name: Option<String>,
    address: EmailAddress,
    values: BTreeMap<String, String>,
}

fn no_line_breaks(field: &str, v: &str) -> Result<(), ApiError> {
    if v.contains(['\r', '\n']) {
        Err(ApiError::field(field, "must not contain line breaks"))
    } else {
        Ok(())
    }
}

fn address(field: &str, a: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(a.trim()).map_err(|e| ApiError::field(field, e.to_string()))
}

/// `jane@example.net` or `Jane Doe <jane@example.net>`, read by the same
/// parser acceptance reads From fields with.
fn mailbox_text(field: &str, s: &str) -> Result<(Option<String>, EmailAddress), ApiError> {
    no_line_breaks(field, s)?;
    herald_message::mailbox(s.trim()).map_err(|e| ApiError::field(field, e.to_string()))
}

fn mailbox(field: &str, m: &MailboxInput) -> Result<(Option<String>, EmailAddress), ApiError> {
    match m {
        MailboxInput::Text(s) => mailbox_text(field, s),
        MailboxInput::Parts { email, name } => {
            let field_email = format!("{field}.email");
            no_line_breaks(&field_email, email)?;
            let addr = address(&field_email, email)?;
            if let Some(n) = name {
                no_line_breaks(&format!("{field}.name"), n)?;
            }
            Ok((name.clone().filter(|n| !n.trim().is_empty()), addr))
        }
    }
}

fn recipient(field: &str, r: &RecipientInput) -> Result<Rcpt, ApiError> {
    let (parsed, values) = match r {
        RecipientInput::Text(s) => (mailbox_text(field, s)?, BTreeMap::new()),
        RecipientInput::Parts {
            email,
            name,
            substitutions,
        } => (
            mailbox(
                field,
                &MailboxInput::Parts {
                    email: email.clone(),
                    name: name.clone(),
                },
            )?,
            substitutions.clone(),
        ),
    };
    Ok(Rcpt {
        name: parsed.0,
        address: parsed.1,
        values,
    })
}

fn recipients(field: &str, list: &[RecipientInput]) -> Result<Vec<Rcpt>, ApiError> {
    list.iter()
        .enumerate()
        .map(|(i, r)| recipient(&format!("{field}[{i}]"), r))
        .collect()
}

fn header_name_ok(n: &str) -> bool {
    (1..=76).contains(&n.len()) && n.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn headers(given: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, ApiError> {
    given
        .iter()
        .map(|(name, value)| {
            let field = format!("headers.{name}");
            if !header_name_ok(name) {
                return Err(ApiError::field(field, "not a valid header name"));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(ApiError::field(field, "set by the request's own fields or by Herald"));
            }
            if lower.starts_with("x-herald-") {
                return Err(ApiError::field(
                    field,
                    "Herald's controls are the request's stream, tags and metadata",
                ));
            }
            no_line_breaks(&field, value)?;
            Ok((name.clone(), value.clone()))
        })
        .collect()
}

/// The attachments, decoded; each one's base64 text is dropped as soon as
/// it is decoded, so a large request is not held twice.
fn attachments(list: Vec<herald_api_types::AttachmentInput>) -> Result<Vec<Attachment>, ApiError> {
    let engine = base64::engine::general_purpose::STANDARD;
    list.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let field = |f: &str| format!("attachments[{i}].{f}");
            if a.filename.trim().is_empty() {
                return Err(ApiError::field(field("filename"), "must not be empty"));
            }
            no_line_breaks(&field("filename"), &a.filename)?;
            let content_type = a
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let valid_type = content_type.split_once('/').is_some_and(|(t, s)| {
                !t.is_empty() && !s.is_empty() && content_type.bytes().all(|b| b.is_ascii_graphic())
            });
            if !valid_type {
                return Err(ApiError::field(field("content_type"), "expected type/subtype"));
            }
            // Line breaks are tolerated, as base64 from many tools has them.
            let mut compact = a.content.into_bytes();
            compact.retain(|b| !b.is_ascii_whitespace());
            let content = engine
                .decode(&compact)
                .map_err(|e| ApiError::field(field("content"), format!("not valid base64: {e}")))?;
            drop(compact);
            Ok(Attachment {
                content_type,
                filename: a.filename,
                content,
            })
        })
        .collect()
}

/// Tags and metadata, checked.
type Labels = (Vec<String>, Vec<(String, String)>);

fn labels(req: &SendMessage) -> Result<Labels, ApiError> {
    if req.tags.len() > MAX_TAGS {
        return Err(ApiError::field("tags", format!("at most {MAX_TAGS}")));
    }
    let mut tags: Vec<String> = Vec::new();
    for (i, t) in req.tags.iter().enumerate() {
        let t = t.trim();
        if t.is_empty() || t.len() > MAX_TAG_LEN || t.chars().any(char::is_control) {
            return Err(ApiError::field(
                format!("tags[{i}]"),
                format!("1 to {MAX_TAG_LEN} bytes of text"),
            ));
        }
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_owned());
        }
    }
    if req.metadata.len() > MAX_METADATA {
        return Err(ApiError::field("metadata", format!("at most {MAX_METADATA} keys")));
    }
    for (k, v) in &req.metadata {
        let field = format!("metadata.{k}");
        let key_ok = (1..=MAX_METADATA_KEY).contains(&k.len())
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !key_ok {
            return Err(ApiError::field(
                field,
                format!("keys are 1 to {MAX_METADATA_KEY} of a-z, A-Z, 0-9, '_', '-', '.'"),
            ));
        }
        if v.len() > MAX_METADATA_VALUE || v.chars().any(char::is_control) {
            return Err(ApiError::field(
                field,
                format!("values are up to {MAX_METADATA_VALUE} bytes of text"),
            ));
        }
    }
    Ok((tags, req.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
}

/// LF line ends become CRLF, as SMTP needs; CRLF stays.
fn crlf(raw: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw.as_bytes() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Checks the request and builds its messages.
pub fn compose(mut req: SendMessage, origin: &Origin<'_>) -> Result<Composed, ApiError> {
    let to = recipients("to", &req.to)?;
    let cc = recipients("cc", &req.cc)?;
    let bcc = recipients("bcc", &req.bcc)?;
    let total = to.len() + cc.len() + bcc.len();
    if total == 0 {
        return Err(ApiError::field("to", "at least one recipient is needed"));
    }
    if total > MAX_RECIPIENTS {
        return Err(ApiError::field(
            "to",
            format!("at most {MAX_RECIPIENTS} recipients in to, cc and bcc together (got {total})"),
        ));
    }
    let stream = match &req.stream {
        None => DEFAULT_STREAM.to_owned(),
        Some(s) if is_stream_name(s) => s.clone(),
        Some(_) => return Err(ApiError::field("stream", "1 to 32 of a-z, 0-9, '-', '_'")),
    };
    let (tags, metadata) = labels(&req)?;
    let personal = to.iter().any(|r| !r.values.is_empty());
    let envelope = |sender: &EmailAddress, rcpts: Vec<EmailAddress>| Envelope {
        sender: ReversePath::Address(sender.clone()),
        recipients: rcpts,
        account: origin.account.clone(),
        client_ip: origin.client_ip,
        received_at: OffsetDateTime::now_utc(),
        stream: stream.clone(),
        tags: tags.clone(),
        metadata: metadata.clone(),
    };
    let too_large = |size: usize| {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the message is {size} bytes; the limit is {}", origin.max_size),
        )
    };

    if let Some(raw) = &req.raw {
        let extra = [
            ("subject", req.subject.is_some()),
            ("text", req.text.is_some()),
            ("html", req.html.is_some()),
            ("reply_to", req.reply_to.is_some()),
            ("attachments", !req.attachments.is_empty()),
            ("headers", !req.headers.is_empty()),
        ];
        if let Some((field, _)) = extra.iter().find(|(_, set)| *set) {
            return Err(ApiError::field(*field, "cannot be combined with raw"));
        }
        if personal {
            return Err(ApiError::field("to", "substitutions cannot be combined with raw"));
        }
        let body = crlf(raw);
        let block = HeaderBlock::parse(&body).map_err(|e| ApiError::field("raw", e.to_string()))?;
        // The raw message's authors are read (and held to the account's
        // approvals) by acceptance; here they only give the envelope sender
        // when the request names none.
        let authors = herald_message::authors(&block).map_err(|e| ApiError::field("raw", e.to_string()))?;
        let sender = match &req.from {
            Some(m) => mailbox("from", m)?.1,
            None => authors
                .first_from()
                .cloned()
                .ok_or_else(|| ApiError::field("from", "needed when the raw message has no From header"))?,
        };
        if body.len() > origin.max_size {
            return Err(too_large(body.len()));
        }
        let rcpts = unique(to.iter().chain(&cc).chain(&bcc));
        return Ok(Composed {
            messages: vec![(envelope(&sender, rcpts), body)],
            personal: false,
        });
    }

    let from = mailbox(
        "from",
        req.from.as_ref().ok_or_else(|| ApiError::field("from", "required"))?,
    )?;
    let subject = req
        .subject
        .clone()
        .ok_or_else(|| ApiError::field("subject", "required"))?;
    no_line_breaks("subject", &subject)?;
    if req.text.is_none() && req.html.is_none() {
        return Err(ApiError::field("text", "give text, html or both"));
    }
    let reply_to = req.reply_to.as_ref().map(|m| mailbox("reply_to", m)).transpose()?;
    let draft = Draft {
        from: (from.0.clone(), from.1.to_string()),
        to: to.iter().map(|r| (r.name.clone(), r.address.to_string())).collect(),
        cc: cc.iter().map(|r| (r.name.clone(), r.address.to_string())).collect(),
        reply_to: reply_to.map(|(n, a)| (n, a.to_string())),
        subject,
        text: req.text.clone(),
        html: req.html.clone(),
        headers: headers(&req.headers)?,
        attachments: attachments(std::mem::take(&mut req.attachments))?,
        id_domain: origin.id_domain.to_owned(),
    };
    let built = |d: &Draft| -> Result<Vec<u8>, ApiError> {
        let body = build(d).map_err(|e| ApiError::invalid(e.to_string()))?;
        if body.len() > origin.max_size {
            return Err(too_large(body.len()));
        }
        Ok(body)
    };

    if !personal {
        let body = built(&draft)?;
        let rcpts = unique(to.iter().chain(&cc).chain(&bcc));
        return Ok(Composed {
            messages: vec![(envelope(&from.1, rcpts), body)],
            personal: false,
        });
    }
    if !cc.is_empty() {
        return Err(ApiError::field(
            "cc",
            "cannot be combined with substitutions (each recipient gets a copy of their own)",
        ));
    }
    if !bcc.is_empty() {
        return Err(ApiError::field(
            "bcc",
            "cannot be combined with substitutions (each recipient gets a copy of their own)",
        ));
    }
    // One message for every recipient: what differs (subject, text, HTML,
    // the To line) is rendered per recipient at delivery; the attachments
    // are encoded and stored once.
    let mut seen = HashSet::new();
    let mut people = Vec::with_capacity(to.len());
    for r in &to {
        if !seen.insert(r.address.to_string().to_ascii_lowercase()) {
            continue;
        }
        if has_placeholders(&draft.subject) {
            no_line_breaks("subject", &substitute(&draft.subject, &r.values, TemplateContext::Text))?;
        }
        people.push(PersonalRecipient {
            name: r.name.clone(),
            address: r.address.to_string(),
            values: r.values.clone(),
        });
    }
    let rcpts: Vec<EmailAddress> = unique(to.iter());
    let Draft {
        from: draft_from,
        reply_to,
        subject,
        text,
        html,
        headers,
        attachments,
        ..
    } = draft;
    let personal = Personal {
        from: draft_from,
        reply_to,
        subject,
        text,
        html,
        headers,
        message_id: format!(
            "{}@{}",
            herald_types::MessageId::generate().as_str().trim_start_matches("msg_"),
            origin.id_domain
        ),
        date: OffsetDateTime::now_utc().unix_timestamp(),
        recipients: people,
    };
    // The largest copy must fit the limit, as a built message would.
    let parts: usize = attachments
        .iter()
        .map(|a| a.content.len().div_ceil(3) * 4 + a.content.len() / 57 * 2 + 512)
        .sum();
    if let Some(size) = (0..personal.recipients.len())
        .map(|i| herald_message::personal::rendered_size(&personal, parts, i))
        .max()
        .filter(|&size| size > origin.max_size)
    {
        return Err(too_large(size));
    }
    let body =
        herald_message::personal::encode(&personal, &attachments).map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Composed {
        messages: vec![(envelope(&from.1, rcpts), body)],
        personal: true,
    })
}

/// Each address once, in the order first given (case-insensitive).
fn unique<'a>(rcpts: impl Iterator<Item = &'a Rcpt>) -> Vec<EmailAddress> {
    let mut seen = HashSet::new();
    rcpts
        .filter(|r| seen.insert(r.address.to_string().to_ascii_lowercase()))
        .map(|r| r.address.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn origin(account: &AccountId) -> Origin<'_> {
        Origin {
            account,
            client_ip: "127.0.0.1".parse().unwrap(),
            id_domain: "mta.test",
            max_size: 1024 * 1024,
        }
    }

    fn req(json: serde_json::Value) -> SendMessage {
        serde_json::from_value(json).unwrap()
    }

    fn fails(json: serde_json::Value) -> String {
        let account = AccountId::generate();
        let e = compose(req(json), &origin(&account)).unwrap_err();
        e.field.unwrap_or_else(|| format!("(no field) {}", e.message))
    }

    #[test]
    fn a_plain_message_goes_to_every_recipient_once() {
        let account = AccountId::generate();
        let c = compose(
            req(serde_json::json!({
                "from": "Acme <news@acme.test>",
                "to": ["jane@example.net", {"email": "joe@example.net", "name": "Joe"}],
                "cc": ["JANE@example.net"],
                "bcc": ["audit@acme.test"],
                "subject": "Hello",
                "html": "<html><body><p>Hi</p></body></html>",
                "tags": ["welcome", "welcome"],
                "metadata": {"order": "1234"},
                "stream": "newsletter"
            })),
            &origin(&account),
        )
        .unwrap();
        assert_eq!(c.messages.len(), 1);
        let (env, body) = &c.messages[0];
        let rcpts: Vec<_> = env.recipients.iter().map(ToString::to_string).collect();
        assert_eq!(rcpts, ["jane@example.net", "joe@example.net", "audit@acme.test"]);
        assert_eq!(env.sender.to_string(), "news@acme.test");
        assert_eq!(env.stream, "newsletter");
        assert_eq!(env.tags, ["welcome"]);
        let m = MessageParser::default().parse(body).unwrap();
        assert_eq!(m.subject(), Some("Hello"));
        assert!(m.body_text(0).unwrap().contains("Hi"), "text made from the HTML");
        let raw = String::from_utf8_lossy(body);
        assert!(!raw.contains("audit@acme.test"), "bcc never appears in the message");
    }

    #[test]
    fn substitutions_make_one_message_rendered_per_recipient() {
        let account = AccountId::generate();
        let c = compose(
            req(serde_json::json!({
                "from": "news@acme.test",
                "to": [
                    {"email": "jane@example.net", "substitutions": {"name": "Jane", "code": "<A&B>"}},
                    {"email": "joe@example.net", "substitutions": {"name": "Joe"}},
                    {"email": "JANE@example.net", "substitutions": {"name": "again"}}
                ],
                "subject": "For {{name}}",
                "text": "Hello {{name}}, code {{code}}",
                "html": "<html><body>Hello {{name}}, code {{code}}</body></html>",
                "attachments": [{"filename": "a.txt", "content": "aGVsbG8="}]
            })),
            &origin(&account),
        )
        .unwrap();
        assert_eq!(c.messages.len(), 1, "one message, stored once");
        let (env, body) = &c.messages[0];
        let rcpts: Vec<_> = env.recipients.iter().map(ToString::to_string).collect();
        assert_eq!(rcpts, ["jane@example.net", "joe@example.net"], "each address once");
        let stored = herald_message::personal::decode(body).unwrap();
        let jane = MessageParser::default()
            .parse(&herald_message::personal::render_for(&stored, "jane@example.net").unwrap())
            .unwrap()
            .into_owned();
        assert_eq!(jane.subject(), Some("For Jane"));
        assert_eq!(jane.body_text(0).unwrap().trim(), "Hello Jane, code <A&B>");
        assert!(jane.body_html(0).unwrap().contains("code &lt;A&amp;B&gt;"));
        assert_eq!(jane.to().unwrap().first().unwrap().address(), Some("jane@example.net"));
        assert_eq!(jane.to().unwrap().iter().count(), 1);
        let joe = MessageParser::default()
            .parse(&herald_message::personal::render_for(&stored, "joe@example.net").unwrap())
            .unwrap()
            .into_owned();
        assert_eq!(joe.subject(), Some("For Joe"));
        assert_eq!(joe.body_text(0).unwrap().trim(), "Hello Joe, code");
        assert_eq!(joe.attachment(0).unwrap().contents(), b"hello");
    }

    #[test]
    fn raw_messages_are_sent_as_given_with_crlf_lines() {
        let account = AccountId::generate();
        let c = compose(
            req(serde_json::json!({
                "to": ["jane@example.net"],
                "raw": "From: Acme <news@acme.test>\nTo: jane@example.net\nSubject: raw\n\nbody\n"
            })),
            &origin(&account),
        )
        .unwrap();
        let (env, body) = &c.messages[0];
        assert_eq!(env.sender.to_string(), "news@acme.test");
        assert_eq!(
            body,
            b"From: Acme <news@acme.test>\r\nTo: jane@example.net\r\nSubject: raw\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn every_mistake_names_its_field() {
        let base = || serde_json::json!({"from": "a@acme.test", "to": ["b@example.net"], "subject": "s", "text": "t"});
        let with = |k: &str, v: serde_json::Value| {
            let mut j = base();
            j[k] = v;
            j
        };
        assert_eq!(fails(with("from", serde_json::json!("not an address"))), "from");
        assert_eq!(fails(with("to", serde_json::json!(["ok@example.net", "bad"]))), "to[1]");
        assert_eq!(fails(with("to", serde_json::json!([{"email": "x"}]))), "to[0].email");
        assert_eq!(fails(with("to", serde_json::json!([]))), "to");
        let many: Vec<String> = (0..1001).map(|i| format!("r{i}@example.net")).collect();
        assert_eq!(fails(with("bcc", serde_json::json!(many))), "to");
        assert_eq!(fails(with("subject", serde_json::json!("a\r\nBcc: x@y.z"))), "subject");
        assert_eq!(fails(with("stream", serde_json::json!("News Letter"))), "stream");
        assert_eq!(
            fails(with("headers", serde_json::json!({"Bcc": "x@y.z"}))),
            "headers.Bcc"
        );
        assert_eq!(
            fails(with("headers", serde_json::json!({"X-A": "a\nb"}))),
            "headers.X-A"
        );
        assert_eq!(
            fails(with("metadata", serde_json::json!({"bad key": "v"}))),
            "metadata.bad key"
        );
        assert_eq!(fails(with("tags", serde_json::json!([""]))), "tags[0]");
        assert_eq!(
            fails(with(
                "attachments",
                serde_json::json!([{"filename": "a.pdf", "content": "!!"}])
            )),
            "attachments[0].content"
        );
        assert_eq!(
            fails(with("raw", serde_json::json!("From: a@acme.test\n\nx"))),
            "subject"
        );
        let mut no_body = base();
        no_body.as_object_mut().unwrap().remove("text");
        assert_eq!(fails(no_body), "text");
        let mut personal = base();
        personal["to"] = serde_json::json!([{"email": "b@example.net", "substitutions": {"n": "1"}}]);
        personal["cc"] = serde_json::json!(["c@example.net"]);
        assert_eq!(fails(personal), "cc");
    }

    #[test]
    fn messages_over_the_limit_are_refused() {
        let account = AccountId::generate();
        let mut o = origin(&account);
        o.max_size = 100;
        let e = compose(
            req(serde_json::json!({"from": "a@acme.test", "to": ["b@example.net"], "subject": "s", "text": "x".repeat(200)})),
            &o,
        )
        .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
