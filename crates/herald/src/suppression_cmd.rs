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
                        s.address.clone(),
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
        SuppressionCommand::Remove { account, address } => {
            let caller = operator_on(accounts, &account.account).await?;
            accounts.remove_suppression(&caller, &address).await?;
            if !json {
                output::note(&format!("removed {address}"));
            }
            Ok(())
        }
        SuppressionCommand::Import { account, file } => {
            let caller = operator_on(accounts, &account.account).await?;
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?;
            let done = accounts.import_suppressions(&caller, &text).await?;
            if json {
                output::json(&herald_api_types::ImportedSuppressions {
                    rows: done.rows,
                    added: done.added,
                })
            } else {
                output::note(&format!(
                    "imported {} addresses from {} ({} new)",
                    done.rows,
                    file.display(),
                    done.added
                ));
                Ok(())
            }
        }
        SuppressionCommand::Export { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let csv = accounts.export_suppressions(&caller).await?;
            std::io::stdout().lock().write_all(csv.as_bytes())?;
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
}

pub fn feedback(cmd: FeedbackCommand, json: bool) -> anyhow::Result<()> {
    let FeedbackCommand::Classify { files } = cmd;
    let mut unreadable = 0;
    let mut out = std::io::stdout().lock();
    for path in files {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(e) => {
                output::note(&format!("cannot read {}: {e}", path.display()));
                unreadable += 1;
                continue;
            }
        };
        let file = path.display().to_string();
        let Some(report) = herald_bounces::parse(&raw) else {
            if !json {
                writeln!(out, "{file}\t-\tnot a bounce, complaint or auto-reply")?;
            }
            continue;
        };
        let kind = match report.kind {
            herald_bounces::Kind::Bounce => "bounce",
            herald_bounces::Kind::Feedback => "feedback",
            herald_bounces::Kind::AutoReply => "autoreply",
        };
        for (i, f) in report.failures.iter().enumerate() {
            if json {
                let line = serde_json::to_string(&Classified {
                    file: file.clone(),
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
                })?;
                writeln!(out, "{line}")?;
            } else {
                writeln!(
                    out,
                    "{file}\t{}\t{}\t{}\t{}\t{}",
                    i + 1,
                    f.reason.as_str(),
                    f.status.as_deref().unwrap_or("-"),
                    f.reply_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    f.hard
                )?;
            }
        }
    }
    if unreadable > 0 {
        anyhow::bail!("{unreadable} file(s) could not be read");
    }
    Ok(())
}
