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
    let msg = parser.parse(raw)?;
    let mut doc = Doc {
        headers: raw_headers(&msg),
        ..Doc::default()
    };
    if let Some(ct) = msg.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
    {
        doc.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
    }
    let mut html = Vec::new();
    for part in &msg.parts {
        let (ctype, sub) = part
            .content_type()
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        match &part.body {
            PartType::Message(m) => {
                if doc.original.is_none() {
                    doc.original = Some(raw_headers(m));
                }
                // A returned message inside a returned message: keep looking
                // for report parts inside (some gateways wrap the DSN).
                if doc.delivery_status.is_empty() {
                    collect_nested(m, &mut doc);
                }
            }
            PartType::Multipart(_) => {}
            body => {
                let text = || match body {
                    PartType::Text(t) | PartType::Html(t) => crate::util::clip(t, MAX_TEXT).to_string(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => {
                        String::from_utf8_lossy(crate::util::clip_bytes(b, MAX_TEXT)).into_owned()
                    }
                    _ => String::new(),
                };
                match (ctype.as_str(), sub.as_str()) {
                    (_, "delivery-status" | "global-delivery-status") => doc.delivery_status.push(text()),
                    (_, "feedback-report") => doc.feedback.push(text()),
                    ("text" | "message", "rfc822-headers") | ("message", "rfc822" | "global")
                        if doc.original.is_none() =>
                    {
                        doc.original = Some(crate::util::fields_named(&text(), Some(WANTED)));
                    }
                    ("text" | "message", "rfc822-headers") | ("message", "rfc822" | "global") => {}
                    // Kept as is: stripped only if there is no plain text.
                    ("text", "html") => html.push(text()),
                    ("text", _) => doc.texts.push(text()),
                    _ => {}
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

/// Whether a header field is one [`WANTED`] or one a decoder recognises
/// its bounces by ([`crate::decoders`]: `X-` fields, the Received trail,
/// `Content-Language`, `Reply-To`, `Content-Type`).
fn wanted(n: &str) -> Option<String> {
    let first = n.bytes().next()?.to_ascii_lowercase();
    if let Some(w) = WANTED
        .iter()
        .find(|w| w.as_bytes()[0] == first && w.eq_ignore_ascii_case(n))
    {
        return Some(w.to_string());
    }
    let decoders = ["received", "content-language", "reply-to", "content-type"];
    (n.len() > 2 && n.as_bytes()[..2].eq_ignore_ascii_case(b"x-") || decoders.iter().any(|d| d.eq_ignore_ascii_case(n)))
        .then(|| n.to_ascii_lowercase())
}

fn raw_headers(m: &Message<'_>) -> Vec<(String, String)> {
    m.headers_raw()
        .filter_map(|(n, v)| {
            let name = wanted(n)?;
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
                let end = b[i..].iter().position(|&c| c == b'>').map_or(b.len(), |e| i + e);
                let tag = &b[i + 1..end.min(i + 5).max(i + 1)];
                let lower = |t: &[u8], p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
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
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
