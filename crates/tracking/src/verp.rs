//! VERP: a return path that names its message and recipient.
//!
//! The envelope sender becomes `b<token>@<bounce domain>`, where the token
//! is the message id (16 bytes), the recipient's index (u16) and 6 bytes of
//! HMAC, in lower-case base32: 40 characters with the prefix, well under
//! RFC 5321's 64-octet local part, and immune to servers that change case.
//! A bounce sent to it identifies what bounced even when the bounce itself
//! says nothing useful.

use data_encoding::BASE32_NOPAD;
use herald_types::MessageId;

use crate::Keyring;
use crate::keys::{mac_with, same};

/// Marks a VERP local part.
pub const VERP_PREFIX: &str = "b";
const MAC_LEN: usize = 6;
const RAW_LEN: usize = 16 + 2 + MAC_LEN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerpToken {
    pub message: MessageId,
    pub recipient: u16,
}

impl VerpToken {
    /// The local part of the return path.
    pub fn local_part(&self, keys: &Keyring) -> String {
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.extend_from_slice(&self.message.to_bytes());
        raw.extend_from_slice(&self.recipient.to_be_bytes());
        let mac = mac_with(keys.verp(), &[&raw]);
        raw.extend_from_slice(&mac[..MAC_LEN]);
        format!("{VERP_PREFIX}{}", BASE32_NOPAD.encode(&raw).to_ascii_lowercase())
    }

    /// Reads a local part back; `None` unless it is one of ours, unaltered.
    pub fn parse(keys: &Keyring, local_part: &str) -> Option<Self> {
        let body = local_part
            .strip_prefix(VERP_PREFIX)
            .or_else(|| local_part.strip_prefix("B"))?;
        let raw = BASE32_NOPAD.decode(body.to_ascii_uppercase().as_bytes()).ok()?;
        if raw.len() != RAW_LEN {
            return None;
        }
        let (data, mac) = raw.split_at(16 + 2);
        if !same(&mac_with(keys.verp(), &[data])[..MAC_LEN], mac) {
            return None;
        }
        Some(Self {
            message: MessageId::from_bytes(data[..16].try_into().ok()?),
            recipient: u16::from_be_bytes([data[16], data[17]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verp_local_parts_are_short_case_proof_and_unforgeable() {
        let keys = Keyring::new(b"0123456789abcdef0123456789abcdef");
        let t = VerpToken {
            message: MessageId::generate(),
            recipient: 999,
        };
        let local = t.local_part(&keys);
        assert!(local.len() <= 64, "{} octets", local.len());
        assert_eq!(local.len(), 40);
        assert_eq!(local, local.to_ascii_lowercase());
        assert_eq!(VerpToken::parse(&keys, &local), Some(t.clone()));
        assert_eq!(
            VerpToken::parse(&keys, &local.to_ascii_uppercase()),
            Some(t),
            "case changed in transit"
        );
        let mut forged = local.clone().into_bytes();
        forged[10] = if forged[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(VerpToken::parse(&keys, std::str::from_utf8(&forged).unwrap()), None);
        assert_eq!(VerpToken::parse(&keys, "postmaster"), None);
        assert_eq!(
            VerpToken::parse(&Keyring::new(b"other key other key other key 32"), &local),
            None
        );
    }
}
