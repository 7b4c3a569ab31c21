//! Click tracking and the open pixel, in HTML parts.
//!
//! Only a well-formed HTML document (one with `<html>` and `<body>`) is
//! touched: a fragment may be a template of someone else's, and a pixel
//! appended to it could land anywhere. Links that are not web links
//! (`mailto:`, `tel:`, in-page `#anchors`), unsubscribe links, and links
//! marked `data-herald-notrack` are left as they are.

use std::cell::Cell;

use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, rewrite_str};

/// Makes the tracking URL for a link's target, or `None` to leave the link.
pub type ClickUrl<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How to rewrite one part.
pub struct TrackingLinks<'a> {
    pub click_url: Option<ClickUrl<'a>>,
    /// The open pixel's URL, when opens are tracked.
    pub open_url: Option<String>,
    /// Links that start with one of these are never rewritten (Herald's
    /// own unsubscribe and tracking URLs).
    pub keep_prefixes: Vec<String>,
}

impl std::fmt::Debug for TrackingLinks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingLinks")
            .field("clicks", &self.click_url.is_some())
            .field("open_url", &self.open_url)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub html: String,
    pub links: usize,
    pub pixel: bool,
}

/// Undoes the HTML character references an attribute value may hold, so the
/// link followed after a click is the one the browser would have followed.
fn unescape(value: &str) -> String {
    if !value.contains('&') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16).ok().and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            }
        });
        match (decoded, end) {
            (Some(c), Some(e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn trackable(href: &str, keep: &[String]) -> bool {
    let lower = href.trim().to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !lower.contains("unsubscribe")
        && !keep.iter().any(|p| lower.starts_with(&p.to_ascii_lowercase()))
}

fn is_document(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    lower.contains("<html") && lower.contains("<body")
}

/// Rewrites links and adds the pixel; a part that is not a whole document,
/// or that the parser rejects, comes back unchanged.
pub fn rewrite_html(html: &str, links: &TrackingLinks<'_>) -> Rewritten {
    let unchanged = || Rewritten {
        html: html.to_owned(),
        links: 0,
        pixel: false,
    };
    if !is_document(html) || (links.click_url.is_none() && links.open_url.is_none()) {
        return unchanged();
    }
    let rewritten = Cell::new(0usize);
    let pixel = Cell::new(false);
    let img = links.open_url.as_ref().map(|url| {
        format!("<img src=\"{url}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\">")
    });
    let mut handlers = Vec::new();
    if let Some(click_url) = links.click_url {
        handlers.push(element!("a[href]", |el| {
            if el.has_attribute("data-herald-notrack") {
                el.remove_attribute("data-herald-notrack");
                return Ok(());
            }
            let Some(href) = el.get_attribute("href") else {
                return Ok(());
            };
            let target = unescape(href.trim());
            if trackable(&target, &links.keep_prefixes)
                && let Some(url) = click_url(&target)
            {
                el.set_attribute("href", &url)?;
                rewritten.set(rewritten.get() + 1);
            }
            Ok(())
        }));
    }
    if let Some(img) = &img {
        handlers.push(element!("body", |el| {
            if !pixel.get() {
                el.append(img, ContentType::Html);
                pixel.set(true);
            }
            Ok(())
        }));
    }
    let settings = handlers.into_iter().fold(
        RewriteStrSettings::new(),
        RewriteStrSettings::append_element_content_handler,
    );
    match rewrite_str(html, settings) {
        Ok(out) => Rewritten {
            html: out,
            links: rewritten.get(),
            pixel: pixel.get(),
        },
        Err(_) => unchanged(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(target: &str) -> Option<String> {
        Some(format!("https://t.example/t/c/{}", target.len()))
    }

    fn links(click: bool, open: bool) -> TrackingLinks<'static> {
        TrackingLinks {
            click_url: if click { Some(&self::click) } else { None },
            open_url: open.then(|| "https://t.example/t/o/TOKEN".to_owned()),
            keep_prefixes: vec!["https://t.example/u/".to_owned()],
        }
    }

    const DOC: &str = r##"<!doctype html><html><head><title>x</title></head><BODY>
<a href="https://shop.example/p?a=1&amp;b=2">shop</a>
<a href="mailto:help@example.com">mail</a> <a href="tel:+4412345">call</a> <a href="#top">top</a>
<a href="https://t.example/u/abc">unsubscribe</a> <a href="https://brand.example/Unsubscribe?id=1">leave</a>
<a href="https://keep.example/" data-herald-notrack>kept</a>
</BODY></html>"##;

    #[test]
    fn web_links_are_tracked_and_others_left_alone() {
        let out = rewrite_html(DOC, &links(true, true));
        assert_eq!(out.links, 1, "{}", out.html);
        // The stand-in click URL carries the target's length: 30 bytes for
        // the unescaped https://shop.example/p?a=1&b=2 (34 with "&amp;").
        assert!(out.html.contains(r#"href="https://t.example/t/c/30""#), "{}", out.html);
        for kept in [
            "mailto:help@example.com",
            "tel:+4412345",
            "#top",
            "https://t.example/u/abc",
            "https://brand.example/Unsubscribe?id=1",
            "https://keep.example/",
        ] {
            assert!(
                out.html.contains(&format!("href=\"{kept}\"")),
                "{kept} kept: {}",
                out.html
            );
        }
        assert!(!out.html.contains("data-herald-notrack"));
        assert!(out.pixel);
        let pixel_at = out.html.find("https://t.example/t/o/TOKEN").unwrap();
        assert!(
            pixel_at < out.html.to_ascii_lowercase().find("</body>").unwrap(),
            "pixel inside body, at its end"
        );
    }

    #[test]
    fn fragments_and_untracked_parts_are_unchanged() {
        let fragment = "<p>Hi <a href=\"https://x.example/\">x</a></p>";
        assert_eq!(rewrite_html(fragment, &links(true, true)).html, fragment);
        assert_eq!(rewrite_html(DOC, &links(false, false)).html, DOC);
        let opens_only = rewrite_html(DOC, &links(false, true));
        assert_eq!(opens_only.links, 0);
        assert!(opens_only.pixel && opens_only.html.contains("https://shop.example/p?a=1&amp;b=2"));
    }

    #[test]
    fn character_references_are_undone() {
        assert_eq!(
            unescape("a=1&amp;b=&#50;&#x33;&lt;&quot;&bogus;x"),
            "a=1&b=23<\"&bogus;x"
        );
    }
}
