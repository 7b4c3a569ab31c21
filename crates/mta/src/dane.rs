//! DANE for SMTP (RFC 7672): a server's certificate checked against the
//! TLSA records of its MX host name, when both the MX records and the TLSA
//! records come back authenticated by DNSSEC.
//!
//! Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (§3.1.3): with
//! DANE-EE the end-entity certificate (or its public key) must match, and
//! neither its names nor its dates are checked; with DANE-TA some
//! certificate of the chain the server sent must match, and the end entity
//! must chain to it with a name that is the MX host's. Selectors 0 (full
//! certificate) and 1 (SubjectPublicKeyInfo); matching 0 (exact), 1
//! (SHA-256), 2 (SHA-512).

use std::sync::Arc;

use herald_dns::Tlsa;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// Whether a record can authenticate an SMTP server.
pub fn usable(t: &Tlsa) -> bool {
    matches!(t.usage, 2 | 3) && matches!(t.selector, 0 | 1) && matches!(t.matching, 0..=2)
}

/// One DER element at the start of `b`: (tag, header length, content length).
fn element(b: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for i in 0..n {
        len = (len << 8) | usize::from(*b.get(2 + i)?);
    }
    Some((tag, 2 + n, len))
}

/// The SubjectPublicKeyInfo of a certificate, as DER (RFC 5280 §4.1).
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    let (tag, h, _) = element(cert)?;
    if tag != 0x30 {
        return None;
    }
    let tbs = cert.get(h..)?;
    let (tag, h, len) = element(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs.get(h..h + len)?;
    // [0] version (optional), serial, signature, issuer, validity, subject.
    let mut skip = 5;
    if rest.first() == Some(&0xa0) {
        skip += 1;
    }
    for _ in 0..skip {
        let (_, h, len) = element(rest)?;
        rest = rest.get(h + len..)?;
    }
    let (tag, h, len) = element(rest)?;
    (tag == 0x30).then(|| rest.get(..h + len)).flatten()
}

fn matches(t: &Tlsa, cert: &[u8]) -> bool {
    let part = match t.selector {
        0 => Some(cert),
        1 => spki(cert),
        _ => None,
    };
    let Some(part) = part else { return false };
    match t.matching {
        0 => part == t.data.as_slice(),
        1 => ring::digest::digest(&ring::digest::SHA256, part).as_ref() == t.data.as_slice(),
        2 => ring::digest::digest(&ring::digest::SHA512, part).as_ref() == t.data.as_slice(),
        _ => false,
    }
}

/// Checks a server's chain (end entity first) for `host` against its
/// usable TLSA records; the TLS-RPT result type when it fails.
pub fn check(chain: &[CertificateDer<'_>], records: &[Tlsa], host: &str) -> Result<(), &'static str> {
    let Some((end, intermediates)) = chain.split_first() else {
        return Err("validation-failure");
    };
    let usable: Vec<&Tlsa> = records.iter().filter(|t| usable(t)).collect();
    if usable.iter().any(|t| t.usage == 3 && matches(t, end)) {
        return Ok(());
    }
    let mut failure = "tlsa-invalid";
    for t in usable.iter().filter(|t| t.usage == 2) {
        for anchor in chain.iter().filter(|c| matches(t, c)) {
            let mut roots = rustls::RootCertStore::empty();
            if roots.add(anchor.clone().into_owned()).is_err() {
                continue;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build() else {
                continue;
            };
            let Ok(name) = ServerName::try_from(host.trim_end_matches('.').to_owned()) else {
                return Err("certificate-host-mismatch");
            };
            match verifier.verify_server_cert(end, intermediates, &name, &[], UnixTime::now()) {
                Ok(_) => return Ok(()),
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
                )) => failure = "certificate-host-mismatch",
                Err(_) => {}
            }
        }
    }
    Err(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        let c = params.self_signed(&key).unwrap();
        (c.der().to_vec(), rcgen::PublicKeyData::subject_public_key_info(&key))
    }

    fn sha256(b: &[u8]) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
    }

    #[test]
    fn the_public_key_is_found_in_the_certificate() {
        let (der, public) = cert(&["mx.example.test"]);
        assert_eq!(spki(&der), Some(public.as_slice()));
        assert_eq!(spki(&[0x30, 0x03, 0x02, 0x01]), None);
        assert_eq!(spki(&[]), None);
    }

    #[test]
    fn dane_ee_matches_the_key_whatever_the_name() {
        let (der, public) = cert(&["some.other.name"]);
        let chain = [CertificateDer::from(der.clone())];
        let ee = |selector, matching, data| Tlsa {
            usage: 3,
            selector,
            matching,
            data,
        };
        assert_eq!(check(&chain, &[ee(1, 1, sha256(&public))], "mx.example.test"), Ok(()));
        assert_eq!(check(&chain, &[ee(0, 1, sha256(&der))], "mx.example.test"), Ok(()));
        assert_eq!(check(&chain, &[ee(0, 0, der.clone())], "mx.example.test"), Ok(()));
        assert_eq!(
            check(&chain, &[ee(1, 1, vec![0; 32])], "mx.example.test"),
            Err("tlsa-invalid")
        );
        // PKIX-EE (usage 1) is not usable for SMTP, even when it matches.
        let pkix = Tlsa {
            usage: 1,
            selector: 1,
            matching: 1,
            data: sha256(&public),
        };
        assert_eq!(check(&chain, &[pkix], "mx.example.test"), Err("tlsa-invalid"));
    }
}
