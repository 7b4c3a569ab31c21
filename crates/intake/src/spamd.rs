//! SpamAssassin's `spamd`, asked over TCP with the SPAMC protocol
//! (`SYMBOLS SPAMC/1.5`): the message's score, spamd's own threshold and
//! the rules that hit.
//!
//! Bounded both ways: at most `max_size` bytes of a message are sent (a
//! longer one is cut at a line end, so padding a message cannot carry spam
//! past the check), at most 64 KiB of answer are read, and the whole
//! exchange has a deadline. Whatever spamd answers is checked: a status
//! other than `EX_OK`, a score that is not a finite number, or a rule name
//! that is not a rule's is an error, never a score.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of an answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// Rules kept per message.
const MAX_RULES: usize = 100;

/// Where spamd listens and how it is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamdSettings {
    pub address: SocketAddr,
    /// Held over this unless the account has its own.
    pub threshold: f64,
    pub timeout: Duration,
    /// The most of a message sent.
    pub max_size: usize,
    /// When spamd cannot be asked: accept unscored (true) or refuse for now
    /// (`451`/503, the client retries).
    pub accept_on_error: bool,
}

/// spamd's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: f64,
    /// spamd's own `required_score` (Herald applies the account's).
    pub required: f64,
    pub rules: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpamdError {
    #[error("cannot reach spamd: {0}")]
    Connect(String),
    #[error("spamd did not answer within {0} s")]
    Timeout(u64),
    #[error("spamd's answer is unreadable: {0}")]
    Answer(String),
}

/// The first `max` bytes of `body`, cut after the last line end within
/// them.
fn cut(body: &[u8], max: usize) -> &[u8] {
    if body.len() <= max {
        return body;
    }
    let head = &body[..max];
    match head.iter().rposition(|&b| b == b'\n') {
        Some(i) => &head[..=i],
        None => head,
    }
}

/// Asks spamd about `body`.
pub async fn check(settings: &SpamdSettings, body: &[u8]) -> Result<Verdict, SpamdError> {
    let exchange = async {
        let mut stream = TcpStream::connect(settings.address)
            .await
            .map_err(|e| SpamdError::Connect(e.kind().to_string()))?;
        let body = cut(body, settings.max_size);
        let head = format!("SYMBOLS SPAMC/1.5\r\nContent-length: {}\r\n\r\n", body.len());
        let io = |e: std::io::Error| SpamdError::Connect(e.kind().to_string());
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body).await.map_err(io)?;
        stream.shutdown().await.map_err(io)?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(u64::try_from(MAX_ANSWER).unwrap_or(u64::MAX) + 1)
            .read_to_end(&mut answer)
            .await
            .map_err(io)?;
        if answer.len() > MAX_ANSWER {
            return Err(SpamdError::Answer("longer than 64 KiB".to_owned()));
        }
        parse(&answer)
    };
    tokio::time::timeout(settings.timeout, exchange)
        .await
        .map_err(|_| SpamdError::Timeout(settings.timeout.as_secs()))?
}

/// Reads a SYMBOLS answer:
/// `SPAMD/1.1 0 EX_OK`, headers (`Spam: True ; 1000.0 / 5.0`), a blank
/// line, the rules comma-separated.
pub fn parse(answer: &[u8]) -> Result<Verdict, SpamdError> {
    let bad = |why: &str| SpamdError::Answer(why.to_owned());
    let text = std::str::from_utf8(answer).map_err(|_| bad("not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))
        .unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    let mut parts = status.split_whitespace();
    let (proto, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !proto.starts_with("SPAMD/") {
        return Err(bad("not a spamd answer"));
    }
    if code != "0" {
        let why: String = status.chars().filter(|c| !c.is_control()).take(200).collect();
        return Err(SpamdError::Answer(format!("spamd refused: {why}")));
    }
    let mut verdict = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("spam") {
            continue;
        }
        // "True ; 1000.0 / 5.0"
        let (_, scores) = value.split_once(';').ok_or_else(|| bad("no score"))?;
        let (score, required) = scores.split_once('/').ok_or_else(|| bad("no threshold"))?;
        let number = |s: &str| -> Result<f64, SpamdError> {
            let n: f64 = s.trim().parse().map_err(|_| bad("a score that is not a number"))?;
            if n.is_finite() {
                Ok(n)
            } else {
                Err(bad("a score that is not finite"))
            }
        };
        verdict = Some((number(score)?, number(required)?));
    }
    let (score, required) = verdict.ok_or_else(|| bad("no Spam header"))?;
    let mut rules: Vec<String> = Vec::new();
    for rule in body.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if rule.len() > 64 || !rule.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad("a rule name that is not one"));
        }
        if rules.len() < MAX_RULES {
            rules.push(rule.to_owned());
        }
    }
    Ok(Verdict { score, required, rules })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_and_checked() {
        let v = parse(b"SPAMD/1.1 0 EX_OK\r\nContent-length: 24\r\nSpam: True ; 1000.0 / 5.0\r\n\r\nGTUBE,MISSING_DATE,NO_RECEIVED")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.score, 1000.0);
        assert_eq!(v.required, 5.0);
        assert_eq!(v.rules, ["GTUBE", "MISSING_DATE", "NO_RECEIVED"]);
        let clean = parse(b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((clean.score, clean.rules.len()), (-0.1, 0));
        for bad in [
            &b"SPAMD/1.0 76 Bad header line: xyz\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\n\r\nGTUBE",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5.0\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; inf / 5.0\r\n\r\n",
            b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 3.0 / 5.0\r\n\r\nGTUBE,<script>",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn long_messages_are_cut_at_a_line_end() {
        let body = b"Subject: x\r\n\r\nline one\r\nline two\r\n";
        assert_eq!(cut(body, 1000), body);
        assert_eq!(cut(body, 20), b"Subject: x\r\n\r\n");
        assert_eq!(cut(b"no line end at all", 5), b"no li");
    }
}
