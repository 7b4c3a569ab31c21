//! The real resolver, on hickory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HDnsError, NetError, NoRecords};
use hickory_resolver::{Resolver as HResolver, TokioResolver};

use crate::{DnsError, MailRoute, Mx, Resolver, fqdn, plain, reverse_name, route_from};

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
    /// The name servers, for the questions asked with AD and DO set.
    servers: Vec<SocketAddr>,
    timeout: Duration,
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
        // The same /etc/resolv.conf, read again for the servers' addresses.
        let servers = hickory_resolver::system_conf::read_system_conf()
            .map(|(config, _)| {
                config
                    .name_servers()
                    .iter()
                    .map(|ns| SocketAddr::new(ns.ip, 53))
                    .collect()
            })
            .unwrap_or_default();
        let inner = builder
            .build()
            .map_err(|e| DnsError::Temporary("system resolver".into(), e.to_string()))?;
        Ok(Self {
            inner,
            servers,
            timeout: settings.timeout,
        })
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
        Ok(Self {
            inner,
            servers: servers.to_vec(),
            timeout: settings.timeout,
        })
    }
}

impl HickoryResolver {
    /// The records of one type at `name` (CNAMEs followed), picked from the
    /// answer; `NoRecords` when the name has none of them.
    async fn records<T>(
        &self,
        name: &str,
        record_type: RecordType,
        kind: &'static str,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Vec<T>, DnsError> {
        let lookup = self
            .inner
            .lookup(query_name(name)?, record_type)
            .await
            .map_err(|e| classify(name, kind, &e))?;
        let found: Vec<T> = lookup.answers().iter().filter_map(|r| pick(&r.data)).collect();
        if found.is_empty() {
            Err(DnsError::NoRecords(plain(name), kind))
        } else {
            Ok(found)
        }
    }
}

/// `name` as a DNS name: IDNA for non-ASCII names, else the bytes as they
/// are. A name that is neither (SPF macros can build `JUMPIN%27%20JUPITER`)
/// cannot exist, which is permanent; left to hickory it would be a
/// "protocol error", which reads as temporary.
fn query_name(name: &str) -> Result<Name, DnsError> {
    let fq = fqdn(name);
    Name::from_utf8(&fq)
        .or_else(|_| Name::from_ascii(&fq))
        .map_err(|_| DnsError::NoSuchName(plain(name)))
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
        match self.inner.mx_lookup(query_name(domain)?).await {
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
            .lookup_ip(query_name(host)?)
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
            .lookup(query_name(name)?, RecordType::CNAME)
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

    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.records(host, RecordType::A, "A", |d| match d {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .await
    }

    async fn ipv6(&self, host: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.records(host, RecordType::AAAA, "AAAA", |d| match d {
            RData::AAAA(aaaa) => Some(aaaa.0),
            _ => None,
        })
        .await
    }

    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        self.records(domain, RecordType::MX, "MX", |d| match d {
            RData::MX(mx) => Some(Mx {
                preference: mx.preference,
                exchange: plain(&mx.exchange.to_ascii()),
            }),
            _ => None,
        })
        .await
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        self.records(&reverse_name(ip), RecordType::PTR, "PTR", |d| match d {
            RData::PTR(ptr) => Some(plain(&ptr.0.to_ascii())),
            _ => None,
        })
        .await
    }

    async fn tlsa(&self, name: &str) -> Result<crate::Secured<Vec<crate::Tlsa>>, DnsError> {
        self.secure_tlsa(name).await
    }

    async fn mx_secure(&self, domain: &str) -> Result<bool, DnsError> {
        self.secure_mx(domain).await
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let lookup = self
            .inner
            .txt_lookup(query_name(name)?)
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

impl HickoryResolver {
    /// TLSA records asked with AD and DO set ([`crate::secure`]).
    pub async fn secure_tlsa(&self, name: &str) -> Result<crate::Secured<Vec<crate::Tlsa>>, DnsError> {
        crate::secure::tlsa(&self.servers, name, self.timeout).await
    }

    /// Whether the MX RRset of `domain` comes back authenticated.
    pub async fn secure_mx(&self, domain: &str) -> Result<bool, DnsError> {
        crate::secure::mx_secure(&self.servers, domain, self.timeout).await
    }
}
