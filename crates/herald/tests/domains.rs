//! Issue 4, end to end: sending domains through the real binary — records to
//! publish, verification against a real DNS server, rotation, isolation.

use std::path::Path;

use anyhow::{Context, ensure};
use herald_testkit::{Api, DnsServer, HeraldProcess, Zones};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_publish_verify_rotate_through_cli_and_api() -> anyhow::Result<()> {
    let mut dns = DnsServer::start(&Zones::new()).await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[server]\nhostname = \"mta.test\"\ndata_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://track.mta.test\"\n\
         [smtp]\nsubmission = []\nsubmission_tls = []\ninbound = []\n[dns]\nnameservers = [\"{}\"]\n",
        dir.path().join("data").display(),
        dns.addr()
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(server.listening("http").await?)?;
    let cli = |args: &[&str]| server.cli(args);
    ensure!(cli(&["account", "create", "acme"])?.status.success());
    ensure!(cli(&["account", "create", "globex"])?.status.success());
    let key = String::from_utf8(cli(&["api-key", "create", "--account", "acme"])?.stdout)?
        .trim()
        .to_owned();
    let other = String::from_utf8(cli(&["api-key", "create", "--account", "globex"])?.stdout)?
        .trim()
        .to_owned();

    // Add through the CLI: every record to publish, printed.
    let added = cli(&["--json", "domain", "add", "acme.test", "--account", "acme"])?;
    ensure!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let added: Value = serde_json::from_slice(&added.stdout)?;
    let lines: Vec<String> = added["records"]
        .as_array()
        .context("records")?
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["type"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
                r["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    ensure!(
        lines.contains(&"TXT acme.test v=spf1 include:_spf.mta.test ~all".to_owned()),
        "{lines:#?}"
    );
    ensure!(
        lines.contains(&"TXT _dmarc.acme.test v=DMARC1; p=none; rua=mailto:dmarc@mta.test".to_owned()),
        "{lines:#?}"
    );
    ensure!(
        lines.contains(&"CNAME bounces.acme.test mta.test".to_owned()),
        "{lines:#?}"
    );
    ensure!(
        lines.contains(&"CNAME track.acme.test track.mta.test".to_owned()),
        "{lines:#?}"
    );
    let dkim: Vec<&String> = lines.iter().filter(|l| l.contains("._domainkey.acme.test")).collect();
    ensure!(
        dkim.len() == 2 && dkim.iter().any(|l| l.contains("k=rsa")) && dkim.iter().any(|l| l.contains("k=ed25519")),
        "{dkim:#?}"
    );
    ensure!(added["keys"].as_array().is_some_and(|k| {
        k.iter()
            .all(|k| k["selector"].as_str().is_some_and(|s| s.starts_with("hrld2")))
    }));

    // Nothing published: verify fails, naming what is missing.
    let v = api
        .call("POST", "/api/v1/domains/acme.test/verify")
        .key(&key)
        .send()
        .await?;
    ensure!(v.status == 200 && v.body["verified"] == false, "{}", v.body);
    ensure!(
        v.body["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["status"] == "missing")),
        "{}",
        v.body
    );
    let failed = cli(&["domain", "verify", "acme.test"])?;
    ensure!(!failed.status.success() && String::from_utf8_lossy(&failed.stderr).contains("not verified"));

    // Publish what Herald printed: verified.
    dns.replace(&Zones::new().publish(&added["records"])).await?;
    let ok = cli(&["domain", "verify", "acme.test"])?;
    ensure!(
        ok.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    ensure!(
        String::from_utf8_lossy(&ok.stdout).lines().all(|l| l.starts_with("ok")),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let shown = api.call("GET", "/api/v1/domains/acme.test").key(&key).send().await?;
    ensure!(shown.body["verified_at"].is_string(), "{}", shown.body);

    // Rotation through the API: new selectors, pending until found in DNS.
    let rotated = api
        .call("POST", "/api/v1/domains/acme.test/rotate")
        .key(&key)
        .send()
        .await?;
    ensure!(rotated.status == 200, "{}", rotated.body);
    let pending = rotated.body["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter(|k| k["state"] == "pending")
        .count();
    ensure!(pending == 2, "{}", rotated.body);
    let v = api
        .call("POST", "/api/v1/domains/acme.test/verify")
        .key(&key)
        .send()
        .await?;
    ensure!(v.body["switched"] == false && v.body["verified"] == false, "{}", v.body);
    dns.replace(&Zones::new().publish(&rotated.body["records"])).await?;
    let v = api
        .call("POST", "/api/v1/domains/acme.test/verify")
        .key(&key)
        .send()
        .await?;
    ensure!(v.body["switched"] == true && v.body["verified"] == true, "{}", v.body);
    let states: Vec<&str> = v.body["domain"]["keys"]
        .as_array()
        .context("keys")?
        .iter()
        .filter_map(|k| k["state"].as_str())
        .collect();
    ensure!(states == ["retiring", "retiring", "active", "active"], "{states:?}");
    let retired = api
        .call("POST", "/api/v1/domains/acme.test/retire")
        .key(&key)
        .send()
        .await?;
    ensure!(
        retired.body["records"].as_array().map(Vec::len) == Some(6),
        "{}",
        retired.body
    );

    // Isolation and errors.
    let theirs = api.call("GET", "/api/v1/domains/acme.test").key(&other).send().await?;
    ensure!(theirs.status == 404, "another account: {}", theirs.body);
    let taken = api
        .call("POST", "/api/v1/domains")
        .key(&other)
        .json(json!({"name": "acme.test"}))
        .send()
        .await?;
    ensure!(taken.status == 409, "{}", taken.body);
    let bad = api
        .call("POST", "/api/v1/domains")
        .key(&other)
        .json(json!({"name": "not a domain"}))
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);
    let listed = api.call("GET", "/api/v1/domains").key(&other).send().await?;
    ensure!(listed.body["data"] == json!([]), "{}", listed.body);
    let gone = api.call("DELETE", "/api/v1/domains/acme.test").key(&key).send().await?;
    ensure!(gone.status == 204);
    ensure!(server.interrupt().await?.success());
    Ok(())
}
