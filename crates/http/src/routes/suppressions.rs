//! `/api/v1/suppressions`: the acting account's suppression list.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use herald_api_types::{AddSuppression, ErrorBody, ImportedSuppressions, Suppression, SuppressionPage};
use herald_store::SuppressionFilter;
use serde::Deserialize;

use super::{ApiJson, ApiPath, ApiQuery};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::{AppState, views};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionQuery {
    /// Addresses containing this (case-insensitive).
    search: Option<String>,
    /// Only entries with this reason.
    reason: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// At most this many (default 100); below 1 counts as 1, above 1000 as 1000.
    #[param(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    limit: Option<u32>,
}

/// List the acting account's suppressed addresses, by address.
#[utoipa::path(get, path = "/api/v1/suppressions", tag = "suppressions", params(SuppressionQuery),
    responses((status = 200, body = SuppressionPage), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<SuppressionQuery>,
) -> ApiResult<Json<SuppressionPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let filter = SuppressionFilter {
        search: q.search.filter(|v| !v.is_empty()),
        reason: q.reason.filter(|v| !v.is_empty()),
        after: q.cursor.filter(|v| !v.is_empty()),
    };
    let page = s.accounts.list_suppressions(&caller, &filter, limit).await?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|e| e.address.clone()))
        .flatten();
    Ok(Json(SuppressionPage {
        data: page.iter().map(|e| views::suppression(e, &caller)).collect(),
        next_cursor,
    }))
}

/// Whether mail to an address is suppressed, by the account's own list or
/// its brand's; 404 when it is not.
#[utoipa::path(get, path = "/api/v1/suppressions/{address}", tag = "suppressions",
    params(("address" = herald_api_types::patterns::EmailAddress, Path, description = "the address")),
    responses((status = 200, body = Suppression), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<Json<Suppression>> {
    let entry = s.accounts.suppression(&caller, &address).await?;
    Ok(Json(views::suppression(&entry, &caller)))
}

/// Suppress an address (reason `manual` unless given). An address already
/// listed keeps its entry.
#[utoipa::path(post, path = "/api/v1/suppressions", tag = "suppressions", request_body = AddSuppression,
    responses((status = 201, body = Suppression), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<AddSuppression>,
) -> ApiResult<(StatusCode, Json<Suppression>)> {
    let entry = s
        .accounts
        .add_suppression(&caller, &req.address, req.reason.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(views::suppression(&entry, &caller))))
}

/// Remove an address from the account's list: mail to it is sent again.
#[utoipa::path(delete, path = "/api/v1/suppressions/{address}", tag = "suppressions",
    params(("address" = herald_api_types::patterns::EmailAddress, Path, description = "the address")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(address): ApiPath<String>,
) -> ApiResult<StatusCode> {
    s.accounts.remove_suppression(&caller, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How an import treats bad lines.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Refuse the whole file if any line is bad (default: import the good
    /// lines and report the bad ones).
    pub strict: Option<bool>,
}

/// Import a CSV list (`text/csv`, RFC 4180): a header naming an `address`
/// (or `email`) column and optionally `reason` (free text), or one address
/// per line. Each bad line is reported with its number and why, and the
/// good ones are imported; with `strict=true` a bad line refuses the file.
/// An address keeps its local part's case (the domain is lower-cased);
/// lookups ignore case.
#[utoipa::path(post, path = "/api/v1/suppressions/import", tag = "suppressions",
    params(ImportQuery),
    request_body(content = Option<herald_api_types::patterns::SuppressionCsv>, content_type = "text/csv",
        description = "the list; no body (or an empty one) imports nothing"),
    responses((status = 200, body = ImportedSuppressions), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ImportedSuppressions>> {
    let done = s
        .accounts
        .import_suppressions(&caller, &body, q.strict.unwrap_or(false))
        .await?;
    Ok(Json(views::imported_suppressions(done)))
}

/// The whole list as CSV: `address,reason,created_at,source_event,brand`.
#[utoipa::path(get, path = "/api/v1/suppressions/export", tag = "suppressions",
    responses((status = 200, body = String, content_type = "text/csv")),
    security(("bearer" = [])))]
pub async fn export(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<impl IntoResponse> {
    let csv = s.accounts.export_suppressions(&caller).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv))
}
