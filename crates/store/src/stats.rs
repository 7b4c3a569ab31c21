//! What each stored event adds to the hourly rollups: the part of stats
//! that is the same for every backend.

use std::collections::HashMap;

use herald_types::{BounceClass, Event, EventKind};

use crate::{COUNTERS, Counts, StatsGroup};

/// A row of the rollups an event counts in: one per breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatsKey {
    pub account: String,
    /// The breakdown: [`TOTAL`] or a [`StatsGroup`]'s [`dim`].
    pub dim: &'static str,
    /// Unix seconds of the hour's start.
    pub hour: i64,
    /// The event's value of the breakdown (empty for the total, or when the
    /// event has none, as opens have no sending IP).
    pub value: String,
}

/// The breakdown of the totals.
pub const TOTAL: &str = "";

/// The breakdown a group reads; `None` for the account group, which reads
/// the totals of each account.
pub fn dim(group: StatsGroup) -> Option<&'static str> {
    match group {
        StatsGroup::Account => None,
        StatsGroup::Stream => Some("stream"),
        StatsGroup::SenderDomain => Some("sender_domain"),
        StatsGroup::SourceIp => Some("ip"),
        StatsGroup::ReceivingDomain => Some("receiving_domain"),
    }
}

fn domain_of(address: Option<&str>) -> String {
    address
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default()
}

fn counter(name: &str) -> usize {
    // The names are this module's own, all in COUNTERS.
    COUNTERS.iter().position(|c| *c == name).unwrap_or(0)
}

/// A human open or click: its (message, recipient, kind), whose first
/// occurrence makes it unique.
pub fn engagement_key(e: &Event) -> Option<(String, String, &'static str)> {
    let machine = e.engagement.as_ref().is_some_and(|g| g.machine);
    match e.kind {
        EventKind::Opened | EventKind::Clicked if !machine => Some((
            e.message_id.to_string(),
            e.recipient.clone().unwrap_or_default().to_ascii_lowercase(),
            e.kind.as_str(),
        )),
        _ => None,
    }
}

/// The counters an event adds to, and by how much; `first` says whether a
/// human open or click is the first of its message and recipient. A
/// coalesced open or click adds its count to the totals and one to the
/// uniques.
fn counters_of(e: &Event, first: bool) -> Vec<(usize, i64)> {
    let machine = e.engagement.as_ref().is_some_and(|g| g.machine);
    let times = i64::from(e.engagement.as_ref().map_or(1, |g| g.count.max(1)));
    let one = |name| vec![(counter(name), 1)];
    match e.kind {
        EventKind::Accepted => one("accepted"),
        EventKind::Delivered => one("delivered"),
        EventKind::Deferred => one("deferred"),
        EventKind::Bounced => match e.bounce.as_ref().map(|b| b.class) {
            Some(BounceClass::Hard) => one("bounced_hard"),
            _ => one("bounced_soft"),
        },
        EventKind::Dropped => one("dropped"),
        EventKind::Expired => one("expired"),
        EventKind::Complained => one("complained"),
        EventKind::Unsubscribed => one("unsubscribed"),
        EventKind::Opened if machine => vec![(counter("opened_machine"), times)],
        EventKind::Opened if first => vec![(counter("opened"), times), (counter("opened_unique"), 1)],
        EventKind::Opened => vec![(counter("opened"), times)],
        EventKind::Clicked if machine => vec![(counter("clicked_machine"), times)],
        EventKind::Clicked if first => vec![(counter("clicked"), times), (counter("clicked_unique"), 1)],
        EventKind::Clicked => vec![(counter("clicked"), times)],
        EventKind::Replied | EventKind::Alert | EventKind::Held => Vec::new(),
    }
}

/// What `events` add to the rollups, by row.
pub fn rollup<'a>(
    events: impl IntoIterator<Item = &'a Event>,
    mut first: impl FnMut(&Event) -> bool,
) -> HashMap<StatsKey, Counts> {
    let mut out: HashMap<StatsKey, Counts> = HashMap::new();
    for e in events {
        let counters = counters_of(e, first(e));
        if counters.is_empty() {
            continue;
        }
        let delivery = matches!(e.kind, EventKind::Delivered | EventKind::Deferred | EventKind::Bounced);
        let ip = if delivery {
            e.source_ip.map(|ip| ip.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let account = e.account.to_string();
        let hour = e.at.unix_timestamp().div_euclid(3600) * 3600;
        for (dim, value) in [
            (TOTAL, String::new()),
            ("stream", e.stream.clone()),
            ("sender_domain", domain_of(e.sender.as_deref())),
            ("ip", ip),
            ("receiving_domain", domain_of(e.recipient.as_deref())),
        ] {
            let key = StatsKey {
                account: account.clone(),
                dim,
                hour,
                value,
            };
            let counts = out.entry(key).or_default();
            for &(c, by) in &counters {
                counts.0[c] += by;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_types::{AccountId, BounceInfo, Engagement, MessageId};

    #[test]
    fn events_count_in_their_hour_and_row() {
        let account = AccountId::generate();
        let message = MessageId::generate();
        let mut delivered = Event::new(EventKind::Delivered, account.clone(), message.clone());
        delivered.sender = Some("News@Acme.test".to_owned());
        delivered.recipient = Some("a@Example.NET".to_owned());
        delivered.source_ip = Some("192.0.2.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()));
        let mut bounced = delivered.clone();
        bounced.kind = EventKind::Bounced;
        bounced.bounce = Some(BounceInfo {
            class: BounceClass::Hard,
            reason: "userunknown".to_owned(),
        });
        let mut open = delivered.clone();
        open.kind = EventKind::Opened;
        open.source_ip = None;
        let mut proxy = open.clone();
        proxy.engagement = Some(Engagement {
            user_agent: "GoogleImageProxy".to_owned(),
            ip: None,
            machine: true,
            url: None,
            count: 1,
        });
        let all = [delivered.clone(), bounced, open.clone(), open.clone(), proxy];
        let mut seen = 0;
        let rows = rollup(all.iter(), |e| {
            let first = e.kind == EventKind::Opened && seen == 0;
            if e.kind == EventKind::Opened {
                seen += 1;
            }
            first
        });
        let row = |dim: &str, value: &str| {
            rows.iter()
                .find(|(k, _)| k.dim == dim && k.value == value)
                .map(|(k, c)| (k.hour, *c))
                .unwrap_or_else(|| panic!("no {dim}={value} in {rows:?}"))
        };
        // Every breakdown counts every event; opens carry no sending IP.
        let (hour, total) = row(TOTAL, "");
        assert_eq!(hour % 3600, 0);
        assert_eq!(
            (
                total.get("delivered"),
                total.get("bounced_hard"),
                total.get("opened"),
                total.get("opened_unique")
            ),
            (1, 1, 2, 1)
        );
        assert_eq!(total.get("opened_machine"), 1);
        assert_eq!(row("ip", "192.0.2.1").1.get("delivered"), 1);
        assert_eq!(row("ip", "").1.get("opened"), 2);
        assert_eq!(row("sender_domain", "acme.test").1, total);
        assert_eq!(row("receiving_domain", "example.net").1, total);
        assert_eq!(rows.len(), 6);
        assert_eq!(engagement_key(&open).map(|k| k.2), Some("opened"));
        assert_eq!(engagement_key(&delivered), None);
    }
}
