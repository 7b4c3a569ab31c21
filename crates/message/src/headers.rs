//! The header block as raw fields.

use crate::MessageError;

/// One header field: its name and its raw value (everything after the
/// colon, folding and the final CRLF included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    name: String,
    raw: Vec<u8>,
}

/// A message split into header fields and body, editable without touching
/// bytes that are not edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    fields: Vec<Field>,
    /// Everything from the empty line on (the blank line included).
    body: Vec<u8>,
}

impl HeaderBlock {
    /// Splits a message. Lines may end in CRLF or bare LF; a message with no
    /// blank line is all headers and an empty body.
    pub fn parse(message: &[u8]) -> Result<Self, MessageError> {
        let mut fields: Vec<Field> = Vec::new();
        let mut at = 0;
        while at < message.len() {
            let end = message[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(message.len(), |i| at + i + 1);
            let line = &message[at..end];
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            check_line(line)?;
            if line[0] == b' ' || line[0] == b'\t' {
                // A continuation of the previous field.
                let last = fields.last_mut().ok_or_else(|| {
                    MessageError::Invalid("the header block starts with a continuation line".to_owned())
                })?;
                last.raw.extend_from_slice(line);
            } else {
                let colon = line.iter().position(|b| *b == b':').ok_or_else(|| {
                    MessageError::Invalid(format!(
                        "header line without a colon: {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(60)])
                    ))
                })?;
                // RFC 5322 §2.2: a name is printable US-ASCII but the colon.
                // The obsolete space before the colon (`From :`) is refused:
                // readers disagree on whether it names the field.
                let name = &line[..colon];
                if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
                    return Err(MessageError::Invalid(format!(
                        "invalid header name {:?}",
                        String::from_utf8_lossy(&name[..name.len().min(60)])
                    )));
                }
                fields.push(Field {
                    name: String::from_utf8_lossy(name).into_owned(),
                    raw: line[colon + 1..].to_vec(),
                });
            }
            at = end;
        }
        if fields.is_empty() {
            return Err(MessageError::NoHeaders);
        }
        Ok(Self {
            fields,
            body: message[at..].to_vec(),
        })
    }

    /// The unfolded, trimmed value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| unfold(&f.raw))
    }

    /// Every value of fields named `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| unfold(&f.raw))
            .collect()
    }

    /// The raw values (after the colon, folding and line ends included) of
    /// every field named `name`, in order.
    pub fn raw_values(&self, name: &str) -> Vec<&[u8]> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.raw.as_slice())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Removes every field whose name matches `pred`; returns them as
    /// (name, unfolded value).
    pub fn remove_where(&mut self, pred: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let mut removed = Vec::new();
        self.fields.retain(|f| {
            if pred(&f.name) {
                removed.push((f.name.clone(), unfold(&f.raw)));
                false
            } else {
                true
            }
        });
        removed
    }

    /// Adds a field on top of the block (where trace and signature fields go).
    pub fn prepend(&mut self, name: &str, value: &str) {
        self.fields.insert(
            0,
            Field {
                name: name.to_owned(),
                raw: format!(" {}\r\n", sanitize(value)).into_bytes(),
            },
        );
    }

    /// Adds a field at the end of the block.
    pub fn append(&mut self, name: &str, value: &str) {
        self.fields.push(Field {
            name: name.to_owned(),
            raw: format!(" {}\r\n", sanitize(value)).into_bytes(),
        });
    }

    /// The message again: edited fields and untouched bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self.fields.iter().map(|f| f.name.len() + 1 + f.raw.len()).sum();
        let mut out = Vec::with_capacity(size + self.body.len() + 2);
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(&f.raw);
            if !f.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        if self.body.is_empty() {
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// A header line may not carry a NUL or a CR that does not end it: parsers
/// disagree on both (one reads a bare CR as a line end, another skips it),
/// and a field that reads two ways can hide an address.
fn check_line(line: &[u8]) -> Result<(), MessageError> {
    // Only a CR right before the LF ends the line; one at the very end of
    // the input (no LF after it) is bare, like any other.
    let body = match line.strip_suffix(b"\n") {
        Some(l) => l.strip_suffix(b"\r").unwrap_or(l),
        None => line,
    };
    if body.contains(&0) {
        return Err(MessageError::Invalid("a header line contains a NUL byte".to_owned()));
    }
    if body.contains(&b'\r') {
        return Err(MessageError::Invalid("a header line contains a bare CR".to_owned()));
    }
    Ok(())
}

/// A value may not carry CR or LF of its own: that would end the field and
/// start another (header injection).
fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 && !line.is_empty() {
            out.push(' ');
        }
        out.push_str(line.trim());
    }
    out.trim().to_owned()
}

/// What an SMTP submission asked of Herald in its `X-Herald-*` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    pub stream: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Vec<(String, String)>,
}

/// Most tags and metadata keys a message may carry.
const MAX_CONTROLS: usize = 32;

impl Controls {
    /// Reads and removes `X-Herald-Stream`, `X-Herald-Tag` (each, or a
    /// comma-separated list) and `X-Herald-Meta-<key>`: they are for Herald,
    /// never for the recipient.
    pub fn take(block: &mut HeaderBlock) -> Self {
        let removed = block.remove_where(|n| n.len() > 9 && n[..9].eq_ignore_ascii_case("x-herald-"));
        let mut c = Self::default();
        for (name, value) in removed {
            let key = name[9..].to_ascii_lowercase();
            if key == "stream" {
                c.stream = Some(value.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
            } else if key == "tag" {
                for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if c.tags.len() < MAX_CONTROLS && !c.tags.iter().any(|t| t == tag) {
                        c.tags.push(tag.to_owned());
                    }
                }
            } else if let Some(meta) = key.strip_prefix("meta-")
                && !meta.is_empty()
                && c.metadata.len() < MAX_CONTROLS
            {
                c.metadata.push((meta.to_owned(), value));
            }
        }
        c
    }
}

/// Adds `Message-ID` and `Date` when the message has none (RFC 5322 §3.6
/// wants both); returns the Message-ID the message now has.
pub fn ensure_identity(block: &mut HeaderBlock, id_domain: &str, now: time::OffsetDateTime) -> String {
    if !block.has("Date") {
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        block.append("Date", &date);
    }
    match block.get("Message-ID") {
        Some(id) => id,
        None => {
            let id = format!("<{}@{id_domain}>", uuid::Uuid::now_v7().simple());
            block.append("Message-ID", &id);
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from a\r\n\tby b; Mon, 1 Jan 2026 00:00:00 +0000\r\nFrom: Jane <jane@acme.test>\r\nSubject: a folded\r\n subject line\r\nX-Herald-Tag: welcome, onboarding\r\nX-Herald-Tag: welcome\r\nX-HERALD-Meta-Order: 1234\r\nx-herald-stream: Newsletter\r\nX-Custom: stays\r\n\r\nBody line\r\n.with a dot\r\n";

    #[test]
    fn unedited_messages_come_back_byte_for_byte() {
        let block = HeaderBlock::parse(MSG).unwrap();
        assert_eq!(block.to_bytes(), MSG);
        assert_eq!(block.get("subject").as_deref(), Some("a folded subject line"));
        assert_eq!(block.get_all("x-herald-tag").len(), 2);
    }

    #[test]
    fn herald_controls_are_read_and_removed() {
        let mut block = HeaderBlock::parse(MSG).unwrap();
        let c = Controls::take(&mut block);
        assert_eq!(c.stream.as_deref(), Some("newsletter"));
        assert_eq!(c.tags, ["welcome", "onboarding"]);
        assert_eq!(c.metadata, [("order".to_owned(), "1234".to_owned())]);
        let out = String::from_utf8(block.to_bytes()).unwrap();
        assert!(!out.to_ascii_lowercase().contains("x-herald"), "{out}");
        assert!(
            out.contains("X-Custom: stays\r\n\r\nBody line\r\n.with a dot\r\n"),
            "custom headers and body untouched"
        );
    }

    #[test]
    fn identity_is_added_only_when_missing() {
        let mut block = HeaderBlock::parse(b"From: a@b.test\r\n\r\nx\r\n").unwrap();
        let now = time::macros::datetime!(2026-11-23 08:15:26 UTC);
        let id = ensure_identity(&mut block, "mta.test", now);
        assert!(id.starts_with('<') && id.ends_with("@mta.test>"), "{id}");
        assert_eq!(block.get("Date").as_deref(), Some("Mon, 23 Nov 2026 08:15:26 +0000"));
        let mut again = HeaderBlock::parse(&block.to_bytes()).unwrap();
        assert_eq!(
            ensure_identity(&mut again, "other.test", now),
            id,
            "an existing Message-ID is kept"
        );
        assert_eq!(again.get_all("Date").len(), 1);
    }

    #[test]
    fn added_values_cannot_inject_fields() {
        let mut block = HeaderBlock::parse(b"From: a@b.test\r\n\r\nx\r\n").unwrap();
        block.prepend("X-Test", "one\r\nBcc: evil@x.test");
        let out = block.to_bytes();
        let reparsed = HeaderBlock::parse(&out).unwrap();
        assert!(!reparsed.has("Bcc"));
        assert_eq!(reparsed.get("X-Test").as_deref(), Some("one  Bcc: evil@x.test"));
    }

    #[test]
    fn bare_lf_and_header_only_messages_parse() {
        let block = HeaderBlock::parse(b"From: a@b.test\nSubject: x\n\nbody\n").unwrap();
        assert_eq!(block.get("subject").as_deref(), Some("x"));
        let only = HeaderBlock::parse(b"From: a@b.test\r\n").unwrap();
        assert_eq!(only.to_bytes(), b"From: a@b.test\r\n\r\n");
        assert!(HeaderBlock::parse(b"no colon here\r\n\r\n").is_err());
        // Found by fuzzing: a CR at the very end of the input is bare.
        assert!(HeaderBlock::parse(b"from:\r").is_err());
        assert!(HeaderBlock::parse(b"").is_err());
    }
}
