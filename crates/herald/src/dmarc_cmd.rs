//! `herald dmarc import|summary|reports` and `herald check dns`.
//!
//! The importer reads files on worker threads (one per CPU: reading reports
//! is CPU work) and stores what they read in batches, one transaction each,
//! from the async side, so the disk and the CPUs work at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use herald_accounts::Accounts;
use herald_api_types::dmarc::{DmarcSummary, ImportOutcome, ImportStatus};
use herald_dmarc::{Dmarc, Origin, Prepared};
use herald_store::{ReportFilter, ReportKind};
use serde::Serialize;

use crate::cli::{CheckCommand, DmarcCommand};
use crate::config::Config;
use crate::output;

/// A batch is stored once it holds this many reports…
const BATCH_REPORTS: usize = 256;
/// …or this many bytes of report bodies.
const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Files larger than this are not read (a report is megabytes at most).
const MAX_FILE: u64 = 256 * 1024 * 1024;

fn service(config: &Config, accounts: &Accounts) -> anyhow::Result<Dmarc> {
    Ok(Dmarc::new(
        accounts.store().clone(),
        crate::serve::resolver(config)?,
        config.dmarc_networks.clone(),
    ))
}

pub async fn run(config: &Config, accounts: &Accounts, cmd: DmarcCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        DmarcCommand::Import { paths, jobs } => import(&service(config, accounts)?, &paths, jobs, json).await,
        DmarcCommand::Summary {
            domain,
            days,
            since,
            until,
            top,
            csv,
        } => {
            let window = herald_dmarc::Window::summary(
                since.as_deref(),
                until.as_deref(),
                days,
                time::OffsetDateTime::now_utc(),
            )
            .map_err(option_error)?;
            let summary = service(config, accounts)?.summary_of(&domain, window).await?;
            if csv {
                output::raw(&herald_http::views::dmarc_sources_csv(&summary));
                Ok(())
            } else if json {
                output::json(&summary)
            } else {
                print_summary(&summary, top);
                Ok(())
            }
        }
        DmarcCommand::Reports {
            domain,
            kind,
            since,
            until,
            broken,
            limit,
        } => {
            let bounds = herald_dmarc::window::list_bounds(since.as_deref(), until.as_deref()).map_err(option_error)?;
            reports(accounts, domain, kind, bounds, broken, limit, json).await
        }
    }
}

/// A window's error in the CLI's words: the option named as typed.
fn option_error(e: herald_dmarc::WindowError) -> anyhow::Error {
    anyhow::anyhow!("--{}: {}", e.field, e.message)
}

/// What an import did, for `--json`.
#[derive(Debug, Default, Serialize)]
struct ImportSummary {
    files: usize,
    imported: u64,
    duplicates: u64,
    failed: u64,
    records: u64,
    messages: u64,
    seconds: f64,
    records_per_second: f64,
    /// Every report that failed, and every file that could not be read.
    failures: Vec<ImportOutcome>,
}

/// Every file under `paths`, folders walked recursively, in name order.
/// Links to folders inside them are not followed (a link back up would
/// loop); links to files are read.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for path in entries {
            let linked = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if path.is_dir() {
                if !linked {
                    walk(&path, out)?;
                }
            } else if path.is_file() {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

/// One file, read: its reports, or why it could not be read at all.
type FileRead = (PathBuf, Result<Vec<Prepared>, String>);

fn read_file(path: &Path, now: time::OffsetDateTime) -> Result<Vec<Prepared>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!("larger than {MAX_FILE} bytes"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(herald_dmarc::prepare_all(&bytes, Origin::Import, name, now))
}

async fn import(dmarc: &Dmarc, paths: &[PathBuf], jobs: Option<usize>, json: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let files = Arc::new(files(paths)?);
    let bar = output::progress(Some(files.len() as u64), "files", json);
    let workers = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, 64);
    let now = time::OffsetDateTime::now_utc();
    // Few files in flight: a file is up to 64 MiB kept when it is no report.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<FileRead>(workers);
    let next = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for _ in 0..workers {
        let (files, next, tx) = (Arc::clone(&files), Arc::clone(&next), tx.clone());
        threads.push(std::thread::spawn(move || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                // A bug that panics on one file fails that file, not the
                // import (and not silently).
                let read = std::panic::catch_unwind(|| read_file(path, now))
                    .unwrap_or_else(|_| Err("internal error reading this file (a bug: please report it)".to_owned()));
                if tx.blocking_send((path.clone(), read)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let mut summary = ImportSummary {
        files: files.len(),
        ..ImportSummary::default()
    };
    let mut batch: Vec<Prepared> = Vec::new();
    let mut batch_bytes = 0;
    let mut result = Ok(());
    while let Some((path, read)) = rx.recv().await {
        bar.inc(1);
        match read {
            Ok(prepared) => {
                for p in prepared {
                    batch_bytes += match &p {
                        Prepared::Report(r) => r.body.len(),
                        Prepared::Broken(b) => b.raw.len(),
                    };
                    batch.push(p);
                }
            }
            Err(error) => {
                summary.failures.push(ImportOutcome {
                    status: ImportStatus::Failed,
                    kind: None,
                    id: 0,
                    org_name: None,
                    report_id: None,
                    domain: None,
                    records: 0,
                    messages: 0,
                    error: Some(error),
                    source_name: Some(path.display().to_string()),
                });
                summary.failed += 1;
            }
        }
        if batch.len() >= BATCH_REPORTS || batch_bytes >= BATCH_BYTES {
            if let Err(e) = store(dmarc, &mut batch, &mut summary).await {
                result = Err(e);
                break;
            }
            batch_bytes = 0;
            bar.set_message(format!(
                "{} imported, {} duplicates, {} failed, {} records",
                summary.imported, summary.duplicates, summary.failed, summary.records
            ));
        }
    }
    drop(rx);
    for t in threads {
        let _ = t.join();
    }
    result?;
    store(dmarc, &mut batch, &mut summary).await?;
    bar.finish_and_clear();
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    summary.seconds = elapsed.as_secs_f64();
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    let rate = summary.records as f64 / summary.seconds;
    summary.records_per_second = rate;
    if json {
        return output::json(&summary);
    }
    output::line(&format!(
        "{} files: {} reports imported ({} records, {} messages), {} duplicates, {} failed in {:.2}s ({:.0} records/s)",
        summary.files,
        summary.imported,
        summary.records,
        summary.messages,
        summary.duplicates,
        summary.failed,
        summary.seconds,
        rate
    ));
    for f in &summary.failures {
        output::line(&format!(
            "failed: {}: {}",
            f.source_name.as_deref().unwrap_or("-"),
            f.error.as_deref().unwrap_or("-")
        ));
    }
    Ok(())
}

/// Stores a batch and counts what it did.
async fn store(dmarc: &Dmarc, batch: &mut Vec<Prepared>, summary: &mut ImportSummary) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let outcomes = dmarc
        .store(std::mem::take(batch))
        .await
        .map_err(|e| anyhow::anyhow!("cannot store reports: {e}"))?;
    for o in outcomes {
        match o.status {
            ImportStatus::Imported => {
                summary.imported += 1;
                summary.records += o.records;
                summary.messages += o.messages;
            }
            ImportStatus::Duplicate => summary.duplicates += 1,
            ImportStatus::Failed => {
                summary.failed += 1;
                summary.failures.push(o);
            }
        }
    }
    Ok(())
}

fn percent(rates: &std::collections::BTreeMap<String, f64>, name: &str) -> String {
    rates
        .get(name)
        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn print_summary(s: &DmarcSummary, top: usize) {
    output::line(&format!(
        "{}: {} aggregate reports, {} messages, {} failure reports, {} days ({} to {})",
        s.domain,
        s.reports,
        s.totals.messages,
        s.failure_reports,
        s.days,
        output::time(s.since),
        output::time(s.until)
    ));
    if s.reports == 0 {
        output::line(&format!(
            "no aggregate reports about {} from {} to {}: point its DMARC record's rua= at a report address of \
             Herald, or import reports with `herald dmarc import` (older ones: --since and --until)",
            s.domain,
            output::time(s.since),
            output::time(s.until)
        ));
        return;
    }
    if let Some(p) = &s.policy {
        output::line(&format!(
            "policy: p={} pct={} adkim={} aspf={}{}",
            p.p,
            p.pct,
            p.adkim,
            p.aspf,
            p.sp.as_deref().map(|sp| format!(" sp={sp}")).unwrap_or_default()
        ));
    }
    let t = &s.totals;
    output::line(&format!(
        "DMARC pass {}  SPF pass {} (aligned {})  DKIM pass {} (aligned {})  failure reports {}",
        percent(&t.rates, "dmarc_pass_rate"),
        percent(&t.rates, "spf_pass_rate"),
        percent(&t.rates, "spf_alignment_rate"),
        percent(&t.rates, "dkim_pass_rate"),
        percent(&t.rates, "dkim_alignment_rate"),
        s.failure_reports
    ));
    output::line("");
    let rows: Vec<Vec<String>> = s
        .by_day
        .iter()
        .map(|d| {
            vec![
                d.day.clone(),
                d.tally.messages.to_string(),
                percent(&d.tally.rates, "dmarc_pass_rate"),
                percent(&d.tally.rates, "spf_alignment_rate"),
                percent(&d.tally.rates, "dkim_alignment_rate"),
                format!("{}/{}", d.tally.disposition_quarantine, d.tally.disposition_reject),
            ]
        })
        .collect();
    output::table(
        &[
            "DAY",
            "MESSAGES",
            "DMARC",
            "SPF ALIGNED",
            "DKIM ALIGNED",
            "QUARANTINED/REJECTED",
        ],
        &rows,
    );
    output::line("");
    let rows: Vec<Vec<String>> = s
        .by_reporter
        .iter()
        .map(|r| {
            vec![
                r.org_name.clone(),
                r.reports.to_string(),
                r.tally.messages.to_string(),
                percent(&r.tally.rates, "dmarc_pass_rate"),
            ]
        })
        .collect();
    output::table(&["REPORTER", "REPORTS", "MESSAGES", "DMARC"], &rows);
    output::line("");
    let rows: Vec<Vec<String>> = s
        .sources
        .iter()
        .take(top)
        .map(|x| {
            vec![
                x.ip.clone(),
                x.reverse_dns.clone().unwrap_or_else(|| "-".to_owned()),
                label(&x.label),
                x.service.as_ref().map_or_else(|| "-".to_owned(), |s| s.name.clone()),
                x.tally.messages.to_string(),
                percent(&x.tally.rates, "dmarc_pass_rate"),
                x.why.clone(),
            ]
        })
        .collect();
    output::table(
        &["SOURCE", "REVERSE DNS", "LABEL", "SERVICE", "MESSAGES", "DMARC", "WHY"],
        &rows,
    );
    if s.sources.len() > top {
        output::line(&format!(
            "… and {} more sources (--top, or --json for all)",
            s.sources.len() - top
        ));
    }
    output::line("");
    let e = &s.enforcement;
    output::line(&format!(
        "enforcing would block {} messages: {} from your sources, {} forwarded, {} from others",
        e.failing, e.yours, e.forwarded, e.others
    ));
    let r = &s.recommendation;
    output::line(&format!(
        "recommendation: {} -> p={} pct={} (compliance {:.1}%): {}",
        r.action,
        r.p,
        r.pct,
        r.compliance * 100.0,
        r.reason
    ));
}

async fn reports(
    accounts: &Accounts,
    domain: Option<String>,
    kind: Option<String>,
    (since, until): (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>),
    broken: bool,
    limit: u32,
    json: bool,
) -> anyhow::Result<()> {
    let store = accounts.store();
    if broken {
        let page = store.list_broken_reports(0, limit).await?;
        if json {
            let data: Vec<_> = page.into_iter().map(herald_http::views::broken_report).collect();
            return output::json(&herald_api_types::List { data });
        }
        let rows: Vec<Vec<String>> = page
            .iter()
            .map(|b| {
                vec![
                    b.id.to_string(),
                    output::time(b.received_at),
                    b.origin.clone(),
                    b.source_name.clone().unwrap_or_else(|| "-".to_owned()),
                    b.size.to_string(),
                    b.error.clone(),
                ]
            })
            .collect();
        output::table(&["ID", "RECEIVED", "ORIGIN", "SOURCE", "BYTES", "ERROR"], &rows);
        return Ok(());
    }
    let kind = kind
        .as_deref()
        .map(ReportKind::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))?;
    let filter = ReportFilter {
        kind,
        domain: domain.map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()),
        since,
        until,
        ..ReportFilter::default()
    };
    let page = store.list_reports(&filter, limit).await?;
    if json {
        let data: Vec<_> = page.into_iter().map(herald_http::views::dmarc_report).collect();
        return output::json(&herald_api_types::List { data });
    }
    let rows: Vec<Vec<String>> = page
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.kind.as_str().to_owned(),
                r.org_name.clone(),
                r.report_id.clone(),
                r.domain.clone(),
                output::time(r.begin),
                r.record_count.to_string(),
                r.message_count.to_string(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "KIND",
            "REPORTER",
            "REPORT ID",
            "DOMAIN",
            "BEGIN",
            "RECORDS",
            "MESSAGES",
        ],
        &rows,
    );
    Ok(())
}

/// `herald check dns`: exit status 1 when a finding is an error or worse.
pub async fn check(config: &Config, accounts: &Accounts, cmd: CheckCommand, json: bool) -> anyhow::Result<()> {
    let CheckCommand::Dns { domain, mut selector } = cmd else {
        anyhow::bail!("not a DNS check");
    };
    let name =
        herald_checks::normalize_domain(&domain).ok_or_else(|| anyhow::anyhow!("{domain:?} is not a domain name"))?;
    if let Ok(parsed) = herald_types::DomainName::parse(&name)
        && let Some(d) = accounts.store().domain(&parsed).await?
    {
        selector.extend(d.published_selectors());
    }
    selector.sort();
    selector.dedup();
    let resolver = crate::serve::resolver(config)?;
    let report = herald_checks::check_dns(resolver.as_ref(), &name, &selector).await;
    if json {
        output::json(&report)?;
    } else {
        output::line(&format!(
            "{}: {}",
            report.domain,
            if report.ok { "ok" } else { "problems found" }
        ));
        output::line(&format!("  SPF    {}", report.spf.summary));
        output::line(&format!("  DMARC  {}", report.dmarc.summary));
        output::line(&format!("  DKIM   {}", report.dkim.summary));
        output::line(&format!("  MX     {}", report.mx.summary));
        if !report.findings.is_empty() {
            output::line("");
            let rows: Vec<Vec<String>> = report
                .findings
                .iter()
                .map(|f| vec![label(&f.severity), label(&f.check), f.code.clone(), f.message.clone()])
                .collect();
            output::table(&["SEVERITY", "CHECK", "CODE", "MESSAGE"], &rows);
        }
    }
    if report.ok {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{} has DNS errors", report.domain))
    }
}

/// A serde enum's name as it appears in JSON.
fn label<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
