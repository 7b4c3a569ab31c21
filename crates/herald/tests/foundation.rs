//! Issue 2, end to end: the real `herald` binary on a temp data dir, driven
//! through its CLI and its HTTP API, on SQLite and (when
//! `HERALD_TEST_POSTGRES_URL` is set) PostgreSQL.

use std::path::Path;

use anyhow::{Context, ensure};
use herald_testkit::{Answer, Api, HeraldProcess, TempStore, postgres_url};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn config(data_dir: &Path, storage_url: &str, extra: &str) -> String {
    format!(
        "[smtp]\nsubmission = []\nsubmission_tls = []\ninbound = []\n\n[server]\nhostname = \"mta.test\"\ndata_dir = \"{}\"\n\n[storage]\nurl = \"{storage_url}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n{extra}",
        data_dir.display()
    )
}

/// Runs `herald ARGS` against the server's config; returns stdout, failing
/// with stderr if the command failed.
fn cli(server: &HeraldProcess, args: &[&str], cli_stderr: &mut String) -> anyhow::Result<String> {
    let out = server.cli(args)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    cli_stderr.push_str(&stderr);
    ensure!(out.status.success(), "herald {args:?} failed: {stderr}");
    Ok(String::from_utf8(out.stdout)?)
}

fn expect(answer: &Answer, status: u16, what: &str) -> anyhow::Result<()> {
    ensure!(
        answer.status == status,
        "{what}: expected {status}, got {} {}",
        answer.status,
        answer.body
    );
    Ok(())
}

fn expect_error(answer: &Answer, status: u16, code: &str, what: &str) -> anyhow::Result<()> {
    expect(answer, status, what)?;
    ensure!(
        answer.error_code() == Some(code),
        "{what}: expected error code {code}, got {}",
        answer.body
    );
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    ensure!(!message.is_empty(), "{what}: errors carry a message");
    Ok(())
}

fn str_of<'a>(v: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("no {key} in {v}"))
}

fn names(answer: &Answer) -> Vec<String> {
    answer.body["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Everything the store holds, as text, to search for secrets in clear.
async fn store_contents(store: &TempStore, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if store.url.starts_with("sqlite:") {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(store.dir().context("sqlite dir")?)? {
            all.extend(std::fs::read(entry?.path())?);
        }
        // Also the data dir, except the one file meant to hold the bootstrap key.
        for entry in std::fs::read_dir(data_dir)? {
            let path = entry?.path();
            if path.is_file() && !path.ends_with("bootstrap-admin-key") {
                all.extend(std::fs::read(path)?);
            }
        }
        return Ok(all);
    }
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(&store.url).await?;
    let tables: Vec<String> =
        sqlx::query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
    ensure!(tables.iter().any(|t| t == "api_keys"), "found the tables: {tables:?}");
    let mut all = Vec::new();
    for t in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT t::text FROM \"{t}\" t")))
            .fetch_all(&mut conn)
            .await?;
        for r in rows {
            all.extend(r.get::<String, _>(0).into_bytes());
        }
    }
    Ok(all)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn accounts_keys_and_isolation(store: TempStore) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().join("data");
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config(&data_dir, &store.url, ""), &[])?;
    let addr = server.listening("http").await?;
    let api = Api::http(addr)?;
    let mut cli_err = String::new();
    let mut secrets: Vec<String> = Vec::new();

    // First start: a master account and an admin key, printed once and saved 0600.
    let key_file = data_dir.join("bootstrap-admin-key");
    let admin = std::fs::read_to_string(&key_file)?.trim().to_owned();
    use std::os::unix::fs::PermissionsExt;
    ensure!(
        std::fs::metadata(&key_file)?.permissions().mode() & 0o777 == 0o600,
        "key file is 0600"
    );
    ensure!(
        server.stdout().matches(&admin).count() == 1,
        "the bootstrap key is printed once"
    );
    ensure!(
        data_dir.join("tls/cert.pem").exists(),
        "a self-signed certificate was made"
    );
    secrets.push(admin.clone());
    let everyone = api.call("GET", "/api/v1/accounts").key(&admin).send().await?;
    expect(&everyone, 200, "admin lists accounts")?;
    ensure!(
        names(&everyone) == ["main"],
        "only the bootstrap account so far: {}",
        everyone.body
    );

    // A master and a sub through the CLI, another sub through the API.
    let acme_id = cli(&server, &["account", "create", "acme"], &mut cli_err)?;
    ensure!(
        acme_id.trim().starts_with("acc_"),
        "account create prints the id: {acme_id}"
    );
    cli(
        &server,
        &["account", "create", "acme-eu", "--parent", "acme"],
        &mut cli_err,
    )?;
    cli(&server, &["account", "create", "globex"], &mut cli_err)?;
    let master_key = cli(
        &server,
        &["api-key", "create", "--account", "acme", "--label", "ops"],
        &mut cli_err,
    )?
    .trim()
    .to_owned();
    let eu_key = cli(&server, &["api-key", "create", "--account", "acme-eu"], &mut cli_err)?
        .trim()
        .to_owned();
    let globex_key = cli(&server, &["api-key", "create", "--account", "globex"], &mut cli_err)?
        .trim()
        .to_owned();
    secrets.extend([master_key.clone(), eu_key.clone(), globex_key.clone()]);

    let us = api
        .call("POST", "/api/v1/accounts")
        .key(&master_key)
        .json(json!({"name": "acme-us"}))
        .send()
        .await?;
    expect(&us, 201, "a master creates a sub")?;
    ensure!(us.body["kind"] == "sub" && us.body["parent"] == "acme", "{}", us.body);
    let dup = api
        .call("POST", "/api/v1/accounts")
        .key(&master_key)
        .json(json!({"name": "acme-eu"}))
        .send()
        .await?;
    expect_error(&dup, 409, "conflict", "a taken name")?;
    let bad = api
        .call("POST", "/api/v1/accounts")
        .key(&master_key)
        .json(json!({"name": "no spaces"}))
        .send()
        .await?;
    expect_error(&bad, 422, "invalid_request", "a malformed name")?;
    ensure!(
        str_of(&bad.body["error"], "message")?.contains("no spaces"),
        "the message names the value"
    );

    // The master issues the US sub's key through the header.
    let created = api
        .call("POST", "/api/v1/api-keys")
        .key(&master_key)
        .on_behalf_of("acme-us")
        .send()
        .await?;
    expect(&created, 201, "a key for a sub via Herald-Account")?;
    let us_key = str_of(&created.body, "key")?.to_owned();
    let us_key_id = str_of(&created.body, "id")?.to_owned();
    ensure!(
        us_key.starts_with(str_of(&created.body, "prefix")?),
        "the key starts with its listed prefix"
    );
    secrets.push(us_key.clone());

    // SMTP credentials: one by CLI, one by API; the password is printed once.
    let printed = cli(
        &server,
        &["smtp-credential", "create", "--account", "acme-eu"],
        &mut cli_err,
    )?;
    let eu_password = printed
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .context("password line")?
        .to_owned();
    let eu_username = printed
        .lines()
        .find_map(|l| l.strip_prefix("username: "))
        .context("username line")?
        .to_owned();
    ensure!(eu_username.starts_with("acme-eu-"), "{eu_username}");
    let cred = api
        .call("POST", "/api/v1/smtp-credentials")
        .key(&us_key)
        .json(json!({"label": "app"}))
        .send()
        .await?;
    expect(&cred, 201, "a sub creates its own SMTP credential")?;
    secrets.extend([eu_password, str_of(&cred.body, "password")?.to_owned()]);
    let listed = api
        .call("GET", "/api/v1/smtp-credentials")
        .key(&master_key)
        .on_behalf_of("acme-eu")
        .send()
        .await?;
    expect(&listed, 200, "master lists a sub's credentials")?;
    ensure!(
        listed.body["data"][0]["username"] == eu_username.as_str(),
        "{}",
        listed.body
    );
    ensure!(
        listed.body["data"][0].get("password").is_none(),
        "listings never carry the password"
    );

    // Isolation: a sub cannot see or touch its sibling; 404, never 403.
    for (method, path) in [
        ("GET", "/api/v1/accounts/acme-us"),
        ("GET", "/api/v1/accounts/acme"),
        ("GET", "/api/v1/accounts/globex"),
        ("POST", "/api/v1/accounts/acme-us/suspend"),
        ("DELETE", "/api/v1/accounts/acme-us"),
        ("POST", "/api/v1/accounts/acme-us/promote"),
    ] {
        let a = api.call(method, path).key(&eu_key).send().await?;
        expect_error(&a, 404, "not_found", &format!("sibling {method} {path}"))?;
    }
    let via_header = api
        .call("GET", "/api/v1/api-keys")
        .key(&eu_key)
        .on_behalf_of("acme-us")
        .send()
        .await?;
    expect_error(
        &via_header,
        404,
        "not_found",
        "a sub naming its sibling in Herald-Account",
    )?;
    let steal = api
        .call("DELETE", &format!("/api/v1/api-keys/{us_key_id}"))
        .key(&eu_key)
        .send()
        .await?;
    expect_error(&steal, 404, "not_found", "revoking a sibling's key")?;
    let still = api.call("GET", "/api/v1/api-keys").key(&us_key).send().await?;
    expect(&still, 200, "the sibling's key still works")?;
    let own = api.call("GET", "/api/v1/api-keys").key(&eu_key).send().await?;
    ensure!(
        own.body["data"].as_array().map(Vec::len) == Some(1),
        "a sub lists its own keys only: {}",
        own.body
    );
    ensure!(eu_key.starts_with(str_of(&own.body["data"][0], "prefix")?));
    let create_sub = api
        .call("POST", "/api/v1/accounts")
        .key(&eu_key)
        .json(json!({"name": "eu-team"}))
        .send()
        .await?;
    expect_error(&create_sub, 403, "forbidden", "a sub creating an account")?;
    let subs_of_sub = api.call("GET", "/api/v1/accounts").key(&eu_key).send().await?;
    ensure!(
        names(&subs_of_sub).is_empty(),
        "a sub has no subs: {}",
        subs_of_sub.body
    );
    let other_master = api
        .call("GET", "/api/v1/senders")
        .key(&master_key)
        .on_behalf_of("globex")
        .send()
        .await?;
    expect_error(&other_master, 404, "not_found", "a master naming another master")?;
    let globex_sees = api
        .call("GET", "/api/v1/accounts/acme-eu")
        .key(&globex_key)
        .send()
        .await?;
    expect_error(&globex_sees, 404, "not_found", "another master's sub")?;

    // The master reaches its subs, and only its subs.
    let subs = api.call("GET", "/api/v1/accounts").key(&master_key).send().await?;
    ensure!(names(&subs) == ["acme-eu", "acme-us"], "{}", subs.body);
    // A brand approves only domains it verified (tests/brands.rs covers
    // the rule with real DNS); an operator may override, and only an
    // operator.
    let unverified = api
        .call("POST", "/api/v1/senders")
        .key(&master_key)
        .on_behalf_of("acme-eu")
        .json(json!({"sender": "@Acme.EU"}))
        .send()
        .await?;
    expect_error(&unverified, 422, "refused", "approving an unverified domain")?;
    let self_override = api
        .call("POST", "/api/v1/senders")
        .key(&master_key)
        .on_behalf_of("acme-eu")
        .json(json!({"sender": "@Acme.EU", "override": true}))
        .send()
        .await?;
    expect_error(&self_override, 403, "forbidden", "a tenant overriding the domain check")?;
    let add = api
        .call("POST", "/api/v1/senders")
        .key(&admin)
        .on_behalf_of("acme-eu")
        .json(json!({"sender": "@Acme.EU", "override": true}))
        .send()
        .await?;
    expect(&add, 201, "an admin approves a sender for a sub, overriding")?;
    ensure!(add.body["sender"] == "@acme.eu", "{}", add.body);
    let eu_senders = api.call("GET", "/api/v1/senders").key(&eu_key).send().await?;
    ensure!(
        eu_senders.body["data"][0]["sender"] == "@acme.eu",
        "{}",
        eu_senders.body
    );
    cli(
        &server,
        &[
            "sender",
            "add",
            "--account",
            "acme-eu",
            "billing@acme.com",
            "--override",
        ],
        &mut cli_err,
    )?;
    let listed = cli(
        &server,
        &["--json", "sender", "list", "--account", "acme-eu"],
        &mut cli_err,
    )?;
    let listed: Value = serde_json::from_str(&listed)?;
    ensure!(listed["data"].as_array().map(Vec::len) == Some(2), "{listed}");
    let bad_sender = api
        .call("POST", "/api/v1/senders")
        .key(&eu_key)
        .json(json!({"sender": "@"}))
        .send()
        .await?;
    expect_error(&bad_sender, 422, "invalid_request", "a malformed sender")?;
    let eu_keys = api
        .call("GET", "/api/v1/api-keys")
        .key(&master_key)
        .on_behalf_of("acme-eu")
        .send()
        .await?;
    ensure!(
        eu_key.starts_with(str_of(&eu_keys.body["data"][0], "prefix")?),
        "master sees the sub's keys"
    );

    // Suspension: the sub's key is refused with 403 until reactivated.
    let s = api
        .call("POST", "/api/v1/accounts/acme-eu/suspend")
        .key(&master_key)
        .send()
        .await?;
    expect(&s, 200, "master suspends a sub")?;
    ensure!(s.body["status"] == "suspended");
    let refused = api.call("GET", "/api/v1/senders").key(&eu_key).send().await?;
    expect_error(&refused, 403, "account_suspended", "a suspended account's key")?;
    cli(&server, &["account", "reactivate", "acme-eu"], &mut cli_err)?;
    expect(
        &api.call("GET", "/api/v1/senders").key(&eu_key).send().await?,
        200,
        "reactivated",
    )?;
    // Suspending a master refuses its subs' keys too.
    cli(&server, &["account", "suspend", "acme"], &mut cli_err)?;
    expect_error(
        &api.call("GET", "/api/v1/api-keys").key(&us_key).send().await?,
        403,
        "account_suspended",
        "sub of a suspended master",
    )?;
    expect_error(
        &api.call("GET", "/api/v1/api-keys").key(&master_key).send().await?,
        403,
        "account_suspended",
        "suspended master",
    )?;
    cli(&server, &["account", "reactivate", "acme"], &mut cli_err)?;
    expect(
        &api.call("GET", "/api/v1/api-keys").key(&us_key).send().await?,
        200,
        "master reactivated",
    )?;

    // Revocation: the next request with the key is refused.
    let eu_key_id = str_of(&eu_keys.body["data"][0], "id")?.to_owned();
    let r = api
        .call("DELETE", &format!("/api/v1/api-keys/{eu_key_id}"))
        .key(&master_key)
        .on_behalf_of("acme-eu")
        .send()
        .await?;
    expect(&r, 200, "master revokes a sub's key")?;
    ensure!(r.body["revoked_at"].is_string(), "{}", r.body);
    expect_error(
        &api.call("GET", "/api/v1/senders").key(&eu_key).send().await?,
        401,
        "unauthorized",
        "a revoked key",
    )?;
    let revoked_by_cli = cli(
        &server,
        &["api-key", "revoke", "--account", "globex", &globex_key[..15]],
        &mut cli_err,
    );
    revoked_by_cli.context("revoke by prefix")?;
    expect_error(
        &api.call("GET", "/api/v1/senders").key(&globex_key).send().await?,
        401,
        "unauthorized",
        "revoked by CLI",
    )?;
    expect_error(
        &api.call("GET", "/api/v1/senders").send().await?,
        401,
        "unauthorized",
        "no key",
    )?;
    // The last character changed (to one it is not already).
    let swap = if us_key.ends_with('X') { 'Y' } else { 'X' };
    let forged = format!("{}{swap}", &us_key[..us_key.len() - 1]);
    expect_error(
        &api.call("GET", "/api/v1/senders").key(&forged).send().await?,
        401,
        "unauthorized",
        "a forged key",
    )?;

    // Promotion: the US sub becomes a master; its old master loses it.
    let p = api
        .call("POST", "/api/v1/accounts/acme-us/promote")
        .key(&master_key)
        .send()
        .await?;
    expect(&p, 200, "master promotes its sub")?;
    ensure!(p.body["kind"] == "master" && p.body["parent"].is_null(), "{}", p.body);
    expect_error(
        &api.call("GET", "/api/v1/api-keys")
            .key(&master_key)
            .on_behalf_of("acme-us")
            .send()
            .await?,
        404,
        "not_found",
        "former master",
    )?;
    let team = api
        .call("POST", "/api/v1/accounts")
        .key(&us_key)
        .json(json!({"name": "us-team"}))
        .send()
        .await?;
    expect(&team, 201, "a promoted account creates subs")?;
    cli(&server, &["account", "promote", "us-team"], &mut cli_err)?;
    let shown: Value = serde_json::from_str(&cli(&server, &["--json", "account", "show", "us-team"], &mut cli_err)?)?;
    ensure!(shown["kind"] == "master", "{shown}");

    // Deletion: refused while subs remain, then allowed.
    expect_error(
        &api.call("DELETE", "/api/v1/accounts/acme").key(&admin).send().await?,
        409,
        "conflict",
        "a master with subs",
    )?;
    expect(
        &api.call("DELETE", "/api/v1/accounts/acme-eu")
            .key(&master_key)
            .send()
            .await?,
        204,
        "master deletes its sub",
    )?;
    expect_error(
        &api.call("GET", "/api/v1/accounts/acme-eu")
            .key(&master_key)
            .send()
            .await?,
        404,
        "not_found",
        "deleted",
    )?;

    // Secrets: never in the store, never in a log.
    let stored = store_contents(&store, &data_dir).await?;
    ensure!(
        contains(&stored, "$argon2id$"),
        "the store holds argon2 hashes (searched the right place)"
    );
    let log = server.log();
    ensure!(
        log.contains("API key issued") || log.contains("first start"),
        "the log was captured"
    );
    for secret in &secrets {
        ensure!(!contains(&stored, secret), "a secret is stored in clear");
        ensure!(!log.contains(secret.as_str()), "a secret is in the server log");
        ensure!(!cli_err.contains(secret.as_str()), "a secret is in the CLI's log");
    }

    // Ctrl-C: a clean exit.
    let status = server.interrupt().await?;
    ensure!(status.success(), "graceful shutdown exits 0, got {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_keys_and_isolation_on_sqlite() -> anyhow::Result<()> {
    accounts_keys_and_isolation(TempStore::sqlite()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_keys_and_isolation_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    accounts_keys_and_isolation(TempStore::postgres(&base).await?).await
}
