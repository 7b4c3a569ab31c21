//! When to try again.

use std::time::Duration;

/// The default retry schedule: 5 m, 10 m, 20 m, 40 m, then hourly until
/// the message's maximum age runs out.
pub fn default_schedule() -> Vec<Duration> {
    [5, 10, 20, 40, 60]
        .iter()
        .map(|m| Duration::from_secs(m * 60))
        .collect()
}

/// The wait after the `attempts`-th failed attempt (1 = the first). The
/// last step of the schedule repeats.
pub fn retry_delay(schedule: &[Duration], attempts: u16) -> Duration {
    let step = usize::from(attempts.max(1)) - 1;
    schedule
        .get(step)
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(3600))
}

/// When to try next, in unix ms: after the delay, but never past the
/// moment the message expires (so expiry is noticed on time, not an hour
/// late).
pub fn next_attempt(now_ms: i64, expires_ms: i64, schedule: &[Duration], attempts: u16) -> i64 {
    let delay = i64::try_from(retry_delay(schedule, attempts).as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_add(delay).min(expires_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_doubles_then_goes_hourly() {
        let s = default_schedule();
        let minutes: Vec<u64> = (1..=8).map(|n| retry_delay(&s, n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 60, 60, 60, 60]);
    }

    #[test]
    fn retries_stop_at_expiry() {
        let s = default_schedule();
        assert_eq!(next_attempt(1_000, 10_000_000, &s, 1), 1_000 + 300_000);
        assert_eq!(next_attempt(1_000, 200_000, &s, 1), 200_000, "capped at expiry");
    }
}
