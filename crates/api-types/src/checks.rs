//! The DNS linter's answer: `GET /api/v1/checks/dns/{domain}` and `herald check dns --json`.
//!
//! A report holds every finding (what is wrong, how badly, and what to do)
//! and, per record type, what was found in DNS, so a client can show the
//! records beside the advice without asking DNS again. Finding codes are
//! stable machine names (`spf.too_many_lookups`); messages are for people
//! and may change between versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How badly a finding hurts delivery or security, least first, so
/// `max()` over findings is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// Works, but weakens authentication or reporting; fix when you can.
    Warning,
    /// Receivers will treat the record as broken (an SPF `permerror`, an
    /// unusable key, a report address that receives nothing).
    Error,
    /// Anyone can send mail in the domain's name.
    Critical,
}

/// Which record a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Spf,
    Dmarc,
    Dkim,
    Mx,
}

/// One problem, or one fact worth knowing, about a domain's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub check: CheckKind,
    pub severity: Severity,
    /// Stable, machine-readable: `<check>.<what>`.
    #[schema(example = "spf.too_many_lookups")]
    pub code: String,
    /// What is wrong and what to do about it.
    #[schema(
        example = "The SPF record needs 12 DNS lookups; receivers stop at 10 and answer permerror \
                        (RFC 7208 §4.6.4). Replace includes with ip4:/ip6: ranges, or drop services that no \
                        longer send."
    )]
    pub message: String,
}

/// Everything the linter found for one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DnsReport {
    #[schema(example = "acme.com")]
    pub domain: String,
    /// The most severe finding; `null` when there are none.
    pub worst: Option<Severity>,
    /// No finding is an `error` or `critical`.
    pub ok: bool,
    /// Most severe first.
    pub findings: Vec<Finding>,
    pub spf: SpfCheck,
    pub dmarc: DmarcCheck,
    pub dkim: DkimCheck,
    pub mx: MxCheck,
}

/// The SPF record (RFC 7208) at the domain, and what evaluating it costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpfCheck {
    /// No SPF finding is an `error` or `critical`.
    pub ok: bool,
    #[schema(example = "3 DNS lookups (limit 10), 0 void (limit 2), ends in -all")]
    pub summary: String,
    /// The `v=spf1` record, when there is exactly one.
    #[schema(example = "v=spf1 include:_spf.herald.example -all")]
    pub record: Option<String>,
    /// DNS-querying terms (include, a, mx, ptr, exists, redirect) a receiver
    /// evaluates in the worst case, includes and redirects followed. The
    /// limit is 10.
    pub lookups: u32,
    /// Of those, the ones that find nothing (NXDOMAIN or no records). The
    /// limit is 2.
    pub void_lookups: u32,
    /// Every record reached through `include:` or `redirect=`, in the order
    /// a receiver reaches them.
    pub includes: Vec<SpfInclude>,
}

/// A record reached through `include:` or `redirect=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpfInclude {
    /// The domain whose record names it.
    #[schema(example = "acme.com")]
    pub parent: String,
    /// `include` or `redirect`.
    pub via: String,
    #[schema(example = "_spf.google.com")]
    pub domain: String,
    /// Its `v=spf1` record; `null` when it has none (or several).
    pub record: Option<String>,
    /// The DNS-querying terms inside it, its own includes included (not
    /// counting the term that reached it).
    pub lookups: u32,
}

/// The DMARC policy (RFC 9989) that applies to the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DmarcCheck {
    /// No DMARC finding is an `error` or `critical`.
    pub ok: bool,
    #[schema(example = "p=reject at _dmarc.acme.com; aggregate reports to 1 address")]
    pub summary: String,
    /// The `v=DMARC1` record that applies.
    #[schema(example = "v=DMARC1; p=reject; rua=mailto:dmarc@acme.com")]
    pub record: Option<String>,
    /// Where it was found.
    #[schema(example = "_dmarc.acme.com")]
    pub found_at: Option<String>,
    /// The record is the organizational domain's, not the domain's own.
    pub inherited: bool,
    /// The organizational domain found by the DNS tree walk (RFC 9989
    /// §4.10): report destinations outside it need an authorisation record.
    #[schema(example = "acme.com")]
    pub organizational_domain: Option<String>,
    /// Every tag of the record as written, names in lower case.
    #[schema(example = json!({"v": "DMARC1", "p": "reject", "rua": "mailto:dmarc@acme.com"}))]
    pub tags: BTreeMap<String, String>,
    /// The policy a receiver applies to mail from this domain: `p`, or for
    /// an inherited record `sp` (which defaults to `p`). `none`,
    /// `quarantine` or `reject`.
    #[schema(example = "reject")]
    pub policy: Option<String>,
    /// Aggregate report URIs (`rua`).
    pub rua: Vec<String>,
    /// Failure report URIs (`ruf`).
    pub ruf: Vec<String>,
    /// Each report destination outside the organizational domain and
    /// whether it agreed to receive the domain's reports.
    pub external_destinations: Vec<DmarcDestination>,
}

/// A report destination outside the domain's organizational domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DmarcDestination {
    #[schema(example = "reports.example.net")]
    pub host: String,
    /// The TXT record that authorises it (RFC 9990 §3).
    #[schema(example = "acme.com._report._dmarc.reports.example.net")]
    pub authorization_record: String,
    /// `null` when DNS did not answer.
    pub authorized: Option<bool>,
}

/// The DKIM keys (RFC 6376) at the selectors checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DkimCheck {
    /// No DKIM finding is an `error` or `critical`.
    pub ok: bool,
    #[schema(example = "2 selectors: hrld20261123r (2048-bit rsa), hrld20261123e (ed25519)")]
    pub summary: String,
    pub selectors: Vec<DkimSelectorCheck>,
}

/// One selector's key record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DkimSelectorCheck {
    #[schema(example = "hrld20261123r")]
    pub selector: String,
    #[schema(example = "hrld20261123r._domainkey.acme.com")]
    pub name: String,
    pub record: Option<String>,
    /// `rsa` or `ed25519`.
    pub key_type: Option<String>,
    /// The RSA modulus length; 256 for Ed25519.
    pub bits: Option<u32>,
    /// `t=y`: receivers are asked to treat failures as if unsigned.
    pub testing: bool,
    /// An empty `p=`: the key was withdrawn.
    pub revoked: bool,
}

/// Where mail to the domain goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MxCheck {
    /// No MX finding is an `error` or `critical`.
    pub ok: bool,
    #[schema(example = "2 MX hosts: mx1.acme.com (10), mx2.acme.com (20)")]
    pub summary: String,
    /// RFC 7505 `0 .`: the domain accepts no mail.
    pub null_mx: bool,
    /// The MX hosts in preference order (none for a null MX).
    pub hosts: Vec<MxHostCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MxHostCheck {
    pub preference: u16,
    #[schema(example = "mx1.acme.com")]
    pub host: String,
    /// Its IPv4 and IPv6 addresses.
    #[schema(example = json!(["192.0.2.25", "2001:db8::25"]))]
    pub addresses: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_lower_case_and_ordered() {
        assert_eq!(serde_json::to_value(Severity::Critical).unwrap(), "critical");
        assert_eq!(serde_json::to_value(CheckKind::Dmarc).unwrap(), "dmarc");
        assert!(Severity::Critical > Severity::Error);
        assert!(Severity::Error > Severity::Warning);
        assert!(Severity::Warning > Severity::Info);
        let f: Finding =
            serde_json::from_str(r#"{"check":"spf","severity":"warning","code":"spf.ptr","message":"m"}"#).unwrap();
        assert_eq!(f.severity, Severity::Warning);
    }
}
