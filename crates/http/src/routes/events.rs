//! `/api/v1/events`: the acting account's events, oldest first, by cursor.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use herald_api_types::{ErrorBody, EventPage};
use herald_store::EventFilter;
use herald_types::{EventKind, MessageId};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ApiQuery;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

/// Events per page when `limit` is not given, and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Comma-separated types, e.g. `bounced,deferred`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<herald_api_types::patterns::EventKinds>)]
    kind: Option<String>,
    /// Only events of this recipient.
    recipient: Option<String>,
    /// Only events of this message.
    #[param(value_type = Option<herald_api_types::patterns::MessageId>)]
    message_id: Option<String>,
    /// RFC 3339 time: events at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339 time: events before it.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only events of messages with this tag (empty: any).
    tag: Option<String>,
    /// Only events of this stream (empty: any).
    #[param(max_length = 64)]
    stream: Option<String>,
    /// Only events of messages with this metadata, as `key=value`.
    #[param(pattern = "^[^=]+=")]
    metadata: Option<String>,
    /// The `next_cursor` of the previous page (empty: the start).
    #[param(pattern = "^[0-9]{0,18}$")]
    cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// [`EventQuery`] as the export documents it: the same filters, from a
/// cursor, without a page size.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportQuery {
    /// Comma-separated types, e.g. `bounced,deferred`.
    #[param(rename = "type", value_type = Option<herald_api_types::patterns::EventKinds>)]
    kind: Option<String>,
    /// Only events of this recipient.
    recipient: Option<String>,
    /// Only events of this message.
    #[param(value_type = Option<herald_api_types::patterns::MessageId>)]
    message_id: Option<String>,
    /// RFC 3339 time: events at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339 time: events before it.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only events of messages with this tag (empty: any).
    tag: Option<String>,
    /// Only events of this stream (empty: any).
    #[param(max_length = 64)]
    stream: Option<String>,
    /// Only events of messages with this metadata, as `key=value`.
    #[param(pattern = "^[^=]+=")]
    metadata: Option<String>,
    /// Events after this position (a list page's `next_cursor`; empty: the start).
    #[param(pattern = "^[0-9]{0,18}$")]
    cursor: Option<String>,
}

/// An RFC 3339 query parameter.
pub(super) fn time_param(name: &str, value: Option<&String>) -> ApiResult<Option<OffsetDateTime>> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                ApiError::invalid(format!(
                    "{name}: {v:?} is not an RFC 3339 time such as 2026-11-23T08:00:00Z"
                ))
            })
        })
        .transpose()
}

fn filter_of(q: &EventQuery) -> ApiResult<EventFilter> {
    let kinds = match &q.kind {
        Some(list) => list
            .split(',')
            .filter(|k| !k.is_empty())
            .map(|k| EventKind::parse(k.trim()).map_err(|e| ApiError::invalid(format!("type: {e}"))))
            .collect::<ApiResult<Vec<_>>>()?,
        None => Vec::new(),
    };
    let message_id = q
        .message_id
        .as_deref()
        .map(|m| MessageId::parse(m).map_err(|e| ApiError::invalid(format!("message_id: {e}"))))
        .transpose()?;
    if q.stream.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::field("stream", "at most 64 characters"));
    }
    let metadata = match q.metadata.as_deref() {
        Some(m) => Some(
            m.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ApiError::invalid(format!("metadata: {m:?} is not key=value")))?,
        ),
        None => None,
    };
    Ok(EventFilter {
        account: None,
        kinds,
        recipient: q.recipient.clone(),
        message_id,
        since: time_param("since", q.since.as_ref())?,
        until: time_param("until", q.until.as_ref())?,
        bounce_class: None,
        after: None,
        tag: q.tag.clone().filter(|t| !t.is_empty()),
        metadata,
        stream: q.stream.clone().filter(|t| !t.is_empty()),
    })
}

/// The position a cursor names (a page's `next_cursor`).
fn cursor_of(q: &EventQuery) -> ApiResult<i64> {
    match q.cursor.as_deref() {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| ApiError::invalid(format!("cursor: {c:?} is not a cursor from a previous page"))),
    }
}

/// List the acting account's events, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Json<EventPage>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: {limit} is not between 1 and {MAX_LIMIT}"
        )));
    }
    let mut filter = filter_of(&q)?;
    filter.account = Some(caller.account.id.clone());
    let after = cursor_of(&q)?;
    let events = s
        .accounts
        .store()
        .page_events(&filter, after, limit)
        .await
        .map_err(|e| ApiError::from(herald_accounts::AccountsError::from(e)))?;
    // Events are paged in the order they were stored, so a cursor never
    // skips one stored after the page was read.
    let next_cursor = Some(events.last().map_or(after, |(p, _)| *p).to_string());
    let name = caller.account.name.to_string();
    Ok(Json(EventPage {
        data: events.iter().map(|(_, e)| views::event(e, &name)).collect(),
        next_cursor,
    }))
}

/// Rows in one CSV export at most.
const MAX_EXPORT: usize = 1_000_000;

/// The acting account's events as CSV, oldest first, with the same filters
/// as the list (from `cursor` when given; at most 1,000,000 rows).
#[utoipa::path(get, path = "/api/v1/events/export", tag = "events", params(ExportQuery),
    responses((status = 200, body = String, content_type = "text/csv"), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn export(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<impl IntoResponse> {
    let mut filter = filter_of(&q)?;
    filter.account = Some(caller.account.id.clone());
    let name = caller.account.name.to_string();
    let mut out = String::from(views::EVENT_CSV_HEADER);
    let mut csv = herald_types::csv_file::Writer::new();
    let (mut after, mut rows) = (cursor_of(&q)?, 0);
    while rows < MAX_EXPORT {
        let page = s
            .accounts
            .store()
            .page_events(&filter, after, MAX_LIMIT)
            .await
            .map_err(|e| ApiError::from(herald_accounts::AccountsError::from(e)))?;
        for (_, e) in &page {
            views::event_csv(&mut csv, &views::event(e, &name));
        }
        out.push_str(&csv.take());
        rows += page.len();
        match page.last() {
            Some((p, _)) if page.len() == MAX_LIMIT as usize => after = *p,
            _ => break,
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out))
}
