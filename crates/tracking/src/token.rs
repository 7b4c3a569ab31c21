//! Tracking and unsubscribe tokens: what happened, to which message and
//! recipient, signed.
//!
//! Layout before encoding: `version u8 | purpose u8 | message 16 | account 16
//! | sent_at u32 | recipient len u8 + bytes | url (rest, clicks only)`,
//! followed by the first 12 bytes of its HMAC-SHA256 (96 bits: forging one
//! takes 2^96 tries). Encoded base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_types::{AccountId, MessageId};

use crate::Keyring;
use crate::keys::{mac_with, same};

const VERSION: u8 = 1;
const MAC_LEN: usize = 12;
/// Longest URL a click token carries; longer links are left untracked.
pub const MAX_URL: usize = 2048;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Open,
    Click,
    Unsubscribe,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Self::Open => 1,
            Self::Click => 2,
            Self::Unsubscribe => 3,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => Self::Open,
            2 => Self::Click,
            3 => Self::Unsubscribe,
            _ => return None,
        })
    }
}

/// The content of a tracking or unsubscribe token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackToken {
    pub purpose: Purpose,
    pub message: MessageId,
    pub account: AccountId,
    /// When the message was prepared for this recipient (unix seconds): a
    /// click seconds after sending was made by a scanner, not a person.
    pub sent_at: u32,
    pub recipient: String,
    /// The link's target, for clicks.
    pub url: Option<String>,
}

fn account_bytes(id: &AccountId) -> [u8; 16] {
    let hex = &id.as_str()[AccountId::PREFIX.len() + 1..];
    let mut out = [0u8; 16];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate().take(16) {
        out[i] = std::str::from_utf8(chunk)
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

fn account_from(bytes: &[u8]) -> Option<AccountId> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    AccountId::parse(&format!("{}_{hex}", AccountId::PREFIX)).ok()
}

impl TrackToken {
    fn key(keys: &Keyring, purpose: Purpose) -> &[u8] {
        if purpose == Purpose::Unsubscribe {
            keys.unsubscribe()
        } else {
            keys.tracking()
        }
    }

    /// The token's text, or `None` if it cannot carry this content (an
    /// address or URL too long).
    pub fn encode(&self, keys: &Keyring) -> Option<String> {
        let recipient = self.recipient.as_bytes();
        let url = self.url.as_deref().unwrap_or("").as_bytes();
        if recipient.len() > usize::from(u8::MAX) || url.len() > MAX_URL {
            return None;
        }
        let mut raw = Vec::with_capacity(40 + recipient.len() + url.len() + MAC_LEN);
        raw.push(VERSION);
        raw.push(self.purpose.code());
        raw.extend_from_slice(&self.message.to_bytes());
        raw.extend_from_slice(&account_bytes(&self.account));
        raw.extend_from_slice(&self.sent_at.to_be_bytes());
        raw.push(u8::try_from(recipient.len()).ok()?);
        raw.extend_from_slice(recipient);
        raw.extend_from_slice(url);
        let mac = mac_with(Self::key(keys, self.purpose), &[&raw]);
        raw.extend_from_slice(&mac[..MAC_LEN]);
        Some(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Decodes and checks a token of the expected purpose; anything altered,
    /// truncated or signed with another key gives `None`.
    pub fn decode(keys: &Keyring, expected: Purpose, text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        if raw.len() < 2 + 16 + 16 + 4 + 1 + MAC_LEN {
            return None;
        }
        let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
        let purpose = Purpose::from_code(body[1])?;
        if body[0] != VERSION || purpose != expected {
            return None;
        }
        let want = mac_with(Self::key(keys, purpose), &[body]);
        if !same(&want[..MAC_LEN], mac) {
            return None;
        }
        let message = MessageId::from_bytes(body[2..18].try_into().ok()?);
        let account = account_from(&body[18..34])?;
        let sent_at = u32::from_be_bytes(body[34..38].try_into().ok()?);
        let rlen = usize::from(body[38]);
        let recipient = std::str::from_utf8(body.get(39..39 + rlen)?).ok()?.to_owned();
        let rest = &body[39 + rlen..];
        let url = if purpose == Purpose::Click {
            Some(std::str::from_utf8(rest).ok()?.to_owned())
        } else if rest.is_empty() {
            None
        } else {
            return None;
        };
        Some(Self {
            purpose,
            message,
            account,
            sent_at,
            recipient,
            url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(purpose: Purpose, url: Option<&str>) -> TrackToken {
        TrackToken {
            purpose,
            message: MessageId::generate(),
            account: AccountId::generate(),
            sent_at: 1_790_000_000,
            recipient: "jane@example.net".into(),
            url: url.map(str::to_owned),
        }
    }

    #[test]
    fn tokens_round_trip_per_purpose() {
        let keys = Keyring::new(b"0123456789abcdef0123456789abcdef");
        for t in [
            token(Purpose::Open, None),
            token(Purpose::Click, Some("https://shop.example/p?id=1&x=ü")),
            token(Purpose::Unsubscribe, None),
        ] {
            let text = t.encode(&keys).unwrap();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "URL-safe: {text}"
            );
            assert_eq!(TrackToken::decode(&keys, t.purpose, &text), Some(t));
        }
    }

    #[test]
    fn altered_foreign_or_misused_tokens_decode_to_nothing() {
        let keys = Keyring::new(b"0123456789abcdef0123456789abcdef");
        let t = token(Purpose::Click, Some("https://shop.example/"));
        let text = t.encode(&keys).unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
        // Point the link elsewhere, keep the MAC: refused.
        let n = raw.len();
        raw[n - 13] ^= 1;
        assert_eq!(
            TrackToken::decode(&keys, Purpose::Click, &URL_SAFE_NO_PAD.encode(&raw)),
            None
        );
        assert_eq!(TrackToken::decode(&keys, Purpose::Click, &text[..text.len() - 1]), None);
        let other = Keyring::new(b"another secret of thirty two b.");
        assert_eq!(
            TrackToken::decode(&other, Purpose::Click, &text),
            None,
            "another platform's key"
        );
        assert_eq!(
            TrackToken::decode(&keys, Purpose::Open, &text),
            None,
            "a click token is no open token"
        );
        let unsub = token(Purpose::Unsubscribe, None).encode(&keys).unwrap();
        assert_eq!(TrackToken::decode(&keys, Purpose::Click, &unsub), None);
        assert_eq!(TrackToken::decode(&keys, Purpose::Open, "not-a-token"), None);
        assert_eq!(TrackToken::decode(&keys, Purpose::Open, ""), None);
    }

    #[test]
    fn overlong_content_is_not_tokenised() {
        let keys = Keyring::new(b"0123456789abcdef0123456789abcdef");
        let long = format!("https://x.example/{}", "a".repeat(MAX_URL));
        assert_eq!(token(Purpose::Click, Some(&long)).encode(&keys), None);
    }
}
