//! Suppression lists as users manage them: list, look up, add, remove,
//! import and export (CSV). The lists also fill themselves from bounces,
//! complaints and unsubscribes (the event pipeline's suppressor and the
//! tracker); these are the hands-on operations.

use herald_store::{NewSuppression, Suppression, SuppressionFilter};
use herald_types::{EmailAddress, InvalidValue};

use crate::{Accounts, AccountsError, AccountsResult, Caller};

/// The reason of an entry added by hand.
pub const MANUAL: &str = "manual";
/// The reason of an imported entry that names none.
pub const IMPORTED: &str = "import";
/// Entries stored per transaction by an import.
pub const IMPORT_BATCH: usize = 5_000;
/// The most addresses one import takes.
pub const MAX_IMPORT: usize = 1_000_000;

/// The longest reason kept.
pub const MAX_REASON: usize = 256;

/// A suppression reason: free text ("asked by phone on 3 May") of 1 to
/// [`MAX_REASON`] characters without line breaks or other control
/// characters; `default` when none is given.
fn reason(given: Option<&str>, default: &str) -> AccountsResult<String> {
    let r = given.map(str::trim).filter(|r| !r.is_empty()).unwrap_or(default);
    if r.chars().count() <= MAX_REASON && !r.chars().any(char::is_control) {
        Ok(r.to_owned())
    } else {
        Err(InvalidValue::new(
            "reason",
            &r.chars().take(64).collect::<String>(),
            "a reason of at most 256 characters without line breaks or control characters",
        )
        .into())
    }
}

/// An address as kept: its local part as given (mailboxes may differ by
/// case, RFC 5321 §2.4), its domain lower-cased. Lookups compare the
/// lower-cased whole, so an entry stops mail to every spelling.
fn address(given: &str) -> AccountsResult<String> {
    let parsed = EmailAddress::parse(given.trim())?;
    Ok(format!(
        "{}@{}",
        parsed.local_part(),
        parsed.domain().to_string().to_ascii_lowercase()
    ))
}

impl Accounts {
    /// One page of the acting account's list, in address order.
    pub async fn list_suppressions(
        &self,
        caller: &Caller,
        filter: &SuppressionFilter,
        limit: u32,
    ) -> AccountsResult<Vec<Suppression>> {
        Ok(self
            .store()
            .list_suppressions(&caller.account.id, filter, limit)
            .await?)
    }

    /// Whether mail from the acting account to `address` is stopped, and by
    /// which entry: its own, or its brand's.
    pub async fn suppression(&self, caller: &Caller, address_: &str) -> AccountsResult<Suppression> {
        let address = address(address_).map_err(|_| AccountsError::NotFound("suppression"))?;
        let brand = caller.account.brand();
        let brand = (brand != &caller.account.id).then_some(brand);
        let found = self
            .store()
            .suppressed(&caller.account.id, brand, std::slice::from_ref(&address))
            .await?;
        // The account's own entry first: that is the one a user can remove.
        found
            .iter()
            .find(|s| s.account == caller.account.id)
            .or(found.first())
            .cloned()
            .ok_or(AccountsError::NotFound("suppression"))
    }

    /// Adds an address to the acting account's list (`manual` unless a
    /// reason is given). An address already there keeps its entry.
    pub async fn add_suppression(
        &self,
        caller: &Caller,
        address_: &str,
        reason_: Option<&str>,
    ) -> AccountsResult<Suppression> {
        let entry = NewSuppression {
            account: caller.account.id.clone(),
            address: address(address_)?,
            reason: reason(reason_, MANUAL)?,
            source_event: None,
            brand: false,
        };
        self.store().suppress(&entry).await?;
        tracing::info!(account = %caller.account.name, address = %entry.address, reason = %entry.reason,
            "address suppressed by hand");
        self.suppression(caller, &entry.address).await
    }

    /// Removes an address from the acting account's list. A brand-wide entry
    /// kept on the master account is removed by the master.
    pub async fn remove_suppression(&self, caller: &Caller, address_: &str) -> AccountsResult<()> {
        let address = address(address_).map_err(|_| AccountsError::NotFound("suppression"))?;
        if !self.store().remove_suppression(&caller.account.id, &address).await? {
            return Err(AccountsError::NotFound("suppression"));
        }
        tracing::info!(account = %caller.account.name, address = %address, "suppression removed");
        Ok(())
    }

    /// Imports a CSV list (see [`parse_csv`]) into the acting account's
    /// list, in batches of [`IMPORT_BATCH`]. Each bad line (not CSV, no address, an
    /// address or reason that is not one) is reported with its number and
    /// why; the good ones are imported, unless `strict`, when any bad line
    /// refuses the whole file (naming the first ones) and nothing changes.
    pub async fn import_suppressions(&self, caller: &Caller, csv: &[u8], strict: bool) -> AccountsResult<Imported> {
        self.import_suppressions_with(caller, csv, strict, |_| {}).await
    }

    /// [`Accounts::import_suppressions`], telling `stored` how many good
    /// lines are in as each batch is. Batches of [`IMPORT_BATCH`] are a
    /// transaction each, so a large import never holds the store's writes
    /// for long; a failure part way leaves the batches before it (running
    /// the import again adds nothing twice).
    pub async fn import_suppressions_with(
        &self,
        caller: &Caller,
        csv: &[u8],
        strict: bool,
        mut stored: impl FnMut(u64),
    ) -> AccountsResult<Imported> {
        let parsed = parse_csv(csv)?;
        let mut bad = parsed.bad;
        let mut entries = Vec::with_capacity(parsed.rows.len());
        for (line, addr, why) in &parsed.rows {
            let checked = address(addr).and_then(|a| Ok((a, reason(why.as_deref(), IMPORTED)?)));
            match checked {
                Ok((address, reason)) => entries.push(NewSuppression {
                    account: caller.account.id.clone(),
                    address,
                    reason,
                    source_event: None,
                    brand: false,
                }),
                Err(AccountsError::Invalid(v)) => bad.push(BadLine {
                    line: *line,
                    reason: format!("{}: {} ({:?})", v.what, v.expected, v.value),
                }),
                Err(e) => return Err(e),
            }
        }
        bad.sort_by_key(|b| b.line);
        if strict && !bad.is_empty() {
            let first: Vec<String> = bad
                .iter()
                .take(10)
                .map(|b| format!("line {}: {}", b.line, b.reason))
                .collect();
            return Err(AccountsError::Invalid(InvalidValue::new(
                "CSV",
                &format!("{} bad lines: {}", bad.len(), first.join("; ")),
                "every line good (strict)",
            )));
        }
        let mut added = 0;
        let mut done = 0;
        for batch in entries.chunks(IMPORT_BATCH) {
            added += self.store().suppress_many(batch).await?;
            done += batch.len() as u64;
            stored(done);
        }
        tracing::info!(account = %caller.account.name, rows = entries.len(), added, skipped = bad.len(),
            "suppressions imported");
        let skipped = bad.len() as u64;
        bad.truncate(MAX_REPORTED);
        Ok(Imported {
            rows: entries.len() as u64,
            added,
            skipped,
            bad,
        })
    }

    /// The acting account's whole list as CSV (`address,reason,created_at,
    /// source_event,brand`), the format [`Accounts::import_suppressions`]
    /// reads back.
    pub async fn export_suppressions(&self, caller: &Caller) -> AccountsResult<String> {
        let mut out = herald_types::csv_file::Writer::new();
        out.header(&EXPORT_COLUMNS);
        let mut text = out.take();
        self.export_suppressions_with(caller, |page| {
            export_rows(&mut out, page);
            text.push_str(&out.take());
        })
        .await?;
        Ok(text)
    }

    /// The acting account's whole list, a page at a time (in address
    /// order): for exports that show progress.
    pub async fn export_suppressions_with(
        &self,
        caller: &Caller,
        mut page_done: impl FnMut(&[Suppression]),
    ) -> AccountsResult<()> {
        const PAGE: u32 = 1000;
        let mut filter = SuppressionFilter::default();
        loop {
            let page = self.list_suppressions(caller, &filter, PAGE).await?;
            page_done(&page);
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after = Some(last.address.clone()),
                _ => return Ok(()),
            }
        }
    }
}

/// Entries as rows of an export (the columns of [`EXPORT_COLUMNS`]).
pub fn export_rows(out: &mut herald_types::csv_file::Writer, page: &[Suppression]) {
    for s in page {
        let at = s
            .created_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let event = s.source_event.as_ref().map(ToString::to_string).unwrap_or_default();
        out.row([
            s.shown.as_str(),
            &s.reason,
            &at,
            &event,
            if s.brand { "true" } else { "false" },
        ]);
    }
}

/// The columns of an export, which an import reads back.
pub const EXPORT_COLUMNS: [&str; 5] = ["address", "reason", "created_at", "source_event", "brand"];

/// Bad lines listed at most in an import's answer (all are counted).
pub const MAX_REPORTED: usize = 1000;

/// A line an import skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Good lines, imported.
    pub rows: u64,
    /// Of them, addresses that were not on the list before.
    pub added: u64,
    /// Bad lines, skipped.
    pub skipped: u64,
    /// The first [`MAX_REPORTED`] of them.
    pub bad: Vec<BadLine>,
}

/// A suppression CSV read: good rows as (line, address, reason) and the
/// lines that could not be read.
#[derive(Debug, Default)]
pub struct ParsedCsv {
    pub rows: Vec<(u64, String, Option<String>)>,
    pub bad: Vec<BadLine>,
}

/// Reads a suppression CSV: one address per line, optionally with a
/// reason. A first line naming the columns (`address` or `email`, and
/// `reason`) picks them, in any order and among other columns, so exports
/// of other platforms import as they are; without one, the first column is
/// the address and the second, if any, the reason. Blank lines are skipped;
/// a line that is not CSV, or has no address, is a bad line. A header
/// without an address column, or more than [`MAX_IMPORT`] lines, refuses
/// the file.
pub fn parse_csv(text: &[u8]) -> AccountsResult<ParsedCsv> {
    let whole = |line: u64, value: &str, why: &'static str| {
        AccountsError::Invalid(InvalidValue::new("CSV line", &format!("{line}: {value}"), why))
    };
    // Rows of nothing but white space (any Unicode space) are blank lines.
    let blank = |row: &herald_types::csv_file::Row| matches!(&row.1, Ok(f) if f.iter().all(|c| c.trim().is_empty()));
    let mut rows = herald_types::csv_file::rows(text).filter(|r| !blank(r)).peekable();
    let (mut addr_col, mut reason_col) = (0, Some(1));
    // A first line is a header when it has no address in it and names a
    // column or has several: one naming no address column refuses the
    // file (another platform's export whose address column is not known);
    // a single word is just a bad first line.
    if let Some((line, Ok(first))) = rows.peek() {
        let names: Vec<String> = first.iter().map(|h| h.trim().to_lowercase()).collect();
        let known = |h: &str| matches!(h, "address" | "email" | "email_address" | "recipient" | "reason");
        if !names.iter().any(|h| h.contains('@')) && (names.len() > 1 || names.iter().any(|h| known(h))) {
            addr_col = names
                .iter()
                .position(|h| matches!(h.as_str(), "address" | "email" | "email_address" | "recipient"))
                .ok_or_else(|| {
                    whole(
                        *line,
                        &first.join(","),
                        "a header with an address or email column, or an address",
                    )
                })?;
            reason_col = names.iter().position(|h| h == "reason");
            rows.next();
        }
    }
    let mut parsed = ParsedCsv::default();
    for (line, row) in rows {
        if parsed.rows.len() + parsed.bad.len() >= MAX_IMPORT {
            return Err(whole(line, "…", "at most 1,000,000 lines per import"));
        }
        let fields = match row {
            Ok(f) => f,
            Err(why) => {
                parsed.bad.push(BadLine { line, reason: why });
                continue;
            }
        };
        let Some(address) = fields.get(addr_col).filter(|a| !a.is_empty()) else {
            parsed.bad.push(BadLine {
                line,
                reason: "no address".to_owned(),
            });
            continue;
        };
        let why = reason_col
            .and_then(|c| fields.get(c))
            .filter(|r| !r.is_empty())
            .cloned();
        parsed.rows.push((line, address.clone(), why));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_a_header_picks_columns_in_any_order() {
        let p = parse_csv(
            "\u{feff}Reason,Email,Created\r\nhard_bounce,A@x.test,2026\n\n\"manual\",\"say \"\"hi\"\", b@x.test\",\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(p.rows[0], (2, "A@x.test".to_owned(), Some("hard_bounce".to_owned())));
        assert_eq!(
            p.rows[1],
            (4, "say \"hi\", b@x.test".to_owned(), Some("manual".to_owned()))
        );
        assert!(p.bad.is_empty());
    }

    #[test]
    fn csv_without_a_header_is_address_then_reason() {
        let p = parse_csv(b"a@x.test\nb@x.test,asked us by phone, twice\n").unwrap();
        assert_eq!(
            p.rows,
            vec![
                (1, "a@x.test".to_owned(), None),
                (2, "b@x.test".to_owned(), Some("asked us by phone".to_owned()))
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_and_the_rest_read() {
        let p = parse_csv(b"address,reason\na@x.test\n,no address\n\xff@x.test\nb@x.test\n").unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[1].0, 5);
        let lines: Vec<u64> = p.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4]);
        let e = parse_csv(b"name,when\nx,y\n").unwrap_err().to_string();
        assert!(e.contains("address or email column"), "{e}");
        // One word first is a bad line, not a header; lines of Unicode
        // spaces are blank.
        let p = parse_csv("unknown\n\u{2003}\u{a0}\na@x.test\n".as_bytes()).unwrap();
        assert_eq!(
            p.rows,
            vec![(1, "unknown".to_owned(), None), (3, "a@x.test".to_owned(), None)],
            "the word is a row, whose address the import then refuses"
        );
        assert!(p.bad.is_empty());
    }

    #[test]
    fn addresses_keep_their_local_part_and_reasons_are_free_text() {
        assert_eq!(address(" John.Doe@Example.COM ").unwrap(), "John.Doe@example.com");
        assert!(address("not an address").is_err());
        assert_eq!(
            reason(Some("  Asked by phone, 3 May  "), MANUAL).unwrap(),
            "Asked by phone, 3 May"
        );
        assert_eq!(reason(None, MANUAL).unwrap(), "manual");
        assert!(reason(Some("two\nlines"), MANUAL).is_err());
        assert!(reason(Some(&"x".repeat(257)), MANUAL).is_err());
        assert!(reason(Some(&"é".repeat(256)), MANUAL).is_ok());
    }
}
