//! Commands that are the running server's API operations one for one:
//! `herald webhook …`, `herald message show`, `herald reputation`,
//! `herald health`, `herald metrics`. They send the same requests a client
//! of the API would, with `--account` as the `Herald-Account` header, and
//! print the API's JSON with `--json` or lines for people.

use anyhow::Context;
use herald_api_types::{List, MessageState, Reputation, Webhook, WebhookDelivery, WebhookTest};
use reqwest::Method;

use crate::cli::{MessageAction, MessageArgs, ServerArgs, WebhookAction, WebhookArgs};
use crate::client::ApiClient;
use crate::config::Config;
use crate::output;
use crate::queue_cmd::url_encode;

/// The running server's API as `args` say, and the headers that act for
/// `--account`.
pub fn client(config: &Config, args: &ServerArgs) -> anyhow::Result<(ApiClient, Vec<(&'static str, String)>)> {
    let client = ApiClient::new(config, args.server.clone(), args.api_key.clone())?;
    let headers = args.account.iter().map(|a| ("herald-account", a.clone())).collect();
    Ok((client, headers))
}

fn webhook_line(w: &Webhook) -> String {
    let events = if w.events.is_empty() {
        "every event".to_owned()
    } else {
        w.events.join(",")
    };
    let failing = match (&w.failing_since, &w.last_error) {
        (Some(t), Some(e)) => format!("  failing since {} ({e})", output::time(*t)),
        _ => String::new(),
    };
    format!(
        "{}  {:<8} {}  {events}  batch {}{failing}",
        w.id, w.status, w.url, w.batch_size
    )
}

pub async fn webhook(config: &Config, args: WebhookArgs, json: bool) -> anyhow::Result<()> {
    let (api, headers) = client(config, &args.server)?;
    let path = |id: &str, rest: &str| format!("/api/v1/webhooks/{}{rest}", url_encode(id));
    match args.action {
        WebhookAction::List => {
            let body = api.call(Method::GET, "/api/v1/webhooks", &headers, None).await?;
            let list: List<Webhook> = serde_json::from_str(&body)?;
            if json {
                return output::json(&list);
            }
            for w in &list.data {
                output::line(&webhook_line(w));
            }
            output::note(&format!("{} webhooks", list.data.len()));
        }
        WebhookAction::Create {
            url,
            events,
            batch_size,
        } => {
            let request = herald_api_types::CreateWebhook {
                url,
                events,
                batch_size,
            };
            let body = api
                .call(
                    Method::POST,
                    "/api/v1/webhooks",
                    &headers,
                    Some(serde_json::to_string(&request)?),
                )
                .await?;
            let made: Webhook = serde_json::from_str(&body)?;
            if json {
                return output::json(&made);
            }
            output::line(&webhook_line(&made));
            output::line(&format!("secret: {}", made.secret.as_deref().unwrap_or("")));
            output::note("the secret signs every post (Herald-Signature) and is not shown again");
        }
        WebhookAction::Show { id } => {
            let body = api.call(Method::GET, &path(&id, ""), &headers, None).await?;
            let w: Webhook = serde_json::from_str(&body)?;
            if json {
                return output::json(&w);
            }
            output::line(&webhook_line(&w));
        }
        WebhookAction::Delete { id } => {
            api.call(Method::DELETE, &path(&id, ""), &headers, None).await?;
            if !json {
                output::note(&format!("{id}: removed"));
            }
        }
        WebhookAction::Enable { id } => {
            let body = api.call(Method::POST, &path(&id, "/enable"), &headers, None).await?;
            let w: Webhook = serde_json::from_str(&body)?;
            if json {
                return output::json(&w);
            }
            output::line(&webhook_line(&w));
        }
        WebhookAction::Test { id } => {
            let body = api.call(Method::POST, &path(&id, "/test"), &headers, None).await?;
            let t: WebhookTest = serde_json::from_str(&body)?;
            if json {
                output::json(&t)?;
            } else if t.delivered {
                output::line(&format!("{id}: test post delivered in {} ms", t.millis));
            } else {
                output::line(&format!(
                    "{id}: test post failed after {} ms: {}",
                    t.millis,
                    t.error.as_deref().unwrap_or("unknown")
                ));
            }
            if !t.delivered {
                anyhow::bail!("the test post to {id} was not delivered");
            }
        }
        WebhookAction::Deliveries { id } => {
            let body = api.call(Method::GET, &path(&id, "/deliveries"), &headers, None).await?;
            let list: List<WebhookDelivery> = serde_json::from_str(&body)?;
            if json {
                return output::json(&list);
            }
            for d in &list.data {
                output::line(&format!(
                    "{:<8} {}  {} events  {}  {} ms",
                    d.id,
                    output::time(d.at),
                    d.events,
                    if d.delivered {
                        "delivered".to_owned()
                    } else {
                        d.error.clone().unwrap_or_else(|| "failed".to_owned())
                    },
                    d.millis
                ));
            }
        }
        WebhookAction::Resend { id, delivery } => {
            let body = api
                .call(
                    Method::POST,
                    &path(&id, &format!("/deliveries/{delivery}/resend")),
                    &headers,
                    None,
                )
                .await?;
            if json {
                output::line(&body);
            } else {
                output::note(&format!(
                    "{id}: everything from post {delivery} on will be posted again"
                ));
            }
        }
    }
    Ok(())
}

pub async fn message(config: &Config, args: MessageArgs, json: bool) -> anyhow::Result<()> {
    let (api, headers) = client(config, &args.server)?;
    let MessageAction::Show { id } = args.action;
    let body = api
        .call(
            Method::GET,
            &format!("/api/v1/messages/{}", url_encode(&id)),
            &headers,
            None,
        )
        .await?;
    let m: MessageState = serde_json::from_str(&body)?;
    if json {
        return output::json(&m);
    }
    output::line(&format!(
        "{}  stream {}  from {}{}",
        m.id,
        m.stream,
        m.sender.as_deref().unwrap_or("-"),
        if m.tags.is_empty() {
            String::new()
        } else {
            format!("  tags {}", m.tags.join(","))
        }
    ));
    for r in &m.recipients {
        output::line(&format!("{}  {}", r.email, r.status));
        for e in &r.events {
            output::line(&format!(
                "  {}  {:<12} {}",
                output::time(e.at),
                e.kind,
                crate::events_cmd::detail(e)
            ));
        }
    }
    Ok(())
}

pub async fn reputation(config: &Config, args: ServerArgs, json: bool) -> anyhow::Result<()> {
    let (api, headers) = client(config, &args)?;
    let body = api.call(Method::GET, "/api/v1/reputation", &headers, None).await?;
    let r: Reputation = serde_json::from_str(&body)?;
    if json {
        return output::json(&r);
    }
    output::line(&format!("{}  score {}/100", r.account, r.reputation.score));
    for reason in &r.reputation.reasons {
        output::line(&format!("  -{:<3} {}", reason.impact, reason.message));
    }
    for ip in &r.ips {
        output::line(&format!("{}  score {}/100", ip.ip, ip.reputation.score));
        for reason in &ip.reputation.reasons {
            output::line(&format!("  -{:<3} {}", reason.impact, reason.message));
        }
    }
    Ok(())
}

pub async fn health(config: &Config, args: ServerArgs, json: bool) -> anyhow::Result<()> {
    let (api, headers) = client(config, &args)?;
    let body = api
        .call(Method::GET, "/healthz", &headers, None)
        .await
        .context("unhealthy")?;
    output::line(if json { &body } else { "healthy" });
    Ok(())
}

/// `/metrics` where the server serves it: its own listener (loopback when
/// bound to every address) or the API's, with the token when one is set.
pub async fn metrics(config: &Config, args: ServerArgs) -> anyhow::Result<()> {
    let server = match (args.server.clone(), config.metrics_listen) {
        (Some(s), _) => Some(s),
        (None, Some(addr)) => {
            let ip = if addr.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                addr.ip()
            };
            Some(format!("http://{}", std::net::SocketAddr::new(ip, addr.port())))
        }
        (None, None) => None,
    };
    // The metrics token, never an API key: the metrics listener may be
    // plain HTTP, and it takes no API key anyway.
    let api = ApiClient::new(config, server, Some(config.metrics_token.clone().unwrap_or_default()))?;
    output::raw(&api.call(Method::GET, "/metrics", &[], None).await?);
    Ok(())
}
