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
mod secure;
mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;

pub use hickory::{HickoryResolver, Settings};
pub use secure::Secured;

/// One TLSA record (RFC 6698): certificate usage, selector, matching type
/// and association data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}
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

    /// The TLSA records at `name` (`_25._tcp.mx.example.com`), and whether
    /// the answer was authenticated by DNSSEC. The default knows none.
    async fn tlsa(&self, _name: &str) -> Result<Secured<Vec<Tlsa>>, DnsError> {
        Ok(Secured {
            value: Vec::new(),
            secure: false,
        })
    }

    /// Whether `domain`'s MX records were authenticated by DNSSEC (DANE
    /// applies to MX hosts only then). The default: not.
    async fn mx_secure(&self, _domain: &str) -> Result<bool, DnsError> {
        Ok(false)
    }

    /// The target of the CNAME at `name`, lower-case, without the final dot.
    async fn cname(&self, name: &str) -> Result<String, DnsError>;

    /// The A records of `host` (one query, CNAMEs followed): what SPF's `a`,
    /// `mx`, `ptr` and `exists` ask for an IPv4 client. `Err(NoRecords)` when
    /// the name exists without A records, `Err(NoSuchName)` when it does not
    /// exist: SPF counts both as void lookups (RFC 7208 §4.6.4).
    ///
    /// The default filters [`Resolver::addresses`]; implementations that can
    /// ask for A alone should, as it halves the queries.
    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let v4: Vec<Ipv4Addr> = self
            .addresses(host)
            .await?
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        if v4.is_empty() {
            Err(DnsError::NoRecords(plain(host), "A"))
        } else {
            Ok(v4)
        }
    }

    /// The AAAA records of `host`, as [`Resolver::ipv4`] for IPv6 clients.
    async fn ipv6(&self, host: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        let v6: Vec<Ipv6Addr> = self
            .addresses(host)
            .await?
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        if v6.is_empty() {
            Err(DnsError::NoRecords(plain(host), "AAAA"))
        } else {
            Ok(v6)
        }
    }

    /// The MX records of `domain` exactly as published, in the order
    /// received: no implicit MX, no sorting, a null MX as an empty exchange.
    /// SPF's `mx` mechanism needs this (RFC 7208 §5.4: no fallback to A, and
    /// more than 10 records is an error); delivery uses
    /// [`Resolver::mail_route`]. `Err(NoRecords)` when there are none.
    ///
    /// The default rebuilds the records from [`Resolver::mail_route`], which
    /// loses a null MX published beside real ones.
    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        match self.mail_route(domain).await? {
            MailRoute::Exchanges(records) => Ok(records),
            MailRoute::Implicit => Err(DnsError::NoRecords(plain(domain), "MX")),
            MailRoute::NullMx => Ok(vec![Mx {
                preference: 0,
                exchange: String::new(),
            }]),
        }
    }

    /// The names in the PTR records of `ip` (at [`reverse_name`]), lower-case,
    /// without the final dot, in the order received. Not validated: SPF
    /// checks each name's addresses itself (RFC 7208 §5.5).
    ///
    /// The default answers that no PTR records exist, which is what a
    /// resolver without reverse zones would see; real implementations
    /// override it.
    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        Err(DnsError::NoRecords(reverse_name(ip), "PTR"))
    }
}

/// The name whose PTR records name `ip`: `4.3.2.1.in-addr.arpa` for
/// 1.2.3.4, 32 nibbles under `ip6.arpa` for IPv6 (RFC 1035 §3.5, RFC 3596
/// §2.5). Lower-case, without the final dot.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    name.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
                    name.push('.');
                }
            }
            name.push_str("ip6.arpa");
            name
        }
    }
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
    fn reverse_names_follow_rfc_1035_and_3596() {
        assert_eq!(reverse_name("192.0.2.3".parse().unwrap()), "3.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::cb01".parse().unwrap()),
            "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
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
