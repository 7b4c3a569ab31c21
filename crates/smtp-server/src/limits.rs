//! Limits against abuse that outlive one session: connections per client
//! address, and authentication failures per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Counts open connections per address and in all.
#[derive(Debug)]
pub struct ConnectionLimiter {
    per_ip: usize,
    total: usize,
    open: Mutex<(HashMap<IpAddr, usize>, usize)>,
}

/// Held for the life of a connection; releases its place when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(per_ip: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            total,
            open: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when a limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        let mut guard = lock(&self.open);
        let (per_ip, total) = &mut *guard;
        let mine = per_ip.entry(ip).or_default();
        if *mine >= self.per_ip || *total >= self.total {
            if *mine == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(ConnectionSlot {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut guard = lock(&self.limiter.open);
        let (per_ip, total) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Authentication failures per address within a window. Past the limit,
/// AUTH is refused without checking anything until the window has passed,
/// so guessing passwords costs the guesser time, not us CPU.
#[derive(Debug)]
pub struct AuthThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// Past this many tracked addresses, entries whose window has passed are
/// dropped, bounding memory under a spread-out attack.
const TRACKED_LIMIT: usize = 100_000;

impl AuthThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `ip` may try to authenticate now.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let failures = lock(&self.failures);
        match failures.get(&ip) {
            Some((n, since)) => *n < self.max_failures || since.elapsed() >= self.window,
            None => true,
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut failures = lock(&self.failures);
        if failures.len() >= TRACKED_LIMIT {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        lock(&self.failures).remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_limited_per_address_and_released_on_drop() {
        let limiter = ConnectionLimiter::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert!(limiter.admit(a).is_none(), "third from one address");
        let _b1 = limiter.admit(b).unwrap();
        assert!(limiter.admit(b).is_none(), "total reached");
        drop(a1);
        assert!(limiter.admit(b).is_some(), "a place was released");
    }

    #[test]
    fn auth_failures_lock_an_address_out_for_the_window() {
        let throttle = AuthThrottle::new(2, Duration::from_millis(50));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        throttle.failed(ip);
        assert!(throttle.allows(ip));
        throttle.failed(ip);
        assert!(!throttle.allows(ip));
        assert!(
            throttle.allows("192.0.2.10".parse().unwrap()),
            "other addresses are not affected"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(throttle.allows(ip), "the window passed");
        throttle.failed(ip);
        throttle.succeeded(ip);
        assert!(throttle.allows(ip));
    }
}
