//! `herald send`: a message through the running server's send API, as the
//! named account.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use base64::Engine;
use herald_api_types::{AttachmentInput, MailboxInput, RecipientInput, SendMessage, SendResult};
use reqwest::Method;

use crate::cli::SendArgs;
use crate::client::ApiClient;
use crate::config::Config;
use crate::output;

/// A guess from the file name; the receiving client mostly goes by the name.
fn content_type(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "json" => "application/json",
        "ics" => "text/calendar",
        _ => "application/octet-stream",
    }
}

fn request(args: &SendArgs) -> anyhow::Result<SendMessage> {
    let rcpts = |list: &[String]| list.iter().cloned().map(RecipientInput::Text).collect::<Vec<_>>();
    let mut metadata = BTreeMap::new();
    for pair in &args.meta {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--meta {pair:?}: expected KEY=VALUE"))?;
        metadata.insert(k.to_owned(), v.to_owned());
    }
    let raw = match &args.file {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?)
        }
        None => None,
    };
    if raw.is_none() && args.from.is_none() {
        bail!("give --from (or --file with a complete message)");
    }
    let mut attachments = Vec::new();
    for path in &args.attach {
        let content = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        attachments.push(AttachmentInput {
            filename: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".to_owned()),
            content_type: Some(content_type(path).to_owned()),
            content: base64::engine::general_purpose::STANDARD.encode(content),
        });
    }
    Ok(SendMessage {
        from: args.from.clone().map(MailboxInput::Text),
        to: rcpts(&args.to),
        cc: rcpts(&args.cc),
        bcc: rcpts(&args.bcc),
        reply_to: args.reply_to.clone().map(MailboxInput::Text),
        subject: args.subject.clone(),
        text: args.text.clone(),
        html: args.html.clone(),
        attachments,
        headers: BTreeMap::new(),
        tags: args.tag.clone(),
        metadata,
        stream: args.stream.clone(),
        raw,
    })
}

pub async fn run(config: &Config, args: SendArgs, json: bool) -> anyhow::Result<()> {
    let body = serde_json::to_string(&request(&args)?)?;
    let client = ApiClient::new(config, args.server.clone(), args.api_key.clone())?;
    let mut headers = vec![("Herald-Account", args.account.account.clone())];
    if let Some(key) = &args.idempotency_key {
        headers.push(("Idempotency-Key", key.clone()));
    }
    let answer = client
        .call(Method::POST, "/api/v1/messages", &headers, Some(body))
        .await?;
    let result: SendResult = serde_json::from_str(&answer).context("unexpected answer from the server")?;
    if json {
        return output::json(&result);
    }
    output::line(&result.id);
    for r in &result.recipients {
        match &r.reason {
            Some(reason) => output::note(&format!("{}: {} ({reason})", r.email, r.status)),
            None => output::note(&format!("{}: {}", r.email, r.status)),
        }
    }
    Ok(())
}
