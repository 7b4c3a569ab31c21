//! Deliverability: per domain, DMARC volume and compliance over time, the
//! sources with their labels, the policy recommendation and failure
//! reports; blocklist status and history; alerts.

use askama::Template;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::chart::{self, Series};
use super::{Layout, OrPage, PageResult, Signed, authed, count, done, html, percent_of, when, when_opt};
use crate::routes::{ApiPath, ApiQuery};
use crate::{AppState, routes};

#[derive(Debug, Deserialize)]
pub(crate) struct DeliverabilityQuery {
    domain: Option<String>,
    days: Option<u32>,
    done: Option<String>,
}

struct SourceRow {
    ip: String,
    name: String,
    label: String,
    messages: String,
    dmarc_pass: String,
    why: String,
}

struct ReportRow {
    org: String,
    received: String,
    period: String,
    messages: String,
}

struct ListingRow {
    target: String,
    list: String,
    started: String,
    ended: String,
    active: bool,
    reason: String,
    delist_url: String,
}

struct AlertRow {
    id: String,
    kind: String,
    message: String,
    opened: String,
    resolved: String,
    acknowledged: bool,
    open: bool,
}

struct Dmarc {
    reports: String,
    messages: String,
    compliance: String,
    policy: String,
    recommendation: String,
    reason: String,
    volume_chart: String,
    compliance_chart: String,
    sources: Vec<SourceRow>,
    failure_reports: Vec<ReportRow>,
    failure_count: u64,
}

#[derive(Template)]
#[template(path = "deliverability.html")]
struct DeliverabilityPage {
    page: Layout,
    domains: Vec<(String, bool)>,
    domain: String,
    days: u32,
    dmarc: Option<Dmarc>,
    dmarc_error: Option<String>,
    listings: Vec<ListingRow>,
    alerts: Vec<AlertRow>,
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        #[allow(clippy::cast_precision_loss)]
        let r = n as f64 / of as f64;
        r
    }
}

pub(crate) async fn page(
    State(s): State<AppState>,
    signed: Signed,
    Query(q): Query<DeliverabilityQuery>,
) -> PageResult {
    let domains: Vec<String> = match &s.domains {
        Some(_) => routes::domains::list(State(s.clone()), authed(&signed))
            .await
            .or_page()?
            .0
            .data
            .into_iter()
            .map(|d| d.name)
            .collect(),
        None => Vec::new(),
    };
    let domain = q
        .domain
        .clone()
        .filter(|d| !d.trim().is_empty())
        .or_else(|| domains.first().cloned())
        .unwrap_or_default();
    let days = q.days.unwrap_or(30).clamp(1, herald_dmarc::MAX_DAYS);
    let (dmarc, dmarc_error) = if domain.is_empty() || s.dmarc.is_none() {
        (None, None)
    } else {
        match routes::dmarc::summary(
            State(s.clone()),
            authed(&signed),
            ApiQuery(routes::dmarc::SummaryQuery {
                domain: domain.clone(),
                days: Some(days),
                since: None,
                until: None,
            }),
        )
        .await
        {
            Ok(axum::Json(sum)) => {
                let failures = routes::dmarc::list(
                    State(s.clone()),
                    authed(&signed),
                    ApiQuery(routes::dmarc::ReportsQuery {
                        domain: Some(domain.clone()),
                        kind: Some("failure".to_owned()),
                        cursor: None,
                        limit: Some(50),
                        // The failure reports that arrived in the window
                        // charted beside them, not the oldest ever kept.
                        since: sum.since.format(&time::format_description::well_known::Rfc3339).ok(),
                        until: sum.until.format(&time::format_description::well_known::Rfc3339).ok(),
                    }),
                )
                .await
                .map(|j| j.0.data)
                .unwrap_or_default();
                let labels: Vec<String> = sum.by_day.iter().map(|d| d.day.clone()).collect();
                #[allow(clippy::cast_precision_loss)]
                let volume_chart = chart::lines(
                    &format!("DMARC volume of {domain}"),
                    &labels,
                    &[
                        Series {
                            name: "Messages".to_owned(),
                            class: "s1",
                            values: sum.by_day.iter().map(|d| d.tally.messages as f64).collect(),
                        },
                        Series {
                            name: "Failing DMARC".to_owned(),
                            class: "s4",
                            values: sum
                                .by_day
                                .iter()
                                .map(|d| d.tally.messages.saturating_sub(d.tally.dmarc_pass) as f64)
                                .collect(),
                        },
                    ],
                    false,
                );
                let compliance_chart = chart::lines(
                    &format!("DMARC compliance of {domain}"),
                    &labels,
                    &[Series {
                        name: "Passing DMARC".to_owned(),
                        class: "s2",
                        values: sum
                            .by_day
                            .iter()
                            .map(|d| share(d.tally.dmarc_pass, d.tally.messages))
                            .collect(),
                    }],
                    true,
                );
                let policy = sum.policy.as_ref().map_or_else(
                    || "no DMARC record seen".to_owned(),
                    |p| format!("p={} pct={} adkim={} aspf={}", p.p, p.pct, p.adkim, p.aspf),
                );
                let dmarc = Dmarc {
                    reports: count(sum.reports),
                    messages: count(sum.totals.messages),
                    compliance: percent_of(share(sum.totals.dmarc_pass, sum.totals.messages)),
                    policy,
                    recommendation: format!(
                        "{}: p={} pct={}",
                        sum.recommendation.action, sum.recommendation.p, sum.recommendation.pct
                    ),
                    reason: sum.recommendation.reason.clone(),
                    volume_chart,
                    compliance_chart,
                    sources: sum
                        .sources
                        .iter()
                        .take(100)
                        .map(|src| SourceRow {
                            ip: src.ip.clone(),
                            name: src
                                .service
                                .as_ref()
                                .map(|k| k.name.clone())
                                .or_else(|| src.reverse_dns.clone())
                                .unwrap_or_default(),
                            label: src.label.as_str().to_owned(),
                            messages: count(src.tally.messages),
                            dmarc_pass: percent_of(share(src.tally.dmarc_pass, src.tally.messages)),
                            why: src.why.clone(),
                        })
                        .collect(),
                    failure_reports: failures
                        .iter()
                        .map(|r| ReportRow {
                            org: r.org_name.clone(),
                            received: when(r.received_at),
                            period: format!("{} – {}", when(r.begin), when(r.end)),
                            messages: count(r.messages),
                        })
                        .collect(),
                    failure_count: sum.failure_reports,
                };
                (Some(dmarc), None)
            }
            Err(e) => (None, Some(e.message)),
        }
    };
    let listings = routes::monitor::listings(
        State(s.clone()),
        authed(&signed),
        ApiQuery(routes::monitor::ListingQuery {
            active: None,
            target: None,
            limit: Some(200),
        }),
    )
    .await
    .map(|j| j.0.data)
    .unwrap_or_default();
    let alerts = super::alerts(&s, &signed, "all", 50).await?;
    let page = DeliverabilityPage {
        page: Layout::new(&s, &signed, "Deliverability", "deliverability", q.done.as_deref()).await,
        domains: domains.iter().map(|d| (d.clone(), *d == domain)).collect(),
        domain,
        days,
        dmarc,
        dmarc_error,
        listings: listings
            .iter()
            .map(|l| ListingRow {
                target: l.target.clone(),
                list: l.name.clone(),
                started: when(l.started_at),
                ended: when_opt(l.ended_at),
                active: l.ended_at.is_none(),
                reason: l.reason.clone(),
                delist_url: l
                    .delist_url
                    .clone()
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .unwrap_or_default(),
            })
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| AlertRow {
                id: a.id.clone(),
                kind: a.kind.replace('_', " "),
                message: a.message.clone(),
                opened: when(a.opened_at),
                resolved: when_opt(a.resolved_at),
                acknowledged: a.acknowledged_at.is_some(),
                open: a.resolved_at.is_none(),
            })
            .collect(),
    };
    Ok(html(page.render()))
}

pub(crate) async fn acknowledge(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let _ = routes::monitor::acknowledge(State(s), authed(&signed), ApiPath(id))
        .await
        .or_page()?;
    Ok(done("/deliverability", "acknowledged"))
}
