//! What the CLI prints: tables for people, the API's JSON shapes with
//! `--json`. Secrets go to stdout only, exactly once, never to the log.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;

use serde::Serialize;

pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn line(text: &str) {
    println!("{text}");
}

/// Text as it is, its line ends included (CSV keeps its CRLF).
pub fn raw(text: &str) {
    print!("{text}");
}

/// A note for the person at the terminal, kept off stdout so scripts can
/// read stdout alone.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// Left-aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    render(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        render(row.clone());
    }
}

pub fn time(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Printed once, on the first start, on stdout (not in the log).
pub fn bootstrap_banner(account: &str, key: &str, saved: &Path, base_url: &str) {
    println!(
        "\nHerald first start: created master account \"{account}\" and an admin API key.\n\
         The key is shown this once; it is also saved (mode 0600) in {}.\n\n    {key}\n\n\
         Try: curl -H \"Authorization: Bearer $(cat {})\" {base_url}/api/v1/accounts\n",
        saved.display(),
        saved.display()
    );
}

/// A progress bar on standard error for long work: drawn only when
/// standard error is a terminal (indicatif hides it otherwise), never with
/// `--json`. `len`: the work's size when known, else a spinner with a count.
pub fn progress(len: Option<u64>, unit: &str, json: bool) -> indicatif::ProgressBar {
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n),
            format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{msg}}  [{{elapsed_precise}}, {{eta}} left]"),
        ),
        None => (
            indicatif::ProgressBar::new_spinner(),
            format!("{{spinner}} {{pos}} {unit}  {{msg}}  [{{elapsed_precise}}]"),
        ),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
