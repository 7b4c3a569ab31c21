//! Synthetic events for the benches: the `n`th of `total`, spread in time
//! order over `days` from `start`, over 50,000 recipients in 20 domains,
//! 3 sender domains, two streams and 4 source addresses.

use std::net::{IpAddr, Ipv4Addr};

use herald_types::{AccountId, BounceClass, BounceInfo, Event, EventKind, MessageId};

/// The `n`th event of `total`, of `kind`, for `account`'s `message`.
pub fn event(
    n: u64,
    total: u64,
    kind: EventKind,
    account: &AccountId,
    message: &MessageId,
    start: time::OffsetDateTime,
    days: i64,
) -> Event {
    let mut e = Event::new(kind, account.clone(), message.clone());
    let span_ms = days * 86_400_000;
    #[allow(clippy::cast_possible_wrap)]
    let offset = (n as i64).saturating_mul(span_ms) / (total as i64).max(1);
    e.at = start + time::Duration::milliseconds(offset);
    e.recipient = Some(format!("user{}@domain{}.test", n % 50_000, n % 20));
    e.sender = Some(format!("news@brand{}.test", n % 3));
    e.stream = if n.is_multiple_of(5) {
        "newsletter"
    } else {
        "transactional"
    }
    .to_owned();
    if matches!(kind, EventKind::Delivered | EventKind::Deferred | EventKind::Bounced) {
        #[allow(clippy::cast_possible_truncation)]
        let last = (n % 4) as u8 + 1;
        e.source_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)));
    }
    if kind == EventKind::Bounced {
        e.bounce = Some(BounceInfo {
            class: if n.is_multiple_of(2) {
                BounceClass::Hard
            } else {
                BounceClass::Soft
            },
            reason: "userunknown".to_owned(),
        });
    }
    e
}
