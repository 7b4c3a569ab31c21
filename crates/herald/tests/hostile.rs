//! Issue 13: hostile input costs little, and every error answer is the
//! documented JSON shape, whichever layer made it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use base64::Engine;
use herald_testkit::{Harness, Options, TempStore, WAIT, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const MIB: usize = 1024 * 1024;

fn is_error_shape(body: &Value, code: &str) -> bool {
    body["error"]["code"] == code && body["error"]["message"].as_str().is_some_and(|m| !m.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_messages_fit_and_every_refusal_is_json() -> anyhow::Result<()> {
    let o = Options::new(TempStore::sqlite()?)?;
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let base = h.api.base().to_owned();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let send = |body: Vec<u8>| {
        http.post(format!("{base}/api/v1/messages"))
            .bearer_auth(&h.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // A message just under the 25 MiB default, its attachment in base64:
    // taken, and delivered whole.
    let attachment = vec![0xA5u8; 18 * MIB];
    let request = json!({"from": "news@acme.test", "to": ["big@example.test"], "subject": "big", "text": "x",
        "attachments": [{"filename": "big.bin", "content": base64::engine::general_purpose::STANDARD.encode(&attachment)}]});
    let answer = send(serde_json::to_vec(&request)?).await?;
    ensure!(answer.status() == 202, "{}", answer.text().await?);
    let got = h.sink.wait_for_messages(1, WAIT).await?;
    ensure!(got[0].data.len() > 24 * MIB, "{} bytes delivered", got[0].data.len());

    // A message over the limit: 413 in the JSON shape, from acceptance.
    let over = vec![0x5Au8; 20 * MIB];
    let request = json!({"from": "news@acme.test", "to": ["big@example.test"], "subject": "big", "text": "x",
        "attachments": [{"filename": "big.bin", "content": base64::engine::general_purpose::STANDARD.encode(&over)}]});
    let answer = send(serde_json::to_vec(&request)?).await?;
    ensure!(answer.status() == 413);
    ensure!(is_error_shape(&answer.json().await?, "too_large"));
    // A body past what any message could need: 413 from the HTTP layer on
    // the announced length alone, before a byte of it is sent, still JSON.
    // (A raw socket: a client library streaming the body may see the early
    // close as a reset before it reads the answer.)
    let (status, body) = announce_without_sending(&base, &h.key, 52 * MIB).await?;
    ensure!(status == 413, "{status} {body}");
    ensure!(is_error_shape(&serde_json::from_str(&body)?, "too_large"), "{body}");

    // Other layers' refusals.
    let wrong_type = http
        .post(format!("{base}/api/v1/senders"))
        .bearer_auth(&h.key)
        .header("content-type", "text/plain")
        .body("{\"sender\": \"@acme.test\"}")
        .send()
        .await?;
    ensure!(wrong_type.status() == 415);
    ensure!(is_error_shape(&wrong_type.json().await?, "invalid_request"));
    let method = http
        .delete(format!("{base}/api/v1/messages"))
        .bearer_auth(&h.key)
        .send()
        .await?;
    ensure!(method.status() == 405 && method.headers().contains_key("allow"));
    ensure!(is_error_shape(&method.json().await?, "method_not_allowed"));
    let nowhere = http.get(format!("{base}/api/v2/nothing")).send().await?;
    ensure!(nowhere.status() == 404);
    ensure!(is_error_shape(&nowhere.json().await?, "not_found"));
    let garbage = send(b"{not json".to_vec()).await?;
    ensure!(garbage.status() == 400);
    ensure!(is_error_shape(&garbage.json().await?, "invalid_request"));
    Ok(())
}

/// Sends a send request's head announcing `length` bytes of body, sends
/// none of it, and reads the answer: the status and the body.
async fn announce_without_sending(base: &str, key: &str, length: usize) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.strip_prefix("http://").context("an http base")?;
    let mut socket = tokio::net::TcpStream::connect(address).await?;
    let head = format!(
        "POST /api/v1/messages HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            let n = socket.read(&mut buf).await?;
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 {
                break;
            }
            // The answer is complete once its announced length is in.
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let announced = head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                });
                if announced.is_some_and(|a| body.len() >= a) {
                    break;
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(WAIT, read)
        .await
        .context("no answer to a body never sent")??;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").context("an HTTP answer")?;
    let status = head.split(' ').nth(1).context("a status line")?.parse()?;
    Ok((status, body.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_api_authentications_are_limited_per_address() -> anyhow::Result<()> {
    let o = Options::new(TempStore::sqlite()?)?;
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    // Keys are kept as a keyed hash, never argon2: unknown keys are cheap.
    let store = h.store.open().await?;
    let acme = store
        .account_by_name(&herald_types::AccountName::parse("acme")?)
        .await?
        .context("acme")?;
    let keys = store.list_api_keys(&acme.id).await?;
    ensure!(
        keys.iter().all(|k| k.hash.starts_with("hmac-sha256$")),
        "{:?}",
        keys.iter().map(|k| &k.hash).collect::<Vec<_>>()
    );

    // The key with its last character changed (to one it is not: a key
    // ending in `x` made this test pass the right key once in 62 runs).
    let last = if h.key.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &h.key[..h.key.len() - 1]);
    let mut limited = None;
    for n in 0..40 {
        let a = h.api.call("GET", "/api/v1/accounts").key(&wrong).send().await?;
        if a.status == 429 {
            limited = Some((n, a));
            break;
        }
        ensure!(a.status == 401, "{}", a.body);
    }
    let (n, a) = limited.context("429 after repeated failures")?;
    ensure!(n == 30, "held back after 30 failures, not {n}");
    ensure!(
        is_error_shape(&a.body, "rate_limited") && a.header("retry-after").is_some(),
        "{}",
        a.body
    );
    // Even the right key waits from that address: nothing is checked.
    let right = h.api.call("GET", "/api/v1/accounts").key(&h.key).send().await?;
    ensure!(right.status == 429, "{}", right.body);
    // The rest of the server is unaffected: mail still flows.
    let _ = wait_for("the server still answers health checks", WAIT, || async {
        h.api
            .call("GET", "/healthz")
            .send()
            .await
            .ok()
            .filter(|a| a.status == 200)
    })
    .await?;
    Ok(())
}

/// Every file and folder Herald keeps (store, spool, secret, TLS key,
/// the operator's mailboxes) is the owner's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_owner_only() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.smtp = "submission = []\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    h.key = h.account("acme", None)?;
    h.send(json!({"from": "news@acme.test", "to": ["someone@example.test"], "subject": "s", "text": "t"}))
        .await?;
    h.wait_events("delivered", "someone@example.test", 1).await?;
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &inbound.port().to_string(),
            "--from",
            "x@example.test",
        ])
        .args(["--to", "postmaster@mta.test", "--body", "hello"])
        .output()
        .context("swaks")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let mut checked = 0;
    // The data folder, and the SQLite files in the (test's own) folder of
    // the store.
    let mut open = vec![h.dir.path().join("data")];
    for entry in std::fs::read_dir(h.store.dir().context("a SQLite store")?)? {
        open.push(entry?.path());
    }
    while let Some(path) = open.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o777;
        ensure!(mode & 0o077 == 0, "{} is {mode:o}", path.display());
        checked += 1;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                open.push(entry?.path());
            }
        }
    }
    let names = ["herald.db", "secret.key", "bootstrap-admin-key", "journal", "mailbox"];
    for name in names {
        ensure!(
            walk_has(h.dir.path(), name) || walk_has(h.store.dir().context("dir")?, name),
            "{name} was among the files checked"
        );
    }
    ensure!(checked > 10, "{checked} files checked");
    Ok(())
}

fn walk_has(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
        let p = e.path();
        p.file_name().is_some_and(|n| n == name) || (p.is_dir() && walk_has(&p, name))
    })
}

/// `[retention]` prunes old history (here: events older than a second),
/// by the server daily and by `herald retention run` on demand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_what_is_past_its_window() -> anyhow::Result<()> {
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.extra = "[retention]\nevents = \"1s\"\ndmarc_reports = \"0s\"\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let id = h
        .send(json!({"from": "news@acme.test", "to": ["old@example.test"], "subject": "s", "text": "t"}))
        .await?;
    h.wait_events("delivered", "old@example.test", 1).await?;
    let mut pruned = 0;
    wait_for("the message's events pruned past their second", WAIT, || {
        let counts: Option<Value> = h
            .server
            .run(&["--json", "retention", "run"])
            .ok()
            .and_then(|out| serde_json::from_str(&out).ok());
        if let Some(c) = &counts {
            assert!(c.get("dmarc_reports").is_none(), "0s keeps reports forever: {c}");
            pruned += c["events"].as_u64().unwrap_or(0);
        }
        let done = pruned >= 2;
        async move { done.then_some(()) }
    })
    .await?;
    let left = h.events(&format!("message_id={id}")).await?;
    ensure!(left.is_empty(), "{left:?}");
    Ok(())
}

/// A flood of opens costs mail nothing: one reader's repeats within the
/// window are one event with a count, the events reach webhooks in
/// batches, and mail keeps being accepted throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_opens_is_coalesced_and_batched() -> anyhow::Result<()> {
    use herald_testkit::{Mode, Receiver};
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.extra = "[tracking]\ncoalesce_window = \"1s\"\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    h.server.run(&["account", "set", "acme", "--track-opens", "on"])?;
    let receiver = Receiver::start(Mode::Ok).await?;
    let hook = h
        .api
        .call("POST", "/api/v1/webhooks")
        .key(&h.key)
        .json(json!({"url": receiver.url("/hook"), "events": ["opened"]}))
        .send()
        .await?;
    ensure!(hook.status == 201, "{}", hook.body);
    const READERS: usize = 20;
    const OPENS: usize = 50;
    let to: Vec<String> = (0..READERS).map(|n| format!("r{n}@example.test")).collect();
    h.send(json!({"from": "news@acme.test", "to": to.iter().map(|t| json!({"email": t, "substitutions": {"n": "1"}})).collect::<Vec<_>>(),
        "subject": "news", "stream": "newsletter", "html": "<html><body><p>Hello {{n}}</p></body></html>"}))
        .await?;
    let got = h.sink.wait_for_messages(READERS, WAIT).await?;
    let pixels: Vec<String> = got
        .iter()
        .filter_map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(&m.data)?;
            let text = parsed.body_html(0)?.into_owned();
            let start = text.find("https://links.mta.test/t/o/")?;
            let end = text[start..].find('"')? + start;
            Some(text[start + "https://links.mta.test".len()..end].to_owned())
        })
        .collect();
    ensure!(pixels.len() == READERS, "{} pixels", pixels.len());

    // 1,000 opens at once, while mail keeps coming in.
    let base = h.api.base().to_owned();
    let http = reqwest::Client::new();
    let mut opens = tokio::task::JoinSet::new();
    for p in &pixels {
        for _ in 0..OPENS {
            let (http, url) = (http.clone(), format!("{base}{p}"));
            opens.spawn(async move {
                http.get(url)
                    .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            });
        }
    }
    for n in 0..20 {
        h.send(
            json!({"from": "news@acme.test", "to": [format!("during{n}@example.test")], "subject": "s", "text": "t"}),
        )
        .await?;
    }
    while let Some(r) = opens.join_next().await {
        ensure!(r?? == 200);
    }
    let events = wait_for("one open event per reader", WAIT, || async {
        h.events("type=opened&limit=1000")
            .await
            .ok()
            .filter(|e| e.len() >= READERS)
    })
    .await?;
    ensure!(events.len() == READERS, "{} events", events.len());
    ensure!(
        events.iter().all(|e| e["count"] == OPENS),
        "each with its count: {events:?}"
    );
    let posted = wait_for("the opens at the webhook", WAIT, || {
        let posts = receiver.posts();
        let n: usize = posts
            .iter()
            .filter_map(|p| serde_json::from_slice::<Value>(&p.body).ok())
            .map(|v| v.as_array().map_or(1, Vec::len))
            .sum();
        async move { (n >= READERS).then_some(posts) }
    })
    .await?;
    ensure!(
        posted
            .iter()
            .all(|p| serde_json::from_slice::<Value>(&p.body).is_ok_and(|v| v.is_array())),
        "opens are posted in arrays"
    );
    ensure!(
        posted.len() < READERS,
        "{} posts for {READERS} events: batched",
        posted.len()
    );
    Ok(())
}

/// A send with substitutions to many people is stored once — the
/// attachment with it — and each person gets their own copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personalised_send_is_stored_once() -> anyhow::Result<()> {
    let o = Options::new(TempStore::sqlite()?)?;
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    const PEOPLE: usize = 40;
    let attachment = vec![0x3Cu8; 2 * MIB];
    let to: Vec<Value> = (0..PEOPLE)
        .map(|n| json!({"email": format!("p{n}@example.test"), "substitutions": {"n": n.to_string()}}))
        .collect();
    // Held in the queue (the remote MX defers everything at first), so the
    // spool's size can be read.
    h.sink.set_rules(vec![herald_testkit::Rule::new(
        herald_testkit::Phase::Rcpt,
        "*",
        herald_testkit::Behaviour::Reply("451 4.3.0 later".into()),
    )]);
    let id = h
        .send(json!({"from": "news@acme.test", "to": to, "subject": "For {{n}}", "text": "Number {{n}}",
            "attachments": [{"filename": "a.bin", "content": base64::engine::general_purpose::STANDARD.encode(&attachment)}]}))
        .await?;
    h.wait_events("deferred", "p0@example.test", 1).await?;
    let spool = dir_size(&h.dir.path().join("data/spool"));
    ensure!(
        spool < 4 * MIB as u64,
        "the spool holds the message once ({spool} bytes for {PEOPLE} people with a 2 MiB attachment)"
    );
    h.sink.set_rules(Vec::new());
    let got = h.sink.wait_for_messages(PEOPLE, WAIT).await?;
    for m in &got {
        let parsed = mail_parser::MessageParser::default().parse(&m.data).context("parses")?;
        let n = m.rcpt_to[0]
            .trim_start_matches('p')
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        ensure!(
            parsed.subject() == Some(format!("For {n}").as_str()),
            "{:?}",
            parsed.subject()
        );
        ensure!(parsed.body_text(0).is_some_and(|t| t.trim() == format!("Number {n}")));
        ensure!(parsed.attachment(0).is_some_and(|a| a.contents() == &attachment[..]));
    }
    wait_for("a delivered event for each person", WAIT, || async {
        h.events(&format!("type=delivered&message_id={id}&limit=1000"))
            .await
            .ok()
            .filter(|e| e.len() == PEOPLE)
    })
    .await?;
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_size(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}
