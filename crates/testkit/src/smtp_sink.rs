//! A scripted SMTP sink: the remote mail server in delivery tests.
//!
//! It answers every command of the SMTP dialogue (with PIPELINING, SIZE,
//! 8BITMIME, SMTPUTF8 and optionally STARTTLS), and lets a test choose the
//! answer per recipient pattern and phase: accept, a 4xx or 5xx reply,
//! dropping the connection, or hanging without a word — for the first N
//! times or always. Every message it accepts is recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Where in the dialogue a rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// On connecting, before the greeting (the pattern is ignored).
    Connect,
    /// The reply to `MAIL FROM`; the pattern matches the sender.
    Mail,
    /// The reply to `RCPT TO`.
    Rcpt,
    /// The reply after the message content, for a message with a matching
    /// recipient.
    DataEnd,
}

/// What to do there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// Answer this reply line, e.g. `"550 5.1.1 user unknown"`.
    Reply(String),
    /// Close the connection without a word.
    Disconnect,
    /// Say nothing and keep the connection open until the client leaves.
    Hang,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Rule {
    pub phase: Phase,
    /// `*` for anything, `*@domain`, `local@*`, or an exact address.
    pub pattern: String,
    pub behaviour: Behaviour,
    /// Applies this many times, then the rule is spent; `None`: always.
    pub times: Option<usize>,
}

impl Rule {
    pub fn new(phase: Phase, pattern: &str, behaviour: Behaviour) -> Self {
        Self {
            phase,
            pattern: pattern.to_owned(),
            behaviour,
            times: None,
        }
    }

    /// Only the first `n` times.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, phase: Phase, address: &str) -> bool {
        if self.phase != phase || self.times == Some(0) {
            return false;
        }
        let address = address.to_ascii_lowercase();
        let pattern = self.pattern.to_ascii_lowercase();
        match (pattern.strip_prefix("*@"), pattern.strip_suffix("@*")) {
            _ if pattern == "*" => true,
            (Some(domain), _) => address.rsplit_once('@').is_some_and(|(_, d)| d == domain),
            (_, Some(local)) => address.rsplit_once('@').is_some_and(|(l, _)| l == local),
            _ => address == pattern,
        }
    }
}

/// How the sink behaves beyond its per-recipient rules.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// Offer STARTTLS with a self-signed certificate.
    pub starttls: bool,
    /// Offer STARTTLS, say yes, then break the handshake (close the
    /// connection instead of speaking TLS).
    pub broken_tls: bool,
    /// After this many messages on one connection, answer the next MAIL
    /// with this line and close the connection (a provider counting
    /// messages per connection).
    pub per_connection: Option<(usize, String)>,
    /// The certificate STARTTLS presents (default: self-signed for
    /// sink.test).
    pub identity: Option<crate::pki::Identity>,
}

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct SinkMessage {
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// The address the sink was reached on (which of several loopback
    /// addresses a test's MX pointed at).
    pub local: SocketAddr,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The content, unstuffed, without the final `.` line.
    pub data: Vec<u8>,
    pub client: SocketAddr,
    /// Whether the session was encrypted when the message came.
    pub tls: bool,
}

struct Shared {
    rules: Mutex<Vec<Rule>>,
    received: Mutex<Vec<SinkMessage>>,
    connections: Mutex<usize>,
    /// Connections open now, and the most open at once.
    open: Mutex<(usize, usize)>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    options: SinkOptions,
}

/// A running sink; it stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn take_rule(shared: &Shared, phase: Phase, address: &str) -> Behaviour {
    let mut rules = shared.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for rule in rules.iter_mut() {
        if rule.matches(phase, address) {
            if let Some(n) = rule.times.as_mut() {
                *n -= 1;
            }
            return rule.behaviour.clone();
        }
    }
    Behaviour::Accept
}

impl SmtpSink {
    /// Listens on `addr` (e.g. "127.0.0.1:0", or another loopback address so
    /// that an MX record can point at it) with these rules.
    pub async fn start(addr: &str, rules: Vec<Rule>) -> anyhow::Result<Self> {
        Self::start_with(addr, rules, false).await
    }

    /// The same, offering STARTTLS with a self-signed certificate.
    pub async fn start_with(addr: &str, rules: Vec<Rule>, starttls: bool) -> anyhow::Result<Self> {
        Self::start_opts(
            addr,
            rules,
            SinkOptions {
                starttls,
                ..SinkOptions::default()
            },
        )
        .await
    }

    /// The same, with every option.
    pub async fn start_opts(addr: &str, rules: Vec<Rule>, options: SinkOptions) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("sink bind {addr}"))?;
        let addr = listener.local_addr()?;
        let tls = match (&options.identity, options.starttls || options.broken_tls) {
            (Some(id), _) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(id.server_config()?))),
            (None, true) => Some(acceptor()?),
            (None, false) => None,
        };
        let shared = Arc::new(Shared {
            rules: Mutex::new(rules),
            received: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
            open: Mutex::new((0, 0)),
            tls,
            options,
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let shared = accept_shared.clone();
                if let Ok(mut n) = shared.connections.lock() {
                    *n += 1;
                }
                tokio::spawn(async move {
                    if let Ok(mut o) = shared.open.lock() {
                        o.0 += 1;
                        o.1 = o.1.max(o.0);
                    }
                    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let _ = session(stream, peer, shared.clone(), closed.clone()).await;
                    close_once(&shared, &closed);
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rules, for connections and commands from now on.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        if let Ok(mut r) = self.shared.rules.lock() {
            *r = rules;
        }
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<SinkMessage> {
        self.shared.received.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().map(|n| *n).unwrap_or(0)
    }

    /// The most connections that were open at once.
    pub fn peak_connections(&self) -> usize {
        self.shared.open.lock().map(|o| o.1).unwrap_or(0)
    }

    /// Waits until at least `n` messages have arrived.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<SinkMessage>> {
        crate::wait_for(&format!("{n} messages at the sink"), timeout, || {
            let got = self.messages();
            async move { (got.len() >= n).then_some(got) }
        })
        .await
    }
}

fn acceptor() -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let made = rcgen::generate_simple_self_signed(vec!["sink.test".into()])?;
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// How a dialogue ended.
enum Step {
    Close,
    StartTls,
}

/// Counts a connection as closed, once: at QUIT (before the reply, so a
/// client that reconnects after `221` is never counted twice) or at its end.
fn close_once(shared: &Shared, closed: &std::sync::atomic::AtomicBool) {
    if !closed.swap(true, std::sync::atomic::Ordering::SeqCst)
        && let Ok(mut o) = shared.open.lock()
    {
        o.0 -= 1;
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    closed: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    match take_rule(&shared, Phase::Connect, "") {
        Behaviour::Accept => {}
        Behaviour::Reply(line) => {
            let mut stream = stream;
            stream.write_all(format!("{line}\r\n").as_bytes()).await?;
            return Ok(());
        }
        Behaviour::Disconnect => return Ok(()),
        Behaviour::Hang => return hang(stream).await,
    }
    let local = stream.local_addr()?;
    let mut reader = BufReader::new(stream);
    reader.get_mut().write_all(b"220 sink.test ESMTP test sink\r\n").await?;
    let mut conn = Conn {
        peer,
        local,
        helo: String::new(),
        tls: false,
        messages: 0,
        closed,
    };
    match dialogue(&mut reader, &mut conn, &shared).await? {
        Step::StartTls if shared.options.broken_tls => {
            // Garbage where the server's TLS hello belongs, then goodbye.
            let mut stream = reader.into_inner();
            let _ = stream.write_all(b"this is not TLS\r\n").await;
            Ok(())
        }
        Step::StartTls => {
            let Some(acceptor) = shared.tls.clone() else {
                return Ok(());
            };
            let tls = acceptor.accept(reader.into_inner()).await?;
            let mut reader = BufReader::new(tls);
            conn.tls = true;
            conn.helo.clear();
            dialogue(&mut reader, &mut conn, &shared).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn hang<S: AsyncRead + Unpin>(mut stream: S) -> anyhow::Result<()> {
    let mut buf = [0u8; 1024];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, line: &str) -> anyhow::Result<()> {
    stream.write_all(format!("{line}\r\n").as_bytes()).await?;
    Ok(())
}

fn address_of(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

/// One connection's state.
struct Conn {
    peer: SocketAddr,
    local: SocketAddr,
    helo: String,
    tls: bool,
    /// Messages accepted on this connection.
    messages: usize,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

async fn dialogue<S>(reader: &mut BufReader<S>, conn: &mut Conn, shared: &Shared) -> anyhow::Result<Step>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = conn.tls;
    let mut mail_from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(Step::Close);
        }
        let cmd = line.trim_end();
        let upper = cmd.to_ascii_uppercase();
        let w = reader.get_mut();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            conn.helo = cmd.get(5..).unwrap_or("").trim().to_owned();
        }
        if upper.starts_with("EHLO") {
            let starttls = if shared.tls.is_some() && !tls {
                "250-STARTTLS\r\n"
            } else {
                ""
            };
            let text = format!(
                "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n{starttls}250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
            );
            w.write_all(text.as_bytes()).await?;
        } else if upper.starts_with("HELO") {
            reply(w, "250 sink.test").await?;
        } else if upper == "STARTTLS" && shared.tls.is_some() && !tls {
            reply(w, "220 2.0.0 go ahead").await?;
            return Ok(Step::StartTls);
        } else if upper.starts_with("MAIL FROM:") {
            if let Some((limit, line)) = &shared.options.per_connection
                && conn.messages >= *limit
            {
                reply(w, line).await?;
                w.flush().await?;
                return Ok(Step::Close);
            }
            let from = address_of(&cmd[10..]);
            match take_rule(shared, Phase::Mail, &from) {
                Behaviour::Accept => {
                    mail_from = Some(from);
                    rcpts.clear();
                    reply(w, "250 2.1.0 ok").await?;
                }
                Behaviour::Reply(r) => reply(w, &r).await?,
                Behaviour::Disconnect => return Ok(Step::Close),
                Behaviour::Hang => return hang(reader).await.map(|()| Step::Close),
            }
        } else if upper.starts_with("RCPT TO:") {
            let to = address_of(&cmd[8..]);
            match take_rule(shared, Phase::Rcpt, &to) {
                Behaviour::Accept if mail_from.is_some() => {
                    rcpts.push(to);
                    reply(w, "250 2.1.5 ok").await?;
                }
                Behaviour::Accept => reply(w, "503 5.5.1 need MAIL").await?,
                Behaviour::Reply(r) => reply(w, &r).await?,
                Behaviour::Disconnect => return Ok(Step::Close),
                Behaviour::Hang => return hang(reader).await.map(|()| Step::Close),
            }
        } else if upper == "DATA" {
            if mail_from.is_none() || rcpts.is_empty() {
                reply(w, "554 5.5.1 no valid recipients").await?;
                continue;
            }
            reply(w, "354 go ahead").await?;
            let data = read_data(reader).await?;
            let w = reader.get_mut();
            let verdict = rcpts
                .iter()
                .map(|r| take_rule(shared, Phase::DataEnd, r))
                .find(|b| *b != Behaviour::Accept)
                .unwrap_or(Behaviour::Accept);
            match verdict {
                Behaviour::Accept => {
                    if let Ok(mut got) = shared.received.lock() {
                        got.push(SinkMessage {
                            helo: conn.helo.clone(),
                            local: conn.local,
                            mail_from: mail_from.take().unwrap_or_default(),
                            rcpt_to: std::mem::take(&mut rcpts),
                            data,
                            client: conn.peer,
                            tls,
                        });
                    }
                    conn.messages += 1;
                    reply(w, "250 2.0.0 queued").await?;
                }
                Behaviour::Reply(r) => {
                    mail_from = None;
                    rcpts.clear();
                    reply(w, &r).await?;
                }
                Behaviour::Disconnect => return Ok(Step::Close),
                Behaviour::Hang => return hang(reader).await.map(|()| Step::Close),
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpts.clear();
            reply(w, "250 2.0.0 ok").await?;
        } else if upper == "NOOP" {
            reply(w, "250 2.0.0 ok").await?;
        } else if upper == "QUIT" {
            close_once(shared, &conn.closed);
            reply(w, "221 2.0.0 bye").await?;
            return Ok(Step::Close);
        } else {
            reply(w, "502 5.5.1 not implemented").await?;
        }
        reader.get_mut().flush().await?;
    }
}

/// Reads message content up to the lone `.` line, undoing dot-stuffing.
async fn read_data<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            anyhow::bail!("connection closed in DATA");
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let content = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
        data.extend_from_slice(content);
    }
}
