//! The listener on a real socket: connection limits per client address.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_smtp_server::{
    AuthRefusal, AuthThrottle, ConnectionLimiter, Incoming, Ingress, Listener, ListenerKind, Principal, Reply,
    SessionConfig, SessionContext, serve,
};
use herald_types::{EmailAddress, MessageId, ReversePath};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Nothing;

#[async_trait]
impl Ingress for Nothing {
    async fn authenticate(&self, _: &str, _: &str) -> Result<Principal, AuthRefusal> {
        Err(AuthRefusal::Invalid)
    }
    async fn relay_principal(&self, _: IpAddr) -> Option<Principal> {
        None
    }
    async fn check_sender(&self, _: &Principal, _: &ReversePath) -> Result<(), Reply> {
        Ok(())
    }
    async fn check_recipient(&self, _: ListenerKind, _: Option<&Principal>, rcpt: &EmailAddress) -> Result<(), Reply> {
        // A bug somewhere below a session.
        assert!(rcpt.local_part() != "boom", "a bug hit while checking a recipient");
        Ok(())
    }
    async fn accept(&self, _: Incoming) -> Result<MessageId, Reply> {
        Err(Reply::try_later())
    }
}

async fn first_line(stream: TcpStream) -> (String, BufReader<TcpStream>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    (line.trim_end().to_owned(), reader)
}

#[tokio::test]
async fn connections_beyond_the_per_address_limit_get_421() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let ctx = Arc::new(SessionContext {
        config: Arc::new(SessionConfig {
            hostname: "mx.herald.test".into(),
            ..SessionConfig::default()
        }),
        ingress: Arc::new(Nothing),
        tls: None,
        throttle: AuthThrottle::new(5, 30, Duration::from_secs(60)),
    });
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let listener = Listener {
        kind: ListenerKind::Submission,
        tcp,
    };
    tokio::spawn(serve(
        listener,
        ctx,
        ConnectionLimiter::new(2, 100),
        rx,
        Duration::from_secs(1),
    ));

    let (a, _keep_a) = first_line(TcpStream::connect(addr).await.unwrap()).await;
    let (b, _keep_b) = first_line(TcpStream::connect(addr).await.unwrap()).await;
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("220 mx.herald.test ESMTP Herald", "220 mx.herald.test ESMTP Herald")
    );
    let (c, _) = first_line(TcpStream::connect(addr).await.unwrap()).await;
    assert_eq!(c, "421 4.7.0 Too many connections; try again later");
    // A connection closing frees its place.
    drop(_keep_a);
    let freed = greeting_once_a_place_is_free(addr).await;
    assert_eq!(freed, "220 mx.herald.test ESMTP Herald");
}

/// Connects until a greeting (not a 421) comes, for up to 10 s: the server
/// notices a closed connection when its read returns.
async fn greeting_once_a_place_is_free(addr: std::net::SocketAddr) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (line, _) = first_line(TcpStream::connect(addr).await.unwrap()).await;
        if line.starts_with("220") || tokio::time::Instant::now() > deadline {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_panic_ends_its_own_session_and_frees_its_place() {
    use tokio::io::AsyncWriteExt;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let ctx = Arc::new(SessionContext {
        config: Arc::new(SessionConfig {
            hostname: "mx.herald.test".into(),
            ..SessionConfig::default()
        }),
        ingress: Arc::new(Nothing),
        tls: None,
        throttle: AuthThrottle::new(5, 30, Duration::from_secs(60)),
    });
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let listener = Listener {
        kind: ListenerKind::Inbound,
        tcp,
    };
    // One connection per address: the panicking session's place must come back.
    tokio::spawn(serve(
        listener,
        ctx,
        ConnectionLimiter::new(1, 100),
        rx,
        Duration::from_secs(1),
    ));
    let (greeting, mut reader) = first_line(TcpStream::connect(addr).await.unwrap()).await;
    assert!(greeting.starts_with("220"));
    reader
        .get_mut()
        .write_all(b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<boom@b.test>\r\n")
        .await
        .unwrap();
    // The session ends (the connection closes) without an answer to RCPT.
    let mut rest = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_string(&mut reader, &mut rest),
    )
    .await
    .unwrap();
    assert!(read.is_ok() && !rest.contains("2.1.5"), "no answer to RCPT: {rest}");
    assert_eq!(
        greeting_once_a_place_is_free(addr).await,
        "220 mx.herald.test ESMTP Herald"
    );
}
