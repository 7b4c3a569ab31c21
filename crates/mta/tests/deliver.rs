//! Delivery against real peers on loopback: the testkit SMTP sink as the
//! remote server, the testkit DNS server for MX records, a real spool.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::{HickoryResolver, Resolver, Settings};
use herald_mta::{DeliveryConfig, Mta, RetryPolicy, RuleSet, SmarthostRoute};
use herald_spool::{Spool, SpoolOptions};
use herald_testkit::{Behaviour, DnsServer, Phase, Rule, SmtpSink, Zones, wait_for};
use herald_types::{
    AccountId, BounceClass, EmailAddress, Envelope, Event, EventKind, EventSink, MessageId, ReversePath,
};
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
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The default rules, with every reason retried after `wait`.
fn retrying_after(wait: Duration) -> Arc<RuleSet> {
    Arc::new(RuleSet::new(&[], RetryPolicy::uniform(vec![wait])).unwrap())
}

fn config(port: u16) -> DeliveryConfig {
    DeliveryConfig {
        ehlo_name: "herald.test".into(),
        port,
        retry_schedule: vec![Duration::from_millis(300)],
        rules: retrying_after(Duration::from_millis(300)),
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(300),
        ..DeliveryConfig::default()
    }
}

/// The test config, with every domain routed to `sink`.
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

async fn world(config: DeliveryConfig, resolver: Arc<dyn Resolver>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Collect::default());
    let spool = Arc::new(Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(events.clone())).unwrap());
    let mta = Mta::new(config, spool.clone(), resolver, events.clone());
    let (stop, rx) = watch::channel(false);
    let runner = mta.clone();
    let task = tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    World {
        _dir: dir,
        spool,
        events,
        mta,
        stop,
        task,
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
            .enqueue(envelope, b"Subject: hello\r\n\r\n.dot line\r\nbody\r\n".to_vec())
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

    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mx_lookup_finds_the_sink_and_every_recipient_is_delivered() {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await.unwrap();
    let zones = Zones::new()
        .mx("example.test", 10, "mx1.example.test")
        .ip("mx1.example.test", "127.0.0.2".parse().unwrap());
    let dns = DnsServer::start(&zones).await.unwrap();
    let w = world(config(sink.addr().port()), resolver(&dns)).await;
    let id = w.send(&["a@example.test", "b@example.test"]).await;
    let got = sink.wait_for_messages(1, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        got[0].rcpt_to,
        ["a@example.test", "b@example.test"],
        "one transaction for both"
    );
    assert_eq!(got[0].mail_from, "news@acme.test");
    assert!(
        String::from_utf8_lossy(&got[0].data).contains("\r\n.dot line\r\n"),
        "dot-stuffing undone by the receiver"
    );
    let delivered = w.until(EventKind::Delivered, 2).await;
    assert!(
        delivered
            .iter()
            .all(|e| e.mx.as_deref() == Some("mx1.example.test") && e.message_id == id)
    );
    assert_eq!(delivered[0].smtp.as_ref().unwrap().code, 250);
    assert!(delivered[0].source_ip.is_some());
    wait_for("the spool to empty", Duration::from_secs(5), || {
        let empty = w.spool.is_empty();
        async move { empty.then_some(()) }
    })
    .await
    .unwrap();
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_mx_is_tried_when_the_first_refuses_connections() {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await.unwrap();
    let zones = Zones::new()
        .mx("example.test", 10, "down.example.test")
        .mx("example.test", 20, "up.example.test")
        .ip("down.example.test", "127.0.0.3".parse().unwrap())
        .ip("up.example.test", "127.0.0.2".parse().unwrap());
    let dns = DnsServer::start(&zones).await.unwrap();
    let w = world(config(sink.addr().port()), resolver(&dns)).await;
    w.send(&["a@example.test"]).await;
    let delivered = w.until(EventKind::Delivered, 1).await;
    assert_eq!(delivered[0].mx.as_deref(), Some("up.example.test"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_decide_per_recipient() {
    let rules = vec![
        Rule::new(
            Phase::Rcpt,
            "nobody@*",
            Behaviour::Reply("550 5.1.1 <nobody@example.test>: user unknown".into()),
        ),
        Rule::new(Phase::Rcpt, "full@*", Behaviour::Reply("552 5.2.2 mailbox full".into())),
        Rule::new(Phase::Rcpt, "later@*", Behaviour::Reply("451 4.3.0 try again".into())).times(1),
    ];
    let sink = SmtpSink::start("127.0.0.1:0", rules).await.unwrap();
    let mut c = via(&sink);
    c.max_age = Duration::from_secs(3);
    let w = world(c, Arc::new(herald_dns::StaticResolver::new())).await;
    let id = w
        .send(&[
            "nobody@example.test",
            "full@example.test",
            "later@example.test",
            "fine@example.test",
        ])
        .await;
    // The unknown address bounces at once.
    let bounced = w.until(EventKind::Bounced, 1).await;
    let hard = bounced
        .iter()
        .find(|e| e.recipient.as_deref() == Some("nobody@example.test"))
        .unwrap();
    assert_eq!(hard.bounce.as_ref().unwrap().class, BounceClass::Hard);
    assert_eq!(hard.bounce.as_ref().unwrap().reason, "userunknown");
    assert_eq!(hard.smtp.as_ref().unwrap().enhanced.as_deref(), Some("5.1.1"));
    assert_eq!(hard.smtp.as_ref().unwrap().phase, "rcpt");
    // The full mailbox waits (its owner may empty it), and bounces as
    // mailboxfull only once the maximum age runs out.
    let full = w.until(EventKind::Deferred, 2).await;
    assert!(
        full.iter()
            .any(|e| e.recipient.as_deref() == Some("full@example.test") && e.reason.as_deref() == Some("mailboxfull")),
        "{full:?}"
    );
    let bounced = w.until(EventKind::Bounced, 2).await;
    let soft = bounced
        .iter()
        .find(|e| e.recipient.as_deref() == Some("full@example.test"))
        .unwrap();
    assert_eq!(soft.bounce.as_ref().unwrap().class, BounceClass::Soft);
    assert_eq!(soft.bounce.as_ref().unwrap().reason, "mailboxfull");
    // 451 once, then accepted on the retry.
    let deferred = w.until(EventKind::Deferred, 1).await;
    assert!(
        deferred
            .iter()
            .any(|e| e.recipient.as_deref() == Some("later@example.test"))
    );
    let delivered = w.until(EventKind::Delivered, 2).await;
    let who: Vec<_> = delivered.iter().filter_map(|e| e.recipient.clone()).collect();
    assert!(who.contains(&"later@example.test".to_owned()) && who.contains(&"fine@example.test".to_owned()));
    assert_eq!(sink.messages().len(), 2, "first delivery plus the retry");
    assert!(w.spool.get(&id).is_none(), "every recipient final");
    w.stop().await;
}

/// One transaction per recipient, each with its own return path and content.
#[derive(Debug)]
struct PerRecipient;

#[async_trait::async_trait]
impl herald_mta::Prepare for PerRecipient {
    async fn prepare(&self, q: &herald_spool::Queued, body: &[u8], recipients: &[usize]) -> Vec<herald_mta::Prepared> {
        recipients
            .iter()
            .map(|&i| herald_mta::Prepared {
                sender: ReversePath::Address(EmailAddress::parse(&format!("bounce-{i}@herald.test")).unwrap()),
                recipients: vec![i],
                content: [format!("X-For: {}\r\n", q.envelope.recipients[i]).as_bytes(), body]
                    .concat()
                    .into(),
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preparer_decides_return_path_and_content_per_recipient() {
    let sink = SmtpSink::start("127.0.0.1:0", vec![]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Collect::default());
    let spool = Arc::new(Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(events.clone())).unwrap());
    let mta = Mta::with_preparer(
        via(&sink),
        spool.clone(),
        Arc::new(herald_dns::StaticResolver::new()),
        events.clone(),
        Arc::new(PerRecipient),
    );
    let (_stop, rx) = watch::channel(false);
    let runner = mta.clone();
    tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    let w = World {
        _dir: dir,
        spool,
        events,
        mta,
        stop: _stop,
        task: tokio::spawn(async {}),
    };
    w.send(&["a@example.test", "b@example.test"]).await;
    let mut got = sink.wait_for_messages(2, Duration::from_secs(20)).await.unwrap();
    got.sort_by(|x, y| x.mail_from.cmp(&y.mail_from));
    assert_eq!(got[0].mail_from, "bounce-0@herald.test");
    assert_eq!(got[0].rcpt_to, ["a@example.test"]);
    assert!(String::from_utf8_lossy(&got[0].data).starts_with("X-For: a@example.test\r\n"));
    assert_eq!(got[1].mail_from, "bounce-1@herald.test");
    assert!(String::from_utf8_lossy(&got[1].data).starts_with("X-For: b@example.test\r\n"));
    w.until(EventKind::Delivered, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_after_the_content_is_retried() {
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![Rule::new(Phase::DataEnd, "*", Behaviour::Disconnect).times(1)],
    )
    .await
    .unwrap();
    let w = world(via(&sink), Arc::new(herald_dns::StaticResolver::new())).await;
    w.send(&["a@example.test"]).await;
    let deferred = w.until(EventKind::Deferred, 1).await;
    assert_eq!(
        deferred[0].smtp.as_ref().unwrap().phase,
        "end_of_data",
        "no answer to the content: try again"
    );
    w.until(EventKind::Delivered, 1).await;
    assert_eq!(sink.messages().len(), 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_never_answers_expires_the_message() {
    let sink = SmtpSink::start("127.0.0.1:0", vec![Rule::new(Phase::Connect, "*", Behaviour::Hang)])
        .await
        .unwrap();
    let mut c = via(&sink);
    c.command_timeout = Duration::from_millis(300);
    c.max_age = Duration::from_millis(1500);
    let w = world(c, Arc::new(herald_dns::StaticResolver::new())).await;
    let id = w.send(&["a@example.test"]).await;
    let deferred = w.until(EventKind::Deferred, 1).await;
    assert_eq!(deferred[0].smtp.as_ref().unwrap().phase, "greeting");
    let expired = w.until(EventKind::Expired, 1).await;
    assert_eq!(expired[0].message_id, id);
    assert!(w.spool.get(&id).is_none());
    assert!(sink.messages().is_empty());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_and_missing_domains_bounce_without_a_connection() {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await.unwrap();
    let zones = Zones::new()
        .null_mx("nomail.test")
        .ip("ok.nomail.test", "127.0.0.2".parse().unwrap());
    let dns = DnsServer::start(&zones).await.unwrap();
    let mut c = config(sink.addr().port());
    c.max_age = Duration::from_secs(2);
    let w = world(c, resolver(&dns)).await;
    w.send(&["a@nomail.test", "b@nowhere.test"]).await;
    // A null MX is the domain's own word: a hard bounce at once. A domain
    // that does not exist may be about to (a DNS outage, a new domain):
    // retried (for a day by default; here until the maximum age), then a
    // hard bounce as hostunknown.
    let first = w.until(EventKind::Bounced, 1).await;
    assert_eq!(first[0].recipient.as_deref(), Some("a@nomail.test"));
    let deferred = w.until(EventKind::Deferred, 1).await;
    assert_eq!(deferred[0].recipient.as_deref(), Some("b@nowhere.test"));
    assert_eq!(deferred[0].reason.as_deref(), Some("hostunknown"));
    let bounced = w.until(EventKind::Bounced, 2).await;
    for e in &bounced {
        assert_eq!(e.bounce.as_ref().unwrap().class, BounceClass::Hard, "{e:?}");
    }
    let nowhere = bounced
        .iter()
        .find(|e| e.recipient.as_deref() == Some("b@nowhere.test"))
        .unwrap();
    assert_eq!(nowhere.bounce.as_ref().unwrap().reason, "hostunknown");
    let codes: Vec<_> = bounced
        .iter()
        .map(|e| e.smtp.as_ref().unwrap().enhanced.clone().unwrap())
        .collect();
    assert!(
        codes.contains(&"5.1.10".to_owned()) && codes.contains(&"5.1.2".to_owned()),
        "{codes:?}"
    );
    assert_eq!(sink.connections(), 0);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_and_limited_per_destination_with_starttls() {
    let sink = SmtpSink::start_with("127.0.0.1:0", vec![], true).await.unwrap();
    let mut c = via(&sink);
    c.max_connections_per_destination = 2;
    c.idle_timeout = Duration::from_secs(5);
    let w = world(c, Arc::new(herald_dns::StaticResolver::new())).await;
    for n in 0..30 {
        w.send(&[&format!("user{n}@example.test")]).await;
    }
    let got = sink.wait_for_messages(30, Duration::from_secs(20)).await.unwrap();
    assert!(got.iter().all(|m| m.tls), "opportunistic STARTTLS was used");
    assert!(
        sink.connections() <= 2,
        "{} connections for 30 messages",
        sink.connections()
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_destination_does_not_hold_up_another() {
    let slow = SmtpSink::start("127.0.0.1:0", vec![Rule::new(Phase::DataEnd, "*", Behaviour::Hang)])
        .await
        .unwrap();
    let fast = SmtpSink::start("127.0.0.1:0", vec![]).await.unwrap();
    let mut c = config(0);
    c.routes = vec![
        SmarthostRoute {
            domain: "slow.test".into(),
            host: "127.0.0.1".into(),
            port: slow.addr().port(),
        },
        SmarthostRoute {
            domain: "*".into(),
            host: "127.0.0.1".into(),
            port: fast.addr().port(),
        },
    ];
    c.command_timeout = Duration::from_secs(30);
    c.max_connections_per_destination = 2;
    let w = world(c, Arc::new(herald_dns::StaticResolver::new())).await;
    for n in 0..5 {
        w.send(&[&format!("u{n}@slow.test")]).await;
    }
    for n in 0..10 {
        w.send(&[&format!("u{n}@fast.test")]).await;
    }
    let started = std::time::Instant::now();
    fast.wait_for_messages(10, Duration::from_secs(10)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(slow.messages().is_empty());
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_pending_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![Rule::new(Phase::Rcpt, "*", Behaviour::Reply("451 4.3.0 later".into())).times(1)],
    )
    .await
    .unwrap();
    let mut c = via(&sink);
    c.retry_schedule = vec![Duration::from_secs(1)];
    c.rules = retrying_after(Duration::from_secs(1));
    let id = {
        let events = Arc::new(Collect::default());
        let spool =
            Arc::new(Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(events.clone())).unwrap());
        let mta = Mta::new(
            c.clone(),
            spool.clone(),
            Arc::new(herald_dns::StaticResolver::new()),
            events.clone(),
        );
        let (stop, rx) = watch::channel(false);
        let runner = mta.clone();
        let task = tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
        let envelope = Envelope {
            sender: ReversePath::Null,
            recipients: vec![EmailAddress::parse("a@example.test").unwrap()],
            account: AccountId::generate(),
            client_ip: "127.0.0.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        let id = spool.enqueue(envelope, b"x\r\n".to_vec()).await.unwrap();
        mta.submit(&id);
        let ev = events.clone();
        wait_for("a deferral", Duration::from_secs(10), || {
            let n = ev.of(EventKind::Deferred).len();
            async move { (n > 0).then_some(()) }
        })
        .await
        .unwrap();
        let _ = stop.send(true);
        task.await.unwrap();
        spool.flush().await.unwrap();
        spool.close();
        id
    };
    // A new process over the same spool delivers it at its next attempt.
    let spool = Arc::new(Spool::open(dir.path(), SpoolOptions::default()).unwrap());
    assert!(spool.get(&id).is_some());
    let events = Arc::new(Collect::default());
    let mta = Mta::new(
        c,
        spool.clone(),
        Arc::new(herald_dns::StaticResolver::new()),
        events.clone(),
    );
    let (_stop, rx) = watch::channel(false);
    let runner = mta.clone();
    tokio::spawn(async move { runner.run(rx, Duration::from_secs(5)).await });
    let got = sink.wait_for_messages(1, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got[0].mail_from, "", "the null sender stays null");
}
