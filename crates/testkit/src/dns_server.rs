//! A real DNS server on loopback (hickory-server), serving test zones.
//!
//! Records are grouped into zones by their last two labels
//! (`mx1.example.test` lives in `example.test`); an empty root zone makes
//! every other name NXDOMAIN, as on the internet, instead of REFUSED.
//! Reverse names (`4.3.2.1.in-addr.arpa`) group the same way, so PTR
//! records live in `in-addr.arpa` or `ip6.arpa`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, PTR, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::MessageResponse;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// One TXT string holds at most 255 bytes (RFC 1035 §3.3); longer values
/// are split into several strings.
const TXT_CHUNK: usize = 255;
const TTL: u32 = 60;

/// The records to serve.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    records: Vec<(String, RData)>,
    /// Names (and everything below them) answered as DNSSEC-validated.
    signed: Vec<String>,
    /// Names (and everything below them) never answered: the client times out.
    silent: Vec<String>,
}

fn name(s: &str) -> anyhow::Result<Name> {
    let fq = if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&fq).with_context(|| format!("bad DNS name {s:?}"))
}

impl Zones {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, owner: &str, data: RData) -> Self {
        self.records.push((owner.to_owned(), data));
        self
    }

    pub fn mx(self, domain: &str, preference: u16, exchange: &str) -> Self {
        let exchange = name(exchange).unwrap_or_else(|_| Name::root());
        self.add(domain, RData::MX(MX::new(preference, exchange)))
    }

    /// RFC 7505: `0 .`, this domain accepts no mail.
    pub fn null_mx(self, domain: &str) -> Self {
        self.add(domain, RData::MX(MX::new(0, Name::root())))
    }

    pub fn ip(self, host: &str, ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => self.add(host, RData::A(A(v4))),
            IpAddr::V6(v6) => self.add(host, RData::AAAA(AAAA(v6))),
        }
    }

    pub fn cname(self, owner: &str, target: &str) -> Self {
        let target = name(target).unwrap_or_else(|_| Name::root());
        self.add(owner, RData::CNAME(CNAME(target)))
    }

    /// A PTR record for `ip`, at its `in-addr.arpa` or `ip6.arpa` name,
    /// naming `host` (reverse DNS, as SPF's `ptr` and `%{p}` read it).
    pub fn ptr(self, ip: IpAddr, host: &str) -> Self {
        let owner = Name::from(ip).to_ascii();
        let target = name(host).unwrap_or_else(|_| Name::root());
        self.add(&owner, RData::PTR(PTR(target)))
    }

    /// The records a sending domain publishes (the `records` list of
    /// `herald domain add --json` or the domains API): TXT and CNAME.
    pub fn publish(self, records: &serde_json::Value) -> Self {
        records.as_array().into_iter().flatten().fold(self, |z, r| {
            let (name, value) = (
                r["name"].as_str().unwrap_or_default(),
                r["value"].as_str().unwrap_or_default(),
            );
            if r["type"] == "CNAME" {
                z.cname(name, value)
            } else {
                z.txt(name, value)
            }
        })
    }

    /// A TLSA record (RFC 6698) at `owner` (`_25._tcp.mx.example.test`).
    pub fn tlsa(self, owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> Self {
        use hickory_proto::rr::rdata::TLSA;
        use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
        let record = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data.to_vec(),
        );
        self.add(owner, RData::TLSA(record))
    }

    /// Answers for `name` and the names below it come with the AD bit set,
    /// as a validating resolver answers for a signed zone (the server does
    /// not sign: it stands in for the validating resolver Herald trusts).
    pub fn signed(mut self, name: &str) -> Self {
        self.signed.push(name.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    /// Questions about `name` and the names below it get no answer at all,
    /// as from a list whose servers are down: the client times out.
    pub fn silent(mut self, name: &str) -> Self {
        self.silent.push(name.trim_end_matches('.').to_ascii_lowercase());
        self
    }

    pub fn txt(self, owner: &str, value: &str) -> Self {
        let chunks = value
            .as_bytes()
            .chunks(TXT_CHUNK)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        self.add(owner, RData::TXT(TXT::new(chunks)))
    }

    fn handler(&self) -> anyhow::Result<Answering> {
        Ok(Answering {
            catalog: self.catalog()?,
            signed: self.signed.clone(),
            silent: self.silent.clone(),
        })
    }

    fn catalog(&self) -> anyhow::Result<Catalog> {
        let mut zones: Vec<(Name, InMemoryZoneHandler)> = Vec::new();
        let origin_of = |owner: &Name| -> Name {
            let labels = owner.num_labels();
            if labels <= 2 { owner.clone() } else { owner.trim_to(2) }
        };
        let mut origins = vec![Name::root()];
        for (owner, _) in &self.records {
            let origin = origin_of(&name(owner)?);
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        for origin in origins {
            let mut handler: InMemoryZoneHandler =
                InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
            let mname = Name::from_ascii("ns.")?.append_domain(&origin)?;
            let rname = Name::from_ascii("hostmaster.")?.append_domain(&origin)?;
            let soa = SOA::new(mname, rname, 1, 3600, 600, 86_400, TTL);
            handler.upsert_mut(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1);
            zones.push((origin, handler));
        }
        for (owner, data) in &self.records {
            let owner = name(owner)?;
            let origin = origin_of(&owner);
            let (_, handler) = zones.iter_mut().find(|(o, _)| *o == origin).context("zone of record")?;
            handler.upsert_mut(Record::from_rdata(owner, TTL, data.clone()), 1);
        }
        let mut catalog = Catalog::new();
        for (origin, handler) in zones {
            catalog.upsert(
                LowerName::from(&origin),
                vec![Arc::new(handler) as Arc<dyn ZoneHandler>],
            );
        }
        Ok(catalog)
    }
}

/// The catalog, answering with AD set for names under a signed zone.
struct Answering {
    catalog: Catalog,
    signed: Vec<String>,
    silent: Vec<String>,
}

#[derive(Clone)]
struct SetAd<R> {
    inner: R,
    ad: bool,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for SetAd<R> {
    async fn send_response<'a>(
        &mut self,
        mut response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        if self.ad {
            response.metadata_mut().authentic_data = true;
        }
        self.inner.send_response(response).await
    }
}

#[async_trait::async_trait]
impl RequestHandler for Answering {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let asked = request
            .request_info()
            .map(|i| i.query.name().to_string().trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default();
        let under = |z: &String| asked == *z || asked.ends_with(&format!(".{z}"));
        if self.silent.iter().any(under) {
            // No response at all: the handle is dropped unanswered.
            return ResponseInfo::from(hickory_proto::op::Header {
                metadata: request.metadata,
                counts: hickory_proto::op::HeaderCounts::default(),
            });
        }
        let ad = self.signed.iter().any(under);
        self.catalog
            .handle_request::<_, T>(
                request,
                SetAd {
                    inner: response_handle,
                    ad,
                },
            )
            .await
    }
}

/// A running DNS server; it stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    _server: Server<Answering>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Serves `zones` on 127.0.0.1, UDP and TCP on the same free port.
    pub async fn start(zones: &Zones) -> anyhow::Result<Self> {
        for _ in 0..20 {
            let udp = UdpSocket::bind("127.0.0.1:0").await?;
            let addr = udp.local_addr()?;
            // The TCP port of the same number may be taken; draw again.
            let Ok(tcp) = TcpListener::bind(addr).await else {
                continue;
            };
            let mut server = Server::new(zones.handler()?);
            server.register_socket(udp);
            server.register_listener(tcp, Duration::from_secs(5), 65_535);
            return Ok(Self { addr, _server: server });
        }
        anyhow::bail!("no free port with both UDP and TCP")
    }

    /// Where to point `[dns] nameservers`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `zones` instead, on the same address (as when a user
    /// publishes records): the old server stops, a new one binds the port.
    pub async fn replace(&mut self, zones: &Zones) -> anyhow::Result<()> {
        let mut old = std::mem::replace(
            &mut self._server,
            Server::new(Answering {
                catalog: Catalog::new(),
                signed: Vec::new(),
                silent: Vec::new(),
            }),
        );
        old.shutdown_gracefully().await.ok();
        drop(old);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let bound = async {
                let udp = UdpSocket::bind(self.addr).await?;
                let tcp = TcpListener::bind(self.addr).await?;
                anyhow::Ok((udp, tcp))
            }
            .await;
            match bound {
                Ok((udp, tcp)) => {
                    let mut server = Server::new(zones.handler()?);
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(5), 65_535);
                    self._server = server;
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
