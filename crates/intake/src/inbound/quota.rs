//! How much unreadable mail strangers may leave per day.
//!
//! The report addresses and `postmaster@`/`abuse@` take mail from anyone;
//! what a machine cannot read is kept for a person, so it costs disk and
//! attention. Each UTC day allows so many such messages per sending IP
//! address and so many in all; past either the sender hears `452 4.3.1`
//! and may try again tomorrow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::{Date, OffsetDateTime};

/// Past this many addresses tracked in a day, the day's per-address
/// counts are kept only for addresses at their limit (the total still
/// holds everyone back).
const TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct DailyQuota {
    per_ip: u32,
    total: u32,
    state: Mutex<Day>,
}

#[derive(Debug)]
struct Day {
    date: Date,
    per_ip: HashMap<IpAddr, u32>,
    total: u32,
}

impl DailyQuota {
    pub fn new(per_ip: u32, total: u32) -> Self {
        Self {
            per_ip,
            total,
            state: Mutex::new(Day {
                date: OffsetDateTime::now_utc().date(),
                per_ip: HashMap::new(),
                total: 0,
            }),
        }
    }

    /// Counts one message from `ip` today; `false` (and nothing counted)
    /// when `ip` or everyone used today's quota.
    pub fn take(&self, ip: IpAddr) -> bool {
        self.take_on(ip, OffsetDateTime::now_utc().date())
    }

    fn take_on(&self, ip: IpAddr, today: Date) -> bool {
        let mut day = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if day.date != today {
            *day = Day {
                date: today,
                per_ip: HashMap::new(),
                total: 0,
            };
        }
        if day.per_ip.len() >= TRACKED {
            let limit = self.per_ip;
            day.per_ip.retain(|_, n| *n >= limit);
        }
        let mine = day.per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= self.per_ip || day.total >= self.total {
            return false;
        }
        day.per_ip.insert(ip, mine + 1);
        day.total += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_and_everyone_have_a_daily_quota() {
        let q = DailyQuota::new(2, 3);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let today = time::macros::date!(2026 - 12 - 06);
        assert!(q.take_on(a, today) && q.take_on(a, today));
        assert!(!q.take_on(a, today), "a's quota is used");
        assert!(q.take_on(b, today));
        assert!(!q.take_on(c, today), "everyone's quota is used");
        assert!(q.take_on(a, today.next_day().unwrap()), "a new day");
    }
}
