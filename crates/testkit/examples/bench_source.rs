//! A load generator for `bench/realistic.sh`: like Postfix's smtp-source
//! (SESSIONS parallel sessions, a new connection per message, MESSAGES of
//! SIZE bytes), but every message to its own recipient (`u<n>@sink.test`),
//! as real mail is — so an MTA's per-address bookkeeping (suppression
//! counts) is measured as it would run, not on one hot address.
//! `cargo run --release -p herald-testkit --example bench_source -- ADDR MESSAGES SESSIONS SIZE`
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, line: &mut String) -> Option<u16> {
    loop {
        line.clear();
        if r.read_line(line).await.ok()? == 0 {
            return None;
        }
        // Multi-line replies continue with a '-' after the code.
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.get(..3)?.parse().ok();
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().expect("ADDR").clone();
    let messages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let sessions: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let size: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4096);
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..sessions {
        let (addr, next, refused) = (addr.clone(), next.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut line = String::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    return;
                }
                let stream = TcpStream::connect(&addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                let mut body = format!(
                    "From: news@bench.test\r\nTo: u{n}@sink.test\r\nSubject: message {n}\r\nMessage-ID: <{n}@bench.test>\r\n\r\n"
                )
                .into_bytes();
                while body.len() < size {
                    body.extend_from_slice(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n");
                }
                let steps: [Vec<u8>; 4] = [
                    b"EHLO source.bench\r\n".to_vec(),
                    b"MAIL FROM:<news@bench.test>\r\n".to_vec(),
                    format!("RCPT TO:<u{n}@sink.test>\r\n").into_bytes(),
                    b"DATA\r\n".to_vec(),
                ];
                let mut ok = reply(&mut r, &mut line).await == Some(220);
                for step in steps {
                    if !ok {
                        break;
                    }
                    w.write_all(&step).await.unwrap();
                    let code = reply(&mut r, &mut line).await.unwrap_or(0);
                    ok = code / 100 == 2 || code == 354;
                }
                if ok {
                    body.extend_from_slice(b".\r\n");
                    w.write_all(&body).await.unwrap();
                    ok = reply(&mut r, &mut line).await.is_some_and(|c| c / 100 == 2);
                }
                if !ok {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                let _ = w.write_all(b"QUIT\r\n").await;
                let _ = reply(&mut r, &mut line).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("{messages} messages sent, {} refused", refused.load(Ordering::Relaxed));
}
