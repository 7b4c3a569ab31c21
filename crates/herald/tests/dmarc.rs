//! Issue 7 end to end through the real binary, on SQLite and PostgreSQL:
//! DMARC reports arrive by `herald dmarc import` (folders walked, every
//! wrapping, mbox files, duplicates, broken files), by the API (raw bytes,
//! 422 for a broken one, which is listed with its error) and by mail to the
//! inbound MX (swaks); the summary by API and CLI labels each source
//! through a real DNS server (SPF, reverse DNS), and an account sees only
//! its own domains.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Options, TempStore, Zones, postgres_url};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_herald");

fn corpus(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora")
        .join(dir)
}

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

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().expect("an IP")
}

/// The DNS of the test: the sink's `example.test`, ourbrand.test's MX,
/// and the PTR (with forward) names of the report sources…
fn base_zones() -> anyhow::Result<Zones> {
    Ok(Harness::zones()?
        .ptr(ip("192.0.2.10"), "mta1.ourbrand.test")
        .ptr(ip("203.0.113.77"), "o1.ptr4242.sendgrid.net")
        .ip("mta1.ourbrand.test", ip("192.0.2.10"))
        .ip("o1.ptr4242.sendgrid.net", ip("203.0.113.77"))
        .mx("ourbrand.test", 10, "mx.example.test"))
}

/// …and ourbrand.test's own SPF and DMARC records, before Herald's.
fn zones() -> anyhow::Result<Zones> {
    Ok(base_zones()?.txt("ourbrand.test", "v=spf1 ip4:192.0.2.10 -all").txt(
        "_dmarc.ourbrand.test",
        "v=DMARC1; p=none; rua=mailto:dmarc@ourbrand.test",
    ))
}

async fn setup(store: TempStore) -> anyhow::Result<Setup> {
    let mut o = Options::new(store)?;
    o.smtp = "submission = []\nsubmission_tls = []\ninbound = [\"127.0.0.1:0\"]\n".to_owned();
    o.zones = zones()?;
    o.extra = "[dmarc]\nsending_networks = [\"192.0.2.200\"]\n".to_owned();
    let mut h = Harness::start(Path::new(BIN), o).await?;
    let inbound = h.server.listening("smtp-inbound").await?;
    let admin = h.admin_key()?;
    h.key = h.account("acme", None)?;
    Ok(Setup { h, inbound, admin })
}

/// Unix seconds at the start of the day `days_ago` days before today (UTC).
fn day_start(days_ago: i64) -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (now / 86_400 - days_ago) * 86_400
}

/// An aggregate report about ourbrand.test for the day `days_ago` days ago:
/// the SPF-authorised host (100, passing), Herald's own address (10,
/// passing), SendGrid not set up (1, failing), a spoofer (2, failing).
fn report(org: &str, days_ago: i64) -> String {
    let begin = day_start(days_ago);
    let rows = [
        ("192.0.2.10", 100, "pass", "pass"),
        ("192.0.2.200", 10, "pass", "fail"),
        ("203.0.113.77", 1, "fail", "fail"),
        ("198.51.100.99", 2, "fail", "fail"),
    ];
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata><org_name>{org}</org_name>\
         <email>noreply-dmarc@{org}</email><report_id>{org}.{begin}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata>\n<policy_published><domain>ourbrand.test</domain><adkim>r</adkim>\
         <aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>\n",
        begin + 86_399
    );
    for (source, count, dkim, spf) in rows {
        xml.push_str(&format!(
            "<record><row><source_ip>{source}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>\
             <identifiers><header_from>ourbrand.test</header_from></identifiers><auth_results><dkim>\
             <domain>ourbrand.test</domain><selector>s1</selector><result>{dkim}</result></dkim><spf>\
             <domain>ourbrand.test</domain><result>{spf}</result></spf></auth_results></record>\n"
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn zip(name: &str, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())?;
    w.write_all(bytes)?;
    Ok(w.finish()?.into_inner())
}

/// A report email as a reporter sends it: the XML gzipped, in base64.
fn email(org: &str, xml: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(gzip(xml.as_bytes())?);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    Ok(format!(
        "From: noreply-dmarc@{org}\r\nTo: rua@mta.test\r\nSubject: Report domain: ourbrand.test Submitter: {org}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n--b1\r\n\
         Content-Type: application/gzip; name=\"{org}!ourbrand.test.xml.gz\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{org}!ourbrand.test.xml.gz\"\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    ))
}

/// A folder of reports in every wrapping, nested: 10 days from two
/// reporters about ourbrand.test (XML, gzip, zip, an email, an mbox of two
/// emails), one file twice, the parsedmarc corpus, and an empty file.
/// Returns the folder and how many reports ourbrand.test gets.
fn folder(root: &Path) -> anyhow::Result<(PathBuf, usize)> {
    let dir = root.join("reports");
    let nested = dir.join("2026/11");
    std::fs::create_dir_all(&nested)?;
    for day in 1..=4 {
        std::fs::write(
            nested.join(format!("google.com!ourbrand.test!{day}.xml")),
            report("google.com", day),
        )?;
        std::fs::write(
            nested.join(format!("yahoo.com!ourbrand.test!{day}.xml.gz")),
            gzip(report("yahoo.com", day).as_bytes())?,
        )?;
    }
    for day in 5..=7 {
        let xml = report("google.com", day);
        std::fs::write(
            dir.join(format!("report-{day}.zip")),
            zip("report.xml", xml.as_bytes())?,
        )?;
        std::fs::write(
            dir.join(format!("mail-{day}.eml")),
            email("yahoo.com", &report("yahoo.com", day))?,
        )?;
    }
    // An mbox of two report emails.
    let mut mbox = String::new();
    for (org, day) in [("google.com", 8), ("yahoo.com", 8)] {
        mbox.push_str("From noreply-dmarc@reporter Mon Nov 23 08:15:26 2026\n");
        mbox.push_str(&email(org, &report(org, day))?.replace("\r\n", "\n"));
        mbox.push('\n');
    }
    std::fs::write(dir.join("archive.mbox"), mbox)?;
    // The same report under another name: a duplicate.
    std::fs::copy(
        nested.join("google.com!ourbrand.test!1.xml"),
        dir.join("copy-of-google-1.xml"),
    )?;
    // Broken input.
    std::fs::write(dir.join("empty.xml"), b"")?;
    // A link back up is not followed (it would never end).
    std::os::unix::fs::symlink(&dir, nested.join("loop"))?;
    // The real-world corpus, names with spaces and '!' included.
    let samples = dir.join("samples");
    std::fs::create_dir_all(&samples)?;
    for sub in ["aggregate", "failure", "smtp_tls"] {
        for entry in std::fs::read_dir(corpus("parsedmarc-samples").join(sub))? {
            let path = entry?.path();
            std::fs::copy(&path, samples.join(path.file_name().context("a file name")?))?;
        }
    }
    Ok((dir, 4 * 2 + 3 * 2 + 2))
}

fn summary_json(s: &Setup, args: &[&str]) -> anyhow::Result<Value> {
    let out = s.server.run(args)?;
    serde_json::from_str(&out).with_context(|| format!("herald {args:?} printed {out}"))
}

async fn everything(mut s: Setup) -> anyhow::Result<()> {
    let (dir, ours) = folder(s.dir.path())?;
    let dir_arg = dir.to_string_lossy().into_owned();

    // Import the folder: every report once, the duplicate and the broken
    // file named.
    let first = summary_json(&s, &["dmarc", "import", &dir_arg, "--json"])?;
    let samples = std::fs::read_dir(dir.join("samples"))?.count();
    ensure!(first["files"] == ours - 2 + 1 + 1 + 1 + samples, "{first}");
    // The corpus holds three reports twice: invalid_utf_8.xml is veeam's
    // report with bad bytes, invalid_xml.xml is !example.com!'s with a
    // stray '<', and LinkedIn's failure report comes with LF and with CRLF
    // line ends. With our copy, four duplicates.
    ensure!(first["duplicates"] == 4, "{first}");
    ensure!(first["failed"] == 1, "{first}");
    ensure!(first["imported"] == ours + samples - 3, "{first}");
    let failures = first["failures"].as_array().context("failures")?;
    ensure!(failures[0]["source_name"] == "empty.xml", "{first}");
    // 4 records in each of our reports; the corpus adds its own.
    ensure!(
        first["records"].as_u64().is_some_and(|r| r > 4 * ours as u64 + 2000),
        "{first}"
    );

    // A second import finds nothing new; the human summary says so.
    let again = s.server.run(&["dmarc", "import", &dir_arg])?;
    ensure!(
        again.contains(&format!(
            "0 reports imported (0 records, 0 messages), {} duplicates, 1 failed",
            ours + samples + 1
        )),
        "{again}"
    );
    ensure!(again.contains("failed: empty.xml: the input is empty"), "{again}");

    // The API: a gzipped report is stored, twice is a duplicate, garbage
    // is 422 and kept with its error.
    let new = gzip(report("outlook.com", 9).as_bytes())?;
    let up = |bytes: Vec<u8>| {
        s.api
            .call("POST", "/api/v1/dmarc/reports")
            .key(&s.admin)
            .bytes(bytes, "application/gzip")
            .send()
    };
    let a = up(new.clone()).await?;
    ensure!(
        a.status == 200 && a.body["reports"][0]["status"] == "imported",
        "{}",
        a.body
    );
    ensure!(
        a.body["reports"][0]["records"] == 4 && a.body["reports"][0]["messages"] == 113,
        "{}",
        a.body
    );
    let a = up(new).await?;
    ensure!(
        a.status == 200 && a.body["reports"][0]["status"] == "duplicate",
        "{}",
        a.body
    );
    let a = up(b"PK\x03\x04 truncated zip".to_vec()).await?;
    ensure!(
        a.status == 422 && a.error_code() == Some("invalid_request"),
        "{}",
        a.body
    );
    // A compression bomb (100 MiB of zeros in 100 KiB) and an entity
    // bomb get a clear error, and the server goes on.
    let bomb = gzip(&vec![0u8; 100 << 20])?;
    ensure!(bomb.len() < 200 << 10, "{}", bomb.len());
    let a = up(bomb).await?;
    ensure!(a.status == 422, "{}", a.body);
    let said = a.body["error"]["message"].as_str().unwrap_or_default().to_owned();
    ensure!(said.contains("unpacks to more than") && said.contains("bomb"), "{said}");
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>\
                  <feedback>&b;</feedback>";
    let a = up(laughs.as_bytes().to_vec()).await?;
    ensure!(
        a.status == 422
            && a.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("ENTITY")),
        "{}",
        a.body
    );
    let broken = s
        .api
        .call("GET", "/api/v1/dmarc/reports/broken")
        .key(&s.admin)
        .send()
        .await?;
    let broken = broken.body["data"].as_array().context("broken list")?.clone();
    ensure!(broken.len() == 4, "empty.xml, the zip and the two bombs: {broken:?}");
    ensure!(
        broken
            .iter()
            .any(|b| b["origin"] == "api" && b["error"].as_str().is_some_and(|e| e.contains("zip"))),
        "{broken:?}"
    );

    // By mail: a reporter's email to rua@ is stored before 250.
    let mail = email("mail.example", &report("mail.example", 10))?;
    let file = s.dir.path().join("report.eml");
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
            "noreply-dmarc@mail.example",
            "--to",
            "rua@mta.test,ruf@mta.test,RUA@mta.test",
            "--data",
        ])
        .arg(&file)
        .output()
        .context("running swaks (apt-get install swaks)")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let listed = s
        .api
        .call(
            "GET",
            "/api/v1/dmarc/reports?domain=ourbrand.test&kind=aggregate&limit=100",
        )
        .key(&s.admin)
        .send()
        .await?;
    let listed = listed.body["data"].as_array().context("report list")?.clone();
    ensure!(listed.len() == ours + 2, "{}", listed.len());
    ensure!(
        listed
            .iter()
            .any(|r| r["origin"] == "mx" && r["org_name"] == "mail.example"),
        "{listed:?}"
    );
    // Three report addresses, one message: read once.
    let log = s.server.log();
    let received = log
        .lines()
        .filter(|l| l.contains("DMARC report received") && l.contains("mail.example"))
        .count();
    ensure!(received == 1, "{log}");

    // The summary: 12 reports over 10 days, each source labelled.
    let api = s
        .api
        .call("GET", "/api/v1/dmarc/summary?domain=ourbrand.test&days=30")
        .key(&s.admin)
        .send()
        .await?;
    ensure!(api.status == 200, "{}", api.body);
    let sum = api.body;
    let reports = ours as u64 + 2;
    ensure!(
        sum["reports"] == reports && sum["totals"]["messages"] == reports * 113,
        "{sum}"
    );
    ensure!(sum["totals"]["dmarc_pass"] == reports * 110, "{sum}");
    ensure!(sum["by_day"].as_array().is_some_and(|d| d.len() == 10), "{sum}");
    let label = |source: &str| {
        sum["sources"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["ip"] == source))
            .map(|x| {
                (
                    x["label"].clone(),
                    x["service"]["name"].clone(),
                    x["reverse_dns"].clone(),
                )
            })
    };
    ensure!(
        label("192.0.2.10") == Some(("yours".into(), Value::Null, "mta1.ourbrand.test".into())),
        "{sum}"
    );
    ensure!(label("192.0.2.200").map(|l| l.0) == Some("yours".into()), "{sum}");
    ensure!(
        label("203.0.113.77")
            == Some((
                "service".into(),
                "Twilio SendGrid".into(),
                "o1.ptr4242.sendgrid.net".into()
            )),
        "{sum}"
    );
    ensure!(label("198.51.100.99").map(|l| l.0) == Some("unknown".into()), "{sum}");
    ensure!(
        sum["enforcement"]["failing"] == reports * 3 && sum["enforcement"]["yours"] == 0,
        "{sum}"
    );
    ensure!(
        sum["recommendation"]["action"] == "advance" && sum["recommendation"]["p"] == "quarantine",
        "{sum}"
    );
    // The CLI answers the same.
    let cli = summary_json(&s, &["dmarc", "summary", "ourbrand.test", "--days", "30", "--json"])?;
    for field in [
        "reports",
        "totals",
        "by_day",
        "by_reporter",
        "sources",
        "enforcement",
        "recommendation",
    ] {
        ensure!(cli[field] == sum[field], "{field}: {} vs {}", cli[field], sum[field]);
    }
    let text = s.server.run(&["dmarc", "summary", "ourbrand.test"])?;
    ensure!(
        text.contains("recommendation: advance -> p=quarantine pct=25"),
        "{text}"
    );
    ensure!(text.contains("o1.ptr4242.sendgrid.net"), "{text}");

    // An account sees only its own domains' reports.
    let a = s
        .api
        .call("GET", "/api/v1/dmarc/summary?domain=ourbrand.test")
        .key(&s.key)
        .send()
        .await?;
    ensure!(a.status == 404, "{}", a.body);
    let a = up_as(&s, &s.key, report("other.example", 2)).await?;
    ensure!(a.status == 404, "a report about someone else's domain: {}", a.body);
    // Registering the domain is not enough; verifying it (its records
    // published, as only its owner can) is.
    let added = s
        .server
        .run(&["domain", "add", "ourbrand.test", "--account", "acme", "--json"])?;
    let added: Value = serde_json::from_str(&added)?;
    let path = "/api/v1/dmarc/summary?domain=ourbrand.test";
    let a = s.api.call("GET", path).key(&s.key).send().await?;
    ensure!(a.status == 404, "an unverified domain: {}", a.body);
    s.h.dns.replace(&base_zones()?.publish(&added["records"])).await?;
    s.server.run(&["domain", "verify", "ourbrand.test"])?;
    let a = s.api.call("GET", path).key(&s.key).send().await?;
    ensure!(a.status == 200 && a.body["reports"] == reports, "{}", a.body);
    let a = s
        .api
        .call("GET", "/api/v1/dmarc/reports/broken")
        .key(&s.key)
        .send()
        .await?;
    ensure!(a.status == 404, "broken reports are for admins: {}", a.body);
    Ok(())
}

async fn up_as(s: &Setup, key: &str, xml: String) -> anyhow::Result<herald_testkit::Answer> {
    s.api
        .call("POST", "/api/v1/dmarc/reports")
        .key(key)
        .bytes(xml.into_bytes(), "application/xml")
        .send()
        .await
}

/// The DNS linter through the API and the CLI: Herald's own DKIM
/// selectors of a registered domain are checked without being named, and
/// a domain without DMARC is critical (the CLI exits 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_linter_answers_by_api_and_cli() -> anyhow::Result<()> {
    let s = setup(TempStore::sqlite()?).await?;
    let check = |domain: &str| {
        s.api
            .call("GET", &format!("/api/v1/checks/dns/{domain}"))
            .key(&s.key)
            .send()
    };
    let a = check("ourbrand.test").await?;
    ensure!(a.status == 200, "{}", a.body);
    ensure!(a.body["ok"] == true && a.body["worst"] == "warning", "{}", a.body);
    ensure!(
        a.body["spf"]["record"] == "v=spf1 ip4:192.0.2.10 -all" && a.body["spf"]["lookups"] == 0,
        "{}",
        a.body
    );
    let codes = |body: &Value| -> Vec<String> {
        body["findings"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["code"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    ensure!(codes(&a.body).contains(&"dmarc.policy_none".to_owned()), "{}", a.body);

    // Once the domain is the account's, the selectors Herald signs with are
    // checked too: not yet published, so missing.
    let added = s
        .server
        .run(&["domain", "add", "ourbrand.test", "--account", "acme", "--json"])?;
    let added: Value = serde_json::from_str(&added)?;
    let a = check("ourbrand.test").await?;
    let selectors = a.body["dkim"]["selectors"].as_array().context("selectors")?;
    let expected = added["keys"].as_array().map_or(0, Vec::len);
    ensure!(expected == 2 && selectors.len() == expected, "{}", a.body);
    ensure!(
        codes(&a.body).iter().filter(|c| *c == "dkim.missing").count() == 2,
        "{}",
        a.body
    );
    ensure!(a.body["ok"] == false && a.body["worst"] == "error", "{}", a.body);

    // No DMARC record at all is critical, in the API and the CLI.
    let a = check("example.test").await?;
    ensure!(
        a.body["worst"] == "critical" && codes(&a.body).contains(&"dmarc.missing".to_owned()),
        "{}",
        a.body
    );
    let out = s.server.cli(&["check", "dns", "example.test"])?;
    ensure!(!out.status.success(), "exit status 1 on a critical finding");
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.contains("critical") && text.contains("dmarc.missing"), "{text}");
    let json: Value = serde_json::from_slice(&s.server.cli(&["check", "dns", "ourbrand.test", "--json"])?.stdout)?;
    ensure!(json["dkim"]["selectors"].as_array().map(Vec::len) == Some(2), "{json}");
    let a = check("not a domain").await?;
    ensure!(a.status == 422, "{}", a.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_come_in_every_way_and_are_summarised_on_sqlite() -> anyhow::Result<()> {
    everything(setup(TempStore::sqlite()?).await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_come_in_every_way_and_are_summarised_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    everything(setup(TempStore::postgres(&base).await?).await?).await
}
