//! IP pools and warm-up: which source address a message leaves from, with
//! which EHLO name, and how much a young address (or sending domain) may
//! send to each provider today and this hour.
//!
//! A message's pool follows its account and stream (`[[ip_pools]]`); within
//! the pool, the first source with headroom at the message's provider takes
//! it, in turn. When every source of the pool is at its warm-up cap the
//! message overflows to the pool's `overflow` pool, or waits for the next
//! hour. Counts are kept per (source, provider, day) and (source, provider,
//! hour), and per sending domain likewise, in `<data_dir>/warmup.json`
//! (saved every few seconds and at shutdown, so a crash forgets at most
//! those seconds' counts).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One source address of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ip: IpAddr,
    /// The name given in EHLO from this address (its PTR should match).
    pub ehlo: String,
    /// The warm-up plan it follows; `None`: it is warm.
    pub warmup: Option<String>,
    /// The plan's first day; `None`: the first day it sent.
    pub warmup_start: Option<Date>,
}

/// A named set of source addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pool {
    pub name: String,
    /// Only for the accounts it names (never anyone's fallback).
    pub dedicated: bool,
    /// Account names mapped to it (empty: any account, for its streams).
    pub accounts: Vec<String>,
    /// Streams mapped to it (empty: every stream of its accounts).
    pub streams: Vec<String>,
    pub sources: Vec<Source>,
    /// Where mail goes when every source is at its warm-up cap.
    pub overflow: Option<String>,
}

/// Daily volumes per provider, day by day; the hourly cap is the day's
/// `hourly` entry, or a twelfth of the daily one (the volume spread over a
/// working day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupPlan {
    pub name: String,
    pub daily: Vec<u32>,
    pub hourly: Vec<u32>,
}

impl WarmupPlan {
    /// A plan that grows from 50 to 40,000 a day per provider over three
    /// weeks (KumoMTA's and the large ESPs' published schedules grow about
    /// 1.5x to 2x a day at first, then slower).
    pub fn default_plan() -> Self {
        Self {
            name: "default".to_owned(),
            daily: vec![
                50, 100, 200, 400, 800, 1_500, 3_000, 5_000, 7_500, 10_000, 12_500, 15_000, 17_500, 20_000, 22_500,
                25_000, 27_500, 30_000, 32_500, 35_000, 40_000,
            ],
            hourly: Vec::new(),
        }
    }

    /// The caps of day `day` (0 = the first): `None` once the plan is over.
    pub fn caps(&self, day: i64) -> Option<(u32, u32)> {
        let i = usize::try_from(day.max(0)).ok()?;
        let daily = *self.daily.get(i)?;
        let hourly = self.hourly.get(i).copied().unwrap_or_else(|| daily.div_ceil(12).max(1));
        Some((daily, hourly.min(daily)))
    }
}

/// A sending domain that warms up (its mail counted per provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupDomain {
    pub domain: String,
    pub plan: String,
    pub start: Option<Date>,
}

/// Everything about pools the MTA is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolConfig {
    pub pools: Vec<Pool>,
    pub plans: Vec<WarmupPlan>,
    pub domains: Vec<WarmupDomain>,
    /// Where counts are kept (`None`: in memory only).
    pub state_file: Option<PathBuf>,
}

/// What `choose` picked for a message bound for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// No pool applies: the system picks the source address.
    System,
    /// This source of this pool.
    Source { pool: String, source: Source },
    /// Every source (or the sending domain) is at its cap until then (unix
    /// ms): the message waits.
    Wait(i64),
}

/// Who warms up: its counting key, plan and first day.
#[derive(Debug, Clone, Copy)]
struct Warming<'a> {
    key: &'a str,
    plan: Option<&'a str>,
    start: Option<Date>,
}

/// Who counts: a source address or a sending domain.
fn source_key(ip: &IpAddr) -> String {
    format!("ip:{ip}")
}

fn domain_key(domain: &str) -> String {
    format!("domain:{}", domain.to_ascii_lowercase())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counts {
    /// First day each key sent (keys without a configured start).
    #[serde(default)]
    started: HashMap<String, String>,
    /// "key|provider|YYYY-MM-DD" → messages.
    #[serde(default)]
    daily: HashMap<String, u32>,
    /// "key|provider|YYYY-MM-DDTHH" → messages.
    #[serde(default)]
    hourly: HashMap<String, u32>,
}

/// The pools in force and their counts.
#[derive(Debug)]
pub struct Pools {
    config: PoolConfig,
    counts: Mutex<Counts>,
    dirty: std::sync::atomic::AtomicBool,
    /// Round-robin position per pool.
    turn: Mutex<HashMap<String, usize>>,
}

/// A source's (or domain's) warm-up as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmupStatus {
    /// `ip:192.0.2.10` or `domain:news.example.com`.
    pub key: String,
    pub pool: Option<String>,
    pub plan: String,
    /// 0 = the first day.
    pub day: i64,
    pub days: usize,
    pub provider: String,
    pub daily_cap: u32,
    pub hourly_cap: u32,
    pub sent_today: u32,
    pub sent_this_hour: u32,
}

fn day_of(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn hour_of(t: OffsetDateTime) -> String {
    format!("{}T{:02}", day_of(t), t.hour())
}

fn parse_day(s: &str) -> Option<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &f).ok()
}

/// The next full hour after `t`, in unix ms.
fn next_hour_ms(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    (secs - secs.rem_euclid(3600) + 3600) * 1000
}

impl Pools {
    pub fn new(config: PoolConfig) -> Self {
        let counts = config
            .state_file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            config,
            counts: Mutex::new(counts),
            dirty: std::sync::atomic::AtomicBool::new(false),
            turn: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The pool a source address belongs to.
    pub fn pool_of(&self, ip: &IpAddr) -> Option<String> {
        self.config
            .pools
            .iter()
            .find(|p| p.sources.iter().any(|s| &s.ip == ip))
            .map(|p| p.name.clone())
    }

    fn plan(&self, name: &str) -> Option<&WarmupPlan> {
        self.config.plans.iter().find(|p| p.name == name)
    }

    /// The pool for an account's stream: one naming both, then one naming
    /// the stream for any account, then one naming the account, then a
    /// shared pool naming neither.
    pub fn pool_for(&self, account: Option<&str>, stream: &str) -> Option<&Pool> {
        let names_account = |p: &Pool| account.is_some_and(|a| p.accounts.iter().any(|x| x.eq_ignore_ascii_case(a)));
        let names_stream = |p: &Pool| p.streams.iter().any(|s| s.eq_ignore_ascii_case(stream));
        let pools = &self.config.pools;
        pools
            .iter()
            .find(|p| names_account(p) && names_stream(p))
            .or_else(|| {
                pools
                    .iter()
                    .find(|p| p.accounts.is_empty() && names_stream(p) && !p.dedicated)
            })
            .or_else(|| pools.iter().find(|p| names_account(p) && p.streams.is_empty()))
            .or_else(|| {
                pools
                    .iter()
                    .find(|p| p.accounts.is_empty() && p.streams.is_empty() && !p.dedicated)
            })
    }

    /// The day of `key`'s plan today (0 = the first), its start recorded
    /// on first use.
    fn day(&self, counts: &mut Counts, key: &str, start: Option<Date>, now: OffsetDateTime) -> i64 {
        let start = start.or_else(|| counts.started.get(key).and_then(|d| parse_day(d)));
        match start {
            Some(d) => (now.date() - d).whole_days(),
            None => {
                counts.started.insert(key.to_owned(), day_of(now));
                self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
                0
            }
        }
    }

    /// Room left for `n` messages of `who` to `provider`, or when there
    /// will be (unix ms).
    fn room(
        &self,
        counts: &mut Counts,
        who: &Warming<'_>,
        provider: &str,
        n: u32,
        now: OffsetDateTime,
    ) -> Result<(), i64> {
        let Warming { key, plan, start } = *who;
        let Some(plan) = plan.and_then(|p| self.plan(p)) else {
            return Ok(());
        };
        let day = self.day(counts, key, start, now);
        let Some((daily, hourly)) = plan.caps(day) else {
            return Ok(()); // warmed
        };
        let today = counts
            .daily
            .get(&format!("{key}|{provider}|{}", day_of(now)))
            .copied()
            .unwrap_or(0);
        let this_hour = counts
            .hourly
            .get(&format!("{key}|{provider}|{}", hour_of(now)))
            .copied()
            .unwrap_or(0);
        if today.saturating_add(n) > daily && today > 0 {
            // Tomorrow, 00:00 UTC.
            let midnight = now
                .date()
                .next_day()
                .map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp() * 1000);
            return Err(midnight);
        }
        if this_hour.saturating_add(n) > hourly && this_hour > 0 {
            return Err(next_hour_ms(now));
        }
        Ok(())
    }

    fn count(&self, counts: &mut Counts, key: &str, provider: &str, n: u32, now: OffsetDateTime) {
        *counts
            .daily
            .entry(format!("{key}|{provider}|{}", day_of(now)))
            .or_default() += n;
        *counts
            .hourly
            .entry(format!("{key}|{provider}|{}", hour_of(now)))
            .or_default() += n;
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Chooses the source for `n` messages of an account's stream from
    /// `sender_domain` to `provider`, and counts them against its warm-up
    /// (and the sending domain's).
    pub fn choose(
        &self,
        account: Option<&str>,
        stream: &str,
        sender_domain: Option<&str>,
        provider: &str,
        n: u32,
        now: OffsetDateTime,
    ) -> Choice {
        let mut counts = lock(&self.counts);
        let warming = sender_domain.and_then(|d| self.config.domains.iter().find(|w| w.domain.eq_ignore_ascii_case(d)));
        if let Some(w) = warming
            && let Err(until) = self.room(
                &mut counts,
                &Warming {
                    key: &domain_key(&w.domain),
                    plan: Some(&w.plan),
                    start: w.start,
                },
                provider,
                n,
                now,
            )
        {
            return Choice::Wait(until);
        }
        let Some(mut pool) = self.pool_for(account, stream) else {
            if let Some(w) = warming {
                self.count(&mut counts, &domain_key(&w.domain), provider, n, now);
            }
            return Choice::System;
        };
        let mut earliest = i64::MAX;
        // The pool, then its overflow pools (each once).
        let mut seen = Vec::new();
        loop {
            seen.push(pool.name.clone());
            let len = pool.sources.len();
            let start = lock(&self.turn).get(&pool.name).copied().unwrap_or(0);
            for k in 0..len {
                let i = (start + k) % len;
                let source = &pool.sources[i];
                let key = source_key(&source.ip);
                let who = Warming {
                    key: &key,
                    plan: source.warmup.as_deref(),
                    start: source.warmup_start,
                };
                match self.room(&mut counts, &who, provider, n, now) {
                    Ok(()) => {
                        lock(&self.turn).insert(pool.name.clone(), (i + 1) % len);
                        self.count(&mut counts, &key, provider, n, now);
                        if let Some(w) = warming {
                            self.count(&mut counts, &domain_key(&w.domain), provider, n, now);
                        }
                        return Choice::Source {
                            pool: pool.name.clone(),
                            source: source.clone(),
                        };
                    }
                    Err(until) => earliest = earliest.min(until),
                }
            }
            let next = pool
                .overflow
                .as_ref()
                .filter(|o| !seen.contains(o))
                .and_then(|o| self.config.pools.iter().find(|p| &p.name == o));
            match next {
                Some(p) => pool = p,
                None => break,
            }
        }
        if earliest == i64::MAX {
            // A pool without sources: the system's address.
            return Choice::System;
        }
        Choice::Wait(earliest)
    }

    /// Saves the counts when they changed (today's and this hour's only).
    pub fn save(&self) {
        let Some(path) = &self.config.state_file else { return };
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let json = {
            let mut counts = lock(&self.counts);
            let yesterday = now
                .date()
                .previous_day()
                .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()));
            let today = day_of(now);
            counts
                .daily
                .retain(|k, _| k.ends_with(&today) || yesterday.as_ref().is_some_and(|y| k.ends_with(y.as_str())));
            let hour = hour_of(now);
            counts.hourly.retain(|k, _| k.ends_with(&hour));
            serde_json::to_vec(&*counts)
        };
        let Ok(json) = json else { return };
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, &json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "cannot save the warm-up counts");
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Each warming source's and domain's state per provider it sent to
    /// today (and `*` for its caps before any).
    pub fn status(&self, now: OffsetDateTime) -> Vec<WarmupStatus> {
        let counts = lock(&self.counts);
        let mut out = Vec::new();
        let mut entries: Vec<(String, Option<String>, String, Option<Date>)> = Vec::new();
        for pool in &self.config.pools {
            for s in &pool.sources {
                if let Some(plan) = &s.warmup {
                    entries.push((source_key(&s.ip), Some(pool.name.clone()), plan.clone(), s.warmup_start));
                }
            }
        }
        for d in &self.config.domains {
            entries.push((domain_key(&d.domain), None, d.plan.clone(), d.start));
        }
        let today = day_of(now);
        let hour = hour_of(now);
        for (key, pool, plan_name, start) in entries {
            let Some(plan) = self.plan(&plan_name) else { continue };
            let start = start.or_else(|| counts.started.get(&key).and_then(|d| parse_day(d)));
            let day = start.map_or(0, |d| (now.date() - d).whole_days());
            // Past its plan it is warm: nothing to show.
            let Some((daily, hourly)) = plan.caps(day) else {
                continue;
            };
            let prefix = format!("{key}|");
            let mut providers: Vec<String> = counts
                .daily
                .keys()
                .filter(|k| k.starts_with(&prefix) && k.ends_with(&today))
                .filter_map(|k| k.split('|').nth(1).map(str::to_owned))
                .collect();
            providers.sort();
            providers.dedup();
            if providers.is_empty() {
                providers.push("*".to_owned());
            }
            for provider in providers {
                let sent_today = counts
                    .daily
                    .get(&format!("{key}|{provider}|{today}"))
                    .copied()
                    .unwrap_or(0);
                let sent_this_hour = counts
                    .hourly
                    .get(&format!("{key}|{provider}|{hour}"))
                    .copied()
                    .unwrap_or(0);
                out.push(WarmupStatus {
                    key: key.clone(),
                    pool: pool.clone(),
                    plan: plan_name.clone(),
                    day,
                    days: plan.daily.len(),
                    provider,
                    daily_cap: daily,
                    hourly_cap: hourly,
                    sent_today,
                    sent_this_hour,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(ip: &str, plan: Option<&str>) -> Source {
        Source {
            ip: ip.parse().unwrap(),
            ehlo: format!("mta-{ip}.test"),
            warmup: plan.map(str::to_owned),
            warmup_start: None,
        }
    }

    fn plan(daily: &[u32], hourly: &[u32]) -> WarmupPlan {
        WarmupPlan {
            name: "p".into(),
            daily: daily.to_vec(),
            hourly: hourly.to_vec(),
        }
    }

    #[test]
    fn pools_follow_account_and_stream() {
        let pools = Pools::new(PoolConfig {
            pools: vec![
                Pool {
                    name: "acme-news".into(),
                    accounts: vec!["acme".into()],
                    streams: vec!["newsletter".into()],
                    dedicated: true,
                    sources: vec![source("127.0.0.5", None)],
                    ..Pool::default()
                },
                Pool {
                    name: "bulk".into(),
                    streams: vec!["newsletter".into()],
                    sources: vec![source("127.0.0.6", None)],
                    ..Pool::default()
                },
                Pool {
                    name: "shared".into(),
                    sources: vec![source("127.0.0.7", None)],
                    ..Pool::default()
                },
            ],
            ..PoolConfig::default()
        });
        let name = |a: &str, s: &str| pools.pool_for(Some(a), s).map(|p| p.name.clone());
        assert_eq!(name("acme", "newsletter").as_deref(), Some("acme-news"));
        assert_eq!(name("globex", "newsletter").as_deref(), Some("bulk"));
        assert_eq!(name("acme", "transactional").as_deref(), Some("shared"));
    }

    #[test]
    fn warm_up_caps_overflow_then_wait() {
        let p = |name: &str, sources: Vec<Source>, overflow: Option<&str>| Pool {
            name: name.into(),
            sources,
            overflow: overflow.map(str::to_owned),
            ..Pool::default()
        };
        let pools = Pools::new(PoolConfig {
            pools: vec![
                p("young", vec![source("127.0.0.5", Some("p"))], Some("warm")),
                p("warm", vec![source("127.0.0.6", Some("p"))], Some("young")),
            ],
            plans: vec![plan(&[3, 6], &[2, 6])],
            ..PoolConfig::default()
        });
        let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let ip = |c: Choice| match c {
            Choice::Source { source, .. } => source.ip.to_string(),
            other => format!("{other:?}"),
        };
        // Two an hour from the young address, then the warm pool's two.
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, now)), "127.0.0.5");
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, now)), "127.0.0.5");
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, now)), "127.0.0.6");
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, now)), "127.0.0.6");
        // Both capped this hour: wait for the next.
        assert_eq!(
            pools.choose(None, "x", None, "google", 1, now),
            Choice::Wait(next_hour_ms(now))
        );
        // Another provider has its own caps.
        assert_eq!(ip(pools.choose(None, "x", None, "microsoft", 1, now)), "127.0.0.5");
        let status = pools.status(now);
        let young = status
            .iter()
            .find(|s| s.key == "ip:127.0.0.5" && s.provider == "google")
            .unwrap();
        assert_eq!(
            (young.day, young.daily_cap, young.hourly_cap, young.sent_today),
            (0, 3, 2, 2)
        );
        // The next hour: one more today from each, then the day is full.
        let later = now + time::Duration::hours(1);
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, later)), "127.0.0.5");
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1, later)), "127.0.0.6");
        assert!(matches!(
            pools.choose(None, "x", None, "google", 1, later),
            Choice::Wait(_)
        ));
        // Day two has more room; past the plan, no cap at all.
        let tomorrow = now + time::Duration::days(1);
        assert_eq!(ip(pools.choose(None, "x", None, "google", 5, tomorrow)), "127.0.0.5");
        // Past the plan the young address is warm: no cap, no overflow.
        let warmed = now + time::Duration::days(2);
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1000, warmed)), "127.0.0.5");
        assert_eq!(ip(pools.choose(None, "x", None, "google", 1000, warmed)), "127.0.0.5");
    }

    #[test]
    fn a_warming_sending_domain_waits_whatever_the_source() {
        let pools = Pools::new(PoolConfig {
            plans: vec![plan(&[2], &[2])],
            domains: vec![WarmupDomain {
                domain: "news.acme.test".into(),
                plan: "p".into(),
                start: None,
            }],
            ..PoolConfig::default()
        });
        let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        assert_eq!(
            pools.choose(None, "x", Some("news.acme.test"), "google", 2, now),
            Choice::System
        );
        assert!(matches!(
            pools.choose(None, "x", Some("News.Acme.test"), "google", 1, now),
            Choice::Wait(_)
        ));
        assert_eq!(
            pools.choose(None, "x", Some("other.test"), "google", 1, now),
            Choice::System
        );
    }

    #[test]
    fn counts_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = PoolConfig {
            pools: vec![Pool {
                name: "young".into(),
                sources: vec![source("127.0.0.5", Some("p"))],
                ..Pool::default()
            }],
            plans: vec![plan(&[2], &[2])],
            state_file: Some(dir.path().join("warmup.json")),
            ..PoolConfig::default()
        };
        let now = OffsetDateTime::now_utc();
        let pools = Pools::new(config.clone());
        assert!(matches!(
            pools.choose(None, "x", None, "google", 2, now),
            Choice::Source { .. }
        ));
        pools.save();
        let again = Pools::new(config);
        assert!(matches!(
            again.choose(None, "x", None, "google", 1, now),
            Choice::Wait(_)
        ));
    }
}
