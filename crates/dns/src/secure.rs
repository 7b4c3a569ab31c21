//! Questions whose answer must be authenticated by DNSSEC: TLSA records
//! for DANE, and whether a domain's MX records are signed.
//!
//! Herald does not validate signatures itself: like Postfix with
//! `smtp_dns_support_level = dnssec`, it trusts the AD bit of its
//! configured resolver, which must be a validating one on a trusted path
//! (unbound or a systemd-resolved stub on the same machine). The query sets
//! AD and EDNS DO (RFC 6840 §5.7), so the resolver says whether it
//! validated. With a resolver that does not validate, AD never comes back
//! and DANE never applies — the safe default.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{DnsError, Tlsa, fqdn, plain};

/// An answer and whether the resolver authenticated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secured<T> {
    pub value: T,
    /// The AD bit: the whole answer was validated by DNSSEC.
    pub secure: bool,
}

/// What a raw query found.
pub(crate) struct Answer {
    pub message: Message,
}

fn query_id() -> u16 {
    let mut b = [0u8; 2];
    // A random id is defence in depth (the resolver is local and trusted).
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        b = (nanos as u16).to_be_bytes();
    }
    u16::from_be_bytes(b)
}

fn request(name: &Name, rtype: RecordType, id: u16) -> Result<Vec<u8>, String> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.authentic_data = true;
    m.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true);
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().map_err(|e| e.to_string())
}

async fn over_udp(server: SocketAddr, bytes: &[u8], id: u16, wait: Duration) -> Result<Message, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "bind")?
    } else {
        "[::]:0".parse().map_err(|_| "bind")?
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| "timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        // An answer to another question is ignored, not trusted.
        match Message::from_vec(&buf[..n]) {
            Ok(m) if m.metadata.id == id => return Ok(m),
            _ => continue,
        }
    }
}

async fn over_tcp(server: SocketAddr, bytes: &[u8], id: u16, wait: Duration) -> Result<Message, String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(bytes.len()).map_err(|_| "query too long")?;
        s.write_all(&len.to_be_bytes()).await.map_err(|e| e.to_string())?;
        s.write_all(bytes).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        let m = Message::from_vec(&buf).map_err(|e| e.to_string())?;
        if m.metadata.id == id {
            Ok(m)
        } else {
            Err("an answer to another question".to_owned())
        }
    };
    tokio::time::timeout(wait, exchange)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Asks each server in turn (UDP, TCP when truncated) until one answers.
pub(crate) async fn ask(
    servers: &[SocketAddr],
    name: &str,
    rtype: RecordType,
    wait: Duration,
) -> Result<Answer, DnsError> {
    let owner = Name::from_ascii(fqdn(name)).map_err(|_| DnsError::NoSuchName(plain(name)))?;
    let mut last = "no name server".to_owned();
    for server in servers {
        let id = query_id();
        let bytes = request(&owner, rtype, id).map_err(|e| DnsError::Temporary(plain(name), e))?;
        let answer = match over_udp(*server, &bytes, id, wait).await {
            Ok(m) if m.metadata.truncation => over_tcp(*server, &bytes, id, wait).await,
            other => other,
        };
        match answer {
            Ok(message) => return Ok(Answer { message }),
            Err(e) => last = e,
        }
    }
    Err(DnsError::Temporary(plain(name), last))
}

/// The TLSA records at `name`, authenticated or not.
pub(crate) async fn tlsa(servers: &[SocketAddr], name: &str, wait: Duration) -> Result<Secured<Vec<Tlsa>>, DnsError> {
    let Answer { message } = ask(servers, name, RecordType::TLSA, wait).await?;
    let secure = message.metadata.authentic_data;
    match message.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Ok(Secured {
                value: Vec::new(),
                secure,
            });
        }
        // SERVFAIL from a validating resolver is also how a bogus
        // (forged) answer looks: never "no records".
        other => return Err(DnsError::Temporary(plain(name), other.to_string())),
    }
    let records = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage),
                selector: u8::from(t.selector),
                matching: u8::from(t.matching),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .collect();
    Ok(Secured { value: records, secure })
}

/// Whether `domain`'s MX RRset was authenticated.
pub(crate) async fn mx_secure(servers: &[SocketAddr], domain: &str, wait: Duration) -> Result<bool, DnsError> {
    let Answer { message } = ask(servers, domain, RecordType::MX, wait).await?;
    match message.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(message.metadata.authentic_data),
        other => Err(DnsError::Temporary(plain(domain), other.to_string())),
    }
}
