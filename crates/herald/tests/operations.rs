//! Issue 2, end to end: running Herald — config files, logs, TLS, restarts,
//! health, metrics and the OpenAPI document — through the real binary.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Api, HeraldProcess, TempStore};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn herald(dir: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(BIN).args(args).current_dir(dir).output()?)
}

#[test]
fn config_init_writes_every_default_and_check_accepts_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let init = herald(dir.path(), &["config", "init"])?;
    ensure!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let written = std::fs::read_to_string(dir.path().join("herald.toml"))?;
    for key in [
        "hostname",
        "data_dir",
        "shutdown_timeout",
        "url",
        "listen",
        "public_url",
        "tls_cert",
        "format",
        "level",
    ] {
        ensure!(written.contains(&format!("\n{key} = ")), "config init documents {key}");
    }
    ensure!(
        written.lines().filter(|l| l.starts_with('#')).count() > 10,
        "the file is commented"
    );

    let again = herald(dir.path(), &["config", "init"])?;
    ensure!(
        !again.status.success(),
        "an existing file is not replaced without --force"
    );

    // `config check` reads ./herald.toml by default and prints resolved values.
    let check = herald(dir.path(), &["config", "check"])?;
    ensure!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let effective = String::from_utf8(check.stdout)?;
    ensure!(
        effective.contains("url = \"sqlite://./herald-data/herald.db\""),
        "defaults resolved: {effective}"
    );
    ensure!(effective.contains("shutdown_timeout = \"30s\""), "{effective}");
    Ok(())
}

#[test]
fn a_bad_config_names_the_key_the_value_and_the_expectation() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "[http]\nlisten = \"localhost\"\n",
            &["http.listen", "\"localhost\"", "0.0.0.0:8080"][..],
        ),
        (
            "[server]\nshutdown_timeout = \"soon\"\n",
            &["server.shutdown_timeout", "\"soon\"", "\"72h\""][..],
        ),
        (
            "[storage]\nurl = \"mysql://db/herald\"\n",
            &["storage.url", "mysql://db/herald", "postgres://"][..],
        ),
        ("[http]\nlistne = \"0.0.0.0:1\"\n", &["listne", "unknown field"][..]),
        ("[http]\ntls = \"yes\"\n", &["tls", "bool"][..]),
    ];
    for (text, needles) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text)?;
        let out = herald(dir.path(), &["--config", "bad.toml", "config", "check"])?;
        ensure!(!out.status.success(), "{text:?} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        for n in needles {
            ensure!(err.contains(n), "error for {text:?} should mention {n:?}: {err}");
        }
        let serve = herald(dir.path(), &["--config", "bad.toml", "serve"])?;
        ensure!(!serve.status.success(), "serve refuses {text:?} too");
    }
    let missing = herald(dir.path(), &["--config", "nope.toml", "config", "check"])?;
    ensure!(
        String::from_utf8_lossy(&missing.stderr).contains("nope.toml"),
        "a missing file is named"
    );
    Ok(())
}

fn base_config(data_dir: &Path, extra: &str) -> String {
    format!(
        "[smtp]\nsubmission = []\nsubmission_tls = []\ninbound = []\n\n[server]\nhostname = \"mta.test\"\ndata_dir = \"{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}",
        data_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_state_and_does_not_bootstrap_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = base_config(&data, "");
    let mut first = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(first.listening("http").await?)?;
    let admin = std::fs::read_to_string(data.join("bootstrap-admin-key"))?
        .trim()
        .to_owned();
    let cert_before = std::fs::read(data.join("tls/cert.pem"))?;
    let created = api
        .call("POST", "/api/v1/accounts")
        .key(&admin)
        .json(serde_json::json!({"name": "acme"}))
        .send()
        .await?;
    ensure!(created.status == 201, "{}", created.body);
    ensure!(first.interrupt().await?.success());

    let mut second = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(second.listening("http").await?)?;
    ensure!(
        !second.stdout().contains("hrld_"),
        "no second bootstrap key: {}",
        second.stdout()
    );
    ensure!(!second.log().contains("first start"), "no second bootstrap");
    let listed = api.call("GET", "/api/v1/accounts").key(&admin).send().await?;
    ensure!(listed.status == 200, "the first key still works: {}", listed.body);
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    ensure!(names == ["acme", "main"], "{names:?}");
    ensure!(
        std::fs::read(data.join("tls/cert.pem"))? == cert_before,
        "the certificate is kept"
    );
    ensure!(second.interrupt().await?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_json_logs_health_and_metrics() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = HeraldProcess::start(
        Path::new(BIN),
        dir.path(),
        &base_config(&data, "tls = true\n"),
        &["--log-format", "json"],
    )?;
    // The JSON log carries the listening line as fields.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let addr = loop {
        let found = server
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| {
                (v["message"] == "listening" && v["proto"] == "https").then(|| v["addr"].as_str().map(str::to_owned))
            });
        if let Some(Some(a)) = found {
            break a.parse::<std::net::SocketAddr>()?;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no JSON listening line: {}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    for line in server.log().lines() {
        serde_json::from_str::<Value>(line).with_context(|| format!("every log line is JSON: {line}"))?;
    }

    let api = Api::https(addr)?;
    let health = api.call("GET", "/healthz").send().await?;
    ensure!(
        health.status == 200 && health.body["status"] == "ok" && health.body["store"] == "sqlite",
        "{}",
        health.body
    );
    // Plain HTTP to the TLS port is not served.
    let plain = Api::http(addr)?.call("GET", "/healthz").send().await;
    ensure!(
        plain.is_err() || plain.is_ok_and(|a| a.status != 200),
        "plain HTTP must not reach the API on a TLS port"
    );

    let admin = std::fs::read_to_string(data.join("bootstrap-admin-key"))?
        .trim()
        .to_owned();
    ensure!(api.call("GET", "/api/v1/accounts").key(&admin).send().await?.status == 200);
    ensure!(
        api.call("GET", "/api/v1/accounts")
            .key("hrld_nope")
            .send()
            .await?
            .status
            == 401
    );
    let metrics = reqwest_text(&api, "/metrics").await?;
    ensure!(metrics.contains("herald_build_info"), "{metrics}");
    ensure!(
        metrics.contains(r#"herald_http_requests_total{method="GET",route="/api/v1/accounts",status="401"} 1"#),
        "requests are counted by route template and status: {metrics}"
    );
    ensure!(
        metrics.contains("herald_http_request_duration_seconds"),
        "latencies are recorded"
    );
    ensure!(server.interrupt().await?.success());
    Ok(())
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

async fn reqwest_text(api: &Api, path: &str) -> anyhow::Result<String> {
    let answer = api.call("GET", path).send().await?;
    ensure!(answer.status == 200, "{path}: {}", answer.status);
    answer.body.as_str().map(str::to_owned).context("a text body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served_and_errors_are_json() -> anyhow::Result<()> {
    let store = TempStore::sqlite()?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        "{}\n[storage]\nurl = \"{}\"\n",
        base_config(&dir.path().join("data"), ""),
        store.url
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(server.listening("http").await?)?;

    let doc = api.call("GET", "/api/v1/openapi.json").send().await?;
    ensure!(
        doc.status == 200 && doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc.body
    );
    ensure!(doc.body["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    let paths = doc.body["paths"].as_object().context("paths")?;
    for required in [
        "/api/v1/accounts",
        "/api/v1/accounts/{name}/promote",
        "/api/v1/api-keys",
        "/api/v1/smtp-credentials",
        "/api/v1/senders",
        "/healthz",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        ensure!(paths.contains_key(required), "{required} is documented");
    }
    // Every documented operation exists on the server: without a key it
    // answers 401 (or 200 for the open ones), never the router's 404 or 405.
    let mut checked = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{name}", "main")
            .replace("{id}", "key_x")
            .replace("{sender}", "@x.test");
        for method in ["get", "post", "patch", "delete"] {
            let Some(op) = item.get(method) else { continue };
            let answer = api.call(&method.to_uppercase(), &concrete).send().await?;
            let secured = op.get("security").is_some();
            // Links in mail carry a signed token: a made-up one is an
            // unknown link (the handler's 404), not an unknown route.
            let link = path.contains("{token}");
            let expected = if secured {
                401
            } else if link {
                404
            } else {
                200
            };
            ensure!(
                answer.status == expected,
                "{method} {path}: expected {expected}, got {} {}",
                answer.status,
                answer.body
            );
            ensure!(
                !link || answer.body["error"]["message"] == "no such link",
                "{method} {path}: {}",
                answer.body
            );
            if secured {
                let header = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Herald-Account"));
                ensure!(header, "{method} {path} documents Herald-Account");
                ensure!(
                    op["responses"].get("401").is_some(),
                    "{method} {path} documents its 401"
                );
            }
            checked += 1;
        }
    }
    ensure!(checked >= 19, "checked {checked} operations");
    let mut refs = Vec::new();
    collect_refs(&doc.body, &mut refs);
    ensure!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .with_context(|| format!("unexpected $ref {r}"))?;
        ensure!(
            doc.body["components"]["schemas"].get(name).is_some(),
            "$ref {r} does not resolve"
        );
    }

    let admin = std::fs::read_to_string(dir.path().join("data/bootstrap-admin-key"))?
        .trim()
        .to_owned();
    let unknown = api.call("GET", "/api/v1/nothing-here").key(&admin).send().await?;
    ensure!(
        unknown.status == 404 && unknown.error_code() == Some("not_found"),
        "{}",
        unknown.body
    );
    let not_json = api
        .call("POST", "/api/v1/accounts")
        .key(&admin)
        .json(Value::String("x".into()))
        .send()
        .await?;
    ensure!(
        not_json.status == 422 && not_json.error_code() == Some("invalid_request"),
        "{}",
        not_json.body
    );
    let typo = api
        .call("POST", "/api/v1/accounts")
        .key(&admin)
        .json(serde_json::json!({"nam": "x"}))
        .send()
        .await?;
    ensure!(
        typo.status == 422
            && typo.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nam")),
        "{}",
        typo.body
    );
    ensure!(server.interrupt().await?.success());
    Ok(())
}
