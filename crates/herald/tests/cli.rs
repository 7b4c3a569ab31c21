//! Issue 18, end to end: a CLI verb for every API operation. The OpenAPI
//! document the binary prints is compared with its command tree (every
//! operation has a command; every command is an operation's or named as
//! local-only), and the verbs added for it are run against a real server:
//! webhooks (with a signed test post to a real receiver), a message's
//! timeline, reputation, health, metrics.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Mode, Options, Receiver, TempStore};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// Each API operation and the command that does it.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/accounts", "account list"),
    ("POST", "/api/v1/accounts", "account create"),
    ("GET", "/api/v1/accounts/{name}", "account show"),
    ("DELETE", "/api/v1/accounts/{name}", "account delete"),
    ("POST", "/api/v1/accounts/{name}/promote", "account promote"),
    ("POST", "/api/v1/accounts/{name}/reactivate", "account reactivate"),
    ("PATCH", "/api/v1/accounts/{name}/settings", "account set"),
    ("POST", "/api/v1/accounts/{name}/suspend", "account suspend"),
    ("GET", "/api/v1/alerts", "alerts list"),
    ("POST", "/api/v1/alerts/{id}/acknowledge", "alerts ack"),
    ("GET", "/api/v1/api-keys", "api-key list"),
    ("POST", "/api/v1/api-keys", "api-key create"),
    ("DELETE", "/api/v1/api-keys/{id}", "api-key revoke"),
    ("GET", "/api/v1/blocklists", "blocklists list"),
    ("POST", "/api/v1/blocklists/check", "blocklists run"),
    ("GET", "/api/v1/checks/blocklists/{target}", "check blocklists"),
    ("GET", "/api/v1/checks/dns/{domain}", "check dns"),
    ("GET", "/api/v1/dmarc/reports", "dmarc reports"),
    ("POST", "/api/v1/dmarc/reports", "dmarc import"),
    ("GET", "/api/v1/dmarc/reports/broken", "dmarc reports"),
    ("GET", "/api/v1/dmarc/sources/export", "dmarc summary"),
    ("GET", "/api/v1/dmarc/summary", "dmarc summary"),
    ("GET", "/api/v1/domains", "domain list"),
    ("POST", "/api/v1/domains", "domain add"),
    ("GET", "/api/v1/domains/{domain}", "domain show"),
    ("DELETE", "/api/v1/domains/{domain}", "domain delete"),
    ("POST", "/api/v1/domains/{domain}/retire", "domain retire"),
    ("POST", "/api/v1/domains/{domain}/rotate", "domain rotate"),
    ("POST", "/api/v1/domains/{domain}/verify", "domain verify"),
    ("GET", "/api/v1/events", "events"),
    ("GET", "/api/v1/events/export", "events"),
    ("POST", "/api/v1/messages", "send"),
    ("GET", "/api/v1/messages/{id}", "message show"),
    ("POST", "/api/v1/messages/{id}/drop", "queue drop"),
    ("POST", "/api/v1/messages/{id}/release", "queue release"),
    ("GET", "/api/v1/openapi.json", "openapi"),
    ("GET", "/api/v1/queue", "queue list"),
    ("GET", "/api/v1/queue/destinations", "queue destinations"),
    ("GET", "/api/v1/queue/{id}", "queue show"),
    ("DELETE", "/api/v1/queue/{id}", "queue purge"),
    ("POST", "/api/v1/queue/{id}/bounce", "queue bounce"),
    ("POST", "/api/v1/queue/{id}/retry", "queue retry"),
    ("GET", "/api/v1/reputation", "reputation"),
    ("GET", "/api/v1/senders", "sender list"),
    ("POST", "/api/v1/senders", "sender add"),
    ("DELETE", "/api/v1/senders/{sender}", "sender remove"),
    ("GET", "/api/v1/smtp-credentials", "smtp-credential list"),
    ("POST", "/api/v1/smtp-credentials", "smtp-credential create"),
    ("DELETE", "/api/v1/smtp-credentials/{id}", "smtp-credential revoke"),
    ("GET", "/api/v1/stats", "stats"),
    ("GET", "/api/v1/suppressions", "suppression list"),
    ("POST", "/api/v1/suppressions", "suppression add"),
    ("GET", "/api/v1/suppressions/export", "suppression export"),
    ("POST", "/api/v1/suppressions/import", "suppression import"),
    ("GET", "/api/v1/suppressions/{address}", "suppression show"),
    ("DELETE", "/api/v1/suppressions/{address}", "suppression remove"),
    ("GET", "/api/v1/tls-reports", "queue tls-reports"),
    ("GET", "/api/v1/users", "user list"),
    ("POST", "/api/v1/users", "user create"),
    ("DELETE", "/api/v1/users/{id}", "user delete"),
    ("GET", "/api/v1/warmup", "queue warmup"),
    ("GET", "/api/v1/webhooks", "webhook list"),
    ("POST", "/api/v1/webhooks", "webhook create"),
    ("GET", "/api/v1/webhooks/{id}", "webhook show"),
    ("DELETE", "/api/v1/webhooks/{id}", "webhook delete"),
    ("GET", "/api/v1/webhooks/{id}/deliveries", "webhook deliveries"),
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/resend",
        "webhook resend",
    ),
    ("POST", "/api/v1/webhooks/{id}/enable", "webhook enable"),
    ("POST", "/api/v1/webhooks/{id}/test", "webhook test"),
    ("GET", "/healthz", "health"),
    ("GET", "/metrics", "metrics"),
];

/// Operations that are not an operator's or integrator's: the links in
/// recipients' mail (opens, clicks, unsubscribes).
const RECIPIENTS_ONLY: &[(&str, &str)] = &[
    ("GET", "/t/c/{token}"),
    ("GET", "/t/o/{token}"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
];

/// Commands with no API operation: they run the server, work on local
/// files or configuration, or read what only the operator's machine has.
const LOCAL_ONLY: &[&str] = &[
    "serve",
    "config init",
    "config check",
    "feedback classify",
    "retention run",
    "rules test",
    "rules list",
    "check senders",
];

fn herald(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(BIN).args(args).output()?)
}

/// The leaf commands of `herald`, as its help lists them.
fn commands(path: &mut Vec<String>, out: &mut Vec<String>) -> anyhow::Result<()> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = herald(&args)?;
    ensure!(help.status.success(), "herald {args:?}");
    let text = String::from_utf8(help.stdout)?;
    let subs: Vec<String> = text
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect();
    if subs.is_empty() {
        out.push(path.join(" "));
    }
    for s in subs {
        path.push(s);
        commands(path, out)?;
        path.pop();
    }
    Ok(())
}

#[test]
fn every_api_operation_has_a_command_and_every_command_an_operation() -> anyhow::Result<()> {
    let printed = herald(&["openapi"])?;
    ensure!(printed.status.success());
    let doc: Value = serde_json::from_slice(&printed.stdout)?;
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().context("paths")? {
        for method in item.as_object().context("item")?.keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ensure!(operations.len() > 60, "{operations:?}");
    let mapped: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .chain(RECIPIENTS_ONLY.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())))
        .collect();
    let without: Vec<_> = operations.difference(&mapped).collect();
    ensure!(without.is_empty(), "API operations without a CLI command: {without:?}");
    let stale: Vec<_> = mapped.difference(&operations).collect();
    ensure!(
        stale.is_empty(),
        "commands mapped to operations that do not exist: {stale:?}"
    );

    let mut tree = Vec::new();
    commands(&mut Vec::new(), &mut tree)?;
    let tree: BTreeSet<String> = tree.into_iter().collect();
    for (_, _, command) in OPERATIONS {
        ensure!(tree.contains(*command), "`herald {command}` does not exist: {tree:?}");
    }
    let used: BTreeSet<&str> = OPERATIONS
        .iter()
        .map(|(_, _, c)| *c)
        .chain(LOCAL_ONLY.iter().copied())
        .collect();
    let unaccounted: Vec<_> = tree.iter().filter(|c| !used.contains(c.as_str())).collect();
    ensure!(
        unaccounted.is_empty(),
        "commands neither an operation's nor local: {unaccounted:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_verbs_work_against_a_running_server() -> anyhow::Result<()> {
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    h.key = h.account("acme", None)?;
    let run = |args: &[&str]| h.server.run(args);
    let as_acme = |args: &[&str]| -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--account", "acme"]);
        let out = h.server.run(&all)?;
        serde_json::from_str(&out).with_context(|| format!("{all:?}: {out}"))
    };

    // Webhooks: create (the secret once), list, show, test (a signed post
    // the receiver sees), deliveries, delete.
    let receiver = Receiver::start(Mode::Ok).await?;
    let made = as_acme(&[
        "webhook",
        "create",
        &receiver.url("/hooks"),
        "--event",
        "delivered",
        "--event",
        "bounced",
    ])?;
    let id = made["id"].as_str().context("id")?.to_owned();
    let secret = made["secret"].as_str().context("secret")?.to_owned();
    ensure!(made["events"] == json!(["delivered", "bounced"]), "{made}");
    let listed = as_acme(&["webhook", "list"])?;
    ensure!(
        listed["data"][0]["id"] == id.as_str() && listed["data"][0]["secret"].is_null(),
        "{listed}"
    );
    let people = run(&["webhook", "list", "--account", "acme"])?;
    ensure!(people.contains(&id) && people.contains("delivered,bounced"), "{people}");
    let tested = as_acme(&["webhook", "test", &id])?;
    ensure!(tested["delivered"] == true, "{tested}");
    let post = receiver.posts().into_iter().next().context("the test post")?;
    let body: Value = serde_json::from_slice(&post.body)?;
    ensure!(body["type"] == "test" && body["account"] == "acme", "{body}");
    // Signed as every post: HMAC-SHA256 of "t.body" with the secret,
    // checked by Python's hmac.
    let signature = post.headers.get("herald-signature").context("signed")?;
    let file = h.dir.path().join("test-post.json");
    std::fs::write(&file, &post.body)?;
    let check = Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, os, sys\n\
             parts = dict(p.split('=', 1) for p in os.environ['SIG'].split(','))\n\
             body = open(sys.argv[1], 'rb').read()\n\
             mac = hmac.new(os.environ['SECRET'].encode(), parts['t'].encode() + b'.' + body, hashlib.sha256).hexdigest()\n\
             print(hmac.compare_digest(mac, parts['v1']))",
        ])
        .arg(&file)
        .env("SECRET", &secret)
        .env("SIG", signature)
        .output()?;
    ensure!(String::from_utf8_lossy(&check.stdout).trim() == "True", "{check:?}");
    // Nothing was owed: the test is not in the delivery log.
    ensure!(as_acme(&["webhook", "deliveries", &id])?["data"] == json!([]));
    // A URL that fails: exit status 1 and the failure's class.
    receiver.set_mode(Mode::Fail(500));
    let failed = h.server.cli(&["webhook", "test", &id, "--account", "acme"])?;
    ensure!(failed.status.code() == Some(1), "{failed:?}");
    ensure!(
        String::from_utf8_lossy(&failed.stdout).contains("HTTP 5xx"),
        "{failed:?}"
    );
    // At most 10 test posts a minute per webhook (two made above).
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let a = h
            .api
            .call("POST", &format!("/api/v1/webhooks/{id}/test"))
            .key(&h.key)
            .send()
            .await?;
        statuses.push((a.status, a.header("retry-after").map(str::to_owned)));
    }
    ensure!(
        statuses[..8].iter().all(|(s, _)| *s == 200) && statuses[8..].iter().all(|(s, r)| *s == 429 && r.is_some()),
        "{statuses:?}"
    );
    // Another account cannot see or test it.
    h.account("globex", None)?;
    let foreign = h.server.cli(&["webhook", "test", &id, "--account", "globex"])?;
    ensure!(!foreign.status.success() && String::from_utf8_lossy(&foreign.stderr).contains("404"));

    // A message's timeline.
    receiver.set_mode(Mode::Ok);
    let sent = h
        .send(json!({"from": "app@acme.test", "to": ["jane@example.test"], "subject": "s", "text": "t"}))
        .await?;
    h.wait_events("delivered", "jane@example.test", 1).await?;
    let shown = as_acme(&["message", "show", &sent])?;
    ensure!(
        shown["recipients"][0]["email"] == "jane@example.test" && shown["recipients"][0]["status"] == "delivered",
        "{shown}"
    );
    let people = run(&["message", "show", &sent, "--account", "acme"])?;
    ensure!(
        people.contains("jane@example.test  delivered") && people.contains("250"),
        "{people}"
    );
    ensure!(
        !h.server
            .cli(&["message", "show", &sent, "--account", "globex"])?
            .status
            .success()
    );

    // Reputation, health, metrics, a suppression looked up.
    let rep = as_acme(&["reputation"])?;
    ensure!(
        rep["account"] == "acme" && rep["score"].as_u64().is_some_and(|s| s <= 100),
        "{rep}"
    );
    ensure!(run(&["health"])?.contains("healthy"));
    ensure!(run(&["metrics"])?.contains("herald_http_requests_total"));
    run(&[
        "suppression",
        "add",
        "--account",
        "acme",
        "Someone@Example.test",
        "--reason",
        "asked in person",
    ])?;
    let found: Value = serde_json::from_str(&run(&[
        "--json",
        "suppression",
        "show",
        "--account",
        "acme",
        "someone@example.test",
    ])?)?;
    ensure!(
        found["address"] == "Someone@example.test" && found["reason"] == "asked in person",
        "{found}"
    );
    let tls: Value = serde_json::from_str(&run(&["--json", "queue", "tls-reports"])?)?;
    ensure!(tls["day"].is_string() && tls["policies"].is_array(), "{tls}");

    // Delete: gone for good.
    run(&["webhook", "delete", &id, "--account", "acme"])?;
    ensure!(as_acme(&["webhook", "list"])?["data"] == json!([]));
    Ok(())
}
