//! A text part for mail that only has HTML.

/// Line width of the generated text (RFC 5322 §2.1.1 recommends 78).
const WIDTH: usize = 78;

/// Plain text with the content of `html`: paragraphs, lists and links
/// (targets shown in brackets), no markup. Malformed HTML still gives its
/// text.
pub fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), WIDTH).unwrap_or_else(|_| {
        // The converter refuses only on internal limits; fall back to the
        // visible characters without tags.
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_readable_text() {
        let text = html_to_text(
            "<html><body><h1>Welcome</h1><p>Hello <b>Jane</b>,</p><ul><li>one</li><li>two</li></ul><p><a href=\"https://acme.test/start\">Start here</a></p><script>var x;</script></body></html>",
        );
        assert!(text.contains("Welcome"), "{text}");
        assert!(
            text.contains("Hello Jane,") || text.contains("Hello **Jane**,"),
            "{text}"
        );
        assert!(text.contains("one") && text.contains("two"));
        assert!(
            text.contains("https://acme.test/start"),
            "link targets are kept: {text}"
        );
        assert!(!text.contains('<') && !text.contains("var x"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH));
    }
}
