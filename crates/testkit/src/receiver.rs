//! A webhook receiver: the customer's endpoint in webhook tests.
//!
//! An HTTP/1.1 server on loopback whose behaviour a test switches while it
//! runs: answer 2xx, answer an error status, or hang without a word. Every
//! post it answers 2xx is recorded with its headers; every attempt is
//! counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    /// Answer this status (e.g. 500).
    Fail(u16),
    /// Read the request, then say nothing until the client gives up.
    Hang,
}

/// One post answered 2xx.
#[derive(Debug, Clone)]
pub struct Post {
    /// Header names lower-case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    mode: Mode,
    posts: Vec<Post>,
    attempts: usize,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    pub async fn start(mode: Mode) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            mode,
            posts: Vec::new(),
            attempts: 0,
        }));
        let state = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, state.clone()));
            }
        });
        Ok(Self { addr, shared })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        if let Ok(mut s) = self.shared.lock() {
            s.mode = mode;
        }
    }

    /// The posts answered 2xx so far.
    pub fn posts(&self) -> Vec<Post> {
        self.shared.lock().map(|s| s.posts.clone()).unwrap_or_default()
    }

    /// Requests received so far, whatever the answer.
    pub fn attempts(&self) -> usize {
        self.shared.lock().map(|s| s.attempts).unwrap_or(0)
    }
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<Shared>>) {
    let mut reader = BufReader::new(stream);
    // Keep-alive: one request after another on the connection.
    loop {
        let mut headers = HashMap::new();
        let mut first = String::new();
        if reader.read_line(&mut first).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let mode = match state.lock() {
            Ok(mut s) => {
                s.attempts += 1;
                s.mode
            }
            Err(_) => return,
        };
        let status = match mode {
            Mode::Hang => {
                // Hold the connection until the client closes it.
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink).await;
                return;
            }
            Mode::Fail(code) => code,
            Mode::Ok => {
                if let Ok(mut s) = state.lock() {
                    s.posts.push(Post { headers, body });
                }
                200
            }
        };
        let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}
