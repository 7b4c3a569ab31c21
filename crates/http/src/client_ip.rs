//! The client's address behind a reverse proxy or load balancer.
//!
//! A connection from one of `[http] trusted_proxies` may name the client it
//! forwards in the one header those proxies write (`[http]
//! trusted_proxy_header`: `X-Forwarded-For` by default, as nginx, HAProxy
//! and cloud load balancers write it, or RFC 7239 `Forwarded`); the other
//! header is the client's own and is never read, as proxies pass on what
//! they do not write. Each proxy appends the address it received the
//! request from, so the list is read from the right: addresses of trusted
//! proxies are skipped, and the first one that is not a trusted proxy is
//! the client. Everything to its left was written by the client itself and
//! is never believed. A connection from anywhere else is its own client,
//! whatever it claims. An entry that is not an address (`unknown`, an
//! obfuscated name, garbage) ends the walk at the last proxy trusted; each
//! entry is read on its own, so bytes a client put in its part of a line
//! do not spoil the entries the proxies appended.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

use crate::serve::PeerAddr;

/// Hops read from the right at most: a chain of proxies is a few long; a
/// header of thousands of entries costs no more than this.
const MAX_HOPS: usize = 32;

/// The client's address as resolved for this request (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The header trusted proxies write the client's address in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    Forwarded,
}

impl ForwardedHeader {
    /// `x-forwarded-for` or `forwarded`, as the config writes them.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }
}

/// The networks whose forwarding header is believed, and that header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedProxies {
    nets: Arc<Vec<IpNet>>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self {
            nets: Arc::new(nets),
            header: ForwardedHeader::default(),
        }
    }

    /// Reads `header` instead of `X-Forwarded-For`.
    #[must_use]
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let Some(ip) = hop else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The entries of every field named `name`, in order, each split on `,`
/// from the raw bytes and read on its own (an entry that is not text is
/// `None`).
fn entries<'a>(headers: &'a HeaderMap, name: &'static str) -> impl Iterator<Item = Option<&'a str>> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|field| field.as_bytes().split(|b| *b == b','))
        .map(|entry| std::str::from_utf8(entry).ok())
}

/// The `for=` of every element of every `Forwarded` field, in order. An
/// element without `for` counts as a hop of unknown address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    entries(headers, "forwarded")
        .map(|element| {
            element?
                .split(';')
                .find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| value.trim())
                })
                .and_then(node_address)
        })
        .collect()
}

/// Every entry of every `X-Forwarded-For` field, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    entries(headers, "x-forwarded-for")
        .map(|entry| entry.and_then(|e| node_address(e.trim())))
        .collect()
}

/// An RFC 7239 node (`192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:80"`,
/// `[2001:db8::1]`), or a bare address as X-Forwarded-For writes it.
fn node_address(raw: &str) -> Option<IpAddr> {
    let v = raw.trim().trim_matches('"');
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    // IPv4 with a port.
    let (host, port) = v.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Resolves the client once per request, for every handler and limiter.
pub async fn resolve(trusted: TrustedProxies, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req.extensions().get::<ConnectInfo<PeerAddr>>().map(|c| c.0.0.ip()) {
        let client = trusted.client(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

/// The client's address, when the server knows it (a router driven
/// without a listener, as in unit tests, does not).
pub fn of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| parts.extensions.get::<ConnectInfo<PeerAddr>>().map(|c| c.0.0.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            nets.iter()
                .map(|n| n.parse::<IpNet>().unwrap_or_else(|_| IpNet::from(ip(n))))
                .collect(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_its_own_client_whatever_it_claims() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "66.249.66.1"), ("forwarded", "for=66.249.66.1")]);
        assert_eq!(t.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let t = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 192.168.1.1")]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        // Several fields are one list.
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        // Only trusted hops: the leftmost of them.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
    }

    #[test]
    fn only_the_header_the_proxies_write_is_read() {
        let h = headers(&[
            (
                "forwarded",
                "for=1.2.3.4;proto=https, for=\"[2001:db8::7]:4711\";by=10.0.0.2",
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        // X-Forwarded-For proxies pass a client's Forwarded on as it came.
        let xff = proxies(&["10.0.0.0/8"]);
        assert_eq!(xff.client(ip("10.0.0.2"), &h), ip("198.51.100.1"));
        let only_forwarded = headers(&[("forwarded", "for=1.2.3.4")]);
        assert_eq!(xff.client(ip("10.0.0.2"), &only_forwarded), ip("10.0.0.2"));
        // And the other way round.
        let fwd = proxies(&["10.0.0.0/8"]).with_header(ForwardedHeader::Forwarded);
        assert_eq!(fwd.client(ip("10.0.0.2"), &h), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "For=\"198.51.100.4:8080\"")]);
        assert_eq!(fwd.client(ip("10.0.0.2"), &h), ip("198.51.100.4"));
        let only_xff = headers(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(fwd.client(ip("10.0.0.2"), &only_xff), ip("10.0.0.2"));
    }

    #[test]
    fn a_clients_bytes_do_not_spoil_what_the_proxy_appended() {
        let t = proxies(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe junk, 203.0.113.8").unwrap(),
        );
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.8"));
    }

    #[test]
    fn an_entry_that_is_no_address_stops_at_the_last_trusted_hop() {
        let t = proxies(&["10.0.0.0/8"]);
        for bad in ["unknown", "_hidden", "not an ip", "", "999.1.1.1", "[::1"] {
            let h = headers(&[("x-forwarded-for", &format!("66.249.66.1, {bad}, 10.0.0.5"))]);
            assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.0.0.5"), "{bad}");
        }
        let t = t.with_header(ForwardedHeader::Forwarded);
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn a_mapped_address_is_its_ipv4_and_long_chains_are_bounded() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.5")]);
        assert_eq!(t.client(ip("::ffff:10.0.0.2"), &h), ip("203.0.113.5"));
        let chain = vec!["10.0.0.1"; 10_000].join(",");
        let h = headers(&[("x-forwarded-for", &format!("203.0.113.5,{chain}"))]);
        // Past the bound the walk stops at a trusted hop, never at the
        // client-written start.
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.0.0.1"));
    }
}
