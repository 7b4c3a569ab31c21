//! A throw-away certificate authority, and an HTTPS server on loopback
//! that serves fixed pages per host name (an MTA-STS policy host in the
//! delivery tests).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate chain and its key, as DER.
#[derive(Debug, Clone)]
pub struct Identity {
    pub chain: Vec<Vec<u8>>,
    pub key: Vec<u8>,
}

impl Identity {
    pub(crate) fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain = self.chain.iter().map(|c| CertificateDer::from(c.clone())).collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        Ok(rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)?)
    }
}

/// A CA that issues server certificates for test names.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

impl TestCa {
    pub fn new() -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Herald test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA's certificate (DER), to trust.
    pub fn cert(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A server certificate for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<Identity> {
        let params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            chain: vec![cert.der().to_vec(), self.cert()],
            key: key.serialize_der(),
        })
    }
}

/// A page: status, content type, body.
pub type Page = (u16, String, String);

/// An HTTPS server answering `GET` with the page set for the request's
/// host and path; it counts requests per host.
pub struct HttpsServer {
    addr: SocketAddr,
    pages: Arc<Mutex<HashMap<(String, String), Page>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpsServer {
    pub async fn start(addr: &str, identity: &Identity) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("https bind {addr}"))?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()?));
        let pages: Arc<Mutex<HashMap<(String, String), Page>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (p, h) = (pages.clone(), hits.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, pages, hits) = (acceptor.clone(), p.clone(), h.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 2048];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let host = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim()
                                .eq_ignore_ascii_case("host")
                                .then(|| v.trim().to_ascii_lowercase())
                        })
                        .unwrap_or_default();
                    let host = host.split(':').next().unwrap_or("").to_owned();
                    if let Ok(mut h) = hits.lock() {
                        *h.entry(host.clone()).or_default() += 1;
                    }
                    let page = pages.lock().ok().and_then(|p| p.get(&(host, path)).cloned());
                    let (status, ctype, body) = page.unwrap_or((404, "text/plain".into(), "not found".into()));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Ok(Self {
            addr,
            pages,
            hits,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `page` at `https://host/path`.
    pub fn set(&self, host: &str, path: &str, page: Page) {
        if let Ok(mut p) = self.pages.lock() {
            p.insert((host.to_ascii_lowercase(), path.to_owned()), page);
        }
    }

    /// Requests seen for `host`.
    pub fn hits(&self, host: &str) -> usize {
        self.hits.lock().ok().and_then(|h| h.get(host).copied()).unwrap_or(0)
    }
}
