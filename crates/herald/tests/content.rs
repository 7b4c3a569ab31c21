//! Issue 16, content, end to end through the real binary with Debian's
//! spamd: every message is scored before it is queued; GTUBE is held with a
//! `held` event carrying the score and the rules, never delivered until an
//! admin releases it; an account may drop its held mail but not release
//! it, nor raise its own threshold; a clean message passes with its score
//! on its `accepted` event; when spamd is gone, mail is accepted unscored
//! (the default) or refused for now (`on_error = "tempfail"`).

use std::path::Path;

use anyhow::{Context, ensure};
use herald_testkit::{Dashboard, Harness, Options, Spamd, TempStore, WAIT, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn message(to: &str, text: &str) -> Value {
    json!({"from": "news@acme.test", "to": [to], "subject": "Our news", "text": text})
}

async fn events_of(h: &Harness, id: &str) -> anyhow::Result<Vec<Value>> {
    Ok(h.get(&format!("/api/v1/events?message_id={id}")).await?["data"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_is_held_until_released_and_clean_mail_passes() -> anyhow::Result<()> {
    let spamd = Spamd::start().await?;
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.extra = format!("[spamd]\naddress = \"{}\"\ntimeout = \"20s\"\n", spamd.addr());
    o.smtp = "submission = [\"127.0.0.1:0\"]\nsubmission_tls = []\ninbound = []\n\
              [[smtp.relay_networks]]\ncidr = \"127.0.0.1/32\"\naccount = \"acme\"\n"
        .to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let submission = h.server.listening("smtp-submission").await?;
    let admin = h.admin_key()?;

    // GTUBE: held, with its score and rules on the events.
    let spam = h
        .send(message("held@example.test", &format!("Hello\n{GTUBE}\n")))
        .await?;
    let held = wait_for("the held event", WAIT, || async {
        events_of(&h, &spam)
            .await
            .ok()
            .filter(|e| e.iter().any(|x| x["type"] == "held"))
    })
    .await?;
    let event = held.iter().find(|x| x["type"] == "held").context("held")?;
    ensure!(
        event["spam"]["score"].as_f64().is_some_and(|s| s >= 1000.0)
            && event["spam"]["threshold"] == 5.0
            && event["spam"]["rules"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == "GTUBE")),
        "{event}"
    );
    ensure!(event["reason"].as_str().is_some_and(|r| r.contains("GTUBE")), "{event}");
    let accepted = held.iter().find(|x| x["type"] == "accepted").context("accepted")?;
    ensure!(accepted["spam"]["score"] == event["spam"]["score"], "{accepted}");
    let queued = h.get(&format!("/api/v1/queue/{spam}")).await?;
    ensure!(queued["recipients"][0]["status"] == "held", "{queued}");

    // Over SMTP (Python's smtplib from a trusted network) the same.
    let python = format!(
        "import smtplib\ns = smtplib.SMTP('127.0.0.1', {})\ns.sendmail('news@acme.test', ['smtp-held@example.test'], \
         'From: news@acme.test\\r\\nTo: smtp-held@example.test\\r\\nSubject: hi\\r\\n\\r\\n{GTUBE}\\r\\n')\ns.quit()\n",
        submission.port()
    );
    let sent = std::process::Command::new("python3").arg("-c").arg(&python).output()?;
    ensure!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let smtp_held = h.wait_events("held", "smtp-held@example.test", 1).await?;
    ensure!(
        smtp_held[0]["spam"]["rules"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "GTUBE")),
        "{smtp_held:?}"
    );

    // A clean message passes, its score under the threshold.
    let clean = h
        .send(message("clean@example.test", "Hello, here is our monthly news."))
        .await?;
    h.wait_events("delivered", "clean@example.test", 1).await?;
    let seen = events_of(&h, &clean).await?;
    let score = seen
        .iter()
        .find(|x| x["type"] == "accepted")
        .and_then(|x| x["spam"]["score"].as_f64())
        .context("the clean message's score")?;
    ensure!(score < 5.0, "{seen:?}");
    ensure!(
        !h.sink
            .messages()
            .iter()
            .any(|m| m.rcpt_to.iter().any(|r| r.contains("held@example.test"))),
        "held mail is not delivered"
    );

    // The account cannot release its own held mail, nor raise its threshold.
    let own = h
        .api
        .call("POST", &format!("/api/v1/messages/{spam}/release"))
        .key(&h.key)
        .send()
        .await?;
    ensure!(own.status == 404, "{}", own.body);
    let raise = h
        .api
        .call("PATCH", "/api/v1/accounts/acme/settings")
        .key(&h.key)
        .json(json!({"spam_threshold": 1000}))
        .send()
        .await?;
    ensure!(raise.status == 403, "{}", raise.body);

    // The operator releases it (CLI, the bootstrap key): delivered.
    let out = h.server.cli(&["queue", "release", &spam])?;
    let said = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success() && said.contains("1 recipients released"), "{said}");
    h.wait_events("delivered", "held@example.test", 1).await?;
    let again = h
        .api
        .call("POST", &format!("/api/v1/messages/{spam}/release"))
        .key(&admin)
        .send()
        .await?;
    ensure!(
        again.status == 404 || again.status == 409,
        "nothing held any more: {}",
        again.body
    );

    // The dashboard: the account's user sees its held mail with a drop
    // button and no release; releasing is refused to it (404, as in the
    // API) and done by an operator user.
    const PASSWORD: &str = "dashboard password";
    h.server.run(&[
        "user",
        "create",
        "--account",
        "acme",
        "--email",
        "ops@acme.test",
        "--password",
        PASSWORD,
    ])?;
    h.server.run(&[
        "user",
        "create",
        "--account",
        "main",
        "--email",
        "root@ops.test",
        "--password",
        PASSWORD,
        "--operator",
    ])?;
    let third = h.send(message("third@example.test", GTUBE)).await?;
    wait_for("the third held", WAIT, || async {
        events_of(&h, &third)
            .await
            .ok()
            .filter(|e| e.iter().any(|x| x["type"] == "held"))
    })
    .await?;
    // The queue lists held mail on its own, bounded.
    let held_list = h.get("/api/v1/queue?status=held&limit=10").await?;
    let held_list = held_list["data"].as_array().cloned().unwrap_or_default();
    ensure!(
        held_list.iter().any(|m| m["id"] == third.as_str())
            && held_list.iter().all(|m| m["recipients"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["status"] == "held"))),
        "{held_list:?}"
    );
    let one = h.get("/api/v1/queue?status=held&limit=1").await?;
    ensure!(one["data"].as_array().is_some_and(|m| m.len() == 1), "{one}");
    let bad = h
        .api
        .call("GET", "/api/v1/queue?status=gone")
        .key(&h.key)
        .send()
        .await?;
    ensure!(bad.status == 422, "{}", bad.body);
    let tenant = Dashboard::sign_in(h.api.base(), "ops@acme.test", PASSWORD).await?;
    let page = tenant.get("/messages").await?;
    ensure!(
        page.body.contains(&format!("action=\"/messages/{third}/drop\""))
            && !page.body.contains(&format!("action=\"/messages/{third}/release\"")),
        "the held list of the account's user"
    );
    let refused = tenant.post(&format!("/messages/{third}/release"), &[]).await?;
    ensure!(refused.status == 404, "{}", refused.status);
    let root = Dashboard::sign_in(h.api.base(), "root@ops.test", PASSWORD).await?;
    let released = root.post(&format!("/messages/{third}/release"), &[]).await?;
    ensure!(
        released.status == 303 && released.location.as_deref() == Some(&*format!("/messages/{third}?done=released")),
        "{} {:?}",
        released.status,
        released.location
    );
    h.wait_events("delivered", "third@example.test", 1).await?;

    // Another held message: its account drops it.
    let second = h.send(message("dropme@example.test", GTUBE)).await?;
    wait_for("the second held", WAIT, || async {
        events_of(&h, &second)
            .await
            .ok()
            .filter(|e| e.iter().any(|x| x["type"] == "held"))
    })
    .await?;
    let dropped = h
        .api
        .call("POST", &format!("/api/v1/messages/{second}/drop"))
        .key(&h.key)
        .send()
        .await?;
    ensure!(
        dropped.status == 200 && dropped.body["recipients"] == 1,
        "{}",
        dropped.body
    );
    let gone = h.wait_events("dropped", "dropme@example.test", 1).await?;
    ensure!(
        gone[0]["reason"].as_str().is_some_and(|r| r.contains("held")),
        "{gone:?}"
    );

    // The operator sets acme's threshold (its own key may not): the next
    // message is judged by it, as its events say.
    h.server.run(&["account", "set", "acme", "--spam-threshold", "1000"])?;
    let shown: Value = serde_json::from_str(&h.server.run(&["--json", "account", "show", "acme"])?)?;
    ensure!(shown["settings"]["spam_threshold"] == 1000.0, "{shown}");
    let judged = h.send(message("judged@example.test", "Hello again, our news.")).await?;
    h.wait_events("delivered", "judged@example.test", 1).await?;
    let seen = events_of(&h, &judged).await?;
    ensure!(
        seen.iter()
            .any(|x| x["type"] == "accepted" && x["spam"]["threshold"] == 1000.0),
        "{seen:?}"
    );

    // spamd gone: accepted unscored (the default on_error).
    drop(spamd);
    let unscored = h.send(message("later@example.test", GTUBE)).await?;
    h.wait_events("delivered", "later@example.test", 1).await?;
    let seen = events_of(&h, &unscored).await?;
    ensure!(seen.iter().all(|x| x["spam"].is_null()), "{seen:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_spamd_tempfail_refuses_for_now() -> anyhow::Result<()> {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.extra = format!("[spamd]\naddress = \"127.0.0.1:{port}\"\non_error = \"tempfail\"\ntimeout = \"2s\"\n");
    let mut h = Harness::start(Path::new(BIN), o).await?;
    h.key = h.account("acme", None)?;
    let a = h
        .api
        .call("POST", "/api/v1/messages")
        .key(&h.key)
        .json(message("someone@example.test", "hello"))
        .send()
        .await?;
    ensure!(a.status == 503, "{} {}", a.status, a.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_api_warns_about_html_that_needs_fixing() -> anyhow::Result<()> {
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    h.key = h.account("acme", None)?;
    let send = |body: Value| {
        let call = h.api.call("POST", "/api/v1/messages").key(&h.key).json(body);
        async move { call.send().await }
    };
    let sloppy = send(json!({
        "from": "news@acme.test", "to": ["someone@example.test"], "subject": "News",
        "html": format!("<p>Hi <img src=\"https://acme.test/a.png\"> <a href=\"https://bit.ly/x\">deal</a></p>{}", " ".repeat(110 * 1024))
    }))
    .await?;
    ensure!(sloppy.status == 202, "{}", sloppy.body);
    let codes: Vec<&str> = sloppy.body["warnings"]
        .as_array()
        .context("warnings")?
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    ensure!(
        codes
            == [
                "text_missing",
                "html_no_html",
                "html_no_body",
                "image_no_alt",
                "html_clipped",
                "url_shortener"
            ],
        "{}",
        sloppy.body
    );
    // Sent all the same.
    h.wait_events("delivered", "someone@example.test", 1).await?;
    let tidy = send(json!({
        "from": "news@acme.test", "to": ["other@example.test"], "subject": "News", "text": "Hi",
        "html": "<html><body><p>Hi</p><img src=\"https://acme.test/a.png\" alt=\"Acme\"></body></html>"
    }))
    .await?;
    ensure!(
        tidy.status == 202 && tidy.body.get("warnings").is_none(),
        "{}",
        tidy.body
    );
    Ok(())
}
