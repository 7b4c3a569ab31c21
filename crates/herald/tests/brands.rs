//! Issue 13, end to end: a tenant sends only as itself. Two brands on one
//! Herald; acme verifies acme.test through a real DNS server. globex may
//! not approve acme.test, and mail in acme.test's name from globex is
//! refused over SMTP (swaks) and the API whatever globex's approvals say
//! (an operator's override included); From fields are parsed, never
//! guessed; acme's own mail is signed with its key and aligned.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Api, DnsServer, HeraldProcess, SmtpSink, Zones};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn zones() -> anyhow::Result<Zones> {
    Ok(Zones::new()
        .mx("example.test", 10, "mx.example.test")
        .ip("mx.example.test", "127.0.0.2".parse()?))
}

struct Brand {
    key: String,
    user: String,
    password: String,
}

fn brand(server: &HeraldProcess, name: &str) -> anyhow::Result<Brand> {
    server.run(&["account", "create", name])?;
    let key = server.run(&["api-key", "create", "--account", name])?.trim().to_owned();
    let cred = server.run(&["smtp-credential", "create", "--account", name])?;
    let field = |label: &str| {
        cred.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(str::to_owned))
            .with_context(|| format!("{label} in {cred}"))
    };
    Ok(Brand {
        key,
        user: field("username: ")?,
        password: field("password: ")?,
    })
}

/// swaks over STARTTLS with AUTH; the whole message is `data` when given.
fn swaks(submission: SocketAddr, b: &Brand, from: &str, data: Option<&str>) -> anyhow::Result<(bool, String)> {
    let port = submission.port().to_string();
    let mut args = vec![
        "--server",
        "127.0.0.1",
        "--port",
        &port,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        &b.user,
        "--auth-password",
        &b.password,
        "--from",
        from,
        "--to",
        "jane@example.test",
    ];
    if let Some(d) = data {
        args.extend(["--data", d]);
    }
    let out = Command::new("swaks")
        .args(&args)
        .output()
        .context("running swaks (apt-get install swaks)")?;
    Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// A message with `from_header` after its first line (swaks takes a first
/// line that starts with "From " for an mbox separator and drops it).
fn message(from_header: &str) -> String {
    format!("To: jane@example.test\n{from_header}\nSubject: brands\n\nHello\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sends_only_as_itself() -> anyhow::Result<()> {
    let sink = SmtpSink::start("127.0.0.2:0", vec![]).await?;
    let mut dns = DnsServer::start(&zones()?).await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[server]\nhostname = \"mta.test\"\ndata_dir = \"{}\"\nshutdown_timeout = \"5s\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://links.mta.test\"\n\
         [smtp]\nsubmission = [\"127.0.0.1:0\"]\nsubmission_tls = []\ninbound = []\n\
         [dns]\nnameservers = [\"{}\"]\n[delivery]\nport = {}\nretry_schedule = [\"1s\"]\n",
        dir.path().join("data").display(),
        dns.addr(),
        sink.addr().port()
    );
    let mut server = HeraldProcess::start(Path::new(BIN), dir.path(), &config, &[])?;
    let api = Api::http(server.listening("http").await?)?;
    let submission = server.listening("smtp-submission").await?;
    let acme = brand(&server, "acme")?;
    let globex = brand(&server, "globex")?;

    // acme registers acme.test, publishes its records and verifies: the
    // domain is acme's, and acme approves senders in it without override.
    let added: Value =
        serde_json::from_str(&server.run(&["--json", "domain", "add", "acme.test", "--account", "acme"])?)?;
    dns.replace(&zones()?.publish(&added["records"])).await?;
    server.run(&["domain", "verify", "acme.test"])?;
    server.run(&["sender", "add", "--account", "acme", "@acme.test"])?;

    // globex may not approve it, by CLI or API.
    let refused = server.cli(&["sender", "add", "--account", "globex", "@acme.test"])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && err.contains("acme.test is not a verified sending domain of this brand"),
        "{err}"
    );
    let api_refused = api
        .call("POST", "/api/v1/senders")
        .key(&globex.key)
        .json(json!({"sender": "ceo@acme.test"}))
        .send()
        .await?;
    ensure!(
        api_refused.status == 422 && api_refused.error_code() == Some("refused"),
        "{}",
        api_refused.body
    );
    let self_override = api
        .call("POST", "/api/v1/senders")
        .key(&globex.key)
        .json(json!({"sender": "ceo@acme.test", "override": true}))
        .send()
        .await?;
    ensure!(self_override.status == 403, "{}", self_override.body);

    // An operator's override (as an approval made before the rule would
    // be) approves it, and `herald check senders` reports it.
    server.run(&["sender", "add", "--account", "globex", "@acme.test", "--override"])?;
    server.run(&["sender", "add", "--account", "globex", "@globex.test", "--override"])?;
    let check = server.cli(&["--json", "check", "senders"])?;
    ensure!(!check.status.success(), "another brand's domain is an error");
    let listed: Value = serde_json::from_slice(&check.stdout)?;
    let rows = listed["data"].as_array().context("data")?;
    ensure!(
        rows.iter()
            .any(|r| r["account"] == "globex" && r["sender"] == "@acme.test" && r["problem"] == "other_brand"),
        "{listed}"
    );

    // Whatever the approvals say, mail in acme.test's name from globex is
    // refused: as the envelope sender, and as a header author.
    let (ok, t) = swaks(submission, &globex, "news@acme.test", None)?;
    ensure!(
        !ok && t.contains("550 5.7.1 <news@acme.test>: the domain belongs to another brand"),
        "{t}"
    );
    let (ok, t) = swaks(
        submission,
        &globex,
        "news@globex.test",
        Some(&message("From: CEO <ceo@acme.test>")),
    )?;
    ensure!(
        !ok && t.contains("550 5.7.1 <ceo@acme.test>: the domain belongs to another brand"),
        "{t}"
    );
    let via_api = api
        .call("POST", "/api/v1/messages")
        .key(&globex.key)
        .json(json!({"from": "news@acme.test", "to": ["jane@example.test"], "subject": "x", "text": "x"}))
        .send()
        .await?;
    ensure!(
        via_api.status == 422 && via_api.error_code() == Some("foreign_domain"),
        "{}",
        via_api.body
    );
    let raw = api
        .call("POST", "/api/v1/messages")
        .key(&globex.key)
        .json(json!({"from": "news@globex.test", "to": ["jane@example.test"],
                     "raw": message("From: news@globex.test\nSender: ceo@acme.test")}))
        .send()
        .await?;
    ensure!(
        raw.status == 422 && raw.error_code() == Some("foreign_domain"),
        "{}",
        raw.body
    );

    // From fields are parsed, not guessed: hidden or ambiguous authors are
    // refused, for acme too.
    for (header, reply) in [
        (
            "From: \"boss@globex.test\" <news@acme.test>",
            "550 5.7.1 <boss@globex.test>",
        ),
        (
            "From: news@acme.test\nFrom: ceo@globex.test",
            "550 5.7.1 <ceo@globex.test>",
        ),
        ("From: ceo@globex.test <news@acme.test>", "550 5.6.0"),
        ("From : ceo@globex.test", "550 5.6.0"),
        ("From: =?utf-8?b?PGNlb0BnbG9iZXgudGVzdD4=?=", "550 5.6.0"),
    ] {
        let (ok, t) = swaks(submission, &acme, "news@acme.test", Some(&message(header)))?;
        ensure!(!ok && t.contains(reply), "{header}: {t}");
    }
    let x_herald = api
        .call("POST", "/api/v1/messages")
        .key(&acme.key)
        .json(json!({"to": ["jane@example.test"], "raw": message("From: news@acme.test\nFrom: a@globex.test")}))
        .send()
        .await?;
    ensure!(x_herald.status == 403, "{}", x_herald.body);

    // acme's own mail goes out signed by acme.test with an aligned return
    // path; nothing refused above reached the remote MX.
    let (ok, t) = swaks(
        submission,
        &acme,
        "news@acme.test",
        Some(&message("From: Acme <news@acme.test>")),
    )?;
    ensure!(ok, "{t}");
    let got = sink.wait_for_messages(1, std::time::Duration::from_secs(30)).await?;
    ensure!(got.len() == 1, "only acme's message was delivered: {}", got.len());
    let text = String::from_utf8_lossy(&got[0].data);
    ensure!(text.contains("d=acme.test"), "{text}");
    ensure!(got[0].mail_from.ends_with("@bounces.acme.test"), "{}", got[0].mail_from);
    Ok(())
}
