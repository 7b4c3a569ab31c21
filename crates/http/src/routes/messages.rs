//! `POST /api/v1/messages`: the send API.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_api_types::{MessageRecipient, MessageState, RecipientResult, SendMessage, SendResult};
use herald_store::{EventFilter, IdempotencyClaim, StoreError};
use herald_types::{AccountId, Envelope, EventKind, MessageId};

use super::{ApiPath, Peer};
use crate::auth::Authed;
use crate::compose::{Origin, compose};
use crate::submit::{Accepted, Outcome, Submit, SubmitError};
use crate::{ApiError, AppState, views};

/// The header that makes a send safe to retry.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set on an answer replayed for a repeated `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotency-replayed";
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW: time::Duration = time::Duration::hours(24);
/// Personalized copies stored at once.
const PARALLEL_COPIES: usize = 64;

fn store_error(e: StoreError) -> ApiError {
    ApiError::from(herald_accounts::AccountsError::from(e))
}

fn submit_error(e: &SubmitError) -> ApiError {
    let message = e.to_string();
    let with_field = |status, code, field: &str| ApiError {
        field: Some(field.to_owned()),
        ..ApiError::new(status, code, message.clone())
    };
    match e {
        SubmitError::SenderNotApproved(_) => with_field(StatusCode::FORBIDDEN, "sender_not_approved", "from"),
        SubmitError::FromNotApproved(_) => with_field(StatusCode::FORBIDDEN, "sender_not_approved", "raw"),
        SubmitError::ForeignDomain(_) => with_field(StatusCode::UNPROCESSABLE_ENTITY, "foreign_domain", "from"),
        SubmitError::StreamDomain(_) => with_field(StatusCode::UNPROCESSABLE_ENTITY, "stream_domain", "from"),
        SubmitError::BadHeaders(_) => with_field(StatusCode::UNPROCESSABLE_ENTITY, "invalid_headers", "raw"),
        SubmitError::Suspended(_) => ApiError::new(StatusCode::FORBIDDEN, "account_suspended", message),
        SubmitError::NullSender => ApiError::field("from", message),
        SubmitError::TooLarge(_) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
        SubmitError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message),
        SubmitError::OverLimit { retry_after, .. } => ApiError {
            retry_after: Some(retry_after.as_secs().max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "over_limit", message)
        },
    }
}

/// The send's own header, as documented (read by [`idempotency_key`]).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct SendHeaders {
    /// Makes the request safe to retry: a repeat within 24 hours answers as
    /// the first did. 1 to 255 printable ASCII characters.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, pattern = "^[!-~](?:[ -~]{0,253}[!-~])?$")]
    idempotency_key: Option<String>,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(ApiError::invalid(
            "Idempotency-Key: 1 to 255 printable ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

fn fingerprint(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn json_response(status: StatusCode, body: String, replayed: bool) -> Response {
    let mut r = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        r.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    r
}

/// Stores every copy (several at once: the spool commits them together),
/// keeping the request's order.
async fn submit_all(
    submit: &Arc<dyn Submit>,
    messages: Vec<(Envelope, Vec<u8>)>,
    personal: bool,
) -> Vec<(Vec<herald_types::EmailAddress>, Result<Accepted, SubmitError>)> {
    let mut results = Vec::with_capacity(messages.len());
    let mut rest = messages.into_iter();
    loop {
        let batch: Vec<_> = rest.by_ref().take(PARALLEL_COPIES).collect();
        if batch.is_empty() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (envelope, body)) in batch.into_iter().enumerate() {
            let submit = submit.clone();
            let rcpts = envelope.recipients.clone();
            tasks.spawn(async move {
                let accepted = if personal {
                    submit.submit_personal(envelope, body).await
                } else {
                    submit.submit(envelope, body).await
                };
                (i, rcpts, accepted)
            });
        }
        let mut done: Vec<_> = tasks.join_all().await;
        done.sort_by_key(|(i, _, _)| *i);
        results.extend(done.into_iter().map(|(_, r, a)| (r, a)));
    }
    results
}

/// Sends a message to up to 1,000 recipients.
///
/// Answers once the message is durably stored. Recipients on the account's
/// suppression list are `dropped`, not sent. With `Idempotency-Key`, a
/// repeat of the request within 24 hours answers as the first did
/// (`Idempotency-Replayed: true`) and sends nothing again.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages",
    params(SendHeaders),
    request_body = SendMessage,
    responses(
        (status = 202, body = SendResult, description = "accepted"),
        (status = 403, body = herald_api_types::ErrorBody, description = "the sender is not approved for the account"),
        (status = 409, body = herald_api_types::ErrorBody, description = "a request with this Idempotency-Key is still being handled"),
        (status = 413, body = herald_api_types::ErrorBody, description = "the message is too large"),
        (status = 429, body = herald_api_types::ErrorBody, description = "(`over_limit`) the account's daily quota or rate is reached; `Retry-After` says when to try again"),
        (status = 422, body = herald_api_types::ErrorBody, description = "a field is invalid (`field` names it); or (`foreign_domain`) the sender or an author is in a domain another brand verified; or (`stream_domain`) the From domain is not the stream's own sending domain, or is another stream's; or (`idempotency_key_reused`) the Idempotency-Key was used for a different request within 24 hours")),
    security(("bearer" = [])))]
pub async fn send(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let submit = s.submit.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server does not send mail",
        )
    })?;
    if !caller.account.is_active() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            format!("account {} is suspended", caller.account.name),
        ));
    }
    let account = caller.account.id.clone();
    let store = s.accounts.store().clone();
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key {
        let print = fingerprint(&body);
        let since = time::OffsetDateTime::now_utc() - IDEMPOTENCY_WINDOW;
        match store
            .claim_idempotency(&account, key, &print, since)
            .await
            .map_err(store_error)?
        {
            IdempotencyClaim::Claimed => {}
            IdempotencyClaim::Done {
                fingerprint,
                status,
                body,
            } => {
                if fingerprint != print {
                    return Err(reused());
                }
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
                return Ok(json_response(status, body, true));
            }
            IdempotencyClaim::InProgress { fingerprint } => {
                if fingerprint != print {
                    return Err(reused());
                }
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "a request with this Idempotency-Key is still being handled; retry shortly",
                ));
            }
        }
    }
    let outcome = handle(&submit, &account, peer, body).await;
    if let Some(key) = &key {
        // The answer is remembered only when the request acted; a refused
        // request may be corrected and retried under the same key.
        match &outcome {
            Ok(answer) => store
                .complete_idempotency(&account, key, StatusCode::ACCEPTED.as_u16(), answer)
                .await
                .map_err(store_error)?,
            Err(_) => {
                if let Err(e) = store.release_idempotency(&account, key).await {
                    tracing::warn!(error = %e, "cannot release an idempotency key");
                }
            }
        }
    }
    Ok(json_response(StatusCode::ACCEPTED, outcome?, false))
}

fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request",
    )
}

/// Validates, composes and submits; the answer's JSON on success.
async fn handle(
    submit: &Arc<dyn Submit>,
    account: &AccountId,
    peer: Option<IpAddr>,
    body: Bytes,
) -> Result<String, ApiError> {
    let req: SendMessage = axum::Json::<SendMessage>::from_bytes(&body).map_err(ApiError::from)?.0;
    if !super::is_object(&body) {
        return Err(super::not_an_object());
    }
    // The request's bytes are not needed past here: a large one is not
    // held twice while its message is built.
    drop(body);
    // Content warnings: the message goes out all the same.
    let warnings: Vec<herald_api_types::ContentWarning> = match (&req.raw, &req.html) {
        (Some(raw), _) => herald_message::lint::raw(raw.as_bytes()),
        (None, Some(html)) => herald_message::lint::html(html, req.text.is_some()),
        (None, None) => Vec::new(),
    }
    .into_iter()
    .map(|w| herald_api_types::ContentWarning {
        code: w.code.to_owned(),
        message: w.message,
    })
    .collect();
    let origin = Origin {
        account,
        client_ip: peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        id_domain: submit.message_id_domain(),
        max_size: submit.max_message_size(),
    };
    let composed = compose(req, &origin)?;
    let results = submit_all(submit, composed.messages, composed.personal).await;
    // A refusal of the message itself (the same for every copy) fails the
    // request when nothing was stored.
    if results.iter().all(|(_, r)| r.is_err())
        && let Some((_, Err(e))) = results.first()
    {
        return Err(submit_error(e));
    }
    let mut id = None;
    let mut recipients = Vec::new();
    for (rcpts, result) in results {
        match result {
            Ok(accepted) => {
                id.get_or_insert_with(|| accepted.id.to_string());
                for (address, outcome) in accepted.recipients {
                    let (status, reason) = match outcome {
                        Outcome::Queued => ("queued", None),
                        Outcome::Dropped { reason } => ("dropped", Some(reason)),
                    };
                    recipients.push(RecipientResult {
                        email: address.to_string(),
                        status: status.to_owned(),
                        message_id: accepted.id.to_string(),
                        reason,
                    });
                }
            }
            // Storage failed for this copy after others were stored: the
            // caller learns which recipients to send again.
            Err(e) => recipients.extend(rcpts.into_iter().map(|address| RecipientResult {
                email: address.to_string(),
                status: "failed".to_owned(),
                message_id: String::new(),
                reason: Some(e.to_string()),
            })),
        }
    }
    let answer = SendResult {
        id: id.unwrap_or_default(),
        recipients,
        warnings,
    };
    serde_json::to_string(&answer)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

/// Events read for one message at most (1,000 recipients, each with a
/// handful of delivery events and its opens and clicks).
const MAX_MESSAGE_EVENTS: usize = 50_000;
const EVENT_PAGE: u32 = 1000;

/// Where a recipient stands after an event, for the events that move it.
fn state_after(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Accepted => Some("queued"),
        EventKind::Deferred => Some("deferred"),
        EventKind::Delivered => Some("delivered"),
        EventKind::Bounced => Some("bounced"),
        EventKind::Dropped => Some("dropped"),
        EventKind::Expired => Some("expired"),
        EventKind::Held => Some("held"),
        EventKind::Opened
        | EventKind::Clicked
        | EventKind::Complained
        | EventKind::Unsubscribed
        | EventKind::Replied
        | EventKind::Alert => None,
    }
}

/// A sent message: each recipient's state, with its events.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id")),
    responses((status = 200, body = MessageState), (status = 404, body = herald_api_types::ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<MessageState>, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "message not found");
    let id = MessageId::parse(&id).map_err(|_| not_found())?;
    let mut filter = EventFilter {
        account: Some(caller.account.id.clone()),
        message_id: Some(id.clone()),
        ..EventFilter::default()
    };
    let mut events = Vec::new();
    loop {
        let page = s
            .accounts
            .store()
            .list_events(&filter, EVENT_PAGE)
            .await
            .map_err(store_error)?;
        let full = page.len() == EVENT_PAGE as usize;
        filter.after = page.last().map(|e| e.id.clone());
        events.extend(page);
        if !full || events.len() >= MAX_MESSAGE_EVENTS {
            break;
        }
    }
    let first = events.first().ok_or_else(not_found)?;
    let name = caller.account.name.to_string();
    let mut state = MessageState {
        id: id.to_string(),
        stream: first.stream.clone(),
        sender: events.iter().find_map(|e| e.sender.clone()),
        tags: first.tags.clone(),
        metadata: first.metadata.iter().cloned().collect(),
        recipients: Vec::new(),
    };
    for e in &events {
        let Some(rcpt) = &e.recipient else { continue };
        let index = match state.recipients.iter().position(|r| &r.email == rcpt) {
            Some(i) => i,
            None => {
                state.recipients.push(MessageRecipient {
                    email: rcpt.clone(),
                    status: "queued".to_owned(),
                    events: Vec::new(),
                });
                state.recipients.len() - 1
            }
        };
        let r = &mut state.recipients[index];
        if let Some(status) = state_after(e.kind) {
            status.clone_into(&mut r.status);
        }
        r.events.push(views::event(e, &name));
    }
    Ok(axum::Json(state))
}
