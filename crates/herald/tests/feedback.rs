//! Issue 5, end to end through the real binary: what comes back. Bounces
//! sent by swaks to the inbound MX (late DSNs reopen delivered recipients),
//! an ARF complaint to the feedback-loop address, the soft-bounce threshold,
//! the suppression API and CLI (CSV in and out), the mailbox simulator and
//! `herald feedback classify`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{
    Behaviour, Harness, Mode, Options, Phase, Receiver, Rule, TempStore, WAIT, postgres_url, wait_for,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

struct Setup {
    h: Harness,
    inbound: SocketAddr,
}

impl std::ops::Deref for Setup {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

async fn setup() -> anyhow::Result<Setup> {
    setup_on(TempStore::sqlite()?, "").await
}

async fn setup_on(store: TempStore, extra: &str) -> anyhow::Result<Setup> {
    let mut o = Options::new(store)?;
    o.extra = extra.to_owned();
    // A full mailbox waits (its owner may empty it) and bounces soft as
    // mailboxfull when the maximum age runs out: a short one here.
    o.delivery = "max_age = \"3s\"\n".to_owned();
    // The remote server: full@ always answers "mailbox full".
    o.sink_rules = vec![Rule::new(
        Phase::Rcpt,
        "full@example.test",
        Behaviour::Reply("552 5.2.2 Mailbox full".to_owned()),
    )];
    o.smtp = "submission = []\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    h.server.run(&["account", "create", "acme"])?;
    h.key = h.account("acme-news", Some("acme"))?;
    // Two soft bounces within a day suppress, for this account.
    h.server.run(&["account", "set", "acme-news", "--soft-bounces", "2"])?;
    Ok(Setup { h, inbound })
}

impl Setup {
    async fn send(&self, to: &str) -> anyhow::Result<String> {
        self.h
            .send(json!({
                "from": "news@acme.test",
                "to": [to],
                "subject": "Spring news",
                "text": "Hello",
                "tags": ["spring"],
            }))
            .await
    }

    async fn suppression(&self, address: &str) -> anyhow::Result<(u16, Value)> {
        let a = self
            .api
            .call("GET", &format!("/api/v1/suppressions/{address}"))
            .key(&self.key)
            .send()
            .await?;
        Ok((a.status, a.body))
    }

    /// Hands `body` to the inbound MX for `rcpt` with swaks; the transcript.
    fn inbound(&self, rcpt: &str, body: &str) -> anyhow::Result<(bool, String)> {
        let file = self.dir.path().join("inbound.eml");
        std::fs::write(&file, body)?;
        let out = Command::new("swaks")
            .args([
                "--server",
                &self.inbound.ip().to_string(),
                "--port",
                &self.inbound.port().to_string(),
                "--from",
                "",
                "--to",
                rcpt,
                "--data",
            ])
            .arg(&file)
            .output()
            .context("running swaks (apt-get install swaks)")?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// The message the sink got for `rcpt`: its return path and Message-ID.
    async fn delivered_to(&self, rcpt: &str) -> anyhow::Result<(String, String)> {
        let got = wait_for(&format!("a message for {rcpt} at the sink"), WAIT, || {
            let m = self.sink.messages().into_iter().find(|m| m.rcpt_to == [rcpt]);
            async move { m }
        })
        .await?;
        let message = mail_parser::MessageParser::default()
            .parse(&got.data)
            .context("the delivered message parses")?;
        let id = message.message_id().context("a Message-ID")?.to_owned();
        Ok((got.mail_from, id))
    }
}

/// An RFC 3464 DSN, as a remote MTA writes one after it first said 250.
fn dsn(rcpt: &str, status: &str, diagnostic: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\n\
To: bounces@mta.test\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.test\r\n\
\r\n\
Final-Recipient: rfc822; {rcpt}\r\n\
Action: failed\r\n\
Status: {status}\r\n\
Remote-MTA: dns; store.example.test\r\n\
Diagnostic-Code: smtp; {diagnostic}\r\n\
\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: news@acme.test\r\n\
To: {rcpt}\r\n\
Subject: Spring news\r\n\
Message-ID: <{message_id}>\r\n\
\r\n\
--b1--\r\n"
    )
}

/// An ARF report (RFC 5965) as a mailbox provider's feedback loop sends it.
fn arf(rcpt: &str, return_path: &str, message_id: &str) -> String {
    format!(
        "From: fbl@provider.test\r\n\
To: fbl@mta.test\r\n\
Subject: Complaint about message from acme.test\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n\
\r\n\
--arf\r\n\
Content-Type: text/plain\r\n\
\r\n\
This is an email abuse report.\r\n\
\r\n\
--arf\r\n\
Content-Type: message/feedback-report\r\n\
\r\n\
Feedback-Type: abuse\r\n\
User-Agent: ProviderFBL/1.0\r\n\
Version: 1\r\n\
Original-Mail-From: <{return_path}>\r\n\
Original-Rcpt-To: <{rcpt}>\r\n\
\r\n\
--arf\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Return-Path: <{return_path}>\r\n\
From: news@acme.test\r\n\
To: {rcpt}\r\n\
Subject: Spring news\r\n\
Message-ID: <{message_id}>\r\n\
\r\n\
Hello\r\n\
--arf--\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_complaints_and_suppressions_close_the_loop_on_sqlite() -> anyhow::Result<()> {
    close_the_loop(setup().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_complaints_and_suppressions_close_the_loop_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    close_the_loop(setup_on(TempStore::postgres(&base).await?, "").await?).await
}

async fn close_the_loop(s: Setup) -> anyhow::Result<()> {
    // Only managed addresses are taken by the inbound MX.
    let (ok, t) = s.inbound("someone@mta.test", "Subject: hi\r\n\r\nhi\r\n")?;
    ensure!(!ok && t.contains("550 5.7.1"), "{t}");
    // A DMARC report address takes reports; one that cannot be read is
    // kept whole, with its error (issue 7 tests readable ones).
    let report = "From: noreply-dmarc@provider.test\r\nSubject: Report domain: acme.test\r\n\r\n<feedback/>\r\n";
    let (ok, t) = s.inbound("dmarc@mta.test", report)?;
    ensure!(ok, "{t}");
    let kept: Value = serde_json::from_str(&s.server.run(&["dmarc", "reports", "--broken", "--json"])?)?;
    let kept = kept["data"].as_array().context("a list")?;
    ensure!(kept.len() == 1 && kept[0]["origin"] == "mx", "{kept:?}");
    ensure!(kept[0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{kept:?}");

    // A late DSN: delivered first, then the remote server bounces it to
    // the VERP return path. The recipient is reopened as a hard bounce and
    // suppressed at once.
    let first = s.send("user@example.test").await?;
    s.wait_events("delivered", "user@example.test", 1).await?;
    let (return_path, header_id) = s.delivered_to("user@example.test").await?;
    ensure!(return_path.starts_with('b'), "{return_path}");
    let body = dsn(
        "user@example.test",
        "5.1.1",
        "550 5.1.1 <user@example.test>: Recipient address rejected: User unknown",
        &header_id,
    );
    let (ok, t) = s.inbound(&return_path, &body)?;
    ensure!(ok, "the bounce is taken: {t}");
    let bounced = s.wait_events("bounced", "user@example.test", 1).await?;
    let b = &bounced[0];
    ensure!(
        b["message_id"] == first.as_str()
            && b["bounce"]["class"] == "hard"
            && b["bounce"]["reason"] == "userunknown"
            && b["smtp"]["enhanced"] == "5.1.1"
            && b["smtp"]["phase"] == "dsn"
            && b["tags"] == json!(["spring"]),
        "{b}"
    );
    // 250 came after the events were stored: the suppression is there now.
    let (status, entry) = s.suppression("user@example.test").await?;
    ensure!(status == 200 && entry["reason"] == "hard_bounce", "{status} {entry}");
    ensure!(entry["source_event"] == b["id"], "{entry}");
    let again = s.send("user@example.test").await?;
    let dropped = s.wait_events("dropped", "user@example.test", 1).await?;
    ensure!(
        dropped[0]["message_id"] == again.as_str() && dropped[0]["reason"] == "suppressed: hard_bounce",
        "{dropped:?}"
    );

    // A DSN for a full mailbox, matched by Message-ID at the plain bounce
    // address: a deferral (the mailbox may empty), not a bounce.
    s.send("busy@example.test").await?;
    s.wait_events("delivered", "busy@example.test", 1).await?;
    let (_, busy_id) = s.delivered_to("busy@example.test").await?;
    let body = dsn("busy@example.test", "4.2.2", "452 4.2.2 Mailbox full", &busy_id);
    let (ok, t) = s.inbound("bounces@mta.test", &body)?;
    ensure!(ok, "{t}");
    let deferred = s.wait_events("deferred", "busy@example.test", 1).await?;
    ensure!(
        deferred[0]["bounce"]["reason"] == "mailboxfull" && deferred[0]["bounce"]["class"] == "soft",
        "{deferred:?}"
    );
    ensure!(s.suppression("busy@example.test").await?.0 == 404);

    // An ARF complaint: `complained`, and the address is suppressed for
    // the whole brand (the entry lives on the master account).
    s.send("reader@example.test").await?;
    s.wait_events("delivered", "reader@example.test", 1).await?;
    let (rp, reader_id) = s.delivered_to("reader@example.test").await?;
    let (ok, t) = s.inbound("fbl@mta.test", &arf("reader@example.test", &rp, &reader_id))?;
    ensure!(ok, "{t}");
    let complained = s.wait_events("complained", "reader@example.test", 1).await?;
    ensure!(complained[0]["reason"] == "abuse", "{complained:?}");
    let (status, entry) = s.suppression("reader@example.test").await?;
    ensure!(
        status == 200 && entry["reason"] == "complaint" && entry["brand"] == true && entry["account"] == "acme",
        "{status} {entry}"
    );
    let master = s.server.run(&["suppression", "list", "--account", "acme"])?;
    ensure!(
        master.contains("reader@example.test") && master.contains("complaint"),
        "{master}"
    );

    // The soft-bounce threshold (2 for this account): a mailbox still full
    // when two messages run out of time is suppressed; the third message
    // is dropped.
    for n in 1..=2 {
        s.send("full@example.test").await?;
        let bounced = s.wait_events("bounced", "full@example.test", n).await?;
        let b = &bounced[n - 1]["bounce"];
        ensure!(b["class"] == "soft" && b["reason"] == "mailboxfull", "{bounced:?}");
    }
    let deferred = s.events("type=deferred&recipient=full@example.test").await?;
    ensure!(
        deferred.iter().all(|e| e["reason"] == "mailboxfull"),
        "retried while the mailbox was full: {deferred:?}"
    );
    let (status, entry) = wait_for("full@ suppressed", WAIT, || async {
        s.suppression("full@example.test")
            .await
            .ok()
            .filter(|(status, _)| *status == 200)
    })
    .await?;
    ensure!(entry["reason"] == "soft_bounces", "{status} {entry}");
    s.send("full@example.test").await?;
    s.wait_events("dropped", "full@example.test", 1).await?;

    // The mailto List-Unsubscribe of bulk mail: a message to it
    // unsubscribes the reader for the brand.
    let answer = s
        .api
        .call("POST", "/api/v1/messages")
        .key(&s.key)
        .json(
            json!({"from": "news@acme.test", "to": ["fan@example.test"], "subject": "Weekly",
            "text": "Hello", "stream": "newsletter"}),
        )
        .send()
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let got = wait_for("the newsletter at the sink", WAIT, || {
        let m = s
            .sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == ["fan@example.test"]);
        async move { m }
    })
    .await?;
    let data = String::from_utf8_lossy(&got.data).into_owned();
    let mailto = data
        .split("<mailto:")
        .nth(1)
        .and_then(|rest| rest.split(['>', '?']).next())
        .context("a mailto List-Unsubscribe")?
        .to_owned();
    ensure!(mailto.starts_with('u'), "{mailto}");
    let (ok, t) = s.inbound(&mailto, "Subject: unsubscribe\r\n\r\nunsubscribe\r\n")?;
    ensure!(ok, "{t}");
    let unsubscribed = s.wait_events("unsubscribed", "fan@example.test", 1).await?;
    ensure!(unsubscribed[0]["reason"] == "mailto", "{unsubscribed:?}");
    let (status, entry) = s.suppression("fan@example.test").await?;
    ensure!(
        status == 200 && entry["reason"] == "unsubscribe" && entry["brand"] == true,
        "{status} {entry}"
    );

    // The suppression API: add (the local part's case kept, the domain
    // lower-cased), list with search, remove (any case).
    let added = s
        .api
        .call("POST", "/api/v1/suppressions")
        .key(&s.key)
        .json(json!({"address": "Manual@Example.test"}))
        .send()
        .await?;
    ensure!(
        added.status == 201 && added.body["address"] == "Manual@example.test" && added.body["reason"] == "manual",
        "{}",
        added.body
    );
    let bad = s
        .api
        .call("POST", "/api/v1/suppressions")
        .key(&s.key)
        .json(json!({"address": "not an address"}))
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);
    let listed = s
        .api
        .call("GET", "/api/v1/suppressions?search=example.test&limit=2")
        .key(&s.key)
        .send()
        .await?;
    let page: Vec<&str> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["address"].as_str())
        .collect();
    ensure!(page == ["full@example.test", "Manual@example.test"], "{}", listed.body);
    let cursor = listed.body["next_cursor"].as_str().context("a next page")?;
    let next = s
        .api
        .call(
            "GET",
            &format!("/api/v1/suppressions?search=example.test&limit=2&cursor={cursor}"),
        )
        .key(&s.key)
        .send()
        .await?;
    ensure!(
        next.body["data"][0]["address"] == "user@example.test" && next.body["next_cursor"].is_null(),
        "{}",
        next.body
    );
    let removed = s
        .api
        .call("DELETE", "/api/v1/suppressions/manual@example.test")
        .key(&s.key)
        .send()
        .await?;
    ensure!(removed.status == 204);
    ensure!(s.suppression("manual@example.test").await?.0 == 404);

    // CSV through the CLI: import another platform's export, export ours.
    let csv = s.dir.path().join("import.csv");
    std::fs::write(
        &csv,
        "email,reason,created\r\nold1@example.test,bounce,2024\nold2@example.test,,2024\n",
    )?;
    let imported: Value = serde_json::from_str(&s.server.run(&[
        "--json",
        "suppression",
        "import",
        "--account",
        "acme-news",
        csv.to_str().context("path")?,
    ])?)?;
    ensure!(
        imported == json!({"rows": 2, "added": 2, "skipped": 0, "errors": []}),
        "{imported}"
    );
    let exported = s.server.run(&["suppression", "export", "--account", "acme-news"])?;
    let lines: Vec<&str> = exported.lines().collect();
    ensure!(lines[0] == "address,reason,created_at,source_event,brand", "{exported}");
    ensure!(
        lines.iter().any(|l| l.starts_with("old1@example.test,bounce,"))
            && lines.iter().any(|l| l.starts_with("old2@example.test,import,"))
            && lines
                .iter()
                .any(|l| l.starts_with("user@example.test,hard_bounce,") && l.contains(",evt_")),
        "{exported}"
    );
    s.server
        .run(&["suppression", "remove", "--account", "acme-news", "old1@example.test"])?;
    let after = s
        .server
        .run(&["suppression", "list", "--account", "acme-news", "--search", "old"])?;
    ensure!(!after.contains("old1@") && after.contains("old2@"), "{after}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_simulator_plays_every_outcome() -> anyhow::Result<()> {
    let s = setup().await?;
    let sim = |local: &str| format!("{local}@simulator.herald.test");
    for local in ["success", "bounce", "softbounce", "complaint", "ooto", "suppressed"] {
        s.send(&sim(local)).await?;
    }
    s.wait_events("delivered", &sim("success"), 1).await?;
    let b = s.wait_events("bounced", &sim("bounce"), 1).await?;
    ensure!(
        b[0]["bounce"]["class"] == "hard" && b[0]["bounce"]["reason"] == "userunknown",
        "{b:?}"
    );
    ensure!(s.suppression(&sim("bounce")).await?.1["reason"] == "hard_bounce");
    s.wait_events("delivered", &sim("softbounce"), 1).await?;
    let deferred = s.wait_events("deferred", &sim("softbounce"), 2).await?;
    ensure!(deferred.len() == 2, "deferred twice, then delivered: {deferred:?}");
    s.wait_events("delivered", &sim("complaint"), 1).await?;
    s.wait_events("complained", &sim("complaint"), 1).await?;
    let (status, entry) = wait_for("complaint@ suppressed", WAIT, || async {
        s.suppression(&sim("complaint")).await.ok().filter(|(st, _)| *st == 200)
    })
    .await?;
    ensure!(
        entry["reason"] == "complaint" && entry["brand"] == true,
        "{status} {entry}"
    );
    s.wait_events("delivered", &sim("ooto"), 1).await?;
    let replied = s.wait_events("replied", &sim("ooto"), 1).await?;
    ensure!(replied[0]["reason"] == "auto_reply", "{replied:?}");
    let dropped = s.wait_events("dropped", &sim("suppressed"), 1).await?;
    ensure!(dropped[0]["reason"] == "suppressed: simulator", "{dropped:?}");
    ensure!(
        s.sink
            .messages()
            .iter()
            .all(|m| !m.rcpt_to.iter().any(|r| r.ends_with("simulator.herald.test"))),
        "simulated mail never leaves the machine"
    );

    // `herald feedback classify`: one tab-separated line per recipient.
    let file = s.dir.path().join("bounce.eml");
    std::fs::write(
        &file,
        dsn("gone@example.test", "5.1.1", "550 5.1.1 User unknown", "x@acme.test"),
    )?;
    let out = s
        .server
        .run(&["feedback", "classify", file.to_str().context("path")?])?;
    ensure!(
        out.trim_end() == format!("{}\t1\tuserunknown\t5.1.1\t550\ttrue\tpostfix", file.display()),
        "{out}"
    );

    // Folders (read recursively) and mbox files, in parallel, in order, with
    // the decoder that recognised each message; a file that is not a bounce
    // says so.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora/sisimai-set-of-emails");
    let tree = s.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("deeper/still"))?;
    std::fs::copy(corpus.join("maildir/bsd/lhost-postfix-01.eml"), tree.join("a.eml"))?;
    std::fs::copy(corpus.join("maildir/bsd/lhost-exim-01.eml"), tree.join("deeper/b.eml"))?;
    std::fs::copy(
        corpus.join("maildir/bsd/lhost-qmail-01.eml"),
        tree.join("deeper/still/c.eml"),
    )?;
    std::fs::copy(corpus.join("mailbox/mbox-0"), tree.join("deeper/d.mbox"))?;
    std::fs::write(tree.join("deeper/e.txt"), "Subject: hello\n\njust a note\n")?;
    let out = s
        .server
        .run(&["feedback", "classify", "--jobs", "2", tree.to_str().context("path")?])?;
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let first = |suffix: &str| lines.iter().find(|l| l[0].ends_with(suffix));
    ensure!(first("a.eml").is_some_and(|l| l[6] == "postfix"), "{out}");
    ensure!(first("b.eml").is_some_and(|l| l[6] == "exim"), "{out}");
    ensure!(first("c.eml").is_some_and(|l| l[6] == "qmail"), "{out}");
    ensure!(
        first("e.txt").is_some_and(|l| l[1] == "-" && l[2].starts_with("not a bounce")),
        "{out}"
    );
    let mbox: Vec<&Vec<&str>> = lines.iter().filter(|l| l[0].contains("d.mbox#")).collect();
    ensure!(
        (1..=37).all(|n| mbox.iter().any(|l| l[0].ends_with(&format!("d.mbox#{n}")))),
        "every message of the mbox file is classified: {out}"
    );
    // Sorted walk: a.eml, then deeper/b.eml, deeper/d.mbox, deeper/e.txt,
    // then deeper/still/c.eml.
    let order: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    let at = |suffix: &str| order.iter().position(|f| f.ends_with(suffix));
    ensure!(
        at("a.eml") < at("b.eml") && at("b.eml") < at("d.mbox#1") && at("e.txt") < at("c.eml"),
        "{out}"
    );
    // A large folder (its files are fetched ahead of the workers): every
    // sample of maildir/bsd, each classified once, in the walk's order, the
    // same with one worker or two.
    let bsd = corpus.join("maildir/bsd");
    let count = std::fs::read_dir(&bsd)?.count();
    ensure!(count > 400, "the corpus is there ({count} files)");
    let by = |jobs: &str| {
        s.server
            .run(&["feedback", "classify", "--jobs", jobs, bsd.to_str().context("path")?])
    };
    let (one, two) = (by("1")?, by("2")?);
    ensure!(one == two, "--jobs 1 and --jobs 2 print the same");
    let mut files: Vec<&str> = Vec::new();
    for l in two.lines() {
        // A file read as an mbox prints `FILE#N` for each of its messages.
        let f = l.split('\t').next().unwrap_or("");
        let f = f.rsplit_once('#').map_or(f, |(f, _)| f);
        if files.last() != Some(&f) {
            files.push(f);
        }
    }
    let mut sorted = files.clone();
    sorted.sort();
    sorted.dedup();
    ensure!(
        files == sorted && files.len() == count,
        "{} of {count} files, in order",
        files.len()
    );

    // A path that does not exist is reported, the others still classified.
    let missing = s.dir.path().join("missing");
    let err = s.server.run(&[
        "feedback",
        "classify",
        missing.to_str().context("path")?,
        file.to_str().context("path")?,
    ]);
    ensure!(err.is_err(), "a missing path fails the command");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_sorted_and_passed_on() -> anyhow::Result<()> {
    let mut s = setup_on(TempStore::sqlite()?, "[inbound]\nforwards_per_hour = 1\n").await?;
    // The brand's domain is verified, so its own mail is signed with its
    // key: a reply's From in that domain must not earn a signature.
    let added: Value =
        serde_json::from_str(
            &s.server
                .run(&["--json", "domain", "add", "acme.test", "--account", "acme"])?,
        )?;
    s.h.dns.replace(&Harness::zones()?.publish(&added["records"])).await?;
    s.server.run(&["domain", "verify", "acme.test"])?;
    // The account's reply URL fails until the test lets it answer.
    let receiver = Receiver::start(Mode::Fail(500)).await?;
    let url = receiver.url("/replies");
    s.server.run(&[
        "account",
        "set",
        "acme-news",
        "--reply-url",
        &url,
        "--reply-forward",
        "owner@example.test",
    ])?;
    let answer = s
        .api
        .call("POST", "/api/v1/messages")
        .key(&s.key)
        .json(
            json!({"from": "news@acme.test", "to": ["reader@example.test"], "subject": "Weekly",
            "text": "Hello", "stream": "newsletter"}),
        )
        .send()
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let message_id = answer.body["id"].as_str().context("id")?.to_owned();
    let got = wait_for("the newsletter at the sink", WAIT, || {
        let m = s
            .sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == ["reader@example.test"]);
        async move { m }
    })
    .await?;
    let parsed = mail_parser::MessageParser::default()
        .parse(&got.data)
        .context("parses")?;
    let reply_to = parsed
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .context("a Reply-To")?
        .to_owned();
    ensure!(
        reply_to.starts_with('r') && reply_to.ends_with("@bounces.acme.test"),
        "the reply address is in the brand's aligned return-path domain: {reply_to}"
    );
    let reply_to_address = reply_to.clone();

    // Machines: recorded and dropped.
    let (ok, t) = s.inbound(
        &reply_to,
        "From: reader@example.test\r\nSubject: Out of Office: Weekly\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n",
    )?;
    ensure!(ok, "{t}");
    let (ok, t) = s.inbound(
        &reply_to,
        "From: reader@example.test\r\nSubject: Please confirm your message\r\nX-Boxbe-Challenge: 1\r\n\r\nClick to confirm.\r\n",
    )?;
    ensure!(ok, "{t}");
    let sorted = s.wait_events("replied", "reader@example.test", 2).await?;
    let reasons: Vec<&str> = sorted.iter().filter_map(|e| e["reason"].as_str()).collect();
    ensure!(reasons == ["auto_reply", "challenge"], "{sorted:?}");
    ensure!(receiver.attempts() == 0, "nothing posted for machines");

    // A person: the URL fails once, so the MX asks the sender to retry;
    // the retry is posted and forwarded, and recorded once.
    // A stranger can write any From: this one claims the brand's domain.
    let person = "From: Reader <ceo@acme.test>\r\nSubject: Re: Weekly\r\nMessage-ID: <r1@example.test>\r\nX-Herald-Stream: newsletter\r\n\r\nThanks, see you Friday!\r\n";
    let (ok, t) = s.inbound(&reply_to, person)?;
    ensure!(!ok && t.contains("451"), "a failing URL defers the reply: {t}");
    receiver.set_mode(Mode::Ok);
    let (ok, t) = s.inbound(&reply_to, person)?;
    ensure!(ok, "{t}");
    let posted: Vec<Value> = receiver
        .posts()
        .iter()
        .map(|p| serde_json::from_slice(&p.body))
        .collect::<Result<_, _>>()?;
    ensure!(posted.len() == 1, "{posted:?}");
    ensure!(
        posted[0]["type"] == "reply"
            && posted[0]["message_id"] == message_id.as_str()
            && posted[0]["recipient"] == "reader@example.test"
            && posted[0]["from"] == "ceo@acme.test"
            && posted[0]["subject"] == "Re: Weekly"
            && posted[0]["text"].as_str().is_some_and(|t| t.contains("see you Friday")),
        "{}",
        posted[0]
    );
    let forwarded = wait_for("the reply forwarded to the owner", WAIT, || {
        let m = s
            .sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == ["owner@example.test"]);
        async move { m }
    })
    .await?;
    // Forwarded in the platform's name: envelope and From at the bounce
    // domain, the person in Reply-To, the reply attached, and no tenant's
    // signature, whatever the reply's From said.
    ensure!(forwarded.mail_from.ends_with("@mta.test"), "{}", forwarded.mail_from);
    let notice = mail_parser::MessageParser::default()
        .parse(&forwarded.data)
        .context("parses")?;
    let from = notice.from().and_then(|a| a.first()).and_then(|a| a.address());
    ensure!(from == Some("forwarding@mta.test"), "{from:?}");
    let reply_to = notice.reply_to().and_then(|a| a.first()).and_then(|a| a.address());
    ensure!(reply_to == Some("ceo@acme.test"), "{reply_to:?}");
    ensure!(
        notice.header_raw("DKIM-Signature").is_none(),
        "the notice is not signed with a tenant's key"
    );
    let attached = notice
        .attachment(0)
        .and_then(|a| a.message())
        .context("the reply attached")?;
    ensure!(attached.body_text(0).is_some_and(|t| t.contains("see you Friday")));
    let all = s.wait_events("replied", "reader@example.test", 3).await?;
    ensure!(all.iter().filter(|e| e["reason"] == "reply").count() == 1, "{all:?}");

    // One forward an hour for this server: the next person waits (451
    // 4.7.1) and nothing is posted or recorded for them yet.
    let another = "From: Other <other@example.test>\r\nSubject: Re: Weekly\r\n\r\nMe too\r\n";
    let (ok, t) = s.inbound(&reply_to_address, another)?;
    ensure!(!ok && t.contains("451 4.7.1"), "{t}");
    ensure!(receiver.posts().len() == 1, "nothing more posted");
    Ok(())
}

/// Issue 13: the inbound MX takes only what is ours. A report matched by
/// Message-ID counts only for a recipient of that message, and not at all
/// when another account's message carries the same Message-ID; the
/// operator's mailboxes are kept; unreadable mail is kept up to a quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbound_mx_takes_only_what_is_ours() -> anyhow::Result<()> {
    let s = setup_on(TempStore::sqlite()?, "[inbound]\nunreadable_per_ip = 3\n").await?;
    let globex = s.account("globex", None)?;
    // Two accounts send messages carrying the same Message-ID (anyone can
    // write any Message-ID), to the same person.
    let raw = |from: &str| {
        json!({"to": ["twin@example.test"],
               "raw": format!("From: {from}\nTo: twin@example.test\nSubject: hi\nMessage-ID: <shared@example.test>\n\nHello\n")})
    };
    let ours =
        s.h.send(
            json!({"from": "news@acme.test", "to": ["reader@example.test", "other@example.test"],
            "subject": "Spring news", "text": "Hello"}),
        )
        .await?;
    let answer = s
        .api
        .call("POST", "/api/v1/messages")
        .key(&s.key)
        .json(raw("news@acme.test"))
        .send()
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let answer = s
        .api
        .call("POST", "/api/v1/messages")
        .key(&globex)
        .json(raw("ads@acme.test"))
        .send()
        .await?;
    ensure!(answer.status == 202, "{}", answer.body);
    let (_, header_id) = s.delivered_to("reader@example.test").await?;
    s.wait_events("accepted", "twin@example.test", 1).await?;
    wait_for("globex's message recorded", WAIT, || async {
        let a = s
            .api
            .call("GET", "/api/v1/events?type=accepted&recipient=twin@example.test")
            .key(&globex)
            .send()
            .await
            .ok()?;
        a.body["data"].as_array().is_some_and(|d| !d.is_empty()).then_some(())
    })
    .await?;

    // Naming someone who was not a recipient of the message: nothing.
    let (ok, t) = s.inbound(
        "bounces@mta.test",
        &dsn("stranger@example.test", "5.1.1", "550 5.1.1 no such user", &header_id),
    )?;
    ensure!(ok, "{t}");
    // A Message-ID two accounts' messages carry: nothing either.
    let (ok, t) = s.inbound(
        "bounces@mta.test",
        &dsn(
            "twin@example.test",
            "5.1.1",
            "550 5.1.1 no such user",
            "shared@example.test",
        ),
    )?;
    ensure!(ok, "{t}");
    let bounced = s.events("type=bounced").await?;
    ensure!(bounced.is_empty(), "no bounce was applied: {bounced:?}");
    let listed = s.suppression("twin@example.test").await?;
    ensure!(listed.0 == 404, "nobody was suppressed: {listed:?}");
    // The recipient the report names, of the message it names: applied,
    // whatever case the report writes the address in.
    let (ok, t) = s.inbound(
        "bounces@mta.test",
        &dsn("Reader@EXAMPLE.test", "5.1.1", "550 5.1.1 no such user", &header_id),
    )?;
    ensure!(ok, "{t}");
    let bounced = s.events(&format!("type=bounced&message_id={ours}")).await?;
    ensure!(
        bounced.len() == 1 && bounced[0]["recipient"] == "reader@example.test",
        "{bounced:?}"
    );

    // postmaster@ and abuse@ are taken and kept for the operator, owner-only.
    for rcpt in ["postmaster@mta.test", "Abuse@mta.test"] {
        let (ok, t) = s.inbound(
            rcpt,
            "From: someone@example.test\r\nSubject: your server\r\n\r\nHello postmaster\r\n",
        )?;
        ensure!(ok, "{rcpt}: {t}");
    }
    for mailbox in ["postmaster", "abuse"] {
        let dir = s.dir.path().join("data/mailbox").join(mailbox);
        let files: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        ensure!(files.len() == 1, "{mailbox}: {files:?}");
        let meta = files[0].metadata()?;
        ensure!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777 == 0o600);
        ensure!(std::fs::read_to_string(files[0].path())?.contains("Hello postmaster"));
    }
    // Three unreadable messages a day from one address (two were the
    // operator's mail above); the fourth waits for tomorrow.
    let (ok, t) = s.inbound(
        "dmarc@mta.test",
        "From: x@example.test\r\nSubject: junk\r\n\r\nnot a report\r\n",
    )?;
    ensure!(ok, "{t}");
    let (ok, t) = s.inbound(
        "rua@mta.test",
        "From: x@example.test\r\nSubject: junk\r\n\r\nstill not a report\r\n",
    )?;
    ensure!(!ok && t.contains("452 4.3.1"), "{t}");
    Ok(())
}
