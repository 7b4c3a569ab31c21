//! Issue 18 (DMARC history and edges) end to end through the real binary:
//! last year's imported reports read with `--since`/`--until` (CLI) and
//! `since`/`until` (API), failure reports counted by their own date;
//! reports compressed as raw zlib, messages with several report
//! attachments, mbox quoting; and the linter's `pct` and report
//! destinations, against a real DNS server. Hostile inputs beside each: a
//! zlib bomb, a thousand attachments, malformed and conflicting windows.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Options, TempStore, Zones, postgres_url};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// 2025-01-01 00:00 UTC: "last January", well outside the default window.
const JAN1: i64 = 1_735_689_600;
const DAY: i64 = 86_400;

struct Setup {
    h: Harness,
    inbound: SocketAddr,
    admin: String,
}

impl std::ops::Deref for Setup {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.h
    }
}

fn zones() -> anyhow::Result<Zones> {
    Ok(Harness::zones()?
        .mx("ourbrand.test", 10, "mx.example.test")
        .txt("ourbrand.test", "v=spf1 ip4:192.0.2.10 -all")
        .txt(
            "_dmarc.ourbrand.test",
            "v=DMARC1; p=none; rua=mailto:dmarc@ourbrand.test",
        )
        // lost.test: a pct out of range, reports to a domain with a null
        // MX, to one with neither MX nor address, and to itself (fine).
        .mx("lost.test", 10, "mx.example.test")
        .txt("lost.test", "v=spf1 -all")
        .txt(
            "_dmarc.lost.test",
            "v=DMARC1; p=quarantine; pct=150; rua=mailto:agg@nullmx.lost.test,mailto:agg@lost.test; \
             ruf=mailto:fail@nothing.lost.test",
        )
        .null_mx("nullmx.lost.test")
        .txt("nothing.lost.test", "v=spf1 -all"))
}

async fn setup(store: TempStore) -> anyhow::Result<Setup> {
    let mut o = Options::new(store)?;
    o.smtp = "submission = []\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n".to_owned();
    o.zones = zones()?;
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    let admin = h.admin_key()?;
    h.key = h.account("acme", None)?;
    Ok(Setup { h, inbound, admin })
}

/// Unix seconds at the start of the day `days_ago` days before today (UTC).
fn day_start(days_ago: i64) -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (now / DAY - days_ago) * DAY
}

/// An aggregate report about ourbrand.test by `org` for the day starting
/// at `begin`: 100 messages from the SPF-authorised host, passing.
fn report(org: &str, id: &str, begin: i64) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata><org_name>{org}</org_name>\
         <email>noreply-dmarc@{org}</email><report_id>{id}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata>\n<policy_published><domain>ourbrand.test</domain>\
         <p>none</p></policy_published>\n<record><row><source_ip>192.0.2.10</source_ip><count>100</count>\
         <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>\
         </row><identifiers><header_from>ourbrand.test</header_from></identifiers><auth_results><spf>\
         <domain>ourbrand.test</domain><result>pass</result></spf></auth_results></record>\n</feedback>\n",
        begin + DAY - 1
    )
}

/// An RFC 6591 failure report about ourbrand.test, written at `date`, with
/// an `Arrival-Date` when given.
fn failure(date: &str, arrival: Option<&str>, source_ip: &str) -> String {
    let arrival = arrival.map(|a| format!("Arrival-Date: {a}\r\n")).unwrap_or_default();
    format!(
        "From: ruf@reporter.example\r\nTo: ruf@mta.test\r\nDate: {date}\r\nSubject: DMARC failure report\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"f\"\r\n\r\n\
         --f\r\nContent-Type: text/plain\r\n\r\nA message claiming to be from you failed DMARC.\r\n\
         --f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nVersion: 1\r\n\
         User-Agent: Reporter/1.0\r\n{arrival}Source-IP: {source_ip}\r\nReported-Domain: ourbrand.test\r\n\
         Auth-Failure: dmarc\r\n\r\n--f\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: ceo@ourbrand.test\r\nSubject: Urgent\r\n\r\n--f--\r\n"
    )
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

/// A raw zlib stream (RFC 1950), as AOL sends its reports.
fn zlib(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn zip(name: &str, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())?;
    w.write_all(bytes)?;
    Ok(w.finish()?.into_inner())
}

/// A report email with these attachments (file name, bytes), base64.
fn email(attachments: &[(String, Vec<u8>)]) -> String {
    use base64::Engine as _;
    let mut msg = String::from(
        "From: noreply-dmarc@reporter.example\r\nTo: rua@mta.test\r\nSubject: Report domain: ourbrand.test\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nThese are aggregate reports.\r\n",
    );
    for (name, data) in attachments {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect();
        msg.push_str(&format!(
            "--b1\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    msg.push_str("--b1--\r\n");
    msg
}

fn json(s: &Setup, args: &[&str]) -> anyhow::Result<Value> {
    let out = s.server.run(args)?;
    serde_json::from_str(&out).with_context(|| format!("herald {args:?} printed {out}"))
}

/// What a failing CLI command said on stderr.
fn refused(s: &Setup, args: &[&str]) -> anyhow::Result<String> {
    let out = s.server.cli(args)?;
    ensure!(!out.status.success(), "herald {args:?} succeeded");
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn get(s: &Setup, path: &str) -> anyhow::Result<herald_testkit::Answer> {
    s.api.call("GET", path).key(&s.admin).send().await
}

fn days_of(summary: &Value) -> Vec<String> {
    summary["by_day"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["day"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Last January's reports, imported now, are read by window; failure
/// reports count in the days they arrived, not the day of the import.
async fn last_years_reports(s: Setup) -> anyhow::Result<()> {
    let dir = s.dir.path().join("archive");
    std::fs::create_dir_all(&dir)?;
    // January 10 to 14, 2025, from two reporters; one report of this week.
    for day in 9..14 {
        for org in ["google.com", "yahoo.com"] {
            let begin = JAN1 + day * DAY;
            std::fs::write(
                dir.join(format!("{org}!{begin}.xml")),
                report(org, &format!("{org}-{begin}"), begin),
            )?;
        }
    }
    let recent = day_start(3);
    std::fs::write(dir.join("recent.xml"), report("google.com", "recent", recent))?;
    // One failure report says when it arrived (Jan 11); one only when it
    // was written (Jan 12, its Date).
    std::fs::write(
        dir.join("ruf-1.eml"),
        failure(
            "Sat, 11 Jan 2025 11:00:00 +0000",
            Some("Sat, 11 Jan 2025 10:00:00 +0000"),
            "198.51.100.1",
        ),
    )?;
    std::fs::write(
        dir.join("ruf-2.eml"),
        failure("Sun, 12 Jan 2025 09:00:00 +0000", None, "198.51.100.2"),
    )?;
    let dir_arg = dir.to_string_lossy().into_owned();
    let imported = json(&s, &["dmarc", "import", &dir_arg, "--json"])?;
    ensure!(imported["imported"] == 13 && imported["failed"] == 0, "{imported}");

    // The default window (30 days) holds this week's report only.
    let now = json(&s, &["dmarc", "summary", "ourbrand.test", "--json"])?;
    ensure!(now["reports"] == 1 && now["failure_reports"] == 0, "{now}");

    // Last January by the CLI, dates as the window's ends.
    let jan = json(
        &s,
        &[
            "dmarc",
            "summary",
            "ourbrand.test",
            "--since",
            "2025-01-01",
            "--until",
            "2025-02-01",
            "--json",
        ],
    )?;
    ensure!(
        jan["reports"] == 10 && jan["totals"]["messages"] == 1000 && jan["failure_reports"] == 2,
        "{jan}"
    );
    ensure!(
        jan["since"] == "2025-01-01T00:00:00Z" && jan["until"] == "2025-02-01T00:00:00Z" && jan["days"] == 31,
        "{jan}"
    );
    ensure!(
        days_of(&jan) == ["2025-01-10", "2025-01-11", "2025-01-12", "2025-01-13", "2025-01-14"],
        "{jan}"
    );
    let text = s.server.run(&[
        "dmarc",
        "summary",
        "ourbrand.test",
        "--since",
        "2025-01-01",
        "--until",
        "2025-02-01",
    ])?;
    ensure!(
        text.contains("10 aggregate reports, 1000 messages, 2 failure reports, 31 days"),
        "{text}"
    );
    // The API answers the same.
    let api = get(
        &s,
        "/api/v1/dmarc/summary?domain=ourbrand.test&since=2025-01-01&until=2025-02-01",
    )
    .await?;
    ensure!(api.status == 200, "{}", api.body);
    for field in [
        "reports",
        "totals",
        "by_day",
        "by_reporter",
        "failure_reports",
        "since",
        "until",
    ] {
        ensure!(
            api.body[field] == jan[field],
            "{field}: {} vs {}",
            api.body[field],
            jan[field]
        );
    }
    // One day, in RFC 3339: two aggregate reports, and the failure report
    // dated by its own Date (imported today).
    let one = get(
        &s,
        "/api/v1/dmarc/summary?domain=ourbrand.test&since=2025-01-12T00:00:00Z&until=2025-01-13T00:00:00Z",
    )
    .await?;
    ensure!(
        one.status == 200 && one.body["reports"] == 2 && one.body["failure_reports"] == 1 && one.body["days"] == 1,
        "{}",
        one.body
    );
    // days counts back from until.
    let back = get(
        &s,
        "/api/v1/dmarc/summary?domain=ourbrand.test&days=10&until=2025-01-15",
    )
    .await?;
    ensure!(
        back.status == 200 && back.body["since"] == "2025-01-05T00:00:00Z" && back.body["reports"] == 10,
        "{}",
        back.body
    );

    // Report lists by the reports' own dates.
    let listed = json(
        &s,
        &[
            "dmarc",
            "reports",
            "--domain",
            "ourbrand.test",
            "--since",
            "2025-01-01",
            "--until",
            "2025-02-01",
            "--json",
        ],
    )?;
    let listed = listed["data"].as_array().context("report list")?.clone();
    ensure!(listed.len() == 12, "10 aggregate and 2 failure reports: {listed:?}");
    let all = json(&s, &["dmarc", "reports", "--domain", "ourbrand.test", "--json"])?;
    ensure!(all["data"].as_array().map(Vec::len) == Some(13), "{all}");
    let failures = get(
        &s,
        "/api/v1/dmarc/reports?domain=ourbrand.test&kind=failure&since=2025-01-12&until=2025-01-13",
    )
    .await?;
    let data = failures.body["data"].as_array().context("failure list")?;
    ensure!(
        failures.status == 200 && data.len() == 1 && data[0]["begin"] == "2025-01-12T09:00:00Z",
        "{}",
        failures.body
    );
    let arrived = get(
        &s,
        "/api/v1/dmarc/reports?domain=ourbrand.test&kind=failure&since=2025-01-11&until=2025-01-12",
    )
    .await?;
    ensure!(
        arrived.body["data"][0]["begin"] == "2025-01-11T10:00:00Z"
            && arrived.body["data"].as_array().map(Vec::len) == Some(1),
        "by Arrival-Date, not the report's Date: {}",
        arrived.body
    );

    // Malformed and conflicting windows: a clear error naming the option.
    let summary = |window: &[&'static str]| {
        let mut args = vec!["dmarc", "summary", "ourbrand.test"];
        args.extend_from_slice(window);
        args
    };
    for (window, says) in [
        (
            &["--since", "2025-13-01"][..],
            "--since: \"2025-13-01\" is not a date (2025-03-01) or an RFC 3339 time",
        ),
        (
            &["--since", "2025-01-01", "--days", "7"][..],
            "--days: give days or since, not both",
        ),
        (
            &["--since", "2025-02-01", "--until", "2025-01-01"][..],
            "--until: 2025-01-01T00:00:00Z is not after since",
        ),
        (
            &["--since", "2024-01-01", "--until", "2025-06-01"][..],
            "longer than 366 days",
        ),
    ] {
        let e = refused(&s, &summary(window))?;
        ensure!(e.contains(says), "{window:?}: {e}");
    }
    let e = refused(&s, &["dmarc", "reports", "--until", "tomorrow"])?;
    ensure!(e.contains("--until: \"tomorrow\" is not a date"), "{e}");
    for (query, field) in [
        ("since=yesterday", "since"),
        ("since=2025-01-01&days=30", "days"),
        ("since=2025-02-01&until=2025-01-01", "until"),
        ("since=2023-01-01&until=2025-01-01", "since"),
        ("until=2025-01-01T25:00:00Z", "until"),
        ("days=0", "days"),
    ] {
        let a = get(&s, &format!("/api/v1/dmarc/summary?domain=ourbrand.test&{query}")).await?;
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            a.status == 422 && a.error_code() == Some("invalid_request") && message.starts_with(&format!("{field}: ")),
            "{query}: {} {}",
            a.status,
            a.body
        );
    }
    let a = get(
        &s,
        "/api/v1/dmarc/reports?domain=ourbrand.test&since=2025-02-01&until=2025-01-01",
    )
    .await?;
    ensure!(a.status == 422, "{}", a.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_years_reports_are_read_by_window_on_sqlite() -> anyhow::Result<()> {
    last_years_reports(setup(TempStore::sqlite()?).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_years_reports_are_read_by_window_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    last_years_reports(setup(TempStore::postgres(&base).await?).await?).await
}

/// Raw zlib (AOL), messages with several reports, mbox quoting; by import,
/// API and the MX; a zlib bomb and a thousand attachments bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wrapping_and_every_attachment_is_read() -> anyhow::Result<()> {
    let s = setup(TempStore::sqlite()?).await?;
    let day = day_start(2);
    let dir = s.dir.path().join("in");
    std::fs::create_dir_all(&dir)?;
    // AOL's raw zlib stream.
    std::fs::write(dir.join("aol.xml.z"), zlib(report("aol.com", "aol-1", day).as_bytes())?)?;
    // One message, four reports in four wrappings, and a truncated one.
    let cut = gzip(report("broken.example", "broken-1", day).as_bytes())?;
    let multi = email(&[
        (
            "google.xml.gz".into(),
            gzip(report("google.com", "g-1", day).as_bytes())?,
        ),
        (
            "yahoo.zip".into(),
            zip("yahoo.xml", report("yahoo.com", "y-1", day).as_bytes())?,
        ),
        (
            "outlook.xml.z".into(),
            zlib(report("outlook.com", "o-1", day).as_bytes())?,
        ),
        ("plain.xml".into(), report("fastmail.com", "f-1", day).into_bytes()),
        ("broken.xml.gz".into(), cut[..cut.len() / 2].to_vec()),
    ]);
    std::fs::write(dir.join("multi.eml"), &multi)?;
    // An mbox: mboxrd quoting (">From ") inside an inline XML report, and
    // an unquoted "From " line inside a paragraph (mboxo), which must not
    // start a message.
    let quoted = report("quoted.example", "q-1", day).replace(
        "<org_name>quoted.example</org_name>",
        "<org_name>\n>From Example Mail\n</org_name>",
    );
    let mut mbox = format!(
        "From noreply@quoted.example Mon Nov 23 08:15:26 2026\nFrom: noreply@quoted.example\n\
         Subject: Report\nContent-Type: text/xml\n\n{quoted}\n"
    );
    let chatty = email(&[("m.xml".into(), report("mboxo.example", "m-1", day).into_bytes())]).replace(
        "These are aggregate reports.",
        "These are aggregate reports.\r\nFrom now on they come daily.",
    );
    mbox.push_str("From noreply@mboxo.example Mon Nov 23 08:15:27 2026\n");
    mbox.push_str(&chatty.replace("\r\n", "\n"));
    mbox.push('\n');
    std::fs::write(dir.join("archive.mbox"), mbox)?;

    let dir_arg = dir.to_string_lossy().into_owned();
    let out = json(&s, &["dmarc", "import", &dir_arg, "--json"])?;
    ensure!(out["imported"] == 1 + 4 + 2 && out["failed"] == 1, "{out}");
    let failure = &out["failures"][0];
    ensure!(failure["source_name"] == "multi.eml", "{out}");
    let error = failure["error"].as_str().unwrap_or_default();
    ensure!(
        error.starts_with(
            "4 reports read from it; not read: attachment 5 (\"broken.xml.gz\"): the archive cannot be unpacked: gzip"
        ),
        "{error}"
    );
    let listed = json(&s, &["dmarc", "reports", "--domain", "ourbrand.test", "--json"])?;
    let orgs: Vec<&str> = listed["data"]
        .as_array()
        .context("report list")?
        .iter()
        .filter_map(|r| r["org_name"].as_str())
        .collect();
    for org in [
        "aol.com",
        "google.com",
        "yahoo.com",
        "outlook.com",
        "fastmail.com",
        "From Example Mail",
        "mboxo.example",
    ] {
        ensure!(orgs.contains(&org), "{org} not in {orgs:?}");
    }
    // Importing it again: every report a duplicate, the broken part still
    // named.
    let again = json(&s, &["dmarc", "import", &dir_arg, "--json"])?;
    ensure!(
        again["imported"] == 0 && again["duplicates"] == 7 && again["failed"] == 1,
        "{again}"
    );

    // The API: a message of two new reports gives both.
    let up = |bytes: Vec<u8>| {
        s.api
            .call("POST", "/api/v1/dmarc/reports")
            .key(&s.admin)
            .bytes(bytes, "message/rfc822")
            .send()
    };
    let two = email(&[
        ("a.xml.z".into(), zlib(report("api-a.example", "a-1", day).as_bytes())?),
        ("b.xml.gz".into(), gzip(report("api-b.example", "b-1", day).as_bytes())?),
    ]);
    let a = up(two.into_bytes()).await?;
    let statuses: Vec<&str> = a.body["reports"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["status"].as_str()).collect())
        .unwrap_or_default();
    ensure!(a.status == 200 && statuses == ["imported", "imported"], "{}", a.body);
    // A zlib bomb (100 MiB of zeros) is refused within the budget, and the
    // server goes on.
    let bomb = zlib(&vec![0u8; 100 << 20])?;
    ensure!(bomb.len() < 200 << 10, "{}", bomb.len());
    let a = s
        .api
        .call("POST", "/api/v1/dmarc/reports")
        .key(&s.admin)
        .bytes(bomb, "application/octet-stream")
        .send()
        .await?;
    let said = a.body["error"]["message"].as_str().unwrap_or_default();
    ensure!(a.status == 422 && said.contains("unpacks to more than"), "{}", a.body);
    // A thousand report attachments: read up to the ceiling, the rest said.
    let many: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| {
            (
                format!("r{i}.xml"),
                report("many.example", &format!("many-{i}"), day).into_bytes(),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let a = up(email(&many).into_bytes()).await?;
    ensure!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let reports = a.body["reports"].as_array().context("outcomes")?;
    let imported = reports.iter().filter(|r| r["status"] == "imported").count();
    let failed: Vec<&Value> = reports.iter().filter(|r| r["status"] == "failed").collect();
    ensure!(
        a.status == 200 && imported == 62 && failed.len() == 1,
        "{imported} {failed:?}"
    );
    ensure!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("938 more report attachments or zip entries were left unread")),
        "{failed:?}"
    );

    // The MX: one message to rua@ with two reports stores both before 250.
    let mail = email(&[
        (
            "mx-a.xml.gz".into(),
            gzip(report("mx-a.example", "mx-a", day).as_bytes())?,
        ),
        (
            "mx-b.xml.z".into(),
            zlib(report("mx-b.example", "mx-b", day).as_bytes())?,
        ),
    ]);
    let file = s.dir.path().join("mx.eml");
    std::fs::write(&file, mail)?;
    let out = Command::new("swaks")
        .args([
            "--server",
            &s.inbound.ip().to_string(),
            "--port",
            &s.inbound.port().to_string(),
        ])
        .args([
            "--from",
            "noreply-dmarc@reporter.example",
            "--to",
            "rua@mta.test",
            "--data",
        ])
        .arg(&file)
        .output()
        .context("running swaks (apt-get install swaks)")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let listed = get(&s, "/api/v1/dmarc/reports?domain=ourbrand.test&limit=1000").await?;
    let mx: Vec<&str> = listed.body["data"]
        .as_array()
        .context("report list")?
        .iter()
        .filter(|r| r["origin"] == "mx")
        .filter_map(|r| r["org_name"].as_str())
        .collect();
    ensure!(mx == ["mx-a.example", "mx-b.example"], "{mx:?}");
    Ok(())
}

/// The linter through the API and the CLI: pct=150 is invalid, and report
/// addresses at a null MX or at a domain without MX or address are errors
/// naming the address; the domain's own address, which has an MX, is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linter_names_a_bad_pct_and_addresses_that_cannot_receive() -> anyhow::Result<()> {
    let s = setup(TempStore::sqlite()?).await?;
    let a = s
        .api
        .call("GET", "/api/v1/checks/dns/lost.test")
        .key(&s.key)
        .send()
        .await?;
    ensure!(a.status == 200, "{}", a.body);
    let findings = a.body["findings"].as_array().context("findings")?;
    let with = |code: &str| -> Vec<(String, String)> {
        findings
            .iter()
            .filter(|f| f["code"] == code)
            .map(|f| {
                (
                    f["severity"].as_str().unwrap_or_default().to_owned(),
                    f["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let invalid = with("dmarc.invalid_value");
    ensure!(
        invalid.len() == 1 && invalid[0].0 == "error" && invalid[0].1.starts_with("pct=150 "),
        "{findings:?}"
    );
    ensure!(
        with("dmarc.pct").is_empty(),
        "invalid, not merely obsolete: {findings:?}"
    );
    let lost = with("dmarc.undeliverable_destination");
    ensure!(lost.len() == 2 && lost.iter().all(|l| l.0 == "error"), "{findings:?}");
    ensure!(
        lost[0]
            .1
            .starts_with("rua=mailto:agg@nullmx.lost.test at _dmarc.lost.test cannot receive reports")
            && lost[0].1.contains("null MX"),
        "{}",
        lost[0].1
    );
    ensure!(
        lost[1].1.starts_with("ruf=mailto:fail@nothing.lost.test") && lost[1].1.contains("no MX record and no address"),
        "{}",
        lost[1].1
    );
    ensure!(
        !findings
            .iter()
            .any(|f| f["message"].as_str().is_some_and(|m| m.contains("agg@lost.test"))),
        "the domain's own address receives mail: {findings:?}"
    );
    ensure!(a.body["ok"] == false && a.body["dmarc"]["ok"] == false, "{}", a.body);

    let out = s.server.cli(&["check", "dns", "lost.test"])?;
    ensure!(!out.status.success(), "exit status 1 on an error finding");
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        text.contains("dmarc.undeliverable_destination")
            && text.contains("rua=mailto:agg@nullmx.lost.test")
            && text.contains("dmarc.invalid_value"),
        "{text}"
    );
    // A domain whose report address receives mail has neither finding.
    let a = s
        .api
        .call("GET", "/api/v1/checks/dns/ourbrand.test")
        .key(&s.key)
        .send()
        .await?;
    let codes: Vec<&str> = a.body["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        a.body["ok"] == true && !codes.contains(&"dmarc.undeliverable_destination"),
        "{}",
        a.body
    );
    Ok(())
}

/// A summary's sources as CSV, by API and CLI alike: RFC 4180 as Python's
/// csv module reads it, the reporter's name a stranger wrote neutralised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmarc_sources_export_as_csv_a_spreadsheet_cannot_run() -> anyhow::Result<()> {
    let s = setup(TempStore::sqlite()?).await?;
    let dir = s.dir.path().join("sources");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("a.xml"), report("google.com", "src-a", day_start(3)))?;
    let evil = report("google.com", "src-b", day_start(2)).replace(
        "<org_name>google.com</org_name>",
        "<org_name>=HYPERLINK(&quot;http://evil.test&quot;, &quot;x, y&quot;)</org_name>",
    );
    std::fs::write(dir.join("b.xml"), evil)?;
    let imported = json(&s, &["dmarc", "import", &dir.to_string_lossy(), "--json"])?;
    ensure!(imported["imported"] == 2, "{imported}");

    let api = get(&s, "/api/v1/dmarc/sources/export?domain=ourbrand.test&days=30").await?;
    ensure!(api.status == 200, "{}", api.body);
    ensure!(
        api.header("content-type").is_some_and(|t| t.starts_with("text/csv")),
        "{:?}",
        api.headers
    );
    let text = api.body.as_str().context("CSV")?.to_owned();
    let rows = herald_testkit::python_csv(&text)?;
    ensure!(rows[0][0] == "ip" && rows[0].len() == 16, "{rows:?}");
    ensure!(rows.len() == 2 && rows[1].len() == 16, "{rows:?}");
    ensure!(
        rows[1][0] == "192.0.2.10" && rows[1][7] == "200" && rows[1][8] == "200",
        "{rows:?}"
    );
    let reporters = &rows[1][6];
    // Reporters are listed in order: the stranger's name first, so the
    // cell would start with = but for the ' before it.
    ensure!(reporters.starts_with("'=HYPERLINK"), "{reporters}");
    ensure!(
        reporters.contains("HYPERLINK(\"http://evil.test\", \"x, y\")") && reporters.contains("google.com"),
        "{reporters}"
    );
    for cell in rows.iter().flatten() {
        ensure!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{cell:?}");
    }
    // The CLI prints the same bytes; a bad window is refused alike.
    let cli = s
        .server
        .run(&["dmarc", "summary", "ourbrand.test", "--days", "30", "--csv"])?;
    ensure!(cli == text, "CLI:\n{cli}\nAPI:\n{text}");
    let bad = get(&s, "/api/v1/dmarc/sources/export?domain=ourbrand.test&since=yesterday").await?;
    ensure!(bad.status == 422, "{}", bad.body);
    Ok(())
}
