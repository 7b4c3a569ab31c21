//! `/api/v1/dmarc`: report uploads, the stored reports and a domain's
//! summary.
//!
//! Who sees what: an admin key sees every domain; any other key sees the
//! reports of the domains its account registered and verified (and their
//! subdomains). Verified, because registering a name proves nothing: its
//! DNS records are what only the domain's owner can publish. A domain the
//! caller cannot see answers 404, as if it had no reports.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use herald_accounts::{AccountsError, Caller};
use herald_api_types::ErrorBody;
use herald_api_types::dmarc::{BrokenDmarcReportPage, DmarcReportPage, DmarcSummary, ImportResult, ImportStatus};
use herald_dmarc::{Dmarc, Origin, Prepared};
use herald_store::{ReportFilter, ReportKind};
use herald_types::DomainName;
use serde::Deserialize;
use time::OffsetDateTime;

use super::ApiQuery;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

fn service(s: &AppState) -> ApiResult<&Dmarc> {
    s.dmarc.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "DMARC reports are not available in this process",
        )
    })
}

fn not_visible() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such verified domain in this account",
    )
}

/// Whether `caller` may see reports about `domain`: an admin may; anyone
/// else when the domain, or a parent of it, is a verified domain of its
/// account.
pub(crate) async fn visible(s: &AppState, caller: &Caller, domain: &str) -> ApiResult<()> {
    if caller.admin {
        return Ok(());
    }
    let store = s.accounts.store();
    let mut name = domain;
    loop {
        if let Ok(parsed) = DomainName::parse(name)
            && let Some(d) = store.domain(&parsed).await.map_err(AccountsError::from)?
            && d.account == caller.account.id
            && d.verified_at.is_some()
        {
            return Ok(());
        }
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => name = parent,
            _ => return Err(not_visible()),
        }
    }
}

/// Upload reports: a DMARC aggregate report (XML, gzip, raw zlib or zip),
/// a failure report, a TLS report (JSON), a whole report email (every
/// report attached to it), or an mbox of them; the kind is found from the
/// content. The same report twice is stored
/// once (`duplicate`). Bytes that are no report are kept and listed with
/// their error, and answered 422.
#[utoipa::path(post, path = "/api/v1/dmarc/reports", tag = "dmarc",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the report as received: xml, gz, zlib, zip, json, message/rfc822 or mbox"),
    responses((status = 200, body = ImportResult), (status = 404, body = ErrorBody, description = "a report about a domain of another account"),
        (status = 422, body = ErrorBody, description = "the body holds no readable report: bytes that are no DMARC, failure or TLS report (or report email, or mbox of them) are kept as a broken report and refused; whether they are is found by reading them, which a schema cannot say")),
    security(("bearer" = [])))]
pub async fn upload(State(s): State<AppState>, Authed(caller): Authed, body: Bytes) -> ApiResult<Json<ImportResult>> {
    let dmarc = service(&s)?;
    let now = OffsetDateTime::now_utc();
    // Reading is CPU work: off the async threads.
    let prepared = tokio::task::spawn_blocking(move || herald_dmarc::prepare_all(&body, Origin::Api, None, now))
        .await
        .map_err(|e| AccountsError::Internal(format!("report reader failed: {e}")))?;
    if prepared.is_empty() {
        return Err(ApiError::invalid("the body holds no report"));
    }
    for p in &prepared {
        if let Prepared::Report(r) = p {
            visible(&s, &caller, &r.domain).await?;
        }
    }
    let reports = dmarc.store(prepared).await.map_err(AccountsError::from)?;
    if let Some(failed) = reports.iter().find(|o| o.status == ImportStatus::Failed)
        && reports.len() == 1
    {
        return Err(ApiError::invalid(format!(
            "not a readable report: {} (kept as broken report {})",
            failed.error.as_deref().unwrap_or("unknown error"),
            failed.id
        )));
    }
    Ok(Json(ImportResult { reports }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Reports about this domain and its subdomains. Required: only an
    /// admin key may leave it out (for every domain's reports).
    #[param(required = true, value_type = herald_api_types::patterns::DomainName)]
    pub domain: Option<String>,
    /// `aggregate`, `failure` or `tlsrpt`.
    #[param(value_type = Option<ReportKindName>)]
    pub kind: Option<String>,
    /// The `next_cursor` of the previous page (empty: the start).
    #[param(pattern = "^(?:[+-]?[0-9]{1,18})?$")]
    pub cursor: Option<String>,
    /// At most this many (default 100); below 1 counts as 1, above 1000 as 1000.
    #[param(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    pub limit: Option<u32>,
    /// Reports whose own period (a failure report: when it arrived) ends
    /// at or after this: an RFC 3339 time, or a date (`2025-03-01`,
    /// midnight UTC).
    #[param(value_type = Option<TimeOrDate>)]
    pub since: Option<String>,
    /// Reports whose own period begins before this (RFC 3339 or a date);
    /// after `since`.
    #[param(value_type = Option<TimeOrDate>)]
    pub until: Option<String>,
}

/// An RFC 3339 time (`2025-03-01T08:00:00Z`) or a date (`2025-03-01`,
/// its midnight UTC).
#[derive(Debug)]
pub struct TimeOrDate;

impl utoipa::PartialSchema for TimeOrDate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
            )
            .into()
    }
}

impl utoipa::ToSchema for TimeOrDate {}

/// A window's error as the API answers it: 422, naming the parameter.
fn window_error(e: herald_dmarc::WindowError) -> ApiError {
    ApiError::field(e.field, e.message)
}

/// The kinds of stored reports.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ReportKindName {
    Aggregate,
    Failure,
    Tlsrpt,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page (empty: the start).
    #[param(pattern = "^(?:[+-]?[0-9]{1,18})?$")]
    pub cursor: Option<String>,
    /// At most this many (default 100); below 1 counts as 1, above 1000 as 1000.
    #[param(minimum = 0, maximum = 4294967295_u64, format = Int64)]
    pub limit: Option<u32>,
}

fn page_of(cursor: Option<&str>, limit: Option<u32>) -> ApiResult<(i64, u32)> {
    // An empty cursor (`cursor=`) is no cursor, as in the other lists.
    let after = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => c
            .parse::<i64>()
            .map_err(|_| ApiError::field("cursor", "not a cursor of this list"))?,
        None => 0,
    };
    Ok((after, limit.unwrap_or(100).clamp(1, 1000)))
}

/// The stored reports, oldest first; `since` and `until` keep those whose
/// own dates (an aggregate report's period, a failure report's arrival)
/// meet the window, whenever they were imported.
#[utoipa::path(get, path = "/api/v1/dmarc/reports", tag = "dmarc", params(ReportsQuery),
    responses((status = 200, body = DmarcReportPage), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a malformed cursor, kind, since or until, or until not after since")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<DmarcReportPage>> {
    let (after, limit) = page_of(q.cursor.as_deref(), q.limit)?;
    let domain = match q.domain.as_deref() {
        Some(d) => {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            visible(&s, &caller, &d).await?;
            Some(d)
        }
        None if caller.admin => None,
        None => return Err(ApiError::field("domain", "required")),
    };
    let kind = q
        .kind
        .as_deref()
        .map(ReportKind::parse)
        .transpose()
        .map_err(|e| ApiError::field("kind", e))?;
    let (since, until) =
        herald_dmarc::window::list_bounds(q.since.as_deref(), q.until.as_deref()).map_err(window_error)?;
    let filter = ReportFilter {
        kind,
        domain,
        since,
        until,
        after: Some(after),
        ..ReportFilter::default()
    };
    let page = s
        .accounts
        .store()
        .list_reports(&filter, limit)
        .await
        .map_err(AccountsError::from)?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|r| r.id.to_string()))
        .flatten();
    let data = page.into_iter().map(views::dmarc_report).collect();
    Ok(Json(DmarcReportPage { data, next_cursor }))
}

/// The reports that could not be read, with their errors (admin keys only).
#[utoipa::path(get, path = "/api/v1/dmarc/reports/broken", tag = "dmarc", params(PageQuery),
    responses((status = 200, body = BrokenDmarcReportPage), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn broken(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<BrokenDmarcReportPage>> {
    if !caller.admin {
        return Err(not_visible());
    }
    let (after, limit) = page_of(q.cursor.as_deref(), q.limit)?;
    let page = s
        .accounts
        .store()
        .list_broken_reports(after, limit)
        .await
        .map_err(AccountsError::from)?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|b| b.id.to_string()))
        .flatten();
    let data = page.into_iter().map(views::broken_report).collect();
    Ok(Json(BrokenDmarcReportPage { data, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    #[param(value_type = herald_api_types::patterns::DomainName)]
    pub domain: String,
    /// The window, in days before `until` (default 30, at most 366). Not
    /// with `since`.
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
    /// The window's start: an RFC 3339 time, or a date (`2025-03-01`,
    /// midnight UTC). Default: `days` before `until`. The window is at most
    /// 366 days.
    #[param(value_type = Option<TimeOrDate>)]
    pub since: Option<String>,
    /// The window's end, left out (RFC 3339 or a date); default now.
    #[param(value_type = Option<TimeOrDate>)]
    pub until: Option<String>,
}

/// A domain's DMARC aggregate reports over a window (the last 30 days, or
/// `[since, until)`, last year's included): volume and pass rates by day,
/// reporter and source IP, each source labelled (yours, a known service, a
/// forwarder, unknown), what enforcing would block, the next policy step,
/// and the failure reports that arrived in it.
#[utoipa::path(get, path = "/api/v1/dmarc/summary", tag = "dmarc", params(SummaryQuery),
    responses((status = 200, body = DmarcSummary), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a malformed since or until, days with since, until not after since, or a window over 366 days")),
    security(("bearer" = [])))]
pub async fn summary(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<DmarcSummary>> {
    Ok(Json(summary_for(&s, &caller, q).await?))
}

/// A summary's sources as CSV (RFC 4180; cells a spreadsheet would run as
/// formulas — a reverse DNS name or a reporter's name is a stranger's —
/// start with `'`): `ip, reverse_dns, label, service, service_type, why,
/// reporters, messages, dmarc_pass, spf_pass, spf_aligned, dkim_pass,
/// dkim_aligned, disposition_none, disposition_quarantine,
/// disposition_reject`, largest first.
#[utoipa::path(get, path = "/api/v1/dmarc/sources/export", tag = "dmarc", params(SummaryQuery),
    responses((status = 200, body = String, content_type = "text/csv"), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "a malformed since or until, days with since, until not after since, or a window over 366 days")),
    security(("bearer" = [])))]
pub async fn sources_export(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> ApiResult<impl axum::response::IntoResponse> {
    let summary = summary_for(&s, &caller, q).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        views::dmarc_sources_csv(&summary),
    ))
}

async fn summary_for(s: &AppState, caller: &herald_accounts::Caller, q: SummaryQuery) -> ApiResult<DmarcSummary> {
    let dmarc = service(s)?;
    let domain = q.domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return Err(ApiError::field("domain", "required"));
    }
    let window = herald_dmarc::Window::summary(
        q.since.as_deref(),
        q.until.as_deref(),
        q.days,
        OffsetDateTime::now_utc(),
    )
    .map_err(window_error)?;
    visible(s, caller, &domain).await?;
    let summary = dmarc.summary_of(&domain, window).await.map_err(AccountsError::from)?;
    Ok(summary)
}
