//! Issues 3 and 13: nothing acknowledged is lost, mail or what Herald
//! learned. 2,000 messages are submitted by 20 concurrent SMTP clients
//! while the remote server's bounces (RFC 3464 DSNs to the VERP return
//! path) and complaints (ARF to fbl@) come back to the inbound MX for some
//! of the mail delivered; `herald` is killed with SIGKILL in the middle and
//! started again on the same data. Then: every message that got `250`
//! reached the remote server, and messages delivered before the crash were
//! not sent again (but the few in flight at the kill); every message the
//! remote server got has its `accepted` and `delivered` events; every DSN
//! and ARF report that got `250` left its `bounced` or `complained` event
//! and the suppression it implies.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::io::Write;

use anyhow::{Context, ensure};
use herald_testkit::{Api, Behaviour, HeraldProcess, Phase, Rule, SmtpSink, wait_for};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const MESSAGES: usize = 2000;
const CLIENTS: usize = 20;
/// The kill comes once this many messages have been acknowledged.
const KILL_AFTER: usize = 600;

/// 20 threads, 100 messages each over one connection; the id of every
/// message answered 250 is appended to the log, one per line, flushed.
const CLIENT: &str = r#"
import smtplib, sys, threading
port, log_path, total, clients = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
log = open(log_path, "a", buffering=1)
lock = threading.Lock()
def run(worker):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.ehlo("load.client")
        for n in range(worker, total, clients):
            domain = "later.test" if n % 2 == 0 else "now.test"
            body = "Subject: crash test %d\r\nX-Test-Id: %d\r\n\r\nbody of %d\r\n" % (n, n, n)
            s.sendmail("load@acme.test", ["u%d@%s" % (n, domain)], body)
            with lock:
                log.write("%d\n" % n)
    except Exception:
        pass  # the server died: this client is done
threads = [threading.Thread(target=run, args=(w,)) for w in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// Reads `kind<TAB>to<TAB>recipient<TAB>message-id` lines from stdin and
/// sends each report to the inbound MX; the line of every report answered
/// 250 is appended to the log.
const REPORTER: &str = r#"
import smtplib, sys
port, log_path = int(sys.argv[1]), sys.argv[2]
log = open(log_path, "a", buffering=1)
DSN = ("From: MAILER-DAEMON@mx.now.test\r\nTo: {to}\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
  "Content-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
  "Your message could not be delivered.\r\n\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
  "Reporting-MTA: dns; mx.now.test\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
  "Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: no such user\r\n\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
  "Message-ID: <{mid}>\r\nTo: {rcpt}\r\n\r\n--b1--\r\n")
ARF = ("From: fbl@provider.test\r\nTo: fbl@mta.test\r\nSubject: Complaint\r\nMIME-Version: 1.0\r\n"
  "Content-Type: multipart/report; report-type=feedback-report; boundary=arf\r\n\r\n--arf\r\nContent-Type: text/plain\r\n\r\n"
  "An abuse report.\r\n\r\n--arf\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
  "User-Agent: FBL/1.0\r\nVersion: 1\r\nOriginal-Mail-From: <{to}>\r\nOriginal-Rcpt-To: <{rcpt}>\r\n\r\n"
  "--arf\r\nContent-Type: message/rfc822\r\n\r\nReturn-Path: <{to}>\r\nTo: {rcpt}\r\nMessage-ID: <{mid}>\r\n\r\nHi\r\n--arf--\r\n")
s = None
for line in sys.stdin:
    kind, to, rcpt, mid = line.rstrip("\n").split("\t")
    try:
        if s is None:
            s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        if kind == "dsn":
            s.sendmail("", [to], DSN.format(to=to, rcpt=rcpt, mid=mid))
        else:
            s.sendmail("", ["fbl@mta.test"], ARF.format(to=to, rcpt=rcpt, mid=mid))
        log.write(line)
    except Exception:
        s = None  # the server died: later reports try a new connection
"#;

fn test_id(data: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .find_map(|l| l.strip_prefix("X-Test-Id: "))
        .and_then(|n| n.trim().parse().ok())
}

fn acked(log: &Path) -> HashSet<usize> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_sigkill() -> anyhow::Result<()> {
    // Mail to later.test is refused (451) until after the crash, so it is
    // still queued when the kill comes; mail to now.test goes through.
    let sink = SmtpSink::start(
        "127.0.0.1:0",
        vec![Rule::new(
            Phase::Rcpt,
            "*@later.test",
            Behaviour::Reply("451 4.3.0 not yet".into()),
        )],
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"

[smtp]
submission = ["127.0.0.1:0"]
submission_tls = []
inbound = ["127.0.0.1:0"]
max_connections_per_ip = 100
[[smtp.relay_networks]]
cidr = "127.0.0.0/8"
account = "main"

[delivery]
retry_schedule = ["1s"]
idle_timeout = "1s"
[[delivery.routes]]
domain = "*"
smarthost = "127.0.0.1:{port}"
"#,
        data = dir.path().join("data").display(),
        port = sink.addr().port()
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let submission = server.listening("smtp-submission").await?;
    let inbound = server.listening("smtp-inbound").await?;
    let out = server.cli(&["sender", "add", "--account", "main", "@acme.test", "--override"])?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let log = dir.path().join("acked.log");
    let mut client = Command::new("python3")
        .args([
            "-c",
            CLIENT,
            &submission.port().to_string(),
            log.to_str().context("path")?,
        ])
        .args([MESSAGES.to_string(), CLIENTS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // The remote side reports on some of the mail it got: a DSN for one
    // message in ten, an ARF complaint for another, sent while load goes on.
    let reports_log = dir.path().join("reports.log");
    let mut reporter = Command::new("python3")
        .args([
            "-c",
            REPORTER,
            &inbound.port().to_string(),
            reports_log.to_str().context("path")?,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut feed = reporter.stdin.take().context("reporter stdin")?;
    let mut reported = HashSet::new();
    let log_path = log.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acked(&log_path).len() < KILL_AFTER {
        ensure!(std::time::Instant::now() < deadline, "acknowledgements before the kill");
        for m in sink.messages() {
            let Some(n) = test_id(&m.data) else { continue };
            let kind = match n % 10 {
                1 => "dsn",
                3 => "arf",
                _ => continue,
            };
            if !reported.insert(n) {
                continue;
            }
            let mid = mail_parser::MessageParser::default()
                .parse(&m.data)
                .and_then(|p| p.message_id().map(str::to_owned))
                .unwrap_or_default();
            writeln!(feed, "{kind}\t{}\t{}\t{mid}", m.mail_from, m.rcpt_to.join(","))?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill()?;
    drop(feed);
    let status = tokio::task::spawn_blocking(move || client.wait()).await??;
    ensure!(status.success(), "the client script itself failed");
    let status = tokio::task::spawn_blocking(move || reporter.wait()).await??;
    ensure!(status.success(), "the reporter script itself failed");
    let acknowledged = acked(&log);
    let before_restart: HashMap<usize, usize> = count_ids(&sink);
    ensure!(
        acknowledged.len() >= KILL_AFTER && acknowledged.len() < MESSAGES,
        "the kill came mid-stream: {} acked",
        acknowledged.len()
    );

    // Restart on the same data; the remote server now takes everything.
    sink.set_rules(Vec::new());
    let mut restarted = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    restarted.listening("http").await?;
    let arrived = wait_for(
        "every acknowledged message at the sink",
        Duration::from_secs(180),
        || {
            let delivered = count_ids(&sink);
            let complete = acknowledged.iter().all(|n| delivered.contains_key(n));
            async move { complete.then_some(()) }
        },
    )
    .await;
    let delivered = count_ids(&sink);
    let lost: Vec<usize> = acknowledged
        .iter()
        .filter(|n| !delivered.contains_key(n))
        .copied()
        .collect();
    ensure!(
        arrived.is_ok() && lost.is_empty(),
        "{} acknowledged messages lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );

    // Delivered before the crash and sent again after it: only what was in
    // flight at the kill (one per open connection, plus outcomes not yet
    // journaled when the process died).
    let again: usize = before_restart
        .keys()
        .filter(|n| delivered.get(n).copied().unwrap_or(0) > before_restart[n])
        .count();
    println!(
        "crash test: {} acknowledged, {} delivered before the kill, all {} delivered after restart, {} sent twice",
        acknowledged.len(),
        before_restart.len(),
        acknowledged.len(),
        again
    );
    ensure!(
        again <= 50,
        "{again} messages delivered before the crash were sent again"
    );

    // What Herald learned survived too. Every message the remote server
    // got (before or after the crash) has its accepted and delivered
    // events; every report answered 250 left its event and suppression.
    let admin = std::fs::read_to_string(dir.path().join("data/bootstrap-admin-key"))?
        .trim()
        .to_owned();
    let api = Api::http(restarted.listening("http").await?)?;
    let received: HashSet<String> = sink.messages().iter().flat_map(|m| m.rcpt_to.clone()).collect();
    let reports: Vec<(String, String)> = std::fs::read_to_string(&reports_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('\t').collect();
            (parts.len() == 4).then(|| (parts[0].to_owned(), parts[2].to_owned()))
        })
        .collect();
    ensure!(!reports.is_empty(), "some reports were acknowledged before the kill");
    let complete = wait_for("events of everything delivered", Duration::from_secs(120), || async {
        let accepted = recipients_with(&api, &admin, "accepted").await.ok()?;
        let delivered = recipients_with(&api, &admin, "delivered").await.ok()?;
        received
            .iter()
            .all(|r| accepted.contains(r) && delivered.contains(r))
            .then_some((accepted, delivered))
    })
    .await;
    if complete.is_err() {
        let accepted = recipients_with(&api, &admin, "accepted").await?;
        let delivered = recipients_with(&api, &admin, "delivered").await?;
        let missing: Vec<&String> = received
            .iter()
            .filter(|r| !accepted.contains(*r) || !delivered.contains(*r))
            .take(20)
            .collect();
        anyhow::bail!("events missing for messages the sink received: {missing:?}");
    }
    let bounced = recipients_with(&api, &admin, "bounced").await?;
    let complained = recipients_with(&api, &admin, "complained").await?;
    for (kind, rcpt) in &reports {
        let recorded = if kind == "dsn" { &bounced } else { &complained };
        ensure!(
            recorded.contains(rcpt),
            "the acknowledged {kind} about {rcpt} left no event"
        );
        let suppression = api
            .call("GET", &format!("/api/v1/suppressions/{rcpt}"))
            .key(&admin)
            .send()
            .await?;
        ensure!(
            suppression.status == 200,
            "the acknowledged {kind} about {rcpt} left no suppression: {}",
            suppression.body
        );
    }
    println!(
        "crash test: {} reports acknowledged, each with its event and suppression; accepted and delivered events for all {} recipients the sink got",
        reports.len(),
        received.len()
    );
    ensure!(restarted.interrupt().await?.success());
    Ok(())
}

/// Every recipient with an event of `kind`, paging through the API.
async fn recipients_with(api: &Api, key: &str, kind: &str) -> anyhow::Result<HashSet<String>> {
    let mut out = HashSet::new();
    let mut cursor = String::new();
    loop {
        let after = if cursor.is_empty() {
            String::new()
        } else {
            format!("&cursor={cursor}")
        };
        let page = api
            .call("GET", &format!("/api/v1/events?type={kind}&limit=1000{after}"))
            .key(key)
            .send()
            .await?;
        ensure!(page.status == 200, "{}", page.body);
        let data = page.body["data"].as_array().cloned().unwrap_or_default();
        out.extend(
            data.iter()
                .filter_map(|e: &Value| e["recipient"].as_str().map(str::to_owned)),
        );
        if data.len() < 1000 {
            return Ok(out);
        }
        cursor = page.body["next_cursor"].as_str().unwrap_or_default().to_owned();
    }
}

/// How many times the sink got each test message.
fn count_ids(sink: &SmtpSink) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for m in sink.messages() {
        if let Some(id) = test_id(&m.data) {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}
