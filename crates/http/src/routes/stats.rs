//! `/api/v1/stats`: counts per hour or day from the hourly rollups.

use axum::Json;
use axum::extract::State;
use herald_api_types::{ErrorBody, Stats};
use herald_store::{StatsGroup, StatsPeriod, StatsQuery};
use serde::Deserialize;
use time::OffsetDateTime;

use super::ApiQuery;
use super::events::time_param;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `hour` or `day` (default).
    #[param(value_type = Option<StatsBy>)]
    by: Option<String>,
    /// `account`, `stream`, `sender_domain`, `ip` or `receiving_domain`
    /// (`sender-domain` and `receiving-domain` too; empty: not grouped).
    #[param(value_type = Option<StatsGroupName>)]
    group: Option<String>,
    /// RFC 3339; default 30 days ago (7 days with `by=hour`).
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    until: Option<String>,
}

/// The periods stats are counted by.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum StatsBy {
    Hour,
    Day,
}

/// What stats may be grouped by (empty: not grouped).
#[derive(Debug)]
pub struct StatsGroupName;

impl utoipa::PartialSchema for StatsGroupName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some([
                "",
                "account",
                "stream",
                "sender_domain",
                "sender-domain",
                "ip",
                "receiving_domain",
                "receiving-domain",
            ]))
            .into()
    }
}

impl utoipa::ToSchema for StatsGroupName {}

/// A stats question as the API and CLI ask it: `by` and `group` by their
/// names; `since` defaults to 30 days ago (7 by hour), `until` to now. The
/// accounts are the caller's, filled in by [`views::stats`].
pub fn stats_query(
    by: Option<&str>,
    group: Option<&str>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> Result<StatsQuery, String> {
    let period = match by.unwrap_or("day") {
        "hour" => StatsPeriod::Hour,
        "day" => StatsPeriod::Day,
        other => return Err(format!("by: {other:?} is not hour or day")),
    };
    let group = match group {
        None | Some("") => None,
        Some("account") => Some(StatsGroup::Account),
        Some("stream") => Some(StatsGroup::Stream),
        Some("sender_domain" | "sender-domain") => Some(StatsGroup::SenderDomain),
        Some("ip") => Some(StatsGroup::SourceIp),
        Some("receiving_domain" | "receiving-domain") => Some(StatsGroup::ReceivingDomain),
        Some(other) => {
            return Err(format!(
                "group: {other:?} is not account, stream, sender_domain, ip or receiving_domain"
            ));
        }
    };
    let now = OffsetDateTime::now_utc();
    let back = match period {
        StatsPeriod::Hour => time::Duration::days(7),
        StatsPeriod::Day => time::Duration::days(30),
    };
    Ok(StatsQuery {
        accounts: Vec::new(),
        since: since.unwrap_or(now - back),
        until: until.unwrap_or(now),
        period,
        group,
    })
}

/// Counts and rates of the acting account (a master's with its subs'),
/// per hour or day, optionally by account, stream, sending domain, sending
/// IP or receiving domain.
#[utoipa::path(get, path = "/api/v1/stats", tag = "events", params(StatsParams),
    responses((status = 200, body = Stats), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stats(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<StatsParams>,
) -> ApiResult<Json<Stats>> {
    let query = stats_query(
        q.by.as_deref(),
        q.group.as_deref(),
        time_param("since", q.since.as_ref())?,
        time_param("until", q.until.as_ref())?,
    )
    .map_err(ApiError::invalid)?;
    Ok(Json(views::stats(&s.accounts, &caller, query).await?))
}
