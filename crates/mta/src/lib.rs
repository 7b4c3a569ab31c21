//! Outbound delivery: from the spool to the recipients' mail servers.
//!
//! Main design decision: a queue per *destination* — the set of hosts a
//! domain's mail goes to (its MX hosts, or a smarthost) — each with its own
//! workers up to a concurrency limit, each worker reusing its connection
//! for message after message. A slow or dead destination fills only its own
//! queue; every other destination keeps its pace.
//!
//! The spool is the only record of queue state: a scheduler keeps a heap of
//! (next attempt, message) in memory, rebuilt from the spool on start, and
//! every outcome is written back to the spool per recipient (delivered,
//! bounced, expired, or pending with its next attempt). Each outcome is also
//! an event.
//!
//! Must never: mark a recipient delivered without a 2xx answer to its
//! message's content; retry a recipient after a 5xx; keep retrying past the
//! maximum age.

mod client;
pub mod dane;
mod destination;
pub mod mta_sts;
pub mod pools;
mod prepare;
mod queue;
mod route;
mod schedule;
pub mod shaping;
pub mod simulator;
pub mod tls_check;
pub mod tls_report;

use std::sync::Arc;
use std::time::Duration;

use herald_dns::Resolver;
use herald_spool::Spool;
use herald_types::{EventSink, MessageId};

pub use client::dot_stuff;
pub use destination::DestinationView;
pub use herald_rules::{RetryPolicy, RuleSet};
pub use pools::{Pool, PoolConfig, Source, WarmupDomain, WarmupPlan, WarmupStatus};
pub use prepare::{Passthrough, Prepare, Prepared};
pub use route::{Refusal, Target, route};
pub use schedule::{default_schedule, next_attempt, retry_delay};
pub use shaping::{Limits, Site, TlsMode};
pub use simulator::SIMULATOR_DOMAIN;

/// Mail for `domain` ("*" for any) goes to `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmarthostRoute {
    pub domain: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// The name Herald gives in EHLO.
    pub ehlo_name: String,
    /// The port of MX hosts (25; tests and benchmarks change it).
    pub port: u16,
    /// Smarthost routes, first match wins, before any MX lookup.
    pub routes: Vec<SmarthostRoute>,
    /// A recipient not delivered by then expires.
    pub max_age: Duration,
    /// Waits between attempts; the last one repeats. Used where no rule
    /// sets a wait and the reason has no ladder of its own in `rules`.
    pub retry_schedule: Vec<Duration>,
    /// What each answer means: the operator's rules, the defaults, the
    /// classifier; with the retry ladders per reason.
    pub rules: Arc<RuleSet>,
    /// Named destinations (`[[destinations]]`), over the built-in presets.
    pub destinations: Vec<Site>,
    /// Rate limits of destinations that set none (`None`: unlimited).
    pub messages_per_minute: Option<u32>,
    pub messages_per_hour: Option<u32>,
    /// Recipients per transaction.
    pub recipients_per_message: usize,
    /// MX hosts tried per attempt.
    pub max_mx_hosts: usize,
    /// Addresses tried per attempt, across the hosts.
    pub max_addresses: usize,
    pub connect_timeout: Duration,
    /// For each reply.
    pub command_timeout: Duration,
    /// Connections open at once to one destination.
    pub max_connections_per_destination: usize,
    /// Messages sent over one connection before it is renewed.
    pub max_messages_per_connection: usize,
    /// How long a connection with nothing to send stays open for more.
    pub idle_timeout: Duration,
    /// Use STARTTLS when the destination offers it.
    pub starttls: bool,
    /// Source addresses by account and stream, and their warm-up.
    pub pools: PoolConfig,
    /// Apply recipient domains' MTA-STS policies.
    pub mta_sts: bool,
    /// Apply DANE (RFC 7672) where the resolver authenticates MX and TLSA
    /// records (it must validate DNSSEC; Herald trusts its AD bit).
    pub dane: bool,
    /// The port policy hosts are fetched from (443; tests change it).
    pub mta_sts_port: u16,
    /// Trust anchors beside Mozilla's, for certificate checks (MTA-STS
    /// policy hosts and MX hosts): private PKIs, tests.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Networks MTA-STS policy hosts may be reached at besides public ones.
    pub fetch_allow: Vec<ipnet::IpNet>,
    /// Where the policy cache and TLS report counts are kept (`None`: in
    /// memory only).
    pub state_dir: Option<std::path::PathBuf>,
}

impl DeliveryConfig {
    /// The limits of a destination no `[[destinations]]` entry names.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections_per_destination.max(1),
            messages_per_connection: self.max_messages_per_connection.max(1),
            messages_per_minute: self.messages_per_minute,
            messages_per_hour: self.messages_per_hour,
            recipients_per_message: self.recipients_per_message.max(1),
            tls: if self.starttls {
                TlsMode::Opportunistic
            } else {
                TlsMode::Disabled
            },
        }
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            ehlo_name: "localhost".to_owned(),
            port: 25,
            routes: Vec::new(),
            max_age: Duration::from_secs(72 * 3600),
            retry_schedule: default_schedule(),
            rules: Arc::new(RuleSet::defaults().expect("the default rules compile (a test checks)")),
            destinations: Vec::new(),
            messages_per_minute: None,
            messages_per_hour: None,
            recipients_per_message: 100,
            max_mx_hosts: 5,
            max_addresses: 10,
            pools: PoolConfig::default(),
            mta_sts: true,
            dane: true,
            mta_sts_port: 443,
            extra_roots: Vec::new(),
            fetch_allow: Vec::new(),
            state_dir: None,
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            max_connections_per_destination: 20,
            max_messages_per_connection: 100,
            idle_timeout: Duration::from_secs(5),
            starttls: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("message not in the queue")]
    NotFound,
}

/// The delivery engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mta {
    inner: Arc<queue::Inner>,
}

impl Mta {
    /// Delivers messages as spooled (see [`Mta::with_preparer`]).
    pub fn new(
        config: DeliveryConfig,
        spool: Arc<Spool>,
        resolver: Arc<dyn Resolver>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Self::with_preparer(config, spool, resolver, events, Arc::new(Passthrough))
    }

    /// Delivers what `prepare` makes of each message: per-recipient return
    /// paths, signatures, tracking.
    pub fn with_preparer(
        config: DeliveryConfig,
        spool: Arc<Spool>,
        resolver: Arc<dyn Resolver>,
        events: Arc<dyn EventSink>,
        prepare: Arc<dyn Prepare>,
    ) -> Self {
        Self {
            inner: queue::Inner::new(config, spool, resolver, events, prepare),
        }
    }

    /// Schedules every message in the spool and delivers until `shutdown`
    /// turns true; returns once in-flight deliveries have finished (or the
    /// grace period ran out).
    pub async fn run(&self, shutdown: tokio::sync::watch::Receiver<bool>, grace: Duration) {
        queue::run(self.inner.clone(), shutdown, grace).await;
    }

    /// A message just accepted: deliver it now.
    pub fn submit(&self, id: &MessageId) {
        self.inner.schedule_now(id);
    }

    /// Tries every pending recipient of `id` now.
    pub fn retry(&self, id: &MessageId) -> Result<(), QueueError> {
        self.inner.retry(id)
    }

    /// Gives up on every pending recipient of `id`: bounced (soft), with events.
    pub fn bounce(&self, id: &MessageId) -> Result<(), QueueError> {
        self.inner.give_up(id, false)
    }

    /// Removes `id` from the queue silently.
    pub fn purge(&self, id: &MessageId) -> Result<(), QueueError> {
        self.inner.give_up(id, true)
    }

    /// Releases `id`'s held recipients for delivery now; how many.
    pub fn release(&self, id: &MessageId) -> Result<usize, QueueError> {
        self.inner.release(id)
    }

    /// Drops `id`'s held recipients with a `dropped` event giving `why`;
    /// how many.
    pub fn drop_held(&self, id: &MessageId, why: &str) -> Result<usize, QueueError> {
        self.inner.drop_held(id, why)
    }

    /// Messages waiting in memory for their next attempt (for metrics).
    pub fn scheduled(&self) -> usize {
        self.inner.scheduled()
    }

    /// Every destination seen since the start: its state (normal, backed
    /// off, suspended, and by which rule), queue and counts.
    pub fn destinations(&self) -> Vec<DestinationView> {
        self.inner.destinations()
    }

    /// Each warming source address and sending domain: its plan, day, and
    /// today's and this hour's caps and counts per provider.
    pub fn warmup(&self) -> Vec<WarmupStatus> {
        self.inner.warmup()
    }

    /// A day's (`YYYY-MM-DD`) TLS-RPT `policies` array (RFC 8460 §4.4):
    /// per recipient domain with an MTA-STS policy, sessions that succeeded
    /// and failed, by result type and MX host.
    pub fn tls_report(&self, day: &str) -> Vec<serde_json::Value> {
        self.inner.tls_report(day)
    }

    /// The destination (a provider's name, or a host set's key) mail for
    /// `domain` went to last, if any since the start.
    pub fn destination_of(&self, domain: &str) -> Option<String> {
        self.inner.destination_of(domain)
    }

    /// The provider `domain`'s mail goes to: a provider seen in its MX
    /// hosts by delivery since the start, or one known by its domain
    /// (gmail.com is Google's); `None` for other domains.
    pub fn provider_of(&self, domain: &str) -> Option<String> {
        self.inner.provider_of(domain)
    }
}
