//! What a sender should fix in a message's HTML before mailbox providers
//! and readers judge it: warnings, never refusals (the send API returns them
//! beside its answer).
//!
//! - no text part (Herald makes one from the HTML; a written one reads
//!   better and some filters score HTML-only mail higher),
//! - no `<html>` or `<body>` element (the open pixel and some clients need
//!   a body),
//! - images without `alt` text (what readers with images off see),
//! - HTML over 102 KB (Gmail clips the rest, open pixel included),
//! - links through URL shorteners (spam filters distrust them, and they
//!   hide where a link goes).
//!
//! The HTML is read with lol_html, as the tracking rewriter reads it.

use std::cell::{Cell, RefCell};

use lol_html::{RewriteStrSettings, element, rewrite_str};

/// Gmail clips a message's HTML past this many bytes.
pub const GMAIL_CLIP: usize = 102 * 1024;

/// Hosts that only redirect elsewhere.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "bit.do",
    "t.ly",
    "s.id",
    "lnkd.in",
    "shorte.st",
    "adf.ly",
    "v.gd",
    "qr.ae",
    "trib.al",
    "soo.gd",
    "bl.ink",
    "clck.ru",
    "x.co",
    "tr.im",
    "cli.gs",
    "mcaf.ee",
    "su.pr",
    "db.tt",
    "youtu.be",
    "amzn.to",
    "fb.me",
    "wp.me",
    "rebrandly.com",
    "short.io",
    "shorturl.com",
    "tinyurl.is",
    "u.to",
];

/// One thing to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Stable: `text_missing`, `html_no_html`, `html_no_body`,
    /// `image_no_alt`, `html_clipped`, `url_shortener`.
    pub code: &'static str,
    pub message: String,
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.trim();
    let (scheme, rest) = rest.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn shortener(host: &str) -> bool {
    SHORTENERS
        .iter()
        .any(|s| host == *s || host.strip_suffix(s).is_some_and(|h| h.ends_with('.')))
}

/// The warnings for a message with `html` (and a text part when
/// `has_text`).
pub fn html(html: &str, has_text: bool) -> Vec<Warning> {
    let mut out = Vec::new();
    if !has_text {
        out.push(Warning {
            code: "text_missing",
            message: "no text part: Herald made one from the HTML; write your own, as some readers and filters \
                      prefer it"
                .to_owned(),
        });
    }
    let html_tag = Cell::new(false);
    let body_tag = Cell::new(false);
    let no_alt = Cell::new(0usize);
    let short: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let handlers = vec![
        element!("html", |_| {
            html_tag.set(true);
            Ok(())
        }),
        element!("body", |_| {
            body_tag.set(true);
            Ok(())
        }),
        element!("img", |el| {
            if el.get_attribute("alt").is_none() {
                no_alt.set(no_alt.get() + 1);
            }
            Ok(())
        }),
        element!("a[href], area[href]", |el| {
            if let Some(host) = el.get_attribute("href").as_deref().and_then(host_of)
                && shortener(&host)
            {
                let mut s = short.borrow_mut();
                if !s.contains(&host) {
                    s.push(host);
                }
            }
            Ok(())
        }),
    ];
    let settings = handlers.into_iter().fold(
        RewriteStrSettings::new(),
        RewriteStrSettings::append_element_content_handler,
    );
    // Only the handlers' findings are wanted; a document lol_html cannot
    // read is judged by what was seen before it stopped.
    let _ = rewrite_str(html, settings);
    if !html_tag.get() {
        out.push(Warning {
            code: "html_no_html",
            message: "the HTML has no <html> element: wrap it in <html><body>…</body></html>".to_owned(),
        });
    }
    if !body_tag.get() {
        out.push(Warning {
            code: "html_no_body",
            message: "the HTML has no <body> element: the open pixel goes at the end of the body, and some clients \
                      render a document without one badly"
                .to_owned(),
        });
    }
    match no_alt.get() {
        0 => {}
        n => out.push(Warning {
            code: "image_no_alt",
            message: format!(
                "{n} image{} without alt text: readers who block images (most, by default) see nothing in {}",
                if n == 1 { "" } else { "s" },
                if n == 1 { "its place" } else { "their place" }
            ),
        }),
    }
    if html.len() > GMAIL_CLIP {
        out.push(Warning {
            code: "html_clipped",
            message: format!(
                "the HTML is {} KB: Gmail clips messages past 102 KB, hiding the rest (and the open pixel)",
                html.len() / 1024
            ),
        });
    }
    let short = short.into_inner();
    if !short.is_empty() {
        out.push(Warning {
            code: "url_shortener",
            message: format!(
                "links through URL shorteners ({}): spam filters distrust them; link to your own domain",
                short.join(", ")
            ),
        });
    }
    out
}

/// The warnings for a whole message (the send API's `raw`): its HTML part,
/// if it has one, and whether it has a text part beside it.
pub fn raw(message: &[u8]) -> Vec<Warning> {
    let Some(parsed) = mail_parser::MessageParser::default().parse(message) else {
        return Vec::new();
    };
    if parsed.html_body.is_empty() {
        return Vec::new();
    }
    let html_part = parsed.html_body.first().and_then(|i| parsed.part(*i));
    let is_html = html_part.is_some_and(|p| matches!(p.body, mail_parser::PartType::Html(_)));
    if !is_html {
        return Vec::new();
    }
    let has_text = parsed
        .text_body
        .iter()
        .filter_map(|i| parsed.part(*i))
        .any(|p| matches!(p.body, mail_parser::PartType::Text(_)));
    match parsed.body_html(0) {
        Some(h) => html(&h, has_text),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.code).collect()
    }

    #[test]
    fn a_complete_document_is_clean() {
        let doc = r#"<html><body><p>Hi</p><img src="https://acme.test/logo.png" alt="Acme"><a href="https://acme.test/x">x</a></body></html>"#;
        assert!(html(doc, true).is_empty(), "{:?}", html(doc, true));
    }

    #[test]
    fn each_problem_is_named() {
        let frag = r#"<p>Hi <img src="a.png"><img src="b.png" alt=""> <a href="HTTPS://Bit.ly/abc">go</a> <a href="https://sub.tinyurl.com/x">x</a> <a href="https://notbit.ly/">fine</a> <a href="mailto:x@bit.ly">mail</a></p>"#;
        let w = html(frag, false);
        assert_eq!(
            codes(&w),
            [
                "text_missing",
                "html_no_html",
                "html_no_body",
                "image_no_alt",
                "url_shortener"
            ]
        );
        assert!(w[3].message.starts_with("1 image "), "an empty alt is an alt: {w:?}");
        assert!(
            w[4].message.contains("bit.ly")
                && w[4].message.contains("sub.tinyurl.com")
                && !w[4].message.contains("notbit")
        );
        let big = format!("<html><body>{}</body></html>", "x".repeat(GMAIL_CLIP));
        assert_eq!(codes(&html(&big, true)), ["html_clipped"]);
        // Broken HTML is read as far as it goes, never a panic.
        let _ = html("<html><body><a href='http://[::1", true);
    }

    #[test]
    fn a_raw_message_is_judged_by_its_parts() {
        let html_only = b"From: a@acme.test\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n";
        assert_eq!(codes(&raw(html_only)), ["text_missing", "html_no_html", "html_no_body"]);
        let alternative = b"From: a@acme.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: text/html\r\n\r\n<html><body>hi</body></html>\r\n--b--\r\n";
        assert!(raw(alternative).is_empty(), "{:?}", raw(alternative));
        assert!(raw(b"From: a@acme.test\r\nSubject: x\r\n\r\nplain text\r\n").is_empty());
    }
}
