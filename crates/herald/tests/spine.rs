//! Issue 3, end to end: mail submitted to the real `herald` binary by real
//! clients (swaks, Python's smtplib) over STARTTLS with AUTH, delivered to a
//! scripted SMTP sink found through MX records on a real DNS server, every
//! answer classified and every step an event in the API.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_testkit::{
    Api, Behaviour, DnsServer, HeraldProcess, Phase, Rule, SmtpSink, TempStore, Zones, postgres_url, wait_for,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// swaks with exactly these arguments; returns (success, transcript).
fn swaks_raw(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new("swaks")
        .args(args)
        .output()
        .context("running swaks (apt-get install swaks)")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
}

struct Spine {
    dir: tempfile::TempDir,
    server: HeraldProcess,
    api: Api,
    submission: SocketAddr,
    submission_tls: SocketAddr,
    key: String,
    user: String,
    password: String,
    sink: SmtpSink,
    _silent: SmtpSink,
    _dns: DnsServer,
}

async fn spine(store: &TempStore) -> anyhow::Result<Spine> {
    // The remote MX on 127.0.0.2, a host that never answers on 127.0.0.3,
    // both on the port Herald delivers to.
    let sink = SmtpSink::start(
        "127.0.0.2:0",
        vec![
            Rule::new(
                Phase::Rcpt,
                "nobody@*",
                Behaviour::Reply("550 5.1.1 <nobody@example.test>: user unknown".into()),
            ),
            Rule::new(
                Phase::Rcpt,
                "later@*",
                Behaviour::Reply("451 4.3.0 try again later".into()),
            )
            .times(1),
        ],
    )
    .await?;
    let port = sink.addr().port();
    let silent = SmtpSink::start(
        &format!("127.0.0.3:{port}"),
        vec![Rule::new(Phase::Connect, "*", Behaviour::Hang)],
    )
    .await?;
    let zones = Zones::new()
        .mx("example.test", 10, "mx.example.test")
        .ip("mx.example.test", "127.0.0.2".parse()?)
        .mx("silent.test", 10, "mx.silent.test")
        .ip("mx.silent.test", "127.0.0.3".parse()?)
        .null_mx("nullmx.test");
    let dns = DnsServer::start(&zones).await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        r#"[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[storage]
url = "{url}"

[http]
listen = "127.0.0.1:0"

[smtp]
submission = ["127.0.0.1:0"]
submission_tls = ["127.0.0.1:0"]
inbound = []
[[smtp.relay_networks]]
cidr = "127.0.0.9/32"
account = "acme"

[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
max_age = "10s"
retry_schedule = ["1s"]
connect_timeout = "2s"
command_timeout = "1s"
idle_timeout = "500ms"
"#,
        data = dir.path().join("data").display(),
        url = store.url,
        dns = dns.addr(),
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(server.listening("http").await?)?;
    let submission = server.listening("smtp-submission").await?;
    let submission_tls = server.listening("smtp-submission-tls").await?;
    server.run(&["account", "create", "acme"])?;
    server.run(&["sender", "add", "--account", "acme", "@acme.test", "--override"])?;
    let cred = server.run(&["smtp-credential", "create", "--account", "acme"])?;
    let field = |name: &str| cred.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
    let user = field("username: ").context("username")?;
    let password = field("password: ").context("password")?;
    let key = server
        .run(&["api-key", "create", "--account", "acme"])?
        .trim()
        .to_owned();
    Ok(Spine {
        dir,
        server,
        api,
        submission,
        submission_tls,
        key,
        user,
        password,
        sink,
        _silent: silent,
        _dns: dns,
    })
}

impl Spine {
    /// swaks over STARTTLS with AUTH PLAIN; returns (success, transcript).
    fn swaks(&self, from: &str, to: &str, extra: &[&str]) -> anyhow::Result<(bool, String)> {
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
            &self.user,
            "--auth-password",
            &self.password,
            "--from",
            from,
            "--to",
            to,
            "--header",
            "Subject: spine test",
            "--body",
            "Hello from swaks.\n.a line starting with a dot\n",
            "--timeout",
            "30",
        ];
        args.extend_from_slice(extra);
        swaks_raw(&args)
    }

    /// The keys derived from the server's platform secret.
    fn keys(&self) -> anyhow::Result<herald_tracking::Keyring> {
        let hex = std::fs::read_to_string(self.dir.path().join("data/secret.key"))?;
        let hex = hex.trim();
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16))
            .collect::<Result<_, _>>()?;
        Ok(herald_tracking::Keyring::new(&bytes))
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

    /// Waits until a `kind` event exists for `recipient`; returns it.
    async fn event(&self, kind: &str, recipient: &str) -> anyhow::Result<Value> {
        let query = format!("type={kind}&recipient={recipient}");
        wait_for(
            &format!("a {kind} event for {recipient}"),
            Duration::from_secs(30),
            || {
                let q = query.clone();
                async move { self.events(&q).await.ok().and_then(|e| e.into_iter().next()) }
            },
        )
        .await
    }
}

async fn the_spine(store: TempStore) -> anyhow::Result<()> {
    let s = spine(&store).await?;

    // swaks: STARTTLS + AUTH, delivered through the MX record.
    let (ok, transcript) = s.swaks("news@acme.test", "user@example.test", &[])?;
    ensure!(ok, "swaks failed:\n{transcript}");
    ensure!(transcript.contains("250 2.0.0 Ok: queued as msg_"), "{transcript}");
    let got = s.sink.wait_for_messages(1, Duration::from_secs(30)).await?;
    ensure!(got[0].rcpt_to == ["user@example.test"], "{:?}", got[0].rcpt_to);
    let data = String::from_utf8_lossy(&got[0].data);
    ensure!(
        data.contains("by mta.test (Herald) with ESMTPSA"),
        "Received header: {data}"
    );
    ensure!(
        data.contains("\r\n.a line starting with a dot\r\n"),
        "dot-stuffing round trip: {data}"
    );
    let delivered = s.event("delivered", "user@example.test").await?;
    ensure!(
        delivered["mx"] == "mx.example.test" && delivered["smtp"]["code"] == 250,
        "{delivered}"
    );
    ensure!(
        delivered["source_ip"].is_string() && delivered["account"] == "acme",
        "{delivered}"
    );
    // The return path is a VERP address on the bounce domain naming this
    // message and recipient, signed with the platform secret.
    let (local, domain) = got[0].mail_from.rsplit_once('@').context("VERP address")?;
    ensure!(
        domain == "mta.test" && local.len() == 40 && local.starts_with('b'),
        "{}",
        got[0].mail_from
    );
    let verp = herald_tracking::VerpToken::parse(&s.keys()?, local).context("a VERP token of ours")?;
    ensure!(
        verp.message.as_str() == delivered["message_id"].as_str().unwrap_or_default() && verp.recipient == 0,
        "{verp:?}"
    );
    let accepted = s.event("accepted", "user@example.test").await?;
    ensure!(accepted["message_id"] == delivered["message_id"]);
    ensure!(
        accepted["id"].as_str() < delivered["id"].as_str(),
        "accepted comes first"
    );

    // Python's smtplib: STARTTLS, LOGIN, sendmail.
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port}, timeout=30)
s.starttls(context=ctx)
s.login("{user}", "{password}")
refused = s.sendmail("billing@acme.test", ["py@example.test"], "Subject: from python\r\n\r\nhello\r\n")
assert not refused, refused
s.quit()
print("sent")
"#,
        port = s.submission.port(),
        user = s.user,
        password = s.password
    );
    let py = Command::new("python3").arg("-c").arg(&script).output()?;
    ensure!(py.status.success(), "smtplib: {}", String::from_utf8_lossy(&py.stderr));
    s.event("delivered", "py@example.test").await?;

    // 550 → bounced hard; 451 then 250 → deferred, then delivered.
    let (ok, t) = s.swaks("news@acme.test", "nobody@example.test,later@example.test", &[])?;
    ensure!(ok, "{t}");
    let bounced = s.event("bounced", "nobody@example.test").await?;
    ensure!(
        bounced["bounce"]["class"] == "hard" && bounced["bounce"]["reason"] == "userunknown",
        "{bounced}"
    );
    ensure!(
        bounced["smtp"]["enhanced"] == "5.1.1" && bounced["smtp"]["phase"] == "rcpt",
        "{bounced}"
    );
    let deferred = s.event("deferred", "later@example.test").await?;
    ensure!(deferred["smtp"]["code"] == 451, "{deferred}");
    s.event("delivered", "later@example.test").await?;

    // Implicit TLS (port 465 style): TLS from the first byte, then AUTH.
    let tls_port = s.submission_tls.port().to_string();
    let (implicit_ok, implicit_t) = swaks_raw(&[
        "--server",
        "127.0.0.1",
        "--port",
        &tls_port,
        "--tlsc",
        "--auth",
        "LOGIN",
        "--auth-user",
        &s.user,
        "--auth-password",
        &s.password,
        "--from",
        "news@acme.test",
        "--to",
        "tls@example.test",
    ])?;
    ensure!(implicit_ok, "implicit TLS: {}", implicit_t);
    s.event("delivered", "tls@example.test").await?;

    // The queue, through the running server's API: a message for a host
    // that never answers waits there.
    let (ok, t) = s.swaks("news@acme.test", "q@silent.test,b@silent.test", &[])?;
    ensure!(ok, "{t}");
    let first = s.event("deferred", "q@silent.test").await?;
    let id = first["message_id"].as_str().context("message id")?.to_owned();
    let listed: Value = serde_json::from_str(&s.server.run(&["--json", "queue", "list"])?)?;
    let entry = listed["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == id.as_str()))
        .context("queued")?;
    ensure!(
        entry["recipients"][0]["status"] == "pending" && entry["recipients"][0]["attempts"] == 1,
        "{entry}"
    );
    let shown: Value = serde_json::from_str(&s.server.run(&["--json", "queue", "show", &id])?)?;
    ensure!(
        shown["sender"] == "news@acme.test" && shown["recipients"].as_array().map(Vec::len) == Some(2),
        "{shown}"
    );
    s.server.run(&["queue", "retry", &id])?;
    wait_for("a second attempt after retry", Duration::from_secs(20), || async {
        let n = s
            .events(&format!("type=deferred&message_id={id}&recipient=q@silent.test"))
            .await
            .ok()?
            .len();
        (n >= 2).then_some(())
    })
    .await?;
    s.server.run(&["queue", "bounce", &id])?;
    let bounced = s.event("bounced", "b@silent.test").await?;
    ensure!(
        bounced["bounce"]["class"] == "soft" && bounced["smtp"]["phase"] == "queue",
        "{bounced}"
    );
    let gone = s.server.cli(&["queue", "show", &id])?;
    ensure!(
        !gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("404"),
        "bounced: no longer queued"
    );

    // Purge: gone from the queue, and no bounce is reported.
    let (ok, t) = s.swaks("news@acme.test", "p@silent.test", &[])?;
    ensure!(ok, "{t}");
    let waiting = s.event("deferred", "p@silent.test").await?;
    let purged = waiting["message_id"].as_str().context("message id")?.to_owned();
    s.server.run(&["queue", "purge", &purged])?;
    let listed: Value = serde_json::from_str(&s.server.run(&["--json", "queue", "list"])?)?;
    ensure!(
        !listed["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == purged.as_str())),
        "purged: {listed}"
    );
    ensure!(
        s.events(&format!("message_id={purged}&type=bounced,expired"))
            .await?
            .is_empty(),
        "a purge is silent"
    );

    // A host that never answers: deferred, then expired after max_age.
    let (ok, t) = s.swaks("news@acme.test", "who@silent.test", &[])?;
    ensure!(ok, "{t}");
    let deferred = s.event("deferred", "who@silent.test").await?;
    ensure!(deferred["smtp"]["phase"] == "greeting", "{deferred}");
    let expired = s.event("expired", "who@silent.test").await?;
    ensure!(expired["bounce"]["reason"] == "expired", "{expired}");

    // Null MX: bounced at once, hard.
    let (ok, t) = s.swaks("news@acme.test", "x@nullmx.test", &[])?;
    ensure!(ok, "{t}");
    let null = s.event("bounced", "x@nullmx.test").await?;
    ensure!(
        null["smtp"]["enhanced"] == "5.1.10" && null["bounce"]["class"] == "hard",
        "{null}"
    );

    // Refusals, with the exact replies.
    let (ok, t) = s.swaks("ceo@other.test", "user@example.test", &[])?;
    ensure!(
        !ok && t.contains("550 5.7.1 <ceo@other.test>: Sender address not approved"),
        "unapproved sender:\n{t}"
    );
    let port = s.submission.port().to_string();
    let (wrong_ok, wrong_t) = swaks_raw(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        &s.user,
        "--auth-password",
        "wrong",
        "--from",
        "news@acme.test",
        "--to",
        "user@example.test",
    ])?;
    ensure!(!wrong_ok && wrong_t.contains("535 5.7.8"), "wrong password:\n{wrong_t}");
    let (relay_ok, relay_t) = swaks_raw(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--from",
        "news@acme.test",
        "--to",
        "user@example.test",
    ])?;
    ensure!(
        !relay_ok && relay_t.contains("554 5.7.1 <user@example.test>: Relay access denied"),
        "relay:\n{relay_t}"
    );
    // The trusted network relays without AUTH, as its bound account.
    let (trusted_ok, trusted_t) = swaks_raw(&[
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--local-interface",
        "127.0.0.9",
        "--from",
        "relay@acme.test",
        "--to",
        "relayed@example.test",
    ])?;
    ensure!(trusted_ok, "trusted relay: {}", trusted_t);
    s.event("delivered", "relayed@example.test").await?;

    // The CLI reads the same events.
    let listed = s
        .server
        .run(&["--json", "events", "--account", "acme", "--type", "bounced"])?;
    let lines: Vec<Value> = listed.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(
        lines.len() == 4 && lines.iter().all(|e| e["type"] == "bounced"),
        "{listed}"
    );
    ensure!(s.server.interrupt().await?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spine_on_sqlite() -> anyhow::Result<()> {
    the_spine(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spine_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    the_spine(TempStore::postgres(&base).await?).await
}
