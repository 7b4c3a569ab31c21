//! One destination's queue and what it has learned from its answers:
//! paused (backed off or suspended by a rule) until when, how far its rate
//! is lowered, how many messages a connection carries before the server
//! closes it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_rules::Effect;
use tokio::sync::Notify;

use crate::queue::Job;
use crate::shaping::{Limits, RateWindow};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lowest share of its limits a backed-off destination keeps.
const MIN_FACTOR: f64 = 0.125;
/// Deliveries in a row that raise a lowered rate one step.
const RECOVERY_STEP: u32 = 10;
/// The lowest rate a minute a back-off learns for a destination without
/// one: throttled at a slow pace (one message, a quiet hour), its mail is
/// paced by the pause and the connections, not starved for an hour.
const MIN_LEARNED_RATE: u32 = 120;
/// How long a learned messages-per-connection limit is kept.
const LEARNED_FOR_MS: i64 = 3_600_000;

/// Why a destination is not being sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    Backoff { rule: String },
    Suspended { rule: String },
}

#[derive(Debug, Default)]
struct State {
    paused_until_ms: i64,
    pause: Option<Pause>,
    /// Share of the limits in force: 1 normally, halved by each back-off,
    /// climbing back with deliveries.
    factor: Option<f64>,
    delivered_in_a_row: u32,
    rate: RateWindow,
    /// Sends counted per minute, whatever the limits: the pace a back-off
    /// finds when the destination has no rate of its own.
    pace: Pace,
    /// A rate a minute learned at a back-off of a destination without one
    /// (the pace it was throttled at), with when it was last confirmed.
    learned_rate: Option<(u32, i64)>,
    learned_per_connection: Option<(usize, i64)>,
    delivered: u64,
    deferred: u64,
    bounced: u64,
    tls_failures: u64,
}

/// Sends in this minute and the one before.
#[derive(Debug, Default)]
struct Pace {
    minute: i64,
    this: u32,
    last: u32,
}

impl Pace {
    fn roll(&mut self, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        if minute != self.minute {
            self.last = if minute == self.minute + 1 { self.this } else { 0 };
            self.this = 0;
            self.minute = minute;
        }
    }

    fn count(&mut self, now_ms: i64) {
        self.roll(now_ms);
        self.this = self.this.saturating_add(1);
    }

    /// Sends in the last sixty seconds, estimated from the two minutes
    /// (the earlier one weighted by how much of it is still in the window).
    fn last_minute(&mut self, now_ms: i64) -> u32 {
        self.roll(now_ms);
        let into = now_ms.rem_euclid(60_000) as f64 / 60_000.0;
        let estimate = f64::from(self.this) + f64::from(self.last) * (1.0 - into);
        estimate.round() as u32
    }
}

/// A destination's queue and state.
pub struct Destination {
    pub key: String,
    /// The site's name (`google`), or `None` for a host set.
    pub site: Option<String>,
    /// The source address the queue sends from, with its EHLO name
    /// (`None`: the system's address and the configured name).
    pub source: Option<(std::net::IpAddr, String)>,
    pub limits: Limits,
    pub(crate) jobs: Mutex<VecDeque<Job>>,
    pub(crate) workers: AtomicUsize,
    pub(crate) wake: Notify,
    state: Mutex<State>,
}

/// A destination as the API and CLI show it.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationView {
    pub key: String,
    pub site: Option<String>,
    pub source: Option<std::net::IpAddr>,
    /// normal, backoff or suspended.
    pub state: &'static str,
    /// The rule that paused it.
    pub rule: Option<String>,
    /// Until when (unix ms), while paused.
    pub until_ms: Option<i64>,
    /// The share of its limits in force (1 normally).
    pub rate_factor: f64,
    pub queued: usize,
    pub connections: usize,
    pub max_connections: usize,
    /// The rate a minute before the back-off's share: configured, or
    /// learned at a back-off.
    pub messages_per_minute: Option<u32>,
    pub delivered: u64,
    pub deferred: u64,
    pub bounced: u64,
    pub tls_failures: u64,
}

impl Destination {
    /// The destination's label in metrics: its site (a provider's or a
    /// configured destination's name, a bounded set) or `other`.
    pub fn metric_label(&self) -> String {
        self.site.clone().unwrap_or_else(|| "other".to_owned())
    }

    pub fn new(key: String, site: Option<String>, source: Option<(std::net::IpAddr, String)>, limits: Limits) -> Self {
        Self {
            key,
            site,
            source,
            limits,
            jobs: Mutex::new(VecDeque::new()),
            workers: AtomicUsize::new(0),
            wake: Notify::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// Until when the destination is paused, if it is now.
    pub fn paused_until(&self, now_ms: i64) -> Option<i64> {
        let s = lock(&self.state);
        (s.paused_until_ms > now_ms).then_some(s.paused_until_ms)
    }

    fn factor(s: &State) -> f64 {
        s.factor.unwrap_or(1.0)
    }

    /// Connections allowed now: the limit, lowered by a back-off (one at
    /// least).
    pub fn connection_limit(&self) -> usize {
        let s = lock(&self.state);
        let scaled = (self.limits.max_connections as f64 * Self::factor(&s)).floor();
        if scaled < 1.0 { 1 } else { scaled as usize }
    }

    /// Messages one connection carries: the limit, or fewer when the
    /// server was seen closing connections sooner.
    pub fn per_connection(&self, now_ms: i64) -> usize {
        let s = lock(&self.state);
        match s.learned_per_connection {
            Some((n, at)) if now_ms - at < LEARNED_FOR_MS => n.min(self.limits.messages_per_connection).max(1),
            _ => self.limits.messages_per_connection,
        }
    }

    /// The server closed a connection after `sent` messages: no more than
    /// that per connection for a while.
    pub fn learn_per_connection(&self, sent: usize, now_ms: i64) {
        if sent == 0 {
            return;
        }
        let mut s = lock(&self.state);
        let n = s.learned_per_connection.map_or(sent, |(old, _)| old.min(sent));
        s.learned_per_connection = Some((n, now_ms));
    }

    /// How long before the next message may go under the rate limits;
    /// when zero, the send is counted.
    pub fn take_send(&self, now_ms: i64) -> Duration {
        let mut s = lock(&self.state);
        let per_minute = self.per_minute(&s, now_ms);
        if per_minute.is_none() && self.limits.messages_per_hour.is_none() {
            s.pace.count(now_ms);
            return Duration::ZERO;
        }
        let factor = Self::factor(&s);
        let wait = s.rate.wait(now_ms, per_minute, self.limits.messages_per_hour, factor);
        if wait.is_zero() {
            s.rate.record(now_ms);
            s.pace.count(now_ms);
        }
        wait
    }

    /// The rate a minute in force before a back-off's share: the
    /// configured one, or one learned while it is remembered.
    fn per_minute(&self, s: &State, now_ms: i64) -> Option<u32> {
        self.limits.messages_per_minute.or_else(|| {
            s.learned_rate
                .filter(|(_, at)| s.factor.is_some() || now_ms - at < LEARNED_FOR_MS)
                .map(|(rate, _)| rate)
        })
    }

    /// Learns from one recipient's decision.
    pub fn observe(&self, delivered: bool, bounced: bool, effect: Effect, rule: &str, now_ms: i64) {
        let mut s = lock(&self.state);
        if delivered {
            s.delivered += 1;
            if let Some(f) = s.factor {
                s.delivered_in_a_row += 1;
                if s.delivered_in_a_row >= RECOVERY_STEP {
                    s.delivered_in_a_row = 0;
                    let up = (f * 1.5).min(1.0);
                    s.factor = (up < 1.0).then_some(up);
                    if s.factor.is_none() && matches!(s.pause, Some(Pause::Backoff { .. })) {
                        s.pause = None;
                    }
                }
            }
        } else if bounced {
            s.bounced += 1;
        } else {
            s.deferred += 1;
        }
        match effect {
            Effect::None => {}
            Effect::Backoff(d) => {
                s.delivered_in_a_row = 0;
                // Without a rate of its own, the destination gets the pace
                // it was throttled at as one (halved below, like the
                // rest), so a back-off slows every connection too.
                if self.limits.messages_per_minute.is_none() {
                    let rate = match self.per_minute(&s, now_ms) {
                        Some(known) => known,
                        None => s.pace.last_minute(now_ms).max(MIN_LEARNED_RATE),
                    };
                    s.learned_rate = Some((rate, now_ms));
                }
                s.factor = Some((Self::factor(&s) * 0.5).max(MIN_FACTOR));
                let until = now_ms.saturating_add(ms(d));
                // A suspension still running keeps its name; one that ended
                // gives way to the back-off.
                let suspended = matches!(s.pause, Some(Pause::Suspended { .. })) && s.paused_until_ms > now_ms;
                if until > s.paused_until_ms {
                    s.paused_until_ms = until;
                    if !suspended {
                        s.pause = Some(Pause::Backoff { rule: rule.to_owned() });
                    }
                }
            }
            Effect::Suspend(d) => {
                let until = now_ms.saturating_add(ms(d));
                if until > s.paused_until_ms {
                    s.paused_until_ms = until;
                }
                s.pause = Some(Pause::Suspended { rule: rule.to_owned() });
            }
        }
    }

    pub fn tls_failed(&self) {
        lock(&self.state).tls_failures += 1;
    }

    pub fn view(&self, now_ms: i64) -> DestinationView {
        let s = lock(&self.state);
        let paused = s.paused_until_ms > now_ms;
        let (state, rule) = match (&s.pause, paused) {
            (Some(Pause::Suspended { rule }), true) => ("suspended", Some(rule.clone())),
            (Some(Pause::Backoff { rule }), _) if paused || s.factor.is_some() => ("backoff", Some(rule.clone())),
            _ if s.factor.is_some() => ("backoff", None),
            _ => ("normal", None),
        };
        DestinationView {
            key: self.key.clone(),
            site: self.site.clone(),
            source: self.source.as_ref().map(|(ip, _)| *ip),
            state,
            rule,
            until_ms: paused.then_some(s.paused_until_ms),
            rate_factor: Self::factor(&s),
            queued: lock(&self.jobs).len(),
            connections: self.workers.load(Ordering::SeqCst),
            max_connections: self.limits.max_connections,
            messages_per_minute: self.per_minute(&s, now_ms),
            delivered: s.delivered,
            deferred: s.deferred,
            bounced: s.bounced,
            tls_failures: s.tls_failures,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shaping::default_limits;

    #[test]
    fn a_backoff_halves_the_limits_and_deliveries_bring_them_back() {
        let d = Destination::new(
            "google".into(),
            Some("google".into()),
            None,
            Limits {
                max_connections: 8,
                ..default_limits()
            },
        );
        assert_eq!(d.connection_limit(), 8);
        d.observe(
            false,
            false,
            Effect::Backoff(Duration::from_secs(60)),
            "gmail-unusual-rate",
            0,
        );
        assert_eq!(d.connection_limit(), 4);
        assert_eq!(d.paused_until(1), Some(60_000));
        let v = d.view(1);
        assert_eq!((v.state, v.rule.as_deref()), ("backoff", Some("gmail-unusual-rate")));
        d.observe(
            false,
            false,
            Effect::Backoff(Duration::from_secs(60)),
            "gmail-unusual-rate",
            2,
        );
        assert_eq!(d.connection_limit(), 2);
        // After the pause, deliveries raise it step by step to normal.
        assert_eq!(d.paused_until(60_003), None);
        for _ in 0..60 {
            d.observe(true, false, Effect::None, "classifier", 70_000);
        }
        assert_eq!(d.connection_limit(), 8);
        assert_eq!(d.view(70_000).state, "normal");
    }

    #[test]
    fn a_backoff_gives_a_destination_without_a_rate_the_pace_it_was_throttled_at() {
        let d = Destination::new("x".into(), None, None, default_limits());
        assert_eq!(d.limits.messages_per_minute, None);
        // 200 sends in the minute before the throttling answer: no waits.
        for i in 0..200 {
            assert_eq!(d.take_send(60_000 + i * 250), Duration::ZERO);
        }
        d.observe(
            false,
            false,
            Effect::Backoff(Duration::from_secs(1)),
            "rate-limited",
            110_000,
        );
        let v = d.view(110_000);
        assert_eq!((v.messages_per_minute, v.rate_factor), (Some(200), 0.5));
        // After the pause: 100 a minute (half of it), then a wait.
        let start = 120_000;
        for i in 0..100 {
            assert_eq!(d.take_send(start + i), Duration::ZERO, "send {i}");
        }
        let wait = d.take_send(start + 100);
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        // Deliveries bring the share back; the learned rate stays a while
        // as the ceiling, then goes.
        for _ in 0..30 {
            d.observe(true, false, Effect::None, "classifier", start + 1_000);
        }
        let v = d.view(start + 1_000);
        assert_eq!((v.state, v.messages_per_minute), ("normal", Some(200)));
        let later = start + LEARNED_FOR_MS + 1_000;
        assert_eq!(d.view(later).messages_per_minute, None);
        assert_eq!(d.take_send(later), Duration::ZERO);
        // Throttled at a slow pace, it is not starved below the floor.
        let slow = Destination::new("z".into(), None, None, default_limits());
        assert_eq!(slow.take_send(0), Duration::ZERO);
        slow.observe(
            false,
            false,
            Effect::Backoff(Duration::from_secs(1)),
            "rate-limited",
            10,
        );
        assert_eq!(slow.view(10).messages_per_minute, Some(MIN_LEARNED_RATE));
        // A configured rate is never replaced by a learned one.
        let rated = Destination::new(
            "y".into(),
            None,
            None,
            Limits {
                messages_per_minute: Some(30),
                ..default_limits()
            },
        );
        rated.observe(false, false, Effect::Backoff(Duration::from_secs(1)), "rate-limited", 0);
        assert_eq!(rated.view(0).messages_per_minute, Some(30));
    }

    #[test]
    fn the_pace_counts_the_last_sixty_seconds() {
        let mut p = Pace::default();
        for i in 0..30 {
            p.count(60_000 + i);
        }
        assert_eq!(p.last_minute(60_100), 30);
        // Half-way through the next minute, half of the earlier one counts.
        for i in 0..10 {
            p.count(120_000 + i);
        }
        assert_eq!(p.last_minute(150_000), 25);
        // A quiet minute between forgets it.
        assert_eq!(p.last_minute(250_000), 0);
    }

    #[test]
    fn a_suspension_names_its_rule_until_it_ends() {
        let d = Destination::new("x".into(), None, None, default_limits());
        d.observe(
            false,
            false,
            Effect::Suspend(Duration::from_secs(10)),
            "yahoo-permanently-deferred",
            0,
        );
        let v = d.view(5);
        assert_eq!((v.state, v.until_ms), ("suspended", Some(10_000)));
        assert_eq!(d.view(10_001).state, "normal");
    }

    #[test]
    fn a_back_off_after_an_ended_suspension_is_named_as_one() {
        let d = Destination::new("x".into(), None, None, default_limits());
        d.observe(false, false, Effect::Suspend(Duration::from_secs(1)), "stop", 0);
        d.observe(false, false, Effect::Backoff(Duration::from_secs(60)), "slow", 5_000);
        let v = d.view(5_001);
        assert_eq!((v.state, v.rule.as_deref()), ("backoff", Some("slow")));
    }

    #[test]
    fn a_connection_closed_early_teaches_the_limit() {
        let d = Destination::new("x".into(), None, None, default_limits());
        assert_eq!(d.per_connection(0), 100);
        d.learn_per_connection(3, 0);
        assert_eq!(d.per_connection(1), 3);
        assert_eq!(d.per_connection(LEARNED_FOR_MS + 1), 100);
    }
}
