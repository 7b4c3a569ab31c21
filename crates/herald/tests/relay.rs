//! Issue 13: Herald is no open relay. nmap's `smtp-open-relay` script (16
//! ways of asking a server to relay: plain, percent hack, quoted local
//! part, double @, source route, bang path) relays nothing through the
//! submission port without AUTH nor through the inbound MX, and the same
//! tricks sent by hand are refused with the exact replies, while the
//! addresses Herald does manage are still taken.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Options, TempStore};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// nmap's verdict for 127.0.0.1:`port` (the `+` runs the script on a
/// port nmap does not call SMTP).
fn nmap(port: u16) -> anyhow::Result<String> {
    let out = Command::new("nmap")
        .args([
            "-Pn",
            "-n",
            "-sT",
            "-p",
            &port.to_string(),
            "--script",
            "+smtp-open-relay",
        ])
        .args([
            "--script-args",
            "smtp-open-relay.domain=relay-target.example,smtp-open-relay.ip=127.0.0.1",
        ])
        .args(["-vv", "127.0.0.1"])
        .output()
        .context("running nmap (apt-get install nmap)")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One transaction per RCPT by hand (Python's smtplib); each reply.
fn tricks(port: u16, sender: &str, recipients: &[&str]) -> anyhow::Result<Vec<String>> {
    const SCRIPT: &str = r#"
import smtplib, sys
port, sender, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("relay.tester")
for r in rcpts:
    s.rset()
    code, _ = s.mail(sender)
    if code != 250:
        print("MAIL %d" % code)
        continue
    code, text = s.docmd("RCPT TO:" + r)
    print("%d %s" % (code, text.decode(errors="replace").split(" ")[0]))
s.quit()
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), sender])
        .args(recipients)
        .output()
        .context("python3")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_relayed() -> anyhow::Result<()> {
    let mut o = Options::new(TempStore::sqlite()?)?;
    o.smtp = "submission = [\"127.0.0.1:0\"]\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let submission = h.server.listening("smtp-submission").await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    h.key = h.account("acme", None)?;

    for (port, name) in [(submission.port(), "submission"), (inbound.port(), "inbound")] {
        let report = nmap(port)?;
        ensure!(
            report.contains("smtp-open-relay") && !report.contains("is an open relay"),
            "{name}: {report}"
        );
        ensure!(
            report.contains("doesn't seem to be an open relay") || report.contains("isn't an open relay"),
            "{name}: nmap ran its tests: {report}"
        );
    }

    // The classic tricks by hand, on both ports. A relay would answer 250.
    let target = [
        "<victim@relay-target.example>",
        "<victim%relay-target.example@mta.test>",
        "<victim%relay-target.example@[127.0.0.1]>",
        "<\"victim@relay-target.example\">",
        "<\"victim@relay-target.example\"@mta.test>",
        "<victim@relay-target.example@mta.test>",
        "<@mta.test:victim@relay-target.example>",
        "<@[127.0.0.1]:victim@relay-target.example>",
        "<relay-target.example!victim>",
        "<relay-target.example!victim@mta.test>",
        "<victim@relay-target.example.>",
        "<postmaster@relay-target.example>",
    ];
    for port in [submission.port(), inbound.port()] {
        let replies = tricks(port, "attacker@evil.example", &target)?;
        ensure!(replies.len() == target.len(), "{replies:?}");
        for (rcpt, reply) in target.iter().zip(&replies) {
            ensure!(
                reply.starts_with('5') && !reply.starts_with("250"),
                "port {port}: {rcpt} answered {reply}"
            );
        }
    }
    // What the inbound MX is for is still taken.
    let ours = tricks(inbound.port(), "", &["<postmaster@mta.test>", "<fbl@mta.test>"])?;
    ensure!(ours.iter().all(|r| r.starts_with("250")), "{ours:?}");
    Ok(())
}
