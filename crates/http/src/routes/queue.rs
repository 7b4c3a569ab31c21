//! `/api/v1/queue`: messages waiting for delivery. An admin key sees every
//! message; any other key sees its acting account's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_accounts::Caller;
use herald_api_types::{ErrorBody, List, QueueDestination, QueuedMessage, WarmupState};
use herald_types::MessageId;

use super::ApiPath;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, QueueControl, QueueEntry};

fn queue(s: &AppState) -> ApiResult<&dyn QueueControl> {
    s.queue.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no delivery queue in this process",
        )
    })
}

fn visible(caller: &Caller, entry: &QueueEntry) -> bool {
    caller.admin || entry.account == caller.account.id
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "message not found in the queue")
}

/// The entry for `id` if the caller may see it.
fn find(s: &AppState, caller: &Caller, id: &str) -> ApiResult<(MessageId, QueueEntry)> {
    let id = MessageId::parse(id).map_err(|_| not_found())?;
    let entry = queue(s)?
        .get(&id)
        .filter(|e| visible(caller, e))
        .ok_or_else(not_found)?;
    Ok((id, entry))
}

/// List queued messages.
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue",
    responses((status = 200, body = List<QueuedMessage>), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<QueuedMessage>>> {
    let mut data: Vec<QueuedMessage> = queue(&s)?
        .list()
        .into_iter()
        .filter(|e| visible(&caller, e))
        .map(|e| e.message)
        .collect();
    data.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(List { data }))
}

/// Delivery destinations and their state (normal, backed off or suspended,
/// and by which rule). The platform's view: an admin key only (404 for
/// any other, as for everything a caller may not see).
#[utoipa::path(get, path = "/api/v1/queue/destinations", tag = "queue",
    responses((status = 200, body = List<QueueDestination>), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn destinations(
    State(s): State<AppState>,
    Authed(caller): Authed,
) -> ApiResult<Json<List<QueueDestination>>> {
    if !caller.admin {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found"));
    }
    Ok(Json(List {
        data: queue(&s)?.destinations(),
    }))
}

/// Warm-up progress: each warming source address and sending domain, per
/// provider, with today's caps, counts and headroom. An admin key only.
#[utoipa::path(get, path = "/api/v1/warmup", tag = "queue",
    responses((status = 200, body = List<WarmupState>), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn warmup(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<WarmupState>>> {
    if !caller.admin {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found"));
    }
    Ok(Json(List {
        data: queue(&s)?.warmup(),
    }))
}

/// Show a queued message and each recipient's state.
#[utoipa::path(get, path = "/api/v1/queue/{id}", tag = "queue",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 200, body = QueuedMessage), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<QueuedMessage>> {
    Ok(Json(find(&s, &caller, &id)?.1.message))
}

/// Try every pending recipient now.
#[utoipa::path(post, path = "/api/v1/queue/{id}/retry", tag = "queue",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 202, description = "scheduled now"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (id, _) = find(&s, &caller, &id)?;
    if queue(&s)?.retry(&id) {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(not_found())
    }
}

/// Bounce every pending recipient (soft), with events.
#[utoipa::path(post, path = "/api/v1/queue/{id}/bounce", tag = "queue",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 204, description = "bounced"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn bounce(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (id, _) = find(&s, &caller, &id)?;
    if queue(&s)?.bounce(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}

/// Remove a message from the queue without notice.
#[utoipa::path(delete, path = "/api/v1/queue/{id}", tag = "queue",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 204, description = "purged"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn purge(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let (id, _) = find(&s, &caller, &id)?;
    if queue(&s)?.purge(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
