//! CSV that spreadsheet users can trust, on the `csv` crate.
//!
//! Writing: every field is quoted when RFC 4180 needs it (a comma, a quote,
//! a line break), lines end in CRLF as the RFC writes them, and a cell a
//! spreadsheet would run as a formula — one starting with `=`, `+`, `-`,
//! `@`, a tab or a carriage return — is written with a `'` before it
//! (OWASP's advice), so opening an export never runs what a stranger put in
//! an address, a reason or an SMTP answer.
//!
//! Reading: [`restore`] takes that `'` off again, so an export imports as
//! it was; fields are trimmed, rows may have any number of fields, and each
//! row knows its line, so a bad one can be named.

use std::borrow::Cow;

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written to a file a spreadsheet may open.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell as read back: a `'` that [`neutralise`] put before a formula
/// character is taken off.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

/// Builds a CSV document in memory, row by row.
pub struct Writer {
    inner: csv::Writer<Vec<u8>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    pub fn new() -> Self {
        Self { inner: Self::fresh() }
    }

    fn fresh() -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .flexible(true)
            .from_writer(Vec::new())
    }

    /// Writes a header row as it is (column names are Herald's own).
    pub fn header(&mut self, names: &[&str]) {
        // Writing to a Vec cannot fail.
        let _ = self.inner.write_record(names);
    }

    /// Writes one row, each cell neutralised.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        // Writing to a Vec cannot fail.
        for cell in cells {
            let _ = self.inner.write_field(neutralise(cell.as_ref()).as_bytes());
        }
        let _ = self.inner.write_record(None::<&[u8]>);
    }

    /// Takes what was written so far (the writer starts again empty).
    pub fn take(&mut self) -> String {
        let written = std::mem::replace(&mut self.inner, Self::fresh());
        let bytes = written.into_inner().unwrap_or_default();
        // Every cell was a str: the output is UTF-8.
        String::from_utf8(bytes).unwrap_or_default()
    }
}

/// One row as read: its line number (1-based, where it starts) and its
/// cells, trimmed and restored; or why it could not be read.
pub type Row = (u64, Result<Vec<String>, String>);

/// Reads every row of `text` (a byte-order mark first is skipped). A row
/// that is not valid CSV (an unterminated quote, bytes that are not UTF-8)
/// comes back as an error naming why, and reading goes on after it where
/// the format allows.
pub fn rows(text: &[u8]) -> impl Iterator<Item = Row> + '_ {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let mut records = reader.into_byte_records();
    // The csv crate counts records' lines, not the file's; a text editor's
    // line is the line breaks before the row's first byte, plus one.
    let mut counted = (0usize, 1u64);
    let mut line_at = move |pos: Option<&csv::Position>| -> u64 {
        let mut byte = pos
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .min(text.len());
        // A row's position may be the line break that ended the one before.
        while matches!(text.get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        if byte >= counted.0 {
            counted.1 += text[counted.0..byte].iter().filter(|b| **b == b'\n').count() as u64;
            counted.0 = byte;
        }
        counted.1
    };
    std::iter::from_fn(move || {
        let record = records.next()?;
        Some(match record {
            Ok(r) => {
                let line = line_at(r.position());
                let cells: Result<Vec<String>, String> = r
                    .iter()
                    .map(|c| {
                        std::str::from_utf8(c)
                            .map(|s| restore(s).to_owned())
                            .map_err(|_| "not UTF-8 text".to_owned())
                    })
                    .collect();
                (line, cells)
            }
            Err(e) => {
                let line = line_at(e.position());
                (line, Err(format!("not well-formed CSV ({})", error_words(&e))))
            }
        })
    })
}

fn error_words(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".to_owned(),
        csv::ErrorKind::UnequalLengths { .. } => "a different number of fields".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised_and_restored() {
        for cell in [
            "=1+1",
            "+33 1 23",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://evil\")",
        ] {
            let safe = neutralise(cell);
            assert!(safe.starts_with('\''), "{cell:?}");
            assert_eq!(restore(&safe), cell);
        }
        for cell in ["a@x.test", "hard_bounce", "", "'quoted", "1-2"] {
            assert_eq!(neutralise(cell), cell);
            assert_eq!(restore(cell), cell);
        }
    }

    #[test]
    fn rows_are_quoted_per_rfc_4180_and_read_back() {
        let mut w = Writer::new();
        w.header(&["address", "reason"]);
        w.row(["a,b@x.test", "said \"stop\"\nplease"]);
        w.row(["=cmd|' /C calc'!A0", "-"]);
        let text = w.take();
        assert_eq!(
            text,
            "address,reason\r\n\"a,b@x.test\",\"said \"\"stop\"\"\nplease\"\r\n'=cmd|' /C calc'!A0,'-\r\n"
        );
        let read: Vec<_> = rows(text.as_bytes()).collect();
        assert_eq!(read.len(), 3);
        assert_eq!(
            read[1].1.as_ref().unwrap(),
            &vec!["a,b@x.test".to_owned(), "said \"stop\"\nplease".to_owned()]
        );
        assert_eq!(read[2].0, 4, "the line the row starts on");
        assert_eq!(
            read[2].1.as_ref().unwrap(),
            &vec!["=cmd|' /C calc'!A0".to_owned(), "-".to_owned()]
        );
    }

    #[test]
    fn bad_rows_say_so_with_their_line() {
        let text = b"a@x.test\n\xff\xfe@x.test\nb@x.test\n\"unterminated\nc@x.test\n";
        let read: Vec<_> = rows(text).collect();
        assert_eq!(read[0], (1, Ok(vec!["a@x.test".to_owned()])));
        assert_eq!(read[1].0, 2);
        assert!(read[1].1.is_err());
        assert_eq!(read[2], (3, Ok(vec!["b@x.test".to_owned()])));
        // An unterminated quote takes the rest of the file as its field.
        assert_eq!(read[3].0, 4);
    }
}
