//! SPF (RFC 7208): is this client IP allowed to send mail for this domain?
//!
//! [`check_host`] is the RFC's `check_host()` function over
//! [`herald_dns::Resolver`]: it fetches the domain's `v=spf1` record,
//! evaluates its mechanisms in order (following `include:` and `redirect=`),
//! and answers one of the seven [`SpfResult`]s, with the `exp=` explanation
//! for a `fail`. [`Record`] is the parser on its own, for tools that read
//! records without evaluating them (the DNS linter).
//!
//! The main design decision: the whole record is parsed before anything is
//! evaluated (a syntax error anywhere is a `permerror`, §4.6), and the
//! processing limits of §4.6.4 — 10 DNS-querying terms, 2 void lookups, 10
//! MX and 10 PTR names — are counted across the whole evaluation, includes
//! and redirects included, as the terms are reached. That is what the
//! OpenSPF suite expects (`include-at-limit` passes because the term over
//! the limit is never reached), and it is what `crates/spf/tests/openspf.rs`
//! checks.
//!
//! This crate must never cache answers or retry: the resolver does both.
//! It sets no overall deadline either; callers that want RFC 7208 §4.6.4's
//! "at least 20 seconds" wrap the future in a time-out and answer
//! `temperror` when it fires.

mod eval;
mod macros;
mod parse;

use std::fmt;
use std::net::IpAddr;

use herald_dns::Resolver;

pub use macros::{Letter, MAX_DOMAIN_LEN, Macro, MacroString, MacroVars};
pub use parse::{Directive, DualCidr, Mechanism, Modifier, ParseError, Qualifier, Record, Term, is_spf_record};

/// RFC 7208 §4.6.4: at most 10 mechanisms and modifiers that query DNS
/// (include, a, mx, ptr, exists, redirect) per check, or `permerror`.
pub const MAX_DNS_LOOKUPS: u32 = 10;
/// RFC 7208 §4.6.4: at most 2 of those lookups may answer NXDOMAIN or no
/// records ("void lookups"), or `permerror`.
pub const MAX_VOID_LOOKUPS: u32 = 2;
/// RFC 7208 §4.6.4: an `mx` whose domain has more MX records is a `permerror`.
pub const MAX_MX_NAMES: usize = 10;
/// RFC 7208 §4.6.4: only the first 10 PTR names are looked at.
pub const MAX_PTR_NAMES: usize = 10;

/// The result of `check_host()` (RFC 7208 §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpfResult {
    /// No SPF record, or no valid domain to check.
    None,
    /// The domain makes no assertion about this IP.
    Neutral,
    Pass,
    Fail,
    SoftFail,
    /// A transient DNS failure: try again later.
    TempError,
    /// The domain's records are wrong: only its owner can fix that.
    PermError,
}

impl SpfResult {
    /// The lower-case name RFC 7208 and `Received-SPF` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Neutral => "neutral",
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::SoftFail => "softfail",
            Self::TempError => "temperror",
            Self::PermError => "permerror",
        }
    }
}

impl fmt::Display for SpfResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SpfResult {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "neutral" => Self::Neutral,
            "pass" => Self::Pass,
            "fail" => Self::Fail,
            "softfail" => Self::SoftFail,
            "temperror" => Self::TempError,
            "permerror" => Self::PermError,
            other => return Err(format!("unknown SPF result {other:?}")),
        })
    }
}

impl From<Qualifier> for SpfResult {
    fn from(q: Qualifier) -> Self {
        match q {
            Qualifier::Pass => Self::Pass,
            Qualifier::Fail => Self::Fail,
            Qualifier::SoftFail => Self::SoftFail,
            Qualifier::Neutral => Self::Neutral,
        }
    }
}

/// What `check_host()` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: SpfResult,
    /// For `fail` only: the domain's `exp=` text, macro-expanded. `None`
    /// when the record has none or it could not be used (§6.2: DNS errors,
    /// several TXT records, bad macros); the caller then uses its own
    /// default.
    pub explanation: Option<String>,
    /// Why, for logs and `Received-SPF`: the directive that matched, or
    /// the error.
    pub reason: String,
    /// DNS-querying terms evaluated (at most [`MAX_DNS_LOOKUPS`] unless the
    /// result is the `permerror` for exceeding it).
    pub dns_lookups: u32,
    pub void_lookups: u32,
}

/// `check_host()` with a receiving-host name for `%{r}` (`unknown` otherwise).
#[derive(Debug, Clone)]
pub struct Checker<'r> {
    resolver: &'r dyn Resolver,
    receiver: String,
}

impl<'r> Checker<'r> {
    pub fn new(resolver: &'r dyn Resolver) -> Self {
        Self {
            resolver,
            receiver: "unknown".to_owned(),
        }
    }

    /// The domain of the host doing the check, which `%{r}` expands to in
    /// explanations.
    pub fn receiver(mut self, name: impl Into<String>) -> Self {
        self.receiver = name.into();
        self
    }

    /// RFC 7208 §4: is `ip` allowed to send mail for `domain`? `sender` is
    /// the MAIL FROM address (or `postmaster@` the HELO domain when checking
    /// HELO); a missing local-part reads as `postmaster` (§4.3).
    pub async fn check_host(&self, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> Verdict {
        eval::run(self.resolver, &self.receiver, ip, domain, sender, helo).await
    }

    /// The MAIL FROM check of RFC 7208 §2.4: the reverse-path's domain, or,
    /// for a null reverse-path (`mail_from` empty), the HELO identity as
    /// `postmaster@helo`.
    pub async fn check_mail_from(&self, ip: IpAddr, mail_from: &str, helo: &str) -> Verdict {
        let (domain, sender) = identity(mail_from, helo);
        self.check_host(ip, &domain, &sender, helo).await
    }
}

/// The domain and sender `check_host()` is called with for a MAIL FROM
/// (RFC 7208 §2.4): the address's domain and the address, or for a null
/// reverse-path the HELO domain and `postmaster@helo`.
pub fn identity(mail_from: &str, helo: &str) -> (String, String) {
    let mail_from = mail_from.trim_start_matches('<').trim_end_matches('>');
    if mail_from.is_empty() {
        return (helo.to_owned(), format!("postmaster@{helo}"));
    }
    match mail_from.rsplit_once('@') {
        Some((_, domain)) => (domain.to_owned(), mail_from.to_owned()),
        None => (mail_from.to_owned(), format!("postmaster@{mail_from}")),
    }
}

/// [`Checker::check_host`] with the defaults.
pub async fn check_host(resolver: &dyn Resolver, ip: IpAddr, domain: &str, sender: &str, helo: &str) -> Verdict {
    Checker::new(resolver).check_host(ip, domain, sender, helo).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_falls_back_to_helo_for_a_null_sender() {
        assert_eq!(
            identity("", "mx.example.org"),
            ("mx.example.org".into(), "postmaster@mx.example.org".into())
        );
        assert_eq!(
            identity("<jo@example.com>", "mx.example.org"),
            ("example.com".into(), "jo@example.com".into())
        );
        assert_eq!(
            identity("Macro Error@e8.example.com", "h"),
            ("e8.example.com".into(), "Macro Error@e8.example.com".into())
        );
    }

    #[test]
    fn results_round_trip_their_names() {
        for r in [
            SpfResult::None,
            SpfResult::Neutral,
            SpfResult::Pass,
            SpfResult::Fail,
            SpfResult::SoftFail,
            SpfResult::TempError,
            SpfResult::PermError,
        ] {
            assert_eq!(r.as_str().parse::<SpfResult>(), Ok(r));
        }
    }
}
