//! MTA-STS (RFC 8461) against real peers on loopback: policies served by
//! an HTTPS server with a test CA's certificate, `_mta-sts` records and MX
//! hosts from the test DNS server, STARTTLS sinks with valid and invalid
//! certificates. TLS-RPT counts are read back.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::{HickoryResolver, Resolver, Settings};
use herald_mta::{DeliveryConfig, Mta, RetryPolicy, RuleSet};
use herald_spool::{Spool, SpoolOptions};
use herald_testkit::{DnsServer, HttpsServer, SinkOptions, SmtpSink, TestCa, Zones, wait_for};
use herald_types::{AccountId, EmailAddress, Envelope, Event, EventKind, EventSink, ReversePath};
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    fn of(&self, kind: EventKind, rcpt: &str) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind && e.recipient.as_deref() == Some(rcpt))
            .cloned()
            .collect()
    }
}

const POLICY: &str = "/.well-known/mta-sts.txt";

fn policy(mode: &str, mx: &str) -> (u16, String, String) {
    (
        200,
        "text/plain".into(),
        format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"),
    )
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mta_sts_policies_decide_where_and_how_mail_goes() {
    let ca = TestCa::new().unwrap();
    // The policy host serves every test domain's policy.
    let https = HttpsServer::start(
        "127.0.0.30:0",
        &ca.issue(&[
            "mta-sts.good.test",
            "mta-sts.bad.test",
            "mta-sts.trial.test",
            "mta-sts.other.test",
        ])
        .unwrap(),
    )
    .await
    .unwrap();
    https.set("mta-sts.good.test", POLICY, policy("enforce", "*.good.test"));
    https.set("mta-sts.bad.test", POLICY, policy("enforce", "mx.bad.test"));
    https.set("mta-sts.trial.test", POLICY, policy("testing", "mx.trial.test"));
    https.set("mta-sts.other.test", POLICY, policy("enforce", "mx.elsewhere.test"));
    // A sink with a certificate for mx.good.test from the trusted CA; one
    // with a self-signed certificate for another name.
    let good = SmtpSink::start_opts(
        "127.0.0.31:0",
        vec![],
        SinkOptions {
            starttls: true,
            identity: Some(ca.issue(&["mx.good.test"]).unwrap()),
            ..SinkOptions::default()
        },
    )
    .await
    .unwrap();
    let port = good.addr().port();
    let bad = SmtpSink::start_opts(
        &format!("127.0.0.32:{port}"),
        vec![],
        SinkOptions {
            starttls: true,
            ..SinkOptions::default()
        },
    )
    .await
    .unwrap();
    let zones_with = |good_id: &str| {
        let mut zones = Zones::new();
        for (domain, mx, ip) in [
            ("good.test", "mx.good.test", "127.0.0.31"),
            ("bad.test", "mx.bad.test", "127.0.0.32"),
            ("trial.test", "mx.trial.test", "127.0.0.32"),
            ("other.test", "mx.other.test", "127.0.0.31"),
        ] {
            let id = if domain == "good.test" {
                good_id
            } else {
                "20261207T000000"
            };
            zones = zones
                .mx(domain, 10, mx)
                .ip(mx, ip.parse().unwrap())
                .ip(&format!("mta-sts.{domain}"), "127.0.0.30".parse().unwrap())
                .txt(&format!("_mta-sts.{domain}"), &format!("v=STSv1; id={id}"));
        }
        zones
    };
    let zones = zones_with("20261207T000000");
    let mut dns = DnsServer::start(&zones).await.unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let config = DeliveryConfig {
        ehlo_name: "herald.test".into(),
        port,
        rules: Arc::new(RuleSet::new(&[], RetryPolicy::uniform(vec![Duration::from_millis(500)])).unwrap()),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(300),
        extra_roots: vec![ca.cert().into()],
        fetch_allow: vec!["127.0.0.0/8".parse().unwrap()],
        mta_sts_port: https.addr().port(),
        state_dir: Some(dir.path().to_owned()),
        ..DeliveryConfig::default()
    };
    let events = Arc::new(Collect::default());
    let spool = Arc::new(
        Spool::open_with_events(&dir.path().join("spool"), SpoolOptions::default(), Some(events.clone())).unwrap(),
    );
    let mta = Mta::new(config, spool.clone(), resolver.clone(), events.clone());
    let (_stop, rx) = watch::channel(false);
    let runner = mta.clone();
    tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    let send = |to: &str| {
        let envelope = Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@acme.test").unwrap()),
            recipients: vec![EmailAddress::parse(to).unwrap()],
            account: AccountId::generate(),
            client_ip: "127.0.0.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        let (spool, mta) = (spool.clone(), mta.clone());
        async move {
            let id = spool
                .enqueue(envelope, b"Subject: hi\r\n\r\nbody\r\n".to_vec())
                .await
                .unwrap();
            mta.submit(&id);
            id
        }
    };
    let until = |kind: EventKind, rcpt: &'static str| {
        let events = events.clone();
        async move {
            wait_for(
                &format!("{} for {rcpt}", kind.as_str()),
                Duration::from_secs(20),
                || {
                    let got = events.of(kind, rcpt);
                    async move { (!got.is_empty()).then_some(got) }
                },
            )
            .await
            .unwrap()
        }
    };

    // Enforced, the MX named by the policy, a valid certificate: delivered
    // over TLS.
    send("a@good.test").await;
    until(EventKind::Delivered, "a@good.test").await;
    assert!(good.messages().iter().all(|m| m.tls));

    // Enforced, but the MX's certificate is not valid for it: nothing is
    // sent; deferred with 4.7.5 at STARTTLS.
    send("b@bad.test").await;
    let deferred = until(EventKind::Deferred, "b@bad.test").await;
    let answer = deferred[0].smtp.as_ref().unwrap();
    assert_eq!(
        (answer.enhanced.as_deref(), answer.phase.as_str()),
        (Some("4.7.5"), "starttls"),
        "{answer:?}"
    );
    assert!(bad.messages().is_empty());

    // Testing: delivered anyway, the failure reported.
    send("c@trial.test").await;
    until(EventKind::Delivered, "c@trial.test").await;

    // Enforced, but the domain's MX is not among the policy's: deferred
    // without a connection.
    let connections = good.connections();
    send("d@other.test").await;
    let deferred = until(EventKind::Deferred, "d@other.test").await;
    assert!(
        deferred[0].smtp.as_ref().unwrap().text.contains("MTA-STS"),
        "{deferred:?}"
    );
    assert_eq!(good.connections(), connections);

    // The policy is cached: with the policy host answering 500, the same
    // record id keeps it in force, and it is not fetched again.
    https.set("mta-sts.good.test", POLICY, (500, "text/plain".into(), "down".into()));
    let fetched = https.hits("mta-sts.good.test");
    send("e@good.test").await;
    until(EventKind::Delivered, "e@good.test").await;
    assert_eq!(https.hits("mta-sts.good.test"), fetched, "served from the cache");
    // A new id in DNS fetches again; a failed fetch keeps the cached policy.
    dns.replace(&zones_with("20261207T120000")).await.unwrap();
    send("f@good.test").await;
    until(EventKind::Delivered, "f@good.test").await;
    assert_eq!(https.hits("mta-sts.good.test"), fetched + 1);

    // TLS-RPT: per domain, its policy, successes and failures by result.
    let report = mta.tls_report(&today());
    let of = |domain: &str| {
        report
            .iter()
            .find(|p| p["policy"]["policy-domain"] == domain)
            .unwrap_or_else(|| panic!("{domain} in {report:#?}"))
            .clone()
    };
    let good_report = of("good.test");
    assert_eq!(good_report["policy"]["policy-type"], "sts");
    assert_eq!(good_report["summary"]["total-successful-session-count"], 3);
    assert_eq!(good_report["summary"]["total-failure-session-count"], 0);
    let bad_report = of("bad.test");
    assert!(bad_report["summary"]["total-failure-session-count"].as_u64().unwrap() >= 1);
    let detail = &bad_report["failure-details"][0];
    assert_eq!(detail["receiving-mx-hostname"], "mx.bad.test");
    assert_eq!(detail["result-type"], "certificate-not-trusted");
    let trial = of("trial.test");
    assert_eq!(trial["failure-details"][0]["result-type"], "certificate-not-trusted");
    assert_eq!(
        of("other.test")["failure-details"][0]["result-type"],
        "validation-failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_host_inside_is_not_fetched_unless_allowed() {
    use herald_mta::mta_sts::{Fetch, HttpsFetch};
    let ca = TestCa::new().unwrap();
    let https = HttpsServer::start("127.0.0.33:0", &ca.issue(&["mta-sts.inside.test"]).unwrap())
        .await
        .unwrap();
    https.set("mta-sts.inside.test", POLICY, policy("enforce", "mx.inside.test"));
    let resolver: Arc<dyn Resolver> =
        Arc::new(herald_dns::StaticResolver::new().ip("mta-sts.inside.test", "127.0.0.33".parse().unwrap()));
    let roots = vec![ca.cert().into()];
    let port = https.addr().port();
    // A recipient domain is anyone's to choose: its policy host must not
    // reach a private address (the webhooks' guard).
    let guarded = HttpsFetch::new(
        resolver.clone(),
        Arc::new(herald_outbound::Policy::new(vec![])),
        &roots,
        port,
    )
    .unwrap();
    assert!(guarded.fetch("inside.test").await.is_err());
    assert_eq!(https.hits("mta-sts.inside.test"), 0, "not even connected to");
    let allowed = HttpsFetch::new(
        resolver.clone(),
        Arc::new(herald_outbound::Policy::new(vec!["127.0.0.0/8".parse().unwrap()])),
        &roots,
        port,
    )
    .unwrap();
    assert!(allowed.fetch("inside.test").await.unwrap().contains("mode: enforce"));
    // A certificate from an unknown CA is no policy.
    let untrusting = HttpsFetch::new(
        resolver,
        Arc::new(herald_outbound::Policy::new(vec!["127.0.0.0/8".parse().unwrap()])),
        &[],
        port,
    )
    .unwrap();
    assert!(untrusting.fetch("inside.test").await.is_err());
    // Not text/plain, or too large: refused.
    https.set(
        "mta-sts.inside.test",
        POLICY,
        (200, "text/html".into(), "version: STSv1".into()),
    );
    assert!(allowed.fetch("inside.test").await.is_err());
    https.set(
        "mta-sts.inside.test",
        POLICY,
        (
            200,
            "text/plain".into(),
            "x".repeat(herald_mta::mta_sts::MAX_POLICY + 1),
        ),
    );
    assert!(allowed.fetch("inside.test").await.is_err());
}
