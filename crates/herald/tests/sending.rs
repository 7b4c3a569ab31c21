//! Issue 4, end to end through the real binary: the send API (validation,
//! personalization, idempotency, suppression), preparation on the way out
//! (DKIM checked by dkimpy against a real DNS server, VERP, List-Unsubscribe,
//! tracking), and the tracking and unsubscribe endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_testkit::{Answer, Api, DnsServer, HeraldProcess, SinkMessage, SmtpSink, Zones, wait_for};
use mail_parser::MessageParser;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const WAIT: Duration = Duration::from_secs(30);

/// dkimpy verifies every signature of each file, asking the test DNS server.
const DKIMPY: &str = r#"
import sys, json, dkim, dns.resolver, dns.rdatatype
host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = dns.resolver.Resolver(configure=False)
res.nameservers = [host]; res.port = port
def dnsfunc(name, timeout=5):
    try:
        ans = res.resolve(name.decode("ascii"), dns.rdatatype.TXT, lifetime=timeout, raise_on_no_answer=False, search=False)
    except Exception:
        return None
    for rr in ans.rrset or []:
        return b"".join(rr.strings)
    return None
out = []
for p in paths:
    data = open(p, "rb").read()
    sigs = data.lower().count(b"\ndkim-signature:") + (1 if data.lower().startswith(b"dkim-signature:") else 0)
    d = dkim.DKIM(data)
    out.append({"path": p, "signatures": sigs, "verified": [bool(d.verify(idx=i, dnsfunc=dnsfunc)) for i in range(sigs)]})
print(json.dumps(out))
"#;

struct Setup {
    dir: tempfile::TempDir,
    server: HeraldProcess,
    http: SocketAddr,
    submission: SocketAddr,
    api: Api,
    key: String,
    sink: SmtpSink,
    dns: DnsServer,
    /// The records `acme.test` published.
    acme_records: Value,
}

fn mx_zones() -> anyhow::Result<Zones> {
    Ok(Zones::new()
        .mx("example.test", 10, "mx.example.test")
        .ip("mx.example.test", "127.0.0.2".parse()?))
}

/// A server whose clicks within `click_window` of sending are a scanner's,
/// and whose requests from 127.0.0.5 are a machine's.
async fn setup(click_window: &str) -> anyhow::Result<Setup> {
    setup_with(click_window, "").await
}

/// [`setup`] with more configuration (tables after the others).
async fn setup_with(click_window: &str, extra: &str) -> anyhow::Result<Setup> {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await?;
    let mut dns = DnsServer::start(&mx_zones()?).await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"
public_url = "https://links.mta.test"
# The reverse proxy of the proxy test.
trusted_proxies = ["127.0.0.6/32"]

[smtp]
submission = ["127.0.0.1:0"]
submission_tls = []
inbound = []
max_message_size = 200000

[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
retry_schedule = ["1s"]

[tracking]
machine_agents = ["acme-linkcheck"]
machine_networks = ["127.0.0.5/32"]
click_window = "{click_window}"
coalesce_window = "1s"
{extra}
"#,
        data = dir.path().join("data").display(),
        dns = dns.addr(),
        port = sink.addr().port(),
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let http = server.listening("http").await?;
    let submission = server.listening("smtp-submission").await?;
    let api = Api::http(http)?;
    server.run(&["account", "create", "acme"])?;
    let key = server
        .run(&["api-key", "create", "--account", "acme"])?
        .trim()
        .to_owned();
    // A sending domain with its records published and verified, before any
    // mail, so every message is signed and its return path aligned.
    let added: Value =
        serde_json::from_str(&server.run(&["--json", "domain", "add", "acme.test", "--account", "acme"])?)?;
    dns.replace(&mx_zones()?.publish(&added["records"])).await?;
    server.run(&["domain", "verify", "acme.test"])?;
    // Verified: the brand approves senders in it without an override.
    server.run(&["sender", "add", "--account", "acme", "@acme.test"])?;
    let acme_records = added["records"].clone();
    Ok(Setup {
        dir,
        server,
        http,
        submission,
        api,
        key,
        sink,
        dns,
        acme_records,
    })
}

impl Setup {
    async fn send(&self, body: Value, idempotency: Option<&str>) -> anyhow::Result<Answer> {
        let mut call = self.api.call("POST", "/api/v1/messages").key(&self.key).json(body);
        if let Some(k) = idempotency {
            call = call.header("Idempotency-Key", k);
        }
        call.send().await
    }

    async fn events(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let answer = self
            .api
            .call("GET", &format!("/api/v1/events?{query}"))
            .key(&self.key)
            .send()
            .await?;
        ensure!(answer.status == 200, "{}", answer.body);
        Ok(answer.body["data"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until at least `n` events match; returns them all.
    async fn wait_events(&self, query: &str, n: usize) -> anyhow::Result<Vec<Value>> {
        wait_for(&format!("{n} events for {query}"), WAIT, || async move {
            self.events(query).await.ok().filter(|e| e.len() >= n)
        })
        .await
    }

    /// The message the sink got for `rcpt`.
    async fn delivered_to(&self, rcpt: &str) -> anyhow::Result<SinkMessage> {
        wait_for(&format!("a message for {rcpt} at the sink"), WAIT, || {
            let found = self
                .sink
                .messages()
                .into_iter()
                .find(|m| m.rcpt_to.iter().any(|r| r == rcpt));
            async move { found }
        })
        .await
    }

    /// How many messages the sink got for `rcpt`.
    fn count_to(&self, rcpt: &str) -> usize {
        self.sink
            .messages()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r == rcpt))
            .count()
    }

    /// Submits a message with swaks (STARTTLS, AUTH PLAIN with a new SMTP
    /// credential of `acme`); the transcript is in `stdout`.
    fn swaks(&self, from: &str, to: &str, headers: &[&str]) -> anyhow::Result<std::process::Output> {
        let cred = self.server.run(&["smtp-credential", "create", "--account", "acme"])?;
        let field = |name: &str| cred.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
        let (user, password) = (
            field("username: ").context("username")?,
            field("password: ").context("password")?,
        );
        let port = self.submission.port().to_string();
        let mut args = vec![
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            &user,
            "--auth-password",
            &password,
            "--from",
            from,
            "--to",
            to,
        ];
        for h in headers {
            args.extend(["--header", h]);
        }
        args.extend(["--body", "hello", "--timeout", "30"]);
        Command::new("swaks").args(&args).output().context("swaks")
    }

    /// dkimpy's verdicts on each message: one bool per signature.
    fn dkimpy(&self, messages: &[&SinkMessage]) -> anyhow::Result<Vec<Vec<bool>>> {
        let mut paths = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let path = self.dir.path().join(format!("signed-{i}.eml"));
            std::fs::write(&path, &m.data)?;
            paths.push(path.to_string_lossy().into_owned());
        }
        let out = Command::new("python3")
            .arg("-c")
            .arg(DKIMPY)
            .arg("127.0.0.1")
            .arg(self.dns.addr().port().to_string())
            .args(&paths)
            .output()
            .context("python3 with dkimpy and dnspython (pip install dkimpy dnspython pynacl)")?;
        ensure!(out.status.success(), "dkimpy: {}", String::from_utf8_lossy(&out.stderr));
        let report: Vec<Value> = serde_json::from_slice(&out.stdout)?;
        Ok(report
            .iter()
            .map(|r| {
                r["verified"]
                    .as_array()
                    .map(|v| v.iter().map(|b| b.as_bool() == Some(true)).collect())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// A GET (or another method) on a link from a message, against this
    /// server whatever host the link names. Redirects are not followed.
    async fn visit(&self, method: &str, link: &str, agent: &str) -> anyhow::Result<reqwest::Response> {
        self.visit_from("127.0.0.1", method, link, agent).await
    }

    /// [`Setup::visit`] from another loopback address.
    async fn visit_from(
        &self,
        source: &str,
        method: &str,
        link: &str,
        agent: &str,
    ) -> anyhow::Result<reqwest::Response> {
        self.visit_via(source, method, link, agent, &[]).await
    }

    /// [`Setup::visit_from`] with more request headers (a proxy's).
    async fn visit_via(
        &self,
        source: &str,
        method: &str,
        link: &str,
        agent: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let path = link
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .context("a link with a path")?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(source.parse::<std::net::IpAddr>()?)
            .build()?;
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = client
            .request(method, format!("http://{}{path}", self.http))
            .header("User-Agent", agent);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(request.send().await?)
    }
}

fn header(m: &SinkMessage, name: &str) -> Option<String> {
    let parsed = MessageParser::default().parse(&m.data)?;
    parsed.header_raw(name).map(|v| v.trim().to_owned())
}

fn text(m: &SinkMessage) -> String {
    String::from_utf8_lossy(&m.data).into_owned()
}

/// Every `href="…"` and `src="…"` value in the message's HTML part.
fn links(m: &SinkMessage) -> Vec<String> {
    let parsed = MessageParser::default().parse(&m.data);
    let html = parsed.as_ref().and_then(|p| p.body_html(0)).unwrap_or_default();
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html.as_ref();
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].replace("&amp;", "&"));
                rest = &rest[end..];
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_api_checks_builds_signs_and_delivers() -> anyhow::Result<()> {
    let s = setup("60s").await?;

    // A transactional message with everything: accepted once durable.
    let pdf = "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDw+PgplbmRvYmoKdHJhaWxlcgo8PD4+CiUlRU9GCg==";
    let answer = s
        .send(
            json!({
                "from": {"email": "billing@acme.test", "name": "Acme Billing"},
                "to": ["Jane Doe <jane@example.test>"],
                "cc": ["joe@example.test"],
                "bcc": ["audit@example.test"],
                "reply_to": "help@acme.test",
                "subject": "Your invoice — März",
                "html": "<html><body><p>Hello <b>Jane</b>, your invoice is attached.</p></body></html>",
                "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf", "content": pdf}],
                "headers": {"X-Campaign": "billing-2026"},
                "tags": ["invoice"],
                "metadata": {"order": "1234"}
            }),
            None,
        )
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let id = answer.body["id"].as_str().context("id")?.to_owned();
    ensure!(id.starts_with("msg_"), "{}", answer.body);
    let statuses: Vec<(&str, &str)> = answer.body["recipients"]
        .as_array()
        .context("recipients")?
        .iter()
        .map(|r| (r["email"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or("")))
        .collect();
    ensure!(
        statuses
            == [
                ("jane@example.test", "queued"),
                ("joe@example.test", "queued"),
                ("audit@example.test", "queued")
            ],
        "{statuses:?}"
    );

    let jane = s.delivered_to("jane@example.test").await?;
    let parsed = MessageParser::default().parse(&jane.data).context("parses")?;
    ensure!(parsed.subject() == Some("Your invoice — März"));
    ensure!(
        parsed
            .body_text(0)
            .is_some_and(|t| t.contains("Hello") && t.contains("Jane")),
        "text made from HTML"
    );
    ensure!(
        parsed
            .attachment(0)
            .is_some_and(|a| a.contents().starts_with(b"%PDF-1.4"))
    );
    ensure!(header(&jane, "X-Campaign").as_deref() == Some("billing-2026"));
    ensure!(header(&jane, "Message-ID").is_some_and(|v| v.ends_with("@mta.test>")));
    ensure!(header(&jane, "Date").is_some());
    ensure!(
        !text(&jane).to_ascii_lowercase().contains("audit@example.test"),
        "bcc stays out of the message"
    );
    ensure!(
        header(&jane, "List-Unsubscribe").is_none(),
        "transactional mail has no List-Unsubscribe"
    );
    // VERP on the platform's aligned return path.
    let (local, domain) = jane.mail_from.split_once('@').context("VERP address")?;
    ensure!(domain == "bounces.acme.test" && local.len() <= 64, "{}", jane.mail_from);
    // Signed with both keys; dkimpy verifies both against the published records.
    let dkim = s.dkimpy(&[&jane])?;
    ensure!(dkim == [vec![true, true]], "dkimpy verdicts {dkim:?}");
    // Tags and metadata come back in events.
    let accepted = s.wait_events(&format!("type=accepted&message_id={id}"), 3).await?;
    ensure!(
        accepted
            .iter()
            .all(|e| e["tags"] == json!(["invoice"]) && e["metadata"] == json!({"order": "1234"})),
        "{accepted:?}"
    );
    s.wait_events(&format!("type=delivered&message_id={id}"), 3).await?;
    // The message as its events tell it.
    let state = s
        .api
        .call("GET", &format!("/api/v1/messages/{id}"))
        .key(&s.key)
        .send()
        .await?;
    ensure!(
        state.status == 200 && state.body["sender"] == "billing@acme.test",
        "{}",
        state.body
    );
    let rcpts = state.body["recipients"].as_array().context("recipients")?;
    ensure!(
        rcpts.len() == 3 && rcpts.iter().all(|r| r["status"] == "delivered"),
        "{}",
        state.body
    );
    let kinds: Vec<&str> = rcpts[0]["events"]
        .as_array()
        .context("events")?
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    ensure!(kinds == ["accepted", "delivered"], "{kinds:?}");
    let unknown = s
        .api
        .call("GET", "/api/v1/messages/msg_0190f0b8a1c27d3e8f00112233445566")
        .key(&s.key)
        .send()
        .await?;
    ensure!(unknown.status == 404, "{}", unknown.body);

    // Substitutions: a copy of its own for each recipient.
    let answer = s
        .send(
            json!({
                "from": "news@acme.test",
                "to": [
                    {"email": "ann@example.test", "substitutions": {"name": "Ann", "plan": "Pro"}},
                    {"email": "bob@example.test", "name": "Bob", "substitutions": {"name": "Bob <3"}}
                ],
                "subject": "Welcome, {{name}}",
                "text": "Hi {{name}}, you are on {{plan}}.",
                "html": "<html><body><p>Hi {{name}}, you are on {{ plan }}.</p></body></html>"
            }),
            None,
        )
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let ids: Vec<&str> = answer.body["recipients"]
        .as_array()
        .context("recipients")?
        .iter()
        .filter_map(|r| r["message_id"].as_str())
        .collect();
    // One message, stored once (attachments too), rendered per recipient.
    ensure!(ids.len() == 2 && ids[0] == ids[1], "{}", answer.body);
    let ann_msg = s.delivered_to("ann@example.test").await?;
    let ann = MessageParser::default().parse(&ann_msg.data).context("parses")?;
    ensure!(ann.subject() == Some("Welcome, Ann"));
    ensure!(ann.body_text(0).is_some_and(|t| t.trim() == "Hi Ann, you are on Pro."));
    ensure!(ann.to().is_some_and(|t| t.iter().count() == 1));
    let bob_msg = s.delivered_to("bob@example.test").await?;
    let bob = MessageParser::default().parse(&bob_msg.data).context("parses")?;
    ensure!(bob.subject() == Some("Welcome, Bob <3"));
    ensure!(
        bob.body_html(0)
            .is_some_and(|h| h.contains("Hi Bob &lt;3, you are on .")),
        "{:?}",
        bob.body_html(0)
    );
    ensure!(
        !text(&bob_msg).contains("ann@example.test"),
        "one recipient never sees another"
    );

    // Every mistake names its field; nothing is sent.
    let bad = s
        .send(
            json!({"from": "news@acme.test", "to": [{"email": "not-an-address"}], "subject": "x", "text": "y"}),
            None,
        )
        .await?;
    ensure!(
        bad.status == 422 && bad.body["error"]["field"] == "to[0].email",
        "{}",
        bad.body
    );
    let bad = s
        .send(
            json!({"from": "news@acme.test", "to": ["a@example.test"], "subject": "x"}),
            None,
        )
        .await?;
    ensure!(
        bad.status == 422 && bad.body["error"]["field"] == "text",
        "{}",
        bad.body
    );
    let bad = s
        .send(
            json!({"from": "news@acme.test", "to": ["a@example.test"], "subjct": "x"}),
            None,
        )
        .await?;
    ensure!(
        bad.status == 422
            && bad.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("subjct")),
        "{}",
        bad.body
    );
    let many: Vec<String> = (0..1001).map(|i| format!("r{i}@example.test")).collect();
    let bad = s
        .send(
            json!({"from": "news@acme.test", "to": many, "subject": "x", "text": "y"}),
            None,
        )
        .await?;
    ensure!(bad.status == 422 && bad.body["error"]["field"] == "to", "{}", bad.body);
    // The same checks as SMTP: an unapproved sender is refused.
    let bad = s
        .send(
            json!({"from": "ceo@globex.test", "to": ["a@example.test"], "subject": "x", "text": "y"}),
            None,
        )
        .await?;
    ensure!(
        bad.status == 403 && bad.error_code() == Some("sender_not_approved"),
        "{}",
        bad.body
    );
    let bad = s
        .send(
            json!({"to": ["a@example.test"], "raw": "From: ceo@globex.test\nSubject: spoof\n\nhi\n", "from": "news@acme.test"}),
            None,
        )
        .await?;
    ensure!(bad.status == 403 && bad.body["error"]["field"] == "raw", "{}", bad.body);

    // Idempotency: the same key sends once and answers the same.
    let order = json!({"from": "news@acme.test", "to": ["once@example.test"], "subject": "Order", "text": "once"});
    let first = s.send(order.clone(), Some("order-77")).await?;
    let again = s.send(order.clone(), Some("order-77")).await?;
    ensure!(
        first.status == 202 && again.status == 202,
        "{} / {}",
        first.body,
        again.body
    );
    ensure!(first.body == again.body, "{} / {}", first.body, again.body);
    ensure!(again.header("Idempotency-Replayed") == Some("true") && first.header("Idempotency-Replayed").is_none());
    let other = s
        .send(
            json!({"from": "news@acme.test", "to": ["once@example.test"], "subject": "Other", "text": "x"}),
            Some("order-77"),
        )
        .await?;
    ensure!(
        other.status == 422 && other.error_code() == Some("idempotency_key_reused"),
        "{}",
        other.body
    );
    // A fresh message after it shows the sink has seen everything before.
    let marker = s
        .send(
            json!({"from": "news@acme.test", "to": ["once@example.test"], "subject": "Marker", "text": "m"}),
            None,
        )
        .await?;
    let marker_id = marker.body["id"].as_str().context("id")?.to_owned();
    s.wait_events(&format!("type=delivered&message_id={marker_id}"), 1)
        .await?;
    s.wait_events(
        &format!("type=delivered&message_id={}", first.body["id"].as_str().unwrap_or("")),
        1,
    )
    .await?;
    ensure!(
        s.count_to("once@example.test") == 2,
        "the idempotent send went out once, then the marker"
    );

    // The size limit applies to what the API builds, attachments included.
    let big = "QUFB".repeat(70_000); // 210,000 bytes once decoded
    let too_big = s
        .send(
            json!({"from": "news@acme.test", "to": ["a@example.test"], "subject": "big", "text": "x",
                   "attachments": [{"filename": "big.bin", "content": big}]}),
            None,
        )
        .await?;
    ensure!(
        too_big.status == 413 && too_big.error_code() == Some("too_large"),
        "{}",
        too_big.body
    );

    // A click moments after sending is a scanner following the link on
    // arrival (this server's window is 60 s). The first bulk message of the
    // test, so no cached settings predate the change.
    s.server.run(&["account", "set", "acme", "--track-clicks", "on"])?;
    let early = s
        .send(
            json!({"from": "news@acme.test", "to": ["early@example.test"], "subject": "news", "stream": "newsletter",
                   "html": "<html><body><a href=\"https://acme.test/\">go</a></body></html>"}),
            None,
        )
        .await?;
    let m = s.delivered_to("early@example.test").await?;
    let link = links(&m)
        .into_iter()
        .find(|l| l.contains("/t/c/"))
        .context("a tracked link")?;
    ensure!(s.visit("GET", &link, BROWSER).await?.status().is_redirection());
    let early_id = early.body["id"].as_str().context("id")?;
    let clicked = s.wait_events(&format!("type=clicked&message_id={early_id}"), 1).await?;
    ensure!(clicked[0]["machine"] == true, "{}", clicked[0]);

    // A raw message through the CLI, sent as given.
    let eml = s.dir.path().join("raw.eml");
    std::fs::write(
        &eml,
        "From: Acme <news@acme.test>\nTo: raw@example.test\nSubject: raw via cli\n\nas written\n",
    )?;
    let out = s.server.run(&[
        "send",
        "--account",
        "acme",
        "--to",
        "raw@example.test",
        "--file",
        eml.to_str().context("path")?,
    ])?;
    ensure!(out.lines().next().is_some_and(|l| l.starts_with("msg_")), "{out}");
    let raw = s.delivered_to("raw@example.test").await?;
    ensure!(header(&raw, "Subject").as_deref() == Some("raw via cli"));
    ensure!(text(&raw).contains("\r\n\r\nas written\r\n"));
    // And a built one, with an attachment.
    let att = s.dir.path().join("notes.txt");
    std::fs::write(&att, "attached words")?;
    s.server.run(&[
        "send",
        "--account",
        "acme",
        "--from",
        "news@acme.test",
        "--to",
        "cli@example.test",
        "--subject",
        "from the cli",
        "--text",
        "body",
        "--attach",
        att.to_str().context("path")?,
        "--tag",
        "cli",
    ])?;
    let m = s.delivered_to("cli@example.test").await?;
    let parsed = MessageParser::default().parse(&m.data).context("parses")?;
    ensure!(parsed.attachment(0).is_some_and(|a| a.contents() == b"attached words"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_mail_is_tracked_and_unsubscribes_stick() -> anyhow::Result<()> {
    let s = setup("0s").await?;
    s.server
        .run(&["account", "set", "acme", "--track-opens", "on", "--track-clicks", "on"])?;

    let newsletter = |to: &[&str]| {
        json!({
            "from": "news@acme.test",
            "to": to,
            "subject": "Spring news",
            "stream": "newsletter",
            "tags": ["spring"],
            "html": "<html><head></head><body><p>Read <a href=\"https://acme.test/offer?x=1&amp;y=2\">our offer</a>, \
                     write to <a href=\"mailto:help@acme.test\">us</a> or jump <a href=\"#top\">up</a>.</p></body></html>"
        })
    };
    let answer = s
        .send(newsletter(&["reader@example.test", "clicker@example.test"]), None)
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let id = answer.body["id"].as_str().context("id")?.to_owned();
    let reader = s.delivered_to("reader@example.test").await?;
    let clicker = s.delivered_to("clicker@example.test").await?;

    // List-Unsubscribe with https and mailto, one-click, all signed.
    let unsub = header(&reader, "List-Unsubscribe").context("List-Unsubscribe")?;
    ensure!(
        unsub.contains("<https://links.mta.test/u/") && unsub.contains("<mailto:"),
        "{unsub}"
    );
    ensure!(header(&reader, "List-Unsubscribe-Post").as_deref() == Some("List-Unsubscribe=One-Click"));
    let signed_by = header(&reader, "DKIM-Signature").unwrap_or_default();
    ensure!(
        signed_by.to_ascii_lowercase().contains("list-unsubscribe"),
        "{signed_by}"
    );
    let dkim = s.dkimpy(&[&reader, &clicker])?;
    ensure!(dkim == [vec![true, true], vec![true, true]], "dkimpy verdicts {dkim:?}");

    // Links rewritten but mailto and anchors; a pixel added.
    let found = links(&reader);
    let click = found
        .iter()
        .find(|l| l.contains("/t/c/"))
        .context("a tracked link")?
        .clone();
    let pixel = found
        .iter()
        .find(|l| l.contains("/t/o/"))
        .context("an open pixel")?
        .clone();
    ensure!(
        found.contains(&"mailto:help@acme.test".to_owned()) && found.contains(&"#top".to_owned()),
        "{found:?}"
    );
    ensure!(!found.iter().any(|l| l.starts_with("https://acme.test")), "{found:?}");
    ensure!(click.starts_with("https://links.mta.test/t/c/"), "{click}");

    // Opens: a person, counted once within two minutes; a proxy, flagged.
    let r = s.visit("GET", &pixel, BROWSER).await?;
    ensure!(r.status() == 200);
    ensure!(r.headers().get("content-type").is_some_and(|v| v == "image/gif"));
    ensure!(r.bytes().await?.starts_with(b"GIF89a"));
    ensure!(s.visit("GET", &pixel, BROWSER).await?.status() == 200);
    ensure!(
        s.visit(
            "GET",
            &pixel,
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
        )
        .await?
        .status()
            == 200
    );
    // Clicks: a person is sent to the link's target; a scanner is flagged.
    let r = s.visit("GET", &click, BROWSER).await?;
    ensure!(r.status() == 302 || r.status() == 303, "{}", r.status());
    ensure!(
        r.headers()
            .get("location")
            .is_some_and(|v| v == "https://acme.test/offer?x=1&y=2"),
        "{:?}",
        r.headers().get("location")
    );
    ensure!(s.visit("HEAD", &click, BROWSER).await?.status().is_redirection());
    ensure!(
        s.visit("GET", &click, "acme-linkcheck/2.0")
            .await?
            .status()
            .is_redirection()
    );
    ensure!(
        s.visit_from("127.0.0.5", "GET", &click, BROWSER)
            .await?
            .status()
            .is_redirection()
    );
    // Apple Mail Privacy Protection fetches as a bare "Mozilla/5.0".
    let clicker_pixel = links(&clicker)
        .into_iter()
        .find(|l| l.contains("/t/o/"))
        .context("pixel")?;
    ensure!(s.visit("GET", &clicker_pixel, "Mozilla/5.0").await?.status() == 200);
    // Repeats by one reader within the window (1 s here) are one event
    // with a count: the person's click, and the three machine visits.
    let clicks = s.wait_events(&format!("type=clicked&message_id={id}"), 2).await?;
    let opens = s
        .wait_events(&format!("type=opened&message_id={id}&recipient=reader@example.test"), 2)
        .await?;
    ensure!(opens.len() == 2, "the reader's opens, and the proxy's: {opens:?}");
    let apple = s
        .wait_events(
            &format!("type=opened&message_id={id}&recipient=clicker@example.test"),
            1,
        )
        .await?;
    ensure!(apple.len() == 1 && apple[0]["machine"] == true, "{apple:?}");
    ensure!(opens.iter().filter(|e| e["machine"] == true).count() == 1, "{opens:?}");
    ensure!(opens.iter().all(|e| e["recipient"] == "reader@example.test"));
    // Engagement events carry the message's stream, sender and tags.
    ensure!(
        opens
            .iter()
            .chain(&clicks)
            .all(|e| e["stream"] == "newsletter" && e["sender"] == "news@acme.test" && e["tags"] == json!(["spring"])),
        "{opens:?} {clicks:?}"
    );
    let human = opens
        .iter()
        .find(|e| e["machine"] == false)
        .context("the person's open")?;
    ensure!(human["user_agent"] == BROWSER && human["ip"] == "127.0.0.1", "{human}");
    ensure!(human["count"] == 2, "the reader opened it twice: {human}");
    let machine: Vec<(bool, u64)> = clicks
        .iter()
        .map(|e| (e["machine"] == true, e["count"].as_u64().unwrap_or(0)))
        .collect();
    ensure!(
        machine.contains(&(false, 1)) && machine.contains(&(true, 3)),
        "the person once; HEAD, scanner agent and scanner network as one: {clicks:?}"
    );
    ensure!(clicks.iter().all(|e| e["url"] == "https://acme.test/offer?x=1&y=2"));

    // Text-only mail, and HTML that is not a whole document, are left alone.
    let plain = s
        .send(
            json!({"from": "news@acme.test", "to": ["plain@example.test"], "subject": "plain", "stream": "newsletter",
                   "text": "See https://acme.test/plain for more."}),
            None,
        )
        .await?;
    ensure!(plain.status == 202, "{}", plain.body);
    let fragment = s
        .send(
            json!({"from": "news@acme.test", "to": ["fragment@example.test"], "subject": "fragment", "stream": "newsletter",
                   "html": "<p>See <a href=\"https://acme.test/fragment\">this</a>.</p>"}),
            None,
        )
        .await?;
    ensure!(fragment.status == 202, "{}", fragment.body);
    let plain = s.delivered_to("plain@example.test").await?;
    ensure!(
        text(&plain).contains("https://acme.test/plain") && !text(&plain).contains("/t/"),
        "{}",
        text(&plain)
    );
    ensure!(header(&plain, "List-Unsubscribe").is_some(), "still bulk mail");
    let fragment = s.delivered_to("fragment@example.test").await?;
    ensure!(
        links(&fragment) == ["https://acme.test/fragment"],
        "{:?}",
        links(&fragment)
    );

    // A changed token is a 404 and never a redirect.
    let mut tampered = click.clone();
    let last = tampered.pop().context("token")?;
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = s.visit("GET", &tampered, BROWSER).await?;
    ensure!(r.status() == 404 && r.headers().get("location").is_none());
    let r = s.visit("GET", &pixel.replace("/t/o/", "/t/c/"), BROWSER).await?;
    ensure!(r.status() == 404, "an open token is no click token");

    // Unsubscribe: a GET never unsubscribes anyone, scanner or browser (it
    // shows a button); the button's POST and a one-click POST do.
    let reader_unsub = unsub
        .split(['<', '>'])
        .find(|p| p.starts_with("https://"))
        .context("https unsubscribe")?
        .to_owned();
    let page = s.visit("GET", &reader_unsub, "acme-linkcheck/2.0").await?;
    ensure!(page.status() == 200);
    ensure!(page.text().await?.contains("<form method=\"post\""));
    let page = s.visit("GET", &reader_unsub, BROWSER).await?;
    ensure!(page.status() == 200);
    let html = page.text().await?;
    ensure!(
        html.contains("<form method=\"post\"") && html.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{html}"
    );
    let suppressed = s
        .api
        .call("GET", "/api/v1/suppressions/reader@example.test")
        .key(&s.key)
        .send()
        .await?;
    ensure!(suppressed.status == 404, "GETs suppressed nobody: {}", suppressed.body);
    let reader_path = reader_unsub.split_once("links.mta.test").context("path")?.1.to_owned();
    let pressed = reqwest::Client::new()
        .post(format!("http://{}{reader_path}", s.http))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("User-Agent", BROWSER)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    ensure!(pressed.status() == 200);
    ensure!(pressed.text().await?.contains("reader@example.test will get no more"));
    let clicker_unsub = header(&clicker, "List-Unsubscribe")
        .context("List-Unsubscribe")?
        .split(['<', '>'])
        .find(|p| p.starts_with("https://"))
        .context("https unsubscribe")?
        .to_owned();
    let path = clicker_unsub.split_once("links.mta.test").context("path")?.1.to_owned();
    let r = reqwest::Client::new()
        .post(format!("http://{}{path}", s.http))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await?;
    ensure!(r.status() == 200);
    // Once more: still one event each.
    ensure!(s.visit("GET", &reader_unsub, BROWSER).await?.status() == 200);
    let events = s.wait_events(&format!("type=unsubscribed&message_id={id}"), 2).await?;
    let mut who: Vec<&str> = events.iter().filter_map(|e| e["recipient"].as_str()).collect();
    who.sort_unstable();
    ensure!(who == ["clicker@example.test", "reader@example.test"], "{events:?}");
    ensure!(events.iter().all(|e| e["stream"] == "newsletter"), "{events:?}");

    // Later mail to them is dropped, by the API and by SMTP alike.
    let later = s
        .send(newsletter(&["reader@example.test", "fresh@example.test"]), None)
        .await?;
    ensure!(later.status == 202, "{}", later.body);
    let rcpts = later.body["recipients"].as_array().context("recipients")?;
    ensure!(
        rcpts[0]["status"] == "dropped"
            && rcpts[0]["reason"] == "suppressed: unsubscribe"
            && rcpts[1]["status"] == "queued",
        "{}",
        later.body
    );
    let later_id = later.body["id"].as_str().context("id")?.to_owned();
    let dropped = s.wait_events(&format!("type=dropped&message_id={later_id}"), 1).await?;
    ensure!(dropped[0]["recipient"] == "reader@example.test" && dropped[0]["reason"] == "suppressed: unsubscribe");
    let only_dropped = s.send(newsletter(&["clicker@example.test"]), None).await?;
    ensure!(
        only_dropped.status == 202 && only_dropped.body["recipients"][0]["status"] == "dropped",
        "{}",
        only_dropped.body
    );
    s.delivered_to("fresh@example.test").await?;
    s.wait_events(&format!("type=delivered&message_id={later_id}"), 1)
        .await?;
    ensure!(s.count_to("reader@example.test") == 1 && s.count_to("clicker@example.test") == 1);
    let state = s
        .api
        .call("GET", &format!("/api/v1/messages/{later_id}"))
        .key(&s.key)
        .send()
        .await?;
    let by_rcpt: Vec<(&str, &str)> = state.body["recipients"]
        .as_array()
        .context("recipients")?
        .iter()
        .map(|r| (r["email"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or("")))
        .collect();
    ensure!(
        by_rcpt == [("reader@example.test", "dropped"), ("fresh@example.test", "delivered")],
        "{by_rcpt:?}"
    );

    // SMTP: X-Herald headers become tags, metadata and the stream, and are
    // removed; a suppressed recipient is dropped there too.
    let out = s.swaks(
        "news@acme.test",
        "smtp@example.test,reader@example.test",
        &[
            "X-Herald-Tag: spring, promo",
            "X-Herald-Meta-campaign: c-9",
            "X-Herald-Stream: newsletter",
            "Subject: by smtp",
        ],
    )?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let m = s.delivered_to("smtp@example.test").await?;
    ensure!(!text(&m).to_ascii_lowercase().contains("x-herald-"), "{}", text(&m));
    ensure!(
        header(&m, "List-Unsubscribe").is_some(),
        "the stream came from X-Herald-Stream"
    );
    let ev = s.wait_events("type=delivered&recipient=smtp@example.test", 1).await?;
    ensure!(
        ev[0]["tags"] == json!(["spring", "promo"]) && ev[0]["metadata"] == json!({"campaign": "c-9"}),
        "{}",
        ev[0]
    );
    ensure!(ev[0]["stream"] == "newsletter");
    let message = ev[0]["message_id"].as_str().context("message id")?;
    let dropped = s.wait_events(&format!("type=dropped&message_id={message}"), 1).await?;
    ensure!(dropped[0]["recipient"] == "reader@example.test");
    ensure!(s.count_to("reader@example.test") == 1);
    Ok(())
}

/// The newsletter stream's own pool (127.0.0.7); everything else 127.0.0.8.
const STREAM_POOLS: &str = r#"
[[ip_pools]]
name = "news"
streams = ["newsletter"]
sources = [{ ip = "127.0.0.7", ehlo = "news-mta.herald.test" }]

[[ip_pools]]
name = "main"
sources = [{ ip = "127.0.0.8", ehlo = "mta8.herald.test" }]
"#;

/// The DKIM `d=` tags of a message's signatures (each domain once: a
/// domain signs with an RSA and an Ed25519 key).
fn dkim_domains(m: &SinkMessage) -> Vec<String> {
    let parsed = MessageParser::default().parse(&m.data);
    let mut out = Vec::new();
    for h in parsed.iter().flat_map(|p| p.headers()) {
        if h.name().eq_ignore_ascii_case("DKIM-Signature") {
            let raw = String::from_utf8_lossy(&m.data[h.offset_start() as usize..h.offset_end() as usize]).into_owned();
            let flat: String = raw.split_whitespace().collect();
            if let Some(d) = flat.split(';').find_map(|t| t.strip_prefix("d=")) {
                out.push(d.to_ascii_lowercase());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `[http] trusted_proxies`: behind a reverse proxy the tracker records
/// the client the proxy names in X-Forwarded-For, and tells machines by
/// that address; the client's own Forwarded is not read, and the same
/// headers from anyone else are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_behind_a_trusted_proxy_records_the_forwarded_client() -> anyhow::Result<()> {
    let s = setup("0s").await?;
    s.server.run(&["account", "set", "acme", "--track-opens", "on"])?;
    let to = ["apple@example.test", "person@example.test", "forger@example.test"];
    let answer = s
        .send(
            json!({"from": "news@acme.test", "to": to, "subject": "News", "stream": "newsletter",
                   "html": "<html><head></head><body><p>Hello</p></body></html>"}),
            None,
        )
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let id = answer.body["id"].as_str().context("id")?.to_owned();
    let mut pixels = Vec::new();
    for rcpt in to {
        let m = s.delivered_to(rcpt).await?;
        pixels.push(links(&m).into_iter().find(|l| l.contains("/t/o/")).context("pixel")?);
    }
    // Through the proxy (127.0.0.6): the client wrote a forged first
    // entry; the proxy appended the address it saw, a machine's network
    // here (127.0.0.5, `machine_networks`).
    let r = s
        .visit_via(
            "127.0.0.6",
            "GET",
            &pixels[0],
            BROWSER,
            &[("X-Forwarded-For", "198.51.100.1, 127.0.0.5")],
        )
        .await?;
    ensure!(r.status() == 200);
    // A person's address; the client's own Forwarded header, which this
    // proxy does not write and passes on, is not read.
    let r = s
        .visit_via(
            "127.0.0.6",
            "GET",
            &pixels[1],
            BROWSER,
            &[("X-Forwarded-For", "203.0.113.44"), ("Forwarded", "for=127.0.0.5")],
        )
        .await?;
    ensure!(r.status() == 200);
    // Not from the proxy: the header is the client's own claim.
    let r = s
        .visit_via(
            "127.0.0.7",
            "GET",
            &pixels[2],
            BROWSER,
            &[("X-Forwarded-For", "127.0.0.5"), ("Forwarded", "for=127.0.0.5")],
        )
        .await?;
    ensure!(r.status() == 200);
    let open = |rcpt: &str| format!("type=opened&message_id={id}&recipient={rcpt}");
    let apple = s.wait_events(&open("apple@example.test"), 1).await?[0].clone();
    ensure!(apple["ip"] == "127.0.0.5" && apple["machine"] == true, "{apple}");
    let person = s.wait_events(&open("person@example.test"), 1).await?[0].clone();
    ensure!(person["ip"] == "203.0.113.44" && person["machine"] == false, "{person}");
    let forger = s.wait_events(&open("forger@example.test"), 1).await?[0].clone();
    ensure!(forger["ip"] == "127.0.0.7" && forger["machine"] == false, "{forger}");

    // The API's per-address failure limit counts the forwarded client: one
    // address behind the proxy locked out, another still answered.
    let wrong = |client: &'static str| {
        let http = s.http;
        async move {
            let c = reqwest::Client::builder()
                .local_address("127.0.0.6".parse::<std::net::IpAddr>()?)
                .build()?;
            anyhow::Ok(
                c.get(format!("http://{http}/api/v1/accounts"))
                    .bearer_auth("hrld_wrong_key")
                    .header("X-Forwarded-For", client)
                    .send()
                    .await?
                    .status()
                    .as_u16(),
            )
        }
    };
    let mut answers = Vec::new();
    for _ in 0..35 {
        answers.push(wrong("198.51.100.20").await?);
    }
    ensure!(
        answers.first() == Some(&401) && answers.last() == Some(&429),
        "{answers:?}"
    );
    ensure!(wrong("198.51.100.21").await? == 401, "another client behind the proxy");
    Ok(())
}

/// Issue 14: a stream with a sending domain of its own is signed and
/// bounces in that domain and leaves from its own pool, so its reputation
/// is its own; no other stream writes from its domain, and a stream's
/// domain must be one its brand registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sends_in_its_own_domain_from_its_own_pool() -> anyhow::Result<()> {
    let mut s = setup_with("60s", STREAM_POOLS).await?;
    // The newsletter's subdomain and a second, unrelated domain of the
    // brand, published and verified; another brand with its own domain.
    let mut zones = mx_zones()?.publish(&s.acme_records);
    for (domain, account) in [
        ("news.acme.test", "acme"),
        ("acme-shop.test", "acme"),
        ("globex.test", "globex"),
    ] {
        if account == "globex" {
            s.server.run(&["account", "create", "globex"])?;
        }
        let added: Value =
            serde_json::from_str(
                &s.server
                    .run(&["--json", "domain", "add", domain, "--account", account])?,
            )?;
        zones = zones.publish(&added["records"]);
    }
    s.dns.replace(&zones).await?;
    for domain in ["news.acme.test", "acme-shop.test", "globex.test"] {
        s.server.run(&["domain", "verify", domain])?;
    }
    for rule in ["@news.acme.test", "@acme-shop.test"] {
        s.server.run(&["sender", "add", "--account", "acme", rule])?;
    }

    // The account's own key sets its stream's domain; a domain it did not
    // register (unknown, or another brand's) and a bad stream name are
    // refused, each with the same answer for unknown and foreign.
    let settings = |body: Value| {
        s.api
            .call("PATCH", "/api/v1/accounts/acme/settings")
            .key(&s.key)
            .json(body)
            .send()
    };
    for (body, what) in [
        (
            json!({"stream_domains": {"newsletter": "globex.test"}}),
            "another brand's domain",
        ),
        (
            json!({"stream_domains": {"newsletter": "nobody.test"}}),
            "an unknown domain",
        ),
        (
            json!({"stream_domains": {"News Letter": "news.acme.test"}}),
            "a bad stream name",
        ),
        (
            json!({"stream_domains": {"newsletter": "not a domain"}}),
            "a bad domain",
        ),
        (
            json!({"stream_domains": (0..33).map(|i| (format!("s{i}"), json!("news.acme.test"))).collect::<serde_json::Map<_, _>>()}),
            "more streams than allowed",
        ),
    ] {
        let refused = settings(body).await?;
        ensure!(refused.status == 422, "{what}: {} {}", refused.status, refused.body);
    }
    let foreign = settings(json!({"stream_domains": {"newsletter": "globex.test"}})).await?;
    let unknown = settings(json!({"stream_domains": {"newsletter": "nobody.test"}})).await?;
    ensure!(
        foreign.body["error"]["message"]
            .as_str()
            .map(|m| m.replace("globex.test", "X"))
            == unknown.body["error"]["message"]
                .as_str()
                .map(|m| m.replace("nobody.test", "X")),
        "another brand's domain is answered as an unknown one: {} / {}",
        foreign.body,
        unknown.body
    );
    let set = settings(json!({"stream_domains": {"newsletter": "News.Acme.Test"}})).await?;
    ensure!(set.status == 200, "{}", set.body);
    ensure!(
        set.body["settings"]["stream_domains"] == json!({"newsletter": "news.acme.test"}),
        "{}",
        set.body
    );

    // A newsletter written from the brand's main domain: signed by the
    // stream's domain (aligned with From for DMARC), its return path and
    // unsubscribe address there, sent from the newsletter pool.
    let send = |from: &str, to: &str, stream: &str| {
        s.send(
            json!({"from": from, "to": [to], "subject": "hello", "stream": stream, "text": "Hello"}),
            None,
        )
    };
    let news = send("news@acme.test", "reader@example.test", "newsletter").await?;
    ensure!(news.status == 202, "{}", news.body);
    let plain = send("hello@acme.test", "buyer@example.test", "transactional").await?;
    ensure!(plain.status == 202, "{}", plain.body);
    let n = s.delivered_to("reader@example.test").await?;
    let t = s.delivered_to("buyer@example.test").await?;
    ensure!(dkim_domains(&n) == ["news.acme.test"], "{:?}", dkim_domains(&n));
    ensure!(
        n.mail_from.ends_with("@bounces.news.acme.test"),
        "the newsletter bounces in its domain: {}",
        n.mail_from
    );
    let unsubscribe = header(&n, "List-Unsubscribe").context("List-Unsubscribe")?;
    ensure!(unsubscribe.contains("@bounces.news.acme.test?"), "{unsubscribe}");
    ensure!(
        n.client.ip().to_string() == "127.0.0.7" && n.helo == "news-mta.herald.test",
        "{} {}",
        n.client,
        n.helo
    );
    // Transactional mail stays in the main domain and pool.
    ensure!(dkim_domains(&t) == ["acme.test"], "{:?}", dkim_domains(&t));
    ensure!(t.mail_from.ends_with("@bounces.acme.test"), "{}", t.mail_from);
    ensure!(
        t.client.ip().to_string() == "127.0.0.8" && t.helo == "mta8.herald.test",
        "{} {}",
        t.client,
        t.helo
    );
    // Both signatures verify for a real verifier, against the DNS records.
    let verdicts = s.dkimpy(&[&n, &t])?;
    ensure!(
        verdicts.iter().all(|v| !v.is_empty() && v.iter().all(|ok| *ok)),
        "dkimpy: {verdicts:?}"
    );

    // No other stream writes from the newsletter's domain, and the
    // newsletter does not write from a domain outside its own tree: both
    // refused before anything is queued, through the API and SMTP.
    for (from, stream) in [
        ("hi@news.acme.test", "transactional"),
        ("news@acme-shop.test", "newsletter"),
    ] {
        let refused = send(from, "nobody@example.test", stream).await?;
        ensure!(
            refused.status == 422 && refused.body["error"]["code"] == "stream_domain",
            "{from} in {stream}: {} {}",
            refused.status,
            refused.body
        );
    }
    let out = s.swaks(
        "hi@news.acme.test",
        "nobody@example.test",
        &["Subject: transactional from the newsletter's domain"],
    )?;
    let transcript = String::from_utf8_lossy(&out.stdout);
    ensure!(
        !out.status.success() && transcript.contains("550 5.7.1") && transcript.contains("stream newsletter"),
        "{transcript}"
    );
    ensure!(s.count_to("nobody@example.test") == 0);

    // Taken away, the newsletter signs in its From domain again.
    let unset = settings(json!({"stream_domains": {"newsletter": ""}})).await?;
    ensure!(
        unset.status == 200 && unset.body["settings"].get("stream_domains").is_none(),
        "{}",
        unset.body
    );
    let again = send("news@acme.test", "later@example.test", "newsletter").await?;
    ensure!(again.status == 202, "{}", again.body);
    let later = s.delivered_to("later@example.test").await?;
    // Settings count from the next message on, in delivery as well.
    ensure!(dkim_domains(&later) == ["acme.test"], "{:?}", dkim_domains(&later));
    ensure!(later.mail_from.ends_with("@bounces.acme.test"), "{}", later.mail_from);

    // The operator's CLI sets it the same way, with the same checks; a
    // CLI change counts in the running server from the next message.
    let shown = s
        .server
        .run(&["account", "set", "acme", "--stream-domain", "newsletter=news.acme.test"])?;
    ensure!(shown.contains("newsletter=news.acme.test"), "{shown}");
    ensure!(
        s.server
            .run(&["account", "set", "acme", "--stream-domain", "newsletter"])
            .is_err()
    );
    ensure!(
        s.server
            .run(&["account", "set", "acme", "--stream-domain", "promotions=globex.test"])
            .is_err()
    );
    let cli = send("news@acme.test", "cli@example.test", "newsletter").await?;
    ensure!(cli.status == 202, "{}", cli.body);
    let via_cli = s.delivered_to("cli@example.test").await?;
    ensure!(
        dkim_domains(&via_cli) == ["news.acme.test"],
        "{:?}",
        dkim_domains(&via_cli)
    );
    Ok(())
}
