//! Private keys at rest: sealed with AES-256-GCM under a key derived from
//! the platform secret, so a copy of the database alone signs nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Sha256;

use crate::AuthError;

/// Marks the format, so another sealing scheme can be told apart later.
const PREFIX: &str = "v1:";

pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Derives the sealing key from the platform secret.
    pub fn new(master: &[u8]) -> Self {
        // HMAC takes keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("any key length");
        mac.update(b"herald dkim seal v1");
        let derived: [u8; 32] = mac.finalize().into_bytes().into();
        // AES-256 takes exactly 32 bytes, which `derived` is.
        #[allow(clippy::expect_used)]
        let key = UnboundKey::new(&AES_256_GCM, &derived).expect("a 32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        }
    }

    /// `v1:` + base64(nonce | ciphertext | tag).
    pub fn seal(&self, secret: &[u8]) -> Result<String, AuthError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| AuthError::Sealed)?;
        let mut data = secret.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .map_err(|_| AuthError::Sealed)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, AuthError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(AuthError::Sealed)?;
        if raw.len() < NONCE_LEN {
            return Err(AuthError::Sealed);
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| AuthError::Sealed)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut data)
            .map_err(|_| AuthError::Sealed)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret() {
        let a = Sealer::new(b"platform secret number one......");
        let sealed = a.seal(b"private key bytes").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("private"));
        assert_eq!(a.open(&sealed).unwrap(), b"private key bytes");
        assert_ne!(a.seal(b"private key bytes").unwrap(), sealed, "a fresh nonce each time");
        let b = Sealer::new(b"platform secret number two......");
        assert_eq!(b.open(&sealed), Err(AuthError::Sealed));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(a.open(std::str::from_utf8(&tampered).unwrap()), Err(AuthError::Sealed));
        assert_eq!(a.open("plain"), Err(AuthError::Sealed));
    }
}
