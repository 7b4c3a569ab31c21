//! Issue 14, end to end through the real binary: response rules and
//! destinations from the config, `herald rules test`, and the destinations'
//! state in the API and `herald queue destinations`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_testkit::{Api, Behaviour, DnsServer, HeraldProcess, Phase, Rule, SmtpSink, Zones, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn config(data: &Path, dns: std::net::SocketAddr, port: u16) -> String {
    format!(
        r#"[[response_rules]]
name = "acme-throttle"
code = 451
text = "slow down, acme"
action = "backoff"
duration = "10m"
reason = "speeding"

[[destinations]]
name = "acme-mx"
domain = "example.test"
max_connections = 2

[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"

[smtp]
submission = []
submission_tls = []
inbound = []

[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
retry_schedule = ["1s"]
"#,
        data = data.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_destinations_from_the_config_decide_and_show() -> anyhow::Result<()> {
    let sink = SmtpSink::start(
        "127.0.0.2:0",
        vec![Rule::new(
            Phase::Rcpt,
            "throttled@*",
            Behaviour::Reply("451 4.7.1 slow down, acme".into()),
        )],
    )
    .await?;
    let dns = DnsServer::start(
        &Zones::new()
            .mx("example.test", 10, "mx.example.test")
            .ip("mx.example.test", "127.0.0.2".parse()?),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut server = HeraldProcess::start(
        Path::new(BIN),
        dir.path(),
        &config(&data, dns.addr(), sink.addr().port()),
        &[],
    )?;
    let api = Api::http(server.listening("http").await?)?;

    // The decision for an answer, and the rule that made it: the
    // configured rule first, the defaults after.
    let mine = server.run(&["rules", "test", "451 4.7.1 slow down, acme", "--domain", "example.test"])?;
    ensure!(
        mine.contains("the destination backs off for 10m")
            && mine.contains("rule: acme-throttle (from the configuration)"),
        "{mine}"
    );
    let outlook = server.run(&[
        "--json",
        "rules",
        "test",
        "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation.",
        "--phase",
        "rcpt",
        "--domain",
        "outlook.com",
    ])?;
    let outlook: Value = serde_json::from_str(&outlook)?;
    ensure!(
        outlook["rule"] == "microsoft-ip-reputation"
            && outlook["origin"] == "default"
            && outlook["provider"] == "microsoft",
        "{outlook}"
    );
    let listed = server.run(&["rules", "list"])?;
    ensure!(
        listed.find("acme-throttle") < listed.find("microsoft-ip-reputation"),
        "configured rules first:\n{listed}"
    );

    // Mail that meets the configured rule backs its destination off.
    server.run(&["account", "create", "acme"])?;
    server.run(&["account", "create", "other"])?;
    let key = server
        .run(&["api-key", "create", "--account", "acme"])?
        .trim()
        .to_owned();
    let other_key = server
        .run(&["api-key", "create", "--account", "other"])?
        .trim()
        .to_owned();
    server.run(&["sender", "add", "--account", "acme", "news@acme.test", "--override"])?;
    let sent = api
        .call("POST", "/api/v1/messages")
        .key(&key)
        .json(json!({"from": "news@acme.test", "to": ["throttled@example.test"], "subject": "hi", "text": "hello"}))
        .send()
        .await?;
    ensure!(sent.status == 202, "{}", sent.body);
    let admin = std::fs::read_to_string(data.join("bootstrap-admin-key"))?
        .trim()
        .to_owned();
    let state = wait_for("the destination backed off", Duration::from_secs(30), || {
        let call = api.call("GET", "/api/v1/queue/destinations").key(&admin).send();
        async move {
            let answer = call.await.ok()?;
            answer.body["data"]
                .as_array()?
                .iter()
                .find(|d| d["provider"] == "acme-mx" && d["state"] == "backoff")
                .cloned()
        }
    })
    .await?;
    ensure!(
        state["rule"] == "acme-throttle" && state["until"].is_string() && state["max_connections"] == 2,
        "{state}"
    );
    // The destination's state is in memory at once; the event is stored by
    // the pipeline a moment later.
    let event = wait_for("a deferred event", Duration::from_secs(30), || {
        let call = api.call("GET", "/api/v1/events?type=deferred").key(&key).send();
        async move { call.await.ok()?.body["data"].get(0).cloned() }
    })
    .await?;
    ensure!(event["reason"] == "speeding", "{event}");
    // The platform's view is the operator's: another tenant, or even the
    // sender, sees nothing.
    for k in [&key, &other_key] {
        let refused = api.call("GET", "/api/v1/queue/destinations").key(k).send().await?;
        ensure!(refused.status == 404, "{}: {}", refused.status, refused.body);
    }
    let shown = server.run(&["queue", "destinations"])?;
    ensure!(
        shown.contains("acme-mx") && shown.contains("backoff until") && shown.contains("by rule acme-throttle"),
        "{shown}"
    );
    // The queue listing filters by destination.
    let bound: Value = serde_json::from_str(&server.run(&["--json", "queue", "list", "--destination", "acme-mx"])?)?;
    ensure!(bound["data"].as_array().is_some_and(|d| d.len() == 1), "{bound}");
    let elsewhere: Value =
        serde_json::from_str(&server.run(&["--json", "queue", "list", "--destination", "google"])?)?;
    ensure!(elsewhere["data"] == json!([]), "{elsewhere}");
    // And the metrics say the same, per destination and pool.
    let metrics = wait_for("the destination's gauges", Duration::from_secs(30), || {
        let call = api.call("GET", "/metrics").send();
        async move {
            let text = call.await.ok()?.body.as_str()?.to_owned();
            text.contains(r#"herald_destination_backoff{destination="acme-mx",pool="system"} 1"#)
                .then_some(text)
        }
    })
    .await?;
    for family in [
        r#"herald_delivery_recipients_total{destination="acme-mx",pool="system",outcome="deferred"} 1"#,
        r#"herald_delivery_deferred_total{destination="acme-mx",reason="speeding"} 1"#,
        r#"herald_destination_rate_factor{destination="acme-mx",pool="system"} 0.5"#,
        "herald_delivery_attempt_duration_seconds_count",
        "herald_queue_scheduled",
    ] {
        ensure!(metrics.contains(family), "{family} missing from:\n{metrics}");
    }
    Ok(())
}

#[test]
fn a_wrong_rule_or_destination_is_refused_with_its_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (snippet, key) in [
        (
            "[[response_rules]]\nname = \"x\"\ncode = 700\naction = \"defer\"\n",
            "response_rules[0].code",
        ),
        (
            "[[response_rules]]\nname = \"x\"\naction = \"suspend\"\n",
            "response_rules[0].duration",
        ),
        (
            "[[destinations]]\nname = \"g\"\nmax_connections = 0\n",
            "destinations[0].max_connections",
        ),
        (
            "[[destinations]]\nname = \"g\"\ntls = \"maybe\"\n",
            "destinations[0].tls",
        ),
        ("[delivery]\nretry = { sad = [\"1h\"] }\n", "delivery.retry.sad"),
        (
            "[delivery]\ntls_ca_file = \"/nonexistent/ca.pem\"\n",
            "delivery.tls_ca_file",
        ),
        (
            "[[ip_pools]]\nname = \"p\"\nsources = [{ ip = \"not-an-ip\", ehlo = \"a.test\" }]\n",
            "ip_pools[0].sources[0].ip",
        ),
        (
            "[[ip_pools]]\nname = \"p\"\noverflow = \"nowhere\"\nsources = []\n",
            "ip_pools[0].overflow",
        ),
        (
            "[[ip_pools]]\nname = \"p\"\nsources = [{ ip = \"127.0.0.5\", ehlo = \"a.test\", warmup = \"none\" }]\n",
            "ip_pools[0].sources[0].warmup",
        ),
    ] {
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, snippet)?;
        let out = std::process::Command::new(BIN)
            .args(["--config", path.to_str().context("path")?, "config", "check"])
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success() && err.contains(key), "{snippet}: {err}");
    }
    Ok(())
}

/// A server whose account `acme` sends from 127.0.0.5 (its own pool, a
/// young address on a short plan) and everyone else from 127.0.0.6.
fn pools_config(data: &Path, dns: std::net::SocketAddr, port: u16) -> String {
    format!(
        r#"[[ip_pools]]
name = "acme-own"
dedicated = true
accounts = ["acme"]
sources = [{{ ip = "127.0.0.5", ehlo = "mta5.herald.test", warmup = "short" }}]

[[ip_pools]]
name = "shared"
sources = [{{ ip = "127.0.0.6", ehlo = "mta6.herald.test" }}]

[[warmup_plans]]
name = "short"
daily = [10, 100]
hourly = [3]

[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"

[smtp]
submission = ["127.0.0.1:0"]
submission_tls = []
inbound = []
[[smtp.relay_networks]]
cidr = "127.0.0.9/32"
account = "globex"

[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
retry_schedule = ["1s"]
"#,
        data = data.display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_send_from_their_pool_within_warm_up_and_quota() -> anyhow::Result<()> {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await?;
    let dns = DnsServer::start(
        &Zones::new()
            .mx("example.test", 10, "mx.example.test")
            .ip("mx.example.test", "127.0.0.2".parse()?),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut server = HeraldProcess::start(
        Path::new(BIN),
        dir.path(),
        &pools_config(&data, dns.addr(), sink.addr().port()),
        &[],
    )?;
    let api = Api::http(server.listening("http").await?)?;
    let submission = server.listening("smtp-submission").await?;
    for name in ["acme", "globex"] {
        server.run(&["account", "create", name])?;
        server.run(&[
            "sender",
            "add",
            "--account",
            name,
            &format!("news@{name}.test"),
            "--override",
        ])?;
    }
    server.run(&["account", "create", "acme-eu", "--parent", "acme"])?;
    let key = server
        .run(&["api-key", "create", "--account", "acme"])?
        .trim()
        .to_owned();
    let sub_key = server
        .run(&["api-key", "create", "--account", "acme-eu"])?
        .trim()
        .to_owned();
    let send = |key: String, to: Vec<String>| {
        let call = api
            .call("POST", "/api/v1/messages")
            .key(&key)
            .json(json!({"from": "news@acme.test", "to": to, "subject": "hi", "text": "hello"}));
        async move { call.send().await }
    };

    // Pool and EHLO: acme's mail leaves from 127.0.0.5 saying
    // mta5.herald.test; globex's (relayed over SMTP) from 127.0.0.6.
    for n in 0..2 {
        let answer = send(key.clone(), vec![format!("a{n}@example.test")]).await?;
        ensure!(answer.status == 202, "{}", answer.body);
    }
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import smtplib,sys; s=smtplib.SMTP('127.0.0.1', int(sys.argv[1]), source_address=('127.0.0.9', 0)); \
             s.sendmail('news@globex.test', ['g@example.test'], b'Subject: g\\r\\nFrom: news@globex.test\\r\\n\\r\\nhi\\r\\n'); s.quit()",
            &submission.port().to_string(),
        ])
        .output()?;
    ensure!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let got = sink.wait_for_messages(3, Duration::from_secs(30)).await?;
    for m in &got {
        let (ip, helo) = if m.rcpt_to[0].starts_with('g') {
            ("127.0.0.6", "mta6.herald.test")
        } else {
            ("127.0.0.5", "mta5.herald.test")
        };
        ensure!(m.client.ip().to_string() == ip && m.helo == helo, "{m:?}");
    }

    // Warm-up: three an hour from the young address; a message of two
    // recipients after two sent waits (a dedicated pool, no overflow).
    let answer = send(key.clone(), vec!["a2@example.test".into(), "a3@example.test".into()]).await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let waiting_id = answer.body["id"].as_str().context("id")?.to_owned();
    let admin = std::fs::read_to_string(data.join("bootstrap-admin-key"))?
        .trim()
        .to_owned();
    // A job is never split by a cap: two recipients, one place left this
    // hour, so the message waits whole for the next hour, untried.
    let waiting = wait_for("the over-cap message to wait", Duration::from_secs(30), || {
        let call = api
            .call("GET", &format!("/api/v1/queue/{waiting_id}"))
            .key(&admin)
            .send();
        async move {
            let answer = call.await.ok()?;
            let rcpts = answer.body["recipients"].as_array()?.clone();
            rcpts
                .iter()
                .all(|r| r["status"] == "pending" && r["attempts"] == 0 && r["next_attempt"].is_string())
                .then_some(rcpts)
        }
    })
    .await?;
    let next_hour = {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        time::OffsetDateTime::from_unix_timestamp(now - now.rem_euclid(3600) + 3600)?
    };
    let due = time::OffsetDateTime::parse(
        waiting[0]["next_attempt"].as_str().context("next_attempt")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    ensure!(due == next_hour, "waits for the next hour: {due} vs {next_hour}");
    let status = api.call("GET", "/api/v1/warmup").key(&admin).send().await?;
    let young = status.body["data"]
        .as_array()
        .and_then(|a| a.iter().find(|w| w["key"] == "ip:127.0.0.5").cloned())
        .context("the young address in /api/v1/warmup")?;
    ensure!(
        young["sent_today"] == 2
            && young["daily_cap"] == 10
            && young["hourly_cap"] == 3
            && young["headroom_today"] == 8
            && young["day"] == 1,
        "{young}"
    );
    ensure!(sink.messages().len() == 3, "nothing over the cap was sent");
    let shown = server.run(&["queue", "warmup"])?;
    ensure!(
        shown.contains("ip:127.0.0.5") && shown.contains("plan short day 1/2"),
        "{shown}"
    );
    let refused = api.call("GET", "/api/v1/warmup").key(&key).send().await?;
    ensure!(refused.status == 404, "a tenant's key: {}", refused.status);

    // Quota: set by the master for its sub (or the operator), never by the
    // account itself.
    let own = api
        .call("PATCH", "/api/v1/accounts/acme-eu/settings")
        .key(&sub_key)
        .json(json!({"daily_quota": 0}))
        .send()
        .await?;
    ensure!(own.status == 403, "{}: {}", own.status, own.body);
    let by_master = api
        .call("PATCH", "/api/v1/accounts/acme-eu/settings")
        .key(&key)
        .json(json!({"daily_quota": 3}))
        .send()
        .await?;
    ensure!(
        by_master.status == 200 && by_master.body["settings"]["daily_quota"] == 3,
        "{}",
        by_master.body
    );
    server.run(&["sender", "add", "--account", "acme-eu", "news@acme.test", "--override"])?;
    let first = send(
        sub_key.clone(),
        vec!["q0@example.test".into(), "q1@example.test".into()],
    )
    .await?;
    ensure!(first.status == 202, "{}", first.body);
    let over = send(
        sub_key.clone(),
        vec!["q2@example.test".into(), "q3@example.test".into()],
    )
    .await?;
    ensure!(
        over.status == 429 && over.body["error"]["code"] == "over_limit" && over.header("retry-after").is_some(),
        "{}: {}",
        over.status,
        over.body
    );
    let last = send(sub_key.clone(), vec!["q2@example.test".into()]).await?;
    ensure!(last.status == 202, "the quota's last recipient: {}", last.body);

    // The rate, over SMTP: the second message within the minute is refused
    // with 452 4.4.5; the client keeps it and tries later.
    server.run(&["account", "set", "globex", "--rate", "1"])?;
    let script = "import smtplib,sys\n\
        s=smtplib.SMTP('127.0.0.1', int(sys.argv[1]), source_address=('127.0.0.9', 0))\n\
        s.sendmail('news@globex.test', ['r1@example.test'], b'Subject: r\\r\\nFrom: news@globex.test\\r\\n\\r\\nhi\\r\\n')\n\
        try:\n    s.sendmail('news@globex.test', ['r2@example.test'], b'Subject: r\\r\\nFrom: news@globex.test\\r\\n\\r\\nhi\\r\\n')\n\
        except smtplib.SMTPDataError as e:\n    print(e.smtp_code, e.smtp_error.decode())\n";
    let py = std::process::Command::new("python3")
        .args(["-c", script, &submission.port().to_string()])
        .output()?;
    let out = String::from_utf8_lossy(&py.stdout);
    ensure!(
        py.status.success() && out.starts_with("452 4.4.5") && out.contains("rate of 1"),
        "{out} {}",
        String::from_utf8_lossy(&py.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mta_sts_from_the_config_and_its_tls_report() -> anyhow::Result<()> {
    use base64::Engine;
    use herald_testkit::{HttpsServer, SinkOptions, TestCa};
    let ca = TestCa::new()?;
    let https = HttpsServer::start("127.0.0.40:0", &ca.issue(&["mta-sts.good.test"])?).await?;
    https.set(
        "mta-sts.good.test",
        "/.well-known/mta-sts.txt",
        (
            200,
            "text/plain".into(),
            "version: STSv1\nmode: enforce\nmx: mx.good.test\nmax_age: 86400\n".into(),
        ),
    );
    let sink = SmtpSink::start_opts(
        "127.0.0.41:0",
        vec![],
        SinkOptions {
            starttls: true,
            identity: Some(ca.issue(&["mx.good.test"])?),
            ..SinkOptions::default()
        },
    )
    .await?;
    let dns = DnsServer::start(
        &Zones::new()
            .mx("good.test", 10, "mx.good.test")
            .ip("mx.good.test", "127.0.0.41".parse()?)
            .ip("mta-sts.good.test", "127.0.0.40".parse()?)
            .txt("_mta-sts.good.test", "v=STSv1; id=1"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(ca.cert())
    );
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, pem)?;
    let data = dir.path().join("data");
    let config = format!(
        r#"[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[http]
listen = "127.0.0.1:0"
outbound_allow = ["127.0.0.0/8"]

[smtp]
submission = []
submission_tls = []
inbound = []

[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
retry_schedule = ["1s"]
mta_sts_port = {sts}
tls_ca_file = "{ca}"
"#,
        data = data.display(),
        dns = dns.addr(),
        port = sink.addr().port(),
        sts = https.addr().port(),
        ca = ca_file.display(),
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(server.listening("http").await?)?;
    server.run(&["account", "create", "acme"])?;
    let key = server
        .run(&["api-key", "create", "--account", "acme"])?
        .trim()
        .to_owned();
    server.run(&["sender", "add", "--account", "acme", "news@acme.test", "--override"])?;
    let sent = api
        .call("POST", "/api/v1/messages")
        .key(&key)
        .json(json!({"from": "news@acme.test", "to": ["x@good.test"], "subject": "hi", "text": "hello"}))
        .send()
        .await?;
    ensure!(sent.status == 202, "{}", sent.body);
    let got = sink.wait_for_messages(1, Duration::from_secs(30)).await?;
    ensure!(got[0].tls, "over TLS");
    ensure!(https.hits("mta-sts.good.test") == 1, "the policy was fetched");
    let admin = std::fs::read_to_string(data.join("bootstrap-admin-key"))?
        .trim()
        .to_owned();
    let report = api.call("GET", "/api/v1/tls-reports").key(&admin).send().await?;
    let policy = report.body["policies"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["policy"]["policy-domain"] == "good.test").cloned())
        .with_context(|| format!("good.test in {}", report.body))?;
    ensure!(
        policy["policy"]["policy-type"] == "sts"
            && policy["summary"]["total-successful-session-count"] == 1
            && policy["policy"]["mx-host"] == json!(["mx.good.test"]),
        "{policy}"
    );
    let tenant = api.call("GET", "/api/v1/tls-reports").key(&key).send().await?;
    ensure!(tenant.status == 404, "a tenant's key: {}", tenant.status);
    let bad_day = api
        .call("GET", "/api/v1/tls-reports?day=yesterday")
        .key(&admin)
        .send()
        .await?;
    ensure!(bad_day.status == 422, "{}", bad_day.body);
    // The cache survives in the data folder.
    ensure!(data.join("mta-sts.json").exists());
    Ok(())
}
