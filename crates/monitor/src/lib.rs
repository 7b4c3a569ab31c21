//! The deliverability center's watch over blocklists.
//!
//! On a schedule (and on demand) [`Monitor::run_once`] gathers every
//! address and domain that sends in a brand's name — the platform's sending
//! IPs and the IPs each account sent from in the last week, the networks
//! each domain's SPF record authorises (through includes and redirects;
//! networks sampled, not expanded), each domain with its return-path and
//! tracking names — and asks every configured list about each, at most
//! `pace.concurrency` lookups at a time. A listing starts when a check
//! first sees it and ends when one sees the target clean (an unanswered
//! query changes nothing). Each account concerned by a listed target has
//! one `blocklist` alert per listing, told when it starts, daily while it
//! lasts, and when it ends; a list that refuses most queries (a public
//! resolver on Spamhaus, an unregistered one on Barracuda) is an operator
//! alert of its own.
//!
//! Who sees what: a listing is a public fact about an address or domain;
//! an account sees the listings of its own targets, the operator's account
//! those of the platform's addresses and domains.

pub mod conditions;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use herald_api_types::monitor::{ListAnswer, ListStatus};
use herald_checks::blocklists::{self, Blocklist, Pace, Query};
use herald_dns::Resolver;
use herald_events::alerts::Alerter;
use herald_store::{
    ListingFilter, MonitorTarget, SeenListing, StatsGroup, StatsPeriod, StatsQuery, Store, StoreResult,
};
use herald_types::{AccountId, AccountName};
use tokio::sync::watch;

/// Domains whose SPF records are walked at once.
const SPF_WALKS: usize = 8;
/// Networks of one domain's SPF record checked at most (a record that
/// authorises more is a provider's, checked through its first ones).
const MAX_SPF_NETWORKS: usize = 64;
/// Addresses sampled from SPF networks per account at most.
const MAX_SPF_SAMPLES: usize = 1024;
/// The days of sending that make an IP an account's.
const SENDING_DAYS: i64 = 7;
/// A list that answers errors for more than this share of its queries is
/// an operator alert.
const ERROR_SHARE: f64 = 0.5;

/// What the monitor watches and how.
#[derive(Debug, Clone)]
pub struct Settings {
    pub lists: Vec<Blocklist>,
    /// Between scheduled runs; zero: no schedule (on demand only).
    pub interval: Duration,
    /// Before the first scheduled run.
    pub first_delay: Duration,
    pub pace: Pace,
    /// Addresses sampled per network.
    pub max_samples: usize,
    /// The platform's sending addresses, each with the accounts it is
    /// dedicated to (empty: shared by all; the operator watches each).
    pub sending_ips: Vec<(IpAddr, Vec<AccountName>)>,
    /// The platform's own domains (bounce domain, tracking host, hostname).
    pub platform_domains: Vec<String>,
    /// `<label>.<domain>` is a domain's return path and tracking host.
    pub return_path_label: String,
    pub tracking_label: String,
    /// The account that hears about the platform's addresses and domains.
    pub operator: AccountName,
}

impl Settings {
    /// Every list of the catalogue's defaults, hourly.
    pub fn defaults(operator: AccountName) -> Self {
        Self {
            lists: blocklists::DEFAULT_LISTS
                .iter()
                .filter_map(|z| Blocklist::named(z))
                .collect(),
            interval: Duration::from_secs(3600),
            first_delay: Duration::from_secs(60),
            pace: Pace::default(),
            max_samples: blocklists::MAX_SAMPLES,
            sending_ips: Vec::new(),
            platform_domains: Vec::new(),
            return_path_label: "rp".to_owned(),
            tracking_label: "track".to_owned(),
            operator,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Addresses and domain names asked about.
    pub targets: usize,
    /// Lookups made.
    pub queries: usize,
    /// Listings seen (active after the run).
    pub listed: usize,
    /// Lookups without a usable answer.
    pub errors: usize,
    /// Listings that started and ended in this run.
    pub started: usize,
    pub ended: usize,
    pub seconds: f64,
}

/// Live checks an account may ask for within [`LIVE_WINDOW`] (each up to
/// `max_samples` x lists lookups, sent to lists that limit their users).
pub const LIVE_CHECKS: usize = 30;
pub const LIVE_WINDOW: Duration = Duration::from_secs(60);
/// Live checks running at once, whoever asks.
const LIVE_AT_ONCE: usize = 4;

/// Why a live check was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveRefusal {
    /// Not an address, a network or a domain.
    NotATarget,
    /// Too many checks lately: try again after this long.
    TooMany(Duration),
}

/// The accounts concerned by one address or domain name, and why.
type Watchers = BTreeMap<Query, Vec<(AccountId, String)>>;

pub struct Monitor {
    store: Arc<dyn Store>,
    resolver: Arc<dyn Resolver>,
    alerter: Alerter,
    settings: Settings,
    /// One run at a time; an on-demand run waits for a scheduled one.
    running: tokio::sync::Mutex<()>,
    /// Live checks per account lately, and those running.
    live: std::sync::Mutex<HashMap<AccountId, std::collections::VecDeque<Instant>>>,
    live_slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    pub fn new(store: Arc<dyn Store>, resolver: Arc<dyn Resolver>, alerter: Alerter, settings: Settings) -> Self {
        Self {
            store,
            resolver,
            alerter,
            settings,
            running: tokio::sync::Mutex::new(()),
            live: std::sync::Mutex::new(HashMap::new()),
            live_slots: tokio::sync::Semaphore::new(LIVE_AT_ONCE),
        }
    }

    /// [`Monitor::check`] on `account`'s behalf: at most [`LIVE_CHECKS`]
    /// within [`LIVE_WINDOW`] per account, and a few at once in all.
    pub async fn check_for(
        &self,
        account: &AccountId,
        input: &str,
    ) -> Result<herald_api_types::monitor::BlocklistReport, LiveRefusal> {
        if blocklists::expand(input, 1).is_none() {
            return Err(LiveRefusal::NotATarget);
        }
        {
            let now = Instant::now();
            let mut live = self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if live.len() > 10_000 {
                live.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < LIVE_WINDOW));
            }
            let q = live.entry(account.clone()).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= LIVE_WINDOW) {
                q.pop_front();
            }
            if q.len() >= LIVE_CHECKS {
                let wait = q
                    .front()
                    .map_or(LIVE_WINDOW, |t| LIVE_WINDOW.saturating_sub(now.duration_since(*t)));
                return Err(LiveRefusal::TooMany(wait));
            }
            q.push_back(now);
        }
        let _slot = self
            .live_slots
            .acquire()
            .await
            .map_err(|_| LiveRefusal::TooMany(LIVE_WINDOW))?;
        self.check(input).await.ok_or(LiveRefusal::NotATarget)
    }

    /// A live check of one target; `None` when it is not an address, a
    /// network or a domain.
    pub async fn check(&self, input: &str) -> Option<herald_api_types::monitor::BlocklistReport> {
        blocklists::check_target(
            self.resolver.as_ref(),
            &self.settings.lists,
            input,
            self.settings.pace,
            self.settings.max_samples,
        )
        .await
    }

    /// Runs every `interval` (the first after `first_delay`) until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.settings.interval.is_zero() || self.settings.lists.is_empty() {
            return;
        }
        let mut wait = self.settings.first_delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.run_once().await {
                Ok(s) => tracing::info!(
                    targets = s.targets,
                    queries = s.queries,
                    listed = s.listed,
                    errors = s.errors,
                    started = s.started,
                    ended = s.ended,
                    seconds = s.seconds,
                    "blocklist check done"
                ),
                Err(e) => tracing::warn!(error = %e, "blocklist check failed"),
            }
            wait = self.settings.interval;
        }
    }

    /// One whole check: gather, ask, record, alert.
    pub async fn run_once(&self) -> StoreResult<RunSummary> {
        let _one = self.running.lock().await;
        let started_at = Instant::now();
        let watchers = self.gather().await?;
        let queries: Vec<Query> = watchers.keys().cloned().collect();
        let answers = blocklists::check(
            self.resolver.as_ref(),
            &self.settings.lists,
            &queries,
            self.settings.pace,
        )
        .await;
        let mut summary = RunSummary {
            targets: queries.len(),
            queries: answers.len(),
            errors: answers.iter().filter(|a| a.status == ListStatus::Error).count(),
            ..RunSummary::default()
        };
        let (started, ended) = self.record(&answers).await?;
        summary.started = started;
        summary.ended = ended;

        // Who is concerned by what, for visibility and for the score.
        let mut targets: Vec<MonitorTarget> = Vec::new();
        for (query, who) in &watchers {
            for (account, origin) in who {
                targets.push(MonitorTarget {
                    account: account.clone(),
                    target: query.to_string(),
                    origin: origin.clone(),
                });
            }
        }
        self.store.replace_monitor_targets(&targets).await?;

        // One alert per account and listing.
        let active = self
            .store
            .listings(
                &ListingFilter {
                    active_only: true,
                    ..ListingFilter::default()
                },
                u32::MAX >> 1,
            )
            .await?;
        summary.listed = active.len();
        let by_target: HashMap<String, &Vec<(AccountId, String)>> =
            watchers.iter().map(|(q, w)| (q.to_string(), w)).collect();
        let mut holding: HashSet<(AccountId, String)> = HashSet::new();
        for listing in &active {
            let Some(who) = by_target.get(&listing.seen.target) else {
                continue;
            };
            let key = format!("blocklist:{}:{}", listing.seen.list, listing.seen.target);
            let mut told: HashSet<&AccountId> = HashSet::new();
            for (account, origin) in who.iter() {
                if !told.insert(account) {
                    continue;
                }
                let message = listing_message(listing, origin);
                self.alerter.raise(account, "blocklist", &key, &message).await?;
                holding.insert((account.clone(), key.clone()));
            }
        }
        self.alerter.settle("blocklist", &holding).await?;
        self.list_health(&answers).await?;
        summary.seconds = started_at.elapsed().as_secs_f64();
        metrics::gauge!("herald_blocklist_listings").set(f64::from(u32::try_from(summary.listed).unwrap_or(u32::MAX)));
        metrics::histogram!("herald_blocklist_check_seconds").record(summary.seconds);
        Ok(summary)
    }

    /// Starts listings seen, ends listings found clean; (started, ended).
    async fn record(&self, answers: &[ListAnswer]) -> StoreResult<(usize, usize)> {
        let now = herald_types::now_ms();
        let open: HashSet<(String, String)> = self
            .store
            .listings(
                &ListingFilter {
                    active_only: true,
                    ..ListingFilter::default()
                },
                u32::MAX >> 1,
            )
            .await?
            .into_iter()
            .map(|l| (l.seen.target, l.seen.list))
            .collect();
        let weights: HashMap<&str, u32> = self
            .settings
            .lists
            .iter()
            .map(|l| (l.zone.as_str(), l.weight))
            .collect();
        let (mut started, mut ended) = (0, 0);
        // A listing of a target no longer watched, or on a list no longer
        // configured, is no longer seen: it ends here (it cannot end by a
        // clean answer that will never be asked for).
        let asked: HashSet<(&str, &str)> = answers.iter().map(|a| (a.address.as_str(), a.list.as_str())).collect();
        for (target, list) in &open {
            if !asked.contains(&(target.as_str(), list.as_str())) && self.store.listing_ended(target, list, now).await?
            {
                tracing::info!(%target, %list, "blocklist listing no longer watched");
                ended += 1;
            }
        }
        for a in answers {
            match a.status {
                ListStatus::Listed => {
                    let mut reason = a.meanings.join("; ");
                    if let Some(d) = &a.detail {
                        reason = format!("{reason} ({d})");
                    }
                    let seen = SeenListing {
                        kind: if a.address.parse::<IpAddr>().is_ok() {
                            "ip"
                        } else {
                            "domain"
                        }
                        .to_owned(),
                        target: a.address.clone(),
                        list: a.list.clone(),
                        name: a.name.clone(),
                        codes: a.codes.clone(),
                        reason,
                        delist_url: a.delist_url.clone(),
                        weight: weights.get(a.list.as_str()).copied().unwrap_or(10),
                    };
                    if self.store.listing_seen(&seen, now).await? {
                        tracing::warn!(target = %a.address, list = %a.list, "blocklist listing started");
                        started += 1;
                    }
                }
                ListStatus::Clean if open.contains(&(a.address.clone(), a.list.clone())) => {
                    if self.store.listing_ended(&a.address, &a.list, now).await? {
                        tracing::info!(target = %a.address, list = %a.list, "blocklist listing ended");
                        ended += 1;
                    }
                }
                ListStatus::Clean | ListStatus::Error => {}
            }
        }
        Ok((started, ended))
    }

    /// A list that refused most of a run's queries cannot be read through
    /// this resolver: the operator hears of it (and when it recovers).
    async fn list_health(&self, answers: &[ListAnswer]) -> StoreResult<()> {
        let Some(operator) = self.store.account_by_name(&self.settings.operator).await? else {
            return Ok(());
        };
        let mut per_list: BTreeMap<&str, (usize, usize, Option<&str>)> = BTreeMap::new();
        for a in answers {
            let e = per_list.entry(a.list.as_str()).or_default();
            e.0 += 1;
            if a.status == ListStatus::Error {
                e.1 += 1;
                e.2 = e.2.or(a.detail.as_deref());
            }
        }
        let mut holding = HashSet::new();
        for (list, (asked, failed, detail)) in per_list {
            let key = format!("blocklist_error:{list}");
            #[allow(clippy::cast_precision_loss)] // counts of lookups
            let share = failed as f64 / asked as f64;
            if asked >= 1 && share > ERROR_SHARE {
                let message = format!(
                    "{list} answered {failed} of {asked} lookups with an error ({}): its listings cannot be seen",
                    detail.unwrap_or("no answer")
                );
                self.alerter
                    .raise(&operator.id, "blocklist_error", &key, &message)
                    .await?;
                holding.insert((operator.id.clone(), key));
            }
        }
        // Lists that answered (or are no longer configured) end theirs.
        self.alerter.settle("blocklist_error", &holding).await?;
        Ok(())
    }

    /// Every address and domain name to ask about, with who is concerned.
    pub async fn gather(&self) -> StoreResult<Watchers> {
        let mut watchers: Watchers = BTreeMap::new();
        let mut add = |q: Query, account: &AccountId, origin: &str| {
            let who = watchers.entry(q).or_default();
            if !who.iter().any(|(a, o)| a == account && o == origin) {
                who.push((account.clone(), origin.to_owned()));
            }
        };
        let accounts = self.store.list_accounts(herald_store::AccountFilter::All).await?;
        let operator = accounts.iter().find(|a| a.name == self.settings.operator);
        if let Some(op) = operator {
            for (ip, dedicated) in &self.settings.sending_ips {
                add(Query::Ip(*ip), &op.id, "sending_ip");
                for a in accounts.iter().filter(|a| dedicated.contains(&a.name)) {
                    add(Query::Ip(*ip), &a.id, "sending_ip");
                }
            }
            for d in &self.settings.platform_domains {
                for name in blocklists::domain_names(d) {
                    add(Query::Domain(name), &op.id, "platform");
                }
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let mut domains: Vec<(AccountId, String)> = Vec::new();
        for account in &accounts {
            let sent_from = self
                .store
                .stats(&StatsQuery {
                    accounts: vec![account.id.clone()],
                    since: now - time::Duration::days(SENDING_DAYS),
                    until: now,
                    period: StatsPeriod::Day,
                    group: Some(StatsGroup::SourceIp),
                })
                .await?;
            for row in sent_from {
                if let Ok(ip) = row.group.parse::<IpAddr>() {
                    add(Query::Ip(ip), &account.id, "sending_ip");
                }
            }
            let mut names: Vec<String> = self
                .store
                .list_domains(&account.id)
                .await?
                .into_iter()
                .map(|d| d.name.to_string())
                .collect();
            names.extend(account.settings.stream_domains.values().cloned());
            names.sort();
            names.dedup();
            for d in names {
                // The domain and its parents (URI lists list registered
                // domains); its return-path and tracking names themselves
                // (their parents are the domain's).
                for n in blocklists::domain_names(&d) {
                    add(Query::Domain(n), &account.id, "sending_domain");
                }
                add(
                    Query::Domain(format!("{}.{d}", self.settings.return_path_label)),
                    &account.id,
                    "return_path",
                );
                add(
                    Query::Domain(format!("{}.{d}", self.settings.tracking_label)),
                    &account.id,
                    "tracking",
                );
                domains.push((account.id.clone(), d));
            }
        }
        // Third-party senders: what each domain's SPF record authorises.
        let resolver = self.resolver.as_ref();
        let walks: Vec<_> = futures_util::stream::iter(domains)
            .map(|(account, d)| async move {
                let found = herald_checks::spf_networks::spf_networks(resolver, &d).await;
                (account, d, found)
            })
            .buffer_unordered(SPF_WALKS)
            .collect()
            .await;
        let mut samples: HashMap<AccountId, usize> = HashMap::new();
        for (account, d, found) in walks {
            for problem in &found.problems {
                tracing::debug!(domain = %d, problem, "SPF walk");
            }
            let origin = format!("spf:{d}");
            let taken = samples.entry(account.clone()).or_default();
            for (net, _) in found
                .networks
                .into_iter()
                .filter(|(n, _)| is_global(n))
                .take(MAX_SPF_NETWORKS)
            {
                for ip in blocklists::sample(net, self.settings.max_samples) {
                    if *taken >= MAX_SPF_SAMPLES {
                        break;
                    }
                    *taken += 1;
                    add(Query::Ip(ip), &account, &origin);
                }
            }
        }
        Ok(watchers)
    }
}

/// Whether a network can be on a public blocklist: private, shared,
/// loopback, link-local, multicast and unspecified ranges (and networks
/// wider than a /8, or /16 for IPv6) are not asked about.
fn is_global(net: &ipnet::IpNet) -> bool {
    match net {
        ipnet::IpNet::V4(n) => {
            let a = n.network();
            let [o1, o2, ..] = a.octets();
            n.prefix_len() >= 8
                && !(a.is_private()
                    || a.is_loopback()
                    || a.is_link_local()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || o1 == 0
                    || o1 >= 240
                    || (o1 == 100 && (64..128).contains(&o2)))
        }
        ipnet::IpNet::V6(n) => {
            let a = n.network();
            let first = a.segments()[0];
            n.prefix_len() >= 16
                && !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn listing_message(l: &herald_store::Listing, origin: &str) -> String {
    let why = match origin {
        "sending_ip" => "a sending IP".to_owned(),
        "sending_domain" => "a sending domain".to_owned(),
        "return_path" => "a return-path domain".to_owned(),
        "tracking" => "a tracking domain".to_owned(),
        "platform" => "a domain of the platform".to_owned(),
        o => match o.strip_prefix("spf:") {
            Some(d) => format!("authorised by {d}'s SPF record"),
            None => o.to_owned(),
        },
    };
    let mut m = format!(
        "{} ({why}) is listed on {}: {}",
        l.seen.target, l.seen.name, l.seen.reason
    );
    if let Some(url) = &l.seen.delist_url {
        m.push_str(&format!(". Look up and delist: {url}"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_ranges_are_asked_about() {
        let global = |s: &str| is_global(&s.parse::<ipnet::IpNet>().unwrap_or_else(|e| panic!("{s}: {e}")));
        for public in [
            "198.51.100.0/24",
            "203.0.113.5/32",
            "8.0.0.0/8",
            "2001:db8::/48",
            "2a00:1450::/32",
        ] {
            assert!(global(public), "{public}");
        }
        for private in [
            "10.1.0.0/16",
            "192.168.1.1/32",
            "172.16.0.0/12",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "0.0.0.0/0",
            "4.0.0.0/6",
            "224.0.0.0/4",
            "fd00::/8",
            "fe80::/10",
            "::1/128",
            "2000::/3",
        ] {
            assert!(!global(private), "{private}");
        }
    }
}
