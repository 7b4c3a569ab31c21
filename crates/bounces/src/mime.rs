//! The message, flattened into what the decoders need: the top-level
//! headers, the human-readable text, the machine-readable report parts
//! (`message/delivery-status`, `message/feedback-report`) and the headers of
//! the returned original message. MIME decoding (transfer encodings,
//! charsets, nesting) is mail-parser's.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Bytes kept of any one text part: real notifications are short, and the
/// decoders must stay fast on hostile input.
const MAX_TEXT: usize = 256 * 1024;

/// A returned message, flattened.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    /// Top-level headers, names lower-case, values as folded on the wire.
    pub headers: Vec<(String, String)>,
    /// `report-type` of a top-level multipart/report.
    pub report_type: Option<String>,
    /// The human-readable parts (text/plain, or stripped text/html), in order.
    pub texts: Vec<String>,
    /// `message/delivery-status` (and look-alikes) parts.
    pub delivery_status: Vec<String>,
    /// `message/feedback-report` parts.
    pub feedback: Vec<String>,
    /// Headers of the returned message, from message/rfc822 or
    /// text/rfc822-headers.
    pub original: Option<Vec<(String, String)>>,
}

impl Doc {
    /// The first top-level header of that (lower-case) name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The original message's header of that (lower-case) name.
    pub(crate) fn original_header(&self, name: &str) -> Option<&str> {
        self.original
            .as_ref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Bytes of a message read at most. A notice and its report come first; what
/// follows a few hundred kilobytes in is the returned message's body and
/// attachments, which are never looked at but would be decoded.
const MAX_MESSAGE: usize = 512 * 1024;

pub(crate) fn read(raw: &[u8]) -> Option<Doc> {
    let raw = &raw[..raw.len().min(MAX_MESSAGE)];
    // Old Mac files end lines with a bare CR, which MIME parsers do not
    // read as line ends.
    let head = &raw[..raw.len().min(4096)];
    let normalised;
    let raw = if head.contains(&b'\r') && !head.contains(&b'\n') {
        normalised = raw
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect::<Vec<u8>>();
        &normalised[..]
    } else {
        raw
    };
    // Only the MIME headers need parsing; the few others wanted are read
    // raw from their offsets (`headers_raw`), so mail-parser may skip them.
    static PARSER: std::sync::OnceLock<MessageParser> = std::sync::OnceLock::new();
    let parser = PARSER.get_or_init(|| MessageParser::new().with_mime_headers().default_header_ignore());
    // The returned message's body is never read, but mail-parser would
    // decode it (and its attachments) in full: when a report part comes
    // before it, the bytes end after its header block.
    let raw = &raw[..original_body_start(raw).unwrap_or(raw.len())];
    let mut msg = parser.parse(raw)?;
    let mut doc = Doc {
        headers: raw_headers(&msg, true),
        ..Doc::default()
    };
    if let Some(ct) = msg.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
    {
        doc.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
    }
    let mut html = Vec::new();
    // The parts are taken out of the parsed message, so the decoded texts
    // move into the result rather than being copied.
    for part in std::mem::take(&mut msg.parts) {
        let kind = part
            .content_type()
            .map_or(Part::Text, |c| part_kind(c.ctype(), c.subtype().unwrap_or("")));
        match part.body {
            PartType::Message(m) => {
                if doc.original.is_none() {
                    doc.original = Some(raw_headers(&m, false));
                }
                // A returned message inside a returned message: keep looking
                // for report parts inside (some gateways wrap the DSN).
                if doc.delivery_status.is_empty() {
                    collect_nested(&m, &mut doc);
                }
            }
            PartType::Multipart(_) => {}
            body => {
                let text = move || match body {
                    PartType::Text(t) | PartType::Html(t) => {
                        let mut t = t.into_owned();
                        let keep = crate::util::clip(&t, MAX_TEXT).len();
                        t.truncate(keep);
                        t
                    }
                    PartType::Binary(b) | PartType::InlineBinary(b) => {
                        String::from_utf8_lossy(crate::util::clip_bytes(&b, MAX_TEXT)).into_owned()
                    }
                    _ => String::new(),
                };
                match kind {
                    Part::DeliveryStatus => doc.delivery_status.push(text()),
                    Part::Feedback => doc.feedback.push(text()),
                    Part::Original if doc.original.is_none() => {
                        doc.original = Some(crate::util::fields_named(&text(), Some(WANTED)));
                    }
                    Part::Original | Part::Other => {}
                    // Kept as is: stripped only if there is no plain text.
                    Part::Html => html.push(text()),
                    Part::Text => doc.texts.push(text()),
                }
            }
        }
    }
    if doc.texts.is_empty() {
        doc.texts = html.iter().map(|h| strip_html(h)).collect();
    }
    if doc.texts.is_empty() && doc.delivery_status.is_empty() && doc.feedback.is_empty() {
        // A multipart whose boundary never occurs (a mangled header): the
        // body as plain text still says everything.
        let start = find(raw, b"\n\n")
            .map(|i| i + 2)
            .or_else(|| find(raw, b"\r\n\r\n").map(|i| i + 4));
        if let Some(start) = start {
            let body = crate::util::clip_bytes(&raw[start..], MAX_TEXT);
            doc.texts.push(String::from_utf8_lossy(body).into_owned());
        }
    }
    Some(doc)
}

/// Where the body of a returned `message/rfc822` part starts, unless that
/// body may hold a report: everything after the returned message's own
/// header block is of no use (a report nested in the returned message is
/// looked for only when the top level has none, so the body is kept when
/// no report part precedes it and one is named after it).
fn original_body_start(raw: &[u8]) -> Option<usize> {
    let ends_with_ci =
        |end: usize, word: &[u8]| end >= word.len() && raw[end - word.len()..end].eq_ignore_ascii_case(word);
    let starts_with_ci =
        |at: usize, word: &[u8]| raw.len() >= at + word.len() && raw[at..at + word.len()].eq_ignore_ascii_case(word);
    let mut reported = false;
    // Every media type has a slash: only those are looked at.
    let mut slashes = memchr::memchr_iter(b'/', raw);
    let rfc822 = loop {
        let slash = slashes.next()?;
        let at = slash + 1;
        if !ends_with_ci(slash, b"message") {
            continue;
        }
        // A part's Content-Type field, not words in a notice.
        let field = || {
            let line = raw[..slash].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            starts_with_ci(line, b"content-type:")
        };
        if starts_with_ci(at, b"rfc822") && !starts_with_ci(at, b"rfc822-") {
            if field() {
                break slash;
            }
            continue;
        }
        reported |= (starts_with_ci(at, b"delivery-status")
            || starts_with_ci(at, b"global-delivery-status")
            || starts_with_ci(at, b"feedback-report"))
            && field();
    };
    // With no report before it, the returned message may be a wrapped
    // report itself: it is then read whole.
    if !reported
        && slashes.any(|slash| {
            ends_with_ci(slash, b"message")
                && (starts_with_ci(slash + 1, b"delivery-status")
                    || starts_with_ci(slash + 1, b"global-delivery-status")
                    || starts_with_ci(slash + 1, b"feedback-report"))
        })
    {
        return None;
    }
    // The end of the header block that starts at `from`: past its first
    // empty line.
    let blank = |from: usize| {
        let mut at = from;
        loop {
            let nl = at + memchr::memchr(b'\n', &raw[at..])?;
            at = nl + 1;
            match raw.get(at) {
                Some(b'\n') => return Some(at + 1),
                Some(b'\r') if raw.get(at + 1) == Some(&b'\n') => return Some(at + 2),
                _ => {}
            }
        }
    };
    // The part's header block, then the returned message's.
    blank(blank(rfc822)?)
}

/// What a part is to a reader of bounces.
enum Part {
    DeliveryStatus,
    Feedback,
    /// The returned message, or its header (as text).
    Original,
    Html,
    Text,
    Other,
}

fn part_kind(ctype: &str, sub: &str) -> Part {
    let is = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if is(sub, "delivery-status") || is(sub, "global-delivery-status") {
        Part::DeliveryStatus
    } else if is(sub, "feedback-report") {
        Part::Feedback
    } else if (is(ctype, "text") || is(ctype, "message")) && is(sub, "rfc822-headers")
        || is(ctype, "message") && (is(sub, "rfc822") || is(sub, "global"))
    {
        Part::Original
    } else if is(ctype, "text") && is(sub, "html") {
        Part::Html
    } else if is(ctype, "text") {
        Part::Text
    } else {
        Part::Other
    }
}

/// Report parts of a message nested in the top one.
fn collect_nested(m: &Message<'_>, doc: &mut Doc) {
    for part in &m.parts {
        let sub = part
            .content_type()
            .and_then(|c| c.subtype())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        if sub == "delivery-status" {
            doc.delivery_status
                .push(String::from_utf8_lossy(crate::util::clip_bytes(bytes, MAX_TEXT)).into_owned());
        }
    }
}

/// The headers the decoders read; the others (Received, DKIM-Signature, …)
/// are many and never asked for, so they are not copied.
pub(crate) const WANTED: &[&str] = &[
    "from",
    "to",
    "subject",
    "sender",
    "return-path",
    "message-id",
    "auto-submitted",
    "precedence",
    "x-failed-recipients",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-vacation",
    "x-ms-exchange-inbox-rules-loop",
    "x-apple-unsubscribe",
    "x-hmxmroriginalrecipient",
];

/// The name to keep a header field under, if it is one [`WANTED`] or, at
/// the top level, one a decoder tests ([`crate::decoders::header_names`]:
/// its `X-` fields, the Received trail, `Content-Language`, `Reply-To`,
/// `Content-Type`). Most fields of a message are none of these, and are
/// not copied.
fn wanted(n: &str, top: bool) -> Option<&'static str> {
    let first = n.bytes().next()?.to_ascii_lowercase();
    let known = |w: &&&str| w.as_bytes()[0] == first && w.eq_ignore_ascii_case(n);
    WANTED
        .iter()
        .find(known)
        .or_else(|| {
            top.then(|| crate::decoders::header_names().iter().find(known))
                .flatten()
        })
        .copied()
}

fn raw_headers(m: &Message<'_>, top: bool) -> Vec<(String, String)> {
    m.headers_raw()
        .filter_map(|(n, v)| {
            let name = wanted(n, top)?;
            // Values stay folded as they came (callers fold white space as
            // they read); only encoded words are decoded, and only where
            // present.
            Some((name.to_string(), decode_words(v.trim())))
        })
        .collect()
}

/// Decodes RFC 2047 encoded words in a raw header value (subjects of
/// Japanese or French bounces), leaving anything else as is.
fn decode_words(v: &str) -> String {
    if !v.contains("=?") {
        return v.to_string();
    }
    let line = format!("Subject: {}\n\n", v.trim());
    MessageParser::default()
        .parse_headers(line.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| v.to_string())
}

/// Drops tags and decodes the few entities that matter, for bounces sent
/// only as HTML.
fn strip_html(html: &str) -> String {
    // Tags and entities are ASCII, so bytes are enough; other bytes are
    // copied through whole, keeping the UTF-8 valid.
    let b = html.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'<' => {
                let mut end = memchr::memchr(b'>', &b[i..]).map_or(b.len(), |e| i + e);
                let tag = &b[i + 1..end.min(i + 5).max(i + 1)];
                let lower = |t: &[u8], p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
                // Style sheets and scripts are not text: skipped to their end.
                let name = &b[i + 1..end.min(i + 8).max(i + 1)];
                for (open, close) in [(&b"style"[..], &b"</style"[..]), (b"script", b"</script")] {
                    if lower(name, open) && name.get(open.len()).is_none_or(|c| !c.is_ascii_alphanumeric()) {
                        end = find_ci(&b[end.min(b.len())..], close).map_or(b.len(), |k| end + k + close.len());
                        end = memchr::memchr(b'>', &b[end.min(b.len())..]).map_or(b.len(), |e| end + e);
                    }
                }
                if lower(tag, b"br")
                    || lower(tag, b"p")
                    || lower(tag, b"/p")
                    || lower(tag, b"/div")
                    || lower(tag, b"/tr")
                {
                    out.push(b'\n');
                }
                i = end + 1;
            }
            b'&' => {
                let ent: &[(&[u8], u8)] = &[
                    (b"&nbsp;", b' '),
                    (b"&lt;", b'<'),
                    (b"&gt;", b'>'),
                    (b"&amp;", b'&'),
                    (b"&quot;", b'"'),
                ];
                match ent.iter().find(|(e, _)| b[i..].starts_with(e)) {
                    Some((e, c)) => {
                        out.push(*c);
                        i += e.len();
                    }
                    None => {
                        out.push(b'&');
                        i += 1;
                    }
                }
            }
            _ => {
                // Text up to the next tag or entity, copied whole.
                let end = memchr::memchr2(b'<', b'&', &b[i..]).map_or(b.len(), |k| i + k);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    crate::util::find(hay, needle)
}

/// The first occurrence of `needle` (lower-case ASCII) in `hay`, in any case.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (first, rest) = needle.split_first()?;
    memchr::memchr2_iter(*first, first.to_ascii_uppercase(), hay).find(|&at| {
        hay.get(at + 1..at + needle.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(first: &str, second: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nTo: a@example.org\r\nSubject: Undelivered Mail\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nThe mail system: message/rfc822 follows.\r\n\r\n\
             {first}{second}--B--\r\n"
        )
    }

    const DSN: &str = "--B\r\nContent-Type: message/delivery-status\r\n\r\n\
                       Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@example.net\r\n\
                       Action: failed\r\nStatus: 5.1.1\r\n\r\n";

    fn original(body: &str) -> String {
        format!(
            "--B\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <m1@example.org>\r\nTo: x@example.net\r\n\
             Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{body}\r\n"
        )
    }

    #[test]
    fn a_returned_body_after_the_report_is_not_decoded() {
        let big = "caf=C3=A9 =\r\n".repeat(20_000);
        let raw = report(DSN, &original(&big));
        let cut = original_body_start(raw.as_bytes()).expect("cut after the returned header");
        assert!(cut < raw.len() / 10, "cut at {cut} of {}", raw.len());
        let doc = read(raw.as_bytes()).expect("parsed");
        assert_eq!(doc.delivery_status.len(), 1);
        assert_eq!(doc.original_header("message-id"), Some("<m1@example.org>"));
        assert_eq!(doc.original_header("to"), Some("x@example.net"));
    }

    #[test]
    fn a_report_inside_the_returned_message_is_still_read() {
        // No report at the top level: the wrapped message is read whole, so
        // the delivery-status part inside it is found.
        let inner = "--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: MAILER-DAEMON@relay.example\r\n\
                     Content-Type: multipart/report; report-type=delivery-status; boundary=\"I\"\r\n\r\n\
                     --I\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\n\
                     Final-Recipient: rfc822; y@example.net\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n--I--\r\n";
        let raw = report("", inner);
        assert_eq!(original_body_start(raw.as_bytes()), None);
        let doc = read(raw.as_bytes()).expect("parsed");
        assert_eq!(doc.delivery_status.len(), 1);
        assert!(doc.delivery_status[0].contains("y@example.net"));
    }

    #[test]
    fn words_about_message_rfc822_do_not_cut() {
        // The notice names the media type in prose, and no part has it.
        let raw = report(DSN, "");
        assert_eq!(original_body_start(raw.as_bytes()), None);
    }

    #[test]
    fn html_text_without_its_styles_and_scripts() {
        let html = "<html><head><STYLE type=\"text/css\">p { color: red }</style><script>var x = 1 < 2;</SCRIPT>\
                    </head><body><p>Delivery to <b>a@example.net</b> failed&nbsp;&amp; will not be retried.</p>\
                    <stylish>kept</stylish></body></html>";
        let text = strip_html(html);
        assert!(!text.contains("color") && !text.contains("var x"), "{text:?}");
        assert!(
            text.contains("Delivery to a@example.net failed & will not be retried."),
            "{text:?}"
        );
        assert!(text.contains("kept"), "{text:?}");
    }

    #[test]
    fn a_notice_with_the_returned_message_attached_is_cut_too() {
        // No report part anywhere (an Exchange or qmail notice with the
        // message attached): the returned body is not needed either.
        let big = "x=3D1 =\r\n".repeat(20_000);
        let raw = report("", &original(&big));
        let cut = original_body_start(raw.as_bytes()).expect("cut");
        assert!(cut < raw.len() / 10);
        let doc = read(raw.as_bytes()).expect("parsed");
        assert_eq!(doc.original_header("message-id"), Some("<m1@example.org>"));
        assert!(doc.texts[0].contains("The mail system"));
    }
}
