//! `check_host()` end to end: on the table resolver for the rules a
//! receiving MTA depends on, and once through the real resolver against a
//! real DNS server on loopback (A, AAAA, MX, PTR and TXT over the wire).

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::net::IpAddr;

use herald_dns::{HickoryResolver, Settings, StaticResolver};
use herald_spf::{Checker, SpfResult, Verdict, check_host};
use herald_testkit::{DnsServer, Zones};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn check(r: &StaticResolver, client: &str, domain: &str) -> Verdict {
    check_host(r, ip(client), domain, &format!("jo@{domain}"), "mail.client.test").await
}

#[tokio::test]
async fn includes_and_mx_authorise_and_count_their_lookups() {
    let r = StaticResolver::new()
        .txt("example.test", "v=spf1 mx include:_spf.esp.test -all")
        .mx("example.test", 10, "mx.example.test")
        .ip("mx.example.test", ip("192.0.2.10"))
        .txt("_spf.esp.test", "v=spf1 ip4:198.51.100.0/24 ip6:2001:db8:5::/48 ~all");
    let v = check(&r, "192.0.2.10", "example.test").await;
    assert_eq!((v.result, v.dns_lookups), (SpfResult::Pass, 1), "{v:?}");
    let v = check(&r, "198.51.100.7", "example.test").await;
    assert_eq!((v.result, v.dns_lookups), (SpfResult::Pass, 2), "{v:?}");
    assert!(v.reason.contains("include:_spf.esp.test"), "{}", v.reason);
    let v = check(&r, "2001:db8:5::1", "example.test").await;
    assert_eq!(v.result, SpfResult::Pass, "{v:?}");
    // The include's ~all is not a match: the outer -all decides.
    let v = check(&r, "203.0.113.1", "example.test").await;
    assert_eq!(v.result, SpfResult::Fail, "{v:?}");
    assert_eq!(v.explanation, None, "no exp=: the caller's default applies");
}

#[tokio::test]
async fn the_eleventh_lookup_and_the_third_void_are_permanent_errors() {
    let mut r = StaticResolver::new().txt(
        "many.test",
        &format!(
            "v=spf1 {} -all",
            (0..11)
                .map(|i| format!("include:i{i}.test"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    for i in 0..11 {
        r = r.txt(&format!("i{i}.test"), "v=spf1 ?all");
    }
    let v = check(&r, "192.0.2.1", "many.test").await;
    assert_eq!(v.result, SpfResult::PermError, "{v:?}");
    assert_eq!(v.dns_lookups, 11);
    assert!(v.reason.contains("more than 10"), "{}", v.reason);

    let r = StaticResolver::new()
        .txt("voids.test", "v=spf1 a:gone1.test a:gone2.test a:gone3.test -all")
        .txt("two.test", "v=spf1 a:gone1.test a:gone2.test -all");
    let v = check(&r, "192.0.2.1", "two.test").await;
    assert_eq!((v.result, v.void_lookups), (SpfResult::Fail, 2), "{v:?}");
    let v = check(&r, "192.0.2.1", "voids.test").await;
    assert_eq!((v.result, v.void_lookups), (SpfResult::PermError, 3), "{v:?}");
}

#[tokio::test]
async fn dns_failures_are_temporary_and_missing_records_are_none() {
    let r = StaticResolver::new()
        .txt("flaky.test", "v=spf1 include:down.test -all")
        .fail("down.test")
        .fail("broken.test")
        .txt("two.test", "v=spf1 -all")
        .txt("two.test", "v=spf1 +all")
        .txt("other.test", "google-site-verification=abc");
    assert_eq!(check(&r, "192.0.2.1", "flaky.test").await.result, SpfResult::TempError);
    assert_eq!(check(&r, "192.0.2.1", "broken.test").await.result, SpfResult::TempError);
    assert_eq!(check(&r, "192.0.2.1", "nowhere.test").await.result, SpfResult::None);
    assert_eq!(check(&r, "192.0.2.1", "other.test").await.result, SpfResult::None);
    assert_eq!(check(&r, "192.0.2.1", "two.test").await.result, SpfResult::PermError);
}

#[tokio::test]
async fn explanations_expand_with_the_receiver_and_the_validated_name() {
    let r = StaticResolver::new()
        .txt("example.test", "v=spf1 -all exp=why.example.test")
        .txt("why.example.test", "%{c} (%{p}) may not send as %{s}; ask %{r}")
        .ptr(ip("192.0.2.9"), "host.isp.test")
        .ip("host.isp.test", ip("192.0.2.9"));
    let v = Checker::new(&r)
        .receiver("mx.herald.test")
        .check_host(ip("192.0.2.9"), "example.test", "jo@example.test", "h.test")
        .await;
    assert_eq!(v.result, SpfResult::Fail);
    assert_eq!(
        v.explanation.as_deref(),
        Some("192.0.2.9 (host.isp.test) may not send as jo@example.test; ask mx.herald.test")
    );
}

#[tokio::test]
async fn a_null_sender_is_checked_as_the_helo_domain() {
    let r = StaticResolver::new()
        .txt("mail.client.test", "v=spf1 a -all")
        .ip("mail.client.test", ip("192.0.2.5"));
    let v = Checker::new(&r)
        .check_mail_from(ip("192.0.2.5"), "", "mail.client.test")
        .await;
    assert_eq!(v.result, SpfResult::Pass, "{v:?}");
}

#[tokio::test]
async fn the_real_resolver_answers_every_mechanism() {
    let zones = Zones::new()
        .txt(
            "example.test",
            "v=spf1 mx a:relay.example.test ptr:isp.test exists:%{ir}.bl.example.test -all",
        )
        .mx("example.test", 10, "mx.example.test")
        .ip("mx.example.test", ip("192.0.2.10"))
        .ip("relay.example.test", ip("192.0.2.25"))
        .ip("relay.example.test", ip("2001:db8::25"))
        .ptr(ip("198.51.100.3"), "host3.isp.test")
        .ip("host3.isp.test", ip("198.51.100.3"))
        .ip("7.113.0.203.bl.example.test", ip("127.0.0.2"));
    let server = DnsServer::start(&zones).await.unwrap();
    let resolver = HickoryResolver::with_servers(
        &[server.addr()],
        Settings {
            cache: false,
            ..Settings::default()
        },
    )
    .unwrap();
    for (client, want) in [
        ("192.0.2.10", SpfResult::Pass),
        ("2001:db8::25", SpfResult::Pass),
        ("198.51.100.3", SpfResult::Pass),
        ("203.0.113.7", SpfResult::Pass),
        ("192.0.2.11", SpfResult::Fail),
    ] {
        let v = check_host(&resolver, ip(client), "example.test", "jo@example.test", "h.test").await;
        assert_eq!(v.result, want, "{client}: {v:?}");
    }
}
