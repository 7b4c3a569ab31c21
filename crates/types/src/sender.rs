//! Approved senders: the From addresses an account may use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DomainName, EmailAddress, InvalidValue};

/// One approved-sender rule: an exact address, or `@domain` for every address
/// at that domain (not its subdomains: a brand approves each sending domain it
/// verified, and a subdomain may belong to someone else's stream).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SenderRule {
    Address(EmailAddress),
    Domain(DomainName),
}

impl SenderRule {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s.strip_prefix('@') {
            Some(domain) => DomainName::parse(domain)
                .map(Self::Domain)
                .map_err(|_| InvalidValue::new("sender", s, "an address (user@example.com) or @domain (@example.com)")),
            None => EmailAddress::parse(s)
                .map(Self::Address)
                .map_err(|_| InvalidValue::new("sender", s, "an address (user@example.com) or @domain (@example.com)")),
        }
    }

    /// Whether `from` is allowed by this rule. Domains compare
    /// case-insensitively; local parts exactly, except that ASCII case is
    /// ignored because every mailbox provider treats it so and users type it
    /// both ways.
    pub fn allows(&self, from: &EmailAddress) -> bool {
        match self {
            Self::Domain(d) => from.domain() == d,
            Self::Address(a) => a.domain() == from.domain() && a.local_part().eq_ignore_ascii_case(from.local_part()),
        }
    }
}

impl fmt::Display for SenderRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(a) => write!(f, "{a}"),
            Self::Domain(d) => write!(f, "@{d}"),
        }
    }
}

impl TryFrom<String> for SenderRule {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<SenderRule> for String {
    fn from(r: SenderRule) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn domain_rules_allow_the_domain_but_not_subdomains_or_lookalikes() {
        let rule = SenderRule::parse("@Example.com").unwrap();
        assert_eq!(rule.to_string(), "@example.com");
        assert!(rule.allows(&addr("news@EXAMPLE.com")));
        assert!(!rule.allows(&addr("news@mail.example.com")));
        assert!(!rule.allows(&addr("news@example.com.evil.net")));
    }

    #[test]
    fn address_rules_allow_that_address_only() {
        let rule = SenderRule::parse("billing@example.com").unwrap();
        assert!(rule.allows(&addr("Billing@example.com")));
        assert!(!rule.allows(&addr("billing2@example.com")));
        assert!(!rule.allows(&addr("billing@example.org")));
    }

    #[test]
    fn malformed_rules_say_what_is_expected() {
        let err = SenderRule::parse("@").unwrap_err();
        assert!(err.to_string().contains("@domain"), "{err}");
        assert!(SenderRule::parse("not an address").is_err());
    }
}
