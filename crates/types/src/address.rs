//! Mail addresses and domain names, checked against RFC 5321's limits.
//!
//! Both keep the local part as given (it is case-sensitive by the RFC, and
//! some systems rely on it) and fold the domain to lower case, so two
//! spellings of a domain compare equal. Non-ASCII (SMTPUTF8, RFC 6531) is
//! accepted in both parts.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// RFC 5321 §4.5.3.1.1: maximum local part, in octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: maximum domain, in octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 1035 §2.3.4: maximum label, in octets.
pub const MAX_LABEL: usize = 63;

/// A domain name: dot-separated labels of letters, digits and hyphens (or
/// non-ASCII for internationalised names), no label starting or ending with a
/// hyphen, lower-cased, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const EXPECTED: &str = "a domain name such as example.com (labels of letters, digits and hyphens)";
        let lower = s.strip_suffix('.').unwrap_or(s).to_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= MAX_LABEL
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        };
        if !lower.is_empty() && lower.len() <= MAX_DOMAIN && lower.split('.').all(label_ok) {
            Ok(Self(lower))
        } else {
            Err(InvalidValue::new("domain", s, EXPECTED))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is `other` or a subdomain of it.
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0 || self.0.strip_suffix(&other.0).is_some_and(|head| head.ends_with('.'))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

/// A mailbox address `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    local: String,
    domain: DomainName,
}

impl EmailAddress {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const EXPECTED: &str = "an address local@domain with a local part of at most 64 octets";
        let invalid = || InvalidValue::new("address", s, EXPECTED);
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        if !local_part_ok(local) {
            return Err(invalid());
        }
        let domain = DomainName::parse(domain).map_err(|_| invalid())?;
        Ok(Self {
            local: local.to_owned(),
            domain,
        })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &DomainName {
        &self.domain
    }
}

/// RFC 5321 §4.1.2 `Local-part = Dot-string / Quoted-string`, with UTF-8
/// allowed (RFC 6531).
fn local_part_ok(local: &str) -> bool {
    if local.is_empty() || local.len() > MAX_LOCAL_PART {
        return false;
    }
    if let Some(inner) = local.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
        // Quoted-string: any printable except an unescaped quote or backslash.
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                // A backslash escapes the next character; none left is malformed.
                '\\' if chars.next().is_none() => return false,
                '\\' => {}
                '"' => return false,
                c if c.is_control() => return false,
                _ => {}
            }
        }
        return true;
    }
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    local.split('.').all(|atom| {
        !atom.is_empty()
            && atom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c) || (!c.is_ascii() && !c.is_control()))
    })
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_the_local_part_and_fold_the_domain() {
        let a = EmailAddress::parse("Jane.Doe+tag@Example.COM").unwrap();
        assert_eq!(a.local_part(), "Jane.Doe+tag");
        assert_eq!(a.domain().as_str(), "example.com");
        assert_eq!(a.to_string(), "Jane.Doe+tag@example.com");
    }

    #[test]
    fn rfc5321_limits_are_enforced() {
        let local64 = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local64}@example.com")).is_ok());
        assert!(EmailAddress::parse(&format!("a{local64}@example.com")).is_err());
        let label63 = "b".repeat(63);
        assert!(DomainName::parse(&format!("{label63}.com")).is_ok());
        assert!(DomainName::parse(&format!("b{label63}.com")).is_err());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a..b@example.com",
            ".a@example.com",
            "a b@example.com",
            "a@-example.com",
            "a@exa_mple.com",
            "a@example..com",
            "\"a\"b\"@x.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn quoted_and_international_local_parts_are_accepted() {
        assert!(EmailAddress::parse("\"john smith\"@example.com").is_ok());
        assert!(EmailAddress::parse("用户@例子.广告").is_ok());
        assert_eq!(DomainName::parse("Example.com.").unwrap().as_str(), "example.com");
    }

    #[test]
    fn subdomains_are_within_their_parent_only() {
        let parent = DomainName::parse("example.com").unwrap();
        assert!(DomainName::parse("mail.example.com").unwrap().is_within(&parent));
        assert!(parent.is_within(&parent));
        assert!(!DomainName::parse("badexample.com").unwrap().is_within(&parent));
    }
}
