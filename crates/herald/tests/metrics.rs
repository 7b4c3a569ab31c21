//! Issue 18, end to end: `/metrics` through the real binary after real
//! traffic on every path (SMTP submission and relay by swaks, the send
//! API, delivery to a scripted MX, the inbound MX taking a DMARC report,
//! webhook posts), its listener and token, and its size after a flood of
//! requests with made-up methods and paths.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, HeraldProcess, Mode, Options, Receiver, TempStore, WAIT, wait_for};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// One scraped exposition: every sample by its series (`name{labels}` as
/// rendered), and the `# TYPE` of every family.
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: String) -> anyhow::Result<Self> {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').context("a TYPE line")?;
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').with_context(|| format!("a sample: {line}"))?;
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().with_context(|| format!("a value: {line}"))?,
            };
            samples.insert(series.to_owned(), value);
        }
        Ok(Self { text, samples, types })
    }

    /// The samples of `name` whose labels include every one of `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .collect()
    }

    /// The sum of [`Scrape::find`]; an error when no series matched.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
        let found = self.find(name, labels);
        ensure!(!found.is_empty(), "no {name} with {labels:?} in:\n{}", self.text);
        Ok(found.iter().sum())
    }
}

async fn scrape(h: &Harness) -> anyhow::Result<Scrape> {
    let a = h.api.call("GET", "/metrics").send().await?;
    ensure!(a.status == 200, "{}", a.body);
    Scrape::parse(a.body.as_str().context("text")?.to_owned())
}

fn swaks(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new("swaks")
        .args(args)
        .output()
        .context("running swaks (apt-get install swaks)")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn addr_args(addr: SocketAddr) -> [String; 4] {
    [
        "--server".into(),
        addr.ip().to_string(),
        "--port".into(),
        addr.port().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cover_smtp_api_delivery_inbound_and_webhooks() -> anyhow::Result<()> {
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.smtp = "submission = [\"127.0.0.1:0\"]\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n\
              [[smtp.relay_networks]]\ncidr = \"127.0.0.8/32\"\naccount = \"acme\"\n"
        .to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let submission = h.server.listening("smtp-submission").await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    let hooks = Receiver::start(Mode::Ok).await?;
    let made = h
        .api
        .call("POST", "/api/v1/webhooks")
        .key(&h.key)
        .json(json!({"url": hooks.url("/hook"), "events": ["delivered", "bounced"]}))
        .send()
        .await?;
    ensure!(made.status == 201, "{}", made.body);

    // API: one message, delivered.
    h.send(json!({"from": "app@acme.test", "to": ["api@example.test"], "subject": "a", "text": "b"}))
        .await?;
    // SMTP: a wrong password (after STARTTLS), a relay refused to a
    // stranger, and a message relayed from the trusted network.
    let server = addr_args(submission);
    let server: Vec<&str> = server.iter().map(String::as_str).collect();
    let (ok, transcript) = swaks(
        &[
            &server[..],
            &[
                "--tls",
                "--auth",
                "PLAIN",
                "--auth-user",
                "nobody",
                "--auth-password",
                "wrong",
                "--from",
                "app@acme.test",
                "--to",
                "x@example.test",
            ],
        ]
        .concat(),
    )?;
    ensure!(!ok && transcript.contains("535"), "{transcript}");
    let (ok, transcript) = swaks(&[&server[..], &["--from", "app@acme.test", "--to", "y@example.test"]].concat())?;
    ensure!(!ok && transcript.contains("554 5.7.1"), "{transcript}");
    let (ok, transcript) = swaks(
        &[
            &server[..],
            &[
                "--local-interface",
                "127.0.0.8",
                "--from",
                "app@acme.test",
                "--to",
                "smtp@example.test",
                "--body",
                "relayed",
            ],
        ]
        .concat(),
    )?;
    ensure!(ok, "{transcript}");
    // Inbound: a DMARC aggregate report mailed by Google.
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../../shared/corpora/parsedmarc-samples/aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml",
    );
    let inbound_args = addr_args(inbound);
    let inbound_args: Vec<&str> = inbound_args.iter().map(String::as_str).collect();
    let report = report.to_str().context("path")?;
    let (ok, transcript) = swaks(
        &[
            &inbound_args[..],
            &[
                "--from",
                "noreply-dmarc-support@google.com",
                "--to",
                "dmarc@mta.test",
                "--data",
                report,
            ],
        ]
        .concat(),
    )?;
    ensure!(ok, "{transcript}");
    // Inbound: a feedback-loop report (RFC 5965) to the FBL address.
    let arf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/kumomta-dsn-arf/rfc5965/1.eml");
    let arf = arf.to_str().context("path")?;
    let (ok, transcript) = swaks(
        &[
            &inbound_args[..],
            &["--from", "abusedesk@example.com", "--to", "fbl@mta.test", "--data", arf],
        ]
        .concat(),
    )?;
    ensure!(ok, "{transcript}");

    h.wait_events("delivered", "api@example.test", 1).await?;
    h.wait_events("delivered", "smtp@example.test", 1).await?;
    wait_for("two webhook posts", WAIT, || {
        let n = hooks.posts().len();
        async move { (n >= 2).then_some(()) }
    })
    .await?;

    // Gauges are sampled every few seconds: wait for the webhook's backlog
    // to be back to nothing, the spool's size and the destinations' state
    // to be known.
    let m = wait_for("the sampled gauges", WAIT, || {
        let h = &h;
        async move {
            let m = scrape(h).await.ok()?;
            let ready = m.find("herald_webhook_backlog_events", &[]) == [0.0]
                && !m.find("herald_destination_connections", &[]).is_empty()
                && m.find("herald_spool_bytes", &[]).first().is_some_and(|b| *b > 0.0)
                && !m
                    .find(
                        "herald_webhook_post_duration_seconds_count",
                        &[("outcome", "delivered")],
                    )
                    .is_empty();
            ready.then_some(m)
        }
    })
    .await?;

    // SMTP.
    let sub = [("listener", "smtp-submission")];
    ensure!(m.sum("herald_smtp_sessions_total", &sub)? >= 3.0);
    ensure!(
        m.sum(
            "herald_smtp_auth_failures_total",
            &[("listener", "smtp-submission"), ("reason", "invalid")]
        )? == 1.0
    );
    ensure!(
        m.sum(
            "herald_smtp_commands_total",
            &[
                ("listener", "smtp-submission"),
                ("command", "auth"),
                ("outcome", "refused")
            ]
        )? == 1.0
    );
    ensure!(
        m.sum(
            "herald_smtp_refusals_total",
            &[("listener", "smtp-submission"), ("reason", "auth_failed")]
        )? == 1.0
    );
    ensure!(
        m.sum("herald_smtp_refusals_total", &[("command", "rcpt")])? >= 1.0,
        "the relay refusal"
    );
    ensure!(
        m.sum(
            "herald_smtp_commands_total",
            &[
                ("listener", "smtp-submission"),
                ("command", "ehlo"),
                ("outcome", "accepted")
            ]
        )? >= 3.0
    );
    ensure!(m.sum("herald_smtp_messages_accepted_total", &sub)? == 1.0);
    ensure!(m.sum("herald_smtp_recipients_accepted_total", &sub)? == 1.0);
    let bytes = m.sum("herald_smtp_message_bytes_total", &sub)?;
    ensure!((100.0..100_000.0).contains(&bytes), "bytes of a small message: {bytes}");
    ensure!(m.sum("herald_smtp_messages_accepted_total", &[("listener", "smtp-inbound")])? == 2.0);
    ensure!(
        m.find("herald_smtp_sessions_active", &sub) == [0.0],
        "every session ended"
    );
    // API.
    ensure!(
        m.sum(
            "herald_http_requests_total",
            &[("method", "POST"), ("route", "/api/v1/messages"), ("status", "202")]
        )? == 1.0
    );
    // Spool.
    ensure!(m.sum("herald_spool_syncs_total", &[])? >= 2.0);
    ensure!(m.sum("herald_spool_sync_duration_seconds_count", &[])? == m.sum("herald_spool_syncs_total", &[])?);
    ensure!(m.sum("herald_spool_written_bytes_total", &[])? > bytes);
    ensure!(m.find("herald_spool_messages", &[]).len() == 1);
    // Delivery.
    ensure!(m.sum("herald_delivery_recipients_total", &[("outcome", "delivered")])? == 2.0);
    ensure!(m.sum("herald_delivery_attempt_duration_seconds_count", &[])? >= 2.0);
    ensure!(m.sum("herald_delivery_connections_total", &[("outcome", "connected")])? >= 1.0);
    ensure!(m.sum("herald_delivery_latency_seconds_count", &[])? == 2.0);
    ensure!(!m.find("herald_destination_connections", &[]).is_empty());
    // Inbound reports and events.
    ensure!(
        m.sum(
            "herald_reports_processed_total",
            &[("kind", "aggregate"), ("outcome", "imported")]
        )? == 1.0
    );
    // Every message the inbound MX took, by what it was: the feedback
    // report, and the DMARC report (no bounce or complaint: `other`).
    ensure!(m.sum("herald_inbound_messages_total", &[("kind", "feedback")])? == 1.0);
    ensure!(m.sum("herald_inbound_messages_total", &[])? == 2.0);
    ensure!(m.sum("herald_events_total", &[("type", "delivered")])? == 2.0);
    // Webhooks and the store.
    ensure!(
        m.sum(
            "herald_webhook_post_duration_seconds_count",
            &[("outcome", "delivered")]
        )? >= 1.0
    );
    ensure!(m.sum("herald_webhook_events_total", &[("outcome", "delivered")])? >= 2.0);
    ensure!(
        m.sum(
            "herald_store_operation_duration_seconds_count",
            &[("operation", "insert_events"), ("result", "ok")]
        )? >= 1.0
    );
    ensure!(
        m.sum(
            "herald_store_operation_duration_seconds_count",
            &[("operation", "suppressed")]
        )? >= 2.0
    );
    ensure!(
        m.sum(
            "herald_store_operation_duration_seconds_count",
            &[("operation", "page_events")]
        )? >= 1.0
    );

    // Conventions: counters end in _total; latencies are histograms in
    // seconds whose +Inf bucket equals their count.
    for (name, kind) in &m.types {
        ensure!(name.starts_with("herald_"), "{name}");
        match kind.as_str() {
            "counter" => ensure!(name.ends_with("_total"), "counter {name}"),
            "histogram" => {
                ensure!(name.ends_with("_seconds"), "histogram {name} in seconds");
                for (series, count) in m
                    .samples
                    .iter()
                    .filter(|(s, _)| s.starts_with(&format!("{name}_count")))
                {
                    let labels = series.strip_prefix(&format!("{name}_count")).unwrap_or_default();
                    let inf = if labels.is_empty() {
                        format!("{name}_bucket{{le=\"+Inf\"}}")
                    } else {
                        format!("{name}_bucket{}\",le=\"+Inf\"}}", labels.trim_end_matches("\"}"))
                    };
                    ensure!(m.samples.get(&inf) == Some(count), "{inf} == {series}");
                }
            }
            "gauge" => {}
            other => anyhow::bail!("{name} is a {other}: summaries do not aggregate across nodes"),
        }
    }

    // The Grafana dashboard in the repository charts families that exist:
    // each it names was exported here, or is one this traffic does not
    // cause (blocklist checks, spamd, failures).
    let dashboard =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/herald.json"))?;
    let charted: std::collections::BTreeSet<String> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("herald_"))
        .map(|w| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| w.strip_suffix(s).filter(|f| f.ends_with("_seconds")))
                .unwrap_or(w)
                .to_owned()
        })
        .collect();
    ensure!(charted.len() > 30, "{charted:?}");
    let not_caused_here = [
        "herald_blocklist_check_seconds",
        "herald_blocklist_listings",
        "herald_spamd_scans_total",
        "herald_tls_failures_total",
        "herald_engagement_shed_total",
        "herald_event_stage_retries_total",
        "herald_suppressions_total",
        "herald_webhook_posts_failed_total",
        "herald_delivery_deferred_total",
        "herald_destination_rate_limit_per_minute",
        "herald_smtp_closed_total",
    ];
    for family in &charted {
        ensure!(
            m.types.contains_key(family) || not_caused_here.contains(&family.as_str()),
            "the dashboard charts {family}, which is not exported"
        );
    }
    ensure!(h.server.interrupt().await?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_their_own_listener_and_a_token() -> anyhow::Result<()> {
    const TOKEN: &str = "scrape-token-0123456789abcdef";
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.extra = format!("[metrics]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n");
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let scrape_at = h.server.listening("metrics").await?;
    // Not on the API's listener any more.
    let a = h.api.call("GET", "/metrics").send().await?;
    ensure!(a.status == 404, "{}", a.body);
    let a = h.api.call("GET", "/metrics").key(TOKEN).send().await?;
    ensure!(a.status == 404, "{}", a.body);
    // Its own listener: the token, and nothing else served.
    let client = reqwest::Client::new();
    let url = format!("http://{scrape_at}/metrics");
    let r = client.get(&url).send().await?;
    ensure!(r.status() == 401 && r.headers().contains_key("www-authenticate"));
    ensure!(
        client
            .get(&url)
            .bearer_auth("scrape-token-0123456789abcdeX")
            .send()
            .await?
            .status()
            == 401
    );
    ensure!(client.get(&url).bearer_auth(&TOKEN[..10]).send().await?.status() == 401);
    ensure!(client.get(&url).header("Authorization", TOKEN).send().await?.status() == 401);
    let r = client.get(&url).bearer_auth(TOKEN).send().await?;
    ensure!(r.status() == 200);
    ensure!(r.text().await?.contains("herald_build_info"));
    for path in ["/healthz", "/api/v1/accounts", "/", "/metrics/x"] {
        let status = client
            .get(format!("http://{scrape_at}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .status();
        ensure!(status == 404, "{path}: {status}");
    }
    // `config check` never shows the token.
    let check = h.server.run(&["config", "check"])?;
    ensure!(!check.contains(TOKEN) && check.contains("(hidden)"), "{check}");
    ensure!(h.server.interrupt().await?.success());

    // A token too short to be one is refused at start.
    let dir = tempfile::tempdir()?;
    let mut bad = HeraldProcess::start(
        Path::new(BIN),
        dir.path(),
        &format!(
            "[server]\ndata_dir = \"{}\"\n[metrics]\ntoken = \"short\"\n",
            dir.path().join("data").display()
        ),
        &[],
    )?;
    let failed = bad.listening("http").await;
    ensure!(failed.is_err(), "a short token must stop the start");
    ensure!(bad.log().contains("metrics.token"), "{}", bad.log());
    Ok(())
}

/// Cardinality: clients choose methods and paths, not label values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_made_up_requests_keep_metrics_small() -> anyhow::Result<()> {
    let h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    let base = h.api.base().to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(16).build()?;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let prefixes = [
        "/",
        "/api/v1/accounts/",
        "/api/v1/webhooks/",
        "/t/o/",
        "/t/c/",
        "/u/",
        "/static/",
        "/api/v1/queue/",
        "/api/v1/",
        "/metrics/",
    ];
    let standard = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    let mut requests = Vec::with_capacity(10_000);
    for i in 0..10_000u64 {
        let r = next();
        let method = if r % 3 == 0 {
            format!("M{:X}", next() % 1_000_000)
        } else {
            standard[(r % 7) as usize].to_owned()
        };
        let path = format!("{}{:x}/{i}", prefixes[(next() % 10) as usize], next());
        requests.push((method, path));
    }
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in requests.chunks(10_000 / 16) {
        let chunk = chunk.to_vec();
        let client = client.clone();
        let base = base.clone();
        tasks.spawn(async move {
            let mut answered = 0usize;
            for (method, path) in chunk {
                let method = reqwest::Method::from_bytes(method.as_bytes())?;
                if client.request(method, format!("{base}{path}")).send().await.is_ok() {
                    answered += 1;
                }
            }
            anyhow::Ok(answered)
        });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        answered += done??;
    }
    ensure!(answered == 10_000, "every request answered: {answered}");
    let text = h.api.call("GET", "/metrics").send().await?;
    let text = text.body.as_str().context("text")?.to_owned();
    println!(
        "10,000 requests in {:?}; /metrics is {} bytes",
        started.elapsed(),
        text.len()
    );
    ensure!(text.len() < 100 * 1024, "{} bytes:\n{text}", text.len());
    let m = Scrape::parse(text)?;
    // Every label value is from a fixed set: no method or path the
    // clients made up.
    let values = |label: &str| -> Vec<String> {
        let needle = format!("{label}=\"");
        m.samples
            .keys()
            .filter_map(|s| s.split_once(&needle).and_then(|(_, rest)| rest.split_once('"')))
            .map(|(v, _)| v.to_owned())
            .collect()
    };
    for method in values("method") {
        ensure!(
            standard.contains(&method.as_str()) || method == "other",
            "method label {method}"
        );
    }
    for route in values("route") {
        ensure!(route == "unmatched" || route.contains('{'), "route label {route}");
    }
    ensure!(m.sum("herald_http_requests_total", &[("method", "other")])? > 3000.0);
    ensure!(m.sum("herald_http_requests_total", &[("route", "unmatched")])? > 1000.0);
    Ok(())
}
