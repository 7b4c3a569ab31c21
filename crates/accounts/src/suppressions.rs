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
/// The most addresses one import takes.
pub const MAX_IMPORT: usize = 1_000_000;

/// A suppression reason: lower-case letters, digits, `_` and `-`, 1 to 32.
fn reason(given: Option<&str>, default: &str) -> AccountsResult<String> {
    let r = given.map(str::trim).filter(|r| !r.is_empty()).unwrap_or(default);
    let ok = r.len() <= 32
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(r.to_owned())
    } else {
        Err(InvalidValue::new(
            "reason",
            r,
            "a word such as manual, hard_bounce or complaint (a-z, 0-9, _ and -)",
        )
        .into())
    }
}

fn address(given: &str) -> AccountsResult<String> {
    Ok(EmailAddress::parse(given.trim())?.to_string().to_ascii_lowercase())
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
    /// list in one transaction; returns how many addresses were new. A bad
    /// line refuses the whole file, naming the line.
    pub async fn import_suppressions(&self, caller: &Caller, csv: &str) -> AccountsResult<Imported> {
        let rows = parse_csv(csv)?;
        let mut entries = Vec::with_capacity(rows.len());
        for (line, addr, why) in &rows {
            let at_line = |e: AccountsError| match e {
                AccountsError::Invalid(v) => AccountsError::Invalid(InvalidValue::new(
                    "CSV line",
                    &format!("{line}: {}", v.value),
                    v.expected,
                )),
                e => e,
            };
            entries.push(NewSuppression {
                account: caller.account.id.clone(),
                address: address(addr).map_err(at_line)?,
                reason: reason(why.as_deref(), IMPORTED).map_err(at_line)?,
                source_event: None,
                brand: false,
            });
        }
        let added = self.store().suppress_many(&entries).await?;
        tracing::info!(account = %caller.account.name, rows = entries.len(), added, "suppressions imported");
        Ok(Imported {
            rows: entries.len() as u64,
            added,
        })
    }

    /// The acting account's whole list as CSV (`address,reason,created_at,
    /// source_event,brand`), the format [`Accounts::import_suppressions`]
    /// reads back.
    pub async fn export_suppressions(&self, caller: &Caller) -> AccountsResult<String> {
        const PAGE: u32 = 1000;
        let mut out = String::from("address,reason,created_at,source_event,brand\n");
        let mut filter = SuppressionFilter::default();
        loop {
            let page = self.list_suppressions(caller, &filter, PAGE).await?;
            for s in &page {
                let at = s
                    .created_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let event = s.source_event.as_ref().map(ToString::to_string).unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{at},{event},{}\n",
                    csv_field(&s.address),
                    csv_field(&s.reason),
                    s.brand
                ));
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after = Some(last.address.clone()),
                _ => return Ok(out),
            }
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub rows: u64,
    pub added: u64,
}

/// A CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting; a quoted field does
/// not span lines here, as no address or reason holds a line break).
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Some(fields);
                }
                Some(',') => {}
                Some(_) => return None,
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Some(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
        }
        fields.push(field.trim().to_owned());
    }
}

/// Reads a suppression CSV: one address per line, optionally with a
/// reason. A first line naming the columns (`address` or `email`, and
/// `reason`) picks them, in any order and among other columns, so exports
/// of other platforms import as they are; without one, the first column is
/// the address and the second, if any, the reason. Blank lines are skipped.
/// Returns (line number, address, reason).
pub fn parse_csv(text: &str) -> AccountsResult<Vec<(usize, String, Option<String>)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let bad = |n: usize, l: &str, why: &'static str| {
        AccountsError::Invalid(InvalidValue::new("CSV line", &format!("{}: {l}", n + 1), why))
    };
    let (mut addr_col, mut reason_col) = (0, Some(1));
    if let Some((n, first)) = lines.peek().copied() {
        let header = csv_fields(first).ok_or_else(|| bad(n, first, "well-formed CSV"))?;
        let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        if !names.iter().any(|h| h.contains('@')) {
            addr_col = names
                .iter()
                .position(|h| matches!(h.as_str(), "address" | "email" | "email_address" | "recipient"))
                .ok_or_else(|| bad(n, first, "a header with an address or email column, or an address"))?;
            reason_col = names.iter().position(|h| h == "reason");
            lines.next();
        }
    }
    let mut rows = Vec::new();
    for (n, line) in lines {
        if rows.len() >= MAX_IMPORT {
            return Err(bad(n, line, "at most 1,000,000 addresses per import"));
        }
        let fields = csv_fields(line).ok_or_else(|| bad(n, line, "well-formed CSV"))?;
        let Some(address) = fields.get(addr_col).filter(|a| !a.is_empty()) else {
            return Err(bad(n, line, "an address in every line"));
        };
        let why = reason_col
            .and_then(|c| fields.get(c))
            .filter(|r| !r.is_empty())
            .cloned();
        rows.push((n + 1, address.clone(), why));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_a_header_picks_columns_in_any_order() {
        let rows = parse_csv(
            "\u{feff}Reason,Email,Created\r\nhard_bounce,A@x.test,2026\n\n\"manual\",\"say \"\"hi\"\", b@x.test\",\n",
        )
        .unwrap();
        assert_eq!(rows[0], (2, "A@x.test".to_owned(), Some("hard_bounce".to_owned())));
        assert_eq!(
            rows[1],
            (4, "say \"hi\", b@x.test".to_owned(), Some("manual".to_owned()))
        );
    }

    #[test]
    fn csv_without_a_header_is_address_then_reason() {
        let rows = parse_csv("a@x.test\nb@x.test,complaint\n").unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "a@x.test".to_owned(), None),
                (2, "b@x.test".to_owned(), Some("complaint".to_owned()))
            ]
        );
    }

    #[test]
    fn a_broken_csv_names_its_line() {
        let e = parse_csv("address\na@x.test\n\"unterminated\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CSV line") && e.contains("3: ") && e.contains("well-formed"),
            "{e}"
        );
        let e = parse_csv("name,when\nx,y\n").unwrap_err().to_string();
        assert!(e.contains("address or email column"), "{e}");
    }

    #[test]
    fn exported_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a@x.test"), "a@x.test");
        assert_eq!(csv_fields(&csv_field("a\"b,c@x.test")).unwrap(), vec!["a\"b,c@x.test"]);
    }
}
