//! DKIM signing: relaxed/relaxed, one signature per key of the domain.

use std::sync::Arc;

use mail_auth::common::crypto::{
    Algorithm as MaAlgorithm, DkimKey, Ed25519Key, RsaKey, Sha256, SigningKey as MaSigningKey,
};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

use crate::{Algorithm, AuthError};

/// The fields signed when present (RFC 6376 §5.4.1's recommendation, plus
/// List-Unsubscribe(-Post), which RFC 8058 requires signed). From is signed
/// once more than it occurs, so no second From can be added unnoticed.
pub const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A private key to sign with, as stored (opened from its seal).
#[derive(Clone)]
pub struct SigningKey {
    pub selector: String,
    pub algorithm: Algorithm,
    pub private_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

/// A loaded key shared by every signature made with it (mail-auth's signer
/// takes its key by value; loading an RSA key costs more than signing).
struct Shared(Arc<DkimKey>);

impl MaSigningKey for Shared {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> MaAlgorithm {
        self.0.algorithm()
    }
}

/// Signs for one domain with each of its active keys.
pub struct DomainSigner {
    domain: String,
    keys: Vec<(String, Arc<DkimKey>)>,
}

impl std::fmt::Debug for DomainSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let selectors: Vec<&str> = self.keys.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("DomainSigner")
            .field("domain", &self.domain)
            .field("selectors", &selectors)
            .finish()
    }
}

fn load(key: &SigningKey) -> Result<DkimKey, AuthError> {
    let bad = |e: &dyn std::fmt::Display| AuthError::Key(format!("{}: {e}", key.selector));
    Ok(match key.algorithm {
        Algorithm::Rsa => {
            let der = PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(key.private_der.clone()));
            DkimKey::from(RsaKey::<Sha256>::from_key_der(der).map_err(|e| bad(&e))?)
        }
        Algorithm::Ed25519 => DkimKey::from(Ed25519Key::from_pkcs8_der(&key.private_der).map_err(|e| bad(&e))?),
    })
}

impl DomainSigner {
    pub fn new(domain: &str, keys: &[SigningKey]) -> Result<Self, AuthError> {
        let keys = keys
            .iter()
            .map(|k| Ok((k.selector.clone(), Arc::new(load(k)?))))
            .collect::<Result<_, AuthError>>()?;
        Ok(Self {
            domain: domain.to_ascii_lowercase(),
            keys,
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The message as it must be sent: trailing blank lines of the body
    /// removed (see the crate's note on mail-auth), then a DKIM-Signature
    /// per key on top.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuthError> {
        let message = strip_trailing_blank_lines(message);
        let present = header_names(&message);
        let mut headers: Vec<&str> = SIGNED_HEADERS
            .iter()
            .copied()
            .filter(|h| present.iter().any(|p| p.eq_ignore_ascii_case(h)))
            .collect();
        headers.push("From");
        let mut signatures = Vec::new();
        for (selector, key) in &self.keys {
            let signature = DkimSigner::from_key(Shared(key.clone()))
                .domain(self.domain.clone())
                .selector(selector.clone())
                .headers(headers.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
                .sign(&message)
                .map_err(|e| AuthError::Sign(e.to_string()))?;
            signatures.push(signature.to_header());
        }
        let mut out = Vec::with_capacity(message.len() + signatures.iter().map(String::len).sum::<usize>());
        for s in signatures {
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&message);
        Ok(out)
    }
}

/// Where the body starts (after the blank line), if there is one.
fn body_start(message: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < message.len() {
        let end = message[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(message.len(), |i| at + i + 1);
        let line = &message[at..end];
        if line == b"\r\n" || line == b"\n" {
            return Some(end);
        }
        at = end;
    }
    None
}

fn header_names(message: &[u8]) -> Vec<String> {
    let end = body_start(message).unwrap_or(message.len());
    message[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && l[0] != b' ' && l[0] != b'\t')
        .filter_map(|l| {
            l.iter()
                .position(|b| *b == b':')
                .map(|c| String::from_utf8_lossy(&l[..c]).trim().to_owned())
        })
        .collect()
}

/// Removes whitespace-only and empty lines at the end of the body, keeping
/// the line break after the last line with content. Relaxed body
/// canonicalisation ignores such lines anyway (RFC 6376 §3.4.4), so no
/// reader sees a difference.
pub fn strip_trailing_blank_lines(message: &[u8]) -> Vec<u8> {
    let Some(start) = body_start(message) else {
        return message.to_vec();
    };
    let body = &message[start..];
    let keep = body
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |last| {
            // Up to the end of the line holding the last visible character.
            body[last..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(body.len(), |i| last + i + 1)
        });
    let mut out = message[..start + keep].to_vec();
    if keep > 0 && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_blank_lines_go_and_nothing_else() {
        let strip = |m: &[u8]| String::from_utf8(strip_trailing_blank_lines(m)).unwrap();
        assert_eq!(strip(b"A: b\r\n\r\nHello\r\n \r\n\t\r\n\r\n"), "A: b\r\n\r\nHello\r\n");
        assert_eq!(
            strip(b"A: b\r\n\r\nHello  \r\n\r\nworld\r\n"),
            "A: b\r\n\r\nHello  \r\n\r\nworld\r\n"
        );
        assert_eq!(strip(b"A: b\r\n\r\nno final break"), "A: b\r\n\r\nno final break\r\n");
        assert_eq!(strip(b"A: b\r\n\r\n \r\n"), "A: b\r\n\r\n");
        assert_eq!(strip(b"A: b\r\n"), "A: b\r\n", "no body at all");
    }

    #[test]
    fn header_names_skip_continuations_and_the_body() {
        let names = header_names(b"From: a\r\nSubject: x\r\n y\r\nTo: b\r\n\r\nNot: a header\r\n");
        assert_eq!(names, ["From", "Subject", "To"]);
    }
}
