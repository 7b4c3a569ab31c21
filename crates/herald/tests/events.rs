//! Issue 6 end to end through the real binary, on SQLite and PostgreSQL:
//! the events API's filters, stable cursor and CSV export, and the CLI's
//! (with --follow); stats and their rates; reputation and rate alerts;
//! webhooks: events posted
//! signed (checked by the README's Python snippet), in order, batched or
//! single; a failing, a hanging and a recovering receiver; a restart of
//! Herald in the middle loses nothing; a URL failing too long is disabled
//! with an `alert` event and resumes when enabled.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_testkit::{
    Behaviour, Harness, Mode, Options, Phase, Post, Receiver, Rule, TempStore, WAIT, postgres_url, wait_for,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

struct Setup {
    h: Harness,
}

impl std::ops::Deref for Setup {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

async fn setup(store: TempStore, give_up_after: &str) -> anyhow::Result<Setup> {
    let mut o = Options::new(store)?;
    o.sink_rules = vec![Rule::new(
        Phase::Rcpt,
        "gone@*",
        Behaviour::Reply("550 5.1.1 No such user".to_owned()),
    )];
    o.zones = Harness::zones()?.mx("other.test", 10, "mx.example.test");
    o.extra = format!(
        r#"[webhooks]
timeout = "1s"
retry_initial = "100ms"
retry_max = "400ms"
give_up_after = "{give_up_after}"

[alerts]
check_interval = "300ms"
min_volume = 5
"#
    );
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    Ok(Setup { h })
}

impl Setup {
    async fn send(&self, to: &str) -> anyhow::Result<String> {
        self.send_with(json!({"from": "news@acme.test", "to": [to], "subject": "Hi", "text": "Hello"}))
            .await
    }

    async fn send_with(&self, message: Value) -> anyhow::Result<String> {
        self.h.send(message).await
    }

    async fn webhook(&self, body: Value) -> anyhow::Result<Value> {
        let a = self
            .api
            .call("POST", "/api/v1/webhooks")
            .key(&self.key)
            .json(body)
            .send()
            .await?;
        ensure!(a.status == 201, "{}", a.body);
        Ok(a.body)
    }

    /// Every event of the account, through the API.
    async fn all_events(&self) -> anyhow::Result<Vec<Value>> {
        self.events("limit=1000").await
    }

    async fn restart(self) -> anyhow::Result<Self> {
        Ok(Self {
            h: self.h.restart().await?,
        })
    }
}

/// The events in the posts a receiver took, in order.
fn events_of(posts: &[Post]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for p in posts {
        match serde_json::from_slice::<Value>(&p.body)? {
            Value::Array(batch) => out.extend(batch),
            one => out.push(one),
        }
    }
    Ok(out)
}

/// Checks each post's signature with the Python snippet from the README.
fn verify_with_readme(secret: &str, posts: &[Post], dir: &Path) -> anyhow::Result<()> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))?;
    let snippet = readme
        .split("<!-- webhook-verify -->")
        .nth(1)
        .and_then(|rest| rest.split("```python").nth(1))
        .and_then(|rest| rest.split("```").next())
        .context("the README's verification snippet")?;
    ensure!(snippet.trim().lines().count() <= 10, "the snippet is short: {snippet}");
    let script = format!(
        "{snippet}\nimport os, sys\nbody = open(sys.argv[1], 'rb').read()\nprint(verify(os.environ['SECRET'], os.environ['SIG'], body))\nprint(verify(os.environ['SECRET'], os.environ['SIG'], body + b' '))\n"
    );
    for (i, p) in posts.iter().enumerate() {
        let file = dir.join(format!("post-{i}.json"));
        std::fs::write(&file, &p.body)?;
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(&file)
            .env("SECRET", secret)
            .env("SIG", p.headers.get("herald-signature").context("signed")?)
            .output()?;
        ensure!(
            String::from_utf8_lossy(&out.stdout) == "True\nFalse\n",
            "post {i}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

async fn events_reach_webhooks(store: TempStore) -> anyhow::Result<()> {
    let s = setup(store, "1h").await?;
    let single = Receiver::start(Mode::Ok).await?;
    let batched = Receiver::start(Mode::Fail(500)).await?;
    let one = s
        .webhook(json!({"url": single.url("/one"), "events": ["delivered"]}))
        .await?;
    let many = s
        .webhook(json!({"url": batched.url("/many"), "batch_size": 10}))
        .await?;
    let secret = one["secret"].as_str().context("a secret")?.to_owned();
    ensure!(secret.starts_with("whsec_") && many["secret"] != one["secret"]);
    let bad = s
        .api
        .call("POST", "/api/v1/webhooks")
        .key(&s.key)
        .json(json!({"url": "ftp://x", "events": ["delivered"]}))
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);
    // Only public addresses (and, on this server, loopback) may be
    // called: private, link-local and mapped forms are refused when
    // registered, before anything is sent.
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://100.64.0.1/hook",
    ] {
        let refused = s
            .api
            .call("POST", "/api/v1/webhooks")
            .key(&s.key)
            .json(json!({"url": url}))
            .send()
            .await?;
        ensure!(
            refused.status == 422
                && refused.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not on the public internet")),
            "{url}: {}",
            refused.body
        );
    }

    for n in 0..3 {
        s.send(&format!("r{n}@example.test")).await?;
    }
    let posts = wait_for("3 delivered events at the single receiver", WAIT, || {
        let p = single.posts();
        async move { (p.len() >= 3).then_some(p) }
    })
    .await?;
    let got = events_of(&posts)?;
    ensure!(
        got.iter()
            .all(|e| e.is_object() && e["type"] == "delivered" && e["account"] == "acme"),
        "single events, only the type asked for: {got:?}"
    );
    verify_with_readme(&secret, &posts, s.dir.path())?;

    // The batched receiver fails: the webhook says so, and keeps trying.
    let id = many["id"].as_str().context("id")?.to_owned();
    let state = wait_for("the failure recorded", WAIT, || async {
        s.get(&format!("/api/v1/webhooks/{id}"))
            .await
            .ok()
            .filter(|w| w["failing_since"].is_string() && batched.attempts() >= 2)
    })
    .await?;
    ensure!(
        state["last_error"] == "HTTP 5xx" && state["status"] == "active",
        "{state}"
    );

    // A hanging receiver holds up nothing else: mail is delivered, the
    // other webhook is served.
    single.set_mode(Mode::Hang);
    s.send("during-hang@example.test").await?;
    s.sink
        .wait_for_messages(4, WAIT)
        .await
        .context("mail goes out while a receiver hangs")?;
    wait_for("the hanging receiver tried", WAIT, || {
        let n = single.attempts();
        async move { (n >= 5).then_some(()) }
    })
    .await?;

    // Restart Herald while the batched receiver fails; it recovers while
    // Herald is down. Nothing is lost.
    let s = s.restart().await?;
    batched.set_mode(Mode::Ok);
    single.set_mode(Mode::Ok);
    let stored = s.all_events().await?;
    let expected: HashSet<String> = stored
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    ensure!(expected.len() >= 8, "accepted and delivered for 4 messages: {stored:?}");
    let posted = wait_for("every event at the batched receiver", WAIT, || {
        let p = batched.posts();
        let expected = &expected;
        async move {
            let got: HashSet<String> = events_of(&p)
                .ok()?
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect();
            expected.is_subset(&got).then_some(p)
        }
    })
    .await?;
    let in_order = events_of(&posted)?;
    let ids: Vec<&str> = in_order.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut first_seen = Vec::new();
    for id in &ids {
        if !first_seen.contains(id) {
            first_seen.push(*id);
        }
    }
    let stored_order: Vec<&str> = stored.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut sorted = first_seen.clone();
    sorted.sort_by_key(|id| stored_order.iter().position(|s| s == id));
    ensure!(first_seen == sorted, "posted in the order stored");
    ensure!(
        posted
            .iter()
            .all(|p| matches!(serde_json::from_slice::<Value>(&p.body), Ok(Value::Array(a)) if a.len() <= 10)),
        "batches of at most 10"
    );
    wait_for("the delivered event sent during the hang", WAIT, || {
        let got = events_of(&single.posts()).unwrap_or_default();
        async move {
            got.iter()
                .any(|e| e["recipient"] == "during-hang@example.test")
                .then_some(())
        }
    })
    .await?;
    let state = s.get(&format!("/api/v1/webhooks/{id}")).await?;
    ensure!(
        state["failing_since"].is_null() && state["last_error"].is_null(),
        "{state}"
    );
    ensure!(s.h.server.interrupt().await?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_webhooks_signed_in_order_across_a_restart_on_sqlite() -> anyhow::Result<()> {
    events_reach_webhooks(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_webhooks_signed_in_order_across_a_restart_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    events_reach_webhooks(TempStore::postgres(&base).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_too_long_is_disabled_with_an_alert_on_sqlite() -> anyhow::Result<()> {
    failing_too_long(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_too_long_is_disabled_with_an_alert_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    failing_too_long(TempStore::postgres(&base).await?).await
}

async fn failing_too_long(store: TempStore) -> anyhow::Result<()> {
    let s = setup(store, "2s").await?;
    let dead = Receiver::start(Mode::Fail(503)).await?;
    let watcher = Receiver::start(Mode::Ok).await?;
    let hook = s.webhook(json!({"url": dead.url("/dead")})).await?;
    s.webhook(json!({"url": watcher.url("/alerts"), "events": ["alert"]}))
        .await?;
    let id = hook["id"].as_str().context("id")?.to_owned();
    s.send("someone@example.test").await?;
    let state = wait_for("the failing webhook disabled", WAIT, || async {
        s.get(&format!("/api/v1/webhooks/{id}"))
            .await
            .ok()
            .filter(|w| w["status"] == "disabled")
    })
    .await?;
    ensure!(state["last_error"] == "HTTP 5xx", "{state}");
    let alerts = wait_for("the alert at the other webhook", WAIT, || {
        let got = events_of(&watcher.posts()).unwrap_or_default();
        async move { (!got.is_empty()).then_some(got) }
    })
    .await?;
    ensure!(
        alerts[0]["type"] == "alert"
            && alerts[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains(&id) && r.contains("/dead")),
        "{alerts:?}"
    );
    // Disabled: no more tries.
    let tried = dead.attempts();
    s.send("later@example.test").await?;
    s.sink.wait_for_messages(2, WAIT).await?;
    ensure!(dead.attempts() == tried, "a disabled webhook is left alone");

    // Enabled again, it resumes where it stopped: owed everything since.
    dead.set_mode(Mode::Ok);
    let enabled = s
        .api
        .call("POST", &format!("/api/v1/webhooks/{id}/enable"))
        .key(&s.key)
        .send()
        .await?;
    ensure!(
        enabled.status == 200 && enabled.body["status"] == "active",
        "{}",
        enabled.body
    );
    wait_for("the owed events after enabling", WAIT, || {
        let got = events_of(&dead.posts()).unwrap_or_default();
        async move {
            (got.iter().any(|e| e["recipient"] == "someone@example.test")
                && got.iter().any(|e| e["recipient"] == "later@example.test"))
            .then_some(())
        }
    })
    .await?;
    let listed = s.get("/api/v1/webhooks").await?;
    ensure!(
        listed["data"]
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|w| w["secret"].is_null())),
        "secrets are shown only once: {listed}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_page_stably_and_export_as_csv_on_sqlite() -> anyhow::Result<()> {
    events_filter_page_and_export(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_filter_page_stably_and_export_as_csv_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    events_filter_page_and_export(TempStore::postgres(&base).await?).await
}

async fn events_filter_page_and_export(store: TempStore) -> anyhow::Result<()> {
    let s = setup(store, "1h").await?;
    // A recipient a spreadsheet would read as a formula (a valid address).
    for (n, tag, order) in [(0, "spring", "1"), (1, "spring", "2"), (2, "autumn", "3")] {
        let to = if n == 1 {
            "=p1@example.test".to_owned()
        } else {
            format!("p{n}@example.test")
        };
        s.send_with(json!({"from": "news@acme.test", "to": [to], "subject": "Hi",
            "text": "Hello, \"you\", again", "tags": [tag], "metadata": {"order": order}}))
            .await?;
    }
    wait_for("3 deliveries", WAIT, || async {
        s.get("/api/v1/events?type=delivered")
            .await
            .ok()
            .filter(|p| p["data"].as_array().is_some_and(|d| d.len() == 3))
    })
    .await?;

    // Filters: tag, metadata key=value.
    let spring = s.get("/api/v1/events?tag=spring&type=accepted").await?;
    ensure!(spring["data"].as_array().map(Vec::len) == Some(2), "{spring}");
    let order = s.get("/api/v1/events?metadata=order%3D3").await?;
    let order = order["data"].as_array().context("data")?;
    ensure!(
        order.len() == 2 && order.iter().all(|e| e["recipient"] == "p2@example.test"),
        "{order:?}"
    );
    let bad = s
        .api
        .call("GET", "/api/v1/events?metadata=order")
        .key(&s.key)
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);

    // Pages of 2 by cursor cover every event once, in order; the last
    // cursor then yields only what arrives later.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = s.get(&format!("/api/v1/events?limit=2&cursor={cursor}")).await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        cursor = page["next_cursor"].as_str().context("a cursor")?.to_owned();
        if data.is_empty() {
            break;
        }
        seen.extend(data.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)));
    }
    let all = s.all_events().await?;
    let ids: Vec<String> = all.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect();
    ensure!(seen == ids && ids.len() == 6, "{seen:?} vs {ids:?}");
    s.send("late@example.test").await?;
    let later = wait_for("the late events after the cursor", WAIT, || {
        let path = format!("/api/v1/events?cursor={cursor}&type=delivered");
        let s = &s;
        async move {
            s.get(&path)
                .await
                .ok()
                .filter(|p| p["data"].as_array().is_some_and(|d| !d.is_empty()))
        }
    })
    .await?;
    ensure!(later["data"][0]["recipient"] == "late@example.test", "{later}");

    // CSV: the API export and the CLI agree, with quoting.
    let csv = s
        .api
        .call("GET", "/api/v1/events/export?tag=spring")
        .key(&s.key)
        .send()
        .await?;
    ensure!(csv.status == 200, "{}", csv.body);
    let text = csv.body.as_str().context("CSV text")?.to_owned();
    let lines: Vec<&str> = text.lines().collect();
    ensure!(
        lines[0].starts_with("id,type,at,account,") && lines.len() == 5,
        "{text}"
    );
    ensure!(lines.iter().skip(1).all(|l| l.contains(",spring,order=")), "{text}");
    ensure!(
        text.ends_with("\r\n") && text.matches("\r\n").count() == 5,
        "RFC 4180 line ends"
    );
    // Python's csv module reads 23 cells per row; the recipient that
    // starts with = is written with a ' before it, and no cell starts with
    // what a spreadsheet would run.
    let rows = herald_testkit::python_csv(&text)?;
    ensure!(rows.len() == 5 && rows.iter().all(|r| r.len() == 23), "{rows:?}");
    ensure!(rows.iter().any(|r| r[6] == "'=p1@example.test"), "{rows:?}");
    ensure!(
        rows.iter()
            .flatten()
            .all(|c| !c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
        "{rows:?}"
    );
    let from_cli = s
        .server
        .run(&["events", "--account", "acme", "--tag", "spring", "--csv"])?;
    ensure!(from_cli == text, "CLI:\n{from_cli}\nAPI:\n{text}");

    // `herald events --follow` prints events as they are stored.
    let mut follow = Command::new(BIN)
        .arg("--config")
        .arg(s.server.config_path())
        .args([
            "--json",
            "events",
            "--account",
            "acme",
            "--type",
            "delivered",
            "--follow",
        ])
        .current_dir(s.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = follow.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    s.send("followed@example.test").await?;
    let mut printed = Vec::new();
    let seen = wait_for("the new delivery printed by --follow", WAIT, || {
        printed.extend(rx.try_iter());
        let found = printed
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["recipient"] == "followed@example.test");
        async move { found }
    })
    .await;
    follow.kill()?;
    follow.wait()?;
    ensure!(seen?["type"] == "delivered");
    Ok(())
}

async fn stats_count_what_happened(store: TempStore) -> anyhow::Result<()> {
    let s = setup(store, "1h").await?;
    s.server.run(&["account", "create", "acme-news", "--parent", "acme"])?;
    s.server
        .run(&["sender", "add", "--account", "acme-news", "@acme.test", "--override"])?;
    let sub_key = s.server.run(&["api-key", "create", "--account", "acme-news"])?;
    for to in ["a@example.test", "b@example.test", "c@other.test", "gone@other.test"] {
        s.send(to).await?;
    }
    let answer = s
        .api
        .call("POST", "/api/v1/messages")
        .key(sub_key.trim())
        .json(json!({"from": "news@acme.test", "to": ["d@example.test"], "subject": "Hi", "text": "Hello"}))
        .send()
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let day = wait_for("every outcome counted", WAIT, || async {
        s.get("/api/v1/stats")
            .await
            .ok()
            .filter(|st| st["data"][0]["counts"]["delivered"] == 4 && st["data"][0]["counts"]["bounced_hard"] == 1)
    })
    .await?;
    let row = &day["data"][0];
    ensure!(
        day["by"] == "day" && row["counts"]["accepted"] == 5,
        "the master sees its sub's too: {day}"
    );
    ensure!(
        (row["rates"]["delivery_rate"].as_f64().unwrap_or_default() - 0.8).abs() < 1e-9
            && (row["rates"]["bounce_rate"].as_f64().unwrap_or_default() - 0.2).abs() < 1e-9,
        "{row}"
    );
    let by_domain = s.get("/api/v1/stats?by=hour&group=receiving_domain").await?;
    let groups: Vec<(String, i64)> = by_domain["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["group"].as_str().unwrap_or("").to_owned(),
                r["counts"]["delivered"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    ensure!(
        groups == [("example.test".to_owned(), 3), ("other.test".to_owned(), 1)],
        "{by_domain}"
    );
    let by_account = s.get("/api/v1/stats?group=account").await?;
    let names: Vec<&str> = by_account["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["group"].as_str())
        .collect();
    ensure!(names.contains(&"acme") && names.contains(&"acme-news"), "{by_account}");
    let bad = s
        .api
        .call("GET", "/api/v1/stats?group=planet")
        .key(&s.key)
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);
    // The sub sees only its own.
    let sub_stats = s.api.call("GET", "/api/v1/stats").key(sub_key.trim()).send().await?;
    ensure!(
        sub_stats.body["data"][0]["counts"]["accepted"] == 1,
        "{}",
        sub_stats.body
    );
    // The CLI says the same.
    let from_cli: Value = serde_json::from_str(&s.server.run(&["--json", "stats", "--account", "acme"])?)?;
    ensure!(from_cli["data"][0]["counts"] == row["counts"], "{from_cli}");
    let table = s
        .server
        .run(&["stats", "--account", "acme", "--group", "ip", "--by", "hour"])?;
    ensure!(table.contains("127.0.0."), "sending IPs: {table}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_happened_on_sqlite() -> anyhow::Result<()> {
    stats_count_what_happened(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_happened_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    stats_count_what_happened(TempStore::postgres(&base).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_over_thresholds_alert_and_lower_the_reputation_on_sqlite() -> anyhow::Result<()> {
    alerts_and_reputation(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_over_thresholds_alert_and_lower_the_reputation_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    alerts_and_reputation(TempStore::postgres(&base).await?).await
}

async fn alerts_and_reputation(store: TempStore) -> anyhow::Result<()> {
    let s = setup(store, "1h").await?;
    let watcher = Receiver::start(Mode::Ok).await?;
    s.webhook(json!({"url": watcher.url("/alerts"), "events": ["alert"]}))
        .await?;
    // A clean start: nothing sent, nothing to alert; no sending domain yet.
    let clean = s.get("/api/v1/reputation").await?;
    ensure!(clean["account"] == "acme", "{clean}");
    ensure!(
        clean["reasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["factor"] == "authentication" && x["impact"] == 20)),
        "{clean}"
    );
    // 1 bounce in 5 is 20%, over the default 2%: one alert, posted.
    for to in [
        "a@example.test",
        "b@example.test",
        "c@example.test",
        "d@example.test",
        "gone@other.test",
    ] {
        s.send(to).await?;
    }
    let alerts = wait_for("a bounce-rate alert", WAIT, || async {
        s.get("/api/v1/events?type=alert")
            .await
            .ok()
            .and_then(|p| p["data"].as_array().cloned())
            .filter(|a| !a.is_empty())
    })
    .await?;
    ensure!(
        alerts[0]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("bounce_rate: ") && r.contains("20.00%") && r.contains("2.00%")),
        "{alerts:?}"
    );
    wait_for("the alert posted to the webhook", WAIT, || {
        let got = events_of(&watcher.posts()).unwrap_or_default();
        async move { got.iter().any(|e| e["type"] == "alert").then_some(()) }
    })
    .await?;
    let reputation = s.get("/api/v1/reputation").await?;
    let reasons = reputation["reasons"].as_array().context("reasons")?;
    let bounce = reasons
        .iter()
        .find(|r| r["factor"] == "bounce_rate")
        .context("the bounce rate weighs")?;
    ensure!(
        (bounce["value"].as_f64().unwrap_or_default() - 0.2).abs() < 1e-9 && bounce["impact"] == 30,
        "{bounce}"
    );
    // No sending domain (20), 20% bounces (capped at 30), 80% accepted
    // ((95% - 80%) * 100 = 15).
    ensure!(reputation["score"] == 100 - 20 - 30 - 15, "{reputation}");
    ensure!(
        reputation["ips"].as_array().is_some_and(|ips| !ips.is_empty()
            && ips
                .iter()
                .all(|ip| ip["ip"].as_str().is_some_and(|a| a.starts_with("127.")))),
        "{reputation}"
    );
    // A threshold of 50% is not crossed by 20%; once a day per kind anyway.
    s.server.run(&["account", "set", "acme", "--bounce-alert", "50"])?;
    let shown: Value = serde_json::from_str(&s.server.run(&["--json", "account", "show", "acme"])?)?;
    ensure!(shown["settings"]["bounce_alert_percent"] == 50.0, "{shown}");
    let bad = s.server.cli(&["account", "set", "acme", "--complaint-alert", "0"])?;
    ensure!(!bad.status.success(), "0% is refused");
    // Another address: gone@other.test is suppressed now, and dropped.
    s.send("gone@example.test").await?;
    wait_for("another bounce counted", WAIT, || async {
        s.get("/api/v1/stats")
            .await
            .ok()
            .filter(|st| st["data"][0]["counts"]["bounced_hard"] == 2)
    })
    .await?;
    // Under the new threshold the condition has ended: one "resolved"
    // alert, told to the webhook too.
    let alerts = wait_for("the bounce-rate alert resolved", WAIT, || async {
        s.get("/api/v1/events?type=alert")
            .await
            .ok()
            .and_then(|p| p["data"].as_array().cloned())
            .filter(|a| a.len() >= 2)
    })
    .await?;
    ensure!(
        alerts[1]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("bounce_rate resolved: ")),
        "{alerts:?}"
    );
    let told = |posts: &[Post]| -> Vec<String> {
        events_of(posts)
            .unwrap_or_default()
            .iter()
            .filter(|e| e["type"] == "alert")
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    wait_for("the resolution posted", WAIT, || {
        let got = told(&watcher.posts());
        async move {
            got.iter()
                .any(|r| r.starts_with("bounce_rate resolved: "))
                .then_some(())
        }
    })
    .await?;
    // Nothing to wait for when nothing should happen: give the checker
    // (every 300 ms) three turns, then look: no new alert either way.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let alerts = s.get("/api/v1/events?type=alert").await?;
    ensure!(
        alerts["data"].as_array().map(Vec::len) == Some(2),
        "one alert and its resolution only: {alerts}"
    );
    let posted = told(&watcher.posts());
    ensure!(posted.len() == 2, "{posted:?}");
    Ok(())
}
