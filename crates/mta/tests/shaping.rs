//! Delivery intelligence against real peers on loopback: testkit sinks
//! that throttle, suspend, count messages per connection and break TLS;
//! the testkit DNS server giving test domains real providers' MX names.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::{HickoryResolver, Resolver, Settings};
use herald_mta::{DeliveryConfig, Mta, RetryPolicy, RuleSet, Site, SmarthostRoute, TlsMode};
use herald_rules::RuleSpec;
use herald_spool::{RcptStatus, Spool, SpoolOptions};
use herald_testkit::{Behaviour, DnsServer, Phase, Rule, SinkOptions, SmtpSink, Zones, wait_for};
use herald_types::{AccountId, EmailAddress, Envelope, Event, EventKind, EventSink, MessageId, ReversePath};
use tokio::sync::watch;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Collect {
    fn of(&self, kind: EventKind) -> Vec<Event> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind)
            .cloned()
            .collect()
    }
}

struct World {
    _dir: tempfile::TempDir,
    spool: Arc<Spool>,
    events: Arc<Collect>,
    mta: Mta,
    _stop: watch::Sender<bool>,
}

fn rules(specs: &[RuleSpec]) -> Arc<RuleSet> {
    Arc::new(RuleSet::new(specs, RetryPolicy::uniform(vec![Duration::from_millis(300)])).unwrap())
}

fn config(port: u16) -> DeliveryConfig {
    DeliveryConfig {
        ehlo_name: "herald.test".into(),
        port,
        retry_schedule: vec![Duration::from_millis(300)],
        rules: rules(&[]),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(300),
        ..DeliveryConfig::default()
    }
}

fn via(sink: &SmtpSink) -> DeliveryConfig {
    DeliveryConfig {
        routes: vec![SmarthostRoute {
            domain: "*".into(),
            host: "127.0.0.1".into(),
            port: sink.addr().port(),
        }],
        ..config(0)
    }
}

fn resolver(dns: &DnsServer) -> Arc<dyn Resolver> {
    Arc::new(
        HickoryResolver::with_servers(
            &[dns.addr()],
            Settings {
                cache: false,
                ..Settings::default()
            },
        )
        .unwrap(),
    )
}

fn no_dns() -> Arc<dyn Resolver> {
    Arc::new(herald_dns::StaticResolver::new())
}

async fn world(config: DeliveryConfig, resolver: Arc<dyn Resolver>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Collect::default());
    let spool = Arc::new(Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(events.clone())).unwrap());
    let mta = Mta::new(config, spool.clone(), resolver, events.clone());
    let (stop, rx) = watch::channel(false);
    let runner = mta.clone();
    tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    World {
        _dir: dir,
        spool,
        events,
        mta,
        _stop: stop,
    }
}

impl World {
    async fn send(&self, to: &[&str]) -> MessageId {
        let envelope = Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@acme.test").unwrap()),
            recipients: to.iter().map(|r| EmailAddress::parse(r).unwrap()).collect(),
            account: AccountId::generate(),
            client_ip: "127.0.0.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        let id = self
            .spool
            .enqueue(envelope, b"Subject: hello\r\n\r\nbody\r\n".to_vec())
            .await
            .unwrap();
        self.mta.submit(&id);
        id
    }

    async fn until(&self, kind: EventKind, n: usize) -> Vec<Event> {
        let events = self.events.clone();
        wait_for(
            &format!("{n} {} events", kind.as_str()),
            Duration::from_secs(20),
            || {
                let got = events.of(kind);
                async move { (got.len() >= n).then_some(got) }
            },
        )
        .await
        .unwrap()
    }

    fn destination(&self, key_part: &str) -> herald_mta::DestinationView {
        self.mta
            .destinations()
            .into_iter()
            .find(|d| d.key.contains(key_part))
            .unwrap_or_else(|| panic!("no destination {key_part} in {:?}", self.mta.destinations()))
    }

    /// Milliseconds from now to the next attempt of `id`'s recipient `i`.
    fn next_attempt_in(&self, id: &MessageId, i: usize) -> i64 {
        let q = self.spool.get(id).unwrap();
        assert_eq!(q.states[i].status, RcptStatus::Pending);
        q.states[i].next_attempt_ms - herald_spool::to_ms(time::OffsetDateTime::now_utc())
    }
}

fn spec(toml: &str) -> RuleSpec {
    toml::from_str(toml).unwrap()
}

const MINUTE: i64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_answer_backs_the_destination_off_and_it_recovers() {
    // Gmail's answer, once; a configured rule shortens the pause to a
    // second so that the recovery can be watched.
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![
            Rule::new(
                Phase::Rcpt,
                "*",
                Behaviour::Reply(
                    "421 4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address."
                        .into(),
                ),
            )
            .times(1),
        ],
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    c.rules = rules(&[spec(
        "name = \"short-throttle\"\nenhanced = \"4.7.28\"\naction = \"backoff\"\nduration = \"1500ms\"\nreason = \"speeding\"",
    )]);
    c.max_connections_per_destination = 4;
    let w = world(c, no_dns()).await;
    let first = w.send(&["a@example.test"]).await;
    let deferred = w.until(EventKind::Deferred, 1).await;
    assert_eq!(deferred[0].reason.as_deref(), Some("speeding"));
    let d = w.destination("127.0.0.1");
    assert_eq!((d.state, d.rule.as_deref()), ("backoff", Some("short-throttle")));
    assert!(d.until_ms.is_some() && d.rate_factor < 1.0, "{d:?}");
    // Mail for a paused destination waits without an attempt.
    let connections = sink.connections();
    for n in 0..30 {
        w.send(&[&format!("u{n}@example.test")]).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.connections(), connections, "nothing tried while backed off");
    assert!(sink.messages().is_empty());
    assert!(w.next_attempt_in(&first, 0) > 0);
    // After the pause everything goes, and deliveries bring the rate back.
    sink.wait_for_messages(31, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        w.events.of(EventKind::Deferred).len(),
        1,
        "the waiting mail was not tried early"
    );
    let d = w.destination("127.0.0.1");
    assert_eq!((d.state, d.rate_factor), ("normal", 1.0), "{d:?}");
    assert_eq!(d.delivered, 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_rules_decide_what_providers_answers_mean() {
    let sink =
        SmtpSink::start(
            "127.0.0.1:0",
            vec![
            Rule::new(
                Phase::Rcpt,
                "ms@*",
                Behaviour::Reply(
                    "451 4.7.650 The mail server [127.0.0.1] has been temporarily rate limited due to IP reputation."
                        .into(),
                ),
            )
            .times(1),
            Rule::new(
                Phase::Rcpt,
                "busy@*",
                Behaviour::Reply("421 4.3.2 Service shutting down, closing transmission channel".into()),
            )
            .times(1),
            Rule::new(Phase::Rcpt, "full@*", Behaviour::Reply("552 5.2.2 user is over quota".into())),
        ],
        )
        .await
        .unwrap();
    // The real default rules with their real durations.
    let mut c = via(&sink);
    c.rules = Arc::new(RuleSet::defaults().unwrap());
    let w = world(c, no_dns()).await;
    let busy = w.send(&["busy@example.test"]).await;
    w.until(EventKind::Deferred, 1).await;
    let wait = w.next_attempt_in(&busy, 0);
    assert!(
        (19 * MINUTE..=20 * MINUTE).contains(&wait),
        "a 421 comes back in about 20 minutes: {wait} ms"
    );
    let full = w.send(&["full@example.test"]).await;
    let deferred = w.until(EventKind::Deferred, 2).await;
    assert!(deferred.iter().any(|e| e.reason.as_deref() == Some("mailboxfull")));
    let wait = w.next_attempt_in(&full, 0);
    assert!(
        (59 * MINUTE..=60 * MINUTE).contains(&wait),
        "a full mailbox waits an hour first: {wait} ms"
    );
    assert_eq!(
        w.destination("127.0.0.1").state,
        "normal",
        "neither slows the destination"
    );
    // Microsoft's reputation throttle backs the destination off for an hour.
    let ms = w.send(&["ms@example.test"]).await;
    w.until(EventKind::Deferred, 3).await;
    let d = w.destination("127.0.0.1");
    assert_eq!(
        (d.state, d.rule.as_deref()),
        ("backoff", Some("microsoft-ip-reputation"))
    );
    let wait = w.next_attempt_in(&ms, 0);
    assert!((59 * MINUTE..=60 * MINUTE).contains(&wait), "{wait} ms");
    // A message sent now waits for the pause to end, untried.
    let later = w.send(&["later@example.test"]).await;
    wait_for("the new message postponed", Duration::from_secs(10), || {
        let q = w.spool.get(&later).unwrap();
        let due = q.states[0].next_attempt_ms;
        async move { (due > herald_spool::to_ms(time::OffsetDateTime::now_utc()) + 50 * MINUTE).then_some(()) }
    })
    .await
    .unwrap();
    assert_eq!(
        w.spool.get(&later).unwrap().states[0].attempts,
        0,
        "postponed, not attempted"
    );
    assert!(sink.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspending_answer_stops_the_destination_and_names_the_rule() {
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![Rule::new(
            Phase::Mail,
            "*",
            Behaviour::Reply(
                "421 4.7.0 [TSS05] Messages from 127.0.0.1 temporarily deferred due to user complaints".into(),
            ),
        )],
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    c.rules = Arc::new(RuleSet::defaults().unwrap());
    let w = world(c, no_dns()).await;
    let id = w.send(&["a@example.test"]).await;
    w.until(EventKind::Deferred, 1).await;
    let d = w.destination("127.0.0.1");
    assert_eq!(
        (d.state, d.rule.as_deref()),
        ("suspended", Some("yahoo-permanently-deferred"))
    );
    let until = d.until_ms.unwrap() - herald_spool::to_ms(time::OffsetDateTime::now_utc());
    assert!((239 * MINUTE..=240 * MINUTE).contains(&until), "{until} ms");
    assert!(w.next_attempt_in(&id, 0) >= 239 * MINUTE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_rule_overrides_a_default() {
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![Rule::new(
            Phase::Rcpt,
            "*",
            Behaviour::Reply("552 5.2.2 mailbox full".into()),
        )],
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    // This operator treats a full mailbox as final at once.
    c.rules = rules(&[spec(
        "name = \"full-is-final\"\ncode = 552\nenhanced = \"5.2.2\"\naction = \"bounce\"\nclass = \"soft\"",
    )]);
    let w = world(c, no_dns()).await;
    w.send(&["a@example.test"]).await;
    let bounced = w.until(EventKind::Bounced, 1).await;
    assert_eq!(bounced[0].bounce.as_ref().unwrap().reason, "mailboxfull");
    assert!(w.events.of(EventKind::Deferred).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_google_hosted_domain_counts_toward_google() {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await.unwrap();
    let ip = "127.0.0.2".parse().unwrap();
    let zones = Zones::new()
        .mx("gmail.com", 5, "gmail-smtp-in.l.google.com")
        .mx("acme-hosted.test", 1, "aspmx.l.google.com")
        .mx("other-hosted.test", 10, "alt1.aspmx.l.google.com")
        .mx("elsewhere.test", 10, "mx.elsewhere.test")
        .ip("gmail-smtp-in.l.google.com", ip)
        .ip("aspmx.l.google.com", ip)
        .ip("alt1.aspmx.l.google.com", ip)
        .ip("mx.elsewhere.test", ip);
    let dns = DnsServer::start(&zones).await.unwrap();
    let mut c = config(sink.addr().port());
    // Google's preset, with one connection: shared by all three domains.
    c.destinations = vec![Site {
        name: "google".into(),
        max_connections: Some(1),
        ..Site::default()
    }];
    let w = world(c, resolver(&dns)).await;
    for n in 0..10 {
        for domain in ["gmail.com", "acme-hosted.test", "other-hosted.test"] {
            w.send(&[&format!("u{n}@{domain}")]).await;
        }
    }
    sink.wait_for_messages(30, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        sink.peak_connections(),
        1,
        "one connection for every Google-hosted domain"
    );
    // The sink has the 30th message before Herald has read its 250 and
    // counted it: wait for the count, not for time.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut google = w.destination("google");
    while google.delivered < 30 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        google = w.destination("google");
    }
    assert_eq!((google.site.as_deref(), google.delivered), (Some("google"), 30));
    // A domain hosted elsewhere is its own destination.
    w.send(&["x@elsewhere.test"]).await;
    sink.wait_for_messages(31, Duration::from_secs(10)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut other = w.destination("mx.elsewhere.test");
    while other.delivered < 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        other = w.destination("mx.elsewhere.test");
    }
    assert_eq!((other.site, other.delivered), (None, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_after_n_messages_teaches_the_limit_per_connection() {
    let sink = SmtpSink::start_opts(
        "127.0.0.1:0",
        vec![],
        SinkOptions {
            per_connection: Some((
                3,
                "421 4.7.0 Too many messages for this session, closing connection".into(),
            )),
            ..SinkOptions::default()
        },
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    c.max_connections_per_destination = 1;
    c.idle_timeout = Duration::from_secs(5);
    let w = world(c, no_dns()).await;
    for n in 0..12 {
        w.send(&[&format!("u{n}@example.test")]).await;
    }
    sink.wait_for_messages(12, Duration::from_secs(20)).await.unwrap();
    assert!(
        w.events.of(EventKind::Deferred).is_empty(),
        "each closed connection's message was sent again at once on a new one"
    );
    // At most one refused MAIL taught it; then connections end at three.
    assert!(
        (4..=5).contains(&sink.connections()),
        "{} connections",
        sink.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_starttls_falls_back_to_plain_text_unless_tls_is_required() {
    let sink = SmtpSink::start_opts(
        "127.0.0.1:0",
        vec![],
        SinkOptions {
            broken_tls: true,
            ..SinkOptions::default()
        },
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    let w = world(c.clone(), no_dns()).await;
    w.send(&["a@example.test"]).await;
    let got = sink.wait_for_messages(1, Duration::from_secs(10)).await.unwrap();
    assert!(!got[0].tls, "sent in plain text after the handshake failed");
    w.until(EventKind::Delivered, 1).await;
    // Each connection that fell back counts: one, or two when the first
    // was lost and the message went again on a new one (seen under load).
    let failures = w.destination("127.0.0.1").tls_failures;
    assert!((1..=2).contains(&failures), "{failures} TLS failures");

    // Required: nothing in the clear; deferred with the reason.
    c.starttls = true;
    c.routes.clear();
    let dns = DnsServer::start(
        &Zones::new()
            .mx("secure.test", 10, "mx.secure.test")
            .ip("mx.secure.test", "127.0.0.1".parse().unwrap()),
    )
    .await
    .unwrap();
    c.port = sink.addr().port();
    c.destinations = vec![Site {
        name: "secure".into(),
        domains: vec!["secure.test".into()],
        tls: Some(TlsMode::Required),
        ..Site::default()
    }];
    let w = world(c, resolver(&dns)).await;
    w.send(&["b@secure.test"]).await;
    let deferred = w.until(EventKind::Deferred, 1).await;
    let answer = deferred[0].smtp.as_ref().unwrap();
    assert_eq!(
        (answer.enhanced.as_deref(), answer.phase.as_str()),
        (Some("4.7.5"), "starttls")
    );
    assert_eq!(sink.messages().len(), 1, "nothing more arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_and_recipient_limits_hold_per_destination() {
    let sink = SmtpSink::start("127.0.0.1:0", vec![]).await.unwrap();
    let mut c = via(&sink);
    c.messages_per_minute = Some(3);
    c.recipients_per_message = 2;
    let w = world(c, no_dns()).await;
    w.send(&[
        "a@example.test",
        "b@example.test",
        "c@example.test",
        "d@example.test",
        "e@example.test",
    ])
    .await;
    let got = sink.wait_for_messages(3, Duration::from_secs(10)).await.unwrap();
    let mut sizes: Vec<usize> = got.iter().map(|m| m.rcpt_to.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 2, 2], "five recipients, two per transaction");
    // Three messages a minute: the fourth waits.
    w.send(&["f@example.test"]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 3, "the fourth message of the minute waits");
    assert!(
        w.events.of(EventKind::Deferred).is_empty(),
        "waiting for the rate is not a deferral"
    );
}

fn pool(name: &str, streams: &[&str], sources: Vec<herald_mta::Source>, overflow: Option<&str>) -> herald_mta::Pool {
    herald_mta::Pool {
        name: name.into(),
        streams: streams.iter().map(|s| (*s).to_owned()).collect(),
        sources,
        overflow: overflow.map(str::to_owned),
        ..herald_mta::Pool::default()
    }
}

fn source(ip: &str, ehlo: &str, warmup: Option<&str>) -> herald_mta::Source {
    herald_mta::Source {
        ip: ip.parse().unwrap(),
        ehlo: ehlo.into(),
        warmup: warmup.map(str::to_owned),
        warmup_start: None,
    }
}

impl World {
    async fn send_stream(&self, to: &str, stream: &str) -> MessageId {
        let envelope = Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@acme.test").unwrap()),
            recipients: vec![EmailAddress::parse(to).unwrap()],
            account: AccountId::generate(),
            client_ip: "127.0.0.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: stream.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        let id = self
            .spool
            .enqueue(envelope, b"Subject: hi\r\n\r\nbody\r\n".to_vec())
            .await
            .unwrap();
        self.mta.submit(&id);
        id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_leave_from_their_pools_addresses_with_their_names() {
    let sink = SmtpSink::start("127.0.0.1:0", vec![]).await.unwrap();
    let mut c = via(&sink);
    c.pools.pools = vec![
        pool(
            "news",
            &["newsletter"],
            vec![source("127.0.0.5", "mta5.herald.test", None)],
            None,
        ),
        pool(
            "shared",
            &[],
            vec![
                source("127.0.0.6", "mta6.herald.test", None),
                source("127.0.0.7", "mta7.herald.test", None),
            ],
            None,
        ),
    ];
    let w = world(c, no_dns()).await;
    for n in 0..3 {
        w.send_stream(&format!("n{n}@example.test"), "newsletter").await;
    }
    for n in 0..4 {
        w.send_stream(&format!("t{n}@example.test"), "transactional").await;
    }
    let got = sink.wait_for_messages(7, Duration::from_secs(20)).await.unwrap();
    for m in &got {
        let ip = m.client.ip().to_string();
        let expected = if m.rcpt_to[0].starts_with('n') {
            vec!["127.0.0.5"]
        } else {
            vec!["127.0.0.6", "127.0.0.7"]
        };
        assert!(expected.contains(&ip.as_str()), "{} from {ip}", m.rcpt_to[0]);
        assert_eq!(
            m.helo,
            format!("mta{}.herald.test", ip.rsplit('.').next().unwrap()),
            "EHLO of {ip}"
        );
    }
    let shared: std::collections::HashSet<String> = got
        .iter()
        .filter(|m| m.rcpt_to[0].starts_with('t'))
        .map(|m| m.client.ip().to_string())
        .collect();
    assert_eq!(shared.len(), 2, "the shared pool's addresses take turns");
    let delivered = w.until(EventKind::Delivered, 7).await;
    assert!(
        delivered
            .iter()
            .all(|e| e.source_ip.is_some_and(|ip| ip.to_string().starts_with("127.0.0."))),
        "events name the source address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_address_stops_at_its_warm_up_cap_and_overflows_or_waits() {
    let sink = SmtpSink::start("127.0.0.1:0", vec![]).await.unwrap();
    let mut c = via(&sink);
    c.pools.plans = vec![herald_mta::WarmupPlan {
        name: "slow".into(),
        daily: vec![6, 10],
        hourly: vec![3],
    }];
    c.pools.pools = vec![
        pool(
            "young",
            &["newsletter"],
            vec![source("127.0.0.5", "young.herald.test", Some("slow"))],
            Some("warm"),
        ),
        pool(
            "warm",
            &["nowhere"],
            vec![source("127.0.0.6", "warm.herald.test", None)],
            None,
        ),
        pool(
            "alone",
            &["promotions"],
            vec![source("127.0.0.7", "alone.herald.test", Some("slow"))],
            None,
        ),
    ];
    let w = world(c, no_dns()).await;
    for n in 0..5 {
        w.send_stream(&format!("n{n}@example.test"), "newsletter").await;
    }
    let got = sink.wait_for_messages(5, Duration::from_secs(20)).await.unwrap();
    let from = |ip: &str| got.iter().filter(|m| m.client.ip().to_string() == ip).count();
    assert_eq!(
        (from("127.0.0.5"), from("127.0.0.6")),
        (3, 2),
        "three from the young address, the rest overflowed"
    );
    // Without an overflow pool, mail over the cap waits for the next hour.
    let mut waiting = Vec::new();
    for n in 0..4 {
        waiting.push(w.send_stream(&format!("p{n}@example.test"), "promotions").await);
    }
    sink.wait_for_messages(8, Duration::from_secs(20)).await.unwrap();
    let now_ms = || herald_spool::to_ms(time::OffsetDateTime::now_utc());
    let id = wait_for("one promotion to wait", Duration::from_secs(10), || {
        let pending: Vec<MessageId> = waiting
            .iter()
            .filter(|id| w.spool.get(id).is_some_and(|q| q.states[0].next_attempt_ms > now_ms()))
            .cloned()
            .collect();
        async move { (pending.len() == 1).then(|| pending[0].clone()) }
    })
    .await
    .unwrap();
    let next_hour = {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        (now - now.rem_euclid(3600) + 3600) * 1000
    };
    let state = w.spool.get(&id).unwrap().states[0];
    assert_eq!(state.next_attempt_ms, next_hour, "waits for the next hour");
    assert_eq!(state.attempts, 0, "waiting is not an attempt");
    let status = w.mta.warmup();
    let alone = status.iter().find(|s| s.key == "ip:127.0.0.7").unwrap();
    assert_eq!(
        (
            alone.day,
            alone.daily_cap,
            alone.hourly_cap,
            alone.sent_today,
            alone.sent_this_hour
        ),
        (0, 6, 3, 3, 3)
    );
}
