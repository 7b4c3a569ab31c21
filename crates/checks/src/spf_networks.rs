//! The networks a domain's SPF record authorises: every `ip4:`/`ip6:` and
//! every address `a` and `mx` name, through includes and redirects — the
//! third-party services that send in the domain's name, whose listings hurt
//! the domain as much as its own.
//!
//! Only terms that pass count (`-ip4:` forbids, it does not authorise);
//! terms with macros depend on each message and are skipped; `exists` and
//! `ptr` name no network. The walk asks at most [`MAX_LOOKUPS`] DNS-querying
//! terms (receivers stop at 10; a monitor may look a little further), and
//! `a`/`mx` names resolve with their CIDR lengths (`a:host/24`).

use std::pin::Pin;

use herald_dns::Resolver;
use herald_spf::{Mechanism, Qualifier, Record};
use ipnet::IpNet;

use crate::spf::{Fetched, fetch};

/// DNS-querying terms followed at most (includes, redirects, a, mx).
pub const MAX_LOOKUPS: u32 = 20;
/// MX hosts resolved per `mx` term (RFC 7208 §4.6.4).
const MAX_MX: usize = 10;

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpfNetworks {
    /// Each network once, with the record (domain) that names it.
    pub networks: Vec<(IpNet, String)>,
    /// What could not be read (a missing include, a DNS error).
    pub problems: Vec<String>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Walks `domain`'s SPF record.
pub async fn spf_networks(resolver: &dyn Resolver, domain: &str) -> SpfNetworks {
    let mut walk = NetWalk {
        resolver,
        found: SpfNetworks::default(),
        lookups: 0,
        path: Vec::new(),
    };
    walk.follow(domain.trim_end_matches('.').to_ascii_lowercase()).await;
    walk.found
}

struct NetWalk<'r> {
    resolver: &'r dyn Resolver,
    found: SpfNetworks,
    lookups: u32,
    path: Vec<String>,
}

impl NetWalk<'_> {
    fn add(&mut self, net: IpNet, via: &str) {
        let net = net.trunc();
        if !self.found.networks.iter().any(|(n, _)| *n == net) {
            self.found.networks.push((net, via.to_owned()));
        }
    }

    fn counted(&mut self) -> bool {
        self.lookups += 1;
        self.lookups <= MAX_LOOKUPS
    }

    fn follow(&mut self, domain: String) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.path.contains(&domain) {
                return;
            }
            match fetch(self.resolver, &domain).await {
                Fetched::Record(_, record) => {
                    self.path.push(domain.clone());
                    self.record(&domain, &record).await;
                    self.path.pop();
                }
                Fetched::None => self.found.problems.push(format!("{domain} has no SPF record")),
                Fetched::Several(n) => self.found.problems.push(format!("{domain} publishes {n} SPF records")),
                Fetched::Invalid(_, e) => self
                    .found
                    .problems
                    .push(format!("{domain}'s SPF record is invalid: {e}")),
                Fetched::Dns(e) => self.found.problems.push(e.to_string()),
            }
        })
    }

    async fn record(&mut self, domain: &str, record: &Record) {
        let mut reached_all = false;
        for directive in record.directives() {
            if directive.mechanism == Mechanism::All {
                reached_all = true;
                break;
            }
            if directive.qualifier != Qualifier::Pass {
                continue;
            }
            match &directive.mechanism {
                Mechanism::Ip4 { addr, prefix } => {
                    if let Ok(net) = ipnet::Ipv4Net::new(*addr, *prefix) {
                        self.add(IpNet::V4(net), domain);
                    }
                }
                Mechanism::Ip6 { addr, prefix } => {
                    if let Ok(net) = ipnet::Ipv6Net::new(*addr, *prefix) {
                        self.add(IpNet::V6(net), domain);
                    }
                }
                Mechanism::Include(target) if !target.has_macros() && self.counted() => {
                    self.follow(name(target.as_str())).await;
                }
                Mechanism::A { domain: target, cidr } => {
                    let Some(host) = static_name(target.as_ref(), domain) else {
                        continue;
                    };
                    if self.counted() {
                        self.host(&host, cidr.v4, cidr.v6, domain).await;
                    }
                }
                Mechanism::Mx { domain: target, cidr } => {
                    let Some(host) = static_name(target.as_ref(), domain) else {
                        continue;
                    };
                    if !self.counted() {
                        continue;
                    }
                    match self.resolver.mx(&host).await {
                        Ok(records) => {
                            for mx in records.iter().filter(|m| !m.exchange.is_empty()).take(MAX_MX) {
                                self.host(&mx.exchange, cidr.v4, cidr.v6, domain).await;
                            }
                        }
                        Err(e) if e.is_temporary() => self.found.problems.push(e.to_string()),
                        Err(_) => {}
                    }
                }
                _ => {}
            }
        }
        if !reached_all
            && let Some(target) = record.redirect()
            && !target.has_macros()
            && self.counted()
        {
            self.follow(name(target.as_str())).await;
        }
    }

    async fn host(&mut self, host: &str, v4: u8, v6: u8, via: &str) {
        match self.resolver.addresses(host).await {
            Ok(ips) => {
                for ip in ips {
                    let prefix = if ip.is_ipv4() { v4 } else { v6 };
                    if let Ok(net) = IpNet::new(ip, prefix) {
                        self.add(net, via);
                    }
                }
            }
            Err(e) if e.is_temporary() => self.found.problems.push(e.to_string()),
            Err(_) => {}
        }
    }
}

fn name(s: &str) -> String {
    s.trim_end_matches('.').to_ascii_lowercase()
}

fn static_name(target: Option<&herald_spf::MacroString>, domain: &str) -> Option<String> {
    match target {
        None => Some(domain.to_owned()),
        Some(t) if t.has_macros() => None,
        Some(t) => Some(name(t.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_dns::StaticResolver;
    use std::net::IpAddr;

    #[tokio::test]
    async fn includes_redirects_a_and_mx_are_followed_and_forbidden_terms_are_not() {
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
        };
        let r = StaticResolver::new()
            .txt(
                "acme.test",
                "v=spf1 ip4:192.0.2.0/24 -ip4:198.51.100.1 a:out.acme.test/28 mx include:_spf.esp.test \
                 include:%{i}.macro.test exists:%{i}.x.test ip4:203.0.113.9 -all ip4:10.0.0.1",
            )
            .ip("out.acme.test", ip("198.51.100.77"))
            .mx("acme.test", 10, "mx.acme.test")
            .ip("mx.acme.test", ip("198.51.100.25"))
            .txt("_spf.esp.test", "v=spf1 ip6:2001:db8::/48 redirect=_spf2.esp.test")
            .txt("_spf2.esp.test", "v=spf1 ip4:203.0.113.0/25 include:acme.test ~all");
        let found = spf_networks(&r, "acme.test").await;
        let nets: Vec<(String, &str)> = found
            .networks
            .iter()
            .map(|(n, d)| (n.to_string(), d.as_str()))
            .collect();
        assert_eq!(
            nets,
            [
                ("192.0.2.0/24".to_owned(), "acme.test"),
                ("198.51.100.64/28".to_owned(), "acme.test"),
                ("198.51.100.25/32".to_owned(), "acme.test"),
                ("2001:db8::/48".to_owned(), "_spf.esp.test"),
                ("203.0.113.0/25".to_owned(), "_spf2.esp.test"),
                ("203.0.113.9/32".to_owned(), "acme.test"),
            ]
        );
        assert!(found.problems.is_empty(), "{:?}", found.problems);
    }

    #[tokio::test]
    async fn a_missing_include_is_a_problem_and_loops_end() {
        let r = StaticResolver::new()
            .txt("a.test", "v=spf1 include:b.test include:gone.test -all")
            .txt("b.test", "v=spf1 include:a.test ip4:192.0.2.1 -all");
        let found = spf_networks(&r, "a.test").await;
        assert_eq!(found.networks.len(), 1);
        assert_eq!(found.problems, ["gone.test has no SPF record"]);
    }
}
