//! `/api/v1/checks/blocklists`, `/api/v1/blocklists` and `/api/v1/alerts`:
//! what the deliverability center watches and what it told the account.
//!
//! Anyone with a key may check any address, network or domain live (a
//! bounded number of lookups: a network is sampled); the listing history
//! of a target is shown only to accounts the scheduled check watches it
//! for (and to the operator). Alerts are the acting account's own; another
//! account's alert is 404.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_accounts::AccountsError;
use herald_api_types::monitor::{Alert, BlocklistReport, BlocklistRun, Listing};
use herald_api_types::{ErrorBody, List};
use herald_store::{AlertFilter, ListingFilter};
use herald_types::AlertId;
use serde::Deserialize;

use super::{ApiPath, ApiQuery};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, views};

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "blocklist monitoring is not configured in this process",
    )
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
}

/// The targets the caller's account is concerned by, with why.
async fn watched(s: &AppState, caller: &herald_accounts::Caller) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let targets = s
        .accounts
        .store()
        .monitor_targets(Some(std::slice::from_ref(&caller.account.id)))
        .await
        .map_err(AccountsError::from)?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in targets {
        out.entry(t.target).or_default().push(t.origin);
    }
    Ok(out)
}

/// Check an IPv4 or IPv6 address, a network (sampled: its first and last
/// addresses and one per /24 — /64 for IPv6 — up to 16) or a domain (and
/// its parent names) against every configured blocklist now. Each answer
/// says listed (with the list's meaning of its code, its TXT record and
/// where to ask for removal), clean, or error (no answer in time, a
/// refusal such as Spamhaus' 127.255.255.254 for public resolvers, or an
/// answer outside 127.0.0.0/8). `history` holds the scheduled checks'
/// listings of the target when the caller's account is concerned by it.
#[utoipa::path(get, path = "/api/v1/checks/blocklists/{target}", tag = "checks",
    params(("target" = herald_api_types::patterns::BlocklistTarget, Path, description = "an address, a network (CIDR, '/' as %2F) or a domain")),
    responses((status = 200, body = BlocklistReport), (status = 422, body = ErrorBody, description = "neither an address, a network nor a domain"),
        (status = 429, body = ErrorBody, description = "more than 30 live checks by the account within a minute; `Retry-After` says when to try again"),
        (status = 503, body = ErrorBody, description = "monitoring not configured")),
    security(("bearer" = [])))]
pub async fn check(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(target): ApiPath<String>,
) -> ApiResult<Json<BlocklistReport>> {
    let monitor = s.monitor.as_ref().ok_or_else(unavailable)?;
    let mut report = monitor
        .check_for(&caller.account.id, &target)
        .await
        .map_err(|refusal| match refusal {
            herald_monitor::LiveRefusal::NotATarget => {
                ApiError::field("target", "not an IP address, a network or a domain name")
            }
            herald_monitor::LiveRefusal::TooMany(wait) => ApiError {
                retry_after: Some(wait.as_secs().max(1)),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many live blocklist checks by this account; try again later",
                )
            },
        })?;
    let mine = watched(&s, &caller).await?;
    let visible: Vec<String> = report
        .checked
        .iter()
        .filter(|t| caller.admin || mine.contains_key(*t))
        .cloned()
        .collect();
    if !visible.is_empty() {
        let history = s
            .accounts
            .store()
            .listings(
                &ListingFilter {
                    targets: Some(visible),
                    ..ListingFilter::default()
                },
                500,
            )
            .await
            .map_err(AccountsError::from)?;
        report.history = history
            .iter()
            .map(|l| views::listing(l, mine.get(&l.seen.target).cloned().unwrap_or_default()))
            .collect();
    }
    Ok(Json(report))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListingQuery {
    /// Only listings that have not ended.
    pub active: Option<bool>,
    /// Only this address or domain.
    pub target: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The listing history of every address and domain the scheduled checks
/// watch for the acting account (its sending IPs, the networks its SPF
/// records authorise, its domains), newest first; an admin key sees every
/// listing.
#[utoipa::path(get, path = "/api/v1/blocklists", tag = "checks", params(ListingQuery),
    responses((status = 200, body = List<Listing>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn listings(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<ListingQuery>,
) -> ApiResult<Json<List<Listing>>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    let mine = watched(&s, &caller).await?;
    let mut targets: Option<Vec<String>> = if caller.admin {
        None
    } else {
        Some(mine.keys().cloned().collect())
    };
    if let Some(t) = q.target.as_deref().map(str::trim) {
        let t = t.to_ascii_lowercase();
        targets = match targets {
            Some(list) => Some(list.into_iter().filter(|x| *x == t).collect()),
            None => Some(vec![t]),
        };
    }
    let rows = s
        .accounts
        .store()
        .listings(
            &ListingFilter {
                targets,
                active_only: q.active.unwrap_or(false),
                since: None,
            },
            limit,
        )
        .await
        .map_err(AccountsError::from)?;
    Ok(Json(List {
        data: rows
            .iter()
            .map(|l| views::listing(l, mine.get(&l.seen.target).cloned().unwrap_or_default()))
            .collect(),
    }))
}

/// Run the scheduled blocklist check now (admin keys only) and wait for
/// it: every sending IP, SPF-authorised network and domain against every
/// list; listings recorded, alerts raised and resolved.
#[utoipa::path(post, path = "/api/v1/blocklists/check", tag = "checks",
    responses((status = 200, body = BlocklistRun), (status = 404, body = ErrorBody, description = "not an admin key"),
        (status = 503, body = ErrorBody, description = "monitoring not configured")),
    security(("bearer" = [])))]
pub async fn run(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<BlocklistRun>> {
    if !caller.admin {
        return Err(not_found("route"));
    }
    let monitor = s.monitor.as_ref().ok_or_else(unavailable)?;
    let r = monitor.run_once().await.map_err(AccountsError::from)?;
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    Ok(Json(BlocklistRun {
        targets: n(r.targets),
        queries: n(r.queries),
        listed: n(r.listed),
        errors: n(r.errors),
        started: n(r.started),
        ended: n(r.ended),
        seconds: r.seconds,
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `open` (the default), `resolved` or `all`.
    #[param(pattern = "^(open|resolved|all)$")]
    pub state: Option<String>,
    /// Only alerts of this kind (`blocklist`, `bounce_rate`, ...).
    #[param(pattern = "^[a-z_]{1,40}$")]
    pub kind: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The acting account's alerts, newest first: open ones by default.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "events", params(AlertQuery),
    responses((status = 200, body = List<Alert>), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn alerts(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<AlertQuery>,
) -> ApiResult<Json<List<Alert>>> {
    let open = match q.state.as_deref().unwrap_or("open") {
        "open" => Some(true),
        "resolved" => Some(false),
        "all" => None,
        _ => return Err(ApiError::field("state", "open, resolved or all")),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "must be 1 to 1000"));
    }
    if let Some(k) = &q.kind
        && (k.is_empty() || k.len() > 40 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(ApiError::field("kind", "an alert kind: a-z and '_'"));
    }
    let rows = s
        .accounts
        .store()
        .list_alerts(
            &AlertFilter {
                accounts: Some(vec![caller.account.id.clone()]),
                open,
                kind: q.kind.clone(),
                since: None,
            },
            limit,
        )
        .await
        .map_err(AccountsError::from)?;
    let name = caller.account.name.to_string();
    Ok(Json(List {
        data: rows.iter().map(|a| views::alert(a, &name)).collect(),
    }))
}

/// Acknowledge one of the acting account's alerts: someone is on it. It
/// stays open until its condition ends.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "events",
    params(("id" = herald_api_types::patterns::AlertId, Path, description = "alert id (alr_…)")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn acknowledge(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Alert>> {
    let id = AlertId::parse(&id).map_err(|_| not_found("alert"))?;
    let alert = s
        .accounts
        .store()
        .acknowledge_alert(
            std::slice::from_ref(&caller.account.id),
            &id,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .map_err(AccountsError::from)?
        .ok_or_else(|| not_found("alert"))?;
    Ok(Json(views::alert(&alert, &caller.account.name.to_string())))
}
