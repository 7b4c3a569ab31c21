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

/// A failure: the answer to record, and whether the connection survives.
#[derive(Debug, Clone)]
pub struct Failure {
    pub answer: SmtpAnswer,
    /// Whether the failure says something about every recipient of this
    /// host (a refused connection), not just this message.
    pub permanent: bool,
}

fn made_up(code: u16, enhanced: &str, text: impl Into<String>, phase: &str) -> SmtpAnswer {
    SmtpAnswer {
        code,
        enhanced: Some(enhanced.to_owned()),
        text: text.into(),
        phase: phase.to_owned(),
    }
}

fn from_response(r: &smtp_proto::Response<String>, phase: &str) -> SmtpAnswer {
    let enhanced = (r.esc != [0, 0, 0]).then(|| format!("{}.{}.{}", r.esc[0], r.esc[1], r.esc[2]));
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
    caps: Caps,
    timeouts: Timeouts,
    /// The host that answered (for events).
    pub mx: String,
    /// The address Herald sent from.
    pub local_ip: IpAddr,
    pub tls: bool,
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

impl Connection {
    async fn read_reply(&mut self, wait: Duration) -> Result<smtp_proto::Response<String>, ReadError> {
        loop {
            if !self.buf.is_empty() {
                let mut it = self.buf.iter();
                match self.rx.parse(&mut it) {
                    Ok(reply) => {
                        let used = self.buf.len() - it.len();
                        self.buf.drain(..used);
                        self.rx.reset();
                        return Ok(reply);
                    }
                    // The receiver keeps the partial reply; these bytes are used.
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => self.buf.clear(),
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
        match self.read_reply(wait).await {
            Ok(r) => Ok(from_response(&r, phase)),
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
}

impl Dialer {
    /// Connects to the first host of `target` that answers with a 2xx
    /// greeting, trying each of its addresses; the MX hosts in order.
    pub async fn connect(&self, target: &Target, resolver: &dyn Resolver) -> Result<Connection, Failure> {
        let mut last = made_up(451, "4.4.1", "no host could be reached", "connect");
        let mut hosts_without_address = 0;
        for host in &target.hosts {
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
            for ip in ips {
                match self.open(host, SocketAddr::new(ip, target.port)).await {
                    Ok(conn) => return Ok(conn),
                    Err(answer) => last = answer,
                }
            }
        }
        // A domain without MX whose own name has no address cannot get mail.
        let permanent = target.implicit && hosts_without_address == target.hosts.len();
        if permanent {
            last = made_up(
                550,
                "5.1.2",
                format!("{} has no mail server", target.hosts.join(", ")),
                "dns",
            );
        }
        Err(Failure {
            answer: last,
            permanent,
        })
    }

    async fn open(&self, host: &str, addr: SocketAddr) -> Result<Connection, SmtpAnswer> {
        let tcp = match tokio::time::timeout(self.timeouts.connect, TcpStream::connect(addr)).await {
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
            caps: Caps::default(),
            timeouts: self.timeouts,
            mx: host.to_owned(),
            local_ip,
            tls: false,
        };
        let greeting = conn.reply("greeting", self.timeouts.command).await?;
        if greeting.code / 100 != 2 {
            return Err(greeting);
        }
        let caps = self.ehlo(&mut conn).await?;
        conn.caps = caps;
        if caps.starttls
            && let Some(tls) = &self.tls
        {
            conn.write(b"STARTTLS\r\n", "starttls").await?;
            let ready = conn.reply("starttls", self.timeouts.command).await?;
            if ready.code == 220 {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(addr.ip().into()));
                let connector = tokio_rustls::TlsConnector::from(tls.clone());
                let plain = std::mem::replace(&mut conn.io, Box::new(tokio::io::duplex(1).0));
                let encrypted = tokio::time::timeout(self.timeouts.command, connector.connect(name, plain)).await;
                match encrypted {
                    Ok(Ok(stream)) => {
                        conn.io = Box::new(stream);
                        conn.tls = true;
                        conn.rx = ResponseReceiver::default();
                        conn.buf.clear();
                        conn.caps = self.ehlo(&mut conn).await?;
                    }
                    _ => return Err(made_up(451, "4.7.5", "TLS handshake failed", "starttls")),
                }
            }
        }
        Ok(conn)
    }

    async fn ehlo(&self, conn: &mut Connection) -> Result<Caps, SmtpAnswer> {
        conn.write(format!("EHLO {}\r\n", self.ehlo_name).as_bytes(), "ehlo")
            .await?;
        let r = conn.read_reply(self.timeouts.command).await;
        match r {
            Ok(reply) if reply.code == 250 => Ok(caps_of(&reply.message)),
            Ok(_) => {
                conn.write(format!("HELO {}\r\n", self.ehlo_name).as_bytes(), "helo")
                    .await?;
                let helo = conn.reply("helo", self.timeouts.command).await?;
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
                match self.reply("data", self.timeouts.command * 2).await {
                    Ok(a) => Some(a),
                    Err(a) => return all(a, false),
                }
            }
            Some(reply) if reply.code == 354 => {
                // Every recipient was refused, yet the server wants content:
                // end it empty and let it be refused.
                if self.write(b".\r\n", "data").await.is_err()
                    || self.reply("data", self.timeouts.command).await.is_err()
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
    fn ehlo_capabilities_are_read() {
        let caps = caps_of("mx.test Hello\nPIPELINING\nSIZE 1000\n8BITMIME\nSTARTTLS\nsmtputf8");
        assert!(caps.pipelining && caps.eight_bit && caps.starttls && caps.smtputf8);
        assert_eq!(caps.size, Some(1000));
        assert_eq!(caps_of("mx.test\nSIZE").size, None);
    }
}
