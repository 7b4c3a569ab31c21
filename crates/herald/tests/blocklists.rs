//! Issue 16, blocklists, end to end through the real binary on SQLite and
//! PostgreSQL, against a real DNS server on loopback serving blocklist
//! zones: the scheduled check (run on demand by an admin) finds the
//! account's sending IP, the networks its SPF record authorises (through an
//! include) and its domain listed; refusals and silent lists are errors,
//! never listings; each listing is an alert, posted to the account's
//! webhook, listed and acknowledged by API and CLI, resolved when the
//! listing ends; the reputation score counts listings; live checks by API
//! and CLI; another account sees none of it.

use std::path::Path;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Mode, Options, Receiver, TempStore, WAIT, Zones, postgres_url, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn zones(listed: bool) -> anyhow::Result<Zones> {
    let ip = |s: &str| s.parse::<std::net::IpAddr>();
    let z = Harness::zones()?
        .txt("acme.test", "v=spf1 ip4:192.0.2.0/25 include:_spf.esp.test -all")
        .txt("_spf.esp.test", "v=spf1 ip4:198.51.100.7 -all")
        // The lists' zones exist; names below them are NXDOMAIN.
        .txt("spamhaus.org", "zone")
        .txt("spamcop.net", "zone")
        .ip("1.0.0.127.zen.spamhaus.org", ip("127.0.0.2")?)
        .txt(
            "1.0.0.127.zen.spamhaus.org",
            "Listed by SBL, see https://check.spamhaus.org/sbl/query/SBL42",
        )
        .ip("126.2.0.192.zen.spamhaus.org", ip("127.255.255.254")?)
        .ip("acme.test.dbl.spamhaus.org", ip("127.0.1.2")?)
        .silent("multi.uribl.com");
    Ok(if listed {
        z.ip("1.2.0.192.bl.spamcop.net", ip("127.0.0.2")?)
    } else {
        z
    })
}

fn alerts_of(posts: &[herald_testkit::Post]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in posts {
        match serde_json::from_slice::<Value>(&p.body) {
            Ok(Value::Array(batch)) => out.extend(batch),
            Ok(one) => out.push(one),
            Err(_) => {}
        }
    }
    out.retain(|e| e["type"] == "alert");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklist_monitoring_on_sqlite() -> anyhow::Result<()> {
    monitoring(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocklist_monitoring_on_postgres() -> anyhow::Result<()> {
    monitoring(TempStore::postgres(&postgres_url()).await?).await
}

async fn monitoring(store: TempStore) -> anyhow::Result<()> {
    let mut o = Options::new(store)?;
    o.zones = zones(true)?;
    o.extra = r#"[blocklists]
lists = ["zen.spamhaus.org", "bl.spamcop.net", "dbl.spamhaus.org", "multi.uribl.com"]
check_interval = "0s"
timeout = "2s"
"#
    .to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let globex = h.account("globex", None)?;
    let admin = h.admin_key()?;
    h.server.run(&["domain", "add", "acme.test", "--account", "acme"])?;
    let watcher = Receiver::start(Mode::Ok).await?;
    let hook = h
        .api
        .call("POST", "/api/v1/webhooks")
        .key(&h.key)
        .json(json!({"url": watcher.url("/alerts"), "events": ["alert"]}))
        .send()
        .await?;
    ensure!(hook.status == 201, "{}", hook.body);
    // A delivery makes 127.0.0.1 one of acme's sending IPs.
    h.send(json!({"from": "news@acme.test", "to": ["someone@example.test"], "subject": "hi", "text": "hello"}))
        .await?;
    let delivered = h.wait_events("delivered", "someone@example.test", 1).await?;
    ensure!(delivered[0]["source_ip"] == "127.0.0.1", "{delivered:?}");

    // The check runs on demand for an admin only.
    let refused = h
        .api
        .call("POST", "/api/v1/blocklists/check")
        .key(&globex)
        .send()
        .await?;
    ensure!(refused.status == 404, "{}", refused.body);
    let run = h
        .api
        .call("POST", "/api/v1/blocklists/check")
        .key(&admin)
        .send()
        .await?;
    ensure!(run.status == 200, "{}", run.body);
    ensure!(run.body["listed"] == 3 && run.body["started"] == 3, "{}", run.body);
    ensure!(
        run.body["errors"].as_u64().is_some_and(|e| e >= 4),
        "a refusal and the silent list: {}",
        run.body
    );

    // acme sees its three listings, with why each target is its own.
    let mine = h.get("/api/v1/blocklists?active=true").await?;
    let rows = mine["data"].as_array().context("listings")?;
    let mut seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|l| {
            (
                l["target"].as_str().unwrap_or_default().to_owned(),
                l["list"].as_str().unwrap_or_default().to_owned(),
                l["origins"][0].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    ensure!(
        seen == [
            (
                "127.0.0.1".to_owned(),
                "zen.spamhaus.org".to_owned(),
                "sending_ip".to_owned()
            ),
            (
                "192.0.2.1".to_owned(),
                "bl.spamcop.net".to_owned(),
                "spf:acme.test".to_owned()
            ),
            (
                "acme.test".to_owned(),
                "dbl.spamhaus.org".to_owned(),
                "sending_domain".to_owned()
            ),
        ],
        "{mine}"
    );
    let sbl = rows
        .iter()
        .find(|l| l["target"] == "127.0.0.1")
        .context("the SBL listing")?;
    ensure!(
        sbl["reason"].as_str().is_some_and(|r| r.contains("SBL42"))
            && sbl["delist_url"] == "https://check.spamhaus.org/listed/?searchterm=127.0.0.1",
        "{sbl}"
    );
    let theirs = h.api.call("GET", "/api/v1/blocklists").key(&globex).send().await?;
    ensure!(
        theirs.status == 200 && theirs.body["data"] == json!([]),
        "{}",
        theirs.body
    );

    // One alert per listing, posted to acme's webhook.
    let posted = wait_for("three alerts posted", WAIT, || {
        let got = alerts_of(&watcher.posts());
        async move { (got.len() >= 3).then_some(got) }
    })
    .await?;
    ensure!(posted.len() == 3, "{posted:?}");
    ensure!(
        posted
            .iter()
            .all(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("blocklist: "))),
        "{posted:?}"
    );
    let alerts = h.get("/api/v1/alerts").await?;
    let open = alerts["data"].as_array().context("alerts")?;
    ensure!(
        open.len() == 3 && open.iter().all(|a| a["kind"] == "blocklist" && a["state"] == "open"),
        "{alerts}"
    );
    let id = open[0]["id"].as_str().context("id")?.to_owned();
    let stranger = h
        .api
        .call("POST", &format!("/api/v1/alerts/{id}/acknowledge"))
        .key(&globex)
        .send()
        .await?;
    ensure!(stranger.status == 404, "{}", stranger.body);
    let acked = h
        .api
        .call("POST", &format!("/api/v1/alerts/{id}/acknowledge"))
        .key(&h.key)
        .send()
        .await?;
    ensure!(
        acked.status == 200 && acked.body["acknowledged_at"].is_string(),
        "{}",
        acked.body
    );
    // The operator hears that a list cannot be read.
    let ops = h.api.call("GET", "/api/v1/alerts").key(&admin).send().await?;
    ensure!(
        ops.body["data"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["key"] == "blocklist_error:multi.uribl.com")),
        "{}",
        ops.body
    );

    // The score counts the listings (25 + 15 + 25, capped at 50).
    let rep = h.get("/api/v1/reputation").await?;
    let factor = rep["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["factor"] == "blocklists").cloned())
        .context("blocklists factor")?;
    ensure!(factor["impact"] == 50, "{rep}");

    // A live check of the SPF network: sampled; the refusal an error.
    let live = h.get("/api/v1/checks/blocklists/192.0.2.0%2F25").await?;
    ensure!(
        live["kind"] == "network" && live["checked"] == json!(["192.0.2.1", "192.0.2.126"]),
        "{live}"
    );
    ensure!(live["listed"] == true, "{live}");
    let refusal = live["answers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["address"] == "192.0.2.126" && x["list"] == "zen.spamhaus.org")
                .cloned()
        })
        .context("the refused answer")?;
    ensure!(
        refusal["status"] == "error" && refusal["detail"].as_str().is_some_and(|d| d.contains("public")),
        "{refusal}"
    );
    ensure!(live["history"].as_array().is_some_and(|h| h.len() == 1), "{live}");
    let stranger = h
        .api
        .call("GET", "/api/v1/checks/blocklists/192.0.2.1")
        .key(&globex)
        .send()
        .await?;
    ensure!(
        stranger.status == 200 && stranger.body["listed"] == true && stranger.body["history"] == json!([]),
        "live answers are public, history is not: {}",
        stranger.body
    );
    let junk = h
        .api
        .call("GET", "/api/v1/checks/blocklists/not%20a%20target")
        .key(&h.key)
        .send()
        .await?;
    ensure!(junk.status == 422, "{}", junk.body);
    // A flood of live checks (each is lookups sent to lists that limit
    // their users) is cut off per account, with Retry-After.
    let mut limited = None;
    for n in 0..40 {
        let a = h
            .api
            .call("GET", "/api/v1/checks/blocklists/198.51.100.7")
            .key(&globex)
            .send()
            .await?;
        if a.status == 429 {
            limited = Some((n, a));
            break;
        }
        ensure!(a.status == 200, "{}", a.body);
    }
    let (n, flood) = limited.context("no limit on live checks")?;
    ensure!(n <= 30 && flood.header("retry-after").is_some(), "{n}: {}", flood.body);
    let other = h.get("/api/v1/checks/blocklists/198.51.100.7").await?;
    ensure!(other["listed"] == false, "another account is not held back: {other}");

    // The CLI: a listed domain fails; a clean address passes (JSON).
    let cli = h.server.cli(&["check", "blocklists", "acme.test"])?;
    let out = String::from_utf8_lossy(&cli.stdout);
    ensure!(
        !cli.status.success() && out.contains("LISTED") && out.contains("Spamhaus DBL"),
        "{out}"
    );
    let clean = h.server.cli(&["--json", "check", "blocklists", "198.51.100.7"])?;
    ensure!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    let report: Value = serde_json::from_slice(&clean.stdout)?;
    ensure!(
        report["listed"] == false && report["answers"].as_array().is_some_and(|a| a.len() == 2),
        "{report}"
    );

    // SpamCop delists 192.0.2.1: the listing ends, the alert resolves.
    h.dns.replace(&zones(false)?).await?;
    let again = h
        .api
        .call("POST", "/api/v1/blocklists/check")
        .key(&admin)
        .send()
        .await?;
    ensure!(again.body["ended"] == 1 && again.body["listed"] == 2, "{}", again.body);
    wait_for("the resolution posted", WAIT, || {
        let got = alerts_of(&watcher.posts());
        async move {
            got.iter()
                .any(|e| {
                    e["reason"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("blocklist resolved: 192.0.2.1"))
                })
                .then_some(())
        }
    })
    .await?;
    let listed = h.server.run(&["--json", "blocklists", "list", "--account", "acme"])?;
    let listed: Value = serde_json::from_str(&listed)?;
    let ended = listed["data"]
        .as_array()
        .and_then(|a| a.iter().find(|l| l["target"] == "192.0.2.1").cloned())
        .context("the ended listing")?;
    ensure!(ended["ended_at"].is_string(), "{listed}");
    let resolved = h
        .server
        .run(&["--json", "alerts", "list", "--account", "acme", "--state", "resolved"])?;
    let resolved: Value = serde_json::from_str(&resolved)?;
    ensure!(
        resolved["data"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["key"] == "blocklist:bl.spamcop.net:192.0.2.1"),
        "{resolved}"
    );
    let human = h.server.run(&["alerts", "list", "--account", "acme"])?;
    ensure!(human.contains("blocklist") && human.contains("acme.test"), "{human}");
    Ok(())
}
