//! Spool throughput: N messages of SIZE bytes from C concurrent writers,
//! every one synced before it is acknowledged.
//! `cargo run --release -p herald-spool --example throughput -- [N] [C] [SIZE]`
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use herald_spool::{Spool, SpoolOptions};
use herald_types::{AccountId, EmailAddress, Envelope, ReversePath};

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, c, size) = (
        args.first().copied().unwrap_or(20_000),
        args.get(1).copied().unwrap_or(20),
        args.get(2).copied().unwrap_or(4096),
    );
    let dir = tempfile::tempdir_in(".").unwrap();
    let spool = Arc::new(Spool::open(dir.path(), SpoolOptions::default()).unwrap());
    let body = vec![b'x'; size];
    let account = AccountId::generate();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..c {
        let (spool, body, account) = (spool.clone(), body.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..n / c {
                let envelope = Envelope {
                    sender: ReversePath::Address(EmailAddress::parse("a@example.com").unwrap()),
                    recipients: vec![EmailAddress::parse(&format!("u{w}x{i}@example.net")).unwrap()],
                    account: account.clone(),
                    client_ip: "127.0.0.1".parse().unwrap(),
                    received_at: time::OffsetDateTime::now_utc(),
                    stream: herald_types::DEFAULT_STREAM.to_owned(),
                    tags: Vec::new(),
                    metadata: Vec::new(),
                };
                spool.enqueue(envelope, body.clone()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let batches = spool.stats().batches.load(Relaxed);
    println!(
        "{n} messages of {size} bytes, {c} writers: {:.0} msg/s, {batches} syncs ({:.1} messages per sync)",
        n as f64 / secs,
        n as f64 / batches as f64
    );
}
