//! A fast SMTP sink for `bench/realistic.sh`: answers like a real
//! receiving server under load — of every 20 recipients, 2 get
//! `451 4.7.1` (greylisting-style) and 1 gets `550 5.1.1`; the rest are
//! accepted. It counts every RCPT answered and writes the count to a file
//! every 50 ms, so the benchmark knows when every message was tried once.
//! `cargo run --release -p herald-testkit --example bench_sink -- ADDR COUNT_FILE`
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listener = TcpListener::bind(args.first().expect("ADDR")).await.unwrap();
    let file = args.get(1).expect("COUNT_FILE").clone();
    // `accept-all`: every recipient accepted (to time the sink itself).
    let refuse = args.get(2).map(String::as_str) != Some("accept-all");
    let answered = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    {
        let answered = answered.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = std::fs::write(&file, answered.load(Ordering::Relaxed).to_string());
            }
        });
    }
    while let Ok((stream, _)) = listener.accept().await {
        let (answered, seq) = (answered.clone(), seq.clone());
        tokio::spawn(async move {
            // Replies are small writes: without this, Nagle's algorithm and
            // delayed ACKs stall every pipelined exchange.
            let _ = stream.set_nodelay(true);
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            let _ = w.write_all(b"220 sink.bench ESMTP\r\n").await;
            let mut line = String::new();
            let mut accepted = 0usize;
            loop {
                line.clear();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let cmd = line.trim_end().to_ascii_uppercase();
                let reply: &[u8] = if cmd.starts_with("EHLO") {
                    b"250-sink.bench\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250 8BITMIME\r\n"
                } else if cmd.starts_with("HELO") || cmd.starts_with("MAIL") || cmd == "RSET" || cmd == "NOOP" {
                    if cmd == "RSET" || cmd.starts_with("MAIL") {
                        accepted = 0;
                    }
                    b"250 2.0.0 ok\r\n"
                } else if cmd.starts_with("RCPT") {
                    answered.fetch_add(1, Ordering::Relaxed);
                    match seq.fetch_add(1, Ordering::Relaxed) % 20 {
                        _ if !refuse => {
                            accepted += 1;
                            b"250 2.1.5 ok\r\n"
                        }
                        0 | 1 => b"451 4.7.1 Greylisted, please try again later\r\n",
                        2 => b"550 5.1.1 The email account that you tried to reach does not exist\r\n",
                        _ => {
                            accepted += 1;
                            b"250 2.1.5 ok\r\n"
                        }
                    }
                } else if cmd == "DATA" {
                    if accepted == 0 {
                        b"554 5.5.1 no valid recipients\r\n"
                    } else {
                        let _ = w.write_all(b"354 go ahead\r\n").await;
                        // Content up to the lone dot.
                        loop {
                            line.clear();
                            match r.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == ".\r\n" || line == ".\n" => break,
                                Ok(_) => {}
                            }
                        }
                        accepted = 0;
                        b"250 2.0.0 queued\r\n"
                    }
                } else if cmd == "QUIT" {
                    let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                } else {
                    b"502 5.5.2 not implemented\r\n"
                };
                if w.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}
