//! Accounts: their names, kinds and states, and the scopes of API keys.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// Longest account name. Names appear in URLs, headers and SMTP usernames,
/// so they stay short and ASCII.
pub const MAX_ACCOUNT_NAME: usize = 63;

/// An account's unique name: 1–63 of `a-z 0-9 . _ -`, starting with a letter
/// or digit. Stored lower-case; parsing folds case so `Main` and `main` are one
/// account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

impl AccountName {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        const EXPECTED: &str = "1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";
        let lower = s.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_ACCOUNT_NAME
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
        if valid {
            Ok(Self(lower))
        } else {
            Err(InvalidValue::new("account name", s, EXPECTED))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AccountName {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<AccountName> for String {
    fn from(n: AccountName) -> String {
        n.0
    }
}

/// What an account chose for its mail. Stored as JSON: a setting added
/// later reads as its default for every account that predates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountSettings {
    /// Add the open pixel to HTML parts of bulk mail.
    pub track_opens: bool,
    /// Rewrite links in HTML parts of bulk mail through the click tracker.
    pub track_clicks: bool,
    /// Hard bounces of an address (within 30 days) that suppress it.
    pub hard_bounce_threshold: u32,
    /// Soft bounces of an address within 24 hours that suppress it.
    pub soft_bounce_threshold: u32,
    /// Where people's replies to bulk mail are forwarded (an address). With
    /// this or `reply_url` set, bulk mail without a Reply-To of its own gets
    /// a reply address of the inbound MX.
    pub reply_forward_to: Option<String>,
    /// Where people's replies to bulk mail are posted (JSON).
    pub reply_url: Option<String>,
    /// An `alert` event when the bounce rate of the last 24 hours is over
    /// this, in basis points (200 = 2%).
    pub bounce_alert_bp: u32,
    /// An `alert` event when the complaint rate of the last 24 hours is
    /// over this, in basis points (5 = 0.05%).
    pub complaint_alert_bp: u32,
    /// Recipients a UTC day the account may send; `None`: no quota. Set by
    /// the operator or the account's master, never the account itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_quota: Option<u32>,
    /// Recipients a minute; `None`: no limit. Set like the quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<u32>,
    /// The spam score (spamd) over which the account's mail is held, in
    /// hundredths (500 = 5.0); `None`: `[spamd] threshold`. Set like the
    /// quota: an account cannot raise its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spam_threshold_centi: Option<i32>,
    /// Where the account's alerts are mailed (beside the `alert` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_email: Option<String>,
    /// Streams that send in a domain of their own (stream name to one of
    /// the brand's sending domains): their mail is signed (DKIM `d=`) and
    /// bounces (return path) in that domain, so one stream's reputation
    /// with mailbox providers is kept apart from another's.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub stream_domains: std::collections::BTreeMap<String, String>,
}

impl AccountSettings {
    pub const DEFAULT_HARD_BOUNCES: u32 = 1;
    pub const DEFAULT_SOFT_BOUNCES: u32 = 4;
    pub const DEFAULT_BOUNCE_ALERT_BP: u32 = 200;
    pub const DEFAULT_COMPLAINT_ALERT_BP: u32 = 5;

    /// Whether replies to this account's bulk mail come to Herald.
    pub fn handles_replies(&self) -> bool {
        self.reply_forward_to.is_some() || self.reply_url.is_some()
    }

    /// The sending domain of `stream`, if it has its own.
    pub fn stream_domain(&self, stream: &str) -> Option<&str> {
        self.stream_domains.get(stream).map(String::as_str)
    }

    /// Whether mail of `stream` written from `from_domain` is allowed: a
    /// stream with its own domain writes from that domain, a parent or a
    /// subdomain of it (aligned for DMARC); a stream without one may not
    /// write from another stream's domain (or below it), which would put
    /// its mail on that stream's reputation. `Err` names the conflict.
    pub fn check_stream_author(&self, stream: &str, from_domain: &str) -> Result<(), String> {
        if let Some(own) = self.stream_domain(stream) {
            return if same_tree(own, from_domain) {
                Ok(())
            } else {
                Err(format!(
                    "stream {stream} sends in {own}; a From address at {from_domain} is not aligned with it"
                ))
            };
        }
        match self
            .stream_domains
            .iter()
            .find(|(s, d)| s.as_str() != stream && is_within(from_domain, d))
        {
            Some((other, domain)) => Err(format!(
                "{from_domain} is in {domain}, the sending domain of stream {other}; stream {stream} cannot send in it"
            )),
            None => Ok(()),
        }
    }
}

/// Whether `domain` is `parent` or a subdomain of it (ASCII case ignored).
pub fn is_within(domain: &str, parent: &str) -> bool {
    let (d, p) = (domain.trim_end_matches('.'), parent.trim_end_matches('.'));
    d.eq_ignore_ascii_case(p)
        || (d.len() > p.len()
            && d.as_bytes()[d.len() - p.len() - 1] == b'.'
            && d.as_bytes()[d.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes()))
}

/// Whether one domain is the other or below it: DMARC's relaxed
/// alignment holds between them whenever the shorter one is at or below
/// its organizational domain, which a sending domain a brand registered
/// is. (Siblings such as `a.example.com` and `b.example.com` are aligned
/// only when `example.com` is the organizational domain, which needs DNS
/// to know; they are not counted.)
pub fn same_tree(a: &str, b: &str) -> bool {
    is_within(a, b) || is_within(b, a)
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            track_opens: false,
            track_clicks: false,
            hard_bounce_threshold: Self::DEFAULT_HARD_BOUNCES,
            soft_bounce_threshold: Self::DEFAULT_SOFT_BOUNCES,
            reply_forward_to: None,
            reply_url: None,
            bounce_alert_bp: Self::DEFAULT_BOUNCE_ALERT_BP,
            complaint_alert_bp: Self::DEFAULT_COMPLAINT_ALERT_BP,
            daily_quota: None,
            rate_per_minute: None,
            spam_threshold_centi: None,
            alert_email: None,
            stream_domains: std::collections::BTreeMap::new(),
        }
    }
}

/// A master account owns sub-accounts; a sub-account sees only itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Master,
    Sub,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Sub => "sub",
        }
    }
}

/// Whether an account may use its keys and credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    /// Keys and credentials are refused (HTTP 403, SMTP 535) until the
    /// account is reactivated; nothing is deleted.
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            _ => Err(InvalidValue::new("account status", s, "active or suspended")),
        }
    }
}

/// What an API key may do beyond its own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Acts on its own account and, for a master, on its subs.
    Account,
    /// The operator's key: acts on any account and creates master accounts.
    Admin,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "account" => Ok(Self::Account),
            "admin" => Ok(Self::Admin),
            _ => Err(InvalidValue::new("key scope", s, "account or admin")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_fold_case_and_refuse_what_would_break_urls() {
        assert_eq!(AccountName::parse("Acme-EU.1").unwrap().as_str(), "acme-eu.1");
        for bad in ["", "-lead", ".x", "a b", "a/b", "ünïcode", &"x".repeat(64)] {
            let err = AccountName::parse(bad).expect_err(bad);
            assert_eq!(err.value, bad);
        }
        assert!(AccountName::parse(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn enums_round_trip_their_wire_names() {
        for s in [AccountStatus::Active, AccountStatus::Suspended] {
            assert_eq!(AccountStatus::parse(s.as_str()), Ok(s));
        }
        for k in [KeyScope::Account, KeyScope::Admin] {
            assert_eq!(KeyScope::parse(k.as_str()), Ok(k));
        }
        assert!(AccountStatus::parse("deleted").is_err());
    }

    #[test]
    fn domains_within_and_in_one_tree() {
        assert!(is_within("news.acme.test", "acme.test"));
        assert!(is_within("News.Acme.Test.", "acme.test"));
        assert!(is_within("acme.test", "ACME.test"));
        assert!(!is_within("notacme.test", "acme.test"), "a label boundary is needed");
        assert!(!is_within("acme.test", "news.acme.test"));
        assert!(!is_within("é.test", "x.test"), "non-ASCII does not panic");
        assert!(same_tree("acme.test", "news.acme.test") && same_tree("news.acme.test", "acme.test"));
        assert!(
            !same_tree("shop.acme.test", "news.acme.test"),
            "siblings need DNS to judge"
        );
    }

    #[test]
    fn a_stream_writes_only_in_its_own_domain_and_no_other_stream_in_it() {
        let mut s = AccountSettings::default();
        assert_eq!(s.check_stream_author("newsletter", "anything.test"), Ok(()));
        s.stream_domains.insert("newsletter".into(), "news.acme.test".into());
        for ok in ["news.acme.test", "acme.test", "eu.news.acme.test"] {
            assert_eq!(s.check_stream_author("newsletter", ok), Ok(()), "{ok}");
        }
        let err = s.check_stream_author("newsletter", "globex.test").unwrap_err();
        assert!(err.contains("not aligned"), "{err}");
        // The transactional stream has no domain of its own: it writes from
        // the brand's other domains, not from the newsletter's.
        assert_eq!(s.check_stream_author("transactional", "acme.test"), Ok(()));
        for taken in ["news.acme.test", "eu.news.acme.test"] {
            let err = s.check_stream_author("transactional", taken).unwrap_err();
            assert!(err.contains("stream newsletter"), "{err}");
        }
        // Two streams may share a domain when both name it.
        s.stream_domains.insert("promotions".into(), "news.acme.test".into());
        assert_eq!(s.check_stream_author("promotions", "news.acme.test"), Ok(()));
    }
}
