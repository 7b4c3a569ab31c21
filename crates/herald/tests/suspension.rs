//! Issue 13: suspension takes effect at once. A suspended account's open
//! SMTP session (Python's smtplib) is refused at its next `MAIL FROM`, and
//! its queued mail is held — not tried, not expired — until it is
//! reactivated, then delivered.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use herald_testkit::{Behaviour, Harness, Options, Phase, Rule, TempStore, WAIT, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// One session: sends a message, says READY, waits for a line on stdin,
/// then tries another MAIL FROM and prints the server's answer.
const SESSION: &str = r#"
import smtplib, ssl, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.starttls(context=ssl._create_unverified_context())
s.login(user, password)
s.sendmail("news@acme.test", ["first@example.test"], "From: news@acme.test\r\nSubject: one\r\n\r\nHi\r\n")
print("READY", flush=True)
sys.stdin.readline()
code, text = s.mail("news@acme.test")
print(code, text.decode(), flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_stops_open_sessions_and_holds_the_queue() -> anyhow::Result<()> {
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.smtp = "submission = [\"127.0.0.1:0\"]\nsubmission_tls = []\ninbound = []\n".to_owned();
    // The remote MX defers held@ once, so its message waits in the queue.
    o.sink_rules = vec![Rule::new(Phase::Rcpt, "held@*", Behaviour::Reply("451 4.3.0 later".into())).times(1)];
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let submission = h.server.listening("smtp-submission").await?;
    h.key = h.account("acme", None)?;
    let cred = h.server.run(&["smtp-credential", "create", "--account", "acme"])?;
    let field = |label: &str| {
        cred.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(str::to_owned))
            .with_context(|| format!("{label} in {cred}"))
    };
    let (user, password) = (field("username: ")?, field("password: ")?);

    let held = h
        .send(serde_json::json!({"from": "news@acme.test", "to": ["held@example.test"], "subject": "s", "text": "t"}))
        .await?;
    h.wait_events("deferred", "held@example.test", 1).await?;

    let mut session = Command::new("python3")
        .args(["-c", SESSION, &submission.port().to_string(), &user, &password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3")?;
    let mut out = BufReader::new(session.stdout.take().context("stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    ensure!(line.trim() == "READY", "the first message went through: {line:?}");

    h.server.run(&["account", "suspend", "acme"])?;
    session.stdin.take().context("stdin")?.write_all(b"go\n")?;
    line.clear();
    out.read_line(&mut line)?;
    ensure!(
        line.starts_with("550 ") && line.contains("5.7.1") && line.contains("suspended"),
        "the open session is refused at its next MAIL FROM: {line:?}"
    );
    let _ = session.wait();

    // Held: across several retry intervals (1 s here) it is not sent (the
    // remote MX would take it now). Absence is shown over a time window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        h.sink.messages().iter().all(|m| m.rcpt_to != ["held@example.test"]),
        "nothing delivered while suspended"
    );

    h.server.run(&["account", "reactivate", "acme"])?;
    wait_for("the held message delivered", WAIT, || async {
        h.events(&format!("type=delivered&message_id={held}"))
            .await
            .ok()
            .filter(|e| !e.is_empty())
    })
    .await?;
    Ok(())
}
