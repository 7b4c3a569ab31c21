//! New DKIM keys and the names they are published under.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_auth::dkim::generate::DkimKeyPair;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;

use crate::AuthError;

/// RSA keys shorter than this are refused by receivers and linters alike.
pub const RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Rsa,
    Ed25519,
}

impl Algorithm {
    /// The `k=` tag of the DNS record.
    pub fn dns_k(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Rsa => "r",
            Self::Ed25519 => "e",
        }
    }
}

/// A new key pair, ready to store (private) and publish (public).
#[derive(Clone)]
pub struct GeneratedKey {
    pub algorithm: Algorithm,
    /// PKCS#1 DER for RSA, PKCS#8 DER for Ed25519.
    pub private_der: Vec<u8>,
    /// The `p=` value: SubjectPublicKeyInfo for RSA (as OpenDKIM and
    /// `openssl rsa -pubout` publish), the raw 32-byte key for Ed25519.
    pub public_b64: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("public_b64", &self.public_b64)
            .finish_non_exhaustive()
    }
}

impl GeneratedKey {
    /// The TXT record text: `v=DKIM1; k=…; p=…`.
    pub fn dns_record(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm.dns_k(), self.public_b64)
    }
}

/// Generates a key. RSA-2048 takes a second or two (the rsa crate; only
/// generation uses it, signing is ring's).
pub fn generate(algorithm: Algorithm) -> Result<GeneratedKey, AuthError> {
    let err = |e: &dyn std::fmt::Display| AuthError::Generate(e.to_string());
    match algorithm {
        Algorithm::Rsa => {
            let pair = DkimKeyPair::generate_rsa(RSA_BITS).map_err(|e| err(&e))?;
            let public = rsa::RsaPublicKey::from_pkcs1_der(pair.public_key()).map_err(|e| err(&e))?;
            let spki = public.to_public_key_der().map_err(|e| err(&e))?;
            Ok(GeneratedKey {
                algorithm,
                private_der: pair.private_key().to_vec(),
                public_b64: STANDARD.encode(spki.as_bytes()),
            })
        }
        Algorithm::Ed25519 => {
            let pair = DkimKeyPair::generate_ed25519().map_err(|e| err(&e))?;
            Ok(GeneratedKey {
                algorithm,
                private_der: pair.private_key().to_vec(),
                public_b64: pair.encoded_public_key(),
            })
        }
    }
}

/// A selector that carries its date and algorithm: `hrld20261123r`, with a
/// counter (`hrld20261123r2`) for a second rotation on one day. Letters and
/// digits only, so it is valid in any DNS label.
pub fn selector_for(date: time::Date, algorithm: Algorithm, nth: u32) -> String {
    let base = format!(
        "hrld{:04}{:02}{:02}{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        algorithm.suffix()
    );
    if nth <= 1 { base } else { format!("{base}{nth}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_carry_date_and_algorithm() {
        let d = time::macros::date!(2026 - 11 - 23);
        assert_eq!(selector_for(d, Algorithm::Rsa, 1), "hrld20261123r");
        assert_eq!(selector_for(d, Algorithm::Ed25519, 1), "hrld20261123e");
        assert_eq!(selector_for(d, Algorithm::Rsa, 2), "hrld20261123r2");
    }

    #[test]
    fn generated_keys_publish_the_right_form() {
        let ed = generate(Algorithm::Ed25519).unwrap();
        assert_eq!(STANDARD.decode(&ed.public_b64).unwrap().len(), 32, "raw Ed25519 key");
        assert!(ed.dns_record().starts_with("v=DKIM1; k=ed25519; p="));
        let rsa = generate(Algorithm::Rsa).unwrap();
        // SubjectPublicKeyInfo of an RSA key starts MIIBIjANBgkqhkiG9w0BAQEF.
        assert!(
            rsa.public_b64.starts_with("MIIBIjANBgkqhkiG9w0BAQEF"),
            "{}",
            rsa.public_b64
        );
        assert!(
            !format!("{rsa:?}").contains("private_der: ["),
            "Debug hides the private key"
        );
    }
}
