//! Whether a server's certificate is valid for the name Herald connected
//! to, checked after the handshake.
//!
//! Opportunistic STARTTLS accepts any certificate (RFC 7435: an unverified
//! channel beats a clear one), but the handshake still proves the server
//! holds the key of the certificate it showed. Checking that certificate
//! against the Web PKI afterwards says whether the connection may carry
//! mail that a policy (MTA-STS) requires to go over an authenticated
//! channel, and, when it may not, why — in TLS-RPT's words (RFC 8460
//! §4.3): `certificate-host-mismatch`, `certificate-expired`,
//! `certificate-not-trusted`, `validation-failure`.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// A certificate's standing for the name it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    /// No TLS, or not checked.
    Unchecked,
    Valid,
    /// Invalid, with TLS-RPT's result type.
    Invalid(&'static str),
}

/// The trust anchors: Mozilla's (webpki-roots) plus the operator's own
/// (`[delivery] tls_ca_file`, for private PKIs and tests).
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
}

/// Mozilla's roots plus `extra`: what certificates are checked against
/// (MX hosts after the handshake, MTA-STS policy hosts).
pub fn roots(extra: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
    }
    Ok(roots)
}

impl Verifier {
    pub fn new(extra: &[CertificateDer<'static>]) -> Result<Self, String> {
        let roots = roots(extra)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { inner })
    }

    /// Checks a server's chain (end entity first) for `host`.
    pub fn check(&self, chain: &[CertificateDer<'_>], host: &str) -> CertStatus {
        let Some((end, intermediates)) = chain.split_first() else {
            return CertStatus::Invalid("validation-failure");
        };
        let Ok(name) = ServerName::try_from(host.trim_end_matches('.').to_owned()) else {
            return CertStatus::Invalid("certificate-host-mismatch");
        };
        match self
            .inner
            .verify_server_cert(end, intermediates, &name, &[], UnixTime::now())
        {
            Ok(_) => CertStatus::Valid,
            Err(rustls::Error::InvalidCertificate(e)) => CertStatus::Invalid(match e {
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "certificate-host-mismatch"
                }
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                    "certificate-expired"
                }
                rustls::CertificateError::UnknownIssuer => "certificate-not-trusted",
                _ => "validation-failure",
            }),
            Err(_) => CertStatus::Invalid("validation-failure"),
        }
    }
}
