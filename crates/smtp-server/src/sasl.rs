//! SASL PLAIN (RFC 4616) and LOGIN decoding for SMTP AUTH (RFC 4954).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Decoded credentials. The password is dropped as soon as it is checked.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

#[cfg(test)]
pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `[authzid] NUL authcid NUL passwd`. An authorisation identity other than
/// the authentication identity is refused: no one acts as someone else.
pub fn plain(response: &str) -> Option<Credentials> {
    let raw = decode_b64(response)?;
    let mut parts = raw.split(|b| *b == 0);
    let authzid = parts.next()?;
    let username = std::str::from_utf8(parts.next()?).ok()?;
    let password = std::str::from_utf8(parts.next()?).ok()?;
    if parts.next().is_some() || username.is_empty() || (!authzid.is_empty() && authzid != username.as_bytes()) {
        return None;
    }
    Some(Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// One base64 line of the LOGIN exchange, decoded.
pub fn login_line(line: &str) -> Option<String> {
    String::from_utf8(decode_b64(line)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_takes_authcid_and_password() {
        let c = plain(&encode_b64(b"\0alice\0s3cret")).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "s3cret"));
        let c = plain(&encode_b64(b"alice\0alice\0pw")).unwrap();
        assert_eq!(c.username, "alice");
        assert!(!format!("{c:?}").contains("pw"), "Debug hides the password");
    }

    #[test]
    fn plain_refuses_impersonation_and_junk() {
        assert!(
            plain(&encode_b64(b"bob\0alice\0pw")).is_none(),
            "acting as another identity"
        );
        assert!(plain(&encode_b64(b"\0\0pw")).is_none(), "empty user");
        assert!(plain(&encode_b64(b"no-nuls")).is_none());
        assert!(plain("!!not base64!!").is_none());
        assert!(plain(&encode_b64(b"\0a\0b\0c")).is_none(), "extra field");
    }

    #[test]
    fn login_lines_decode() {
        assert_eq!(login_line("YWxpY2U=").as_deref(), Some("alice"));
        assert_eq!(login_line("*"), None);
    }
}
