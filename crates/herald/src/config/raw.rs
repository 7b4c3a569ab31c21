//! The config file as written: strings and plain values, each with its
//! default as a named function. Unknown keys are errors, so a typo never
//! silently falls back to a default.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Answer rules, first match wins, before Herald's defaults.
    pub response_rules: Vec<herald_rules::RuleSpec>,
    /// Shaping per destination, over the built-in presets.
    pub destinations: Vec<RawDestination>,
    /// Source addresses (with EHLO names) by account and stream.
    pub ip_pools: Vec<RawPool>,
    /// Warm-up plans (a built-in `default` exists).
    pub warmup_plans: Vec<RawWarmupPlan>,
    /// Sending domains that warm up.
    pub warmup_domains: Vec<RawWarmupDomain>,
    pub server: RawServer,
    pub storage: RawStorage,
    pub http: RawHttp,
    pub smtp: RawSmtp,
    pub dns: RawDns,
    pub delivery: RawDelivery,
    pub domains: RawDomains,
    pub tracking: RawTracking,
    pub webhooks: RawWebhooks,
    pub alerts: RawAlerts,
    pub blocklists: RawBlocklists,
    pub spamd: RawSpamd,
    pub dmarc: RawDmarc,
    pub inbound: RawInbound,
    pub retention: RawRetention,
    pub metrics: RawMetrics,
    pub log: RawLog,
}

/// Where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    /// A listener of its own (`127.0.0.1:9090`); empty: the HTTP listener.
    pub listen: String,
    /// A bearer token `/metrics` requires; empty: none.
    pub token: String,
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub hostname: String,
    pub data_dir: String,
    pub shutdown_timeout: String,
    pub secret_file: String,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            hostname: String::new(),
            data_dir: s("./herald-data"),
            shutdown_timeout: s("30s"),
            secret_file: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStorage {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub listen: String,
    pub public_url: String,
    pub tls: bool,
    pub request_timeout: String,
    /// Networks tenants' URLs (webhooks, reply URLs) may reach besides
    /// public addresses.
    pub outbound_allow: Vec<String>,
    /// Failed API authentications per client address per minute before it
    /// is answered 429.
    pub auth_failure_limit: u32,
    /// Reverse proxies and load balancers whose `Forwarded` and
    /// `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write: x-forwarded-for or forwarded.
    pub trusted_proxy_header: String,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: s("0.0.0.0:8080"),
            public_url: String::new(),
            tls: false,
            request_timeout: s("30s"),
            outbound_allow: Vec::new(),
            auth_failure_limit: 30,
            trusted_proxies: Vec::new(),
            trusted_proxy_header: s("x-forwarded-for"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelayNetwork {
    pub cidr: String,
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSmtp {
    pub submission: Vec<String>,
    pub submission_tls: Vec<String>,
    pub inbound: Vec<String>,
    pub max_message_size: u64,
    pub max_recipients: u32,
    pub max_connections_per_ip: u32,
    pub max_connections: u32,
    pub max_errors: u32,
    pub command_timeout: String,
    pub data_timeout: String,
    pub allow_auth_without_tls: bool,
    pub auth_failure_limit: u32,
    pub auth_failure_limit_per_ip: u32,
    pub auth_failure_window: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub relay_networks: Vec<RawRelayNetwork>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        Self {
            submission: vec![s("0.0.0.0:587")],
            submission_tls: vec![s("0.0.0.0:465")],
            inbound: vec![s("0.0.0.0:25")],
            max_message_size: 26_214_400,
            max_recipients: 1000,
            max_connections_per_ip: 50,
            max_connections: 2000,
            max_errors: 20,
            command_timeout: s("5m"),
            data_timeout: s("10m"),
            allow_auth_without_tls: false,
            auth_failure_limit: 5,
            auth_failure_limit_per_ip: 30,
            auth_failure_window: s("15m"),
            tls_cert: String::new(),
            tls_key: String::new(),
            relay_networks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDns {
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub domain: String,
    pub smarthost: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDelivery {
    pub port: u16,
    pub max_age: String,
    /// Unset: Herald's ladders per reason (15 min to 30 h). Set: this
    /// ladder for every reason `retry` does not name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<Vec<String>>,
    /// A ladder per reason (`mailboxfull = ["1h", "4h", "12h"]`).
    pub retry: std::collections::BTreeMap<String, Vec<String>>,
    /// Limits of destinations no `[[destinations]]` entry names (0: none).
    pub messages_per_minute: u32,
    pub messages_per_hour: u32,
    pub recipients_per_message: u32,
    /// MX hosts, and addresses across them, tried per attempt.
    pub max_mx_hosts: u32,
    pub max_addresses: u32,
    pub connect_timeout: String,
    pub command_timeout: String,
    pub max_connections_per_destination: u32,
    pub max_messages_per_connection: u32,
    pub idle_timeout: String,
    pub starttls: bool,
    /// Apply recipient domains' MTA-STS policies.
    pub mta_sts: bool,
    /// Apply DANE where the resolver authenticates MX and TLSA records.
    pub dane: bool,
    /// The port MTA-STS policy hosts answer on (443; tests change it).
    pub mta_sts_port: u16,
    /// PEM certificates trusted beside Mozilla's for MTA-STS (policy and
    /// MX hosts): a private PKI; empty: none.
    pub tls_ca_file: String,
    pub routes: Vec<RawRoute>,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            port: 25,
            max_age: s("72h"),
            retry_schedule: None,
            retry: std::collections::BTreeMap::new(),
            messages_per_minute: 0,
            messages_per_hour: 0,
            recipients_per_message: 100,
            max_mx_hosts: 5,
            max_addresses: 10,
            connect_timeout: s("30s"),
            command_timeout: s("5m"),
            max_connections_per_destination: 20,
            max_messages_per_connection: 100,
            idle_timeout: s("5s"),
            starttls: true,
            mta_sts: true,
            dane: true,
            mta_sts_port: 443,
            tls_ca_file: String::new(),
            routes: Vec::new(),
        }
    }
}

/// A `[[destinations]]` entry: a named site, its domains or MX patterns,
/// its limits (unset: the preset's of the same name, or `[delivery]`'s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<herald_rules::OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mx: Option<herald_rules::OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_connection: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_message: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: String,
    #[serde(default)]
    pub dedicated: bool,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub streams: Vec<String>,
    pub sources: Vec<RawSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overflow: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub ip: String,
    pub ehlo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_start: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWarmupPlan {
    pub name: String,
    pub daily: Vec<u32>,
    #[serde(default)]
    pub hourly: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWarmupDomain {
    pub domain: String,
    #[serde(default = "default_plan")]
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

fn default_plan() -> String {
    s("default")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDomains {
    pub spf_include: String,
    pub dmarc_rua: String,
    pub bounce_domain: String,
    pub return_path_label: String,
    pub tracking_label: String,
}

impl Default for RawDomains {
    fn default() -> Self {
        Self {
            spf_include: String::new(),
            dmarc_rua: String::new(),
            bounce_domain: String::new(),
            return_path_label: s("bounces"),
            tracking_label: s("track"),
        }
    }
}

/// `[tracking]`: telling people from the machines that fetch links and
/// images on their behalf (which still count, flagged `machine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTracking {
    /// User-agent fragments of proxies and scanners, beyond the built-in
    /// list (matched case-insensitively).
    pub machine_agents: Vec<String>,
    /// Networks (CIDR or single address) of proxies and scanners.
    pub machine_networks: Vec<String>,
    /// A click this soon after sending is a scanner following the link on
    /// arrival.
    pub click_window: String,
    /// Opens (and clicks of one link) by one reader within this window
    /// are one event with a count.
    pub coalesce_window: String,
}

impl Default for RawTracking {
    fn default() -> Self {
        Self {
            machine_agents: Vec::new(),
            machine_networks: Vec::new(),
            click_window: s("30s"),
            coalesce_window: s("60s"),
        }
    }
}

/// `[webhooks]`: how events are posted to accounts' URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhooks {
    /// How long a URL has to answer a post.
    pub timeout: String,
    /// The first wait after a failed post; it doubles after each failure.
    pub retry_initial: String,
    /// The longest wait between tries.
    pub retry_max: String,
    /// A URL failing this long is disabled (with an `alert` event).
    pub give_up_after: String,
}

impl Default for RawWebhooks {
    fn default() -> Self {
        Self {
            timeout: s("10s"),
            retry_initial: s("5s"),
            retry_max: s("10m"),
            give_up_after: s("24h"),
        }
    }
}

/// `[alerts]`: the conditions watched besides blocklists, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerts {
    /// How often rates, deferrals, warm-up caps and certificates are checked.
    pub check_interval: String,
    /// Messages that ended (delivered or bounced) in 24 hours below which
    /// no rate alert is raised.
    pub min_volume: u32,
    /// How often DMARC records and reports are looked at.
    pub dmarc_check_interval: String,
    /// Messages failing DMARC from unknown sources (last 7 days) that make
    /// an alert.
    pub dmarc_unknown_min: u32,
    /// A deferral storm: at least this many attempts to a receiving domain
    /// in the last hour, more than `deferral_percent` of them deferred.
    pub deferral_min_attempts: u32,
    pub deferral_percent: u32,
    /// Alert this long before a certificate Herald serves expires.
    pub certificate_warning: String,
}

impl Default for RawAlerts {
    fn default() -> Self {
        Self {
            check_interval: s("5m"),
            min_volume: 100,
            dmarc_check_interval: s("1h"),
            dmarc_unknown_min: 10,
            deferral_min_attempts: 20,
            deferral_percent: 50,
            certificate_warning: s("14d"),
        }
    }
}

/// `[blocklists]`: the scheduled check of every sending IP, SPF-authorised
/// network and domain against DNS blocklists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlocklists {
    /// The lists' DNS zones. Herald knows the codes of Spamhaus (ZEN, SBL,
    /// XBL, PBL, DBL, and their DQS zones `<key>.zen.dq.spamhaus.net`),
    /// SpamCop, Barracuda, UCEPROTECT 1–3, PSBL, Mailspike, SURBL and
    /// URIBL; any other zone is read as an IPv4 list (127.0.0.x listed).
    /// Spamhaus and URIBL refuse queries from public resolvers: use your
    /// own resolver (`[dns] nameservers`) or a DQS key.
    pub lists: Vec<String>,
    /// Lists the catalogue does not know that answer about domains or
    /// IPv6 addresses.
    pub custom: Vec<RawCustomList>,
    /// Between scheduled checks ("0s": only on demand).
    pub check_interval: String,
    /// Lookups in flight at once.
    pub concurrency: u32,
    /// The longest one lookup may take.
    pub timeout: String,
    /// Addresses sampled per network (first, last, one per /24 or /64).
    pub max_samples: u32,
}

impl Default for RawBlocklists {
    fn default() -> Self {
        Self {
            lists: herald_checks::blocklists::DEFAULT_LISTS
                .iter()
                .map(|z| (*z).to_owned())
                .collect(),
            custom: Vec::new(),
            check_interval: s("1h"),
            concurrency: 64,
            timeout: s("10s"),
            max_samples: 16,
        }
    }
}

/// `[spamd]`: SpamAssassin's spamd scores each message before it is
/// queued; over the threshold it is held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSpamd {
    /// `host:port` of spamd (empty: no content scoring).
    pub address: String,
    /// Messages scoring over this are held (an account may have its own).
    pub threshold: f64,
    /// The longest a score may take.
    pub timeout: String,
    /// The most of a message sent to spamd, in bytes (cut at a line end).
    pub max_size: u64,
    /// When spamd cannot score a message: "accept" it unscored, or
    /// "tempfail" (451 / 503: the client tries again later).
    pub on_error: String,
}

impl Default for RawSpamd {
    fn default() -> Self {
        Self {
            address: String::new(),
            threshold: 5.0,
            timeout: s("30s"),
            max_size: 512 * 1024,
            on_error: s("accept"),
        }
    }
}

/// One `[[blocklists.custom]]` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCustomList {
    pub zone: String,
    pub name: String,
    /// "ip" (IPv4), "ip6" (IPv4 and IPv6) or "domain".
    pub kind: String,
    /// Where a listing is looked up; `{}` stands for the address or domain.
    pub delist_url: String,
}

/// `[retention]`: how long history is kept ("0s": forever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetention {
    pub events: String,
    pub message_index: String,
    pub dmarc_reports: String,
    pub broken_reports: String,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self {
            events: s("400d"),
            message_index: s("400d"),
            dmarc_reports: s("730d"),
            broken_reports: s("90d"),
        }
    }
}

/// `[inbound]`: what the inbound MX takes from strangers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawInbound {
    /// Persons' replies forwarded per account per hour.
    pub forwards_per_hour: u32,
    /// Unreadable messages kept per day at the report addresses, per
    /// sending IP address and in all; past either, `452 4.3.1`.
    pub unreadable_per_ip: u32,
    pub unreadable_total: u32,
}

impl Default for RawInbound {
    fn default() -> Self {
        Self {
            forwards_per_hour: 100,
            unreadable_per_ip: 50,
            unreadable_total: 5000,
        }
    }
}

/// `[dmarc]`: the deliverability center's reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDmarc {
    /// Networks (or addresses) Herald sends from, labelled "yours" in
    /// DMARC summaries, beside the addresses its own deliveries used.
    pub sending_networks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: String,
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: s("text"),
            level: s("info"),
        }
    }
}
