//! Fills a spool with deferred mail, for the restart benchmark
//! (`bench/restart.sh`): N messages of SIZE bytes, one recipient each,
//! already tried once and due again in an hour.
//! `cargo run --release -p herald-spool --example fill -- DIR [N] [SIZE]`
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use herald_spool::{RcptState, RcptStatus, Spool, SpoolOptions};
use herald_types::{AccountId, EmailAddress, Envelope, ReversePath};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().expect("DIR"));
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let size: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2048);
    let writers = 32;
    let spool = Arc::new(Spool::open(&dir, SpoolOptions::default()).unwrap());
    let body = {
        let mut b = b"Subject: deferred\r\nFrom: a@example.com\r\n\r\n".to_vec();
        b.resize(size, b'x');
        b
    };
    let account = AccountId::generate();
    let due = herald_spool::to_ms(time::OffsetDateTime::now_utc()) + 3_600_000;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (spool, body, account) = (spool.clone(), body.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..n / writers {
                let envelope = Envelope {
                    sender: ReversePath::Address(EmailAddress::parse("a@example.com").unwrap()),
                    recipients: vec![EmailAddress::parse(&format!("u{w}x{i}@d{}.example.net", i % 1000)).unwrap()],
                    account: account.clone(),
                    client_ip: "127.0.0.1".parse().unwrap(),
                    received_at: time::OffsetDateTime::now_utc(),
                    stream: herald_types::DEFAULT_STREAM.to_owned(),
                    tags: Vec::new(),
                    metadata: Vec::new(),
                };
                let id = spool.enqueue(envelope, body.clone()).await.unwrap();
                spool
                    .update(
                        &id,
                        0,
                        RcptState {
                            status: RcptStatus::Pending,
                            attempts: 1,
                            next_attempt_ms: due,
                        },
                    )
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    spool.flush().await.unwrap();
    spool.close();
    println!(
        "{} deferred messages of {size} bytes in {:.1} s",
        n / writers * writers,
        started.elapsed().as_secs_f64()
    );
}
