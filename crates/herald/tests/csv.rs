//! Issue 18, end to end: CSV that spreadsheet users can trust. Suppression
//! imports through the API and the CLI report each bad line and import the
//! good ones (or nothing, when strict); reasons are free text; addresses
//! keep their local part's case; exports are RFC 4180, read back by
//! Python's csv module, with formula cells neutralised, and import again as
//! they were. Long CLI work shows progress on a terminal (a real pty, by
//! `script`) and nothing when piped.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Options, TempStore, python_csv};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");

const HOSTILE: &str = "address,reason\r\n\
John.Doe@Example.TEST,\"Asked by phone, then \"\"again\"\" by mail\"\r\n\
not-an-address,manual\r\n\
\"\"\"=cmd|' /C calc'!A0\"\"@example.test\",=HYPERLINK(\"http://evil.test\")\r\n\
-neg@example.test,@SUM(A1:A9)\r\n\
,no address here\r\n\
plain@example.test,\"two\nlines\"\r\n\
+plus@example.test\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_csv_imports_report_bad_lines_and_exports_are_safe() -> anyhow::Result<()> {
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    h.key = h.account("acme", None)?;
    let import = |strict: bool, body: &'static str| {
        let call = h
            .api
            .call("POST", &format!("/api/v1/suppressions/import?strict={strict}"))
            .key(&h.key)
            .bytes(body.as_bytes().to_vec(), "text/csv");
        async move { call.send().await }
    };

    // Strict: one bad line refuses the file, naming the lines; nothing in.
    let refused = import(true, HOSTILE).await?;
    ensure!(refused.status == 422, "{}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap_or_default();
    ensure!(
        message.contains("line 3") && message.contains("line 6") && message.contains("line 7"),
        "{message}"
    );
    let list = h.get("/api/v1/suppressions").await?;
    ensure!(list["data"] == json!([]), "{list}");

    // Not strict: the good lines in, each bad one reported with its number.
    let done = import(false, HOSTILE).await?;
    ensure!(done.status == 200, "{}", done.body);
    ensure!(
        done.body["rows"] == 4 && done.body["added"] == 4 && done.body["skipped"] == 3,
        "{}",
        done.body
    );
    let lines: Vec<u64> = done.body["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| e["line"].as_u64())
        .collect();
    ensure!(lines == [3, 6, 7], "{}", done.body);
    ensure!(
        done.body["errors"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("address")),
        "{}",
        done.body
    );
    ensure!(
        done.body["errors"][2]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("control")),
        "a reason with a line break: {}",
        done.body
    );
    // The local part keeps its case, the domain does not; lookups ignore
    // case; the reason is kept as written.
    let john = h.get("/api/v1/suppressions/john.doe@example.test").await?;
    ensure!(
        john["address"] == "John.Doe@example.test" && john["reason"] == "Asked by phone, then \"again\" by mail",
        "{john}"
    );
    ensure!(h.get("/api/v1/suppressions/JOHN.DOE@EXAMPLE.TEST").await?["address"] == "John.Doe@example.test");
    let plus = h.get("/api/v1/suppressions/+plus@example.test").await?;
    ensure!(plus["reason"] == "import", "{plus}");

    // The export: RFC 4180 as Python reads it, formulas neutralised.
    let export = h
        .api
        .call("GET", "/api/v1/suppressions/export")
        .key(&h.key)
        .send()
        .await?;
    ensure!(export.status == 200);
    let text = export.body.as_str().context("csv text")?.to_owned();
    ensure!(text.ends_with("\r\n"), "CRLF line ends");
    let rows = python_csv(&text)?;
    ensure!(
        rows[0] == ["address", "reason", "created_at", "source_event", "brand"],
        "{rows:?}"
    );
    ensure!(rows.len() == 5 && rows.iter().all(|r| r.len() == 5), "{rows:?}");
    let cell = |address: &str| -> anyhow::Result<Vec<String>> {
        rows.iter()
            .find(|r| r[0] == address)
            .cloned()
            .with_context(|| format!("{address} in {rows:?}"))
    };
    ensure!(cell("John.Doe@example.test")?[1] == "Asked by phone, then \"again\" by mail");
    // A quoted local part starts with a quote: no formula, left as it is.
    let formula = cell("\"=cmd|' /C calc'!A0\"@example.test")?;
    ensure!(formula[1] == "'=HYPERLINK(\"http://evil.test\")", "{formula:?}");
    ensure!(cell("'-neg@example.test")?[1] == "'@SUM(A1:A9)");
    ensure!(cell("'+plus@example.test")?[1] == "import");
    for r in &rows[1..] {
        for c in r {
            ensure!(
                !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell a spreadsheet would run: {c:?}"
            );
        }
    }

    // The export imports as it was, into another account.
    let other = h.account("other", None)?;
    let again = h
        .api
        .call("POST", "/api/v1/suppressions/import")
        .key(&other)
        .bytes(text.into_bytes(), "text/csv")
        .send()
        .await?;
    ensure!(
        again.status == 200 && again.body["skipped"] == 0 && again.body["rows"] == 4,
        "{}",
        again.body
    );
    let theirs = h
        .api
        .call("GET", "/api/v1/suppressions/-neg@example.test")
        .key(&other)
        .send()
        .await?;
    ensure!(
        theirs.status == 200 && theirs.body["reason"] == "@SUM(A1:A9)",
        "{}",
        theirs.body
    );
    let theirs = h
        .api
        .call(
            "GET",
            "/api/v1/suppressions/%22=cmd%7C'%20%2FC%20calc'!A0%22@example.test",
        )
        .key(&other)
        .send()
        .await?;
    ensure!(theirs.status == 200, "{}", theirs.body);

    // A file that is not text at all: its lines are bad, nothing breaks.
    let binary = h
        .api
        .call("POST", "/api/v1/suppressions/import")
        .key(&h.key)
        .bytes(b"\xff\xfe\x00garbage\nok@example.test\n".to_vec(), "text/csv")
        .send()
        .await?;
    ensure!(
        binary.status == 200 && binary.body["skipped"] == 1 && binary.body["rows"] == 1,
        "{}",
        binary.body
    );

    // The CLI: --strict refuses, exit status 1 and the bad lines on
    // standard error; without it the good lines go in, the bad ones are
    // listed, and the status still says something was wrong.
    let file = h.dir.path().join("list.csv");
    std::fs::write(&file, "email\nCLI.Person@Example.TEST\nbroken@\n")?;
    let path = file.to_str().context("path")?;
    let strict = h
        .server
        .cli(&["suppression", "import", "--account", "acme", "--strict", path])?;
    let err = String::from_utf8_lossy(&strict.stderr);
    ensure!(!strict.status.success() && err.contains("line 3"), "{err}");
    ensure!(
        h.api
            .call("GET", "/api/v1/suppressions/cli.person@example.test")
            .key(&h.key)
            .send()
            .await?
            .status
            == 404
    );
    let loose = h.server.cli(&["suppression", "import", "--account", "acme", path])?;
    let err = String::from_utf8_lossy(&loose.stderr);
    ensure!(loose.status.code() == Some(1), "{err}");
    ensure!(
        err.contains("list.csv: line 3:") && err.contains("1 lines skipped"),
        "{err}"
    );
    // Piped, no progress bar is drawn.
    ensure!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    let cli = h.get("/api/v1/suppressions/cli.person@example.test").await?;
    ensure!(cli["address"] == "CLI.Person@example.test", "{cli}");
    Ok(())
}

/// On a terminal (a pty made by `script`), an import of 60,000 addresses
/// and its export show a progress bar; the export's CSV on standard output
/// stays clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_cli_work_shows_progress_on_a_terminal_only() -> anyhow::Result<()> {
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    h.key = h.account("acme", None)?;
    let file = h.dir.path().join("big.csv");
    let mut big = String::from("address\n");
    for i in 0..60_000 {
        big.push_str(&format!("user{i}@example.test\n"));
    }
    std::fs::write(&file, big)?;
    let config = h.server.config_path().to_str().context("config")?.to_owned();
    let out = h.dir.path().join("export.csv");
    let command = format!(
        "{BIN} --config {config} suppression import --account acme {} && {BIN} --config {config} suppression export --account acme > {}",
        file.display(),
        out.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(h.dir.path())
        .output()
        .context("script (util-linux)")?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    ensure!(tty.status.success(), "{shown}");
    ensure!(
        shown.contains("addresses"),
        "a progress line on the terminal: {shown:?}"
    );
    ensure!(shown.contains("imported 60000 addresses"), "{shown:?}");
    let exported = std::fs::read_to_string(&out)?;
    ensure!(exported.lines().count() == 60_001, "{} lines", exported.lines().count());
    ensure!(!exported.contains('\u{1b}'), "the CSV holds no terminal codes");
    let rows = python_csv(&exported)?;
    ensure!(rows.len() == 60_001);
    // The same with JSON output: no bar even on a terminal.
    let command = format!(
        "{BIN} --config {config} --json suppression import --account acme {}",
        file.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(h.dir.path())
        .output()?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    let json: Value = serde_json::from_str(shown.trim()).with_context(|| format!("{shown:?}"))?;
    ensure!(json["rows"] == 60_000 && json["added"] == 0, "{json}");
    Ok(())
}
