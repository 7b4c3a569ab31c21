//! The linter against a real DNS server on loopback, through the real
//! resolver: a domain with every problem the linter knows, one with none,
//! one that publishes nothing, and a server that never answers.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_checks::{CheckKind, DnsReport, Severity, check_dns};
use herald_dns::{HickoryResolver, Settings};
use herald_testkit::{DnsServer, Zones};
use rsa::BigUint;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePublicKey;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpora/dkimpy-testdata");

/// A key record from dkimpy's published test data: `test.txt` is
/// RSA-1024, gmail.com's 20120113 key RSA-2048, brisbane RFC 8463's
/// Ed25519 example.
fn corpus(file: &str) -> String {
    std::fs::read_to_string(format!("{CORPUS}/{file}"))
        .unwrap()
        .trim()
        .to_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An RSA public key with a 512-bit modulus: only its length matters to
/// the linter, so it need not be a product of primes.
fn weak_key() -> rsa::RsaPublicKey {
    let mut n = vec![0x9d_u8; 64];
    n[63] |= 1;
    rsa::RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from(65_537_u32)).unwrap()
}

fn selectors(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn zones() -> Zones {
    let gmail = corpus("dns-20120113._domainkey.gmail.com.txt");
    let gmail_p = gmail.split("p=").nth(1).unwrap().to_owned();
    let pkcs1 = {
        let spki = STANDARD.decode(&gmail_p).unwrap();
        let key: rsa::RsaPublicKey = rsa::pkcs8::DecodePublicKey::from_public_key_der(&spki).unwrap();
        STANDARD.encode(key.to_pkcs1_der().unwrap().as_bytes())
    };
    let weak = STANDARD.encode(weak_key().to_public_key_der().unwrap().as_bytes());
    // Over 450 octets, so served as two TXT strings and joined again.
    let padding: Vec<String> = (1..=30).map(|i| format!("ip4:198.51.100.{i}")).collect();
    Zones::new()
        // --- clean.test: nothing to fix.
        .txt("clean.test", "v=spf1 mx include:_spf.provider.test -all")
        .txt("clean.test", "google-site-verification=abc123")
        .txt("_spf.provider.test", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all")
        .mx("clean.test", 10, "mx1.clean.test")
        .mx("clean.test", 20, "mx2.clean.test")
        .ip("mx1.clean.test", ip("192.0.2.25"))
        .ip("mx1.clean.test", ip("2001:db8::25"))
        .ip("mx2.clean.test", ip("192.0.2.26"))
        .txt(
            "_dmarc.clean.test",
            "v=DMARC1; p=reject; rua=mailto:dmarc@clean.test,mailto:agg@reports.provider.test; adkim=s",
        )
        .txt("clean.test._report._dmarc.reports.provider.test", "v=DMARC1")
        .mx("reports.provider.test", 10, "mx.provider.test")
        .ip("mx.provider.test", ip("192.0.2.30"))
        .txt(
            "hrld20261123r._domainkey.clean.test",
            &format!("v=DKIM1; k=rsa; p={gmail_p}"),
        )
        .txt(
            "hrld20261123e._domainkey.clean.test",
            &corpus("dns-brisbane._domainkey.football.example.com.txt"),
        )
        // --- broken.test: every problem at once.
        .txt(
            "broken.test",
            &format!(
                "v=spf1 ptr a:gone1.broken.test mx:gone2.broken.test exists:gone3.broken.test \
                 include:chain.broken.test include:loop.broken.test include:nospf.broken.test {} +all",
                padding.join(" ")
            ),
        )
        .txt("chain.broken.test", "v=spf1 a a a a ?all")
        .ip("chain.broken.test", ip("192.0.2.50"))
        .txt("loop.broken.test", "v=spf1 include:broken.test ~all")
        .txt("nospf.broken.test", "just some text")
        .txt("_dmarc.broken.test", "v=dmarc1; p=reject")
        .txt(
            "_dmarc.broken.test",
            "v=DMARC1; p=none; pct=50; rf=afrf; t=y; foo=bar; rua=mailto:d@elsewhere.test, dmarc@broken.test; \
             ruf=mailto:f@elsewhere.test!10m",
        )
        .txt("elsewhere.test", "v=spf1 -all")
        .txt("weak._domainkey.broken.test", &format!("v=DKIM1; p={weak}"))
        .txt("short._domainkey.broken.test", &corpus("test.txt"))
        .txt("testing._domainkey.broken.test", &format!("v=DKIM1; t=y; p={gmail_p}"))
        .txt("revoked._domainkey.broken.test", "v=DKIM1; k=rsa; p=")
        .txt("pkcs1._domainkey.broken.test", &format!("v=DKIM1; p={pkcs1}"))
        .txt("badk._domainkey.broken.test", &corpus("badk.txt"))
        .null_mx("broken.test")
        .mx("broken.test", 10, "192.0.2.7")
        .mx("broken.test", 20, "gone.broken.test")
        .mx("broken.test", 30, "alias.broken.test")
        .cname("alias.broken.test", "mx.elsewhere.test")
        .ip("mx.elsewhere.test", ip("192.0.2.8"))
        // --- bare.test: exists, publishes nothing.
        .ip("bare.test", ip("192.0.2.99"))
        // --- lost.test: reports to domains that take no mail, and to one
        // whose DNS never answers; a pct out of range.
        .txt(
            "_dmarc.lost.test",
            "v=DMARC1; p=quarantine; pct=150; rua=mailto:agg@nullmx.lost.test,mailto:agg@lost.test; \
             ruf=mailto:fail@nothing.lost.test,mailto:fail@down.lost.test",
        )
        .mx("lost.test", 10, "mx1.clean.test")
        .null_mx("nullmx.lost.test")
        .txt("nothing.lost.test", "v=spf1 -all")
        .silent("down.lost.test")
}

fn resolver(server: &DnsServer) -> HickoryResolver {
    HickoryResolver::with_servers(
        &[server.addr()],
        Settings {
            cache: false,
            ..Settings::default()
        },
    )
    .unwrap()
}

fn codes(report: &DnsReport) -> Vec<(&str, Severity)> {
    report.findings.iter().map(|f| (f.code.as_str(), f.severity)).collect()
}

#[tokio::test]
async fn a_clean_domain_has_nothing_worse_than_information() {
    let server = DnsServer::start(&zones()).await.unwrap();
    let report = check_dns(
        &resolver(&server),
        "clean.test",
        &selectors(&["hrld20261123r", "hrld20261123e"]),
    )
    .await;
    assert!(
        report.worst.is_none_or(|w| w <= Severity::Info),
        "{:#?}",
        report.findings
    );
    assert!(report.ok);
    assert!(report.spf.ok && report.dmarc.ok && report.dkim.ok && report.mx.ok);
    assert_eq!(
        report.spf.record.as_deref(),
        Some("v=spf1 mx include:_spf.provider.test -all")
    );
    assert_eq!(report.spf.lookups, 2);
    assert_eq!(report.spf.void_lookups, 0);
    assert_eq!(report.dmarc.policy.as_deref(), Some("reject"));
    assert_eq!(report.dmarc.found_at.as_deref(), Some("_dmarc.clean.test"));
    assert_eq!(report.dmarc.external_destinations.len(), 1);
    assert_eq!(report.dmarc.external_destinations[0].authorized, Some(true));
    let keys: Vec<(Option<&str>, Option<u32>)> = report
        .dkim
        .selectors
        .iter()
        .map(|s| (s.key_type.as_deref(), s.bits))
        .collect();
    assert_eq!(keys, vec![(Some("rsa"), Some(2048)), (Some("ed25519"), Some(256))]);
    let hosts: Vec<(&str, usize)> = report
        .mx
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.addresses.len()))
        .collect();
    assert_eq!(hosts, vec![("mx1.clean.test", 2), ("mx2.clean.test", 1)]);
}

#[tokio::test]
async fn a_broken_domain_shows_every_problem() {
    let server = DnsServer::start(&zones()).await.unwrap();
    let report = check_dns(
        &resolver(&server),
        "broken.test",
        &selectors(&["weak", "short", "testing", "revoked", "pkcs1", "badk", "missing"]),
    )
    .await;
    let found = codes(&report);
    let expected = [
        // SPF
        ("spf.pass_all", Severity::Critical),
        ("spf.too_many_lookups", Severity::Error),
        ("spf.too_many_void_lookups", Severity::Error),
        ("spf.loop", Severity::Error),
        ("spf.include_missing", Severity::Error),
        ("spf.ptr", Severity::Warning),
        ("spf.too_long", Severity::Warning),
        // DMARC
        ("dmarc.syntax", Severity::Error),
        ("dmarc.bad_uri", Severity::Error),
        ("dmarc.unauthorized_destination", Severity::Error),
        ("dmarc.undeliverable_destination", Severity::Error),
        ("dmarc.policy_none", Severity::Warning),
        ("dmarc.testing", Severity::Warning),
        ("dmarc.pct", Severity::Warning),
        ("dmarc.unknown_tag", Severity::Warning),
        ("dmarc.obsolete_tag", Severity::Info),
        ("dmarc.size_limit", Severity::Info),
        // DKIM
        ("dkim.weak_key", Severity::Error),
        ("dkim.unknown_key_type", Severity::Error),
        ("dkim.missing", Severity::Error),
        ("dkim.short_key", Severity::Warning),
        ("dkim.testing", Severity::Warning),
        ("dkim.revoked", Severity::Warning),
        ("dkim.pkcs1_key", Severity::Warning),
        // MX
        ("mx.null_mixed", Severity::Error),
        ("mx.ip_literal", Severity::Error),
        ("mx.no_address", Severity::Error),
        ("mx.cname", Severity::Warning),
    ];
    for code in expected {
        assert!(found.contains(&code), "{code:?} not in {found:#?}");
    }
    assert_eq!(report.worst, Some(Severity::Critical));
    assert!(!report.ok);
    assert_eq!(report.findings[0].severity, Severity::Critical);
    assert!(!report.spf.ok && !report.dmarc.ok && !report.dkim.ok && !report.mx.ok);
    // What was found is shown beside the findings.
    assert_eq!(report.spf.lookups, 12);
    assert_eq!(report.spf.void_lookups, 3);
    assert!(
        report.spf.record.as_deref().unwrap().len() > 450,
        "joined from several strings"
    );
    assert_eq!(report.dmarc.tags["pct"], "50");
    assert_eq!(report.dmarc.external_destinations[0].host, "elsewhere.test");
    assert_eq!(
        report.dmarc.external_destinations[0].authorization_record,
        "broken.test._report._dmarc.elsewhere.test"
    );
    let weak = &report.dkim.selectors[0];
    assert_eq!((weak.selector.as_str(), weak.bits), ("weak", Some(512)));
    assert!(report.dkim.selectors[2].testing);
    assert!(report.dkim.selectors[3].revoked);
    assert!(!report.mx.null_mx);
    // Every finding names its check and says something a person can act on.
    for f in &report.findings {
        let prefix = match f.check {
            CheckKind::Spf => "spf.",
            CheckKind::Dmarc => "dmarc.",
            CheckKind::Dkim => "dkim.",
            CheckKind::Mx => "mx.",
        };
        assert!(f.code.starts_with(prefix), "{f:?}");
        assert!(f.message.ends_with('.') && f.message.len() > 40, "{f:?}");
    }
}

/// Issue 18: a `pct` outside 0–100 is invalid, and each report address
/// is checked for a way to receive mail: a null MX, or neither MX nor
/// address, is an error naming the address; a destination whose DNS does
/// not answer is a warning, not a claim.
#[tokio::test]
async fn report_addresses_that_cannot_receive_mail_are_named() {
    let server = DnsServer::start(&zones()).await.unwrap();
    let settings = Settings {
        timeout: Duration::from_millis(300),
        retries: 0,
        cache: false,
    };
    let resolver = HickoryResolver::with_servers(&[server.addr()], settings).unwrap();
    let report = check_dns(&resolver, "lost.test", &[]).await;
    let dmarc: Vec<(&str, Severity, &str)> = report
        .findings
        .iter()
        .filter(|f| f.check == CheckKind::Dmarc)
        .map(|f| (f.code.as_str(), f.severity, f.message.as_str()))
        .collect();
    let with = |code: &str| dmarc.iter().filter(|f| f.0 == code).collect::<Vec<_>>();
    let invalid = with("dmarc.invalid_value");
    assert!(
        invalid.len() == 1 && invalid[0].1 == Severity::Error && invalid[0].2.starts_with("pct=150 "),
        "{dmarc:#?}"
    );
    let lost = with("dmarc.undeliverable_destination");
    assert_eq!(lost.len(), 2, "{dmarc:#?}");
    assert!(lost[0].2.starts_with("rua=mailto:agg@nullmx.lost.test ") && lost[0].2.contains("null MX"));
    assert!(
        lost[1].2.starts_with("ruf=mailto:fail@nothing.lost.test ")
            && lost[1].2.contains("no MX record and no address")
    );
    let unchecked = with("dmarc.destination_unchecked");
    assert!(
        unchecked.len() == 1
            && unchecked[0].1 == Severity::Warning
            && unchecked[0].2.contains("ruf=mailto:fail@down.lost.test"),
        "{dmarc:#?}"
    );
    // The domain's own address receives mail: nothing said of it.
    assert!(!dmarc.iter().any(|f| f.2.contains("agg@lost.test")), "{dmarc:#?}");
    assert!(!report.dmarc.ok && !report.ok);
}

#[tokio::test]
async fn a_domain_without_records_misses_dmarc_critically() {
    let server = DnsServer::start(&zones()).await.unwrap();
    let report = check_dns(&resolver(&server), "bare.test", &[]).await;
    assert_eq!(
        codes(&report),
        vec![
            ("dmarc.missing", Severity::Critical),
            ("spf.missing", Severity::Warning),
            ("mx.missing", Severity::Warning),
            ("dkim.no_selectors", Severity::Info),
        ]
    );
    assert_eq!(report.worst, Some(Severity::Critical));
}

/// A server that never answers: every check says DNS failed, none says the
/// domain is clean or that records are missing, and it ends in time.
#[tokio::test]
async fn a_silent_server_is_reported_not_mistaken_for_missing_records() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings {
        timeout: Duration::from_millis(200),
        retries: 0,
        cache: false,
    };
    let resolver = HickoryResolver::with_servers(&[silent.local_addr().unwrap()], settings).unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        check_dns(&resolver, "acme.test", &selectors(&["s1"])),
    )
    .await
    .expect("the linter ends when DNS does not answer");
    let found = codes(&report);
    for code in ["spf.dns_error", "dmarc.dns_error", "dkim.dns_error", "mx.dns_error"] {
        assert!(found.contains(&(code, Severity::Error)), "{code} not in {found:#?}");
    }
    for f in &report.findings {
        assert!(f.code.ends_with(".dns_error"), "{f:?}");
    }
    assert!(!report.ok);
}
