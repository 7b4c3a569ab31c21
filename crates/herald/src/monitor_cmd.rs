//! `herald check blocklists`, `herald blocklists` and `herald alerts`:
//! what the deliverability center watches, from the operator's seat.

use herald_accounts::Accounts;
use herald_api_types::monitor::{BlocklistReport, BlocklistRun, ListStatus};
use herald_store::{AlertFilter, ListingFilter};
use herald_types::AlertId;
use reqwest::Method;

use crate::cli::{AlertsCommand, BlocklistsCommand};
use crate::client::ApiClient;
use crate::config::Config;
use crate::output;

fn status(s: ListStatus) -> &'static str {
    match s {
        ListStatus::Listed => "LISTED",
        ListStatus::Clean => "clean",
        ListStatus::Error => "error",
    }
}

/// A live check of one target, with the scheduled checks' history of it.
pub async fn check(config: &Config, accounts: &Accounts, target: &str, json: bool) -> anyhow::Result<()> {
    let resolver = crate::serve::monitor_resolver(config)?;
    let b = &config.blocklists;
    let mut report: BlocklistReport =
        herald_checks::blocklists::check_target(resolver.as_ref(), &b.lists, target, b.pace, b.max_samples)
            .await
            .ok_or_else(|| anyhow::anyhow!("{target:?} is not an IP address, a network or a domain name"))?;
    let history = accounts
        .store()
        .listings(
            &ListingFilter {
                targets: Some(report.checked.clone()),
                ..ListingFilter::default()
            },
            500,
        )
        .await?;
    report.history = history
        .iter()
        .map(|l| herald_http::views::listing(l, Vec::new()))
        .collect();
    if json {
        output::json(&report)?;
    } else {
        let listed = report.answers.iter().filter(|a| a.status == ListStatus::Listed).count();
        output::line(&format!(
            "{} ({}): {} of {} answers listed, {} errors; checked {}",
            report.target,
            report.kind.as_str(),
            listed,
            report.answers.len(),
            report.errors,
            report.checked.join(", ")
        ));
        let rows: Vec<Vec<String>> = report
            .answers
            .iter()
            .filter(|a| a.status != ListStatus::Clean || report.answers.len() <= 40)
            .map(|a| {
                let what = if a.meanings.is_empty() {
                    a.detail.clone().unwrap_or_default()
                } else {
                    let mut m = a.meanings.join("; ");
                    if let Some(d) = &a.detail {
                        m = format!("{m} ({d})");
                    }
                    m
                };
                vec![
                    a.address.clone(),
                    a.name.clone(),
                    status(a.status).to_owned(),
                    what,
                    a.delist_url.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(&["ADDRESS", "LIST", "STATUS", "MEANING", "DELIST"], &rows);
        if !report.history.is_empty() {
            output::line("");
            output::line("History:");
            listing_table(&report.history);
        }
    }
    if report.listed {
        anyhow::bail!("{} is listed", report.target);
    }
    Ok(())
}

fn listing_table(rows: &[herald_api_types::monitor::Listing]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|l| {
            vec![
                l.target.clone(),
                l.name.clone(),
                output::time(l.started_at),
                l.ended_at.map_or_else(|| "listed".to_owned(), output::time),
                l.reason.clone(),
            ]
        })
        .collect();
    output::table(&["TARGET", "LIST", "STARTED", "ENDED", "REASON"], &rows);
}

pub async fn blocklists(
    config: &Config,
    accounts: &Accounts,
    cmd: BlocklistsCommand,
    json: bool,
) -> anyhow::Result<()> {
    match cmd {
        BlocklistsCommand::List {
            account,
            active,
            target,
        } => {
            let store = accounts.store();
            let mut origins: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            let mut targets: Option<Vec<String>> = None;
            if let Some(name) = account {
                let account = accounts.find(&name).await?;
                for t in store.monitor_targets(Some(std::slice::from_ref(&account.id))).await? {
                    origins.entry(t.target).or_default().push(t.origin);
                }
                targets = Some(origins.keys().cloned().collect());
            }
            if let Some(t) = target {
                let t = t.trim().to_ascii_lowercase();
                targets = Some(match targets {
                    Some(list) => list.into_iter().filter(|x| *x == t).collect(),
                    None => vec![t],
                });
            }
            let rows = store
                .listings(
                    &ListingFilter {
                        targets,
                        active_only: active,
                        since: None,
                    },
                    1000,
                )
                .await?;
            let views: Vec<_> = rows
                .iter()
                .map(|l| herald_http::views::listing(l, origins.get(&l.seen.target).cloned().unwrap_or_default()))
                .collect();
            if json {
                return output::json(&herald_api_types::List { data: views });
            }
            if views.is_empty() {
                output::note("no listings");
            } else {
                listing_table(&views);
            }
            Ok(())
        }
        BlocklistsCommand::Run { server, api_key } => {
            let client = ApiClient::new(config, server, api_key)?;
            let body = client.call(Method::POST, "/api/v1/blocklists/check", &[], None).await?;
            let run: BlocklistRun = serde_json::from_str(&body)?;
            if json {
                return output::json(&run);
            }
            output::line(&format!(
                "checked {} addresses and domains ({} lookups) in {:.1} s: {} listed ({} new, {} ended), {} errors",
                run.targets, run.queries, run.seconds, run.listed, run.started, run.ended, run.errors
            ));
            Ok(())
        }
    }
}

pub async fn alerts(accounts: &Accounts, cmd: AlertsCommand, json: bool) -> anyhow::Result<()> {
    let store = accounts.store();
    match cmd {
        AlertsCommand::List { account, state, kind } => {
            let account = accounts.find(&account.account).await?;
            let open = match state.as_str() {
                "open" => Some(true),
                "resolved" => Some(false),
                "all" => None,
                other => anyhow::bail!("--state {other:?}: expected open, resolved or all"),
            };
            let rows = store
                .list_alerts(
                    &AlertFilter {
                        accounts: Some(vec![account.id.clone()]),
                        open,
                        kind,
                        since: None,
                    },
                    1000,
                )
                .await?;
            let name = account.name.to_string();
            let views: Vec<_> = rows.iter().map(|a| herald_http::views::alert(a, &name)).collect();
            if json {
                return output::json(&herald_api_types::List { data: views });
            }
            if views.is_empty() {
                output::note("no alerts");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = views
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.kind.clone(),
                        output::time(a.opened_at),
                        a.resolved_at.map_or_else(
                            || {
                                if a.acknowledged_at.is_some() {
                                    "open, acknowledged"
                                } else {
                                    "open"
                                }
                                .to_owned()
                            },
                            |t| format!("resolved {}", output::time(t)),
                        ),
                        a.message.clone(),
                    ]
                })
                .collect();
            output::table(&["ID", "KIND", "OPENED", "STATE", "MESSAGE"], &rows);
            Ok(())
        }
        AlertsCommand::Ack { id, account } => {
            let account = accounts.find(&account.account).await?;
            let parsed = AlertId::parse(&id).map_err(|_| anyhow::anyhow!("{id:?} is not an alert id (alr_…)"))?;
            let alert = store
                .acknowledge_alert(
                    std::slice::from_ref(&account.id),
                    &parsed,
                    time::OffsetDateTime::now_utc(),
                )
                .await?
                .ok_or_else(|| anyhow::anyhow!("alert {id} not found for {}", account.name))?;
            let view = herald_http::views::alert(&alert, &account.name.to_string());
            if json {
                return output::json(&view);
            }
            output::line(&format!("acknowledged {}: {}", view.id, view.message));
            Ok(())
        }
    }
}
