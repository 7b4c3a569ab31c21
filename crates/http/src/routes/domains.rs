//! `/api/v1/domains`: the acting account's sending domains.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_api_types::{AddDomain, Domain, DomainVerification, ErrorBody, List};
use herald_domains::Domains;

use super::{ApiJson, ApiPath};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

fn domains(s: &AppState) -> ApiResult<&Domains> {
    s.domains.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "domains are not available in this process",
        )
    })
}

/// List sending domains with their keys and records.
#[utoipa::path(get, path = "/api/v1/domains", tag = "domains",
    responses((status = 200, body = List<Domain>)), security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<Domain>>> {
    let all = domains(&s)?.list(&caller.account).await?;
    Ok(Json(List {
        data: all.iter().map(views::domain).collect(),
    }))
}

/// Register a domain: generates an RSA-2048 and an Ed25519 DKIM key and
/// answers every record to publish.
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = AddDomain,
    responses((status = 201, body = Domain), (status = 409, body = ErrorBody, description = "already registered"),
        (status = 422, body = ErrorBody, description = "not a domain name, or (`refused`) the platform's own domain or a name under it, which sends Herald's notices and receives every return path")),
    security(("bearer" = [])))]
pub async fn add(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let added = domains(&s)?.add(&caller.account, &req.name).await?;
    Ok((StatusCode::CREATED, Json(views::domain(&added))))
}

/// A domain with its keys and the records to publish.
#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = herald_api_types::patterns::DomainName, Path, description = "domain name")),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(views::domain(&domains(&s)?.get(&caller.account, &name).await?)))
}

/// Remove a domain and its keys; its mail is no longer signed.
#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = herald_api_types::patterns::DomainName, Path, description = "domain name")),
    responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    domains(&s)?.delete(&caller.account, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check every record against live DNS: ok, missing, or wrong with what was found.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/verify", tag = "domains",
    params(("domain" = herald_api_types::patterns::DomainName, Path, description = "domain name")),
    responses((status = 200, body = DomainVerification), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn verify(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<DomainVerification>> {
    Ok(Json(views::verification(
        &domains(&s)?.verify(&caller.account, &name).await?,
    )))
}

/// Start a DKIM rotation: new selectors to publish beside the current ones;
/// signing switches when verification finds them.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/rotate", tag = "domains",
    params(("domain" = herald_api_types::patterns::DomainName, Path, description = "domain name")),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rotate(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(views::domain(&domains(&s)?.rotate(&caller.account, &name).await?)))
}

/// Retire the keys a rotation replaced; their records may be removed.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/retire", tag = "domains",
    params(("domain" = herald_api_types::patterns::DomainName, Path, description = "domain name")),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
pub async fn retire(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Domain>> {
    Ok(Json(views::domain(&domains(&s)?.retire(&caller.account, &name).await?)))
}
