//! The dashboard bench: an account with N events (10 million by default)
//! loaded through the store's real `insert_events` (which keeps the hourly
//! rollups), spread over the last 30 days, then its overview page rendered
//! through the real router with a signed-in session — session lookup,
//! stats, reputation, alerts and the templates — for each period.
//!
//! `cargo run --release -p herald-http --example overview_bench -- [EVENTS] [sqlite|postgres]`
//! (PostgreSQL from HERALD_TEST_POSTGRES_URL). Run by bench/dashboard.sh.

// A bench prints its figures.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use herald_accounts::{Accounts, Caller};
use herald_http::{AppState, AuthFailures, HttpOptions};
use herald_store::NewAccount;
use herald_testkit::TempStore;
use herald_types::{AccountName, EventKind, MessageId};
use tower::ServiceExt as _;

const BATCH: usize = 1000;
const DAYS: i64 = 30;
const RUNS: usize = 21;

fn kind_of(n: u64) -> EventKind {
    match n % 100 {
        0..=39 => EventKind::Accepted,
        40..=77 => EventKind::Delivered,
        78..=82 => EventKind::Deferred,
        83..=84 => EventKind::Bounced,
        85..=94 => EventKind::Opened,
        95..=98 => EventKind::Clicked,
        _ => EventKind::Complained,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000_000);
    let backend = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let temp = match backend.as_str() {
        "postgres" => TempStore::postgres(&herald_testkit::postgres_url()).await?,
        _ => TempStore::sqlite()?,
    };
    let store = temp.open().await?;
    let accounts = Accounts::new(store.clone());
    let account = store
        .create_account(NewAccount {
            name: AccountName::parse("bench")?,
            parent: None,
        })
        .await?;
    let password = "bench password 123";
    accounts
        .create_user(
            &Caller::operator(account.clone()),
            "bench@example.test",
            Some(password.to_owned()),
            false,
        )
        .await?;

    // The events, in time order over the month, as they arrive.
    let now = time::OffsetDateTime::now_utc();
    let start = now - time::Duration::days(DAYS);
    let loading = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut message = MessageId::generate();
    for n in 0..total {
        if n % 4 == 0 {
            message = MessageId::generate();
        }
        let kind = kind_of(n.wrapping_mul(2_654_435_761) >> 7);
        let e = herald_testkit::synthetic::event(n, total, kind, &account.id, &message, start, DAYS);
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

    let signed = accounts
        .sign_in("bench@example.test", password)
        .await
        .map_err(|e| anyhow::anyhow!("sign-in: {e}"))?;
    let app = herald_http::router(
        AppState {
            accounts,
            metrics: None,
            queue: None,
            domains: None,
            tracker: None,
            submit: None,
            dmarc: None,
            resolver: None,
            auth_failures: Arc::new(AuthFailures::new(30)),
            monitor: None,
            webhook_tester: None,
        },
        HttpOptions {
            request_timeout: Duration::from_secs(30),
            send_body_limit: herald_http::MAX_BODY,
            secure_cookies: false,
            public_url: None,
            trusted_proxies: herald_http::client_ip::TrustedProxies::default(),
            metrics_token: None,
            metrics_elsewhere: false,
        },
    );
    println!("backend {backend}: {total} events of one account loaded in {load:.1?} (rollups included)");
    for range in ["24h", "7d", "30d"] {
        let mut runs = Vec::with_capacity(RUNS);
        let mut size = 0;
        for _ in 0..RUNS {
            let request = Request::get(format!("/?range={range}"))
                .header("cookie", format!("herald_session={}", signed.token))
                .body(Body::empty())?;
            let t = Instant::now();
            let response = app.clone().oneshot(request).await?;
            anyhow::ensure!(response.status() == 200, "the overview answered {}", response.status());
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            runs.push(t.elapsed());
            anyhow::ensure!(
                std::str::from_utf8(&body)?.contains("<svg class=\"chart\""),
                "the page has its charts"
            );
            size = body.len();
        }
        runs.sort();
        println!(
            "overview {range}: {size} bytes, median {:.1?}, p90 {:.1?}, worst of {RUNS} {:.1?}",
            runs[RUNS / 2],
            runs[RUNS * 9 / 10],
            runs[RUNS - 1]
        );
    }
    Ok(())
}
