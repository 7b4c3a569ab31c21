//! One platform secret, one key per purpose.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Keys derived from the platform's secret, one per purpose, so a token made
/// for one use (say, an open) can never pass as another (an unsubscribe).
#[derive(Clone)]
pub struct Keyring {
    tracking: [u8; 32],
    unsubscribe: [u8; 32],
    verp: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

fn derive(master: &[u8], purpose: &str) -> [u8; 32] {
    mac_with(master, &[purpose.as_bytes()])
}

/// HMAC-SHA256 of the concatenated parts.
pub(crate) fn mac_with(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

impl Keyring {
    /// Derives every key from `master` (at least 32 random bytes).
    pub fn new(master: &[u8]) -> Self {
        Self {
            tracking: derive(master, "herald tracking v1"),
            unsubscribe: derive(master, "herald unsubscribe v1"),
            verp: derive(master, "herald verp v1"),
        }
    }

    pub(crate) fn tracking(&self) -> &[u8] {
        &self.tracking
    }

    pub(crate) fn unsubscribe(&self) -> &[u8] {
        &self.unsubscribe
    }

    pub(crate) fn verp(&self) -> &[u8] {
        &self.verp
    }
}

/// Compares two MACs in time independent of where they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
