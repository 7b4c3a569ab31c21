//! `herald queue`: the running server's delivery queue, through its API.

use herald_api_types::{List, QueuedMessage};
use reqwest::Method;

use crate::cli::{QueueAction, QueueArgs};
use crate::client::ApiClient;
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

pub async fn run(config: &Config, args: QueueArgs, json: bool) -> anyhow::Result<()> {
    let client = ApiClient::new(config, args.server, args.api_key)?;
    let (method, path) = match &args.action {
        QueueAction::List => (Method::GET, "/api/v1/queue".to_owned()),
        QueueAction::Show { id } => (Method::GET, format!("/api/v1/queue/{id}")),
        QueueAction::Retry { id } => (Method::POST, format!("/api/v1/queue/{id}/retry")),
        QueueAction::Bounce { id } => (Method::POST, format!("/api/v1/queue/{id}/bounce")),
        QueueAction::Purge { id } => (Method::DELETE, format!("/api/v1/queue/{id}")),
    };
    let body = client.call(method, &path, &[], None).await?;
    match args.action {
        QueueAction::List => {
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
    }
    Ok(())
}
