//! Failed API authentications per client address.
//!
//! A wrong key costs the server microseconds (keys are checked with a keyed
//! hash), but answering floods of guesses still costs a store read each.
//! Past a number of failures (by default [`MAX_FAILURES`]) within
//! [`WINDOW`], an address is answered `429` without any lookup until old
//! failures age out.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per address within [`WINDOW`].
pub const MAX_FAILURES: usize = 30;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Past this many tracked addresses, those with nothing left in the window
/// are dropped.
const TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct AuthFailures {
    max: usize,
    seen: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for AuthFailures {
    fn default() -> Self {
        Self::new(MAX_FAILURES)
    }
}

impl AuthFailures {
    /// `max` failures per address within [`WINDOW`].
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `ip` must wait before trying again; `None` when it may try.
    pub fn wait(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut seen = self.lock();
        let q = seen.get_mut(&ip)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        (q.len() >= self.max).then(|| {
            q.front()
                .map_or(WINDOW, |t| WINDOW.saturating_sub(now.duration_since(*t)))
        })
    }

    /// Counts a failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut seen = self.lock();
        if seen.len() >= TRACKED {
            seen.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = seen.entry(ip).or_default();
        if q.len() >= self.max {
            q.pop_front();
        }
        q.push_back(now);
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
            assert!(f.wait(ip).is_none());
            f.failed(ip);
        }
        assert!(f.wait(ip).is_some_and(|d| d <= WINDOW));
        assert!(
            f.wait("192.0.2.2".parse().unwrap()).is_none(),
            "others are not affected"
        );
    }
}
