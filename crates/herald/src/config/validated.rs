//! The checked config the rest of the binary uses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::net::IpAddr;

use herald_auth::RecordPlan;
use herald_mta::{
    DeliveryConfig, Pool, PoolConfig, RetryPolicy, RuleSet, Site, SmarthostRoute, Source, TlsMode, WarmupDomain,
    WarmupPlan,
};
use herald_tracking::MachineRules;
use herald_types::{AccountName, DomainName, EmailAddress, parse_duration};
use ipnet::IpNet;
use serde::Serialize;

use super::raw::{RawConfig, RawDelivery, RawDestination, RawDns, RawDomains, RawSmtp, RawTracking, RawWebhooks};

/// A value that failed its check: the key, the value as written, and what
/// would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value:?}: expected {expected}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub expected: String,
}

fn bad(key: impl Into<String>, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.to_owned(),
        expected: expected.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub hostname: String,
    pub data_dir: PathBuf,
    pub shutdown_timeout: Duration,
    pub storage_url: String,
    pub http_listen: SocketAddr,
    pub public_url: String,
    pub http_tls: bool,
    pub request_timeout: Duration,
    /// Both set, or both `None` (self-signed in the data dir).
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub smtp: SmtpSettings,
    /// Empty: the system resolver.
    pub dns_servers: Vec<SocketAddr>,
    pub delivery: DeliveryConfig,
    /// What sending domains publish.
    pub domains: RecordPlan,
    /// The platform secret's file.
    pub secret_file: PathBuf,
    /// The platform's bounce domain (VERP addresses end in it).
    pub bounce_domain: String,
    /// How events are posted to webhooks.
    pub webhooks: herald_webhooks::Settings,
    /// When accounts' rates are checked.
    pub alerts: herald_events::reputation::AlertSettings,
    /// `[alerts]`' other conditions: DMARC checks' interval, unknown
    /// sources' minimum, deferral storms' attempts and share, certificate
    /// warning.
    pub alert_conditions: AlertConditions,
    /// Who counts as a machine on the tracking endpoints.
    pub machines: MachineRules,
    /// `[tracking] coalesce_window`.
    pub coalesce_window: Duration,
    /// `[dmarc] sending_networks`: Herald's own sending addresses.
    pub dmarc_networks: Vec<IpNet>,
    /// `[http] outbound_allow`: networks tenants' URLs may reach besides
    /// public addresses.
    pub outbound_allow: Vec<IpNet>,
    /// `[http] auth_failure_limit`: failed API authentications per client
    /// address per minute.
    pub http_auth_failure_limit: u32,
    /// `[http] trusted_proxies` and `trusted_proxy_header`: whose
    /// forwarding header is believed, and which header that is.
    pub trusted_proxies: herald_http::client_ip::TrustedProxies,
    /// `[metrics] listen`: `/metrics` on a listener of its own.
    pub metrics_listen: Option<SocketAddr>,
    /// `[metrics] token`: the bearer token `/metrics` requires.
    pub metrics_token: Option<String>,
    /// `[inbound]`: what the inbound MX takes from strangers.
    pub inbound: InboundLimits,
    /// `[retention]`: how long history is kept.
    pub retention: crate::retention::Retention,
    /// `[blocklists]`, checked.
    pub blocklists: BlocklistSettings,
    /// `[spamd]`, when an address is set.
    pub spamd: Option<herald_intake::spamd::SpamdSettings>,
    /// The config with every default resolved, for `config check`.
    effective: RawConfig,
}

/// `[alerts]`' conditions besides rates, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConditions {
    pub dmarc_interval: Duration,
    pub dmarc_unknown_min: u64,
    pub deferral_min: i64,
    pub deferral_share: f64,
    pub certificate_warning: Duration,
}

/// `[blocklists]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocklistSettings {
    pub lists: Vec<herald_checks::blocklists::Blocklist>,
    pub interval: Duration,
    pub pace: herald_checks::blocklists::Pace,
    pub max_samples: usize,
}

fn spamd_settings(raw: &super::raw::RawSpamd) -> Result<Option<herald_intake::spamd::SpamdSettings>, ConfigError> {
    if raw.address.trim().is_empty() {
        return Ok(None);
    }
    let address = raw
        .address
        .trim()
        .parse()
        .map_err(|_| bad("spamd.address", &raw.address, "host:port, e.g. \"127.0.0.1:783\""))?;
    if !(raw.threshold.is_finite() && (1.0..=1000.0).contains(&raw.threshold)) {
        return Err(bad(
            "spamd.threshold",
            &raw.threshold.to_string(),
            "a score from 1 to 1000",
        ));
    }
    if !(1024..=64 * 1024 * 1024).contains(&raw.max_size) {
        return Err(bad(
            "spamd.max_size",
            &raw.max_size.to_string(),
            "1024 to 67108864 bytes",
        ));
    }
    let accept_on_error = match raw.on_error.as_str() {
        "accept" => true,
        "tempfail" => false,
        other => return Err(bad("spamd.on_error", other, "\"accept\" or \"tempfail\"")),
    };
    Ok(Some(herald_intake::spamd::SpamdSettings {
        address,
        threshold: raw.threshold,
        timeout: positive_duration("spamd.timeout", &raw.timeout)?,
        max_size: usize::try_from(raw.max_size).unwrap_or(usize::MAX),
        accept_on_error,
    }))
}

fn blocklist_settings(raw: &super::raw::RawBlocklists) -> Result<BlocklistSettings, ConfigError> {
    use herald_checks::blocklists::{Blocklist, Pace, Subject};
    let mut lists: Vec<Blocklist> = Vec::new();
    for (i, zone) in raw.lists.iter().enumerate() {
        let list = Blocklist::named(zone).ok_or_else(|| bad(format!("blocklists.lists[{i}]"), zone, "a DNS zone"))?;
        if !lists.iter().any(|l| l.zone == list.zone) {
            lists.push(list);
        }
    }
    for (i, c) in raw.custom.iter().enumerate() {
        let key = |f: &str| format!("blocklists.custom[{i}].{f}");
        let subject = match c.kind.as_str() {
            "ip" | "" => Subject::Ip { ipv6: false },
            "ip6" => Subject::Ip { ipv6: true },
            "domain" => Subject::Domain,
            other => return Err(bad(key("kind"), other, "\"ip\", \"ip6\" or \"domain\"")),
        };
        let name = if c.name.trim().is_empty() {
            c.zone.clone()
        } else {
            c.name.clone()
        };
        let delist = (!c.delist_url.is_empty()).then(|| c.delist_url.clone());
        if let Some(u) = &delist
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(bad(key("delist_url"), u, "an http(s) URL"));
        }
        let list = Blocklist::custom(&c.zone, &name, subject, delist)
            .ok_or_else(|| bad(key("zone"), &c.zone, "a DNS zone"))?;
        lists.retain(|l| l.zone != list.zone);
        lists.push(list);
    }
    let timeout = positive_duration("blocklists.timeout", &raw.timeout)?;
    if raw.concurrency == 0 || raw.concurrency > 4096 {
        return Err(bad("blocklists.concurrency", &raw.concurrency.to_string(), "1 to 4096"));
    }
    if raw.max_samples == 0 || raw.max_samples > 256 {
        return Err(bad("blocklists.max_samples", &raw.max_samples.to_string(), "1 to 256"));
    }
    Ok(BlocklistSettings {
        lists,
        interval: duration("blocklists.check_interval", &raw.check_interval)?,
        pace: Pace {
            concurrency: raw.concurrency as usize,
            timeout,
        },
        max_samples: raw.max_samples as usize,
    })
}

/// `[inbound]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundLimits {
    pub forwards_per_hour: u32,
    pub unreadable_per_ip: u32,
    pub unreadable_total: u32,
}

/// `[smtp]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub submission: Vec<SocketAddr>,
    pub submission_tls: Vec<SocketAddr>,
    pub inbound: Vec<SocketAddr>,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    pub max_errors: u32,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub allow_auth_without_tls: bool,
    /// Failed AUTH per client address and username within the window.
    pub auth_failure_limit: u32,
    /// Failed AUTH per client address (any username) within the window.
    pub auth_failure_limit_per_ip: u32,
    pub auth_failure_window: Duration,
    /// Networks that relay without AUTH, and the account each one sends as.
    pub relay_networks: Vec<(IpNet, AccountName)>,
}

fn addresses(key: &str, values: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse()
                .map_err(|_| bad(format!("{key}[{i}]"), v, "an address and port such as 0.0.0.0:587"))
        })
        .collect()
}

fn smtp_settings(raw: &RawSmtp) -> Result<SmtpSettings, ConfigError> {
    let positive = |key: &str, v: u32| {
        if v == 0 {
            Err(bad(format!("smtp.{key}"), "0", "a number above 0"))
        } else {
            Ok(v)
        }
    };
    let relay_networks = raw
        .relay_networks
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let net = r
                .cidr
                .parse::<IpNet>()
                .or_else(|_| r.cidr.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        format!("smtp.relay_networks[{i}].cidr"),
                        &r.cidr,
                        "a network such as 10.0.0.0/8 or an address",
                    )
                })?;
            let account = AccountName::parse(&r.account)
                .map_err(|e| bad(format!("smtp.relay_networks[{i}].account"), &r.account, e.expected))?;
            Ok((net, account))
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(SmtpSettings {
        submission: addresses("smtp.submission", &raw.submission)?,
        submission_tls: addresses("smtp.submission_tls", &raw.submission_tls)?,
        inbound: addresses("smtp.inbound", &raw.inbound)?,
        max_message_size: usize::try_from(raw.max_message_size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad(
                    "smtp.max_message_size",
                    &raw.max_message_size.to_string(),
                    "a size in bytes above 0",
                )
            })?,
        max_recipients: positive("max_recipients", raw.max_recipients)? as usize,
        max_connections_per_ip: positive("max_connections_per_ip", raw.max_connections_per_ip)? as usize,
        max_connections: positive("max_connections", raw.max_connections)? as usize,
        max_errors: positive("max_errors", raw.max_errors)?,
        command_timeout: duration("smtp.command_timeout", &raw.command_timeout)?,
        data_timeout: duration("smtp.data_timeout", &raw.data_timeout)?,
        allow_auth_without_tls: raw.allow_auth_without_tls,
        auth_failure_limit: positive("auth_failure_limit", raw.auth_failure_limit)?,
        auth_failure_limit_per_ip: positive("auth_failure_limit_per_ip", raw.auth_failure_limit_per_ip)?,
        auth_failure_window: duration("smtp.auth_failure_window", &raw.auth_failure_window)?,
        relay_networks,
    })
}

/// `host:port`, `[v6]:port`.
fn host_port(key: String, value: &str) -> Result<(String, u16), ConfigError> {
    let expected = "host:port, such as 127.0.0.1:2602 or relay.example.com:587";
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad(key.clone(), value, expected))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad(key.clone(), value, expected))?;
    if host.is_empty() || port == 0 {
        return Err(bad(key, value, expected));
    }
    Ok((host.to_owned(), port))
}

fn ladder(key: &str, list: &[String]) -> Result<Vec<Duration>, ConfigError> {
    if list.is_empty() {
        return Err(bad(key, "[]", "at least one duration"));
    }
    list.iter()
        .enumerate()
        .map(|(i, d)| duration(&format!("{key}[{i}]"), d))
        .collect()
}

/// The retry ladders: Herald's per reason unless `retry_schedule` is set,
/// with `[delivery.retry]`'s over either.
fn retry_policy(raw: &RawDelivery) -> Result<(RetryPolicy, Vec<Duration>), ConfigError> {
    let mut policy = match &raw.retry_schedule {
        None => RetryPolicy::builtin(),
        Some(list) => RetryPolicy::uniform(ladder("delivery.retry_schedule", list)?),
    };
    for (reason, list) in &raw.retry {
        let key = format!("delivery.retry.{reason}");
        let named = herald_rules::reason_named(reason).ok_or_else(|| {
            bad(
                &key,
                reason,
                "a reason such as mailboxfull, speeding, blocked or hostunknown",
            )
        })?;
        policy.by_reason.insert(named, ladder(&key, list)?);
    }
    let default = policy.default.clone();
    Ok((policy, default))
}

fn destination_sites(raw: &[RawDestination]) -> Result<Vec<Site>, ConfigError> {
    let mut names = std::collections::HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, d)| {
            let key = |field: &str| format!("destinations[{i}].{field}");
            let name = d.name.trim().to_ascii_lowercase();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(key("name"), &d.name, "a name of letters, digits, - and _"));
            }
            if !names.insert(name.clone()) {
                return Err(bad(key("name"), &d.name, "a name no other destination has"));
            }
            let patterns = |field: &str, list: &Option<herald_rules::OneOrMany>| -> Result<Vec<String>, ConfigError> {
                list.as_ref().map_or(Ok(Vec::new()), |l| {
                    l.items()
                        .into_iter()
                        .map(|p| {
                            let p = p.trim().trim_end_matches('.').to_ascii_lowercase();
                            let bare = p.strip_prefix("*.").unwrap_or(&p);
                            DomainName::parse(bare)
                                .map(|_| p.clone())
                                .map_err(|_| bad(key(field), &p, "a domain, or *. and a domain"))
                        })
                        .collect()
                })
            };
            let count = |field: &str, v: Option<u32>| -> Result<Option<u32>, ConfigError> {
                match v {
                    Some(0) => Err(bad(key(field), "0", "a number above 0")),
                    other => Ok(other),
                }
            };
            let tls = match &d.tls {
                None => None,
                Some(t) => {
                    Some(TlsMode::parse(t).ok_or_else(|| bad(key("tls"), t, "opportunistic, required or disabled"))?)
                }
            };
            Ok(Site {
                name,
                domains: patterns("domain", &d.domain)?,
                mx: patterns("mx", &d.mx)?,
                max_connections: count("max_connections", d.max_connections)?.map(|n| n as usize),
                messages_per_connection: count("messages_per_connection", d.messages_per_connection)?
                    .map(|n| n as usize),
                messages_per_minute: count("messages_per_minute", d.messages_per_minute)?,
                messages_per_hour: count("messages_per_hour", d.messages_per_hour)?,
                recipients_per_message: count("recipients_per_message", d.recipients_per_message)?.map(|n| n as usize),
                tls,
            })
        })
        .collect()
}

fn day(key: &str, value: &str) -> Result<time::Date, ConfigError> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &f).map_err(|_| bad(key, value, "a date such as 2026-12-01"))
}

fn pool_config(raw: &RawConfig, data_dir: &std::path::Path) -> Result<PoolConfig, ConfigError> {
    let mut plans = Vec::new();
    for (i, p) in raw.warmup_plans.iter().enumerate() {
        let key = |f: &str| format!("warmup_plans[{i}].{f}");
        if p.name.trim().is_empty() || plans.iter().any(|q: &WarmupPlan| q.name == p.name) {
            return Err(bad(key("name"), &p.name, "a name no other plan has"));
        }
        if p.daily.is_empty() || p.daily.contains(&0) {
            return Err(bad(
                key("daily"),
                &format!("{:?}", p.daily),
                "daily volumes above 0, day by day",
            ));
        }
        if p.hourly.contains(&0) || p.hourly.len() > p.daily.len() {
            return Err(bad(
                key("hourly"),
                &format!("{:?}", p.hourly),
                "hourly caps above 0, at most one per day",
            ));
        }
        plans.push(WarmupPlan {
            name: p.name.clone(),
            daily: p.daily.clone(),
            hourly: p.hourly.clone(),
        });
    }
    if !plans.iter().any(|p| p.name == "default") {
        plans.push(WarmupPlan::default_plan());
    }
    let plan = |key: String, name: &str| -> Result<String, ConfigError> {
        if plans.iter().any(|p| p.name == name) {
            Ok(name.to_owned())
        } else {
            Err(bad(key, name, "the name of a [[warmup_plans]] entry, or default"))
        }
    };
    let mut pools: Vec<Pool> = Vec::new();
    for (i, p) in raw.ip_pools.iter().enumerate() {
        let key = |f: &str| format!("ip_pools[{i}].{f}");
        if p.name.trim().is_empty() || pools.iter().any(|q| q.name == p.name) {
            return Err(bad(key("name"), &p.name, "a name no other pool has"));
        }
        for a in &p.accounts {
            AccountName::parse(a).map_err(|e| bad(key("accounts"), a, e.expected))?;
        }
        if p.dedicated && p.accounts.is_empty() {
            return Err(bad(key("accounts"), "[]", "the accounts a dedicated pool is for"));
        }
        let mut sources = Vec::new();
        for (j, src) in p.sources.iter().enumerate() {
            let skey = |f: &str| format!("ip_pools[{i}].sources[{j}].{f}");
            let ip: IpAddr = src
                .ip
                .parse()
                .map_err(|_| bad(skey("ip"), &src.ip, "an IP address of this machine"))?;
            let ehlo = DomainName::parse(&src.ehlo)
                .map_err(|e| bad(skey("ehlo"), &src.ehlo, e.expected))?
                .to_string();
            let warmup = src.warmup.as_ref().map(|w| plan(skey("warmup"), w)).transpose()?;
            let warmup_start = src
                .warmup_start
                .as_ref()
                .map(|d| day(&skey("warmup_start"), d))
                .transpose()?;
            sources.push(Source {
                ip,
                ehlo,
                warmup,
                warmup_start,
            });
        }
        pools.push(Pool {
            name: p.name.clone(),
            dedicated: p.dedicated,
            accounts: p.accounts.clone(),
            streams: p.streams.clone(),
            sources,
            overflow: p.overflow.clone(),
        });
    }
    for (i, p) in pools.iter().enumerate() {
        if let Some(o) = &p.overflow
            && (o == &p.name || !pools.iter().any(|q| &q.name == o))
        {
            return Err(bad(format!("ip_pools[{i}].overflow"), o, "the name of another pool"));
        }
    }
    let mut domains = Vec::new();
    for (i, d) in raw.warmup_domains.iter().enumerate() {
        let key = |f: &str| format!("warmup_domains[{i}].{f}");
        let domain = DomainName::parse(&d.domain)
            .map_err(|e| bad(key("domain"), &d.domain, e.expected))?
            .to_string();
        domains.push(WarmupDomain {
            domain,
            plan: plan(key("plan"), &d.plan)?,
            start: d.start.as_ref().map(|s| day(&key("start"), s)).transpose()?,
        });
    }
    Ok(PoolConfig {
        pools,
        plans,
        domains,
        state_file: Some(data_dir.join("warmup.json")),
    })
}

fn ca_file(key: &str, path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|_| bad(key, path, "a readable PEM file of CA certificates"))?;
    if certs.is_empty() {
        return Err(bad(key, path, "a PEM file with at least one certificate"));
    }
    Ok(certs)
}

fn delivery_settings(
    raw: &RawConfig,
    ehlo_name: &str,
    data_dir: &std::path::Path,
) -> Result<DeliveryConfig, ConfigError> {
    let fetch_allow = networks("http.outbound_allow", &raw.http.outbound_allow)?;
    let rules_raw = &raw.response_rules;
    let destinations = destination_sites(&raw.destinations)?;
    let pools = pool_config(raw, data_dir)?;
    let raw = &raw.delivery;
    if raw.port == 0 {
        return Err(bad("delivery.port", "0", "a port above 0"));
    }
    let (policy, retry_schedule) = retry_policy(raw)?;
    let rules = RuleSet::new(rules_raw, policy).map_err(|e| {
        let index = rules_raw.iter().position(|r| r.name.trim() == e.rule).unwrap_or(0);
        bad(format!("response_rules[{index}].{}", e.field), &e.rule, e.message)
    })?;
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let domain = if r.domain == "*" {
                r.domain.clone()
            } else {
                DomainName::parse(&r.domain)
                    .map_err(|e| {
                        bad(
                            format!("delivery.routes[{i}].domain"),
                            &r.domain,
                            format!("\"*\" or {}", e.expected),
                        )
                    })?
                    .to_string()
            };
            let (host, port) = host_port(format!("delivery.routes[{i}].smarthost"), &r.smarthost)?;
            Ok(SmarthostRoute { domain, host, port })
        })
        .collect::<Result<_, ConfigError>>()?;
    let count = |key: &str, v: u32| {
        if v == 0 {
            Err(bad(format!("delivery.{key}"), "0", "a number above 0"))
        } else {
            Ok(v as usize)
        }
    };
    Ok(DeliveryConfig {
        ehlo_name: ehlo_name.to_owned(),
        port: raw.port,
        max_age: duration("delivery.max_age", &raw.max_age)?,
        retry_schedule,
        rules: std::sync::Arc::new(rules),
        destinations,
        messages_per_minute: (raw.messages_per_minute > 0).then_some(raw.messages_per_minute),
        messages_per_hour: (raw.messages_per_hour > 0).then_some(raw.messages_per_hour),
        recipients_per_message: count("recipients_per_message", raw.recipients_per_message)?,
        max_mx_hosts: count("max_mx_hosts", raw.max_mx_hosts)?,
        max_addresses: count("max_addresses", raw.max_addresses)?,
        pools,
        mta_sts: raw.mta_sts,
        dane: raw.dane,
        mta_sts_port: if raw.mta_sts_port == 0 {
            return Err(bad("delivery.mta_sts_port", "0", "a port above 0"));
        } else {
            raw.mta_sts_port
        },
        extra_roots: ca_file("delivery.tls_ca_file", &raw.tls_ca_file)?,
        fetch_allow,
        state_dir: Some(data_dir.to_owned()),
        connect_timeout: duration("delivery.connect_timeout", &raw.connect_timeout)?,
        command_timeout: duration("delivery.command_timeout", &raw.command_timeout)?,
        max_connections_per_destination: count("max_connections_per_destination", raw.max_connections_per_destination)?,
        max_messages_per_connection: count("max_messages_per_connection", raw.max_messages_per_connection)?,
        idle_timeout: duration("delivery.idle_timeout", &raw.idle_timeout)?,
        starttls: raw.starttls,
        routes,
    })
}

/// A domain-valued key: empty means `default`.
fn domain_or(key: &str, value: &str, default: String) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Ok(default);
    }
    DomainName::parse(value)
        .map(|d| d.to_string())
        .map_err(|e| bad(key, value, e.expected))
}

/// A DNS label: letters, digits and hyphens.
fn label(key: &str, value: &str) -> Result<String, ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !value.starts_with('-');
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(bad(key, value, "a DNS label such as \"bounces\""))
    }
}

fn domains_plan(raw: &RawDomains, hostname: &str, public_url: &str) -> Result<RecordPlan, ConfigError> {
    let tracking_host = public_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(rest))
        .unwrap_or(hostname)
        .to_owned();
    let dmarc_rua = if raw.dmarc_rua.is_empty() {
        format!("dmarc@{hostname}")
    } else {
        EmailAddress::parse(&raw.dmarc_rua)
            .map_err(|e| bad("domains.dmarc_rua", &raw.dmarc_rua, e.expected))?
            .to_string()
    };
    Ok(RecordPlan {
        spf_include: domain_or("domains.spf_include", &raw.spf_include, format!("_spf.{hostname}"))?,
        dmarc_rua,
        bounce_domain: domain_or("domains.bounce_domain", &raw.bounce_domain, hostname.to_owned())?,
        return_path_label: label("domains.return_path_label", &raw.return_path_label)?,
        tracking_host,
        tracking_label: label("domains.tracking_label", &raw.tracking_label)?,
    })
}

fn name_servers(raw: &RawDns) -> Result<Vec<SocketAddr>, ConfigError> {
    raw.nameservers
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.parse::<SocketAddr>()
                .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    bad(
                        format!("dns.nameservers[{i}]"),
                        v,
                        "an address such as 127.0.0.1 or 127.0.0.1:5353",
                    )
                })
        })
        .collect()
}

/// This machine's host name, for EHLO and the certificate.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| DomainName::parse(h).is_ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A duration above zero.
fn positive_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let d = duration(key, value)?;
    if d.is_zero() {
        return Err(bad(key, value, "a duration above zero, e.g. \"10s\""));
    }
    Ok(d)
}

fn webhook_settings(raw: &RawWebhooks) -> Result<herald_webhooks::Settings, ConfigError> {
    let positive = positive_duration;
    let settings = herald_webhooks::Settings {
        timeout: positive("webhooks.timeout", &raw.timeout)?,
        retry_initial: positive("webhooks.retry_initial", &raw.retry_initial)?,
        retry_max: positive("webhooks.retry_max", &raw.retry_max)?,
        give_up_after: positive("webhooks.give_up_after", &raw.give_up_after)?,
        ..herald_webhooks::Settings::default()
    };
    if settings.retry_max < settings.retry_initial {
        return Err(bad(
            "webhooks.retry_max",
            &raw.retry_max,
            "a duration at least webhooks.retry_initial",
        ));
    }
    Ok(settings)
}

fn machine_rules(raw: &RawTracking) -> Result<MachineRules, ConfigError> {
    let mut rules = MachineRules::default();
    for (i, agent) in raw.machine_agents.iter().enumerate() {
        let agent = agent.trim().to_ascii_lowercase();
        if agent.is_empty() {
            return Err(bad(
                format!("tracking.machine_agents[{i}]"),
                "",
                "a user-agent fragment",
            ));
        }
        rules.agents.push(agent);
    }
    rules.networks = networks("tracking.machine_networks", &raw.machine_networks)?;
    let window = duration("tracking.click_window", &raw.click_window)?;
    rules.click_window_secs = u32::try_from(window.as_secs()).unwrap_or(u32::MAX);
    Ok(rules)
}

/// A list of networks (`192.0.2.0/24`) or single addresses.
fn networks(key: &str, raw: &[String]) -> Result<Vec<IpNet>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, net)| {
            net.parse::<IpNet>()
                .or_else(|_| net.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    bad(
                        format!("{key}[{i}]"),
                        net,
                        "a network such as 192.0.2.0/24 or an address",
                    )
                })
        })
        .collect()
}

fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_duration(value).map_err(|e| bad(key, value, e.expected))
}

impl Config {
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let hostname = if raw.server.hostname.is_empty() {
            machine_hostname()
        } else {
            DomainName::parse(&raw.server.hostname)
                .map_err(|e| bad("server.hostname", &raw.server.hostname, e.expected))?
                .to_string()
        };
        if raw.server.data_dir.is_empty() {
            return Err(bad("server.data_dir", "", "a directory path"));
        }
        let data_dir = PathBuf::from(&raw.server.data_dir);
        let storage_url = if raw.storage.url.is_empty() {
            format!("sqlite://{}", data_dir.join("herald.db").display())
        } else if herald_store_sql::backend_of(&raw.storage.url).is_some() {
            raw.storage.url.clone()
        } else {
            return Err(bad(
                "storage.url",
                &raw.storage.url,
                "sqlite://PATH or postgres://USER@HOST/DATABASE",
            ));
        };
        let http_listen: SocketAddr = raw.http.listen.parse().map_err(|_| {
            bad(
                "http.listen",
                &raw.http.listen,
                "an address and port such as 0.0.0.0:8080",
            )
        })?;
        let public_url = if raw.http.public_url.is_empty() {
            let scheme = if raw.http.tls { "https" } else { "http" };
            format!("{scheme}://{hostname}:{}", http_listen.port())
        } else if raw.http.public_url.starts_with("https://") || raw.http.public_url.starts_with("http://") {
            raw.http.public_url.trim_end_matches('/').to_owned()
        } else {
            return Err(bad(
                "http.public_url",
                &raw.http.public_url,
                "a URL starting with https:// or http://",
            ));
        };
        let tls_files = match (raw.smtp.tls_cert.is_empty(), raw.smtp.tls_key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((PathBuf::from(&raw.smtp.tls_cert), PathBuf::from(&raw.smtp.tls_key))),
            (true, false) => {
                return Err(bad(
                    "smtp.tls_cert",
                    "",
                    "a certificate file, since smtp.tls_key is set",
                ));
            }
            (false, true) => {
                return Err(bad(
                    "smtp.tls_key",
                    "",
                    "a private key file, since smtp.tls_cert is set",
                ));
            }
        };
        let log_format = LogFormat::parse(&raw.log.format)
            .ok_or_else(|| bad("log.format", &raw.log.format, "\"text\" or \"json\""))?;
        if tracing_subscriber::EnvFilter::try_new(&raw.log.level).is_err() {
            return Err(bad(
                "log.level",
                &raw.log.level,
                "a filter such as \"info\" or \"info,herald=debug\"",
            ));
        }
        let smtp = smtp_settings(&raw.smtp)?;
        let dns_servers = name_servers(&raw.dns)?;
        let delivery = delivery_settings(&raw, &hostname, &data_dir)?;
        let domains = domains_plan(&raw.domains, &hostname, &public_url)?;
        let secret_file = if raw.server.secret_file.is_empty() {
            data_dir.join("secret.key")
        } else {
            PathBuf::from(&raw.server.secret_file)
        };
        let machines = machine_rules(&raw.tracking)?;
        let coalesce_window = positive_duration("tracking.coalesce_window", &raw.tracking.coalesce_window)?;
        let webhooks = webhook_settings(&raw.webhooks)?;
        let alerts = herald_events::reputation::AlertSettings {
            interval: duration("alerts.check_interval", &raw.alerts.check_interval)?,
            min_volume: i64::from(raw.alerts.min_volume),
        };
        if alerts.interval.is_zero() {
            return Err(bad(
                "alerts.check_interval",
                &raw.alerts.check_interval,
                "a duration above zero, e.g. \"5m\"",
            ));
        }
        let dmarc_networks = networks("dmarc.sending_networks", &raw.dmarc.sending_networks)?;
        let outbound_allow = networks("http.outbound_allow", &raw.http.outbound_allow)?;
        let header =
            herald_http::client_ip::ForwardedHeader::parse(&raw.http.trusted_proxy_header).ok_or_else(|| {
                bad(
                    "http.trusted_proxy_header",
                    &raw.http.trusted_proxy_header,
                    "x-forwarded-for or forwarded",
                )
            })?;
        let trusted_proxies =
            herald_http::client_ip::TrustedProxies::new(networks("http.trusted_proxies", &raw.http.trusted_proxies)?)
                .with_header(header);
        let metrics_listen = if raw.metrics.listen.is_empty() {
            None
        } else {
            Some(raw.metrics.listen.parse::<SocketAddr>().map_err(|_| {
                bad(
                    "metrics.listen",
                    &raw.metrics.listen,
                    "an address and port such as 127.0.0.1:9090",
                )
            })?)
        };
        let metrics_token = match raw.metrics.token.as_str() {
            "" => None,
            t if t.len() >= 16 && t.len() <= 256 && t.bytes().all(|b| b.is_ascii_graphic()) => Some(t.to_owned()),
            _ => {
                return Err(bad(
                    "metrics.token",
                    "(hidden)",
                    "16 to 256 printable ASCII characters without spaces",
                ));
            }
        };
        let kept = |key: &str, value: &str| -> Result<Option<Duration>, ConfigError> {
            let d = duration(key, value)?;
            Ok((!d.is_zero()).then_some(d))
        };
        let r = &raw.retention;
        let retention = crate::retention::Retention {
            keep: vec![
                (herald_store::Prunable::Events, kept("retention.events", &r.events)?),
                (
                    herald_store::Prunable::MessageIndex,
                    kept("retention.message_index", &r.message_index)?,
                ),
                (
                    herald_store::Prunable::Reports,
                    kept("retention.dmarc_reports", &r.dmarc_reports)?,
                ),
                (
                    herald_store::Prunable::BrokenReports,
                    kept("retention.broken_reports", &r.broken_reports)?,
                ),
            ],
        };
        let blocklists = blocklist_settings(&raw.blocklists)?;
        if !(1..=100).contains(&raw.alerts.deferral_percent) {
            return Err(bad(
                "alerts.deferral_percent",
                &raw.alerts.deferral_percent.to_string(),
                "a percentage from 1 to 100",
            ));
        }
        let alert_conditions = AlertConditions {
            dmarc_interval: positive_duration("alerts.dmarc_check_interval", &raw.alerts.dmarc_check_interval)?,
            dmarc_unknown_min: u64::from(raw.alerts.dmarc_unknown_min.max(1)),
            deferral_min: i64::from(raw.alerts.deferral_min_attempts.max(1)),
            deferral_share: f64::from(raw.alerts.deferral_percent) / 100.0,
            certificate_warning: duration("alerts.certificate_warning", &raw.alerts.certificate_warning)?,
        };
        let spamd = spamd_settings(&raw.spamd)?;
        let inbound = InboundLimits {
            forwards_per_hour: raw.inbound.forwards_per_hour,
            unreadable_per_ip: raw.inbound.unreadable_per_ip,
            unreadable_total: raw.inbound.unreadable_total,
        };
        let mut effective = raw.clone();
        effective.server.hostname = hostname.clone();
        effective.storage.url = storage_url.clone();
        effective.http.public_url = public_url.clone();
        Ok(Self {
            smtp,
            dns_servers,
            delivery,
            bounce_domain: domains.bounce_domain.clone(),
            domains,
            secret_file,
            machines,
            coalesce_window,
            dmarc_networks,
            outbound_allow,
            http_auth_failure_limit: raw.http.auth_failure_limit.max(1),
            trusted_proxies,
            metrics_listen,
            metrics_token,
            inbound,
            retention,
            webhooks,
            alerts,
            blocklists,
            spamd,
            alert_conditions,
            effective,
            hostname,
            data_dir,
            shutdown_timeout: duration("server.shutdown_timeout", &raw.server.shutdown_timeout)?,
            storage_url,
            http_listen,
            public_url,
            http_tls: raw.http.tls,
            request_timeout: duration("http.request_timeout", &raw.http.request_timeout)?,
            tls_files,
            log_format,
            log_level: raw.log.level,
        })
    }

    /// The effective config as TOML, defaults resolved, for `config check`;
    /// a database password is masked.
    pub fn to_toml(&self) -> String {
        let mut shown = self.effective.clone();
        shown.storage.url = redact_password(&shown.storage.url);
        if !shown.metrics.token.is_empty() {
            shown.metrics.token = "(hidden)".to_owned();
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }

    /// Where the self-signed certificate lives when none is configured.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, so a
/// printed config never shows a database password.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;

    fn with(toml_text: &str) -> Result<Config, ConfigError> {
        Config::from_raw(toml::from_str::<RawConfig>(toml_text).expect("parses"))
    }

    #[test]
    fn defaults_resolve_against_each_other() {
        let c = with("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./herald-data"));
        assert_eq!(c.storage_url, "sqlite://./herald-data/herald.db");
        assert_eq!(c.http_listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
        assert!(c.public_url.ends_with(":8080") && c.public_url.starts_with("http://"));
        assert_eq!(c.tls_files, None);
    }

    #[test]
    fn bad_values_name_key_value_and_expectation() {
        let e = with("[http]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!(e.key, "http.listen");
        assert_eq!(
            e.to_string(),
            "http.listen = \"localhost\": expected an address and port such as 0.0.0.0:8080"
        );
        let e = with("[storage]\nurl = \"mysql://x/y\"\n").unwrap_err();
        assert_eq!(e.key, "storage.url");
        let e = with("[server]\nshutdown_timeout = \"30\"\n").unwrap_err();
        assert_eq!(e.key, "server.shutdown_timeout");
        assert!(e.to_string().contains("\"72h\""), "{e}");
        let e = with("[smtp]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert_eq!(e.key, "smtp.tls_key");
        let e = with("[log]\nformat = \"xml\"\n").unwrap_err();
        assert_eq!(e.key, "log.format");
        let e = with("[server]\nhostname = \"not a host\"\n").unwrap_err();
        assert_eq!(e.key, "server.hostname");
    }

    #[test]
    fn smtp_dns_and_delivery_sections_are_checked() {
        let c = with(
            "[smtp]\nsubmission = [\"127.0.0.1:0\"]\n[[smtp.relay_networks]]\ncidr = \"10.0.0.0/8\"\naccount = \"Main\"\n\
             [[smtp.relay_networks]]\ncidr = \"192.0.2.7\"\naccount = \"ops\"\n\
             [dns]\nnameservers = [\"127.0.0.1:5353\", \"::1\"]\n\
             [delivery]\nretry_schedule = [\"1s\"]\n[[delivery.routes]]\ndomain = \"*\"\nsmarthost = \"[::1]:2602\"\n",
        )
        .unwrap();
        assert_eq!(c.smtp.submission.len(), 1);
        assert_eq!(c.smtp.relay_networks[0].1.as_str(), "main");
        assert_eq!(c.smtp.relay_networks[1].0.to_string(), "192.0.2.7/32");
        assert_eq!(c.dns_servers[1].to_string(), "[::1]:53");
        assert_eq!(
            c.delivery.routes,
            vec![SmarthostRoute {
                domain: "*".to_owned(),
                host: "::1".to_owned(),
                port: 2602
            }]
        );
        assert_eq!(c.delivery.retry_schedule, vec![Duration::from_secs(1)]);

        for (text, key) in [
            ("[smtp]\ninbound = [\"0.0.0.0\"]\n", "smtp.inbound[0]"),
            (
                "[[smtp.relay_networks]]\ncidr = \"10.0.0.0/33\"\naccount = \"main\"\n",
                "smtp.relay_networks[0].cidr",
            ),
            ("[dns]\nnameservers = [\"resolver\"]\n", "dns.nameservers[0]"),
            ("[delivery]\nretry_schedule = []\n", "delivery.retry_schedule"),
            ("[delivery]\nmax_age = \"3 days\"\n", "delivery.max_age"),
            (
                "[[delivery.routes]]\ndomain = \"*\"\nsmarthost = \"relay\"\n",
                "delivery.routes[0].smarthost",
            ),
            ("[smtp]\nmax_recipients = 0\n", "smtp.max_recipients"),
        ] {
            assert_eq!(with(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn the_effective_config_hides_database_passwords() {
        let c = with("[storage]\nurl = \"postgres://herald:s3cret@db.internal/herald\"\n").unwrap();
        let printed = c.to_toml();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(
            printed.contains("postgres://herald:***@db.internal/herald"),
            "{printed}"
        );
        assert_eq!(redact_password("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn the_effective_config_parses_back_to_itself() {
        let c = with("[http]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"90s\"\n").unwrap();
        let again = with(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }
}
