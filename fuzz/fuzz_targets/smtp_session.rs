//! One SMTP session, driven by the fuzz input as everything the client
//! sends: commands, pipelined groups, DATA and BDAT content, AUTH PLAIN and
//! LOGIN lines, STARTTLS followed by whatever bytes (a TLS ClientHello or
//! not). The client's side is closed after the last byte, so every session
//! ends; the clock is tokio's paused one, so the session's time-outs fire
//! at once and in the same place on every run.
//!
//! The first input byte picks the set-up (the rest is the client's bytes):
//! - bits 0-1: the listener: 0 submission, 1 inbound, 2 implicit-TLS
//!   submission (the session is told the stream is encrypted), 3 inbound;
//! - bit 2: a certificate is configured, so STARTTLS is offered;
//! - bit 3: AUTH is refused before TLS (the production default); otherwise
//!   allowed, so AUTH is reachable without a handshake;
//! - bit 4: the client's address is not a trusted relay network;
//! - bits 5-7: the in-memory pipe's capacity (64 KiB, 1, 16, 4096, 3, 64,
//!   512, 64 KiB), so the bytes reach the session in reads of different
//!   sizes (commands split across reads).
//!   Printable seeds: '@' (0x40) is submission, relay allowed, AUTH
//!   allowed, 16-byte reads; 'A' the same inbound; 'D' with STARTTLS.
//!
//! Checked on every run, besides "does not panic":
//! - a message handed to `Ingress::accept` has 1..=max_recipients
//!   recipients, is no larger than the limit (plus the Received header),
//!   and carries the principal of its listener kind;
//! - every line the server writes before a STARTTLS upgrade is an SMTP
//!   reply line (three digits then a space or a dash, CRLF-terminated).

#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use herald_smtp_server::{
    AuthRefusal, AuthThrottle, Incoming, Ingress, ListenerKind, Peer, Principal, Reply, SessionConfig, SessionContext,
    run_session,
};
use herald_types::{AccountId, EmailAddress, MessageId, ReversePath};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const MAX_MESSAGE_SIZE: usize = 100_000;
const MAX_RECIPIENTS: usize = 5;
/// Herald's Received header: a HELO name cut to 255 characters, the
/// address, the host name, the protocol and a date.
const MAX_RECEIVED_HEADER: usize = 512;
const PIPE_SIZES: [usize; 8] = [64 * 1024, 1, 16, 4096, 3, 64, 512, 64 * 1024];

fn principal(name: &str) -> Principal {
    Principal {
        account: AccountId::parse("acc_0000000000000000000000000000000a").expect("a valid account id"),
        name: name.to_owned(),
    }
}

/// Accepts everything: alice/secret authenticate, every sender and
/// recipient is taken, every message is queued.
struct AcceptAll {
    kind: ListenerKind,
    relay: bool,
}

#[async_trait]
impl Ingress for AcceptAll {
    async fn authenticate(&self, username: &str, password: &str) -> Result<Principal, AuthRefusal> {
        match (username, password) {
            ("alice", "secret") => Ok(principal("alice")),
            _ => Err(AuthRefusal::Invalid),
        }
    }

    async fn relay_principal(&self, _ip: IpAddr) -> Option<Principal> {
        self.relay.then(|| principal("relay"))
    }

    async fn check_sender(&self, _principal: &Principal, _sender: &ReversePath) -> Result<(), Reply> {
        Ok(())
    }

    async fn check_recipient(
        &self,
        _kind: ListenerKind,
        _principal: Option<&Principal>,
        _rcpt: &EmailAddress,
    ) -> Result<(), Reply> {
        Ok(())
    }

    async fn accept(&self, message: Incoming) -> Result<MessageId, Reply> {
        assert_eq!(message.kind, self.kind, "the message's listener kind");
        assert!(
            (1..=MAX_RECIPIENTS).contains(&message.recipients.len()),
            "accepted with {} recipients (limit {MAX_RECIPIENTS})",
            message.recipients.len()
        );
        assert!(
            message.body.len() <= MAX_MESSAGE_SIZE + MAX_RECEIVED_HEADER,
            "accepted a message of {} bytes (limit {MAX_MESSAGE_SIZE})",
            message.body.len()
        );
        assert!(message.body.starts_with(b"Received: "), "the Received header comes first");
        match self.kind {
            ListenerKind::Inbound => assert!(message.principal.is_none(), "a principal on the inbound listener"),
            _ => assert!(message.principal.is_some(), "a submission without a principal"),
        }
        Ok(MessageId::parse("msg_0000000000000000000000000000000b").expect("a valid message id"))
    }
}

fn tls_acceptor() -> TlsAcceptor {
    static ACCEPTOR: OnceLock<TlsAcceptor> = OnceLock::new();
    ACCEPTOR
        .get_or_init(|| {
            // A self-signed P-256 certificate made for this fuzz target
            // only; its key protects nothing.
            let cert = rustls::pki_types::CertificateDer::from(&include_bytes!("../testdata/test-only-cert.der")[..]);
            let key = rustls::pki_types::PrivateKeyDer::try_from(&include_bytes!("../testdata/test-only-key.der")[..])
                .expect("a PKCS#8 key");
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert.into_owned()], key.clone_key())
                .expect("the test certificate");
            TlsAcceptor::from(Arc::new(config))
        })
        .clone()
}

/// Every line before a STARTTLS upgrade must be one SMTP reply line.
fn check_replies(out: &[u8]) {
    const READY: &[u8] = b"220 2.0.0 Ready to start TLS\r\n";
    let end = out
        .windows(READY.len())
        .position(|w| w == READY)
        .map_or(out.len(), |i| i + READY.len());
    let smtp = &out[..end];
    assert!(smtp.is_empty() || smtp.ends_with(b"\r\n"), "output ends mid-line: {:?}", String::from_utf8_lossy(smtp));
    for line in smtp.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let ok = line.ends_with(b"\r")
            && line.len() >= 5
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[0], b'2'..=b'5')
            && matches!(line[3], b' ' | b'-')
            && !line[..line.len() - 1].contains(&b'\r');
        assert!(ok, "not an SMTP reply line: {:?}", String::from_utf8_lossy(line));
    }
}

fn session(flags: u8, client_bytes: &[u8]) {
    let (kind, implicit_tls) = match flags & 3 {
        0 => (ListenerKind::Submission, false),
        2 => (ListenerKind::SubmissionTls, true),
        _ => (ListenerKind::Inbound, false),
    };
    let offer_starttls = flags & 4 != 0;
    let allow_auth_without_tls = flags & 8 == 0;
    let relay = flags & 16 == 0;
    let pipe = PIPE_SIZES[usize::from(flags >> 5)];

    let ctx = Arc::new(SessionContext {
        config: Arc::new(SessionConfig {
            hostname: "mx.herald.test".to_owned(),
            max_message_size: MAX_MESSAGE_SIZE,
            max_recipients: MAX_RECIPIENTS,
            max_errors: 10,
            command_timeout: Duration::from_millis(50),
            data_timeout: Duration::from_millis(50),
            allow_auth_without_tls,
            auth_failure_delay: Duration::ZERO,
        }),
        ingress: Arc::new(AcceptAll { kind, relay }),
        tls: offer_starttls.then(tls_acceptor),
        // Fresh per run: no run's failures lock out the next.
        throttle: AuthThrottle::new(3, 5, Duration::from_secs(600)),
    });
    let peer = Peer {
        remote: SocketAddr::from(([192, 0, 2, 1], 40000)),
        local: SocketAddr::from(([192, 0, 2, 25], 587)),
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    let output = runtime.block_on(async {
        let (client, server) = tokio::io::duplex(pipe);
        let (mut client_rx, mut client_tx) = tokio::io::split(client);
        let server = run_session(server, peer, kind, implicit_tls, ctx);
        let write = async move {
            // Fails once the server has closed; what is left unsent is
            // what a real client would have lost too.
            let _ = client_tx.write_all(client_bytes).await;
            let _ = client_tx.shutdown().await;
            client_tx
        };
        let read = async move {
            let mut out = Vec::new();
            let _ = client_rx.read_to_end(&mut out).await;
            out
        };
        // Bounds a session that waits on something forever; on the paused
        // clock this costs no real time.
        let all = async {
            let ((), _tx, out) = tokio::join!(server, write, read);
            out
        };
        tokio::time::timeout(Duration::from_secs(3600), all)
            .await
            .expect("the session ended (client closed, time-outs 50 ms)")
    });
    if std::env::var_os("HERALD_FUZZ_DEBUG").is_some() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("--- server wrote:\n{}", String::from_utf8_lossy(&output));
        }
    }
    check_replies(&output);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, client_bytes)) = data.split_first() else {
        return;
    };
    session(flags, client_bytes);
});
