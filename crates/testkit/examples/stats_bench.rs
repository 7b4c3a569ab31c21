//! The stats bench: loads N events (10 million by default) through the
//! store's real `insert_events` (which keeps the hourly rollups), spread
//! over 30 days, then times the answer to "a month of per-hour stats" for
//! one account, without a group and by receiving domain.
//!
//! `cargo run --release -p herald-testkit --example stats_bench -- [EVENTS] [sqlite|postgres]`
//! (PostgreSQL from HERALD_TEST_POSTGRES_URL). Run by bench/stats.sh.

// A bench prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use herald_store::{StatsGroup, StatsPeriod, StatsQuery};
use herald_testkit::TempStore;
use herald_types::{AccountId, EventKind, MessageId};

const BATCH: usize = 1000;
const DAYS: i64 = 30;

fn kind_of(n: u64) -> EventKind {
    match n % 100 {
        0..=39 => EventKind::Accepted,
        40..=77 => EventKind::Delivered,
        78..=82 => EventKind::Deferred,
        83..=84 => EventKind::Bounced,
        85..=94 => EventKind::Opened,
        _ => EventKind::Clicked,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000_000);
    let backend = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let temp = match backend.as_str() {
        "postgres" => {
            let url = herald_testkit::postgres_url();
            TempStore::postgres(&url).await?
        }
        _ => TempStore::sqlite()?,
    };
    let store = temp.open().await?;
    let accounts: Vec<AccountId> = (0..3).map(|_| AccountId::generate()).collect();
    let start = time::OffsetDateTime::now_utc() - time::Duration::days(DAYS);

    let loading = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut message = MessageId::generate();
    for n in 0..total {
        if n % 4 == 0 {
            message = MessageId::generate();
        }
        let kind = kind_of(n.wrapping_mul(2_654_435_761) >> 7);
        let account = &accounts[(n % 3) as usize];
        let e = herald_testkit::synthetic::event(n, total, kind, account, &message, start, DAYS);
        batch.push(e);
        if batch.len() == BATCH {
            store.insert_events(&batch).await?;
            batch.clear();
        }
        if n > 0 && n % 1_000_000 == 0 {
            eprintln!("{n} events in {:?}", loading.elapsed());
        }
    }
    if !batch.is_empty() {
        store.insert_events(&batch).await?;
    }
    let load = loading.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / load.as_secs_f64();

    let mut timings = Vec::new();
    for group in [None, Some(StatsGroup::ReceivingDomain)] {
        let query = StatsQuery {
            accounts: vec![accounts[0].clone()],
            since: start,
            until: start + time::Duration::days(DAYS),
            period: StatsPeriod::Hour,
            group,
        };
        let mut runs: Vec<Duration> = Vec::new();
        let mut rows = 0;
        for _ in 0..11 {
            let t = Instant::now();
            rows = store.stats(&query).await?.len();
            runs.push(t.elapsed());
        }
        runs.sort();
        timings.push((group, rows, runs[runs.len() / 2], runs[runs.len() - 1]));
    }
    println!("backend {backend}: {total} events loaded in {load:.1?} ({rate:.0} events/s, rollups included)");
    for (group, rows, median, worst) in timings {
        let name = if group.is_some() {
            "by receiving domain"
        } else {
            "no group"
        };
        println!("a month per hour, {name}: {rows} rows, median {median:.1?}, worst of 11 {worst:.1?}");
    }
    Ok(())
}
