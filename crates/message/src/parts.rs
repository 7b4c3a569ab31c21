//! Editing the HTML parts of a MIME message in place.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// Rewrites every HTML part with `edit` (which returns `None` to leave a
/// part alone). A rewritten part is re-encoded as base64 — safe for any
/// content and line length — and its Content-Transfer-Encoding changed to
/// say so; every other byte of the message stays as it was. Parts in a
/// character set other than UTF-8 or ASCII are left alone (re-encoding
/// them would mean changing their charset too). `None` when nothing changed.
pub fn rewrite_html_parts(raw: &[u8], mut edit: impl FnMut(&str) -> Option<String>) -> Option<Vec<u8>> {
    let message = MessageParser::default().parse(raw)?;
    let mut edits: Vec<(usize, usize, usize, Vec<u8>)> = Vec::new();
    for part in &message.parts {
        let PartType::Html(html) = &part.body else { continue };
        let charset = part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .unwrap_or("utf-8")
            .to_ascii_lowercase();
        if !matches!(charset.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
            continue;
        }
        let Some(new) = edit(html) else { continue };
        if new == html.as_ref() {
            continue;
        }
        let (oh, ob, oe) = (
            part.offset_header as usize,
            part.offset_body as usize,
            part.offset_end as usize,
        );
        if oh > ob || ob > oe || oe > raw.len() {
            continue;
        }
        edits.push((oh, ob, oe, encode_part(&raw[oh..ob], &new)));
    }
    if edits.is_empty() {
        return None;
    }
    // From the end, so earlier offsets stay valid.
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = raw.to_vec();
    for (oh, _, oe, bytes) in edits {
        out.splice(oh..oe, bytes);
    }
    Some(out)
}

/// The part's header block with its Content-Transfer-Encoding set to
/// base64, followed by the base64 of `html`.
fn encode_part(header: &[u8], html: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(header);
    let mut fields: Vec<&str> = Vec::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        if line == "\r\n" || line == "\n" {
            break;
        }
        let continuation = line.starts_with(' ') || line.starts_with('\t');
        if !continuation {
            skipping = line.to_ascii_lowercase().starts_with("content-transfer-encoding:");
        }
        if !skipping {
            fields.push(line);
        }
    }
    let mut out = String::with_capacity(header.len() + html.len() * 4 / 3 + 64);
    for f in fields {
        out.push_str(f);
        if !f.ends_with('\n') {
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let b64 = STANDARD.encode(html.as_bytes());
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attachment, Draft, build};
    use mail_parser::MessageParser;

    fn multipart() -> Vec<u8> {
        build(&Draft {
            from: (None, "news@acme.test".into()),
            to: vec![(None, "a@example.net".into())],
            subject: "hi".into(),
            text: Some("text part".into()),
            html: Some("<html><body><a href=\"https://acme.test/x\">x</a> Grüße</body></html>".into()),
            attachments: vec![Attachment {
                content_type: "application/pdf".into(),
                filename: "a.pdf".into(),
                content: vec![7; 500],
            }],
            id_domain: "mta.test".into(),
            ..Draft::default()
        })
        .unwrap()
    }

    #[test]
    fn html_parts_are_rewritten_and_everything_else_kept() {
        let raw = multipart();
        let out = rewrite_html_parts(&raw, |h| {
            Some(h.replace("https://acme.test/x", "https://t.mta.test/c/TOKEN"))
        })
        .unwrap();
        let m = MessageParser::default().parse(&out).unwrap();
        let html = m.body_html(0).unwrap();
        assert!(
            html.contains("https://t.mta.test/c/TOKEN") && html.contains("Grüße"),
            "{html}"
        );
        assert_eq!(m.body_text(0).unwrap().trim(), "text part");
        assert_eq!(m.attachment(0).unwrap().contents(), &[7u8; 500][..]);
        assert_eq!(m.subject(), Some("hi"));
        // The bytes outside the HTML part are the original ones.
        let before = String::from_utf8_lossy(&raw);
        let after = String::from_utf8_lossy(&out);
        let head = |s: &str| s.split("text/html").next().unwrap().to_owned();
        assert_eq!(head(&before), head(&after));
        assert_eq!(
            before.rsplit("application/pdf").next(),
            after.rsplit("application/pdf").next()
        );
    }

    #[test]
    fn unchanged_or_text_only_messages_give_none() {
        assert!(rewrite_html_parts(&multipart(), |h| Some(h.to_owned())).is_none());
        assert!(rewrite_html_parts(&multipart(), |_| None).is_none());
        let plain = b"From: a@b.test\r\nSubject: x\r\n\r\njust text\r\n";
        assert!(rewrite_html_parts(plain, |_| Some("<p>no</p>".into())).is_none());
    }

    #[test]
    fn a_single_part_html_message_is_rewritten_too() {
        let raw = b"From: a@b.test\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>=C3=BC <a href=3D\"https://x.test/\">x</a></body></html>\r\n";
        let out = rewrite_html_parts(raw, |h| Some(h.replace("https://x.test/", "https://t.test/c"))).unwrap();
        let m = MessageParser::default().parse(&out).unwrap();
        assert!(
            m.body_html(0).unwrap().contains("ü <a href=\"https://t.test/c\">"),
            "{}",
            m.body_html(0).unwrap()
        );
        let text = String::from_utf8_lossy(&out);
        assert_eq!(text.matches("Content-Transfer-Encoding").count(), 1, "{text}");
        assert!(text.starts_with("From: a@b.test\r\n"));
    }
}
