//! The SMTP client side of delivery: one connection to a remote host, reused
//! for several messages.
//!
//! Errors carry the decision the caller needs: every failure is an
//! [`SmtpAnswer`] (real, or made up for a network failure, with phase
//! `connect`, `greeting`, …) plus whether the connection is still usable.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use herald_dns::Resolver;
use herald_types::{EmailAddress, ReversePath, SmtpAnswer};
use smtp_proto::response::parser::ResponseReceiver;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::route::Target;
use crate::shaping::TlsMode;
use crate::tls_check::{CertStatus, Verifier};
use herald_dns::Tlsa;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Time-outs of the dialogue.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// For the greeting and each reply (the reply after the message
    /// content gets twice as long: the server may be scanning it).
    pub command: Duration,
}

/// What the server said it can do.
#[derive(Debug, Clone, Copy, Default)]
struct Caps {
    pipelining: bool,
    size: Option<usize>,
    eight_bit: bool,
    smtputf8: bool,
    starttls: bool,
}

/// A failure to connect: the answer to record (made up when there was
/// none: a `550 5.1.2` when the domain has no mail server at all).
#[derive(Debug, Clone)]
pub struct Failure {
    pub answer: SmtpAnswer,
    /// Hosts refused for want of valid TLS: the host, TLS-RPT's result
    /// type, and the policy (`sts` or `tlsa`).
    pub tls_problems: Vec<(String, &'static str, &'static str)>,
}

fn made_up(code: u16, enhanced: &str, text: impl Into<String>, phase: &str) -> SmtpAnswer {
    SmtpAnswer {
        code,
        enhanced: Some(enhanced.to_owned()),
        text: text.into(),
        phase: phase.to_owned(),
    }
}

/// The enhanced status code as written on a reply's first line (RFC 3463:
/// class 2, 4 or 5, subject and detail of one to three digits). smtp-proto
/// keeps each part in a byte, so 4.7.650 would come back as 4.7.255.
fn enhanced_in(raw: &[u8]) -> Option<String> {
    let line = raw.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.get(4..)?.trim_start();
    let word = rest.split_whitespace().next()?;
    let parts: Vec<&str> = word.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| word.to_owned())
}

fn from_response(r: &smtp_proto::Response<String>, raw: &[u8], phase: &str) -> SmtpAnswer {
    let parsed = (r.esc != [0, 0, 0]).then(|| format!("{}.{}.{}", r.esc[0], r.esc[1], r.esc[2]));
    let enhanced = enhanced_in(raw).or(parsed);
    SmtpAnswer {
        code: r.code,
        enhanced,
        text: r.message.replace('\n', " "),
        phase: phase.to_owned(),
    }
}

/// An open, greeted connection.
pub struct Connection {
    io: Box<dyn Io>,
    rx: ResponseReceiver,
    buf: Vec<u8>,
    /// The bytes of the reply being read (for what the parser drops).
    raw: Vec<u8>,
    caps: Caps,
    timeouts: Timeouts,
    /// The host that answered (for events).
    pub mx: String,
    /// The port it answered on.
    pub port: u16,
    /// The address Herald sent from.
    pub local_ip: IpAddr,
    pub tls: bool,
    /// Why STARTTLS failed, when the connection fell back to plain text.
    pub tls_fallback: Option<String>,
    /// Whether the certificate is valid for `mx` (Web PKI).
    pub cert: CertStatus,
    /// Whether the certificate matched the host's TLSA records (DANE).
    pub dane: bool,
    /// The chain the server presented.
    peer_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Hosts skipped before this one for want of valid TLS: the host,
    /// TLS-RPT's result type, and the policy (`sts` or `tlsa`).
    pub tls_problems: Vec<(String, &'static str, &'static str)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("mx", &self.mx)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The outcome of one message on a connection.
#[derive(Debug)]
pub struct Sent {
    /// One answer per recipient, in order.
    pub answers: Vec<SmtpAnswer>,
    /// Whether the connection may carry another message.
    pub reusable: bool,
}

enum ReadError {
    Timeout,
    Closed,
    Garbled,
}

/// The first bytes of a reply: enough for its first line's codes.
const RAW_HEAD: usize = 512;

fn keep_head(raw: &mut Vec<u8>, bytes: &[u8]) {
    let room = RAW_HEAD.saturating_sub(raw.len());
    raw.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

impl Connection {
    async fn read_reply(&mut self, wait: Duration) -> Result<smtp_proto::Response<String>, ReadError> {
        loop {
            if !self.buf.is_empty() {
                let mut it = self.buf.iter();
                match self.rx.parse(&mut it) {
                    Ok(reply) => {
                        let used = self.buf.len() - it.len();
                        keep_head(&mut self.raw, &self.buf[..used]);
                        self.buf.drain(..used);
                        self.rx.reset();
                        return Ok(reply);
                    }
                    // The receiver keeps the partial reply; these bytes are used.
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {
                        keep_head(&mut self.raw, &self.buf);
                        self.buf.clear();
                    }
                    Err(_) => return Err(ReadError::Garbled),
                }
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(wait, self.io.read(&mut chunk)).await {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Ok(0) | Err(_)) => return Err(ReadError::Closed),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn reply(&mut self, phase: &str, wait: Duration) -> Result<SmtpAnswer, SmtpAnswer> {
        self.raw.clear();
        let read = self.read_reply(wait).await;
        let raw = std::mem::take(&mut self.raw);
        match read {
            Ok(r) => Ok(from_response(&r, &raw, phase)),
            Err(ReadError::Timeout) => Err(made_up(
                451,
                "4.4.2",
                format!("timeout waiting for the {phase} reply"),
                phase,
            )),
            Err(ReadError::Closed) => Err(made_up(
                451,
                "4.4.2",
                format!("connection lost waiting for the {phase} reply"),
                phase,
            )),
            Err(ReadError::Garbled) => Err(made_up(451, "4.5.0", format!("unparsable {phase} reply"), phase)),
        }
    }

    async fn write(&mut self, bytes: &[u8], phase: &str) -> Result<(), SmtpAnswer> {
        let io = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeouts.command, io).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(made_up(451, "4.4.2", format!("connection lost sending {phase}"), phase)),
        }
    }
}

/// Parses the capability lines of an EHLO reply (first line is the name).
fn caps_of(lines: &str) -> Caps {
    let mut caps = Caps::default();
    for line in lines.lines().skip(1) {
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        match keyword.as_str() {
            "PIPELINING" => caps.pipelining = true,
            "SIZE" => caps.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
            "8BITMIME" => caps.eight_bit = true,
            "SMTPUTF8" => caps.smtputf8 = true,
            "STARTTLS" => caps.starttls = true,
            _ => {}
        }
    }
    caps
}

/// Opportunistic TLS (RFC 7435): encrypt when offered, without checking
/// the certificate — an unverified channel still beats a clear one, and
/// refusing would only push the mail into the clear.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client configuration for opportunistic STARTTLS.
pub fn opportunistic_tls() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct Dialer {
    pub ehlo_name: String,
    pub timeouts: Timeouts,
    /// `None`: never STARTTLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// MX hosts tried per attempt, in preference order.
    pub max_mx_hosts: usize,
    /// Addresses tried per attempt, across all hosts.
    pub max_addresses: usize,
    /// Checks certificates after the handshake (`None`: never checked).
    pub verifier: Option<Verifier>,
    /// Apply DANE where MX and TLSA records are authenticated.
    pub dane: bool,
    /// TLSA answers of recent hosts (five minutes).
    pub tlsa_cache: TlsaCache,
}

/// TLSA answers by name, with when they were asked.
pub type TlsaCache = Arc<std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Option<Vec<Tlsa>>)>>>;

/// How long a TLSA answer is remembered.
const TLSA_CACHE: Duration = Duration::from_secs(300);

impl Dialer {
    /// The host's usable-or-not TLSA records when DANE applies to it
    /// (authenticated and not empty); `None` when it does not.
    async fn tlsa(&self, resolver: &dyn Resolver, host: &str, port: u16) -> Result<Option<Vec<Tlsa>>, String> {
        let name = format!("_{port}._tcp.{}", host.trim_end_matches('.'));
        let cached = self.tlsa_cache.lock().ok().and_then(|c| {
            c.get(&name)
                .filter(|(at, _)| at.elapsed() < TLSA_CACHE)
                .map(|(_, r)| r.clone())
        });
        if let Some(r) = cached {
            return Ok(r);
        }
        let found = resolver.tlsa(&name).await.map_err(|e| e.to_string())?;
        let records = (found.secure && !found.value.is_empty()).then_some(found.value);
        if let Ok(mut c) = self.tlsa_cache.lock() {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(name, (std::time::Instant::now(), records.clone()));
        }
        Ok(records)
    }
}

/// What STARTTLS did on a connection being opened.
enum Tls {
    /// Not offered, or not wanted: plain text.
    Plain,
    Encrypted,
    /// Offered but failed, with why.
    Failed(String),
}

impl Dialer {
    /// Connects to the first host of `target` that answers with a 2xx
    /// greeting, trying each of its addresses; the MX hosts in order, at
    /// most `max_mx_hosts` of them and `max_addresses` addresses in all.
    /// With `tls` opportunistic, a failed STARTTLS handshake is followed by
    /// a plain-text connection to the same address (recorded on the
    /// connection); with `tls` required, a host that cannot encrypt is
    /// skipped.
    /// With `verified` (an MTA-STS policy in force), a host whose TLS is
    /// missing or whose certificate is not valid for its name is skipped.
    pub async fn connect(
        &self,
        target: &Target,
        tls: TlsMode,
        verified: bool,
        source: Option<&(IpAddr, String)>,
        resolver: &dyn Resolver,
    ) -> Result<Connection, Failure> {
        let tls = if verified { TlsMode::Required } else { tls };
        let mut problems: Vec<(String, &'static str, &'static str)> = Vec::new();
        let mut last = made_up(451, "4.4.1", "no host could be reached", "connect");
        let mut hosts_without_address = 0;
        let mut addresses_tried = 0usize;
        let hosts = &target.hosts[..target.hosts.len().min(self.max_mx_hosts.max(1))];
        'hosts: for host in hosts {
            let ips = match host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => match resolver.addresses(host).await {
                    Ok(ips) => ips,
                    Err(e) => {
                        if !e.is_temporary() {
                            hosts_without_address += 1;
                        }
                        let enhanced = if e.is_temporary() { "4.4.3" } else { "4.4.4" };
                        last = made_up(451, enhanced, e.to_string(), "dns");
                        continue;
                    }
                },
            };
            // DANE (RFC 7672): when the MX records and this host's TLSA
            // records are authenticated, TLS is required and the
            // certificate must match them; it takes precedence over MTA-STS.
            let dane = if self.dane && target.dnssec && host.parse::<IpAddr>().is_err() {
                match self.tlsa(resolver, host, target.port).await {
                    Ok(records) => records,
                    Err(e) => {
                        // A failed (or bogus) TLSA answer makes the host
                        // unusable (§2.2.2), not a host without TLSA.
                        problems.push((host.clone(), "dnssec-invalid", "tlsa"));
                        last = made_up(451, "4.7.5", format!("TLSA lookup for {host} failed: {e}"), "dns");
                        continue;
                    }
                }
            } else {
                None
            };
            let policy_type = if dane.is_some() { "tlsa" } else { "sts" };
            let tls = if dane.is_some() { TlsMode::Required } else { tls };
            let verified = verified && dane.is_none();
            for ip in ips {
                // A source address speaks only its own family.
                if source.is_some_and(|(s, _)| s.is_ipv4() != ip.is_ipv4()) {
                    continue;
                }
                if addresses_tried >= self.max_addresses.max(1) {
                    break 'hosts;
                }
                addresses_tried += 1;
                let addr = SocketAddr::new(ip, target.port);
                let want_tls = tls != TlsMode::Disabled;
                match self.open(host, addr, source, want_tls).await {
                    Ok((mut conn, Tls::Encrypted))
                        if dane.as_ref().is_some_and(|r| r.iter().any(crate::dane::usable)) =>
                    {
                        let records = dane.as_deref().unwrap_or_default();
                        match crate::dane::check(&conn.peer_chain, records, host) {
                            Ok(()) => {
                                conn.dane = true;
                                conn.tls_problems = problems;
                                return Ok(conn);
                            }
                            Err(result) => {
                                conn.quit().await;
                                problems.push((host.clone(), result, "tlsa"));
                                last = made_up(
                                    451,
                                    "4.7.5",
                                    format!("{host}'s certificate does not match its TLSA records ({result})"),
                                    "starttls",
                                );
                            }
                        }
                    }
                    Ok((conn, Tls::Encrypted)) if verified && conn.cert != CertStatus::Valid => {
                        let result = match conn.cert {
                            CertStatus::Invalid(r) => r,
                            _ => "validation-failure",
                        };
                        conn.quit().await;
                        problems.push((host.clone(), result, "sts"));
                        last = made_up(
                            451,
                            "4.7.5",
                            format!(
                                "{host}'s certificate is not valid for it ({result}) and the domain's MTA-STS policy requires it"
                            ),
                            "starttls",
                        );
                    }
                    Ok((mut conn, Tls::Encrypted)) => {
                        conn.tls_problems = problems;
                        return Ok(conn);
                    }
                    Ok((mut conn, Tls::Plain)) if tls != TlsMode::Required => {
                        conn.tls_problems = problems;
                        return Ok(conn);
                    }
                    Ok((conn, Tls::Plain)) => {
                        conn.quit().await;
                        problems.push((host.clone(), "starttls-not-supported", policy_type));
                        last = made_up(
                            451,
                            "4.7.5",
                            format!("{host} does not offer STARTTLS and TLS is required"),
                            "starttls",
                        );
                    }
                    Ok((_, Tls::Failed(why))) if tls == TlsMode::Required => {
                        problems.push((host.clone(), "validation-failure", policy_type));
                        last = made_up(
                            451,
                            "4.7.5",
                            format!("TLS handshake with {host} failed: {why}"),
                            "starttls",
                        );
                    }
                    Ok((_, Tls::Failed(why))) => {
                        // Opportunistic (RFC 7435): plain text beats no mail.
                        tracing::warn!(host = %host, addr = %addr, reason = %why, "STARTTLS failed; delivering in plain text");
                        match self.open(host, addr, source, false).await {
                            Ok((mut conn, _)) => {
                                conn.tls_fallback = Some(why);
                                conn.tls_problems = problems;
                                return Ok(conn);
                            }
                            Err(answer) => last = answer,
                        }
                    }
                    Err(answer) => last = answer,
                }
            }
        }
        // A domain without MX whose own name has no address cannot get mail.
        if target.implicit && hosts_without_address == target.hosts.len() {
            last = made_up(
                550,
                "5.1.2",
                format!("{} has no mail server", target.hosts.join(", ")),
                "dns",
            );
        }
        Err(Failure {
            answer: last,
            tls_problems: problems,
        })
    }

    /// Opens a greeted connection; with `starttls`, encrypts it when the
    /// server offers STARTTLS. A failed handshake leaves the connection
    /// unusable: the caller opens another.
    async fn open(
        &self,
        host: &str,
        addr: SocketAddr,
        source: Option<&(IpAddr, String)>,
        starttls: bool,
    ) -> Result<(Connection, Tls), SmtpAnswer> {
        let ehlo_name = source.map_or(self.ehlo_name.as_str(), |(_, name)| name.as_str());
        let dial = async {
            match source {
                None => TcpStream::connect(addr).await,
                Some((ip, _)) => {
                    let socket = if ip.is_ipv4() {
                        tokio::net::TcpSocket::new_v4()?
                    } else {
                        tokio::net::TcpSocket::new_v6()?
                    };
                    socket.bind(SocketAddr::new(*ip, 0))?;
                    socket.connect(addr).await
                }
            }
        };
        let tcp = match tokio::time::timeout(self.timeouts.connect, dial).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(made_up(451, "4.4.1", format!("connect to {addr}: {e}"), "connect")),
            Err(_) => return Err(made_up(451, "4.4.2", format!("connect to {addr} timed out"), "connect")),
        };
        let _ = tcp.set_nodelay(true);
        let local_ip = tcp.local_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let mut conn = Connection {
            io: Box::new(tcp),
            rx: ResponseReceiver::default(),
            buf: Vec::new(),
            raw: Vec::new(),
            caps: Caps::default(),
            timeouts: self.timeouts,
            mx: host.to_owned(),
            port: addr.port(),
            local_ip,
            tls: false,
            tls_fallback: None,
            cert: CertStatus::Unchecked,
            dane: false,
            peer_chain: Vec::new(),
            tls_problems: Vec::new(),
        };
        let greeting = conn.reply("greeting", self.timeouts.command).await?;
        if greeting.code / 100 != 2 {
            return Err(greeting);
        }
        let caps = Self::ehlo(&mut conn, ehlo_name).await?;
        conn.caps = caps;
        let Some(tls) = self.tls.as_ref().filter(|_| starttls && caps.starttls) else {
            return Ok((conn, Tls::Plain));
        };
        conn.write(b"STARTTLS\r\n", "starttls").await?;
        let ready = conn.reply("starttls", self.timeouts.command).await?;
        if ready.code != 220 {
            return Ok((
                conn,
                Tls::Failed(format!("STARTTLS refused: {} {}", ready.code, ready.text)),
            ));
        }
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(addr.ip().into()));
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let plain = std::mem::replace(&mut conn.io, Box::new(tokio::io::duplex(1).0));
        let encrypted = tokio::time::timeout(self.timeouts.command, connector.connect(name, plain)).await;
        match encrypted {
            Ok(Ok(stream)) => {
                conn.peer_chain = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default();
                conn.cert = match (&self.verifier, stream.get_ref().1.peer_certificates()) {
                    (Some(v), Some(chain)) => v.check(chain, host),
                    (Some(_), None) => CertStatus::Invalid("validation-failure"),
                    (None, _) => CertStatus::Unchecked,
                };
                conn.io = Box::new(stream);
                conn.tls = true;
                conn.rx = ResponseReceiver::default();
                conn.buf.clear();
                conn.caps = Self::ehlo(&mut conn, ehlo_name).await?;
                Ok((conn, Tls::Encrypted))
            }
            Ok(Err(e)) => Ok((conn, Tls::Failed(format!("handshake: {e}")))),
            Err(_) => Ok((conn, Tls::Failed("handshake timed out".to_owned()))),
        }
    }

    async fn ehlo(conn: &mut Connection, name: &str) -> Result<Caps, SmtpAnswer> {
        conn.write(format!("EHLO {name}\r\n").as_bytes(), "ehlo").await?;
        let r = conn.read_reply(conn.timeouts.command).await;
        match r {
            Ok(reply) if reply.code == 250 => Ok(caps_of(&reply.message)),
            Ok(_) => {
                conn.write(format!("HELO {name}\r\n").as_bytes(), "helo").await?;
                let helo = conn.reply("helo", conn.timeouts.command).await?;
                if helo.code == 250 {
                    Ok(Caps::default())
                } else {
                    Err(helo)
                }
            }
            Err(_) => Err(made_up(451, "4.4.2", "no EHLO reply", "ehlo")),
        }
    }
}

/// Dot-stuffs message content for DATA (RFC 5321 §4.5.2), turning bare LF
/// into CRLF, and appends the terminating `.` line.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 8);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

fn wants_smtputf8(sender: &ReversePath, rcpts: &[EmailAddress]) -> bool {
    !sender.to_string().is_ascii() || rcpts.iter().any(|r| !r.to_string().is_ascii())
}

impl Connection {
    /// One command's reply; the command is written first unless it was
    /// already sent in a pipelined group.
    async fn step(&mut self, line: Option<&[u8]>, phase: &str) -> Result<SmtpAnswer, SmtpAnswer> {
        if let Some(line) = line {
            self.write(line, phase).await?;
        }
        self.reply(phase, self.timeouts.command).await
    }

    /// Checks what the destination must support before anything is sent.
    fn precheck(&self, utf8: bool, size: usize) -> Option<SmtpAnswer> {
        if utf8 && !self.caps.smtputf8 {
            return Some(made_up(
                553,
                "5.6.7",
                "the destination does not support SMTPUTF8",
                "mail",
            ));
        }
        if self.caps.size.is_some_and(|max| size > max) {
            return Some(made_up(
                552,
                "5.3.4",
                "message larger than the destination accepts",
                "mail",
            ));
        }
        None
    }

    fn mail_command(&self, sender: &ReversePath, size: usize, eight_bit: bool, utf8: bool) -> Vec<u8> {
        let mut mail = format!("MAIL FROM:<{sender}>");
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if self.caps.eight_bit && eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        mail.into_bytes()
    }

    /// Sends one message to `rcpts`. One answer per recipient; a failure
    /// that ends the connection gives every recipient that answer.
    pub async fn send(&mut self, sender: &ReversePath, rcpts: &[EmailAddress], body: &[u8]) -> Sent {
        let all = |answer: SmtpAnswer, reusable: bool| Sent {
            answers: vec![answer; rcpts.len()],
            reusable,
        };
        let utf8 = wants_smtputf8(sender, rcpts);
        if let Some(refusal) = self.precheck(utf8, body.len()) {
            return all(refusal, true);
        }
        let mail = self.mail_command(sender, body.len(), !body.is_ascii(), utf8);
        let rcpt_lines: Vec<Vec<u8>> = rcpts
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n").into_bytes())
            .collect();
        let pipelined = self.caps.pipelining;
        if pipelined {
            // RFC 2920: MAIL, every RCPT and DATA in one write.
            let mut group = mail.clone();
            rcpt_lines.iter().for_each(|l| group.extend_from_slice(l));
            group.extend_from_slice(b"DATA\r\n");
            if let Err(a) = self.write(&group, "mail").await {
                return all(a, false);
            }
        }
        let unless = |line: &[u8]| -> Option<Vec<u8>> { (!pipelined).then(|| line.to_vec()) };
        let mail_reply = match self.step(unless(&mail).as_deref(), "mail").await {
            Ok(a) => a,
            Err(a) => return all(a, false),
        };
        // 421: the server is closing the channel; nothing more will be read.
        if mail_reply.code == 421 {
            return all(mail_reply, false);
        }
        let mail_ok = mail_reply.code / 100 == 2;
        let mut answers = Vec::with_capacity(rcpts.len());
        for line in &rcpt_lines {
            if !mail_ok && !pipelined {
                answers.push(mail_reply.clone());
                continue;
            }
            match self.step(unless(line).as_deref(), "rcpt").await {
                // After a refused MAIL, the RCPT replies are only read to
                // stay in step; the MAIL reply is the answer.
                Ok(a) if a.code == 421 => {
                    // Closing: this and every later recipient get the 421.
                    answers.resize(rcpts.len(), a);
                    return Sent {
                        answers,
                        reusable: false,
                    };
                }
                Ok(a) => answers.push(if mail_ok { a } else { mail_reply.clone() }),
                Err(a) => return all(a, false),
            }
        }
        let accepted = answers.iter().filter(|a| a.code / 100 == 2).count();
        let data_reply = if pipelined || accepted > 0 {
            match self.step(unless(b"DATA\r\n").as_deref(), "data").await {
                Ok(a) => Some(a),
                Err(a) => return all(a, false),
            }
        } else {
            None
        };
        let final_answer = match data_reply {
            Some(reply) if reply.code == 354 && accepted > 0 => {
                if let Err(a) = self.write(&dot_stuff(body), "data").await {
                    return all(a, false);
                }
                // The content went out; no answer means the message may or
                // may not have been taken: deferred, and perhaps sent twice.
                match self.reply("end_of_data", self.timeouts.command * 2).await {
                    Ok(a) => Some(a),
                    Err(a) => return all(a, false),
                }
            }
            Some(reply) if reply.code == 354 => {
                // Every recipient was refused, yet the server wants content:
                // end it empty and let it be refused.
                if self.write(b".\r\n", "data").await.is_err()
                    || self.reply("end_of_data", self.timeouts.command).await.is_err()
                {
                    return Sent {
                        answers,
                        reusable: false,
                    };
                }
                None
            }
            Some(refused) if accepted > 0 => Some(refused),
            _ => None,
        };
        if let Some(fin) = final_answer {
            for a in answers.iter_mut().filter(|a| a.code / 100 == 2) {
                *a = fin.clone();
            }
        }
        let reusable = if mail_ok && accepted > 0 {
            true
        } else {
            self.step(Some(b"RSET\r\n"), "rset").await.is_ok()
        };
        Sent { answers, reusable }
    }

    /// Says goodbye, without waiting long for the answer.
    pub async fn quit(mut self) {
        if self.write(b"QUIT\r\n", "quit").await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.read_reply(Duration::from_secs(2))).await;
        }
        let _ = self.io.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(
            dot_stuff(b"a\r\n.b\r\n.\r\nc"),
            b"a\r\n..b\r\n..\r\nc\r\n.\r\n".to_vec()
        );
        assert_eq!(dot_stuff(b".x\nbare lf\n"), b"..x\r\nbare lf\r\n.\r\n".to_vec());
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n".to_vec());
    }

    #[test]
    fn enhanced_codes_keep_three_digit_details() {
        assert_eq!(enhanced_in(b"451 4.7.650 The mail server").as_deref(), Some("4.7.650"));
        assert_eq!(
            enhanced_in(b"550-5.7.708 Access denied\r\n550 5.7.708 x").as_deref(),
            Some("5.7.708")
        );
        assert_eq!(enhanced_in(b"250 ok"), None);
        assert_eq!(enhanced_in(b"421 4.7.0000 x"), None);
        assert_eq!(enhanced_in(b"421 9.1.1 x"), None);
        assert_eq!(enhanced_in(b"42"), None);
    }

    #[test]
    fn ehlo_capabilities_are_read() {
        let caps = caps_of("mx.test Hello\nPIPELINING\nSIZE 1000\n8BITMIME\nSTARTTLS\nsmtputf8");
        assert!(caps.pipelining && caps.eight_bit && caps.starttls && caps.smtputf8);
        assert_eq!(caps.size, Some(1000));
        assert_eq!(caps_of("mx.test\nSIZE").size, None);
    }
}
