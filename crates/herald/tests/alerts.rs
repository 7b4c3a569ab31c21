//! Issue 16, one alerting path, end to end through the real binary: a
//! deferral storm, a domain without DMARC (resolved once it publishes
//! one), mail failing DMARC from an unknown source, a warm-up cap reached
//! and the served certificate about to expire each open an alert — listed
//! and acknowledged by API and CLI, posted as `alert` events, and mailed
//! to the account's alert address.

use std::path::Path;

use anyhow::{Context, ensure};
use herald_testkit::{Behaviour, Harness, Options, Phase, Rule, TempStore, WAIT, Zones, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// Before acme.test publishes anything; then what Herald told it to publish
/// (DMARC included).
fn zones(records: Option<&Value>) -> anyhow::Result<Zones> {
    let z = Harness::zones()?.mx("slow.test", 10, "mx.example.test");
    Ok(match records {
        Some(r) => z.publish(r),
        None => z.txt("acme.test", "v=spf1 ip4:127.0.0.0/8 -all"),
    })
}

/// A DMARC report for acme.test: 25 messages from an address no one
/// authorised, failing SPF and DKIM.
fn report() -> String {
    let begin = time::OffsetDateTime::now_utc().unix_timestamp() - 86_400;
    format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>google.com</org_name>\
         <email>noreply-dmarc@google.com</email><report_id>r1</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>acme.test</domain>\
         <p>none</p><pct>100</pct></policy_published><record><row><source_ip>203.0.113.50</source_ip>\
         <count>25</count><policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf>\
         </policy_evaluated></row><identifiers><header_from>acme.test</header_from></identifiers><auth_results>\
         <spf><domain>acme.test</domain><result>fail</result></spf></auth_results></record></feedback>",
        begin + 86_399
    )
}

async fn alerts(h: &Harness, key: &str, state: &str) -> anyhow::Result<Vec<Value>> {
    let a = h
        .api
        .call("GET", &format!("/api/v1/alerts?state={state}"))
        .key(key)
        .send()
        .await?;
    ensure!(a.status == 200, "{}", a.body);
    Ok(a.body["data"].as_array().cloned().unwrap_or_default())
}

async fn wait_kinds(h: &Harness, key: &str, state: &str, kinds: &[&str]) -> anyhow::Result<Vec<Value>> {
    wait_for(&format!("{state} alerts {kinds:?}"), WAIT, || async {
        let got = alerts(h, key, state).await.ok()?;
        kinds.iter().all(|k| got.iter().any(|a| a["kind"] == *k)).then_some(got)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_condition_goes_the_one_alert_path() -> anyhow::Result<()> {
    // A certificate that expires in five days.
    let certs = tempfile::tempdir()?;
    let mut params = rcgen::CertificateParams::new(vec!["mta.test".to_owned()])?;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    params.not_after = soon;
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;

    let mut o = Options::new(TempStore::sqlite()?)?;
    o.zones = zones(None)?;
    o.sink_rules = vec![Rule::new(
        Phase::Rcpt,
        "*@slow.test",
        Behaviour::Reply("451 4.7.0 Try again later".to_owned()),
    )];
    o.smtp = format!(
        "submission = []\nsubmission_tls = []\ninbound = []\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert_path.display(),
        key_path.display()
    );
    o.extra = r#"[alerts]
check_interval = "300ms"
min_volume = 100000
dmarc_check_interval = "1s"
dmarc_unknown_min = 10
deferral_min_attempts = 5
deferral_percent = 50
certificate_warning = "14d"

[blocklists]
check_interval = "0s"

[[ip_pools]]
name = "warm"
dedicated = true
accounts = ["globex"]
sources = [{ ip = "127.0.0.3", ehlo = "mta3.herald.test", warmup = "tiny" }]

[[warmup_plans]]
name = "tiny"
daily = [1, 1]
"#
    .to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let globex = h.account("globex", None)?;
    let admin = h.admin_key()?;
    // The alert address first: every alert of acme's comes after it.
    h.server
        .run(&["account", "set", "acme", "--alert-email", "ops@example.test"])?;
    let added: Value =
        serde_json::from_str(
            &h.server
                .run(&["--json", "domain", "add", "acme.test", "--account", "acme"])?,
        )?;

    // A deferral storm: slow.test defers everything.
    for i in 0..6 {
        h.send(json!({"from": "news@acme.test", "to": [format!("u{i}@slow.test")], "subject": "s", "text": "t"}))
            .await?;
    }
    // A report: mail in acme.test's name from an unknown source.
    let up = h
        .api
        .call("POST", "/api/v1/dmarc/reports")
        .key(&admin)
        .bytes(report().into_bytes(), "application/xml")
        .send()
        .await?;
    ensure!(up.status == 200, "{}", up.body);
    // globex's pool allows one message a day per provider.
    for i in 0..2 {
        let a = h
            .api
            .call("POST", "/api/v1/messages")
            .key(&globex)
            .json(json!({"from": "news@acme.test", "to": [format!("g{i}@example.test")], "subject": "s", "text": "t"}))
            .send()
            .await?;
        ensure!(a.status == 202, "{}", a.body);
    }

    let mine = wait_kinds(&h, &h.key, "open", &["deferral_storm", "dmarc_missing"]).await?;
    let storm = mine.iter().find(|a| a["kind"] == "deferral_storm").context("storm")?;
    ensure!(storm["key"] == "deferral_storm:slow.test", "{storm}");
    // Report data reaches alerts only once the domain is verified.
    ensure!(!mine.iter().any(|a| a["kind"] == "dmarc_unknown_source"), "{mine:?}");
    wait_kinds(&h, &globex, "open", &["warmup_cap"]).await?;
    let ops = wait_kinds(&h, &admin, "open", &["certificate_expiry", "warmup_cap"]).await?;
    let cert = ops.iter().find(|a| a["kind"] == "certificate_expiry").context("cert")?;
    ensure!(
        cert["message"]
            .as_str()
            .is_some_and(|m| m.contains("mta.test") && m.contains("in 4 days")),
        "{cert}"
    );

    // Mailed to acme's alert address, from the platform.
    let mailed = wait_for("alert mails", WAIT, || {
        let got: Vec<String> = h
            .sink
            .messages()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.contains("ops@example.test")))
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .collect();
        async move { (got.len() >= 2).then_some(got) }
    })
    .await
    .with_context(|| {
        format!(
            "log: {}",
            h.server
                .log()
                .lines()
                .filter(|l| l.contains("alert"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    ensure!(
        mailed
            .iter()
            .all(|m| m.contains("<alerts@mta.test>") && m.contains("[Herald]_alert:") && m.contains("State: open")),
        "{mailed:?}"
    );
    // Posted as events too.
    let events = h.events("type=alert").await?;
    ensure!(
        events
            .iter()
            .any(|e| e["metadata"]["alert_kind"] == "deferral_storm" && e["metadata"]["alert_state"] == "open"),
        "{events:?}"
    );

    // Acknowledged by the CLI; the alert stays open.
    let id = storm["id"].as_str().context("id")?;
    h.server.run(&["alerts", "ack", id, "--account", "acme"])?;
    let listed: Value = serde_json::from_str(&h.server.run(&["--json", "alerts", "list", "--account", "acme"])?)?;
    ensure!(
        listed["data"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["id"] == id && x["acknowledged_at"].is_string() && x["state"] == "open")),
        "{listed}"
    );

    // acme publishes what Herald told it (DMARC included) and verifies:
    // the DMARC alert resolves, once, and the unknown source is told.
    h.dns.replace(&zones(Some(&added["records"]))?).await?;
    let verified = h.server.cli(&["domain", "verify", "acme.test"])?;
    ensure!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let mine = wait_kinds(&h, &h.key, "open", &["dmarc_unknown_source"]).await?;
    let unknown = mine
        .iter()
        .find(|a| a["kind"] == "dmarc_unknown_source")
        .context("unknown")?;
    ensure!(
        unknown["message"]
            .as_str()
            .is_some_and(|m| m.contains("203.0.113.50") && m.contains("25")),
        "{unknown}"
    );
    let resolved = wait_kinds(&h, &h.key, "resolved", &["dmarc_missing"]).await?;
    ensure!(
        resolved.iter().filter(|a| a["kind"] == "dmarc_missing").count() == 1,
        "{resolved:?}"
    );
    let events = h.events("type=alert").await?;
    ensure!(
        events
            .iter()
            .any(|e| e["metadata"]["alert_kind"] == "dmarc_missing" && e["metadata"]["alert_state"] == "resolved"),
        "{events:?}"
    );
    Ok(())
}
