//! The scheduled blocklist check at scale: `TARGETS` sending addresses
//! against `LISTS` IPv4 lists, served by the test DNS server on loopback,
//! with `CONCURRENCY` lookups in flight; the whole run (gathering targets,
//! every lookup, recording listings and monitored targets in SQLite,
//! alerts) timed.
//!
//!   cargo run --release -p herald-monitor --example scale -- [TARGETS] [LISTS] [CONCURRENCY]
//!
//! One address in a hundred is listed on one list (127.0.0.2 with a TXT
//! record), one in a thousand answers a refusal (127.255.255.254); every
//! other lookup is NXDOMAIN, as for a clean address. Defaults: 10000 12 64.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_checks::blocklists::{Blocklist, Pace};
use herald_events::alerts::Alerter;
use herald_monitor::{Monitor, Settings};
use herald_store::{NewAccount, Store};
use herald_testkit::{DnsServer, TempStore, Zones};
use herald_types::{AccountName, Event, EventSink};

const ZONES: [&str; 12] = [
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "dnsbl-1.uceprotect.net",
    "dnsbl-2.uceprotect.net",
    "dnsbl-3.uceprotect.net",
    "psbl.surriel.com",
    "bl.mailspike.net",
    "rep.mailspike.net",
    "ix.dnsbl.manitu.net",
    "dnsbl.dronebl.org",
    "all.s5h.net",
];

#[derive(Debug, Default)]
struct Count(std::sync::atomic::AtomicUsize);

impl EventSink for Count {
    fn emit(&self, _: Event) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn address(i: usize) -> IpAddr {
    // 10.x.y.z, spread over many /24s.
    let n = u32::try_from(i).unwrap_or(0) + 1;
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
}

fn reversed(ip: IpAddr) -> String {
    let r = herald_dns::reverse_name(ip);
    r.trim_end_matches(".in-addr.arpa").to_owned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let targets = args.first().copied().unwrap_or(10_000);
    let lists = args.get(1).copied().unwrap_or(12).clamp(1, ZONES.len());
    let concurrency = args.get(2).copied().unwrap_or(64);

    let mut zones = Zones::new();
    for z in &ZONES[..lists] {
        zones = zones.txt(z, "zone");
    }
    let mut expected_listed = 0;
    for i in 0..targets {
        let ip = address(i);
        let zone = ZONES[i % lists];
        if i % 100 == 7 {
            let name = format!("{}.{zone}", reversed(ip));
            zones = zones
                .ip(&name, "127.0.0.2".parse()?)
                .txt(&name, "listed for the benchmark");
            expected_listed += 1;
        } else if i % 1000 == 501 {
            zones = zones.ip(&format!("{}.{zone}", reversed(ip)), "127.255.255.254".parse()?);
        }
    }
    let dns = DnsServer::start(&zones).await?;
    let temp = TempStore::sqlite()?;
    let store: Arc<dyn Store> = temp.open().await?;
    store
        .create_account(NewAccount {
            name: AccountName::parse("main")?,
            parent: None,
        })
        .await?;
    let mut settings = Settings::defaults(AccountName::parse("main")?);
    settings.lists = ZONES[..lists].iter().filter_map(|z| Blocklist::named(z)).collect();
    settings.pace = Pace {
        concurrency,
        timeout: Duration::from_secs(10),
    };
    settings.sending_ips = (0..targets).map(|i| (address(i), Vec::new())).collect();
    let resolver = herald_dns::HickoryResolver::with_servers(
        &[dns.addr()],
        herald_dns::Settings {
            timeout: Duration::from_secs(5),
            retries: 1,
            cache: false,
        },
    )?;
    let sink = Arc::new(Count::default());
    let monitor = Monitor::new(
        store.clone(),
        Arc::new(resolver),
        Alerter::new(store.clone(), sink.clone()),
        settings,
    );
    let started = Instant::now();
    let run = monitor.run_once().await?;
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = run.queries as f64 / seconds;
    println!(
        "targets {} lists {lists} concurrency {concurrency}: {} lookups in {seconds:.2} s ({rate:.0}/s); listed {} (expected {expected_listed}), errors {}, alert events {}",
        run.targets,
        run.queries,
        run.listed,
        run.errors,
        sink.0.load(std::sync::atomic::Ordering::Relaxed)
    );
    anyhow::ensure!(run.listed == expected_listed, "every listing found");
    Ok(())
}
