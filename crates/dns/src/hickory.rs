//! The real resolver, on hickory.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RData;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HDnsError, NetError, NoRecords};
use hickory_resolver::{Resolver as HResolver, TokioResolver};

use crate::{DnsError, MailRoute, Mx, Resolver, fqdn, plain, route_from};

/// How patient lookups are, and whether answers are cached.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long one query waits for an answer before it is tried again.
    pub timeout: Duration,
    /// Retries after the first try (timeouts only; NXDOMAIN is final).
    pub retries: usize,
    /// Keep answers for their TTL. Off in tests that change zones.
    pub cache: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            retries: 2,
            cache: true,
        }
    }
}

/// A resolver on the system's name servers or on given ones.
#[derive(Debug, Clone)]
pub struct HickoryResolver {
    inner: TokioResolver,
}

fn options(settings: Settings) -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    opts.timeout = settings.timeout;
    opts.attempts = settings.retries;
    if !settings.cache {
        opts.cache_size = 0;
    }
    // Never /etc/hosts: delivery must follow DNS, as every other MTA does.
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    opts
}

impl HickoryResolver {
    /// The name servers in /etc/resolv.conf.
    pub fn system(settings: Settings) -> Result<Self, DnsError> {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| DnsError::Temporary("system resolver".into(), e.to_string()))?;
        *builder.options_mut() = options(settings);
        let inner = builder
            .build()
            .map_err(|e| DnsError::Temporary("system resolver".into(), e.to_string()))?;
        Ok(Self { inner })
    }

    /// Exactly these name servers (UDP, then TCP for long answers).
    pub fn with_servers(servers: &[SocketAddr], settings: Settings) -> Result<Self, DnsError> {
        let configs = servers
            .iter()
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut builder = HResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            TokioRuntimeProvider::default(),
        );
        *builder.options_mut() = options(settings);
        let inner = builder
            .build()
            .map_err(|e| DnsError::Temporary("resolver".into(), e.to_string()))?;
        Ok(Self { inner })
    }
}

/// Turns hickory's error into the permanent/temporary split.
fn classify(name: &str, kind: &'static str, e: &NetError) -> DnsError {
    match e {
        NetError::Dns(HDnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            if *response_code == ResponseCode::NXDomain {
                DnsError::NoSuchName(plain(name))
            } else {
                DnsError::NoRecords(plain(name), kind)
            }
        }
        other => DnsError::Temporary(plain(name), other.to_string()),
    }
}

#[async_trait]
impl Resolver for HickoryResolver {
    async fn mail_route(&self, domain: &str) -> Result<MailRoute, DnsError> {
        match self.inner.mx_lookup(fqdn(domain)).await {
            Ok(lookup) => {
                let records = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some(Mx {
                            preference: mx.preference,
                            exchange: plain(&mx.exchange.to_ascii()),
                        }),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                if records.is_empty() {
                    Ok(MailRoute::Implicit)
                } else {
                    Ok(route_from(records))
                }
            }
            Err(e) => match classify(domain, "MX", &e) {
                DnsError::NoRecords(..) => Ok(MailRoute::Implicit),
                other => Err(other),
            },
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let ips: Vec<IpAddr> = self
            .inner
            .lookup_ip(fqdn(host))
            .await
            .map_err(|e| classify(host, "A/AAAA", &e))?
            .iter()
            .collect();
        if ips.is_empty() {
            Err(DnsError::NoRecords(plain(host), "A/AAAA"))
        } else {
            Ok(ips)
        }
    }

    async fn cname(&self, name: &str) -> Result<String, DnsError> {
        let lookup = self
            .inner
            .lookup(fqdn(name), hickory_proto::rr::RecordType::CNAME)
            .await
            .map_err(|e| classify(name, "CNAME", &e))?;
        lookup
            .answers()
            .iter()
            .find_map(|r| match &r.data {
                RData::CNAME(target) => Some(plain(&target.0.to_ascii())),
                _ => None,
            })
            .ok_or_else(|| DnsError::NoRecords(plain(name), "CNAME"))
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .inner
            .txt_lookup(fqdn(name))
            .await
            .map_err(|e| classify(name, "TXT", &e))?;
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect()),
                _ => None,
            })
            .collect())
    }
}
