//! Who a message says it is from: every address of every `From:` and
//! `Sender:` field, read with mail-parser's address parser and then held
//! to what a reader would see.
//!
//! mail-parser is lenient by design: it glues pieces it cannot place into
//! one "address", keeps unterminated brackets and quotes, and returns
//! entries with no address at all. A sending platform must not be lenient
//! here — whatever a mail client could show as the author has to be an
//! address the account may use — so a field is refused unless every entry
//! parses to a valid address, every `@` outside quotes and comments belongs
//! to one of them, and the brackets balance. Addresses that appear in a
//! display name or comment (`"ceo@bank.test" <me@acme.test>`) are returned
//! too, so the caller holds them to the same approval as the real ones.
//!
//! The same parser reads the single mailboxes of the send API
//! ([`mailbox`]), so acceptance, preparation and composition share one
//! reading of an address.

use herald_types::EmailAddress;
use mail_parser::parsers::MessageStream;
use mail_parser::{Addr, Address, HeaderValue};

use crate::{HeaderBlock, MessageError};

/// The author fields: the ones readers display and DMARC aligns on.
pub const AUTHOR_FIELDS: [&str; 2] = ["From", "Sender"];

/// The authors of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authors {
    /// Every address of every `From:` field, in order.
    pub from: Vec<EmailAddress>,
    /// Every address of every `Sender:` field.
    pub sender: Vec<EmailAddress>,
    /// Addresses written inside display names or comments of those fields.
    pub named: Vec<EmailAddress>,
}

impl Authors {
    /// Every address a reader could take for the author.
    pub fn all(&self) -> impl Iterator<Item = &EmailAddress> {
        self.from.iter().chain(&self.sender).chain(&self.named)
    }

    /// The first `From:` address: the one DKIM and DMARC align with.
    pub fn first_from(&self) -> Option<&EmailAddress> {
        self.from.first()
    }

    /// The authors of a message whose only author field is the mailbox
    /// `name <address>` (one the send API builds).
    pub fn of_mailbox(name: Option<&str>, address: EmailAddress) -> Self {
        Self {
            from: vec![address],
            sender: Vec::new(),
            named: name.map(addresses_in_text).unwrap_or_default(),
        }
    }
}

fn invalid(field: &str, why: impl std::fmt::Display) -> MessageError {
    MessageError::Invalid(format!("{field}: {why}"))
}

/// Reads the authors of a parsed header block. A block with no `From:` is
/// fine here (acceptance adds one); a `From:` or `Sender:` that does not
/// parse cleanly is an error naming the field.
pub fn authors(block: &HeaderBlock) -> Result<Authors, MessageError> {
    let mut out = Authors::default();
    for field in AUTHOR_FIELDS {
        for raw in block.raw_values(field) {
            let entries = mailboxes(field, raw)?;
            for (name, address) in entries {
                if let Some(name) = name {
                    out.named.extend(addresses_in_text(&name));
                }
                if field == "From" {
                    out.from.push(address);
                } else {
                    out.sender.push(address);
                }
            }
        }
    }
    Ok(out)
}

/// One mailbox as the send API takes it: `jane@example.net` or
/// `Jane Doe <jane@example.net>`. The display name comes back decoded.
pub fn mailbox(value: &str) -> Result<(Option<String>, EmailAddress), MessageError> {
    if value.contains(['\r', '\n']) {
        return Err(MessageError::Invalid("must not contain line breaks".to_owned()));
    }
    let mut list = mailboxes("address", value.as_bytes())?;
    if list.len() != 1 {
        return Err(MessageError::Invalid(format!(
            "expected one address, found {}",
            list.len()
        )));
    }
    Ok(list.remove(0))
}

/// Every mailbox of one raw field value, strictly.
fn mailboxes(field: &str, raw: &[u8]) -> Result<Vec<(Option<String>, EmailAddress)>, MessageError> {
    let text = std::str::from_utf8(raw).map_err(|_| invalid(field, "not valid UTF-8"))?;
    if text.contains('\0') {
        return Err(invalid(field, "contains a NUL byte"));
    }
    let shape = Shape::of(text).map_err(|why| invalid(field, why))?;
    // mail-parser drops the last token when the input does not end in a
    // line break.
    let mut input = text.trim_end_matches(['\r', '\n']).to_owned();
    input.push_str("\r\n");
    let parsed = MessageStream::new(input.as_bytes()).parse_address();
    let entries: Vec<&Addr<'_>> = match &parsed {
        HeaderValue::Address(Address::List(list)) => list.iter().collect(),
        HeaderValue::Address(Address::Group(groups)) => groups.iter().flat_map(|g| g.addresses.iter()).collect(),
        HeaderValue::Empty => Vec::new(),
        _ => return Err(invalid(field, "not an address list")),
    };
    if entries.is_empty() {
        return Err(invalid(field, "no address"));
    }
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(given) = entry.address.as_deref() else {
            let shown = entry.name.as_deref().unwrap_or_default();
            return Err(invalid(field, format!("{shown:?} is not an address")));
        };
        let address = EmailAddress::parse(given.trim())
            .map_err(|_| invalid(field, format!("{given:?} is not a valid address")))?;
        // A quoted local part can hide an address ("ceo@bank.test"@acme.test)
        // and every encoder writes it back differently: authors must be
        // plain dot-atoms.
        if address.local_part().starts_with('"') {
            return Err(invalid(field, format!("{given:?} has a quoted local part")));
        }
        let name = entry
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        out.push((name, address));
    }
    // Every `@` a reader sees outside quotes and comments must be one of
    // the addresses read: anything else means the parser and a mail client
    // could disagree on who the author is.
    if shape.ats != out.len() {
        return Err(invalid(
            field,
            format!("{} address signs for {} addresses: ambiguous", shape.ats, out.len()),
        ));
    }
    Ok(out)
}

/// What a field value looks like to a reader, outside quoted strings and
/// comments: its `@` signs, and whether its brackets, quotes and comments
/// close. Not a parser of addresses — mail-parser is that — but the check
/// that its reading is the only one.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    ats: usize,
}

impl Shape {
    fn of(text: &str) -> Result<Self, &'static str> {
        let mut ats = 0;
        let mut quoted = false;
        let mut comment = 0usize;
        let mut angle = false;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                // RFC 5322 §3.2.1 quoted-pair, in quotes and comments.
                '\\' if quoted || comment > 0 => {
                    chars.next();
                }
                '"' if comment == 0 => quoted = !quoted,
                _ if quoted => {}
                '(' => comment += 1,
                ')' if comment > 0 => comment -= 1,
                ')' => return Err("a comment closes that never opened"),
                _ if comment > 0 => {}
                '<' if angle => return Err("nested angle brackets"),
                '<' => angle = true,
                '>' if !angle => return Err("an angle bracket closes that never opened"),
                '>' => angle = false,
                '@' => ats += 1,
                _ => {}
            }
        }
        if quoted {
            return Err("an unterminated quoted string");
        }
        if comment > 0 {
            return Err("an unterminated comment");
        }
        if angle {
            return Err("an unterminated angle bracket");
        }
        Ok(Self { ats })
    }
}

/// Addresses written in free text (a display name, a comment): any word
/// with an `@` that is a valid address once its surrounding punctuation
/// is taken off.
fn addresses_in_text(text: &str) -> Vec<EmailAddress> {
    text.split(|c: char| c.is_whitespace() || "<>()[]\",;:'`".contains(c))
        .filter(|word| word.contains('@'))
        .filter_map(|word| EmailAddress::parse(word.trim_matches(|c: char| c.is_ascii_punctuation() && c != '@')).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &str) -> Result<Authors, MessageError> {
        let msg = format!("{headers}\r\nSubject: x\r\n\r\nbody\r\n");
        authors(&HeaderBlock::parse(msg.as_bytes())?)
    }

    fn all(headers: &str) -> Vec<String> {
        read(headers)
            .unwrap_or_else(|e| panic!("{headers:?}: {e}"))
            .all()
            .map(ToString::to_string)
            .collect()
    }

    fn refused(headers: &str) {
        assert!(
            read(headers).is_err(),
            "{headers:?} should be refused, got {:?}",
            read(headers)
        );
    }

    #[test]
    fn the_forms_people_write_give_every_address() {
        assert_eq!(all("From: Jane <jane@acme.test>"), ["jane@acme.test"]);
        assert_eq!(
            all("From: \"Doe, Jane\" <jane@acme.test>, bob@acme.test"),
            ["jane@acme.test", "bob@acme.test"]
        );
        assert_eq!(all("From: jane@acme.test (Jane Doe)"), ["jane@acme.test"]);
        assert_eq!(all("From: =?utf-8?q?J=C3=A4ne?= <jane@acme.test>"), ["jane@acme.test"]);
        assert_eq!(
            all("From: Team: a@acme.test, b@victim.test;"),
            ["a@acme.test", "b@victim.test"]
        );
        assert_eq!(all("From:\r\n a@acme.test"), ["a@acme.test"]);
        assert_eq!(all("FROM: a@acme.test"), ["a@acme.test"]);
        assert_eq!(
            all("From: a@acme.test\r\nSender: ops@victim.test"),
            ["a@acme.test", "ops@victim.test"]
        );
        assert_eq!(
            all("From: a@acme.test\r\nFrom: ceo@victim.test"),
            ["a@acme.test", "ceo@victim.test"],
            "every From field counts, not the first or the last"
        );
        assert_eq!(
            all("From: <a@acme.test>, <ceo@victim.test>"),
            ["a@acme.test", "ceo@victim.test"]
        );
    }

    #[test]
    fn addresses_hidden_in_names_and_comments_are_authors_too() {
        assert_eq!(
            all("From: \"ceo@victim.test\" <attacker@acme.test>"),
            ["attacker@acme.test", "ceo@victim.test"]
        );
        assert_eq!(
            all("From: attacker@acme.test (ceo@victim.test)"),
            ["attacker@acme.test", "ceo@victim.test"]
        );
        assert_eq!(
            all("From: =?utf-8?q?ceo=40victim.test?= <attacker@acme.test>"),
            ["attacker@acme.test", "ceo@victim.test"]
        );
        assert_eq!(
            all("From: \"=?utf-8?q?ceo=40victim.test?=\" <attacker@acme.test>"),
            ["attacker@acme.test", "ceo@victim.test"]
        );
        assert_eq!(all("From: Support <support@acme.test>"), ["support@acme.test"]);
    }

    #[test]
    fn fields_that_could_read_two_ways_are_refused() {
        for h in [
            "From: ceo@victim.test <attacker@acme.test>",
            "From: \u{200b}ceo@victim.test <a@acme.test>",
            "From: attacker@acme.test <ceo@victim.test>",
            "From: <a@acme.test> <ceo@victim.test>",
            "From: a@acme.test ceo@victim.test",
            "From: a@acme.test\r\n\t<ceo@victim.test>",
            "From: Jane <jane@acme.test> trailing@victim.test",
            "From: <ceo@victim.test>@acme.test",
            "From: ceo@victim.test@acme.test",
            "From: =?utf-8?b?PGNlb0B2aWN0aW0udGVzdD4=?=",
            "From: <=?utf-8?q?ceo=40victim.test?=>",
            "From: not an address",
            "From: ",
            "From: <>",
            "From: @",
            "From: a@",
            "From: <a@acme.test",
            "From: a@acme.test>",
            "From: \"unterminated <a@acme.test>",
            "From: a@acme.test (unterminated",
            "From: \"a@b\"@acme.test",
            "From: <\"\\\\R\"@acme.test>",
            "From: \"jane doe\"@acme.test",
            "From: jane(comment)@acme.test",
            "From: Undisclosed:;",
            "From: a@acme.test\r\nFrom: ",
            "Sender: nobody",
        ] {
            refused(h);
        }
    }

    #[test]
    fn header_blocks_that_parsers_read_differently_are_refused() {
        for msg in [
            &b"From : ceo@victim.test\r\n\r\nx"[..],
            b"Fr om: ceo@victim.test\r\n\r\nx",
            b" From: ceo@victim.test\r\n\r\nx",
            b"From: a@acme.test\r<ceo@victim.test>\r\n\r\nx",
            b"From: a@acme.test\0ceo@victim.test\r\n\r\nx",
            b"Subject: y\r\nGarbage line without colon\r\nFrom: a@acme.test\r\n\r\nx",
        ] {
            assert!(HeaderBlock::parse(msg).is_err(), "{:?}", String::from_utf8_lossy(msg));
        }
        let latin1 = HeaderBlock::parse(b"From: Jane\xff Doe <jane@acme.test>\r\n\r\nx").unwrap();
        assert!(authors(&latin1).is_err(), "an author field that is not UTF-8");
    }

    #[test]
    fn single_mailboxes_read_the_same_way() {
        let (name, addr) = mailbox("Jane Doe <jane@example.net>").unwrap();
        assert_eq!(
            (name.as_deref(), addr.to_string().as_str()),
            (Some("Jane Doe"), "jane@example.net")
        );
        assert_eq!(mailbox("jane@example.net").unwrap().1.to_string(), "jane@example.net");
        assert_eq!(
            mailbox("\"Doe, Jane\" <jane@example.net>").unwrap().0.as_deref(),
            Some("Doe, Jane")
        );
        assert!(mailbox("a@x.test, b@x.test").is_err());
        assert!(mailbox("a@x.test\r\nBcc: b@x.test").is_err());
        assert!(mailbox("not an address").is_err());
        // Found by fuzzing: a quoted local part is written back otherwise.
        assert!(mailbox("<\"\\\\R\"@t.test>").is_err());
        assert!(mailbox("").is_err());
    }
}
