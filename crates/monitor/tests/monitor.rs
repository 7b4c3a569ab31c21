//! The scheduled blocklist check, in process, against a real DNS server on
//! loopback serving blocklist zones and a real SQLite store: listings start
//! and end, unanswered lists change nothing, each concerned account is told
//! once, and a list that refuses its queries is the operator's alert.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_checks::blocklists::{Blocklist, Pace};
use herald_events::alerts::Alerter;
use herald_monitor::{Monitor, Settings};
use herald_store::{AlertFilter, ListingFilter, NewAccount, Store};
use herald_testkit::{DnsServer, TempStore, Zones};

use herald_types::{AccountName, DomainName, Event, EventKind, EventSink};

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

impl Collect {
    /// The alert events so far, as (account, state, key).
    fn alerts(&self) -> Vec<(String, String, String)> {
        let meta = |e: &Event, k: &str| {
            e.metadata
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|e| e.kind == EventKind::Alert)
            .map(|e| (e.account.to_string(), meta(e, "alert_state"), meta(e, "alert_key")))
            .collect()
    }

    fn clear(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

fn base_zones() -> Zones {
    Zones::new()
        .txt("acme.test", "v=spf1 ip4:198.51.100.0/24 include:_spf.esp.test -all")
        .txt("_spf.esp.test", "v=spf1 ip4:203.0.113.5 -all")
        // Keeps each list's zone in existence (NXDOMAIN below it).
        .txt("spamhaus.org", "zone")
}

fn listed_zones() -> Zones {
    base_zones()
        .ip("1.100.51.198.zen.spamhaus.org", ip("127.0.0.2"))
        .txt(
            "1.100.51.198.zen.spamhaus.org",
            "Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL1",
        )
        // A refusal for a public resolver: an error, not a listing.
        .ip("254.100.51.198.zen.spamhaus.org", ip("127.255.255.254"))
        .ip("5.113.0.203.bl.spamcop.net", ip("127.0.0.2"))
        .ip("10.2.0.192.psbl.surriel.com", ip("127.0.0.2"))
        .ip("acme.test.dbl.spamhaus.org", ip("127.0.1.2"))
        .silent("b.barracudacentral.org")
}

fn settings() -> Settings {
    let mut s = Settings::defaults(AccountName::parse("main").unwrap_or_else(|_| unreachable!()));
    s.lists = [
        "zen.spamhaus.org",
        "bl.spamcop.net",
        "psbl.surriel.com",
        "b.barracudacentral.org",
        "dbl.spamhaus.org",
    ]
    .iter()
    .filter_map(|z| Blocklist::named(z))
    .collect();
    s.pace = Pace {
        concurrency: 16,
        timeout: Duration::from_secs(2),
    };
    s.sending_ips = vec![(
        ip("192.0.2.10"),
        vec![AccountName::parse("acme").unwrap_or_else(|_| unreachable!())],
    )];
    s
}

fn resolver(dns: &DnsServer) -> anyhow::Result<Arc<dyn herald_dns::Resolver>> {
    let settings = herald_dns::Settings {
        timeout: Duration::from_millis(500),
        retries: 0,
        cache: false,
    };
    Ok(Arc::new(herald_dns::HickoryResolver::with_servers(
        &[dns.addr()],
        settings,
    )?))
}

#[tokio::test]
async fn listings_start_and_end_and_each_account_hears_once() -> anyhow::Result<()> {
    let temp = TempStore::sqlite()?;
    let store: Arc<dyn Store> = temp.open().await?;
    let main = store
        .create_account(NewAccount {
            name: AccountName::parse("main")?,
            parent: None,
        })
        .await?;
    let acme = store
        .create_account(NewAccount {
            name: AccountName::parse("acme")?,
            parent: None,
        })
        .await?;
    let globex = store
        .create_account(NewAccount {
            name: AccountName::parse("globex")?,
            parent: None,
        })
        .await?;
    store
        .create_domain(&acme.id, &DomainName::parse("acme.test")?, vec![])
        .await?;
    let mut dns = DnsServer::start(&listed_zones()).await?;
    let sink = Arc::new(Collect::default());
    let alerter = Alerter::new(store.clone(), sink.clone());
    let monitor = Monitor::new(store.clone(), resolver(&dns)?, alerter.clone(), settings());

    let first = monitor.run_once().await?;
    // 192.0.2.10; 198.51.100.1 and .254 (the /24 sampled); 203.0.113.5;
    // acme.test, rp.acme.test, track.acme.test.
    ensure!(first.targets == 7, "{first:?}");
    ensure!(first.started == 4 && first.listed == 4, "{first:?}");
    let active = store
        .listings(
            &ListingFilter {
                active_only: true,
                ..ListingFilter::default()
            },
            100,
        )
        .await?;
    let mut seen: Vec<(String, String)> = active
        .iter()
        .map(|l| (l.seen.target.clone(), l.seen.list.clone()))
        .collect();
    seen.sort();
    ensure!(
        seen == [
            ("192.0.2.10".to_owned(), "psbl.surriel.com".to_owned()),
            ("198.51.100.1".to_owned(), "zen.spamhaus.org".to_owned()),
            ("203.0.113.5".to_owned(), "bl.spamcop.net".to_owned()),
            ("acme.test".to_owned(), "dbl.spamhaus.org".to_owned()),
        ],
        "{seen:?}"
    );
    let sbl = active
        .iter()
        .find(|l| l.seen.list == "zen.spamhaus.org")
        .context("the SBL listing")?;
    ensure!(
        sbl.seen.reason.contains("SBL") && sbl.seen.reason.contains("SBL1"),
        "{sbl:?}"
    );
    ensure!(sbl.seen.delist_url.as_deref() == Some("https://check.spamhaus.org/listed/?searchterm=198.51.100.1"));

    // acme hears of each listing once; the operator of its sending IP and
    // of the list it cannot read; globex of nothing.
    let mut told = sink.alerts();
    told.sort();
    let expected = |acc: &herald_types::AccountId, key: &str| (acc.to_string(), "open".to_owned(), key.to_owned());
    let mut want = vec![
        expected(&acme.id, "blocklist:psbl.surriel.com:192.0.2.10"),
        expected(&acme.id, "blocklist:zen.spamhaus.org:198.51.100.1"),
        expected(&acme.id, "blocklist:bl.spamcop.net:203.0.113.5"),
        expected(&acme.id, "blocklist:dbl.spamhaus.org:acme.test"),
        expected(&main.id, "blocklist:psbl.surriel.com:192.0.2.10"),
        expected(&main.id, "blocklist_error:b.barracudacentral.org"),
    ];
    want.sort();
    ensure!(told == want, "{told:#?}");
    ensure!(!told.iter().any(|(a, _, _)| *a == globex.id.to_string()));
    let mine = store.monitor_targets(Some(std::slice::from_ref(&acme.id))).await?;
    ensure!(
        mine.iter()
            .any(|t| t.target == "198.51.100.1" && t.origin == "spf:acme.test"),
        "{mine:?}"
    );
    // The score counts the listings.
    let (inputs, _) = herald_events::reputation::account_inputs(store.as_ref(), &acme.id).await?;
    let score = herald_events::reputation::score(&inputs);
    ensure!(
        score.reasons.iter().any(|r| r.factor == "blocklists" && r.impact == 50),
        "four listings cost the cap: {score:?}"
    );

    // Again: nothing new to tell.
    sink.clear();
    let again = monitor.run_once().await?;
    ensure!(again.started == 0 && again.listed == 4, "{again:?}");
    ensure!(sink.alerts().is_empty(), "{:?}", sink.alerts());

    // The SBL listing is gone; PSBL stops answering (its listing stays);
    // Barracuda answers again.
    dns.replace(
        &base_zones()
            .ip("5.113.0.203.bl.spamcop.net", ip("127.0.0.2"))
            .ip("acme.test.dbl.spamhaus.org", ip("127.0.1.2"))
            .silent("psbl.surriel.com"),
    )
    .await?;
    let monitor = Monitor::new(store.clone(), resolver(&dns)?, alerter, settings());
    let third = monitor.run_once().await?;
    ensure!(third.ended == 1 && third.started == 0 && third.listed == 3, "{third:?}");
    let mut told = sink.alerts();
    told.sort();
    let mut want = vec![
        (
            acme.id.to_string(),
            "resolved".to_owned(),
            "blocklist:zen.spamhaus.org:198.51.100.1".to_owned(),
        ),
        (
            main.id.to_string(),
            "open".to_owned(),
            "blocklist_error:psbl.surriel.com".to_owned(),
        ),
        (
            main.id.to_string(),
            "resolved".to_owned(),
            "blocklist_error:b.barracudacentral.org".to_owned(),
        ),
    ];
    want.sort();
    ensure!(told == want, "{told:#?}");
    let ended = store
        .listings(
            &ListingFilter {
                targets: Some(vec!["198.51.100.1".into()]),
                ..ListingFilter::default()
            },
            10,
        )
        .await?;
    ensure!(ended.len() == 1 && ended[0].ended_at.is_some(), "{ended:?}");
    let open = store
        .list_alerts(
            &AlertFilter {
                accounts: Some(vec![acme.id.clone()]),
                open: Some(true),
                ..AlertFilter::default()
            },
            10,
        )
        .await?;
    ensure!(open.len() == 3, "{open:?}");

    // SpamCop taken out of the configuration: its listing can no longer be
    // seen ending, so it ends now, and so does its alert.
    sink.clear();
    let mut fewer = settings();
    fewer.lists.retain(|l| l.zone != "bl.spamcop.net");
    let monitor = Monitor::new(
        store.clone(),
        resolver(&dns)?,
        Alerter::new(store.clone(), sink.clone()),
        fewer,
    );
    let fourth = monitor.run_once().await?;
    ensure!(fourth.ended == 1 && fourth.listed == 2, "{fourth:?}");
    ensure!(
        sink.alerts().contains(&(
            acme.id.to_string(),
            "resolved".to_owned(),
            "blocklist:bl.spamcop.net:203.0.113.5".to_owned()
        )),
        "{:?}",
        sink.alerts()
    );
    Ok(())
}
