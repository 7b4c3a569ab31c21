//! `/api/v1/queue`: messages waiting for delivery. An admin key sees every
//! message; any other key sees its acting account's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_accounts::Caller;
use herald_api_types::{ErrorBody, List, QueueDestination, QueuedMessage, TlsReportDay, WarmupState};
use herald_types::MessageId;

use super::{ApiPath, ApiQuery};
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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Only messages with a pending recipient whose mail goes to this
    /// destination: a provider's name (`google`) or a destination's key.
    #[param(max_length = 300)]
    pub destination: Option<String>,
    /// `held`: only messages with a recipient held for review.
    #[param(pattern = "^(held)?$")]
    pub status: Option<String>,
    /// At most this many (1–10000; default: every one); which ones, when
    /// there are more, is not specified.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// List queued messages.
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue",
    params(QueueQuery),
    responses((status = 200, body = List<QueuedMessage>), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> ApiResult<Json<List<QueuedMessage>>> {
    if q.destination.as_ref().is_some_and(|d| d.chars().count() > 300) {
        return Err(ApiError::field("destination", "at most 300 characters"));
    }
    let held_only = match q.status.as_deref() {
        None | Some("") => false,
        Some("held") => true,
        Some(_) => return Err(ApiError::field("status", "held")),
    };
    let limit = match q.limit {
        None => usize::MAX,
        Some(n @ 1..=10_000) => n as usize,
        Some(_) => return Err(ApiError::field("limit", "between 1 and 10000")),
    };
    let control = queue(&s)?;
    let wanted = q.destination.as_deref().map(str::trim).filter(|d| !d.is_empty());
    let goes = |m: &QueuedMessage| {
        wanted.is_none_or(|dest| {
            m.recipients.iter().any(|r| {
                r.status == "pending"
                    && r.address
                        .rsplit_once('@')
                        .is_some_and(|(_, domain)| control.goes_to(domain, dest))
            })
        })
    };
    // Only the caller's messages are copied out of the queue (an admin
    // sees every account's).
    let account = (!caller.admin).then_some(&caller.account.id);
    let mut data: Vec<QueuedMessage> = control
        .list_of(account, held_only, if wanted.is_some() { usize::MAX } else { limit })
        .into_iter()
        .filter(|e| visible(&caller, e))
        .map(|e| e.message)
        .filter(|m| goes(m))
        .take(limit)
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

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TlsReportQuery {
    /// The UTC day, `YYYY-MM-DD` (default: today). The last 8 days are kept.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    pub day: Option<String>,
}

/// A day's TLS-RPT counts (RFC 8460): what a TLS report would say about
/// each recipient domain with an MTA-STS policy. An admin key only.
#[utoipa::path(get, path = "/api/v1/tls-reports", tag = "queue",
    params(TlsReportQuery),
    responses((status = 200, body = TlsReportDay), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn tls_reports(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<TlsReportQuery>,
) -> ApiResult<Json<TlsReportDay>> {
    if !caller.admin {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found"));
    }
    let day = match q.day {
        Some(d) => {
            let f = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(&d, &f).map_err(|_| ApiError::field("day", "a day such as 2026-12-07"))?;
            d
        }
        None => {
            let d = time::OffsetDateTime::now_utc().date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
    };
    let policies = queue(&s)?.tls_report(&day);
    Ok(Json(TlsReportDay { day, policies }))
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

fn nothing_held() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", "the message has no held recipient")
}

/// Release a held message (its content scored over the spam threshold):
/// its held recipients are delivered now. An admin key only: an account
/// cannot wave its own mail past the content check (404 for any other).
#[utoipa::path(post, path = "/api/v1/messages/{id}/release", tag = "messages",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 200, body = herald_api_types::HeldOutcome), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "nothing held")),
    security(("bearer" = [])))]
pub async fn release(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<herald_api_types::HeldOutcome>> {
    if !caller.admin {
        return Err(not_found());
    }
    let (id, _) = find(&s, &caller, &id)?;
    match queue(&s)?.release(&id) {
        None => Err(not_found()),
        Some(0) => Err(nothing_held()),
        Some(n) => {
            tracing::info!(message = %id, recipients = n, "held message released");
            Ok(Json(herald_api_types::HeldOutcome {
                id: id.to_string(),
                recipients: u32::try_from(n).unwrap_or(u32::MAX),
            }))
        }
    }
}

/// Drop a held message: its held recipients are not sent, each with a
/// `dropped` event. The message's account or an admin key.
#[utoipa::path(post, path = "/api/v1/messages/{id}/drop", tag = "messages",
    params(("id" = herald_api_types::patterns::MessageId, Path, description = "message id (msg_…)")),
    responses((status = 200, body = herald_api_types::HeldOutcome), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "nothing held")),
    security(("bearer" = [])))]
pub async fn drop_held(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<herald_api_types::HeldOutcome>> {
    let (id, _) = find(&s, &caller, &id)?;
    let who = if caller.admin { "the operator" } else { "the account" };
    match queue(&s)?.drop_held(&id, &format!("held: dropped by {who}")) {
        None => Err(not_found()),
        Some(0) => Err(nothing_held()),
        Some(n) => Ok(Json(herald_api_types::HeldOutcome {
            id: id.to_string(),
            recipients: u32::try_from(n).unwrap_or(u32::MAX),
        })),
    }
}
