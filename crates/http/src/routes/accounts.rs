//! `/api/v1/accounts`: the caller's sub-accounts (every account for an admin).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_api_types::{Account, CreateAccount, ErrorBody, List, UpdateAccountSettings};
use herald_types::AccountStatus;

use super::{ApiJson, ApiPath};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::{AppState, views};

/// List accounts: a master key sees its sub-accounts, an admin key every account.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = List<Account>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<Account>>> {
    let all = s.accounts.list_accounts(&caller).await?;
    Ok(Json(List {
        data: all.iter().map(views::account).collect(),
    }))
}

/// Create an account: a master key creates its own sub-accounts; an admin
/// key creates a master account (no `parent`) or a sub of any master.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = Account), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the name is taken"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let created = s
        .accounts
        .create_account(&caller, &req.name, req.parent.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(views::account(&created))))
}

/// Show an account the caller can see: itself, its subs, any for an admin.
#[utoipa::path(get, path = "/api/v1/accounts/{name}", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")),
    responses((status = 200, body = Account), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(views::account(&s.accounts.account(&caller, &name).await?)))
}

/// Delete a sub-account (or, for an admin, any account without subs), with
/// its keys, credentials and senders.
#[utoipa::path(delete, path = "/api/v1/accounts/{name}", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the account still has sub-accounts")),
    security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.accounts.delete(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Promote a sub-account to a master account; its former master loses sight of it.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/promote", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")),
    responses((status = 200, body = Account), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn promote(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(views::account(&s.accounts.promote(&caller, &name).await?)))
}

/// Suspend an account: its keys and SMTP credentials are refused (and those
/// of its subs, for a master) until it is reactivated.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/suspend", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")),
    responses((status = 200, body = Account), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn suspend(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(views::account(
        &s.accounts.set_status(&caller, &name, AccountStatus::Suspended).await?,
    )))
}

/// Reactivate a suspended account.
#[utoipa::path(post, path = "/api/v1/accounts/{name}/reactivate", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")),
    responses((status = 200, body = Account), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reactivate(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(views::account(
        &s.accounts.set_status(&caller, &name, AccountStatus::Active).await?,
    )))
}

/// Change an account's settings (opens and clicks tracking, bounce thresholds, streams' sending domains): the account's
/// own key, its master's or an admin's. Fields left out stay as they are.
#[utoipa::path(patch, path = "/api/v1/accounts/{name}/settings", tag = "accounts",
    params(("name" = herald_api_types::patterns::AccountName, Path, description = "account name")), request_body = UpdateAccountSettings,
    responses((status = 200, body = Account), (status = 404, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`daily_quota` or `rate_per_minute` from the account's own key: only its master or an admin sets them"),
        (status = 422, body = ErrorBody, description = "a value is invalid, a stream's domain is not one the brand registered, or `reply_url`'s host is not (or does not resolve to) a public address: what a name resolves to is found by resolving it, which a schema cannot say")),
    security(("bearer" = [])))]
pub async fn update_settings(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateAccountSettings>,
) -> ApiResult<Json<Account>> {
    let a = s
        .accounts
        .update_settings(
            &caller,
            &name,
            &herald_accounts::SettingsPatch {
                track_opens: req.track_opens,
                track_clicks: req.track_clicks,
                hard_bounce_threshold: req.hard_bounce_threshold,
                soft_bounce_threshold: req.soft_bounce_threshold,
                reply_forward_to: req.reply_forward_to,
                reply_url: req.reply_url,
                bounce_alert_percent: req.bounce_alert_percent,
                complaint_alert_percent: req.complaint_alert_percent,
                daily_quota: req.daily_quota,
                rate_per_minute: req.rate_per_minute,
                spam_threshold: req.spam_threshold,
                alert_email: req.alert_email,
                stream_domains: req.stream_domains,
            },
        )
        .await?;
    Ok(Json(views::account(&a)))
}
