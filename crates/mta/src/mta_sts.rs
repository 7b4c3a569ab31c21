//! MTA-STS (RFC 8461): a domain's published demand that mail to it go
//! only to the MX hosts it names, over TLS with a certificate valid for
//! the host.
//!
//! The policy's presence and version are in DNS (`_mta-sts.<domain>` TXT,
//! `v=STSv1; id=…`); the policy itself at
//! `https://mta-sts.<domain>/.well-known/mta-sts.txt`, fetched with a
//! validated certificate, no redirects, a time-out and a size limit, from
//! public addresses only (the same guard as webhooks: a recipient domain is
//! anyone's to choose, so its policy host must not reach inside). Policies
//! are cached for their `max_age` (and kept in `<data_dir>/mta-sts.json`,
//! so a restart does not forget them — §5.1: a cached policy protects
//! against an attacker who blocks the fetch); a changed `id` in DNS fetches
//! again; a failed fetch keeps using the cached policy.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_dns::Resolver;
use serde::{Deserialize, Serialize};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The longest policy body read (RFC 8461 §3.3 leaves it to the sender;
/// real policies are a few hundred bytes).
pub const MAX_POLICY: usize = 64 * 1024;
/// The longest a policy is cached (one year, §3.2).
const MAX_AGE_LIMIT: u64 = 31_557_600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// A domain's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns: a host name, or `*.` and a domain (one label).
    pub mx: Vec<String>,
    pub max_age: u64,
    /// The `id` of the DNS record it was fetched for.
    pub id: String,
    /// When it was fetched (unix seconds).
    pub fetched_at: i64,
}

impl Policy {
    /// Whether `host` is one of the policy's MX hosts (§4.1: a wildcard
    /// matches exactly one label).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| {
            let p = p.trim_end_matches('.').to_ascii_lowercase();
            match p.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => host == p,
            }
        })
    }

    fn fresh(&self, now: i64) -> bool {
        now < self
            .fetched_at
            .saturating_add(i64::try_from(self.max_age).unwrap_or(i64::MAX))
    }
}

/// Reads a policy body (§3.2): `key: value` lines, LF or CRLF; `version`
/// must be STSv1, `mode` one of enforce, testing, none, `max_age` at most a
/// year, at least one `mx` unless the mode is none. Unknown keys are
/// ignored.
pub fn parse_policy(body: &str, id: &str, now: i64) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("a line without a colon: {line:?}"));
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_owned()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(format!("unknown mode {other:?}")),
                });
            }
            "max_age" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| format!("max_age {value:?} is not a number"))?;
                max_age = Some(n.min(MAX_AGE_LIMIT));
            }
            "mx" => {
                let valid = !value.is_empty()
                    && value.len() <= 253
                    && value
                        .trim_start_matches("*.")
                        .split('.')
                        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                if !valid {
                    return Err(format!("mx {value:?} is not a host name or pattern"));
                }
                mx.push(value.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("version is not STSv1".into());
    }
    let mode = mode.ok_or("no mode")?;
    let max_age = max_age.ok_or("no max_age")?;
    if mx.is_empty() && mode != Mode::None {
        return Err("no mx".into());
    }
    Ok(Policy {
        mode,
        mx,
        max_age,
        id: id.to_owned(),
        fetched_at: now,
    })
}

/// The `id` of a domain's `_mta-sts` TXT record: exactly one record that
/// starts with `v=STSv1` (several are as none, §3.1).
pub fn record_id(records: &[String]) -> Option<String> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    let [record] = sts.as_slice() else { return None };
    record.split(';').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        let v = v.trim();
        (k.trim() == "id" && (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| v.to_owned())
    })
}

/// Where policies come from: HTTPS in production, a table in unit tests.
#[async_trait]
pub trait Fetch: Send + Sync {
    /// The body of `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    async fn fetch(&self, domain: &str) -> Result<String, String>;
}

/// Fetches over HTTPS: certificate validated (Mozilla's roots and the
/// operator's), no redirects, 20 s, at most [`MAX_POLICY`] bytes,
/// `text/plain`, and names resolved through Herald's resolver to public
/// addresses only (or the operator's allowed networks).
pub struct HttpsFetch {
    client: reqwest::Client,
    /// 443; tests change it, as `[delivery] port` for MX hosts.
    port: u16,
}

impl std::fmt::Debug for HttpsFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpsFetch")
    }
}

struct GuardedDns {
    resolver: Arc<dyn Resolver>,
    outbound: Arc<herald_outbound::Policy>,
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let outbound = self.outbound.clone();
        Box::pin(async move {
            let found = resolver.addresses(name.as_str()).await.map_err(|e| {
                Box::new(std::io::Error::other(e.to_string())) as Box<dyn std::error::Error + Send + Sync>
            })?;
            let permitted: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|ip| outbound.permits(*ip))
                .map(|ip| std::net::SocketAddr::new(ip, 0))
                .collect();
            if permitted.is_empty() {
                return Err(
                    Box::new(std::io::Error::other("no permitted address")) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl HttpsFetch {
    pub fn new(
        resolver: Arc<dyn Resolver>,
        outbound: Arc<herald_outbound::Policy>,
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
        port: u16,
    ) -> Result<Self, String> {
        let roots = crate::tls_check::roots(extra_roots)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("Herald MTA-STS")
            .dns_resolver(Arc::new(GuardedDns { resolver, outbound }))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, port })
    }
}

#[async_trait]
impl Fetch for HttpsFetch {
    async fn fetch(&self, domain: &str) -> Result<String, String> {
        let url = if self.port == 443 {
            format!("https://mta-sts.{domain}/.well-known/mta-sts.txt")
        } else {
            format!("https://mta-sts.{domain}:{}/.well-known/mta-sts.txt", self.port)
        };
        let mut answer = self.client.get(&url).send().await.map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "connection or TLS failed".to_owned()
            }
        })?;
        if !answer.status().is_success() {
            return Err(format!("HTTP {}", answer.status().as_u16()));
        }
        let plain = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
        if !plain {
            return Err("not text/plain".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|_| "connection lost".to_owned())? {
            if body.len() + chunk.len() > MAX_POLICY {
                return Err("policy too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "not UTF-8".to_owned())
    }
}

/// What the policy lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No policy (or mode none).
    None,
    Policy(Policy),
    /// A record says there is a policy, but none could be fetched and none
    /// is cached: TLS-RPT's `sts-policy-fetch-error`; mail goes as without
    /// a policy (§5).
    FetchFailed(String),
}

/// The policies, cached.
pub struct Sts {
    resolver: Arc<dyn Resolver>,
    fetch: Arc<dyn Fetch>,
    cache: Mutex<HashMap<String, Policy>>,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts").field("file", &self.file).finish_non_exhaustive()
    }
}

impl Sts {
    pub fn new(resolver: Arc<dyn Resolver>, fetch: Arc<dyn Fetch>, file: Option<PathBuf>) -> Self {
        let cache = file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            resolver,
            fetch,
            cache: Mutex::new(cache),
            file,
        }
    }

    fn save(&self) {
        let Some(path) = &self.file else { return };
        let Ok(json) = serde_json::to_vec(&*lock(&self.cache)) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "cannot save the MTA-STS policy cache");
        }
    }

    /// The policy of `domain` now.
    pub async fn lookup(&self, domain: &str) -> Lookup {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cached = lock(&self.cache).get(&domain).cloned().filter(|p| p.fresh(now));
        let id = match self.resolver.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => record_id(&records),
            // A lookup failure is not a removal: the cache stands.
            Err(e) if e.is_temporary() => return cached.map_or(Lookup::None, Self::found),
            Err(_) => None,
        };
        let Some(id) = id else {
            // No record: a cached policy still holds until it expires (§5.1).
            return cached.map_or(Lookup::None, Self::found);
        };
        if let Some(p) = cached.as_ref().filter(|p| p.id == id) {
            return Self::found(p.clone());
        }
        match self
            .fetch
            .fetch(&domain)
            .await
            .and_then(|body| parse_policy(&body, &id, now))
        {
            Ok(policy) => {
                lock(&self.cache).insert(domain.clone(), policy.clone());
                self.save();
                Self::found(policy)
            }
            Err(e) => {
                tracing::warn!(domain = %domain, error = %e, "MTA-STS policy not fetched");
                match cached {
                    Some(p) => Self::found(p),
                    None => Lookup::FetchFailed(e),
                }
            }
        }
    }

    fn found(p: Policy) -> Lookup {
        if p.mode == Mode::None {
            Lookup::None
        } else {
            Lookup::Policy(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_read_as_rfc_8461_writes_them() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\nextension: x\r\n",
            "20160831085700Z",
            0,
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.allows("mail.example.com") && p.allows("MX1.example.net.") && !p.allows("a.b.example.net"));
        assert!(!p.allows("example.net") && !p.allows("mail.example.com.evil.test"));
        assert_eq!(
            parse_policy(
                "version: STSv1\nmode: testing\nmx: a.test\nmax_age: 99999999999\n",
                "1",
                0
            )
            .unwrap()
            .max_age,
            MAX_AGE_LIMIT
        );
        for bad in [
            "mode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.test\n",
            "version: STSv1\nmode: enforce\nmx: a.test\nmax_age: soon\n",
            "version: STSv1\nmode: enforce\nmx: a test\nmax_age: 1\n",
            "<html>not a policy</html>",
        ] {
            assert!(parse_policy(bad, "1", 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_record_must_be_one_and_carry_an_id() {
        let r = |v: &[&str]| record_id(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(r(&["v=STSv1; id=20190429T010101;"]).as_deref(), Some("20190429T010101"));
        assert_eq!(r(&["v=spf1 -all", "v=STSv1;id=abc"]).as_deref(), Some("abc"));
        assert_eq!(r(&["v=STSv1; id=a", "v=STSv1; id=b"]), None);
        assert_eq!(r(&["v=STSv1;"]), None);
        assert_eq!(r(&["v=STSv1; id=has-dash"]), None);
    }
}
