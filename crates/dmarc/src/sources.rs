//! Who sends in a domain's name: each source IP of the reports labelled as
//! yours, a known service, a forwarder or unknown, with the reason.
//!
//! The evidence, strongest first:
//! 1. the IP is one Herald sends from (configured networks, or seen in
//!    Herald's own delivery stats);
//! 2. the domain's SPF record authorises it (our `check_host`, on live DNS);
//! 3. most of its mail carries the domain's DKIM signature: with some SPF
//!    pass it is a service holding your key (an ESP with its own return
//!    path); with no SPF pass at all it is a forwarder relaying your mail;
//! 4. its reverse DNS belongs to a service in parsedmarc's map;
//! 5. otherwise unknown: a service of yours not set up yet, or a spoofer.
//!
//! Lookups (PTR and SPF) run concurrently, each with a time-out, for the
//! largest sources only, so a report with thousands of IPs answers in
//! seconds; the rest are labelled from the reports' own evidence.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use herald_api_types::dmarc::{KnownService, SourceLabel, SourceTally};
use herald_dns::Resolver;
use herald_spf::{Checker, SpfResult};
use ipnet::IpNet;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::services::ServiceMap;
use crate::tally::SourceCounts;

/// Sources looked up in DNS, largest first; the rest are labelled from the
/// reports alone.
pub const MAX_LOOKED_UP: usize = 500;
/// Lookups at once.
const CONCURRENCY: usize = 32;
/// A PTR answer, or an SPF evaluation, that takes longer is given up.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// All lookups of one summary end by then (an API request has 30 s); the
/// sources not looked up by then are labelled from the reports alone.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(10);

/// What DNS said about one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Looked {
    pub ptr: Option<String>,
    /// The PTR name's own addresses include the IP (forward-confirmed
    /// reverse DNS): only then does the name say who the sender is, as
    /// anyone can publish any PTR name for their own addresses.
    pub confirmed: bool,
    pub spf: Option<SpfResult>,
}

/// The IPs and networks that are Herald's own.
#[derive(Debug, Clone, Default)]
pub struct OwnIps {
    pub networks: Vec<IpNet>,
    pub seen: HashSet<IpAddr>,
}

impl OwnIps {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.seen.contains(&ip) || self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// Looks up the PTR name and the domain's SPF verdict of each IP, as many
/// as [`LOOKUP_BUDGET`] allows.
pub async fn look_up(resolver: Arc<dyn Resolver>, domain: &str, ips: Vec<IpAddr>) -> Vec<(IpAddr, Looked)> {
    let deadline = tokio::time::Instant::now() + LOOKUP_BUDGET;
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    for ip in ips {
        let resolver = Arc::clone(&resolver);
        let permits = Arc::clone(&permits);
        let domain = domain.to_owned();
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return (ip, Looked::default());
            };
            let ptr = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.ptr(ip))
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|names| names.into_iter().next());
            let confirmed = match &ptr {
                Some(name) => tokio::time::timeout(LOOKUP_TIMEOUT, forward_confirms(resolver.as_ref(), name, ip))
                    .await
                    .unwrap_or(false),
                None => false,
            };
            let sender = format!("postmaster@{domain}");
            let checker = Checker::new(resolver.as_ref());
            let spf = tokio::time::timeout(LOOKUP_TIMEOUT, checker.check_host(ip, &domain, &sender, &domain))
                .await
                .ok()
                .map(|v| v.result);
            (ip, Looked { ptr, confirmed, spf })
        });
    }
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(pair))) => out.push(pair),
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                tracing::info!(done = out.len(), left = tasks.len(), "DMARC source lookups out of time");
                tasks.abort_all();
                break;
            }
        }
    }
    out
}

/// Whether `name` resolves back to `ip`.
async fn forward_confirms(resolver: &dyn Resolver, name: &str, ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => resolver.ipv4(name).await.is_ok_and(|ips| ips.contains(&v4)),
        IpAddr::V6(v6) => resolver.ipv6(name).await.is_ok_and(|ips| ips.contains(&v6)),
    }
}

/// Labels one source from its counts and what DNS said (`None` when it was
/// not looked up).
pub fn label(
    domain: &str,
    ip: IpAddr,
    counts: &SourceCounts,
    looked: Option<&Looked>,
    own: &OwnIps,
    services: &ServiceMap,
) -> (SourceLabel, Option<KnownService>, String) {
    let ptr = looked.filter(|l| l.confirmed).and_then(|l| l.ptr.as_deref());
    let service = ptr.and_then(|p| services.service(p));
    let messages = counts.tally.messages.max(1);
    let (label, why) = if own.contains(ip) {
        (SourceLabel::Yours, "an IP Herald sends from".to_owned())
    } else if looked.and_then(|l| l.spf) == Some(SpfResult::Pass) {
        (SourceLabel::Yours, format!("authorised by {domain}'s SPF record"))
    } else if counts.forwarded * 2 > messages {
        (
            SourceLabel::Forwarder,
            format!("relays mail signed by {domain} (DKIM pass) from outside its SPF record (SPF fail)"),
        )
    } else if counts.tally.dkim_aligned * 2 > messages {
        (SourceLabel::Yours, format!("signs with {domain}'s DKIM key"))
    } else if let Some(s) = &service {
        (
            SourceLabel::Service,
            format!(
                "{} ({}) by its reverse DNS, not authorised for {domain}",
                s.name, s.kind
            ),
        )
    } else if looked.is_none() {
        (
            SourceLabel::Unknown,
            format!("not signed with {domain}'s DKIM key; its SPF and reverse DNS were not looked up"),
        )
    } else {
        (
            SourceLabel::Unknown,
            match looked.filter(|l| !l.confirmed).and_then(|l| l.ptr.as_deref()) {
                Some(name) => format!(
                    "not in {domain}'s SPF record, not signed with its DKIM key; its reverse DNS {name} does not \
                     resolve back to it"
                ),
                None => format!("not in {domain}'s SPF record, not signed with its DKIM key, no known reverse DNS"),
            },
        )
    };
    (label, service, why)
}

/// Every source of the period, labelled, largest first.
pub async fn sources(
    resolver: Arc<dyn Resolver>,
    domain: &str,
    by_source: std::collections::HashMap<String, SourceCounts>,
    own: &OwnIps,
    services: &ServiceMap,
) -> Vec<SourceTally> {
    let mut all: Vec<(String, SourceCounts)> = by_source.into_iter().collect();
    all.sort_by(|a, b| b.1.tally.messages.cmp(&a.1.tally.messages).then_with(|| a.0.cmp(&b.0)));
    let wanted: Vec<IpAddr> = all
        .iter()
        .filter_map(|(ip, _)| ip.parse().ok())
        .take(MAX_LOOKED_UP)
        .collect();
    let looked: std::collections::HashMap<IpAddr, Looked> =
        look_up(resolver, domain, wanted.clone()).await.into_iter().collect();
    let wanted: HashSet<IpAddr> = wanted.into_iter().collect();
    all.into_iter()
        .map(|(ip_text, counts)| {
            let (label, service, why, ptr) = match ip_text.parse::<IpAddr>() {
                Ok(ip) => {
                    let found = looked.get(&ip);
                    let (label, service, mut why) = label(domain, ip, &counts, found, own, services);
                    if found.is_none() && label == SourceLabel::Unknown {
                        why.push_str(if wanted.contains(&ip) {
                            " (DNS did not answer in time)"
                        } else {
                            " (only the largest sources are)"
                        });
                    }
                    (label, service, why, found.and_then(|l| l.ptr.clone()))
                }
                Err(_) => (
                    SourceLabel::Unknown,
                    None,
                    "the report's source is not an IP address".to_owned(),
                    None,
                ),
            };
            SourceTally {
                ip: ip_text,
                reverse_dns: ptr,
                label,
                service,
                why,
                reporters: counts.reporters.into_iter().collect(),
                tally: counts.tally,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_api_types::dmarc::Tally;

    fn counts(messages: u64, dkim_aligned: u64, forwarded: u64) -> SourceCounts {
        SourceCounts {
            tally: Tally {
                messages,
                dkim_aligned,
                ..Tally::default()
            },
            forwarded,
            ..SourceCounts::default()
        }
    }

    fn looked(ptr: Option<&str>, spf: SpfResult) -> Looked {
        Looked {
            ptr: ptr.map(str::to_owned),
            confirmed: ptr.is_some(),
            spf: Some(spf),
        }
    }

    /// A resolver whose every question hangs.
    #[derive(Debug)]
    struct Silent;

    #[async_trait::async_trait]
    impl Resolver for Silent {
        async fn mail_route(&self, _: &str) -> Result<herald_dns::MailRoute, herald_dns::DnsError> {
            std::future::pending().await
        }
        async fn addresses(&self, _: &str) -> Result<Vec<IpAddr>, herald_dns::DnsError> {
            std::future::pending().await
        }
        async fn txt(&self, _: &str) -> Result<Vec<String>, herald_dns::DnsError> {
            std::future::pending().await
        }
        async fn cname(&self, _: &str) -> Result<String, herald_dns::DnsError> {
            std::future::pending().await
        }
        async fn ptr(&self, _: IpAddr) -> Result<Vec<String>, herald_dns::DnsError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_dns_costs_the_budget_and_no_more() {
        let mut by_source = std::collections::HashMap::new();
        for i in 0..600u32 {
            by_source.insert(format!("10.0.{}.{}", i / 256, i % 256), counts(1, 0, 0));
        }
        let started = tokio::time::Instant::now();
        let all = sources(
            Arc::new(Silent),
            "example.com",
            by_source,
            &OwnIps::default(),
            ServiceMap::builtin(),
        )
        .await;
        assert!(
            started.elapsed() <= LOOKUP_BUDGET + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(all.len(), 600);
        assert!(all.iter().all(|s| s.label == SourceLabel::Unknown));
        let timed_out = all
            .iter()
            .filter(|s| s.why.ends_with("(DNS did not answer in time)"))
            .count();
        let skipped = all
            .iter()
            .filter(|s| s.why.ends_with("(only the largest sources are)"))
            .count();
        assert_eq!((timed_out, skipped), (MAX_LOOKED_UP, 600 - MAX_LOOKED_UP));
    }

    #[test]
    fn the_strongest_evidence_names_the_source() {
        let map = ServiceMap::builtin();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let own = OwnIps {
            networks: vec!["192.0.2.0/28".parse().unwrap()],
            ..OwnIps::default()
        };
        let none = OwnIps::default();
        let d = "example.com";
        let lbl = |c: &SourceCounts, l: &Looked, o: &OwnIps| label(d, ip, c, Some(l), o, map).0;
        let google = looked(Some("mail-a1.google.com"), SpfResult::Fail);
        // Herald's own network wins over everything else.
        assert_eq!(lbl(&counts(10, 0, 0), &google, &own), SourceLabel::Yours);
        // Authorised by SPF.
        assert_eq!(
            lbl(&counts(10, 0, 0), &looked(None, SpfResult::Pass), &none),
            SourceLabel::Yours
        );
        // Signed by the domain, relayed from outside its SPF: a forwarder,
        // even from a known provider's host.
        assert_eq!(lbl(&counts(10, 10, 10), &google, &none), SourceLabel::Forwarder);
        // Signed by the domain with SPF passing for another domain: an ESP
        // holding the domain's key.
        let (label_, service, why) = label(
            d,
            ip,
            &counts(10, 9, 1),
            Some(&looked(Some("mail1.mcsv.net"), SpfResult::Fail)),
            &none,
            map,
        );
        assert_eq!(label_, SourceLabel::Yours, "{why}");
        assert_eq!(service.map(|s| s.name).as_deref(), Some("Intuit Mailchimp"));
        // A known host that neither signs nor is authorised.
        assert_eq!(lbl(&counts(10, 0, 0), &google, &none), SourceLabel::Service);
        // The same PTR name not confirmed by its own addresses says nothing.
        let claimed = Looked {
            confirmed: false,
            ..google.clone()
        };
        assert_eq!(lbl(&counts(10, 0, 0), &claimed, &none), SourceLabel::Unknown);
        // Nothing at all.
        assert_eq!(
            lbl(&counts(10, 0, 0), &looked(None, SpfResult::SoftFail), &none),
            SourceLabel::Unknown
        );
        assert_eq!(label(d, ip, &counts(1, 0, 0), None, &none, map).0, SourceLabel::Unknown);
    }
}
