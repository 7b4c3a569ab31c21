//! mbox files: many messages in one file, each starting with a `From `
//! separator line (`From sender@example.com Tue Apr 30 02:09:16 2019`), as
//! mail clients and `mail`/`mutt` export a folder of reports.
//!
//! Splitting is on every line that starts with `From ` (mboxo and mboxrd
//! alike), so no message is lost to a stricter rule; a body line of an
//! unquoted mboxo file that starts with `From ` splits its message, which
//! is what every mbox reader does. The slices borrow from the file, so
//! `>From ` quoting is left as is: undoing it would mean copying every
//! message, and reports never put meaning in such a line.

const SEPARATOR: &[u8] = b"From ";

/// Whether `bytes` start with an mbox separator line.
pub fn is_mbox(bytes: &[u8]) -> bool {
    bytes.starts_with(SEPARATOR)
}

/// The messages of an mbox file, without their separator lines. The blank
/// line that ends each message before the next separator is dropped; CRLF
/// and LF line ends are both read. A file that does not start with a
/// separator yields one message, the whole file.
pub fn split_mbox(bytes: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(SEPARATOR) {
            starts.push(at);
        }
        match bytes[at..].iter().position(|&b| b == b'\n') {
            Some(nl) => at += nl + 1,
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
            out.push(message);
        }
    }
    out
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

    #[test]
    fn splits_on_separator_lines() {
        let mbox = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n\n\
            From b@example.com Mon Jan  1 00:00:01 2024\nSubject: two\n\nFrom here on\nx\n";
        assert!(is_mbox(mbox));
        let m = split_mbox(mbox);
        assert_eq!(m.len(), 3, "an unquoted From line splits, as in every reader");
        assert_eq!(m[0], b"Subject: one\n\nbody\n");
        assert_eq!(m[1], b"Subject: two\n");
    }

    #[test]
    fn quoted_from_lines_and_crlf() {
        let mbox = b"From a Mon\r\nSubject: one\r\n\r\n>From the start\r\n\r\nFrom b Tue\r\nSubject: two\r\n";
        let m = split_mbox(mbox);
        assert_eq!(
            m,
            [
                &b"Subject: one\r\n\r\n>From the start\r\n"[..],
                &b"Subject: two\r\n"[..]
            ]
        );
    }

    #[test]
    fn not_an_mbox() {
        assert!(!is_mbox(b"Subject: x\n\nFrom y\n"));
        assert_eq!(split_mbox(b"Subject: x\n\nbody\n"), [&b"Subject: x\n\nbody\n"[..]]);
        assert!(split_mbox(b"").is_empty());
        assert!(split_mbox(b"From x").is_empty());
    }
}
