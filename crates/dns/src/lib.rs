//! DNS lookups for delivery and domain checks.
//!
//! Callers ask questions in mail's terms — where does mail for this domain
//! go, which addresses does this host have, what TXT records does this name
//! hold — and get answers that already separate what is permanent (the
//! domain does not exist, or publishes a null MX) from what is temporary (a
//! timeout, a SERVFAIL). That split decides whether a message bounces or
//! waits, so it is made once, here, and not in every caller.
//!
//! [`HickoryResolver`] talks to real servers (the system's, or the ones in
//! `[dns] nameservers`); [`StaticResolver`] answers from a table for unit
//! tests. End-to-end tests use the real resolver against testkit's DNS server.

mod hickory;
mod table;

use std::net::IpAddr;

use async_trait::async_trait;

pub use hickory::{HickoryResolver, Settings};
pub use table::StaticResolver;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mx {
    pub preference: u16,
    /// The exchange host, lower-case, without the trailing dot.
    pub exchange: String,
}

/// Where mail for a domain goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailRoute {
    /// MX hosts, in order of preference (ties in the order received).
    Exchanges(Vec<Mx>),
    /// The domain exists but has no MX: deliver to the domain's own
    /// addresses (RFC 5321 §5.1, the implicit MX).
    Implicit,
    /// RFC 7505 null MX (`0 .`): the domain accepts no mail.
    NullMx,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN: the name does not exist. Permanent.
    #[error("{0} does not exist (NXDOMAIN)")]
    NoSuchName(String),
    /// The name exists but has no record of the asked type. Permanent.
    #[error("{0} has no {1} records")]
    NoRecords(String, &'static str),
    /// Timeout, SERVFAIL, refused, network: try again later.
    #[error("temporary DNS failure for {0}: {1}")]
    Temporary(String, String),
}

impl DnsError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Temporary(..))
    }
}

/// DNS questions Herald asks. Implementations are safe to share between
/// tasks; each call may wait for the network up to the resolver's time-out.
#[async_trait]
pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// Where mail for `domain` goes. `Err(NoSuchName)` when the domain does
    /// not exist.
    async fn mail_route(&self, domain: &str) -> Result<MailRoute, DnsError>;

    /// The addresses of `host` (IPv6 and IPv4). `Err(NoRecords)` when it has
    /// none, `Err(NoSuchName)` when it does not exist.
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;

    /// The TXT records at `name`, each with its strings joined.
    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError>;

    /// The target of the CNAME at `name`, lower-case, without the final dot.
    async fn cname(&self, name: &str) -> Result<String, DnsError>;
}

/// Names as DNS wants them: fully qualified (a trailing dot), so no search
/// domain is ever appended.
pub(crate) fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

/// Names as Herald stores them: lower-case, no trailing dot.
pub(crate) fn plain(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Orders MX records by preference, keeping the received order for ties,
/// and recognises the RFC 7505 null MX.
pub fn route_from(mut records: Vec<Mx>) -> MailRoute {
    if records.len() == 1 && records[0].exchange.is_empty() {
        return MailRoute::NullMx;
    }
    // A null MX mixed with real ones is a misconfiguration; the real ones win.
    records.retain(|m| !m.exchange.is_empty());
    records.sort_by_key(|m| m.preference);
    if records.is_empty() {
        MailRoute::NullMx
    } else {
        MailRoute::Exchanges(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(p: u16, e: &str) -> Mx {
        Mx {
            preference: p,
            exchange: e.to_owned(),
        }
    }

    #[test]
    fn exchanges_sort_by_preference_stably() {
        let route = route_from(vec![mx(20, "b"), mx(10, "a"), mx(20, "c")]);
        assert_eq!(route, MailRoute::Exchanges(vec![mx(10, "a"), mx(20, "b"), mx(20, "c")]));
    }

    #[test]
    fn a_lone_dot_is_a_null_mx() {
        assert_eq!(route_from(vec![mx(0, "")]), MailRoute::NullMx);
        assert_eq!(
            route_from(vec![mx(0, ""), mx(10, "a")]),
            MailRoute::Exchanges(vec![mx(10, "a")])
        );
    }
}
