//! The acting account's API keys, SMTP credentials and approved senders.
//! A master's key reaches a sub's with `Herald-Account: <sub>`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_api_types::{
    AddSender, ApiKey, CreateApiKey, CreateSmtpCredential, CreatedApiKey, CreatedSmtpCredential, ErrorBody, List,
    Sender, SmtpCredential,
};
use herald_types::KeyScope;

use super::{ApiJson, ApiPath, OptionalJson};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::{AppState, views};

/// List API keys, revoked ones included, by prefix; never the keys themselves.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "credentials",
    responses((status = 200, body = List<ApiKey>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_keys(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<ApiKey>>> {
    let keys = s.accounts.list_api_keys(&caller).await?;
    Ok(Json(List {
        data: keys.iter().map(views::api_key).collect(),
    }))
}

/// Create an API key. The key is in this answer only; Herald keeps a hash.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "credentials", request_body(content = Option<CreateApiKey>, description = "optional: no body (or an empty one) is `{}`"),
    responses((status = 201, body = CreatedApiKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(s): State<AppState>,
    Authed(caller): Authed,
    OptionalJson(req): OptionalJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let scope = req.scope.map_or(KeyScope::Account, views::scope_from);
    let issued = s.accounts.issue_api_key(&caller, scope, req.label).await?;
    Ok((StatusCode::CREATED, Json(views::created_api_key(&issued))))
}

/// Revoke an API key, named by id or prefix. It is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "credentials",
    params(("id" = String, Path, description = "key id (key_…) or prefix (hrld_…)")),
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_key(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(views::api_key(&s.accounts.revoke_api_key(&caller, &id).await?)))
}

/// List SMTP credentials by username; never the passwords.
#[utoipa::path(get, path = "/api/v1/smtp-credentials", tag = "credentials",
    responses((status = 200, body = List<SmtpCredential>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_smtp(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<SmtpCredential>>> {
    let all = s.accounts.list_smtp_credentials(&caller).await?;
    Ok(Json(List {
        data: all.iter().map(views::smtp_credential).collect(),
    }))
}

/// Create an SMTP credential. The password is in this answer only.
#[utoipa::path(post, path = "/api/v1/smtp-credentials", tag = "credentials", request_body(content = Option<CreateSmtpCredential>, description = "optional: no body (or an empty one) is `{}`"),
    responses((status = 201, body = CreatedSmtpCredential), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_smtp(
    State(s): State<AppState>,
    Authed(caller): Authed,
    OptionalJson(req): OptionalJson<CreateSmtpCredential>,
) -> ApiResult<(StatusCode, Json<CreatedSmtpCredential>)> {
    let issued = s.accounts.issue_smtp_credential(&caller, req.label).await?;
    Ok((StatusCode::CREATED, Json(views::created_smtp_credential(&issued))))
}

/// Revoke an SMTP credential, named by id or username.
#[utoipa::path(delete, path = "/api/v1/smtp-credentials/{id}", tag = "credentials",
    params(("id" = String, Path, description = "credential id (cred_…) or username")),
    responses((status = 200, body = SmtpCredential), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_smtp(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SmtpCredential>> {
    Ok(Json(views::smtp_credential(
        &s.accounts.revoke_smtp_credential(&caller, &id).await?,
    )))
}

/// List approved senders.
#[utoipa::path(get, path = "/api/v1/senders", tag = "credentials",
    responses((status = 200, body = List<Sender>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_senders(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<Sender>>> {
    let all = s.accounts.list_senders(&caller).await?;
    Ok(Json(List {
        data: all.iter().map(views::sender).collect(),
    }))
}

/// Approve a sender: an exact address, or `@domain` for the whole domain.
#[utoipa::path(post, path = "/api/v1/senders", tag = "credentials", request_body = AddSender,
    responses((status = 201, body = Sender), (status = 403, body = ErrorBody, description = "override asked by a key without operator power"), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "malformed, or refused (`refused`): the sender's domain (or a parent of it) must be a sending domain the account's brand (its master and the master's subs) registered and verified; only an admin key may override that with `override`")),
    security(("bearer" = [])))]
pub async fn add_sender(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<AddSender>,
) -> ApiResult<(StatusCode, Json<Sender>)> {
    let added = s.accounts.add_sender(&caller, &req.sender, req.force).await?;
    Ok((StatusCode::CREATED, Json(views::sender(&added))))
}

/// Remove an approved sender.
#[utoipa::path(delete, path = "/api/v1/senders/{sender}", tag = "credentials",
    params(("sender" = herald_api_types::patterns::SenderRule, Path, description = "the address or @domain, URL-encoded")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove_sender(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(sender): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.accounts.remove_sender(&caller, &sender).await?;
    Ok(StatusCode::NO_CONTENT)
}
