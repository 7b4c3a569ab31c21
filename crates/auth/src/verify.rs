//! DKIM verification, on mail-auth: against live DNS, or against a table of
//! records (for corpora whose keys were never published).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

use crate::AuthError;

/// One signature's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimVerdict {
    pub domain: String,
    pub selector: String,
    pub pass: bool,
    /// mail-auth's result text: "pass", "fail; …", "neutral; …", "temperror; …".
    pub detail: String,
}

#[derive(Default)]
struct TxtTable(Mutex<HashMap<Box<str>, Txt>>);

impl ResolverCache<Box<str>, Txt> for TxtTable {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().ok()?.remove(name)
    }

    fn insert(&self, key: Box<str>, value: Txt, _: Instant) {
        if let Ok(mut t) = self.0.lock() {
            t.insert(key, value);
        }
    }
}

/// Verifies the DKIM signatures of messages.
pub struct DkimVerifier {
    auth: MessageAuthenticator,
    table: Option<Arc<TxtTable>>,
}

impl std::fmt::Debug for DkimVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimVerifier")
            .field("offline", &self.table.is_some())
            .finish_non_exhaustive()
    }
}

/// Bare LF to CRLF; CRLF stays.
fn crlf(message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = message
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || message[i - 1] != b'\r'));
    if !bare {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    for (i, b) in message.iter().enumerate() {
        if *b == b'\n' && (i == 0 || message[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(*b);
    }
    std::borrow::Cow::Owned(out)
}

fn authenticator(servers: &[SocketAddr], timeout: Duration) -> Result<MessageAuthenticator, AuthError> {
    let configs = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut opts = ResolverOpts::default();
    opts.timeout = timeout;
    opts.attempts = 1;
    MessageAuthenticator::new(ResolverConfig::from_name_servers(configs), opts)
        .map_err(|e| AuthError::Resolver(e.to_string()))
}

impl DkimVerifier {
    /// Looks keys up on these name servers.
    pub fn with_servers(servers: &[SocketAddr]) -> Result<Self, AuthError> {
        Ok(Self {
            auth: authenticator(servers, Duration::from_secs(5))?,
            table: None,
        })
    }

    /// Looks keys up in `records` only: (`selector._domainkey.domain`, TXT
    /// value). A key not in the table fails as a missing record would.
    pub fn with_records(records: &[(&str, &str)]) -> Result<Self, AuthError> {
        let table = TxtTable::default();
        for (name, value) in records {
            let key = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
            table.insert(
                key.into_boxed_str(),
                Txt::from(DomainKey::parse(value.as_bytes())),
                Instant::now(),
            );
        }
        // No name server: a lookup outside the table fails at once.
        Ok(Self {
            auth: authenticator(&[], Duration::from_millis(100))?,
            table: Some(Arc::new(table)),
        })
    }

    /// Every signature's verdict; an unparsable message has none. Bare LF
    /// line ends (a message read from a file) are taken as the CRLF they
    /// were on the wire when signed, as dkimpy does.
    pub async fn verify(&self, message: &[u8]) -> Vec<DkimVerdict> {
        let message = crlf(message);
        let Some(parsed) = AuthenticatedMessage::parse(&message) else {
            return Vec::new();
        };
        let outputs = match &self.table {
            Some(table) => {
                self.auth
                    .verify_dkim(Parameters::new(&parsed).with_txt_cache(table.as_ref()))
                    .await
            }
            None => self.auth.verify_dkim(&parsed).await,
        };
        outputs
            .iter()
            .map(|o| DkimVerdict {
                domain: o.signature().map(|s| s.d.clone()).unwrap_or_default(),
                selector: o.signature().map(|s| s.s.clone()).unwrap_or_default(),
                pass: *o.result() == DkimResult::Pass,
                detail: o.result().to_string(),
            })
            .collect()
    }
}
