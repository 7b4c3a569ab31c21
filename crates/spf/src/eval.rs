//! `check_host()` itself (RFC 7208 §4–§6): record selection, mechanism
//! evaluation, include and redirect, the processing limits, `exp=`.
//!
//! One [`Eval`] lives for one check, so the counters it keeps (DNS-querying
//! terms, void lookups) span every include and redirect, as §4.6.4 wants.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use herald_dns::{DnsError, Resolver};

use crate::macros::{MacroString, MacroVars, Place};
use crate::parse::{Mechanism, Record, is_spf_record};
use crate::{MAX_DNS_LOOKUPS, MAX_MX_NAMES, MAX_PTR_NAMES, MAX_VOID_LOOKUPS, SpfResult, Verdict};

/// Why evaluation stopped early.
#[derive(Debug)]
enum Abort {
    Perm(String),
    Temp(String),
}

/// The answer of one `check_host()` level that did not abort: one of none,
/// neutral, pass, fail, softfail.
#[derive(Debug)]
struct Outcome {
    result: SpfResult,
    reason: String,
    /// The `exp=` of the record that decided, and that record's domain
    /// (for `%{d}`): a redirect replaces it, an include never passes it up.
    exp: Option<(MacroString, String)>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

struct Eval<'a> {
    resolver: &'a dyn Resolver,
    /// The client, IPv4-mapped IPv6 addresses already turned into IPv4
    /// (§5: they MUST be treated as IPv4).
    ip: IpAddr,
    sender: String,
    local: String,
    sender_domain: String,
    helo: &'a str,
    receiver: &'a str,
    timestamp: u64,
    lookups: u32,
    voids: u32,
    /// The client's validated names, for `%{p}`, once looked up.
    validated: Option<Vec<String>>,
}

pub(crate) async fn run(
    resolver: &dyn Resolver,
    receiver: &str,
    ip: IpAddr,
    domain: &str,
    sender: &str,
    helo: &str,
) -> Verdict {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    // §4.3: a sender without a local-part is postmaster's.
    let (local, sender_domain) = match sender.rsplit_once('@') {
        Some(("", d)) => ("postmaster", d),
        Some((l, d)) => (l, d),
        None if sender.is_empty() => ("postmaster", domain),
        None => ("postmaster", sender),
    };
    let mut eval = Eval {
        resolver,
        ip,
        sender: format!("{local}@{sender_domain}"),
        local: local.to_owned(),
        sender_domain: sender_domain.to_owned(),
        helo,
        receiver,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        lookups: 0,
        voids: 0,
        validated: None,
    };
    let (result, reason, explanation) = match eval.check_domain(domain.to_owned()).await {
        Ok(out) => {
            // §6.2: the explanation is looked up once, after the result,
            // and only for a fail; its lookup counts against no limit.
            let explanation = match (out.result, &out.exp) {
                (SpfResult::Fail, Some((spec, d))) => eval.explain(spec, d).await,
                _ => None,
            };
            (out.result, out.reason, explanation)
        }
        Err(Abort::Perm(reason)) => (SpfResult::PermError, reason, None),
        Err(Abort::Temp(reason)) => (SpfResult::TempError, reason, None),
    };
    Verdict {
        result,
        explanation,
        reason,
        dns_lookups: eval.lookups,
        void_lookups: eval.voids,
    }
}

/// Whether DNS can be asked about `name` at all: RFC 1035's 63-byte labels,
/// no empty label. Names that fail this are treated as not existing
/// (§4.3 for the checked domain; for a mechanism's target the RFC leaves it
/// open, and no match is the answer that cannot be abused).
fn queryable(name: &str) -> bool {
    !name.is_empty() && name.len() <= crate::MAX_DOMAIN_LEN && name.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// `name` is `domain` or below it, ignoring case.
fn within(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.to_ascii_lowercase(), domain.to_ascii_lowercase());
    let domain = domain.strip_suffix('.').unwrap_or(&domain);
    let name = name.strip_suffix('.').unwrap_or(&name);
    name == domain || name.ends_with(&format!(".{domain}"))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The name for `%{p}` (§7.3): the validated name equal to `domain`, else
/// one below it, else any; `None` (expanding to `unknown`) when none is.
fn pick_validated<'v>(validated: &'v [String], domain: &str) -> Option<&'v str> {
    let exact = validated.iter().find(|n| n.eq_ignore_ascii_case(domain));
    let below = || validated.iter().find(|n| within(n, domain));
    exact.or_else(below).or(validated.first()).map(String::as_str)
}

impl Eval<'_> {
    /// One `check_host()` level for `domain`: boxed, as include and redirect
    /// recurse.
    fn check_domain(&mut self, domain: String) -> BoxFuture<'_, Result<Outcome, Abort>> {
        Box::pin(async move {
            // §4.3: a malformed or single-label domain has no SPF record.
            if !queryable(&domain) || !domain.contains('.') || domain.starts_with('[') {
                return Ok(Outcome {
                    result: SpfResult::None,
                    reason: format!("{domain:?} is not a domain name"),
                    exp: None,
                });
            }
            let Some(record) = self.fetch_record(&domain).await? else {
                return Ok(Outcome {
                    result: SpfResult::None,
                    reason: format!("{domain} has no SPF record"),
                    exp: None,
                });
            };
            self.evaluate(&record, domain).await
        })
    }

    /// §4.4–4.5: the one `v=spf1` TXT record of `domain`, parsed.
    async fn fetch_record(&self, domain: &str) -> Result<Option<Record>, Abort> {
        let txts = match self.resolver.txt(domain).await {
            Ok(txts) => txts,
            Err(e @ DnsError::Temporary(..)) => return Err(Abort::Temp(e.to_string())),
            Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => return Ok(None),
        };
        let mut spf = txts.iter().filter(|t| is_spf_record(t));
        let Some(text) = spf.next() else {
            return Ok(None);
        };
        if spf.next().is_some() {
            return Err(Abort::Perm(format!("{domain} publishes more than one SPF record")));
        }
        Record::parse(text)
            .map(Some)
            .map_err(|e| Abort::Perm(format!("{domain}: {e}")))
    }

    async fn evaluate(&mut self, record: &Record, domain: String) -> Result<Outcome, Abort> {
        for directive in record.directives() {
            if self.matches(&directive.mechanism, &directive.text, &domain).await? {
                return Ok(Outcome {
                    result: directive.qualifier.into(),
                    reason: format!("{domain}: matched {directive}"),
                    exp: record.explanation().map(|e| (e.clone(), domain.clone())),
                });
            }
        }
        // §6.1: redirect applies only when no mechanism matched.
        if let Some(spec) = record.redirect() {
            self.count_lookup("redirect")?;
            let target = self.expand_domain(spec, &domain).await;
            let out = self.check_domain(target.clone()).await?;
            if out.result == SpfResult::None {
                return Err(Abort::Perm(format!("{domain}: redirect={target} has no SPF record")));
            }
            return Ok(out);
        }
        Ok(Outcome {
            result: SpfResult::Neutral,
            reason: format!("{domain}: no mechanism matched"),
            exp: None,
        })
    }

    async fn matches(&mut self, mechanism: &Mechanism, term: &str, domain: &str) -> Result<bool, Abort> {
        if mechanism.queries_dns() {
            self.count_lookup(term)?;
        }
        match mechanism {
            Mechanism::All => Ok(true),
            Mechanism::Ip4 { addr, prefix } => Ok(in_network(self.ip, IpAddr::V4(*addr), *prefix)),
            Mechanism::Ip6 { addr, prefix } => Ok(in_network(self.ip, IpAddr::V6(*addr), *prefix)),
            Mechanism::Include(spec) => {
                let target = self.expand_domain(spec, domain).await;
                // §5.2: the included record's pass matches; its fail,
                // softfail and neutral do not; none is an error.
                let out = self.check_domain(target.clone()).await?;
                match out.result {
                    SpfResult::Pass => Ok(true),
                    SpfResult::None => Err(Abort::Perm(format!("{domain}: {term}: {target} has no SPF record"))),
                    _ => Ok(false),
                }
            }
            Mechanism::A { domain: spec, cidr } => {
                let target = self.target(spec.as_ref(), domain).await;
                if !queryable(&target) {
                    return Ok(false);
                }
                let prefix = self.prefix(cidr);
                match self.addresses(&target).await {
                    Ok(ips) => Ok(ips.iter().any(|a| in_network(self.ip, *a, prefix))),
                    Err(e) => self.no_answer(term, e).map(|()| false),
                }
            }
            Mechanism::Mx { domain: spec, cidr } => {
                let target = self.target(spec.as_ref(), domain).await;
                if !queryable(&target) {
                    return Ok(false);
                }
                let records = match self.resolver.mx(&target).await {
                    Ok(records) => records,
                    Err(e) => return self.no_answer(term, e).map(|()| false),
                };
                if records.len() > MAX_MX_NAMES {
                    return Err(Abort::Perm(format!(
                        "{domain}: {term}: {target} has {} MX records, more than {MAX_MX_NAMES}",
                        records.len()
                    )));
                }
                let prefix = self.prefix(cidr);
                // §5.4: only the exchanges' addresses, never the domain's own
                // (no implicit MX); a null MX names no host.
                for mx in records.iter().filter(|m| queryable(&m.exchange)) {
                    match self.addresses(&mx.exchange).await {
                        Ok(ips) if ips.iter().any(|a| in_network(self.ip, *a, prefix)) => return Ok(true),
                        Ok(_) | Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => {}
                        Err(e @ DnsError::Temporary(..)) => return Err(Abort::Temp(e.to_string())),
                    }
                }
                Ok(false)
            }
            Mechanism::Ptr(spec) => {
                let target = self.target(spec.as_ref(), domain).await;
                let names = match self.resolver.ptr(self.ip).await {
                    Ok(names) => names,
                    // §5.5: a DNS error on the PTR query is no match.
                    Err(DnsError::Temporary(..)) => return Ok(false),
                    Err(e) => return self.no_answer(term, e).map(|()| false),
                };
                for name in names.iter().take(MAX_PTR_NAMES) {
                    // Only a name under the target can match, so only those
                    // are validated: the same answer with fewer queries.
                    if !within(name, &target) || !queryable(name) {
                        continue;
                    }
                    // §5.5: an error validating one name skips that name.
                    if self.addresses(name).await.is_ok_and(|ips| ips.contains(&self.ip)) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Mechanism::Exists(spec) => {
                let target = self.expand_domain(spec, domain).await;
                if !queryable(&target) {
                    return Ok(false);
                }
                // §5.7: always an A query, whatever the client's family.
                match self.resolver.ipv4(&target).await {
                    Ok(ips) => Ok(!ips.is_empty()),
                    Err(e) => self.no_answer(term, e).map(|()| false),
                }
            }
        }
    }

    /// A term's DNS query found nothing: a void lookup, or, for a
    /// temporary failure, the end of the check.
    fn no_answer(&mut self, term: &str, e: DnsError) -> Result<(), Abort> {
        match e {
            DnsError::Temporary(..) => Err(Abort::Temp(e.to_string())),
            DnsError::NoSuchName(_) | DnsError::NoRecords(..) => {
                self.voids += 1;
                if self.voids > MAX_VOID_LOOKUPS {
                    Err(Abort::Perm(format!(
                        "{term}: more than {MAX_VOID_LOOKUPS} lookups found nothing (RFC 7208 §4.6.4)"
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn count_lookup(&mut self, term: &str) -> Result<(), Abort> {
        self.lookups += 1;
        if self.lookups > MAX_DNS_LOOKUPS {
            Err(Abort::Perm(format!(
                "{term}: more than {MAX_DNS_LOOKUPS} DNS-querying terms (RFC 7208 §4.6.4)"
            )))
        } else {
            Ok(())
        }
    }

    fn prefix(&self, cidr: &crate::DualCidr) -> u8 {
        match self.ip {
            IpAddr::V4(_) => cidr.v4,
            IpAddr::V6(_) => cidr.v6,
        }
    }

    /// The client's address family's records of `name`.
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        match self.ip {
            IpAddr::V4(_) => Ok(self.resolver.ipv4(name).await?.into_iter().map(IpAddr::V4).collect()),
            IpAddr::V6(_) => Ok(self.resolver.ipv6(name).await?.into_iter().map(IpAddr::V6).collect()),
        }
    }

    async fn target(&mut self, spec: Option<&MacroString>, domain: &str) -> String {
        match spec {
            Some(spec) => self.expand_domain(spec, domain).await,
            None => domain.to_owned(),
        }
    }

    async fn expand_domain(&mut self, spec: &MacroString, domain: &str) -> String {
        if spec.needs_ptr() {
            self.validate_ptr().await;
        }
        spec.expand_domain(&self.vars(domain))
    }

    fn vars<'v>(&'v self, domain: &'v str) -> MacroVars<'v> {
        MacroVars {
            sender: &self.sender,
            local: &self.local,
            sender_domain: &self.sender_domain,
            domain,
            ip: self.ip,
            helo: self.helo,
            validated: self.validated.as_deref().and_then(|v| pick_validated(v, domain)),
            receiver: self.receiver,
            timestamp: self.timestamp,
        }
    }

    /// §5.5's validation, for `%{p}`: the client's PTR names (the first 10)
    /// whose addresses include the client. Looked up once per check; these
    /// lookups count against no limit (§4.6.4 counts terms, and `%{p}` is
    /// not one).
    async fn validate_ptr(&mut self) {
        if self.validated.is_some() {
            return;
        }
        let names = self.resolver.ptr(self.ip).await.unwrap_or_default();
        let mut validated = Vec::new();
        for name in names.into_iter().take(MAX_PTR_NAMES) {
            if queryable(&name) && self.addresses(&name).await.is_ok_and(|ips| ips.contains(&self.ip)) {
                validated.push(name);
            }
        }
        self.validated = Some(validated);
    }

    /// §6.2: the explanation at `exp=spec`, or `None` whenever anything is
    /// wrong with it (DNS error, not exactly one TXT record, bad syntax,
    /// non-ASCII text).
    async fn explain(&mut self, spec: &MacroString, domain: &str) -> Option<String> {
        let name = self.expand_domain(spec, domain).await;
        if !queryable(&name) {
            return None;
        }
        let mut txts = self.resolver.txt(&name).await.ok()?;
        if txts.len() != 1 {
            return None;
        }
        let text = MacroString::parse(&txts.pop()?, Place::Explanation).ok()?;
        if text.needs_ptr() {
            self.validate_ptr().await;
        }
        Some(text.expand(&self.vars(domain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_match_by_prefix_and_family() {
        assert!(in_network(ip("192.0.2.77"), ip("192.0.2.0"), 24));
        assert!(!in_network(ip("192.0.3.1"), ip("192.0.2.0"), 24));
        assert!(in_network(ip("203.0.113.9"), ip("1.1.1.1"), 0));
        assert!(in_network(ip("1.2.3.4"), ip("1.2.3.4"), 32));
        assert!(in_network(ip("cafe:babe:8000::1"), ip("cafe:babe:8000::"), 33));
        assert!(!in_network(ip("cafe:babe::1"), ip("cafe:babe:8000::"), 33));
        assert!(in_network(ip("::1"), ip("1234::"), 0));
        assert!(!in_network(ip("1.2.3.4"), ip("::"), 0), "families never match");
    }

    #[test]
    fn names_are_checked_before_they_are_asked() {
        assert!(queryable("mail.example.com"));
        assert!(!queryable("mail.example...com"));
        assert!(!queryable(&format!("{}.example.com", "a".repeat(64))));
        assert!(queryable(&format!("{}.example.com", "a".repeat(63))));
        assert!(!queryable(""));
    }

    #[test]
    fn p_prefers_the_domain_then_its_subdomains() {
        let v = vec!["mx.example.com".to_owned(), "mx.e7.example.com".to_owned()];
        assert_eq!(pick_validated(&v, "e7.example.com"), Some("mx.e7.example.com"));
        assert_eq!(pick_validated(&v, "other.test"), Some("mx.example.com"));
        assert_eq!(pick_validated(&v, "MX.example.com"), Some("mx.example.com"));
        assert_eq!(pick_validated(&[], "example.com"), None);
    }
}
