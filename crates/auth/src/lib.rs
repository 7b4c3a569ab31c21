//! Sender authentication: DKIM keys and signatures, and the DNS records a
//! sending domain publishes (SPF, DKIM, DMARC, the return-path and tracking
//! CNAMEs) with the checks of what live DNS actually holds.
//!
//! Main design decision: signing and verifying are mail-auth's (the
//! canonicalisation and crypto made for the job), with one local repair:
//! mail-auth 0.13.3 hashes a body that ends in whitespace-only lines wrongly
//! under relaxed canonicalisation, so the signer strips such lines from the
//! message before signing it — the message sent is the one signed, and the
//! change is invisible to readers.
//!
//! This crate is L1, not L0 as first planned: mail-auth cannot be built
//! without its DNS client (hickory, on tokio).
//!
//! Must never: keep a private key in clear outside memory (keys at rest are
//! sealed with [`Sealer`]), or sign with a key that is not the domain's.

mod keys;
mod records;
mod seal;
mod sign;
mod verify;

pub use keys::{Algorithm, GeneratedKey, generate, selector_for};
pub use records::{Check, DnsRecord, RecordKind, RecordPlan, check_record};
pub use seal::Sealer;
pub use sign::{DomainSigner, SIGNED_HEADERS, SigningKey, strip_trailing_blank_lines};
pub use verify::{DkimVerdict, DkimVerifier};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error("unusable key: {0}")]
    Key(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("sealed key cannot be opened (wrong platform secret, or damaged)")]
    Sealed,
    #[error("resolver: {0}")]
    Resolver(String),
}
