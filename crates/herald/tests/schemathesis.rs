//! Issue 13: the API does what its OpenAPI document says, and the document
//! says what the API does. schemathesis (PyPI; `.ci/test` installs it into
//! `.ci/venv` and names it in `HERALD_SCHEMATHESIS`) generates requests from
//! `/api/v1/openapi.json` — valid ones, invalid ones, without credentials —
//! against the real binary, with every check: no 5xx, no status or content
//! type the document does not list, answers that match their schemas, valid
//! requests taken and invalid ones refused. Bounded in time.
//!
//! `tests/schemathesis.toml` holds the few refusals a schema cannot state
//! (each explained there and in the document's 422 answers).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Harness, Options, TempStore};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
/// schemathesis's time budget: fuzzing and stateful testing repeat until it
/// is spent.
const MAX_SECONDS: &str = "150";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_conforms_to_its_document() -> anyhow::Result<()> {
    let bin = std::env::var("HERALD_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned());
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    // Every request without a valid key counts against the client's address
    // (schemathesis sends some on purpose); past the limit every request,
    // valid ones too, would answer 429.
    ensure!(h.config.contains("[http]\n"), "{}", h.config);
    h.config = h
        .config
        .replacen("[http]\n", "[http]\nauth_failure_limit = 1000000\n", 1);
    let mut h = h.restart().await?;
    // A tenant's key: what schemathesis does, a tenant could do.
    h.key = h.account("acme", None)?;
    // A second key of the account, the one schemathesis revokes (the
    // configuration names it): revoking its own would end the run's access.
    let spare = h.server.run(&["api-key", "create", "--account", "acme"])?;
    let spare_prefix = spare.trim().splitn(3, '_').take(2).collect::<Vec<_>>().join("_");
    let base = h.api.base().to_owned();
    let reports = h.dir.path().join("schemathesis");
    let out = Command::new(&bin)
        .current_dir(h.dir.path())
        .env("HERALD_SPARE_KEY", &spare_prefix)
        .args(["--config-file", CONFIG])
        .args(["run", &format!("{base}/api/v1/openapi.json"), "--url", &base])
        .args(["-H", &format!("Authorization: Bearer {}", h.key)])
        .args(["--checks", "all", "--max-examples", "15", "--max-time", MAX_SECONDS])
        .args(["--request-timeout", "20", "--workers", "1", "--seed", "13"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&reports)
        .output()
        .with_context(|| format!("running {bin} (.ci/test installs it; or set HERALD_SCHEMATHESIS)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(text.contains("passed") && !text.contains("No operations"), "{text}");
    // The warnings and counts, for the log (`--nocapture`).
    let summary = ["WARNINGS", "SUMMARY"]
        .iter()
        .find_map(|s| text.find(s))
        .map_or(&*text, |at| &text[at..]);
    eprintln!("{summary}");
    Ok(())
}
