//! SMTP sessions in memory: bytes in, exact replies out.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_smtp_server::{
    AuthRefusal, AuthThrottle, Incoming, Ingress, ListenerKind, Peer, Principal, Reply, SessionConfig, SessionContext,
    run_session,
};
use herald_types::{AccountId, EmailAddress, MessageId, ReversePath};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

/// Credentials alice/secret; "frozen"/secret is suspended. Clients from
/// 10.0.0.0/8 relay as "relayer". Senders must be @acme.test. Inbound takes
/// only bounces@herald.test. Recipients at fail.test make accept fail.
#[derive(Default)]
struct FakeIngress {
    accepted: Mutex<Vec<Incoming>>,
}

fn principal(name: &str) -> Principal {
    Principal {
        account: AccountId::generate(),
        name: name.into(),
    }
}

#[async_trait]
impl Ingress for FakeIngress {
    async fn authenticate(&self, username: &str, password: &str) -> Result<Principal, AuthRefusal> {
        match (username, password) {
            ("alice", "secret") => Ok(principal("acme")),
            ("frozen", "secret") => Err(AuthRefusal::Suspended),
            _ => Err(AuthRefusal::Invalid),
        }
    }

    async fn relay_principal(&self, ip: IpAddr) -> Option<Principal> {
        matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10).then(|| principal("relayer"))
    }

    async fn check_sender(&self, _: &Principal, sender: &ReversePath) -> Result<(), Reply> {
        match sender {
            ReversePath::Address(a) if a.domain().as_str() == "acme.test" => Ok(()),
            other => Err(Reply::sender_not_approved(&other.to_string())),
        }
    }

    async fn check_recipient(
        &self,
        kind: ListenerKind,
        _: Option<&Principal>,
        rcpt: &EmailAddress,
    ) -> Result<(), Reply> {
        if kind == ListenerKind::Inbound && rcpt.to_string() != "bounces@herald.test" {
            return Err(Reply::new(
                550,
                [5, 7, 1],
                format!("<{rcpt}>: Recipient not handled here"),
            ));
        }
        Ok(())
    }

    async fn accept(&self, message: Incoming) -> Result<MessageId, Reply> {
        if message.recipients.iter().any(|r| r.domain().as_str() == "fail.test") {
            return Err(Reply::try_later());
        }
        self.accepted.lock().unwrap().push(message);
        Ok(MessageId::generate())
    }
}

struct Harness {
    ingress: Arc<FakeIngress>,
    config: SessionConfig,
    throttle: Arc<AuthThrottle>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

fn harness() -> Harness {
    Harness {
        ingress: Arc::new(FakeIngress::default()),
        config: SessionConfig {
            hostname: "mx.herald.test".into(),
            max_message_size: 10_000,
            max_recipients: 3,
            auth_failure_delay: Duration::ZERO,
            ..SessionConfig::default()
        },
        throttle: AuthThrottle::new(3, 5, Duration::from_secs(600)),
        tls: None,
    }
}

impl Harness {
    /// Starts a session from `client_ip`; returns the client's end.
    fn connect(&self, kind: ListenerKind, client_ip: &str) -> Client<DuplexStream> {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let ctx = Arc::new(SessionContext {
            config: Arc::new(self.config.clone()),
            ingress: self.ingress.clone(),
            tls: self.tls.clone(),
            throttle: self.throttle.clone(),
        });
        let peer = Peer {
            remote: SocketAddr::new(client_ip.parse().unwrap(), 40000),
            local: "127.0.0.1:587".parse().unwrap(),
        };
        tokio::spawn(run_session(
            server,
            peer,
            kind,
            kind == ListenerKind::SubmissionTls,
            ctx,
        ));
        Client {
            io: client,
            pending: String::new(),
        }
    }

    fn accepted(&self) -> Vec<Incoming> {
        std::mem::take(&mut *self.ingress.accepted.lock().unwrap())
    }
}

struct Client<S> {
    io: S,
    pending: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Reads `n` complete replies (multi-line ones count once).
    async fn replies(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while out.len() < n {
            if let Some(end) = self.pending.find("\r\n") {
                let line: String = self.pending.drain(..end + 2).collect();
                let line = line.trim_end().to_owned();
                // "250-…" continues a reply; "250 …" ends it.
                if line.as_bytes().get(3) == Some(&b'-') {
                    continue;
                }
                out.push(line);
                continue;
            }
            let read = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut buf)).await;
            let k = read.expect("a reply within 10 s").unwrap();
            assert!(k > 0, "connection closed; got so far: {out:?}");
            self.pending.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        out
    }

    /// Every line of the next reply, for EHLO.
    async fn lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = self.pending.find("\r\n") {
                let line: String = self.pending.drain(..end + 2).collect();
                let line = line.trim_end().to_owned();
                let last = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line);
                if last {
                    return lines;
                }
                continue;
            }
            let k = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(k > 0);
            self.pending.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
    }

    async fn send(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.unwrap();
    }

    /// Sends `text` and returns the next `n` replies.
    async fn say(&mut self, text: &str, n: usize) -> Vec<String> {
        self.send(text).await;
        self.replies(n).await
    }

    async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut buf)).await,
            Ok(Ok(0))
        )
    }
}

/// Each reply's code, and its enhanced code when it has one: "250 2.1.0", "354".
fn codes(replies: &[String]) -> Vec<String> {
    replies
        .iter()
        .map(|r| {
            let mut words = r.split(' ');
            let code = words.next().unwrap_or_default();
            match words.next() {
                Some(e) if e.split('.').count() == 3 && e.split('.').all(|p| p.parse::<u16>().is_ok()) => {
                    format!("{code} {e}")
                }
                _ => code.to_owned(),
            }
        })
        .collect()
}

async fn greeted(h: &Harness, kind: ListenerKind, ip: &str) -> Client<DuplexStream> {
    let mut c = h.connect(kind, ip);
    assert_eq!(c.replies(1).await, ["220 mx.herald.test ESMTP Herald"]);
    c
}

#[tokio::test]
async fn pipelined_submission_from_a_trusted_network() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.1.2.3").await;
    let ehlo = c.say("EHLO client.test\r\n", 0).await;
    assert!(ehlo.is_empty());
    let lines = c.lines().await;
    for cap in [
        "PIPELINING",
        "SIZE 10000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
    ] {
        assert!(lines.iter().any(|l| l.ends_with(cap)), "{cap} missing from {lines:?}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("AUTH")),
        "no AUTH without TLS: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("STARTTLS")),
        "no STARTTLS without a certificate"
    );

    let replies = c
        .say("MAIL FROM:<news@acme.test> BODY=8BITMIME\r\nRCPT TO:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n", 4)
        .await;
    assert_eq!(codes(&replies), ["250 2.1.0", "250 2.1.5", "250 2.1.5", "354"]);
    let done = c
        .say("Subject: hi\r\n\r\n..a line starting with a dot\r\nbye\r\n.\r\n", 1)
        .await;
    assert!(done[0].starts_with("250 2.0.0 Ok: queued as msg_"), "{done:?}");
    let got = h.accepted();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.principal.as_ref().unwrap().name, "relayer");
    assert_eq!(m.sender.to_string(), "news@acme.test");
    assert_eq!(m.recipients.len(), 2);
    let body = String::from_utf8(m.body.clone()).unwrap();
    assert!(
        body.starts_with("Received: from client.test ([10.1.2.3])\r\n\tby mx.herald.test (Herald) with ESMTP;"),
        "{body}"
    );
    assert!(
        body.ends_with("Subject: hi\r\n\r\n.a line starting with a dot\r\nbye\r\n"),
        "unstuffed: {body:?}"
    );
    assert_eq!(c.say("QUIT\r\n", 1).await, ["221 2.0.0 Bye"]);
    assert!(c.closed().await);
}

#[tokio::test]
async fn relay_without_auth_from_an_untrusted_network_is_denied() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c
        .say("MAIL FROM:<news@acme.test>\r\nRCPT TO:<a@example.net>\r\n", 2)
        .await;
    assert_eq!(r[1], "554 5.7.1 <a@example.net>: Relay access denied");
    assert_eq!(codes(&c.say("DATA\r\n", 1).await), ["554 5.5.1"]);
}

#[tokio::test]
async fn auth_needs_tls_unless_allowed() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c.say("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 1).await;
    assert_eq!(codes(&r), ["538 5.7.11"]);
}

#[tokio::test]
async fn auth_plain_and_login_with_right_and_wrong_credentials() {
    let mut h = harness();
    h.config.allow_auth_without_tls = true;
    let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.1").await;
    c.send("EHLO x\r\n").await;
    assert!(c.lines().await.iter().any(|l| l.ends_with("AUTH PLAIN LOGIN")));
    // "\0alice\0wrong"
    assert_eq!(
        c.say("AUTH PLAIN AGFsaWNlAHdyb25n\r\n", 1).await,
        ["535 5.7.8 Authentication credentials invalid"]
    );
    // LOGIN: alice / secret
    assert_eq!(c.say("AUTH LOGIN\r\n", 1).await, ["334 VXNlcm5hbWU6"]);
    assert_eq!(c.say("YWxpY2U=\r\n", 1).await, ["334 UGFzc3dvcmQ6"]);
    assert_eq!(c.say("c2VjcmV0\r\n", 1).await, ["235 2.7.0 Authentication successful"]);
    let r = c
        .say(
            "MAIL FROM:<billing@acme.test>\r\nRCPT TO:<a@example.net>\r\nDATA\r\nHi\r\n.\r\n",
            4,
        )
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0"]);
    assert!(
        String::from_utf8(h.accepted()[0].body.clone())
            .unwrap()
            .contains("with ESMTPA;")
    );

    // PLAIN without initial response; suspended account.
    let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.2").await;
    c.say("EHLO x\r\n", 1).await;
    assert_eq!(c.say("AUTH PLAIN\r\n", 1).await, ["334"]);
    // "\0frozen\0secret"
    assert_eq!(
        c.say("AGZyb3plbgBzZWNyZXQ=\r\n", 1).await,
        ["535 5.7.8 Authentication refused: account suspended"]
    );
    assert_eq!(codes(&c.say("AUTH CRAM-MD5\r\n", 1).await), ["504 5.5.4"]);
}

#[tokio::test]
async fn repeated_auth_failures_are_throttled_per_user_and_address() {
    let mut h = harness();
    h.config.allow_auth_without_tls = true;
    let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.66").await;
    c.say("EHLO x\r\n", 1).await;
    for _ in 0..3 {
        // "\0alice\0wrong"
        assert_eq!(codes(&c.say("AUTH PLAIN AGFsaWNlAHdyb25n\r\n", 1).await), ["535 5.7.8"]);
    }
    // Even the right password is not checked now, for alice from here.
    assert_eq!(
        codes(&c.say("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 1).await),
        ["454 4.7.0"]
    );
    // Another user at the same address is not locked out by alice's
    // guesser, until the address's own limit (5) is reached.
    let mut same_ip = greeted(&h, ListenerKind::Submission, "192.0.2.66").await;
    same_ip.say("EHLO x\r\n", 1).await;
    // "\0bob\0wrong" twice: the address reaches 5 failures.
    for _ in 0..2 {
        assert_eq!(
            codes(&same_ip.say("AUTH PLAIN AGJvYgB3cm9uZw==\r\n", 1).await),
            ["535 5.7.8"]
        );
    }
    assert_eq!(
        codes(&same_ip.say("AUTH PLAIN AGJvYgB3cm9uZw==\r\n", 1).await),
        ["454 4.7.0"],
        "the address's limit"
    );
    let mut other = greeted(&h, ListenerKind::Submission, "192.0.2.67").await;
    other.say("EHLO x\r\n", 1).await;
    assert_eq!(
        codes(&other.say("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 1).await),
        ["235 2.7.0"]
    );
}

#[tokio::test]
async fn a_bdat_chunk_larger_than_any_message_ends_the_session() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    c.say("MAIL FROM:<ok@acme.test>\r\n", 1).await;
    c.say("RCPT TO:<a@example.net>\r\n", 1).await;
    // A size past 64 bits is refused by the parser itself.
    let r = c.say("BDAT 18446744073709551616 LAST\r\n", 1).await;
    assert_eq!(codes(&r), ["501 5.5.4"]);
    // One that parses but is larger than any message closes the session
    // rather than reading gigabytes to stay in step.
    let r = c.say("BDAT 4294967296 LAST\r\n", 2).await;
    assert_eq!(codes(&r), ["552 5.3.4", "421 4.7.0"]);
}

#[tokio::test]
async fn unapproved_senders_and_long_local_parts_are_refused() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    assert_eq!(
        c.say("MAIL FROM:<ceo@other.test>\r\n", 1).await,
        ["550 5.7.1 <ceo@other.test>: Sender address not approved for this account"]
    );
    let long = "l".repeat(65);
    let r = c.say(&format!("MAIL FROM:<{long}@acme.test>\r\n"), 1).await;
    assert_eq!(codes(&r), ["553 5.1.3"]);
    c.say("MAIL FROM:<ok@acme.test>\r\n", 1).await;
    let r = c.say(&format!("RCPT TO:<{long}@example.net>\r\n"), 1).await;
    assert_eq!(
        r,
        [format!(
            "553 5.1.3 <{long}@example.net>: Local part longer than 64 octets"
        )]
    );
    let exact = "l".repeat(64);
    assert_eq!(
        codes(&c.say(&format!("RCPT TO:<{exact}@example.net>\r\n"), 1).await),
        ["250 2.1.5"]
    );
    let r = c.say("RCPT TO:<用户@example.net>\r\n", 1).await;
    assert_eq!(codes(&r), ["553 5.6.7"], "non-ASCII without SMTPUTF8");
}

#[tokio::test]
async fn smtputf8_addresses_are_taken_when_declared() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c
        .say(
            "MAIL FROM:<news@acme.test> SMTPUTF8\r\nRCPT TO:<用户@例子.广告>\r\nDATA\r\nx\r\n.\r\n",
            4,
        )
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0"]);
    assert_eq!(h.accepted()[0].recipients[0].to_string(), "用户@例子.广告");
}

#[tokio::test]
async fn size_limits_are_enforced_declared_and_actual() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    assert_eq!(
        c.say("MAIL FROM:<a@acme.test> SIZE=20000\r\n", 1).await,
        ["552 5.3.4 Message size exceeds fixed maximum message size"]
    );
    let r = c
        .say("MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n", 3)
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "250 2.1.5", "354"]);
    let big = format!("{}\r\n.\r\n", "x".repeat(12_000));
    assert_eq!(codes(&c.say(&big, 1).await), ["552 5.3.4"]);
    assert!(h.accepted().is_empty());
    // The session goes on.
    let r = c
        .say(
            "MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nsmall\r\n.\r\n",
            4,
        )
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "250 2.1.5", "354", "250 2.0.0"]);
}

#[tokio::test]
async fn bdat_chunks_make_one_message() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c
        .say(
            "MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nBDAT 12\r\nSubject: x\r\nBDAT 6 LAST\r\n\r\nbody",
            4,
        )
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0"]);
    assert!(r[3].contains("queued as"), "{r:?}");
    let body = String::from_utf8(h.accepted()[0].body.clone()).unwrap();
    assert!(body.ends_with("Subject: x\r\n\r\nbody"), "{body:?}");
    // BDAT with no transaction: its bytes are skipped, then refused.
    assert_eq!(codes(&c.say("BDAT 5 LAST\r\nhello", 1).await), ["503 5.5.1"]);
    assert_eq!(c.say("NOOP\r\n", 1).await, ["250 2.0.0 Ok"]);
}

#[tokio::test]
async fn recipient_and_error_limits() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c.say("MAIL FROM:<a@acme.test>\r\nRCPT TO:<1@x.test>\r\nRCPT TO:<2@x.test>\r\nRCPT TO:<3@x.test>\r\nRCPT TO:<4@x.test>\r\n", 5).await;
    assert_eq!(codes(&r)[4], "452 4.5.3");
    // Ten refused commands close the session.
    let mut refused = 0;
    for _ in 0..9 {
        refused += c.say("BOGUS\r\n", 1).await.len();
    }
    assert_eq!(refused, 9);
    let last = c.say("BOGUS\r\n", 2).await;
    assert_eq!(codes(&last), ["500 5.5.2", "421 4.7.0"]);
    assert!(c.closed().await);
}

#[tokio::test]
async fn an_idle_client_is_timed_out() {
    let mut h = harness();
    h.config.command_timeout = Duration::from_millis(200);
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    assert_eq!(c.replies(1).await, ["421 4.4.2 Timeout; closing connection"]);
    assert!(c.closed().await);
}

#[tokio::test]
async fn the_inbound_listener_takes_only_managed_addresses_and_no_auth() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Inbound, "203.0.113.5").await;
    c.send("EHLO mx.remote.test\r\n").await;
    assert!(!c.lines().await.iter().any(|l| l.contains("AUTH")));
    assert_eq!(
        codes(&c.say("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 1).await),
        ["503 5.5.1"]
    );
    let r = c
        .say(
            "MAIL FROM:<>\r\nRCPT TO:<someone@herald.test>\r\nRCPT TO:<bounces@herald.test>\r\nDATA\r\nbounce\r\n.\r\n",
            5,
        )
        .await;
    assert_eq!(codes(&r), ["250 2.1.0", "550 5.7.1", "250 2.1.5", "354", "250 2.0.0"]);
    let got = h.accepted();
    assert_eq!(got[0].sender, ReversePath::Null);
    assert!(got[0].principal.is_none());
}

#[tokio::test]
async fn a_storage_failure_is_a_temporary_refusal() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    c.say("EHLO x\r\n", 1).await;
    let r = c
        .say("MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@fail.test>\r\nDATA\r\n.\r\n", 4)
        .await;
    assert_eq!(r[3], "451 4.3.0 Temporary failure; try again later");
    // An empty message is a message.
    let r = c
        .say("MAIL FROM:<a@acme.test>\r\nRCPT TO:<x@ok.test>\r\nDATA\r\n.\r\n", 4)
        .await;
    assert_eq!(codes(&r)[3], "250 2.0.0");
}

#[tokio::test]
async fn commands_need_their_order() {
    let h = harness();
    let mut c = greeted(&h, ListenerKind::Submission, "10.0.0.1").await;
    assert_eq!(
        c.say("MAIL FROM:<a@acme.test>\r\n", 1).await,
        ["503 5.5.1 Send HELO or EHLO first"]
    );
    c.say("HELO x\r\n", 1).await;
    assert_eq!(
        c.say("RCPT TO:<a@b.test>\r\n", 1).await,
        ["503 5.5.1 Need MAIL command"]
    );
    assert_eq!(codes(&c.say("DATA\r\n", 1).await), ["503 5.5.1"]);
    let r = c.say("MAIL FROM:<a@acme.test>\r\nMAIL FROM:<a@acme.test>\r\n", 2).await;
    assert_eq!(r[1], "503 5.5.1 Nested MAIL command");
    assert_eq!(codes(&c.say("RSET\r\nVRFY x\r\n", 2).await), ["250 2.0.0", "252 2.5.2"]);
}

mod tls {
    use super::*;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    fn configs() -> (tokio_rustls::TlsAcceptor, tokio_rustls::TlsConnector) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let made = rcgen::generate_simple_self_signed(vec!["mx.herald.test".into()]).unwrap();
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (
            tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            tokio_rustls::TlsConnector::from(Arc::new(client)),
        )
    }

    #[tokio::test]
    async fn starttls_then_auth_and_injected_commands_are_dropped() {
        let (acceptor, connector) = configs();
        let mut h = harness();
        h.tls = Some(acceptor);
        let mut c = greeted(&h, ListenerKind::Submission, "192.0.2.1").await;
        c.send("EHLO x\r\n").await;
        let before = c.lines().await;
        assert!(before.iter().any(|l| l.ends_with("STARTTLS")), "{before:?}");
        assert!(!before.iter().any(|l| l.contains("AUTH")));
        // A man in the middle appends a command after STARTTLS in clear.
        assert_eq!(c.say("STARTTLS\r\nRSET\r\n", 1).await, ["220 2.0.0 Ready to start TLS"]);
        let name = ServerName::try_from("mx.herald.test").unwrap();
        let tls = connector.connect(name, c.io).await.unwrap();
        let mut c = Client {
            io: tls,
            pending: String::new(),
        };
        c.send("EHLO x\r\n").await;
        let after = c.lines().await;
        assert_eq!(
            after[0], "250-mx.herald.test",
            "the injected RSET got no reply: {after:?}"
        );
        assert!(after.iter().any(|l| l.ends_with("AUTH PLAIN LOGIN")));
        assert!(!after.iter().any(|l| l.contains("STARTTLS")));
        assert_eq!(
            codes(&c.say("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 1).await),
            ["235 2.7.0"]
        );
        let r = c
            .say(
                "MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nx\r\n.\r\n",
                4,
            )
            .await;
        assert_eq!(codes(&r)[3], "250 2.0.0");
        assert!(
            String::from_utf8(h.accepted()[0].body.clone())
                .unwrap()
                .contains("with ESMTPSA;")
        );
        assert_eq!(codes(&c.say("STARTTLS\r\n", 1).await), ["502 5.5.1"]);
    }
}
