//! One SMTP session: the command loop, DATA and BDAT, AUTH, STARTTLS.
//!
//! Replies collect in an output buffer that is written before the next read,
//! which is what makes PIPELINING work: a client's whole group of commands
//! is answered in one write.

use std::sync::Arc;

use smtp_proto::request::receiver::{
    BdatReceiver, DataReceiver, DummyDataReceiver, DummyLineReceiver, LineReceiver, RequestReceiver,
};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, MAIL_SMTPUTF8, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use herald_types::{EmailAddress, ReversePath};

use crate::limits::AuthThrottle;
use crate::sasl;
use crate::{AuthRefusal, Incoming, Ingress, ListenerKind, Peer, Principal, Reply, SessionConfig};

/// What every session of a server shares.
pub struct SessionContext {
    pub config: Arc<SessionConfig>,
    pub ingress: Arc<dyn Ingress>,
    /// `None`: no certificate, no STARTTLS.
    pub tls: Option<TlsAcceptor>,
    pub throttle: Arc<AuthThrottle>,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const READ_BUFFER: usize = 64 * 1024;
/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_PART: usize = 64;
/// A handshake not done by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the reader is doing with incoming bytes.
enum Mode {
    Command(RequestReceiver),
    /// Skipping the rest of an over-long command line.
    SkipLine(DummyLineReceiver),
    Data(DataReceiver),
    /// Reading a message that is already too big, to answer 552 at its end.
    DiscardData(DummyDataReceiver),
    Bdat(BdatReceiver),
    DiscardBdat {
        rx: DummyDataReceiver,
        last: bool,
        reply: Reply,
    },
    AuthPlain(LineReceiver<()>),
    AuthLoginUser(LineReceiver<()>),
    AuthLoginPassword {
        user: String,
        rx: LineReceiver<()>,
    },
}

fn command_mode() -> Mode {
    Mode::Command(RequestReceiver::default())
}

fn line_mode() -> LineReceiver<()> {
    LineReceiver::new(())
}

/// The state of one session, kept across a STARTTLS upgrade.
struct Session {
    peer: Peer,
    kind: ListenerKind,
    tls: bool,
    helo: Option<String>,
    esmtp: bool,
    principal: Option<Principal>,
    authenticated: bool,
    sender: Option<ReversePath>,
    smtputf8: bool,
    recipients: Vec<EmailAddress>,
    /// The message being received (Received header first).
    body: Vec<u8>,
    header_len: usize,
    errors: u32,
    /// Set by QUIT or a fatal error: write what is pending, then close.
    closing: bool,
    /// Set by STARTTLS: write the 220, then upgrade.
    start_tls: bool,
    /// The command being answered, for metrics (a fixed set of names).
    command: &'static str,
}

enum Outcome<S> {
    Closed,
    StartTls(S),
}

fn r(code: u16, enhanced: [u8; 3], text: &str) -> Reply {
    Reply::new(code, enhanced, text)
}

impl Session {
    fn reset_transaction(&mut self) {
        self.sender = None;
        self.smtputf8 = false;
        self.recipients.clear();
        self.body = Vec::new();
        self.header_len = 0;
    }

    /// RFC 3207 §4.2: after TLS starts, everything learned before is forgotten.
    fn reset_for_tls(&mut self) {
        self.reset_transaction();
        self.helo = None;
        self.esmtp = false;
        self.principal = None;
        self.authenticated = false;
        self.tls = true;
        self.start_tls = false;
    }

    fn submission(&self) -> bool {
        matches!(self.kind, ListenerKind::Submission | ListenerKind::SubmissionTls)
    }

    fn auth_offered(&self, ctx: &SessionContext) -> bool {
        self.submission() && (self.tls || ctx.config.allow_auth_without_tls)
    }

    /// Queues a reply; refusals count towards the error limit.
    fn reply(&mut self, reply: &Reply, out: &mut Vec<u8>, ctx: &SessionContext) {
        reply.write_to(out);
        crate::metrics::answered(self.kind, self.command, reply);
        if reply.code >= 500 || matches!(reply.code, 421 | 454) {
            self.errors += 1;
            if self.errors >= ctx.config.max_errors && !self.closing {
                r(421, [4, 7, 0], "Too many errors; closing connection").write_to(out);
                crate::metrics::closed(self.kind, "too_many_errors");
                self.closing = true;
            }
        }
    }

    fn received_header(&self, ctx: &SessionContext) -> Vec<u8> {
        let proto = match (self.esmtp, self.tls, self.authenticated) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let helo: String = self
            .helo
            .as_deref()
            .unwrap_or("unknown")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        format!(
            "Received: from {helo} ([{}])\r\n\tby {} (Herald) with {proto};\r\n\t{date}\r\n",
            self.peer.remote.ip(),
            ctx.config.hostname
        )
        .into_bytes()
    }

    fn ehlo(&mut self, host: String, out: &mut Vec<u8>, ctx: &SessionContext) {
        self.reset_transaction();
        self.helo = Some(host);
        self.esmtp = true;
        let mut lines = vec![
            ctx.config.hostname.clone(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", ctx.config.max_message_size),
            "8BITMIME".to_owned(),
            "SMTPUTF8".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if ctx.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_offered(ctx) && !self.authenticated {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }

    /// Checks an address from MAIL or RCPT: local part length first (a
    /// distinct reply), then syntax, then SMTPUTF8.
    fn address(&self, raw: &str, bad: [u8; 3]) -> Result<EmailAddress, Reply> {
        if let Some((local, _)) = raw.rsplit_once('@')
            && local.len() > MAX_LOCAL_PART
        {
            return Err(Reply::local_part_too_long(raw));
        }
        let addr = EmailAddress::parse(raw).map_err(|_| r(553, bad, &format!("<{raw}>: Bad address syntax")))?;
        if !raw.is_ascii() && !self.smtputf8 {
            return Err(r(
                553,
                [5, 6, 7],
                &format!("<{raw}>: Non-ASCII address requires SMTPUTF8"),
            ));
        }
        Ok(addr)
    }

    async fn mail(&mut self, from: smtp_proto::MailFrom<String>, ctx: &SessionContext) -> Reply {
        if self.helo.is_none() {
            return r(503, [5, 5, 1], "Send HELO or EHLO first");
        }
        if self.sender.is_some() {
            return r(503, [5, 5, 1], "Nested MAIL command");
        }
        if from.size > ctx.config.max_message_size {
            return Reply::too_big();
        }
        self.smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        let sender = if from.address.is_empty() {
            ReversePath::Null
        } else {
            match self.address(&from.address, [5, 1, 7]) {
                Ok(a) => ReversePath::Address(a),
                Err(reply) => return reply,
            }
        };
        if self.submission() && self.principal.is_none() {
            self.principal = ctx.ingress.relay_principal(self.peer.remote.ip()).await;
        }
        if let Some(p) = &self.principal
            && let Err(reply) = ctx.ingress.check_sender(p, &sender).await
        {
            return reply;
        }
        self.sender = Some(sender);
        r(250, [2, 1, 0], "Ok")
    }

    async fn rcpt(&mut self, to: smtp_proto::RcptTo<String>, ctx: &SessionContext) -> Reply {
        if self.sender.is_none() {
            return r(503, [5, 5, 1], "Need MAIL command");
        }
        if self.recipients.len() >= ctx.config.max_recipients {
            return r(452, [4, 5, 3], "Too many recipients");
        }
        let rcpt = match self.address(&to.address, [5, 1, 3]) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        if self.submission() && self.principal.is_none() {
            return Reply::relay_denied(&to.address);
        }
        if let Err(reply) = ctx
            .ingress
            .check_recipient(self.kind, self.principal.as_ref(), &rcpt)
            .await
        {
            return reply;
        }
        self.recipients.push(rcpt);
        r(250, [2, 1, 5], "Ok")
    }

    /// Refuses DATA or BDAT without a transaction; otherwise starts the body.
    fn begin_content(&mut self, ctx: &SessionContext) -> Option<Reply> {
        if self.sender.is_none() {
            return Some(r(503, [5, 5, 1], "Need MAIL command"));
        }
        if self.recipients.is_empty() {
            return Some(r(554, [5, 5, 1], "No valid recipients"));
        }
        if self.body.is_empty() {
            self.body = self.received_header(ctx);
            self.header_len = self.body.len();
        }
        None
    }

    fn content_len(&self) -> usize {
        self.body.len() - self.header_len
    }

    /// The whole message is in: hand it over, answer once it is durable.
    async fn finish_message(&mut self, ctx: &SessionContext) -> Reply {
        let (Some(sender), false) = (self.sender.take(), self.recipients.is_empty()) else {
            self.reset_transaction();
            return r(503, [5, 5, 1], "Need MAIL and RCPT commands");
        };
        let (size, recipients) = (self.content_len(), self.recipients.len());
        let incoming = Incoming {
            kind: self.kind,
            principal: self.principal.clone(),
            sender,
            recipients: std::mem::take(&mut self.recipients),
            client_ip: self.peer.remote.ip(),
            received_at: time::OffsetDateTime::now_utc(),
            body: std::mem::take(&mut self.body),
        };
        self.reset_transaction();
        match ctx.ingress.accept(incoming).await {
            Ok(id) => {
                crate::metrics::accepted(self.kind, size, recipients);
                r(250, [2, 0, 0], &format!("Ok: queued as {id}"))
            }
            Err(reply) => reply,
        }
    }

    async fn finish_auth(&mut self, creds: Option<sasl::Credentials>, ctx: &SessionContext) -> Reply {
        let ip = self.peer.remote.ip();
        let Some(creds) = creds else {
            crate::metrics::auth_failed(self.kind, "malformed");
            return r(501, [5, 5, 2], "Cannot decode the authentication data");
        };
        // Counted as a failure before anything is checked, so parallel
        // guesses all count; taken back only if this one succeeds.
        let Some(attempt) = ctx.throttle.begin(ip, &creds.username) else {
            crate::metrics::auth_failed(self.kind, "throttled");
            tracing::info!(client = %ip, username = %creds.username, "SMTP AUTH refused: too many failures");
            return Reply::auth_throttled();
        };
        match ctx.ingress.authenticate(&creds.username, &creds.password).await {
            Ok(principal) => {
                attempt.succeeded();
                tracing::debug!(client = %ip, account = %principal.name, "SMTP AUTH succeeded");
                self.principal = Some(principal);
                self.authenticated = true;
                Reply::auth_ok()
            }
            Err(AuthRefusal::Unavailable) => {
                // Not the client's failure.
                attempt.succeeded();
                r(454, [4, 7, 0], "Temporary authentication failure")
            }
            Err(refusal) => {
                drop(attempt);
                crate::metrics::auth_failed(
                    self.kind,
                    if refusal == AuthRefusal::Suspended {
                        "suspended"
                    } else {
                        "invalid"
                    },
                );
                tracing::info!(client = %ip, username = %creds.username, "SMTP AUTH failed");
                tokio::time::sleep(ctx.config.auth_failure_delay).await;
                if refusal == AuthRefusal::Suspended {
                    r(535, [5, 7, 8], "Authentication refused: account suspended")
                } else {
                    Reply::auth_invalid()
                }
            }
        }
    }

    /// AUTH: checks whether it may start, then either finishes at once
    /// (initial response) or asks for more.
    async fn auth(&mut self, mechanism: u64, initial: String, out: &mut Vec<u8>, ctx: &SessionContext) -> Option<Mode> {
        let refuse = |reply: Reply| (Some(reply), None);
        let (reply, mode) = if !self.submission() {
            refuse(r(503, [5, 5, 1], "AUTH not available on this port"))
        } else if self.authenticated {
            refuse(r(503, [5, 5, 1], "Already authenticated"))
        } else if self.sender.is_some() {
            refuse(r(503, [5, 5, 1], "AUTH not allowed during a mail transaction"))
        } else if !self.auth_offered(ctx) {
            refuse(r(
                538,
                [5, 7, 11],
                "Encryption required for requested authentication mechanism",
            ))
        } else if !ctx.throttle.allows(self.peer.remote.ip()) {
            crate::metrics::auth_failed(self.kind, "throttled");
            refuse(Reply::auth_throttled())
        } else if mechanism == AUTH_PLAIN {
            if initial.is_empty() {
                out.extend_from_slice(b"334 \r\n");
                (None, Some(Mode::AuthPlain(line_mode())))
            } else {
                (Some(self.finish_auth(sasl::plain(&initial), ctx).await), None)
            }
        } else if mechanism == AUTH_LOGIN {
            if initial.is_empty() {
                out.extend_from_slice(b"334 VXNlcm5hbWU6\r\n");
                (None, Some(Mode::AuthLoginUser(line_mode())))
            } else {
                match sasl::login_line(&initial) {
                    Some(user) => {
                        out.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                        (None, Some(Mode::AuthLoginPassword { user, rx: line_mode() }))
                    }
                    None => refuse(r(501, [5, 5, 2], "Cannot decode the authentication data")),
                }
            }
        } else {
            refuse(r(504, [5, 5, 4], "Unrecognized authentication type"))
        };
        if let Some(reply) = reply {
            self.reply(&reply, out, ctx);
        }
        mode
    }

    /// Handles one command; returns the mode to read the next bytes in.
    async fn command(&mut self, req: Request<String>, out: &mut Vec<u8>, ctx: &SessionContext) -> Mode {
        self.command = crate::metrics::command_name(&req);
        let reply = match req {
            Request::Ehlo { host } => {
                self.ehlo(host, out, ctx);
                crate::metrics::answered(self.kind, self.command, &Reply::ok());
                return command_mode();
            }
            Request::Helo { host } => {
                self.reset_transaction();
                self.helo = Some(host);
                self.esmtp = false;
                r(250, [2, 0, 0], &ctx.config.hostname)
            }
            Request::Mail { from } => self.mail(from, ctx).await,
            Request::Rcpt { to } => self.rcpt(to, ctx).await,
            Request::Data => match self.begin_content(ctx) {
                Some(refusal) => refusal,
                None => {
                    out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                    let mut rx = DataReceiver::new();
                    // A fresh receiver would not see the first line as
                    // following a line break (so ".\r\n" at once would be
                    // missed); prime it with one.
                    let mut scratch = Vec::new();
                    rx.ingest(&mut b"\r\n".iter(), &mut scratch);
                    return Mode::Data(rx);
                }
            },
            Request::Bdat { chunk_size, is_last } => return self.bdat(chunk_size, is_last, out, ctx).await,
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                return self
                    .auth(mechanism, initial_response, out, ctx)
                    .await
                    .unwrap_or_else(command_mode);
            }
            Request::StartTls => {
                if self.tls || ctx.tls.is_none() {
                    r(502, [5, 5, 1], "STARTTLS not available")
                } else {
                    out.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n");
                    crate::metrics::answered(self.kind, self.command, &Reply::ok());
                    self.start_tls = true;
                    return command_mode();
                }
            }
            Request::Rset => {
                self.reset_transaction();
                Reply::ok()
            }
            Request::Noop { .. } => Reply::ok(),
            Request::Quit => {
                out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                crate::metrics::answered(self.kind, self.command, &Reply::ok());
                self.closing = true;
                return command_mode();
            }
            Request::Vrfy { .. } => r(
                252,
                [2, 5, 2],
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::Help { .. } => r(214, [2, 0, 0], "Herald SMTP; see RFC 5321"),
            _ => r(502, [5, 5, 1], "Command not implemented"),
        };
        self.reply(&reply, out, ctx);
        command_mode()
    }

    async fn bdat(&mut self, size: usize, last: bool, out: &mut Vec<u8>, ctx: &SessionContext) -> Mode {
        if size > ctx.config.max_message_size {
            // A chunk larger than any message: reading past it to stay in
            // step would let one client stream without end, so the session
            // ends here (RFC 3030 §2 allows closing after a refusal).
            self.reset_transaction();
            Reply::too_big().write_to(out);
            crate::metrics::answered(self.kind, self.command, &Reply::too_big());
            r(421, [4, 7, 0], "Closing connection").write_to(out);
            self.closing = true;
            return command_mode();
        }
        // Overflow-safe: a chunk size near usize::MAX must not wrap.
        let refusal = self.begin_content(ctx).or_else(|| {
            self.content_len()
                .checked_add(size)
                .is_none_or(|total| total > ctx.config.max_message_size)
                .then(Reply::too_big)
        });
        if let Some(reply) = refusal {
            // The chunk's bytes still follow the command: read past them.
            self.reset_transaction();
            return Mode::DiscardBdat {
                rx: DummyDataReceiver::new_bdat(size),
                last,
                reply,
            };
        }
        if size == 0 {
            let reply = if last {
                self.finish_message(ctx).await
            } else {
                r(250, [2, 0, 0], "0 bytes received")
            };
            self.reply(&reply, out, ctx);
            return command_mode();
        }
        self.body.reserve(size);
        Mode::Bdat(BdatReceiver::new(size, last))
    }
}

/// Runs one session to its end: greeting, commands, and a STARTTLS upgrade
/// if the client asks for one. `tls` is true when the stream is already
/// encrypted (implicit TLS).
pub async fn run_session<S>(stream: S, peer: Peer, kind: ListenerKind, tls: bool, ctx: Arc<SessionContext>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session {
        peer,
        kind,
        tls,
        helo: None,
        esmtp: false,
        principal: None,
        authenticated: false,
        sender: None,
        smtputf8: false,
        recipients: Vec::new(),
        body: Vec::new(),
        header_len: 0,
        errors: 0,
        closing: false,
        start_tls: false,
        command: "connect",
    };
    let _open = crate::metrics::Open::session(kind);
    let greeting = format!("220 {} ESMTP Herald\r\n", ctx.config.hostname);
    let Outcome::StartTls(plain) = drive(&mut session, stream, greeting.into_bytes(), &ctx).await else {
        return;
    };
    let Some(acceptor) = ctx.tls.clone() else { return };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(plain)).await {
        Ok(Ok(encrypted)) => {
            session.reset_for_tls();
            // STARTTLS cannot be offered again, so this ends the session.
            let _ = drive(&mut session, encrypted, Vec::new(), &ctx).await;
        }
        Ok(Err(e)) => {
            crate::metrics::closed(kind, "tls_failed");
            tracing::debug!(client = %peer.remote, error = %e, "STARTTLS handshake failed");
        }
        Err(_) => {
            crate::metrics::closed(kind, "tls_failed");
            tracing::debug!(client = %peer.remote, "STARTTLS handshake timed out");
        }
    }
}

fn map_parse_error(e: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => r(500, [5, 5, 2], "Command unrecognized"),
        E::SyntaxError { syntax } => r(501, [5, 5, 4], &format!("Syntax: {syntax}")),
        E::InvalidSenderAddress => r(553, [5, 1, 7], "Bad sender address syntax"),
        E::InvalidRecipientAddress => r(553, [5, 1, 3], "Bad recipient address syntax"),
        E::InvalidParameter { param } => r(501, [5, 5, 4], &format!("Invalid parameter {param}")),
        E::UnsupportedParameter { param } => r(504, [5, 5, 4], &format!("Unsupported parameter {param}")),
        E::ResponseTooLong => r(500, [5, 5, 2], "Line too long"),
        _ => r(500, [5, 5, 2], "Syntax error"),
    }
}

/// Reads and answers until the session closes or asks for TLS.
async fn drive<S>(s: &mut Session, mut stream: S, mut out: Vec<u8>, ctx: &SessionContext) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut buf = vec![0u8; READ_BUFFER];
    let mut mode = command_mode();
    loop {
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
                return Outcome::Closed;
            }
            out.clear();
        }
        if s.closing {
            let _ = stream.shutdown().await;
            return Outcome::Closed;
        }
        if s.start_tls {
            return Outcome::StartTls(stream);
        }
        let in_content = matches!(
            mode,
            Mode::Data(_) | Mode::DiscardData(_) | Mode::Bdat(_) | Mode::DiscardBdat { .. }
        );
        let wait = if in_content {
            ctx.config.data_timeout
        } else {
            ctx.config.command_timeout
        };
        let n = match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => {
                r(421, [4, 4, 2], "Timeout; closing connection").write_to(&mut out);
                crate::metrics::closed(s.kind, "timeout");
                s.closing = true;
                continue;
            }
            Ok(Ok(0) | Err(_)) => return Outcome::Closed,
            Ok(Ok(n)) => n,
        };
        let mut bytes = buf[..n].iter();
        while bytes.len() > 0 && !s.closing && !s.start_tls {
            mode = match mode {
                Mode::Command(mut rx) => match rx.ingest(&mut bytes) {
                    Ok(req) => s.command(req.into_owned(), &mut out, ctx).await,
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => Mode::Command(rx),
                    Err(e @ smtp_proto::Error::ResponseTooLong) => {
                        s.command = "invalid";
                        s.reply(&map_parse_error(&e), &mut out, ctx);
                        Mode::SkipLine(DummyLineReceiver::default())
                    }
                    Err(e) => {
                        s.command = "invalid";
                        s.reply(&map_parse_error(&e), &mut out, ctx);
                        Mode::Command(rx)
                    }
                },
                Mode::SkipLine(mut rx) => {
                    if rx.ingest(&mut bytes) {
                        command_mode()
                    } else {
                        Mode::SkipLine(rx)
                    }
                }
                Mode::Data(mut rx) => {
                    let complete = rx.ingest(&mut bytes, &mut s.body);
                    let too_big = s.content_len() > ctx.config.max_message_size;
                    if complete {
                        let reply = if too_big {
                            s.reset_transaction();
                            Reply::too_big()
                        } else {
                            s.finish_message(ctx).await
                        };
                        s.reply(&reply, &mut out, ctx);
                        command_mode()
                    } else if too_big {
                        s.body = Vec::new();
                        Mode::DiscardData(DummyDataReceiver::new_data(&rx))
                    } else {
                        Mode::Data(rx)
                    }
                }
                Mode::DiscardData(mut rx) => {
                    if rx.ingest(&mut bytes) {
                        s.reset_transaction();
                        s.reply(&Reply::too_big(), &mut out, ctx);
                        command_mode()
                    } else {
                        Mode::DiscardData(rx)
                    }
                }
                Mode::Bdat(mut rx) => {
                    if rx.ingest(&mut bytes, &mut s.body) {
                        let reply = if rx.is_last {
                            s.finish_message(ctx).await
                        } else {
                            r(250, [2, 0, 0], "Chunk received")
                        };
                        s.reply(&reply, &mut out, ctx);
                        command_mode()
                    } else {
                        Mode::Bdat(rx)
                    }
                }
                Mode::DiscardBdat { mut rx, last, reply } => {
                    if rx.ingest(&mut bytes) {
                        // After a refused chunk the rest of the message is
                        // refused too; the transaction is already reset.
                        let _ = last;
                        s.reply(&reply, &mut out, ctx);
                        command_mode()
                    } else {
                        Mode::DiscardBdat { rx, last, reply }
                    }
                }
                Mode::AuthPlain(mut rx) => {
                    if rx.ingest(&mut bytes) {
                        let line = String::from_utf8_lossy(&rx.buf).trim().to_owned();
                        let reply = if line == "*" {
                            r(501, [5, 0, 0], "Authentication cancelled")
                        } else {
                            s.finish_auth(sasl::plain(&line), ctx).await
                        };
                        s.reply(&reply, &mut out, ctx);
                        command_mode()
                    } else {
                        Mode::AuthPlain(rx)
                    }
                }
                Mode::AuthLoginUser(mut rx) => {
                    if rx.ingest(&mut bytes) {
                        let line = String::from_utf8_lossy(&rx.buf).trim().to_owned();
                        match sasl::login_line(&line).filter(|_| line != "*") {
                            Some(user) => {
                                out.extend_from_slice(b"334 UGFzc3dvcmQ6\r\n");
                                Mode::AuthLoginPassword { user, rx: line_mode() }
                            }
                            None => {
                                s.reply(&r(501, [5, 0, 0], "Authentication cancelled"), &mut out, ctx);
                                command_mode()
                            }
                        }
                    } else {
                        Mode::AuthLoginUser(rx)
                    }
                }
                Mode::AuthLoginPassword { user, mut rx } => {
                    if rx.ingest(&mut bytes) {
                        let line = String::from_utf8_lossy(&rx.buf).trim().to_owned();
                        let reply = match sasl::login_line(&line).filter(|_| line != "*") {
                            Some(password) => {
                                let creds = sasl::Credentials {
                                    username: user,
                                    password,
                                };
                                s.finish_auth(Some(creds), ctx).await
                            }
                            None => r(501, [5, 0, 0], "Authentication cancelled"),
                        };
                        s.reply(&reply, &mut out, ctx);
                        command_mode()
                    } else {
                        Mode::AuthLoginPassword { user, rx }
                    }
                }
            };
        }
        // RFC 3207 §4.2 / CVE-2011-0411: anything pipelined after STARTTLS
        // arrived in clear and is dropped, never read as commands under TLS.
    }
}
