//! SMTP replies: a code, an enhanced status code (RFC 3463) and text.

use std::fmt;

/// One reply line. Text sent to clients is deliberate and bland; causes go
/// to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: [u8; 3],
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, enhanced: [u8; 3], text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// Writes `code x.y.z text\r\n`, stripping CR/LF from the text so a
    /// reply can never be split into two.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let [a, b, c] = self.enhanced;
        let text: String = self.text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.extend_from_slice(format!("{} {a}.{b}.{c} {text}\r\n", self.code).as_bytes());
    }

    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    // The replies the session gives, in one place.

    pub fn ok() -> Self {
        Self::new(250, [2, 0, 0], "Ok")
    }

    pub fn auth_ok() -> Self {
        Self::new(235, [2, 7, 0], "Authentication successful")
    }

    pub fn auth_invalid() -> Self {
        Self::new(535, [5, 7, 8], "Authentication credentials invalid")
    }

    pub fn auth_throttled() -> Self {
        Self::new(454, [4, 7, 0], "Too many failed authentications; try again later")
    }

    pub fn relay_denied(rcpt: &str) -> Self {
        Self::new(554, [5, 7, 1], format!("<{rcpt}>: Relay access denied"))
    }

    pub fn sender_not_approved(sender: &str) -> Self {
        Self::new(
            550,
            [5, 7, 1],
            format!("<{sender}>: Sender address not approved for this account"),
        )
    }

    pub fn local_part_too_long(addr: &str) -> Self {
        Self::new(553, [5, 1, 3], format!("<{addr}>: Local part longer than 64 octets"))
    }

    pub fn too_big() -> Self {
        Self::new(552, [5, 3, 4], "Message size exceeds fixed maximum message size")
    }

    pub fn try_later() -> Self {
        Self::new(451, [4, 3, 0], "Temporary failure; try again later")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.enhanced;
        write!(f, "{} {a}.{b}.{c} {}", self.code, self.text)
    }
}
