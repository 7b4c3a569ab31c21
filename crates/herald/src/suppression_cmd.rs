//! `herald suppression …` and `herald feedback classify`.

use std::io::Write;

use herald_accounts::Accounts;
use herald_http::views;
use herald_store::SuppressionFilter;

use crate::cli::{FeedbackCommand, SuppressionCommand};
use crate::commands::operator_on;
use crate::output;

pub async fn run(accounts: &Accounts, cmd: SuppressionCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        SuppressionCommand::List {
            account,
            search,
            reason,
            limit,
        } => {
            let caller = operator_on(accounts, &account.account).await?;
            let filter = SuppressionFilter {
                search,
                reason,
                after: None,
            };
            let all = accounts.list_suppressions(&caller, &filter, limit).await?;
            if json {
                return output::json(&herald_api_types::List {
                    data: all.iter().map(|s| views::suppression(s, &caller)).collect(),
                });
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| {
                    vec![
                        s.shown.clone(),
                        s.reason.clone(),
                        if s.brand { "brand" } else { "account" }.to_owned(),
                        output::time(s.created_at),
                        s.source_event
                            .as_ref()
                            .map_or_else(|| "-".to_owned(), ToString::to_string),
                    ]
                })
                .collect();
            output::table(&["ADDRESS", "REASON", "SCOPE", "ADDED", "EVENT"], &rows);
            Ok(())
        }
        SuppressionCommand::Add {
            account,
            address,
            reason,
        } => {
            let caller = operator_on(accounts, &account.account).await?;
            let added = accounts.add_suppression(&caller, &address, reason.as_deref()).await?;
            if json {
                output::json(&views::suppression(&added, &caller))
            } else {
                output::line(&format!("{}\t{}", added.address, added.reason));
                Ok(())
            }
        }
        SuppressionCommand::Show { account, address } => {
            let caller = operator_on(accounts, &account.account).await?;
            let found = accounts.suppression(&caller, &address).await?;
            let view = views::suppression(&found, &caller);
            if json {
                return output::json(&view);
            }
            output::line(&format!(
                "{}\t{}\t{}\tadded {}{}",
                view.address,
                view.reason,
                if view.brand { "brand-wide" } else { "account" },
                output::time(view.created_at),
                view.source_event.map(|e| format!("\tby {e}")).unwrap_or_default()
            ));
            Ok(())
        }
        SuppressionCommand::Remove { account, address } => {
            let caller = operator_on(accounts, &account.account).await?;
            accounts.remove_suppression(&caller, &address).await?;
            if !json {
                output::note(&format!("removed {address}"));
            }
            Ok(())
        }
        SuppressionCommand::Import { account, file, strict } => {
            let caller = operator_on(accounts, &account.account).await?;
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let bar = output::progress(None, "addresses", json);
            bar.set_message(format!("importing {}", file.display()));
            let done = accounts
                .import_suppressions_with(&caller, &bytes, strict, |n| bar.set_position(n))
                .await;
            bar.finish_and_clear();
            let done = done?;
            let bad = done.skipped > 0;
            if json {
                output::json(&views::imported_suppressions(done))?;
            } else {
                for b in &done.bad {
                    output::note(&format!("{}: line {}: {}", file.display(), b.line, b.reason));
                }
                if done.skipped > done.bad.len() as u64 {
                    output::note(&format!("… {} bad lines in all", done.skipped));
                }
                output::note(&format!(
                    "imported {} addresses from {} ({} new, {} lines skipped)",
                    done.rows,
                    file.display(),
                    done.added,
                    done.skipped
                ));
            }
            if bad {
                anyhow::bail!("bad lines in {} were skipped", file.display());
            }
            Ok(())
        }
        SuppressionCommand::Export { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let bar = output::progress(None, "addresses", json);
            let mut out = std::io::stdout().lock();
            let mut csv = herald_types::csv_file::Writer::new();
            csv.header(&herald_accounts::suppressions::EXPORT_COLUMNS);
            let mut failed = None;
            accounts
                .export_suppressions_with(&caller, |page| {
                    herald_accounts::suppressions::export_rows(&mut csv, page);
                    if failed.is_none()
                        && let Err(e) = out.write_all(csv.take().as_bytes())
                    {
                        failed = Some(e);
                    }
                    bar.inc(page.len() as u64);
                })
                .await?;
            bar.finish_and_clear();
            if let Some(e) = failed {
                return Err(e.into());
            }
            out.flush()?;
            Ok(())
        }
    }
}

/// One classified recipient, as `--json` prints it.
#[derive(serde::Serialize)]
struct Classified<'a> {
    file: String,
    index: usize,
    kind: &'static str,
    recipient: &'a str,
    reason: &'static str,
    status: Option<&'a str>,
    reply_code: Option<u16>,
    hard: bool,
    action: Option<&'a str>,
    feedback_type: Option<&'a str>,
    diagnostic: &'a str,
    /// The decoder that recognised the message.
    decoder: &'static str,
}

pub fn feedback(cmd: FeedbackCommand, json: bool) -> anyhow::Result<()> {
    let FeedbackCommand::Classify { paths, jobs } = cmd;
    let mut files = Vec::new();
    let mut unreadable = 0;
    for path in paths {
        if let Err(e) = collect_files(&path, &mut files) {
            output::note(&format!("cannot read {}: {e}", path.display()));
            unreadable += 1;
        }
    }
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    // Workers take files in turn; each file's lines are kept in its slot
    // so the output is in the files' order whatever the timing. On a cold
    // disk, reading one file after another is slower than classifying
    // them: helpers touch the files a little ahead of the workers (the
    // first byte of each brings the small file into the page cache), many
    // at once, so the workers' reads find them there.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let ahead = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let slots: Vec<std::sync::Mutex<Option<Result<String, String>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        if files.len() > PREFETCH_WINDOW / 8 {
            for _ in 0..PREFETCHERS {
                scope.spawn(|| prefetch(&files, &next, &ahead, &done));
            }
        }
        let workers: Vec<_> = (0..jobs.min(files.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        let lines = std::fs::read(path)
                            .map(|raw| classify_file(&path.display().to_string(), &raw, json))
                            .map_err(|e| format!("cannot read {}: {e}", path.display()));
                        if let Ok(mut slot) = slots[i].lock() {
                            *slot = Some(lines);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for slot in slots {
        match slot.into_inner().ok().flatten() {
            Some(Ok(lines)) => out.write_all(lines.as_bytes())?,
            Some(Err(e)) => {
                output::note(&e);
                unreadable += 1;
            }
            None => unreadable += 1,
        }
    }
    out.flush()?;
    if unreadable > 0 {
        anyhow::bail!("{unreadable} file(s) could not be read");
    }
    Ok(())
}

/// Threads touching files ahead of the classifying workers.
const PREFETCHERS: usize = 8;
/// How far ahead of the workers they go, in files: enough to keep a cold
/// disk busy, little enough that what they bring in is still cached when
/// the workers get there.
const PREFETCH_WINDOW: usize = 512;

/// Reads the first byte of each file a little ahead of the workers (`next`
/// is the workers' cursor), until they are `done`, or until the files turn
/// out to be cached already (64 quick reads in a row: then the helper is
/// only overhead).
fn prefetch(
    files: &[std::path::PathBuf],
    next: &std::sync::atomic::AtomicUsize,
    ahead: &std::sync::atomic::AtomicUsize,
    done: &std::sync::atomic::AtomicBool,
) {
    use std::io::Read as _;
    use std::sync::atomic::Ordering::Relaxed;
    let mut byte = [0u8; 1];
    let mut quick = 0;
    while !done.load(Relaxed) && quick < 64 {
        let i = ahead.fetch_add(1, Relaxed);
        let Some(path) = files.get(i) else { break };
        while i > next.load(Relaxed) + PREFETCH_WINDOW && !done.load(Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Files the workers have reached already are skipped.
        if i < next.load(Relaxed) {
            continue;
        }
        let started = std::time::Instant::now();
        if let Ok(mut f) = std::fs::File::open(path) {
            let _ = f.read(&mut byte);
        }
        quick = if started.elapsed() < std::time::Duration::from_micros(100) {
            quick + 1
        } else {
            0
        };
    }
}

/// The files under `path`: itself, or every file in a folder and its
/// subfolders (sorted by name; hidden entries skipped, symbolic links to
/// folders not followed, so a loop cannot trap the walk).
fn collect_files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => subdirs.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// The output lines for one file: each message of an mbox file, or the
/// file as one message.
fn classify_file(file: &str, raw: &[u8], json: bool) -> String {
    let mut out = String::new();
    if herald_message::mbox::is_mbox(raw) {
        for (n, message) in herald_message::mbox::split_mbox(raw).into_iter().enumerate() {
            classify_message(&format!("{file}#{}", n + 1), &message, json, &mut out);
        }
    } else {
        classify_message(file, raw, json, &mut out);
    }
    out
}

fn classify_message(file: &str, raw: &[u8], json: bool, out: &mut String) {
    use std::fmt::Write as _;
    let Some(report) = herald_bounces::parse(raw) else {
        if !json {
            let _ = writeln!(out, "{file}\t-\tnot a bounce, complaint or auto-reply");
        }
        return;
    };
    let kind = match report.kind {
        herald_bounces::Kind::Bounce => "bounce",
        herald_bounces::Kind::Feedback => "feedback",
        herald_bounces::Kind::AutoReply => "autoreply",
    };
    for (i, f) in report.failures.iter().enumerate() {
        if json {
            let line = serde_json::to_string(&Classified {
                file: file.to_owned(),
                index: i + 1,
                kind,
                recipient: &f.recipient,
                reason: f.reason.as_str(),
                status: f.status.as_deref(),
                reply_code: f.reply_code,
                hard: f.hard,
                action: f.action.as_deref(),
                feedback_type: f.feedback_type.as_deref(),
                diagnostic: &f.diagnostic,
                decoder: report.decoder,
            })
            .unwrap_or_default();
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(
                out,
                "{file}\t{}\t{}\t{}\t{}\t{}\t{}",
                i + 1,
                f.reason.as_str(),
                f.status.as_deref().unwrap_or("-"),
                f.reply_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                f.hard,
                report.decoder
            );
        }
    }
}
