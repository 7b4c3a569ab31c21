//! The real resolver against a real DNS server on loopback: every answer a
//! delivery depends on, and the permanent/temporary split.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::net::IpAddr;
use std::time::Duration;

use herald_dns::{DnsError, HickoryResolver, MailRoute, Mx, Resolver, Settings, StaticResolver};
use herald_testkit::{DnsServer, Zones};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn zones() -> Zones {
    Zones::new()
        .mx("example.test", 20, "mx2.example.test")
        .mx("example.test", 10, "mx1.example.test")
        .ip("mx1.example.test", ip("127.0.0.2"))
        .ip("mx1.example.test", ip("::1"))
        .ip("mx2.example.test", ip("127.0.0.3"))
        .null_mx("nomail.example.test")
        .ip("direct.example.test", ip("127.0.0.4"))
        .txt("example.test", "v=spf1 mx -all")
        .txt("long.example.test", &format!("v=DKIM1; k=rsa; p={}", "A".repeat(400)))
        .cname("track.example.test", "Track.MTA.test.")
        .ptr(ip("192.0.2.2"), "mx1.example.test")
        .ptr(ip("192.0.2.2"), "Other.example.test")
        .ptr(ip("2001:db8::2"), "mx1.example.test")
}

fn mx(p: u16, e: &str) -> Mx {
    Mx {
        preference: p,
        exchange: e.into(),
    }
}

async fn check(r: &dyn Resolver) {
    assert_eq!(
        r.mail_route("Example.TEST").await.unwrap(),
        MailRoute::Exchanges(vec![mx(10, "mx1.example.test"), mx(20, "mx2.example.test")])
    );
    assert_eq!(r.mail_route("nomail.example.test").await.unwrap(), MailRoute::NullMx);
    assert_eq!(r.mail_route("direct.example.test").await.unwrap(), MailRoute::Implicit);
    assert_eq!(
        r.mail_route("nowhere.example.test").await,
        Err(DnsError::NoSuchName("nowhere.example.test".into()))
    );
    let mut ips = r.addresses("mx1.example.test").await.unwrap();
    ips.sort();
    assert_eq!(ips, vec![ip("127.0.0.2"), ip("::1")]);
    assert!(matches!(
        r.addresses("example.test").await,
        Err(DnsError::NoRecords(..))
    ));
    assert_eq!(r.txt("example.test").await.unwrap(), vec!["v=spf1 mx -all".to_owned()]);
    let long = r.txt("long.example.test").await.unwrap();
    assert_eq!(
        long[0].len(),
        "v=DKIM1; k=rsa; p=".len() + 400,
        "long TXT strings are joined"
    );
    // The questions SPF asks: one address family, raw MX, reverse names.
    assert_eq!(
        r.ipv4("mx1.example.test").await.unwrap(),
        vec!["127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        r.ipv6("mx1.example.test").await.unwrap(),
        vec![std::net::Ipv6Addr::LOCALHOST]
    );
    assert!(matches!(
        r.ipv6("direct.example.test").await,
        Err(DnsError::NoRecords(..))
    ));
    assert!(matches!(
        r.ipv4("nowhere.example.test").await,
        Err(DnsError::NoSuchName(..))
    ));
    let mut raw = r.mx("example.test").await.unwrap();
    raw.sort();
    assert_eq!(raw, vec![mx(10, "mx1.example.test"), mx(20, "mx2.example.test")]);
    assert_eq!(r.mx("nomail.example.test").await.unwrap(), vec![mx(0, "")]);
    assert!(
        matches!(r.mx("direct.example.test").await, Err(DnsError::NoRecords(..))),
        "no implicit MX"
    );
    assert!(matches!(
        r.mx("nowhere.example.test").await,
        Err(DnsError::NoSuchName(..))
    ));
    // Not loopback addresses: hickory answers their reverse names itself
    // ("localhost", RFC 6761).
    let mut names = r.ptr(ip("192.0.2.2")).await.unwrap();
    names.sort();
    assert_eq!(
        names,
        vec!["mx1.example.test".to_owned(), "other.example.test".to_owned()]
    );
    assert_eq!(
        r.ptr(ip("2001:db8::2")).await.unwrap(),
        vec!["mx1.example.test".to_owned()]
    );
    assert!(matches!(r.ptr(ip("192.0.2.9")).await, Err(DnsError::NoSuchName(n)) if n == "9.2.0.192.in-addr.arpa"));
}

#[tokio::test]
async fn the_real_resolver_reads_a_real_server() {
    let server = DnsServer::start(&zones()).await.unwrap();
    let resolver = HickoryResolver::with_servers(
        &[server.addr()],
        Settings {
            cache: false,
            ..Settings::default()
        },
    )
    .unwrap();
    check(&resolver).await;
    // Outside the test zones: NXDOMAIN, as on the internet.
    assert!(matches!(
        resolver.mail_route("nosuch.org").await,
        Err(DnsError::NoSuchName(_))
    ));
    // SPF macros can build names no zone holds (a HELO of "JUMPIN' JUPITER"
    // escaped); they do not exist, which is permanent, not a DNS failure.
    for odd in [
        "JUMPIN%27%20JUPITER",
        "macro%percent  space%20url-space.example.test",
        "a..b.example.test",
    ] {
        let err = resolver.ipv4(odd).await.unwrap_err();
        assert!(!err.is_temporary(), "{odd}: {err:?}");
    }
}

#[tokio::test]
async fn the_table_double_answers_like_the_real_one() {
    let table = StaticResolver::new()
        .mx("example.test", 20, "mx2.example.test")
        .mx("example.test", 10, "mx1.example.test")
        .ip("mx1.example.test", ip("127.0.0.2"))
        .ip("mx1.example.test", ip("::1"))
        .mx("nomail.example.test", 0, ".")
        .ip("direct.example.test", ip("127.0.0.4"))
        .txt("example.test", "v=spf1 mx -all")
        .txt("long.example.test", &format!("v=DKIM1; k=rsa; p={}", "A".repeat(400)))
        .cname("track.example.test", "track.mta.test")
        .ptr(ip("192.0.2.2"), "mx1.example.test")
        .ptr(ip("192.0.2.2"), "Other.example.test")
        .ptr(ip("2001:db8::2"), "mx1.example.test");
    check(&table).await;
}

#[tokio::test]
async fn republished_zones_are_served_on_the_same_address() {
    let mut server = DnsServer::start(&Zones::new().txt("a.example.test", "one"))
        .await
        .unwrap();
    let addr = server.addr();
    let resolver = HickoryResolver::with_servers(
        &[addr],
        Settings {
            cache: false,
            ..Settings::default()
        },
    )
    .unwrap();
    assert_eq!(resolver.txt("a.example.test").await.unwrap(), vec!["one".to_owned()]);
    server
        .replace(&Zones::new().txt("a.example.test", "two"))
        .await
        .unwrap();
    assert_eq!(server.addr(), addr);
    assert_eq!(resolver.txt("a.example.test").await.unwrap(), vec!["two".to_owned()]);
}

#[tokio::test]
async fn a_silent_server_is_a_temporary_failure() {
    // A bound UDP socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings {
        timeout: Duration::from_millis(200),
        retries: 1,
        cache: false,
    };
    let resolver = HickoryResolver::with_servers(&[silent.local_addr().unwrap()], settings).unwrap();
    let started = std::time::Instant::now();
    let err = resolver.mail_route("example.test").await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the settings bound the wait"
    );
}
