//! Limits against abuse that outlive one session: connections per client
//! address, and authentication failures per client address.

use std::collections::{HashMap, VecDeque};
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

/// Authentication failures within a window, per (address, username) and
/// per address.
///
/// An attempt is counted as a failure *when it starts* ([`AuthThrottle::begin`])
/// and taken back only if it succeeds, so a burst of attempts sent in
/// parallel counts in full before any answer. A success takes back its own
/// attempt and nothing else: failures that came before still count. The
/// limit per username is lower than the one per address, so a guesser who
/// locks out one user at a shared address (a NAT, an office) does not lock
/// out the others there. Past a limit, AUTH is refused without checking
/// anything until enough failures have aged out of the window, so guessing
/// costs the guesser time, not us CPU.
#[derive(Debug)]
pub struct AuthThrottle {
    per_user: u32,
    per_ip: u32,
    window: Duration,
    state: Mutex<Failures>,
}

#[derive(Debug, Default)]
struct Failures {
    /// When each counted attempt started, oldest first.
    by_user: HashMap<(IpAddr, String), VecDeque<Instant>>,
    by_ip: HashMap<IpAddr, VecDeque<Instant>>,
}

/// An authentication under way, counted as a failure unless
/// [`AuthAttempt::succeeded`] is called.
#[derive(Debug)]
pub struct AuthAttempt {
    throttle: Arc<AuthThrottle>,
    key: (IpAddr, String),
    at: Instant,
}

/// Past this many tracked addresses (or pairs), entries with nothing left
/// in the window are dropped, bounding memory under a spread-out attack.
const TRACKED_LIMIT: usize = 100_000;
/// Usernames longer than this are counted by their first bytes (a guesser
/// must not grow memory with long names).
const MAX_TRACKED_USERNAME: usize = 256;

fn expire(q: &mut VecDeque<Instant>, window: Duration, now: Instant) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

fn remove_one(q: &mut VecDeque<Instant>, at: Instant) {
    if let Some(i) = q.iter().rposition(|t| *t == at) {
        q.remove(i);
    }
}

impl AuthThrottle {
    /// `per_user` failures per address and username, `per_ip` per address
    /// (raised to at least `per_user`), within `window`.
    pub fn new(per_user: u32, per_ip: u32, window: Duration) -> Arc<Self> {
        Arc::new(Self {
            per_user,
            per_ip: per_ip.max(per_user),
            window,
            state: Mutex::new(Failures::default()),
        })
    }

    /// Whether `ip` may try to authenticate at all now.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut f = lock(&self.state);
        f.by_ip.get_mut(&ip).is_none_or(|q| {
            expire(q, self.window, now);
            q.len() < self.per_ip as usize
        })
    }

    /// Starts an attempt for `username` from `ip`, counted as a failure
    /// now; `None` when a limit is reached (nothing is checked then).
    pub fn begin(self: &Arc<Self>, ip: IpAddr, username: &str) -> Option<AuthAttempt> {
        let now = Instant::now();
        let user: String = username
            .chars()
            .take(MAX_TRACKED_USERNAME)
            .collect::<String>()
            .to_lowercase();
        let key = (ip, user);
        let mut f = lock(&self.state);
        if f.by_ip.len() >= TRACKED_LIMIT || f.by_user.len() >= TRACKED_LIMIT {
            let window = self.window;
            f.by_ip.retain(|_, q| {
                expire(q, window, now);
                !q.is_empty()
            });
            f.by_user.retain(|_, q| {
                expire(q, window, now);
                !q.is_empty()
            });
        }
        let ip_full = f.by_ip.get_mut(&ip).is_some_and(|q| {
            expire(q, self.window, now);
            q.len() >= self.per_ip as usize
        });
        let user_full = f.by_user.get_mut(&key).is_some_and(|q| {
            expire(q, self.window, now);
            q.len() >= self.per_user as usize
        });
        if ip_full || user_full {
            return None;
        }
        f.by_ip.entry(ip).or_default().push_back(now);
        f.by_user.entry(key.clone()).or_default().push_back(now);
        Some(AuthAttempt {
            throttle: self.clone(),
            key,
            at: now,
        })
    }
}

impl AuthAttempt {
    /// The credentials were right: this attempt is not a failure. Earlier
    /// failures from the address still count.
    pub fn succeeded(self) {
        let mut f = lock(&self.throttle.state);
        if let Some(q) = f.by_ip.get_mut(&self.key.0) {
            remove_one(q, self.at);
        }
        if let Some(q) = f.by_user.get_mut(&self.key) {
            remove_one(q, self.at);
        }
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
    fn auth_failures_count_per_user_and_per_address_before_any_answer() {
        let throttle = AuthThrottle::new(2, 3, Duration::from_millis(100));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // Two attempts in flight at once both count before either answers.
        let a = throttle.begin(ip, "alice").unwrap();
        let b = throttle.begin(ip, "Alice").unwrap();
        assert!(
            throttle.begin(ip, "alice").is_none(),
            "alice is locked out at this address"
        );
        drop((a, b));
        // Others at the same address go on, up to the address's limit.
        let bob = throttle.begin(ip, "bob").unwrap();
        assert!(throttle.begin(ip, "carol").is_none(), "the address's limit");
        assert!(!throttle.allows(ip));
        // A success takes back only its own attempt.
        bob.succeeded();
        assert!(throttle.allows(ip));
        assert!(throttle.begin(ip, "alice").is_none(), "alice's failures still count");
        assert!(
            throttle.begin("192.0.2.10".parse().unwrap(), "alice").is_some(),
            "other addresses are not affected"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert!(throttle.begin(ip, "alice").is_some(), "the window passed");
    }
}
