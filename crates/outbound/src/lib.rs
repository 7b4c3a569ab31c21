//! Outbound HTTP on a tenant's behalf: webhook posts, reply posts, any URL
//! a tenant gives Herald to call.
//!
//! Main design decision: a tenant's URL may reach only public addresses.
//! Loopback, private, link-local, CGNAT, multicast, unspecified, reserved
//! and documentation ranges — and IPv6 forms that embed such an IPv4
//! address (mapped, NAT64, 6to4) — are refused when the URL is registered
//! *and again when each connection is made*, through a resolver that drops
//! every address the policy does not permit, so a name that answered a
//! public address at registration and a private one later (DNS rebinding)
//! reaches nothing. URL hosts that are IP literals never pass a resolver,
//! so [`Guard::check_target`] checks them before every request. Redirects
//! are not followed and proxies from the environment are not used: either
//! would hand the choice of target to someone else. The operator may allow
//! networks besides public ones (`[http] outbound_allow`; the tests allow
//! loopback).
//!
//! Failures are reported to tenants by class ([`Failure::class`]), never
//! with the target's own text or the network's details, so a webhook is not
//! a way to scan or read what is behind Herald.

mod address;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use address::is_public;
use ipnet::IpNet;

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// Which addresses tenant URLs may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Networks allowed besides public addresses.
    pub allow: Vec<IpNet>,
}

impl Policy {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = address::canonical(ip);
        self.allow.iter().any(|n| n.contains(&ip)) || is_public(ip)
    }

    /// The URL, parsed and checked for shape and an IP-literal host.
    fn parse(&self, url: &str) -> Result<reqwest::Url, Refusal> {
        let trimmed = url.trim();
        if trimmed.len() > MAX_URL || trimmed.contains(char::is_whitespace) {
            return Err(Refusal::Malformed);
        }
        let parsed = reqwest::Url::parse(trimmed).map_err(|_| Refusal::Malformed)?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() || parsed.password().is_some()
        {
            return Err(Refusal::Malformed);
        }
        match parsed.host() {
            None => Err(Refusal::Malformed),
            Some(url::Host::Ipv4(ip)) if !self.permits(ip.into()) => Err(Refusal::NotPublic),
            Some(url::Host::Ipv6(ip)) if !self.permits(ip.into()) => Err(Refusal::NotPublic),
            Some(_) => Ok(parsed),
        }
    }

    /// Checks a URL a tenant registers: its shape, and that its host is
    /// (or resolves to at least one) permitted address. Names that
    /// resolve to nothing permitted are refused. The URL as stored.
    pub async fn check_url(&self, url: &str) -> Result<String, Refusal> {
        let parsed = self.parse(url)?;
        if let Some(url::Host::Domain(name)) = parsed.host() {
            let port = parsed.port_or_known_default().unwrap_or(443);
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| Refusal::Unresolvable)?
                .collect();
            if !found.iter().any(|a| self.permits(a.ip())) {
                return Err(if found.is_empty() {
                    Refusal::Unresolvable
                } else {
                    Refusal::NotPublic
                });
            }
        }
        Ok(parsed.to_string())
    }
}

/// Why a URL was refused or a request failed, in words a tenant may see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an http:// or https:// URL of at most 2048 characters")]
    Malformed,
    #[error("the URL names a host that is not on the public internet")]
    NotPublic,
    #[error("the URL's host does not resolve to a public address")]
    Unresolvable,
}

/// The outcome of a request, as a tenant is told it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The target answered with a non-2xx status (its class: 3, 4 or 5).
    #[error("HTTP {0}xx")]
    Status(u16),
    #[error("no answer within the time limit")]
    Timeout,
    #[error("connection failed")]
    Connect,
    #[error("{0}")]
    Refused(Refusal),
    #[error("request failed")]
    Other,
}

impl Failure {
    /// A short, stable word for metrics and `last_error`.
    pub fn class(&self) -> String {
        self.to_string()
    }
}

/// The address check and a client that enforces it.
#[derive(Debug, Clone)]
pub struct Guard {
    policy: Arc<Policy>,
    client: reqwest::Client,
}

impl Guard {
    /// A client with `timeout` for the whole exchange, that resolves names
    /// through the policy, follows no redirect and ignores proxy settings.
    pub fn new(policy: impl Into<Arc<Policy>>, timeout: Duration, user_agent: &str) -> Result<Self, reqwest::Error> {
        let policy: Arc<Policy> = policy.into();
        // ring is Herald's one TLS provider; installing it twice is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy: policy.clone() }))
            .build()?;
        Ok(Self { policy, client })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// [`Policy::check_url`] of this guard's policy.
    pub async fn check_url(&self, url: &str) -> Result<String, Refusal> {
        self.policy.check_url(url).await
    }

    /// Checks the target of a request about to be made (an IP-literal host
    /// is not seen by the resolver); a POST builder when it may go.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Failure> {
        let parsed = self.policy.parse(url).map_err(Failure::Refused)?;
        Ok(self.client.post(parsed))
    }

    /// Sends a request built by [`Guard::post`]: `Ok` on 2xx, the failure's
    /// class otherwise.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        match request.send().await {
            Ok(answer) if answer.status().is_success() => Ok(answer),
            Ok(answer) => Err(Failure::Status(answer.status().as_u16() / 100)),
            Err(e) if e.is_timeout() => Err(Failure::Timeout),
            Err(e) if e.is_connect() || e.is_request() => Err(Failure::Connect),
            Err(_) => Err(Failure::Other),
        }
    }
}

/// Resolves names for the client, keeping only permitted addresses; a name
/// with none left is an error, so nothing is connected to.
#[derive(Debug)]
struct GuardedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(
                    Box::new(std::io::Error::other("no permitted address")) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: &[&str]) -> Guard {
        let allow = allow.iter().map(|n| n.parse().unwrap()).collect();
        Guard::new(Policy::new(allow), Duration::from_secs(1), "test").unwrap()
    }

    #[test]
    fn ip_literal_urls_are_checked_before_any_request() {
        let g = guard(&[]);
        for url in [
            "http://127.0.0.1/hook",
            "http://127.1/hook",
            "http://2130706433/hook",
            "http://0x7f.0.0.1/hook",
            "http://[::1]/hook",
            "http://[::ffff:10.0.0.1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
        ] {
            assert_eq!(g.post(url).err(), Some(Failure::Refused(Refusal::NotPublic)), "{url}");
        }
        assert!(g.post("https://93.184.216.34/hook").is_ok());
        for url in [
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "not a url",
            "http://",
            "file:///etc/passwd",
        ] {
            assert_eq!(g.post(url).err(), Some(Failure::Refused(Refusal::Malformed)), "{url}");
        }
        let allowed = guard(&["127.0.0.0/8"]);
        assert!(allowed.post("http://127.0.0.1:8080/hook").is_ok());
        assert!(allowed.post("http://[::1]/hook").is_err(), "only the networks allowed");
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let g = guard(&[]);
        assert_eq!(g.check_url("http://localhost:9/x").await, Err(Refusal::NotPublic));
        let allowed = guard(&["127.0.0.0/8", "::1/128"]);
        assert!(allowed.check_url("http://localhost:9/x").await.is_ok());
    }

    #[tokio::test]
    async fn connections_are_checked_again_when_made() {
        // A name that passed registration when loopback was allowed is
        // refused at connect time by a stricter policy: nothing connects.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let g = guard(&[]);
        let request = g.post(&format!("http://localhost:{port}/x")).unwrap();
        assert_eq!(g.send(request).await.err(), Some(Failure::Connect));
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "no connection reached the listener");
    }

    #[test]
    fn failures_name_their_class_only() {
        assert_eq!(Failure::Status(5).class(), "HTTP 5xx");
        assert_eq!(Failure::Timeout.class(), "no answer within the time limit");
    }
}
