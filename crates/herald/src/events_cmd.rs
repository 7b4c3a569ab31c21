//! `herald events`: an account's events from the store.

use std::time::Duration;

use anyhow::Context;
use herald_accounts::Accounts;
use herald_http::views;
use herald_store::EventFilter;
use herald_types::{EventKind, MessageId, parse_duration};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::EventsArgs;
use crate::output;

/// How often `--follow` asks for new events.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// RFC 3339, or a duration back from now ("1h").
pub fn parse_time(value: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    let ago = parse_duration(value)
        .map_err(|_| anyhow::anyhow!("{value:?}: expected an RFC 3339 time or a duration such as 1h"))?;
    Ok(OffsetDateTime::now_utc() - ago)
}

/// What an event adds in words: the SMTP answer, the bounce's class and
/// reason, the MX host.
pub fn detail(e: &herald_api_types::Event) -> String {
    let mut detail = String::new();
    if let Some(s) = &e.smtp {
        detail = format!("{} {} {}", s.code, s.enhanced.as_deref().unwrap_or(""), s.text);
    }
    if let Some(b) = &e.bounce {
        detail = format!("{detail} [{} {}]", b.class, b.reason);
    }
    if let Some(mx) = &e.mx {
        detail = format!("{detail} via {mx}");
    }
    detail.trim().to_owned()
}

fn line(e: &herald_api_types::Event) -> String {
    format!(
        "{}  {:<9} {}  {}  {}",
        output::time(e.at),
        e.kind,
        e.message_id,
        e.recipient.as_deref().unwrap_or("-"),
        detail(e)
    )
}

pub async fn run(accounts: &Accounts, args: EventsArgs, json: bool) -> anyhow::Result<()> {
    let account = accounts.find(&args.account.account).await?;
    let kinds = match &args.kind {
        Some(list) => list
            .split(',')
            .map(|k| EventKind::parse(k.trim()))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let metadata = match args.meta.as_deref() {
        Some(m) => Some(
            m.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .with_context(|| format!("--meta {m:?}: expected key=value"))?,
        ),
        None => None,
    };
    let filter = EventFilter {
        account: Some(account.id.clone()),
        kinds,
        recipient: args.recipient.clone(),
        message_id: args.message.as_deref().map(MessageId::parse).transpose()?,
        since: args.since.as_deref().map(parse_time).transpose()?,
        tag: args.tag.clone(),
        metadata,
        ..EventFilter::default()
    };
    let name = account.name.to_string();
    let mut limit = args.limit.clamp(1, 1000);
    // Paged in storage order: --follow never misses an event stored late.
    let mut after = 0;
    // CSV as the API exports it, byte for byte (CRLF line ends).
    let mut csv = herald_types::csv_file::Writer::new();
    if args.csv {
        output::raw(views::EVENT_CSV_HEADER);
    }
    loop {
        let page = accounts
            .store()
            .page_events(&filter, after, limit)
            .await
            .context("reading events")?;
        for (_, e) in &page {
            let view = views::event(e, &name);
            if args.csv {
                views::event_csv(&mut csv, &view);
            } else if json {
                output::line(&serde_json::to_string(&view)?);
            } else {
                output::line(&line(&view));
            }
        }
        if args.csv {
            output::raw(&csv.take());
        }
        if let Some((position, _)) = page.last() {
            after = *position;
        }
        if !args.follow {
            return Ok(());
        }
        limit = 1000;
        if page.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

fn percent(rates: &std::collections::BTreeMap<String, f64>, name: &str) -> String {
    rates
        .get(name)
        .map_or_else(|| "-".to_owned(), |r| format!("{:.2}%", r * 100.0))
}

/// `herald stats`: the API's stats, as a table or JSON.
pub async fn stats(accounts: &Accounts, args: crate::cli::StatsArgs, json: bool) -> anyhow::Result<()> {
    let account = accounts.find(&args.account.account).await?;
    let caller = herald_accounts::Caller::operator(account);
    let since = args.since.as_deref().map(parse_time).transpose()?;
    let query = herald_http::stats_query(Some(&args.by), args.group.as_deref(), since, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stats = views::stats(accounts, &caller, query).await?;
    if json {
        return output::json(&stats);
    }
    let n = |r: &herald_api_types::StatsRow, c: &str| r.counts.get(c).copied().unwrap_or(0);
    let rows: Vec<Vec<String>> = stats
        .data
        .iter()
        .map(|r| {
            vec![
                output::time(r.period),
                r.group.clone().unwrap_or_else(|| "-".to_owned()),
                n(r, "accepted").to_string(),
                n(r, "delivered").to_string(),
                format!("{}/{}", n(r, "bounced_hard"), n(r, "bounced_soft")),
                n(r, "complained").to_string(),
                format!("{}/{}", n(r, "opened_unique"), n(r, "opened")),
                format!("{}/{}", n(r, "clicked_unique"), n(r, "clicked")),
                percent(&r.rates, "delivery_rate"),
                percent(&r.rates, "bounce_rate"),
                percent(&r.rates, "complaint_rate"),
            ]
        })
        .collect();
    output::table(
        &[
            "PERIOD",
            "GROUP",
            "ACCEPTED",
            "DELIVERED",
            "BOUNCED H/S",
            "COMPLAINTS",
            "OPENS U/ALL",
            "CLICKS U/ALL",
            "DELIVERY",
            "BOUNCE",
            "COMPLAINT",
        ],
        &rows,
    );
    Ok(())
}
