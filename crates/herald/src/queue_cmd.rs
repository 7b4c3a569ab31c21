//! `herald queue`: the running server's delivery queue, through its API.

use herald_api_types::{List, QueueDestination, QueuedMessage, WarmupState};
use reqwest::Method;

use crate::cli::{QueueAction, QueueArgs};
use crate::config::Config;
use crate::output;

fn show(m: &QueuedMessage) {
    output::line(&format!(
        "{}  from <{}>  {} bytes  received {}",
        m.id,
        m.sender,
        m.size,
        output::time(m.received_at)
    ));
    for r in &m.recipients {
        let next = r.next_attempt.map(output::time).unwrap_or_default();
        output::line(&format!(
            "  {:<40} {:<9} attempts {:<3} {next}",
            r.address, r.status, r.attempts
        ));
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved
/// characters kept).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(config: &Config, args: QueueArgs, json: bool) -> anyhow::Result<()> {
    let (client, headers) = crate::api_cmd::client(config, &args.server)?;
    let (method, path) = match &args.action {
        QueueAction::List { destination } => match destination {
            Some(d) => (Method::GET, format!("/api/v1/queue?destination={}", url_encode(d))),
            None => (Method::GET, "/api/v1/queue".to_owned()),
        },
        QueueAction::Show { id } => (Method::GET, format!("/api/v1/queue/{id}")),
        QueueAction::Retry { id } => (Method::POST, format!("/api/v1/queue/{id}/retry")),
        QueueAction::Bounce { id } => (Method::POST, format!("/api/v1/queue/{id}/bounce")),
        QueueAction::Purge { id } => (Method::DELETE, format!("/api/v1/queue/{id}")),
        QueueAction::Release { id } => (Method::POST, format!("/api/v1/messages/{id}/release")),
        QueueAction::Drop { id } => (Method::POST, format!("/api/v1/messages/{id}/drop")),
        QueueAction::Destinations => (Method::GET, "/api/v1/queue/destinations".to_owned()),
        QueueAction::Warmup => (Method::GET, "/api/v1/warmup".to_owned()),
        QueueAction::TlsReports { day } => match day {
            Some(d) => (Method::GET, format!("/api/v1/tls-reports?day={}", url_encode(d))),
            None => (Method::GET, "/api/v1/tls-reports".to_owned()),
        },
    };
    let body = client.call(method, &path, &headers, None).await?;
    match args.action {
        QueueAction::List { .. } => {
            let list: List<QueuedMessage> = serde_json::from_str(&body)?;
            if json {
                return output::json(&list);
            }
            for m in &list.data {
                show(m);
            }
            output::note(&format!("{} queued", list.data.len()));
        }
        QueueAction::Show { .. } => {
            let m: QueuedMessage = serde_json::from_str(&body)?;
            if json {
                return output::json(&m);
            }
            show(&m);
        }
        QueueAction::Retry { id } => output::note(&format!("{id}: every pending recipient will be tried now")),
        QueueAction::Bounce { id } => output::note(&format!("{id}: bounced")),
        QueueAction::Purge { id } => output::note(&format!("{id}: purged")),
        QueueAction::Release { .. } | QueueAction::Drop { .. } => {
            let done: herald_api_types::HeldOutcome = serde_json::from_str(&body)?;
            if json {
                return output::json(&done);
            }
            let what = if matches!(args.action, QueueAction::Release { .. }) {
                "released"
            } else {
                "dropped"
            };
            output::note(&format!("{}: {} recipients {what}", done.id, done.recipients));
        }
        QueueAction::Destinations => {
            let list: List<QueueDestination> = serde_json::from_str(&body)?;
            if json {
                return output::json(&list);
            }
            for d in &list.data {
                let state = match (d.state.as_str(), &d.until, &d.rule) {
                    ("normal", _, _) => "normal".to_owned(),
                    (s, Some(t), Some(r)) => format!("{s} until {} by rule {r}", output::time(*t)),
                    (s, Some(t), None) => format!("{s} until {}", output::time(*t)),
                    (s, None, Some(r)) => format!("{s} (recovering, rule {r})"),
                    (s, None, None) => s.to_owned(),
                };
                output::line(&format!(
                    "{:<40} {:<50} rate {:>3.0}%  queued {:<5} conns {}/{}  delivered {} deferred {} bounced {}{}",
                    d.key,
                    state,
                    d.rate_factor * 100.0,
                    d.queued,
                    d.connections,
                    d.max_connections,
                    d.delivered,
                    d.deferred,
                    d.bounced,
                    if d.tls_failures > 0 {
                        format!(" tls failures {}", d.tls_failures)
                    } else {
                        String::new()
                    }
                ));
            }
            output::note(&format!("{} destinations", list.data.len()));
        }
        QueueAction::Warmup => {
            let list: List<WarmupState> = serde_json::from_str(&body)?;
            if json {
                return output::json(&list);
            }
            for w in &list.data {
                output::line(&format!(
                    "{:<32} {:<12} plan {} day {}/{}  {:<16} today {}/{} (headroom {})  this hour {}/{}",
                    w.key,
                    w.pool.as_deref().unwrap_or("-"),
                    w.plan,
                    w.day,
                    w.days,
                    w.provider,
                    w.sent_today,
                    w.daily_cap,
                    w.headroom_today,
                    w.sent_this_hour,
                    w.hourly_cap
                ));
            }
            output::note(&format!("{} warming", list.data.len()));
        }
        QueueAction::TlsReports { .. } => {
            let day: herald_api_types::TlsReportDay = serde_json::from_str(&body)?;
            if json {
                return output::json(&day);
            }
            for p in &day.policies {
                output::line(&serde_json::to_string(p)?);
            }
            output::note(&format!("{}: {} policies", day.day, day.policies.len()));
        }
    }
    Ok(())
}
