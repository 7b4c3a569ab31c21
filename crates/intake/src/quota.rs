//! Per-account sending limits, enforced when mail is accepted: a rate
//! (recipients a minute) and a daily quota (recipients a UTC day), both
//! optional account settings. Over either, the message is refused with a
//! temporary error that says when to try again (`452 4.4.5` / 429 with
//! `Retry-After`), so a well-behaved client retries and nothing is lost.
//!
//! Counts are kept in memory: the minute as a sliding window, the day as a
//! counter loaded on first use from the store's stats (today's accepted
//! recipients), so a restart does not reset a day's quota.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use herald_store::{StatsPeriod, StatsQuery, Store};
use herald_types::{AccountId, AccountSettings, SubmitError};
use time::OffsetDateTime;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Usage {
    /// The UTC day `today` counts, as days since the epoch.
    day: i64,
    today: u64,
    /// (unix ms, recipients) accepted in the last minute.
    minute: VecDeque<(i64, u32)>,
}

/// The accounts' usage.
#[derive(Debug, Default)]
pub struct Quotas {
    usage: Mutex<HashMap<AccountId, Usage>>,
}

fn day_number(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(86_400)
}

impl Quotas {
    /// Today's accepted recipients of `account` from the store's stats.
    async fn load(store: &dyn Store, account: &AccountId, now: OffsetDateTime) -> Result<u64, SubmitError> {
        let midnight = now.date().midnight().assume_utc();
        let rows = store
            .stats(&StatsQuery {
                accounts: vec![account.clone()],
                since: midnight,
                until: now + time::Duration::hours(1),
                period: StatsPeriod::Day,
                group: None,
            })
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read today's count for the daily quota");
                SubmitError::Unavailable
            })?;
        Ok(rows
            .iter()
            .map(|r| u64::try_from(r.counts.get("accepted")).unwrap_or(0))
            .sum())
    }

    /// Takes `n` recipients from `account`'s rate and quota, or says when
    /// there will be room.
    pub async fn take(
        &self,
        store: &dyn Store,
        account: &AccountId,
        name: &str,
        settings: &AccountSettings,
        n: u32,
    ) -> Result<(), SubmitError> {
        if settings.daily_quota.is_none() && settings.rate_per_minute.is_none() || n == 0 {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let today = day_number(now);
        let needs_load =
            settings.daily_quota.is_some() && lock(&self.usage).get(account).is_none_or(|u| u.day != today);
        let loaded = if needs_load {
            Some(Self::load(store, account, now).await?)
        } else {
            None
        };
        let mut all = lock(&self.usage);
        let usage = all.entry(account.clone()).or_default();
        if usage.day != today {
            usage.day = today;
            usage.today = 0;
        }
        if let Some(count) = loaded {
            usage.today = usage.today.max(count);
        }
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        while usage.minute.front().is_some_and(|(t, _)| *t <= now_ms - 60_000) {
            usage.minute.pop_front();
        }
        if let Some(quota) = settings.daily_quota
            && usage.today + u64::from(n) > u64::from(quota)
        {
            let tomorrow = (today + 1) * 86_400 - now.unix_timestamp();
            return Err(SubmitError::OverLimit {
                message: format!(
                    "account {name} has reached its daily quota of {quota} recipients; try again after 00:00 UTC"
                ),
                retry_after: Duration::from_secs(u64::try_from(tomorrow.max(1)).unwrap_or(1)),
            });
        }
        if let Some(rate) = settings.rate_per_minute {
            let used: u64 = usage.minute.iter().map(|(_, k)| u64::from(*k)).sum();
            // A message larger than the whole rate goes alone, at a quiet minute.
            if used > 0 && used + u64::from(n) > u64::from(rate) {
                let mut freed = 0u64;
                let mut at = now_ms;
                for (t, k) in &usage.minute {
                    freed += u64::from(*k);
                    at = *t + 60_000;
                    if used - freed + u64::from(n) <= u64::from(rate) {
                        break;
                    }
                }
                let wait = u64::try_from((at - now_ms).max(1000)).unwrap_or(1000);
                return Err(SubmitError::OverLimit {
                    message: format!(
                        "account {name} is sending faster than its rate of {rate} recipients a minute; try again shortly"
                    ),
                    retry_after: Duration::from_millis(wait),
                });
            }
        }
        usage.today += u64::from(n);
        usage.minute.push_back((now_ms, n));
        Ok(())
    }
}
