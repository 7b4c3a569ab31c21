//! Making secrets and checking them.
//!
//! A secret is shown once, when it is made, and only a hash is kept. An API
//! key carries its own public lookup prefix (`hrld_<10 chars>_<40 chars>`:
//! the store finds the row by `hrld_<10 chars>`), so authentication costs
//! one indexed read and one hash, never a scan.
//!
//! API keys are 40 random characters (about 238 bits): no guessing can
//! find one, so they need no slow hash. They are kept as HMAC-SHA256 under
//! a key derived from the platform secret (a stolen database alone does
//! not let anyone test candidate keys) and compared in constant time, so an
//! unknown key costs microseconds. Passwords people choose or type (SMTP
//! credentials, dashboard users) keep argon2id. Keys hashed with argon2 by
//! earlier versions still verify, and are rehashed on first use.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Marks Herald API keys, so secret scanners and humans recognise one.
pub const KEY_MARK: &str = "hrld";
const PREFIX_RANDOM: usize = 10;
const KEY_RANDOM: usize = 40;
const PASSWORD_LEN: usize = 32;
const USERNAME_RANDOM: usize = 8;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A freshly made API key: the whole key (to show once) and its public prefix.
#[derive(Clone)]
pub struct NewKey {
    pub prefix: String,
    pub key: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

pub fn new_api_key() -> NewKey {
    let prefix = format!("{KEY_MARK}_{}", random_string(LOWER_ALNUM, PREFIX_RANDOM));
    let key = format!("{prefix}_{}", random_string(ALNUM, KEY_RANDOM));
    NewKey { prefix, key }
}

/// The lookup prefix of a presented key, or `None` if it is not shaped like
/// one of ours (then there is nothing to look up).
pub fn prefix_of(presented: &str) -> Option<&str> {
    let cut = KEY_MARK.len() + 1 + PREFIX_RANDOM;
    let prefix = presented.get(..cut)?;
    let ok = prefix.starts_with(KEY_MARK)
        && presented[cut..]
            .strip_prefix('_')
            .is_some_and(|rest| rest.len() == KEY_RANDOM);
    ok.then_some(prefix)
}

/// A dashboard session's token (about 285 bits): the cookie's value.
pub fn new_session_token() -> String {
    random_string(ALNUM, 48)
}

pub fn new_password() -> String {
    random_string(ALNUM, PASSWORD_LEN)
}

/// A username for a new SMTP credential: the account's name and a random
/// tail, so a postmaster reading a log knows whose it is.
pub fn new_username(account: &str) -> String {
    format!("{account}-{}", random_string(LOWER_ALNUM, USERNAME_RANDOM))
}

/// argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's minimum),
/// salted afresh; the PHC string carries the parameters, so raising them
/// later leaves old hashes verifiable.
pub fn hash(secret: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Constant-time check of a secret against a stored PHC string. A malformed
/// stored hash verifies nothing.
pub fn verify(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
}

/// Marks a stored API-key hash made by [`key_hash`].
pub const KEY_HASH_SCHEME: &str = "hmac-sha256$";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The key API keys are hashed with, derived from the platform secret.
pub fn key_pepper(platform_secret: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(platform_secret).expect("HMAC accepts any key length");
    mac.update(b"herald/api-keys/v1");
    mac.finalize().into_bytes().into()
}

fn key_mac(pepper: &[u8; 32], key: &str) -> HmacSha256 {
    use hmac::{KeyInit, Mac};
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(pepper).expect("HMAC accepts any key length");
    mac.update(key.as_bytes());
    mac
}

/// The stored form of an API key: `hmac-sha256$<hex>`.
pub fn key_hash(pepper: &[u8; 32], key: &str) -> String {
    use hmac::Mac;
    let digest = key_mac(pepper, key).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{KEY_HASH_SCHEME}{hex}")
}

/// Whether `presented` matches a stored [`key_hash`], in constant time;
/// `None` when `stored` is not of that scheme (an older argon2 hash).
pub fn key_matches(pepper: &[u8; 32], presented: &str, stored: &str) -> Option<bool> {
    use hmac::Mac;
    let hex = stored.strip_prefix(KEY_HASH_SCHEME)?;
    let expected: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect();
    Some(expected.is_some_and(|e| key_mac(pepper, presented).verify_slice(&e).is_ok()))
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    // Rejection sampling: bytes at or above the largest multiple of the
    // alphabet's size would bias the first letters.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // The OS generator failing is not recoverable and must not yield a
        // weak secret.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut buf).expect("the operating system's random generator failed");
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_their_lookup_prefix() {
        let k = new_api_key();
        assert_eq!(k.key.len(), 4 + 1 + 10 + 1 + 40);
        assert_eq!(prefix_of(&k.key), Some(k.prefix.as_str()));
        assert!(!format!("{k:?}").contains(&k.key), "Debug must not print the key");
    }

    #[test]
    fn strings_not_shaped_like_keys_have_no_prefix() {
        let k = new_api_key();
        assert_eq!(prefix_of(&k.key[..k.key.len() - 1]), None);
        assert_eq!(prefix_of(""), None);
        assert_eq!(prefix_of("Bearer xyz"), None);
        assert_eq!(prefix_of(&k.key.replace(KEY_MARK, "abcd")), None);
    }

    #[test]
    fn secrets_differ_every_time() {
        let a = new_password();
        let b = new_password();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(new_username("acme").starts_with("acme-"));
    }

    #[test]
    fn hashes_verify_the_secret_only() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsE", &h));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(hash("correct horse").unwrap(), h, "each hash has its own salt");
    }
}
