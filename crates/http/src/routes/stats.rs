//! `/api/v1/stats`: counts per hour or day from the hourly rollups.

use axum::Json;
use axum::extract::State;
use herald_api_types::{ErrorBody, Stats};
use herald_store::{StatsGroup, StatsPeriod, StatsQuery};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ApiQuery;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `hour` or `day` (default).
    by: Option<String>,
    /// `account`, `stream`, `sender_domain`, `ip` or `receiving_domain`.
    group: Option<String>,
    /// RFC 3339; default 30 days ago (7 days with `by=hour`).
    since: Option<String>,
    /// RFC 3339; default now.
    until: Option<String>,
}

/// Parses `by` and `group` as the API and CLI name them.
pub fn period_and_group(by: Option<&str>, group: Option<&str>) -> Result<(StatsPeriod, Option<StatsGroup>), String> {
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
    Ok((period, group))
}

fn time_param(name: &str, value: Option<&String>, default: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    match value {
        None => Ok(default),
        Some(v) => OffsetDateTime::parse(v, &Rfc3339)
            .map_err(|_| ApiError::invalid(format!("{name}: {v:?} is not an RFC 3339 time"))),
    }
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
    let (period, group) = period_and_group(q.by.as_deref(), q.group.as_deref()).map_err(ApiError::invalid)?;
    let now = OffsetDateTime::now_utc();
    let back = match period {
        StatsPeriod::Hour => time::Duration::days(7),
        StatsPeriod::Day => time::Duration::days(30),
    };
    let query = StatsQuery {
        accounts: Vec::new(),
        since: time_param("since", q.since.as_ref(), now - back)?,
        until: time_param("until", q.until.as_ref(), now)?,
        period,
        group,
    };
    Ok(Json(views::stats(&s.accounts, &caller, query).await?))
}
