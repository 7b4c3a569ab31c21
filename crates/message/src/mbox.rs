//! mbox files: many messages in one file, each starting with a `From `
//! separator line (`From sender@example.com Tue Apr 30 02:09:16 2019`), as
//! mail clients and `mail`/`mutt` export a folder of reports.
//!
//! A message starts at a `From ` line at the start of the file or after a
//! blank line, the rule every mbox variant shares (a `From ` line in the
//! middle of a header block or a paragraph is body text). Writers quote body
//! lines that would look like separators: mboxrd writes `>From `, `>>From `
//! for an existing `>From `, and so on; [`split_mbox`] takes one `>` off
//! every line of the form `>+From ` (mboxrd's rule, which undoes mboxo's
//! quoting too). A message borrows from the file unless it has such a line:
//! only then is it copied.

use std::borrow::Cow;

const SEPARATOR: &[u8] = b"From ";

/// Whether `bytes` start with an mbox separator line.
pub fn is_mbox(bytes: &[u8]) -> bool {
    bytes.starts_with(SEPARATOR)
}

/// The messages of an mbox file, without their separator lines and with
/// `>From ` quoting undone. The blank line that ends each message before the
/// next separator is dropped; CRLF and LF line ends are both read. A file
/// that does not start with a separator yields one message, the whole file.
///
/// Linear in the file.
pub fn split_mbox(bytes: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    // The file's start counts as following a blank line.
    let mut after_blank = true;
    while at < bytes.len() {
        let line_end = bytes[at..].iter().position(|&b| b == b'\n').map(|nl| at + nl + 1);
        let line = &bytes[at..line_end.unwrap_or(bytes.len())];
        if after_blank && line.starts_with(SEPARATOR) {
            starts.push(at);
        }
        after_blank = matches!(line, b"\n" | b"\r\n");
        match line_end {
            Some(next) => at = next,
            None => break,
        }
    }
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(bytes.len());
        let mut message = &bytes[start..end];
        if message.starts_with(SEPARATOR) {
            // Drop the separator line.
            message = match message.iter().position(|&b| b == b'\n') {
                Some(nl) => &message[nl + 1..],
                None => &[],
            };
        }
        // The empty line mbox writers put before the next separator.
        if i + 1 < starts.len() {
            message = strip_line_end(message);
        }
        if !message.iter().all(u8::is_ascii_whitespace) {
            out.push(unquote(message));
        }
    }
    out
}

/// Takes one `>` off each line of the form `>+From ` (mboxrd).
fn unquote(message: &[u8]) -> Cow<'_, [u8]> {
    let quoted = |line: &[u8]| {
        let arrows = line.iter().take_while(|&&b| b == b'>').count();
        arrows > 0 && line[arrows..].starts_with(SEPARATOR)
    };
    if !message.split(|&b| b == b'\n').any(quoted) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    for (i, line) in message.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.extend_from_slice(if quoted(line) { &line[1..] } else { line });
    }
    Cow::Owned(out)
}

/// Drops one blank line (the separator's) from the end, keeping the last
/// line end of the message itself.
fn strip_line_end(m: &[u8]) -> &[u8] {
    if m.ends_with(b"\r\n\r\n") {
        &m[..m.len() - 2]
    } else if m.ends_with(b"\n\n") {
        &m[..m.len() - 1]
    } else {
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
        split_mbox(bytes).into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn splits_on_separator_lines_after_a_blank_line() {
        let mbox = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n\n\
            From b@example.com Mon Jan  1 00:00:01 2024\nSubject: two\n\nFrom here on\nx\n";
        assert!(is_mbox(mbox));
        let m = split(mbox);
        assert_eq!(
            m.len(),
            3,
            "an unquoted From line after a blank line splits, as in every reader"
        );
        assert_eq!(m[0], b"Subject: one\n\nbody\n");
        assert_eq!(m[1], b"Subject: two\n");
    }

    #[test]
    fn a_from_line_inside_a_paragraph_is_body_text() {
        let mbox =
            b"From a Mon\nSubject: one\n\nDear all,\nFrom now on reports go elsewhere.\n\nFrom b Tue\nSubject: two\n";
        let m = split(mbox);
        assert_eq!(
            m,
            [
                b"Subject: one\n\nDear all,\nFrom now on reports go elsewhere.\n".to_vec(),
                b"Subject: two\n".to_vec()
            ]
        );
    }

    #[test]
    fn quoted_from_lines_lose_one_quote_and_crlf_is_read() {
        let mbox = b"From a Mon\r\nSubject: one\r\n\r\n>From the start\r\n>>From deeper\r\n> From not quoting\r\n\
            \r\nFrom b Tue\r\nSubject: two\r\n";
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 2);
        assert_eq!(
            &*m[0],
            b"Subject: one\r\n\r\nFrom the start\r\n>From deeper\r\n> From not quoting\r\n"
        );
        assert!(
            matches!(m[1], Cow::Borrowed(b"Subject: two\r\n")),
            "nothing to undo: no copy"
        );
    }

    #[test]
    fn not_an_mbox() {
        assert!(!is_mbox(b"Subject: x\n\nFrom y\n"));
        assert_eq!(split(b"Subject: x\n\nbody\n"), [b"Subject: x\n\nbody\n".to_vec()]);
        assert!(split_mbox(b"").is_empty());
        assert!(split_mbox(b"From x").is_empty());
    }
}
