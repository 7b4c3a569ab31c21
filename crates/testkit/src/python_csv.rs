//! CSV as another program reads it: Python's standard `csv` module, the
//! reader spreadsheets' scripts use, run on the text a test got.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

/// The rows of `text` as Python's `csv.reader` reads them.
pub fn python_csv(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import csv, io, json, sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline='')))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("python3")?;
    child.stdin.take().context("stdin")?.write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "python's csv module refused the text");
    Ok(serde_json::from_slice(&out.stdout)?)
}
