//! `/api/v1/webhooks`: the acting account's postback URLs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_api_types::{CreateWebhook, ErrorBody, List, Webhook, WebhookDelivery, WebhookResend};

use super::{ApiJson, ApiPath};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::{AppState, views};

/// List the account's webhooks with their state (secrets are not shown).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = List<Webhook>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<Webhook>>> {
    let all = s.accounts.list_webhooks(&caller).await?;
    Ok(Json(List {
        data: all.iter().map(|w| views::webhook(w, false)).collect(),
    }))
}

/// Add a webhook: every event (or those of `events`) stored from now on is
/// posted to it, signed with the secret in this answer (shown only here).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = Webhook), (status = 409, body = ErrorBody, description = "the account has its 20 webhooks"),
        (status = 422, body = ErrorBody, description = "a value is invalid, or (`refused`) the URL's host is not (or does not resolve to) a public address: what a name resolves to is found by resolving it, which a schema cannot say")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<Webhook>)> {
    let hook = s
        .accounts
        .create_webhook(&caller, &req.url, &req.events, req.batch_size)
        .await?;
    Ok((StatusCode::CREATED, Json(views::webhook(&hook, true))))
}

/// A webhook and its state: failing since when, the last error.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)")),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(views::webhook(&s.accounts.webhook(&caller, &id).await?, false)))
}

/// Remove a webhook; nothing more is posted to it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.accounts.delete_webhook(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled webhook: it resumes where it stopped.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)")),
    responses((status = 200, body = Webhook), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn enable(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(views::webhook(
        &s.accounts.enable_webhook(&caller, &id).await?,
        false,
    )))
}

/// Test posts per webhook a minute: enough to debug a receiver, too few to
/// make Herald a way to hammer a URL.
const TESTS_PER_MINUTE: usize = 10;

/// How long until `webhook` may be tested again; `None`: now (counted).
fn test_wait(webhook: &herald_types::WebhookId) -> Option<std::time::Duration> {
    static TESTS: std::sync::OnceLock<crate::limits::WindowCounter<herald_types::WebhookId>> =
        std::sync::OnceLock::new();
    TESTS
        .get_or_init(|| crate::limits::WindowCounter::new(TESTS_PER_MINUTE))
        .take(webhook.clone())
}

/// Post a test event to the webhook now: `{"type": "test", …}`, signed
/// with its secret as every post is (`Herald-Signature`), to check the URL
/// and its signature check. Its cursor, delivery log and state are left as
/// they are; a disabled webhook can be tested before it is enabled.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)")),
    responses((status = 200, body = herald_api_types::WebhookTest), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "more than 10 test posts to this webhook within a minute"),
        (status = 503, body = ErrorBody, description = "this process does not post webhooks")),
    security(("bearer" = [])))]
pub async fn test(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<herald_api_types::WebhookTest>> {
    let hook = s.accounts.webhook(&caller, &id).await?;
    if let Some(wait) = test_wait(&hook.id) {
        return Err(crate::ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..crate::ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("at most {TESTS_PER_MINUTE} test posts a minute per webhook"),
            )
        });
    }
    let tester = s.webhook_tester.as_ref().ok_or_else(|| {
        crate::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this process does not post webhooks",
        )
    })?;
    Ok(Json(tester.test(&hook, caller.account.name.as_str()).await))
}

/// The webhook's last posts (up to 100), newest first: when, how many
/// events, delivered or the class of the failure, how long it took.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)")),
    responses((status = 200, body = List<WebhookDelivery>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn deliveries(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<List<WebhookDelivery>>> {
    let log = s.accounts.webhook_deliveries(&caller, &id).await?;
    Ok(Json(List {
        data: log
            .iter()
            .map(|a| WebhookDelivery {
                id: a.id,
                at: a.attempt.at,
                events: a.attempt.events,
                delivered: a.attempt.delivered,
                error: a.attempt.error.clone(),
                millis: a.attempt.millis,
            })
            .collect(),
    }))
}

/// Re-send from a recorded post on: the events of that post and every one
/// stored after it are posted again (receivers tell repeats by event id).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/resend", tag = "webhooks",
    params(("id" = herald_api_types::patterns::WebhookId, Path, description = "webhook id (whk_…)"),
        ("delivery" = i64, Path, description = "a delivery's id, from the log")),
    responses((status = 202, body = WebhookResend), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn resend(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath((id, delivery)): ApiPath<(String, i64)>,
) -> ApiResult<(StatusCode, Json<WebhookResend>)> {
    let (after, moved) = s.accounts.resend_webhook(&caller, &id, delivery).await?;
    let hook = s.accounts.webhook(&caller, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookResend {
            webhook: hook.id.to_string(),
            after,
            moved,
            status: hook.status.as_str().to_owned(),
        }),
    ))
}
