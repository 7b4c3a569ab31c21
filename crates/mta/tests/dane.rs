//! DANE (RFC 7672) against real peers on loopback: TLSA and MX records
//! served by the test DNS server, which answers signed names with the AD
//! bit as the validating resolver Herald trusts would (it does not sign:
//! it stands in for that resolver on the wire, so Herald's own queries,
//! AD handling and certificate matching are what is tested); STARTTLS
//! sinks with certificates matching and not matching their TLSA records.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::{HickoryResolver, Resolver, Settings};
use herald_mta::{DeliveryConfig, Mta, RetryPolicy, RuleSet};
use herald_spool::{Spool, SpoolOptions};
use herald_testkit::{SinkOptions, SmtpSink, TestCa, Zones, wait_for};
use herald_types::{AccountId, EmailAddress, Envelope, Event, EventKind, EventSink, ReversePath};
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b).as_ref().to_vec()
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_decides_which_certificates_are_good_enough() {
    let ca = TestCa::new().unwrap();
    // DANE-EE: the key is what counts; this certificate's name and issuer
    // mean nothing to the Web PKI.
    let ee = ca.issue(&["not-the-mx.invalid"]).unwrap();
    let with_tls = |identity| SinkOptions {
        starttls: true,
        identity: Some(identity),
        ..SinkOptions::default()
    };
    let ee_sink = SmtpSink::start_opts("127.0.0.51:0", vec![], with_tls(ee.clone()))
        .await
        .unwrap();
    let port = ee_sink.addr().port();
    let plain = SmtpSink::start(&format!("127.0.0.54:{port}"), vec![]).await.unwrap();
    // DANE-TA: a certificate for mx.ta.test from the CA the TLSA names.
    let ta_sink = SmtpSink::start_opts(
        &format!("127.0.0.55:{port}"),
        vec![],
        with_tls(ca.issue(&["mx.ta.test"]).unwrap()),
    )
    .await
    .unwrap();
    let spki = herald_mta::dane::spki(&ee.chain[0]).unwrap().to_vec();
    let tlsa = |host: &str| format!("_{port}._tcp.{host}");
    let mut zones = Zones::new();
    for (domain, ip) in [
        ("dane.test", "127.0.0.51"),
        ("wrongkey.test", "127.0.0.51"),
        ("unsigned.test", "127.0.0.51"),
        ("notls.test", "127.0.0.54"),
        ("ta.test", "127.0.0.55"),
        ("tawrong.test", "127.0.0.55"),
    ] {
        let mx = format!("mx.{domain}");
        zones = zones.mx(domain, 10, &mx).ip(&mx, ip.parse().unwrap());
        if domain != "unsigned.test" {
            zones = zones.signed(domain);
        }
    }
    let zones = zones
        .tlsa(&tlsa("mx.dane.test"), 3, 1, 1, &sha256(&spki))
        .tlsa(&tlsa("mx.wrongkey.test"), 3, 1, 1, &[0u8; 32])
        .tlsa(&tlsa("mx.unsigned.test"), 3, 1, 1, &[0u8; 32])
        .tlsa(&tlsa("mx.notls.test"), 3, 1, 1, &sha256(&spki))
        .tlsa(&tlsa("mx.ta.test"), 2, 0, 1, &sha256(&ca.cert()))
        .tlsa(&tlsa("mx.tawrong.test"), 2, 0, 1, &sha256(&ca.cert()));
    let dns = herald_testkit::DnsServer::start(&zones).await.unwrap();
    let resolver: Arc<dyn Resolver> = Arc::new(
        HickoryResolver::with_servers(
            &[dns.addr()],
            Settings {
                cache: false,
                ..Settings::default()
            },
        )
        .unwrap(),
    );
    // What Herald's own queries see: authenticated where signed.
    assert!(resolver.mx_secure("dane.test").await.unwrap());
    assert!(!resolver.mx_secure("unsigned.test").await.unwrap());
    let found = resolver.tlsa(&tlsa("mx.dane.test")).await.unwrap();
    assert!(found.secure && found.value.len() == 1 && found.value[0].usage == 3);

    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryConfig {
        ehlo_name: "herald.test".into(),
        port,
        rules: Arc::new(RuleSet::new(&[], RetryPolicy::uniform(vec![Duration::from_secs(30)])).unwrap()),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(300),
        mta_sts: false,
        state_dir: Some(dir.path().to_owned()),
        ..DeliveryConfig::default()
    };
    let events = Arc::new(Collect::default());
    let spool = Arc::new(
        Spool::open_with_events(&dir.path().join("spool"), SpoolOptions::default(), Some(events.clone())).unwrap(),
    );
    let mta = Mta::new(config, spool.clone(), resolver, events.clone());
    let (_stop, rx) = watch::channel(false);
    let runner = mta.clone();
    tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    for domain in [
        "dane.test",
        "wrongkey.test",
        "unsigned.test",
        "notls.test",
        "ta.test",
        "tawrong.test",
    ] {
        let envelope = Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@acme.test").unwrap()),
            recipients: vec![EmailAddress::parse(&format!("u@{domain}")).unwrap()],
            account: AccountId::generate(),
            client_ip: "127.0.0.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        let id = spool
            .enqueue(envelope, b"Subject: hi\r\n\r\nbody\r\n".to_vec())
            .await
            .unwrap();
        mta.submit(&id);
    }
    let outcome = |rcpt: &'static str| {
        let events = events.clone();
        async move {
            wait_for(&format!("an outcome for {rcpt}"), Duration::from_secs(20), || {
                let e = events
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|e| e.recipient.as_deref() == Some(rcpt) && e.kind != EventKind::Accepted)
                    .cloned();
                async move { e }
            })
            .await
            .unwrap()
        }
    };
    // Matching key: delivered over TLS although the Web PKI knows nothing
    // of the certificate.
    assert_eq!(outcome("u@dane.test").await.kind, EventKind::Delivered);
    // Authenticated but not matching: nothing sent, deferred at STARTTLS.
    let wrong = outcome("u@wrongkey.test").await;
    assert_eq!(wrong.kind, EventKind::Deferred);
    let answer = wrong.smtp.unwrap();
    assert!(
        answer.enhanced.as_deref() == Some("4.7.5") && answer.text.contains("TLSA"),
        "{answer:?}"
    );
    // The same wrong records unsigned: DANE does not apply; delivered.
    assert_eq!(outcome("u@unsigned.test").await.kind, EventKind::Delivered);
    // DANE requires TLS: a host without STARTTLS gets nothing.
    assert_eq!(outcome("u@notls.test").await.kind, EventKind::Deferred);
    assert!(plain.messages().is_empty());
    // DANE-TA: chained to the named CA with the MX host's name: delivered;
    // the same chain for another host name: not.
    assert_eq!(outcome("u@ta.test").await.kind, EventKind::Delivered);
    assert_eq!(outcome("u@tawrong.test").await.kind, EventKind::Deferred);
    let sent: Vec<String> = ee_sink
        .messages()
        .iter()
        .chain(ta_sink.messages().iter())
        .map(|m| {
            assert!(m.tls, "{m:?}");
            m.rcpt_to[0].clone()
        })
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    // TLS-RPT: DANE's sessions and failures under policy type tlsa.
    let report = mta.tls_report(&today());
    let result_of = |domain: &str| {
        report
            .iter()
            .find(|p| p["policy"]["policy-domain"] == domain)
            .unwrap_or_else(|| panic!("{domain} in {report:#?}"))
            .clone()
    };
    let good = result_of("dane.test");
    assert_eq!(good["policy"]["policy-type"], "tlsa");
    assert_eq!(good["summary"]["total-successful-session-count"], 1);
    assert_eq!(
        result_of("wrongkey.test")["failure-details"][0]["result-type"],
        "tlsa-invalid"
    );
    assert_eq!(
        result_of("notls.test")["failure-details"][0]["result-type"],
        "starttls-not-supported"
    );
    assert_eq!(
        result_of("tawrong.test")["failure-details"][0]["result-type"],
        "certificate-host-mismatch"
    );
}
