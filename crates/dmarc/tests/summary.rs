//! The DMARC service end to end below the API: reports ingested into a real
//! store (SQLite, and PostgreSQL when configured), summarised, and their
//! sources labelled through a real DNS server on loopback that serves the
//! domain's SPF record and the sources' PTR names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use herald_api_types::dmarc::{ImportStatus, SourceLabel};
use herald_dmarc::{Dmarc, Origin};
use herald_dns::{HickoryResolver, Settings};
use herald_store::Store;
use herald_testkit::TempStore;
use herald_testkit::{DnsServer, Zones};
use time::OffsetDateTime;

/// Day 0 of the reports: 2026-11-01 00:00 UTC.
const DAY0: i64 = 1_793_491_200;

/// One row of a report: (ip, count, aligned dkim, aligned spf, raw spf result
/// and domain).
struct Row(
    &'static str,
    u64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn report(org: &str, day: i64, p: &str, rows: &[Row]) -> String {
    let begin = DAY0 + day * 86_400;
    let mut xml = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{org}</org_name>\
         <email>noreply@{org}</email><report_id>{org}-{day}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>example.com</domain>\
         <adkim>r</adkim><aspf>r</aspf><p>{p}</p><pct>100</pct></policy_published>",
        begin + 86_399
    );
    for Row(ip, count, dkim, spf, raw_spf, spf_domain) in rows {
        xml.push_str(&format!(
            "<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
             <identifiers><header_from>example.com</header_from></identifiers><auth_results>\
             <dkim><domain>example.com</domain><selector>s1</selector><result>{dkim}</result></dkim>\
             <spf><domain>{spf_domain}</domain><result>{raw_spf}</result></spf></auth_results></record>"
        ));
    }
    xml.push_str("</feedback>");
    xml
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

async fn resolver() -> (DnsServer, Arc<HickoryResolver>) {
    let zones = Zones::new()
        .txt("example.com", "v=spf1 ip4:192.0.2.10 -all")
        .ptr(ip("192.0.2.10"), "mta1.example.com")
        .ptr(ip("203.0.113.5"), "mail5.atl11.mcsv.net")
        .ptr(ip("198.51.100.20"), "mail-qt1-f20.google.com")
        .ptr(ip("203.0.113.77"), "o1.ptr4242.sendgrid.net")
        // Forward-confirmed reverse DNS: each name resolves back…
        .ip("mta1.example.com", ip("192.0.2.10"))
        .ip("mail5.atl11.mcsv.net", ip("203.0.113.5"))
        .ip("mail-qt1-f20.google.com", ip("198.51.100.20"))
        .ip("o1.ptr4242.sendgrid.net", ip("203.0.113.77"))
        // …but a spoofer's claim to be Google does not.
        .ptr(ip("198.51.100.99"), "mail-spoof.google.com");
    let server = DnsServer::start(&zones).await.unwrap();
    let resolver = HickoryResolver::with_servers(&[server.addr()], Settings::default()).unwrap();
    (server, Arc::new(resolver))
}

async fn reports_are_summarised_and_their_sources_named(store: Arc<dyn Store>) {
    let (_dns, resolver) = resolver().await;
    let dmarc = Dmarc::new(store.clone(), resolver, vec!["192.0.2.200/32".parse().unwrap()]);

    // Ten days of reports from two providers.
    for day in 0..10 {
        let google = report(
            "google.com",
            day,
            "none",
            &[
                // In the SPF record.
                Row("192.0.2.10", 100, "pass", "pass", "pass", "example.com"),
                // Mailchimp, signing with example.com's key, SPF on its own domain.
                Row("203.0.113.5", 20, "pass", "fail", "pass", "mcsv.net"),
                // Gmail forwarding example.com's signed mail.
                Row("198.51.100.20", 5, "pass", "fail", "fail", "example.com"),
                // SendGrid, not set up for example.com.
                Row("203.0.113.77", 3, "fail", "fail", "pass", "sendgrid.net"),
            ],
        );
        let yahoo = report(
            "Yahoo",
            day,
            "none",
            &[
                Row("192.0.2.10", 50, "pass", "pass", "pass", "example.com"),
                // Herald's own address (configured), failing one day in ten.
                Row(
                    "192.0.2.200",
                    10,
                    if day == 3 { "fail" } else { "pass" },
                    "fail",
                    "none",
                    "example.com",
                ),
                // A spoofer whose reverse DNS claims to be Google.
                Row("198.51.100.99", 4, "fail", "fail", "fail", "example.com"),
            ],
        );
        for xml in [google, yahoo] {
            let o = dmarc
                .ingest(xml.as_bytes(), Origin::Import, None)
                .await
                .unwrap()
                .remove(0);
            assert_eq!(o.status, ImportStatus::Imported, "{o:?}");
        }
    }

    // The same report again is a duplicate; bytes that are no report are
    // kept with their error.
    let again = report(
        "google.com",
        4,
        "none",
        &[Row("192.0.2.10", 1, "pass", "pass", "pass", "example.com")],
    );
    let dup = dmarc
        .ingest(again.as_bytes(), Origin::Api, None)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (dup.status, dup.report_id.as_deref()),
        (ImportStatus::Duplicate, Some("google.com-4"))
    );
    let broken = dmarc
        .ingest(
            b"<feedback><report_metadata>",
            Origin::Mx,
            Some("dmarc@reporter.example".into()),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!(broken.status, ImportStatus::Failed);
    let kept = store.list_broken_reports(0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(Some(kept[0].error.clone()), broken.error);

    let now = OffsetDateTime::from_unix_timestamp(DAY0 + 12 * 86_400).unwrap();
    let s = dmarc.summary("Example.COM.", 30, now).await.unwrap();
    assert_eq!(s.domain, "example.com");
    assert_eq!(s.reports, 20);
    assert_eq!(s.totals.messages, 10 * (100 + 20 + 5 + 3 + 50 + 10 + 4));
    assert_eq!(s.totals.dmarc_pass, 10 * (100 + 20 + 5 + 50) + 9 * 10);
    assert_eq!(s.totals.spf_aligned, 10 * 150);
    assert_eq!(s.by_day.len(), 10);
    assert_eq!(s.by_day[0].day, "2026-11-01");
    assert_eq!(s.by_day[0].tally.messages, 192);
    let reporters: Vec<(&str, u64)> = s.by_reporter.iter().map(|r| (r.org_name.as_str(), r.reports)).collect();
    assert_eq!(reporters, [("google.com", 10), ("Yahoo", 10)]);

    let label = |ip: &str| {
        let src = s
            .sources
            .iter()
            .find(|x| x.ip == ip)
            .unwrap_or_else(|| panic!("{ip} missing"));
        (
            src.label,
            src.service.as_ref().map(|x| x.name.clone()),
            src.reverse_dns.clone(),
        )
    };
    assert_eq!(
        label("192.0.2.10"),
        (SourceLabel::Yours, None, Some("mta1.example.com".into()))
    );
    assert_eq!(label("192.0.2.200").0, SourceLabel::Yours);
    assert_eq!(
        label("203.0.113.5"),
        (
            SourceLabel::Yours,
            Some("Intuit Mailchimp".into()),
            Some("mail5.atl11.mcsv.net".into())
        )
    );
    assert_eq!(label("198.51.100.20").0, SourceLabel::Forwarder);
    assert_eq!(
        label("203.0.113.77"),
        (
            SourceLabel::Service,
            Some("Twilio SendGrid".into()),
            Some("o1.ptr4242.sendgrid.net".into())
        )
    );
    assert_eq!(
        label("198.51.100.99"),
        (SourceLabel::Unknown, None, Some("mail-spoof.google.com".into()))
    );
    let spoofer = s.sources.iter().find(|x| x.ip == "198.51.100.99").unwrap();
    assert!(spoofer.why.contains("does not resolve back"), "{}", spoofer.why);
    assert_eq!(s.sources[0].ip, "192.0.2.10", "largest first");
    assert_eq!(s.sources[0].tally.messages, 1500);
    assert_eq!(s.sources[0].reporters, ["Yahoo", "google.com"]);

    // Enforcing would block the forwarded copies (0: DKIM passes), one day
    // of Herald's own failures, SendGrid's and the spoofer's.
    assert_eq!(s.enforcement.failing, 10 + 30 + 40);
    assert_eq!(
        (s.enforcement.yours, s.enforcement.forwarded, s.enforcement.others),
        (10, 0, 70)
    );
    // 1,800 messages from your sources, 1,790 passing: 99.4%, over ten days.
    let r = &s.recommendation;
    assert_eq!(
        (r.action.as_str(), r.p.as_str(), r.pct),
        ("advance", "quarantine", 25),
        "{}",
        r.reason
    );
    assert!((r.compliance - 1790.0 / 1800.0).abs() < 1e-9);
    assert!(r.reason.contains("70 failing messages"), "{}", r.reason);
    assert!(!s.truncated);
    assert_eq!(s.policy.as_ref().map(|p| p.p.as_str()), Some("none"));

    // A window that ends before the reports holds none of them.
    let early = dmarc
        .summary(
            "example.com",
            5,
            OffsetDateTime::from_unix_timestamp(DAY0 - 86_400).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((early.reports, early.totals.messages), (0, 0));
    assert_eq!(early.recommendation.action, "collect");

    // Issue 18: a window of its own, [since, until), however long ago: the
    // reports beginning on days 2, 3 and 4, from both reporters.
    let at = |day: i64| OffsetDateTime::from_unix_timestamp(DAY0 + day * 86_400).unwrap();
    let window = dmarc
        .summary_of(
            "example.com",
            herald_dmarc::Window {
                since: at(2),
                until: at(5),
            },
        )
        .await
        .unwrap();
    assert_eq!((window.reports, window.days), (6, 3));
    let days: Vec<&str> = window.by_day.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(days, ["2026-11-03", "2026-11-04", "2026-11-05"]);
    assert_eq!((window.since, window.until), (at(2), at(5)));
}

#[tokio::test]
async fn on_sqlite() {
    let temp = TempStore::sqlite().unwrap();
    reports_are_summarised_and_their_sources_named(temp.open().await.unwrap()).await;
}

#[tokio::test]
async fn on_postgres() {
    let url = herald_testkit::postgres_url();
    let temp = TempStore::postgres(&url).await.unwrap();
    reports_are_summarised_and_their_sources_named(temp.open().await.unwrap()).await;
}
