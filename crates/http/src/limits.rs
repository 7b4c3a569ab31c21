//! Events per key within a sliding minute: failed API authentications per
//! client address ([`AuthFailures`]), test posts per webhook.
//!
//! A wrong key costs the server microseconds (keys are checked with a keyed
//! hash), but answering floods of guesses still costs a store read each.
//! Past a number of failures (by default [`MAX_FAILURES`]) within
//! [`WINDOW`], an address is answered `429` without any lookup until old
//! failures age out.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per address within [`WINDOW`].
pub const MAX_FAILURES: usize = 30;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked keys, those with nothing left in the window are
/// dropped.
const TRACKED: usize = 100_000;

/// How many times each key was counted within the last [`WINDOW`], up to
/// a maximum.
#[derive(Debug)]
pub struct WindowCounter<K> {
    max: usize,
    seen: Mutex<HashMap<K, VecDeque<Instant>>>,
}

/// Failed API authentications per client address.
pub type AuthFailures = WindowCounter<IpAddr>;

impl Default for AuthFailures {
    fn default() -> Self {
        Self::new(MAX_FAILURES)
    }
}

impl<K: Hash + Eq> WindowCounter<K> {
    /// `max` counts per key within [`WINDOW`].
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `key` must wait before the next one; `None` when it may go.
    pub fn wait(&self, key: &K) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.lock();
        let q = seen.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        (q.len() >= self.max).then(|| {
            q.front()
                .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)))
        })
    }

    /// Counts one for `key`.
    pub fn count(&self, key: K) {
        let now = Instant::now();
        let mut seen = self.lock();
        if seen.len() >= TRACKED {
            seen.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = seen.entry(key).or_default();
        if q.len() >= self.max {
            q.pop_front();
        }
        q.push_back(now);
    }

    /// [`WindowCounter::wait`] and, when it may go, [`WindowCounter::count`],
    /// under one lock: parallel callers cannot pass the maximum together.
    pub fn take(&self, key: K) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.lock();
        if seen.len() >= TRACKED {
            seen.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = seen.entry(key).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() >= self.max {
            return q.front().map(|t| WINDOW.saturating_sub(now.duration_since(*t)));
        }
        q.push_back(now);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_back_after_its_failures() {
        let f = AuthFailures::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(f.wait(&ip).is_none());
            f.count(ip);
        }
        assert!(f.wait(&ip).is_some_and(|d| d <= WINDOW));
        assert!(
            f.wait(&"192.0.2.2".parse().unwrap()).is_none(),
            "others are not affected"
        );
    }

    #[test]
    fn take_counts_only_what_it_lets_through() {
        let c = WindowCounter::<&str>::new(2);
        assert!(c.take("a").is_none() && c.take("a").is_none());
        assert!(c.take("a").is_some_and(|d| d <= WINDOW));
        assert!(c.take("b").is_none(), "keys are apart");
    }
}
