//! How long a deferred recipient waits, by the reason it was deferred.

use std::collections::HashMap;
use std::time::Duration;

use herald_bounces::Reason;

/// Retry ladders: the wait after the n-th failed attempt is the n-th step,
/// the last step repeating. One ladder per reason, and a default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub default: Vec<Duration>,
    pub by_reason: HashMap<Reason, Vec<Duration>>,
}

fn minutes(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|m| Duration::from_secs(m * 60)).collect()
}

impl RetryPolicy {
    /// The default ladder alone (15 min doubling to 4 h).
    pub fn default_ladder() -> Vec<Duration> {
        minutes(&[15, 30, 60, 120, 240])
    }

    /// Herald's ladders, from 15 minutes to 30 hours: soon for what passes
    /// in minutes (a throttled rate, a dropped connection), later for what
    /// takes hours or days (a full mailbox, a blocklisting, a domain not yet
    /// in the DNS).
    pub fn builtin() -> Self {
        let mut by_reason = HashMap::new();
        // Rate limits and connection limits lift within the hour.
        for r in [Reason::Speeding, Reason::TooManyConn] {
            by_reason.insert(r, minutes(&[20, 40, 60]));
        }
        // Reputation and policy blocks take hours to lift, if they do.
        for r in [
            Reason::BadReputation,
            Reason::Blocked,
            Reason::SpamDetected,
            Reason::PolicyViolation,
            Reason::Rejected,
            Reason::RequirePtr,
            Reason::AuthFailure,
            Reason::SecurityError,
        ] {
            by_reason.insert(r, minutes(&[60, 120, 240, 480]));
        }
        // A mailbox empties when its owner reads their mail: days.
        for r in [Reason::MailboxFull, Reason::ExceedLimit] {
            by_reason.insert(r, minutes(&[60, 120, 240, 480, 960, 1800]));
        }
        // A domain not (yet) in the DNS, or a host without an address.
        by_reason.insert(Reason::HostUnknown, minutes(&[60, 120, 240]));
        Self {
            default: Self::default_ladder(),
            by_reason,
        }
    }

    /// The operator's own default ladder for every reason; reasons keep
    /// only the ladders `by_reason` gives them.
    pub fn uniform(default: Vec<Duration>) -> Self {
        Self {
            default,
            by_reason: HashMap::new(),
        }
    }

    /// The wait after the `attempts`-th failed attempt (1 = the first).
    pub fn delay(&self, reason: Reason, attempts: u16) -> Duration {
        let ladder = self.by_reason.get(&reason).unwrap_or(&self.default);
        let step = usize::from(attempts.max(1)) - 1;
        ladder
            .get(step)
            .or(ladder.last())
            .copied()
            .unwrap_or(Duration::from_secs(3600))
    }
}
