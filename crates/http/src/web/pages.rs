//! Overview, messages and delivery.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect};
use herald_api_types as api;
use herald_store::{StatsPeriod, StatsQuery};
use serde::Deserialize;
use time::OffsetDateTime;

use super::chart::{self, Series};
use super::{Layout, OrPage, PageResult, Signed, api_query, authed, count, done, html, percent_of, when, when_opt};
use crate::routes::{ApiPath, ApiQuery};
use crate::{AppState, routes, views};

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    range: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    fn parse(s: Option<&str>) -> Self {
        match s {
            Some("7d") => Self::Week,
            Some("30d") => Self::Month,
            _ => Self::Day,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// The first period, the period length, and how many there are.
    fn periods(self, now: OffsetDateTime) -> (OffsetDateTime, StatsPeriod, i64) {
        let hour = now
            .replace_minute(0)
            .and_then(|t| t.replace_second(0))
            .and_then(|t| t.replace_nanosecond(0));
        let hour = hour.unwrap_or(now);
        match self {
            Self::Day => (hour - time::Duration::hours(23), StatsPeriod::Hour, 24),
            Self::Week => (hour - time::Duration::hours(24 * 7 - 1), StatsPeriod::Hour, 24 * 7),
            Self::Month => {
                let day = hour.replace_hour(0).unwrap_or(hour);
                (day - time::Duration::days(29), StatsPeriod::Day, 30)
            }
        }
    }
}

/// Counts per period over a range, gaps filled with zeros.
struct Timeline {
    labels: Vec<String>,
    rows: Vec<BTreeMap<String, i64>>,
    totals: herald_store::Counts,
}

async fn timeline(s: &AppState, signed: &Signed, range: Range) -> Result<Timeline, axum::response::Response> {
    let now = OffsetDateTime::now_utc();
    let (since, period, n) = range.periods(now);
    let stats = views::stats(
        &s.accounts,
        &signed.view.caller,
        StatsQuery {
            accounts: Vec::new(),
            since,
            until: now + time::Duration::hours(1),
            period,
            group: None,
        },
    )
    .await
    .or_page()?;
    let step = match period {
        StatsPeriod::Hour => time::Duration::hours(1),
        StatsPeriod::Day => time::Duration::days(1),
    };
    let mut by_start: HashMap<i64, BTreeMap<String, i64>> = HashMap::new();
    for row in stats.data {
        let slot = by_start.entry(row.period.unix_timestamp()).or_default();
        for (k, v) in row.counts {
            *slot.entry(k).or_default() += v;
        }
    }
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    let mut totals = herald_store::Counts::default();
    for i in 0..n {
        let start = since + step * i32::try_from(i).unwrap_or(0);
        labels.push(match period {
            StatsPeriod::Hour if range == Range::Day => format!("{:02}:00", start.hour()),
            StatsPeriod::Hour => format!("{} {:02}h", start.date(), start.hour()),
            StatsPeriod::Day => start.date().to_string(),
        });
        let row = by_start.remove(&start.unix_timestamp()).unwrap_or_default();
        add_named(&mut totals, &row);
        rows.push(row);
    }
    Ok(Timeline { labels, rows, totals })
}

/// Adds an API stats row's counts (by counter name) to `into`.
fn add_named(into: &mut herald_store::Counts, counts: &BTreeMap<String, i64>) {
    for (k, v) in counts {
        if let Some(i) = herald_store::COUNTERS.iter().position(|c| c == k) {
            into.0[i] += v;
        }
    }
}

fn series(t: &Timeline, name: &str, class: &'static str, f: impl Fn(&BTreeMap<String, i64>) -> i64) -> Series {
    Series {
        name: name.to_owned(),
        class,
        #[allow(clippy::cast_precision_loss)]
        values: t.rows.iter().map(|r| f(r) as f64).collect(),
    }
}

fn get(r: &BTreeMap<String, i64>, k: &str) -> i64 {
    r.get(k).copied().unwrap_or(0)
}

struct Card {
    label: &'static str,
    value: String,
}

struct RateRow {
    label: &'static str,
    value: String,
    threshold: String,
    over: bool,
}

struct ReasonRow {
    factor: String,
    message: String,
    impact: String,
}

struct AlertRow {
    id: String,
    kind: String,
    message: String,
    opened: String,
}

struct RangeLink {
    key: &'static str,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    page: Layout,
    ranges: Vec<RangeLink>,
    cards: Vec<Card>,
    delivery_chart: String,
    engagement_chart: String,
    rates: Vec<RateRow>,
    score: u32,
    reasons: Vec<ReasonRow>,
    alerts: Vec<AlertRow>,
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) async fn overview(State(s): State<AppState>, signed: Signed, Query(q): Query<PageQuery>) -> PageResult {
    let range = Range::parse(q.range.as_deref());
    let t = timeline(&s, &signed, range).await?;
    let c = &t.totals;
    let cards = [
        ("Sent", c.get("accepted")),
        ("Delivered", c.get("delivered")),
        ("Deferred", c.get("deferred")),
        ("Bounced", c.bounced()),
        ("Complaints", c.get("complained")),
        ("Opens", c.get("opened_unique")),
        ("Clicks", c.get("clicked_unique")),
    ]
    .into_iter()
    .map(|(label, n)| Card {
        label,
        value: count(u(n)),
    })
    .collect::<Vec<_>>();
    let delivery_chart = chart::lines(
        "Delivery",
        &t.labels,
        &[
            series(&t, "Delivered", "s1", |r| get(r, "delivered")),
            series(&t, "Deferred", "s3", |r| get(r, "deferred")),
            series(&t, "Bounced", "s4", |r| get(r, "bounced_hard") + get(r, "bounced_soft")),
        ],
        false,
    );
    let engagement_chart = chart::lines(
        "Engagement",
        &t.labels,
        &[
            series(&t, "Unique opens", "s2", |r| get(r, "opened_unique")),
            series(&t, "Unique clicks", "s5", |r| get(r, "clicked_unique")),
            series(&t, "Complaints", "s4", |r| get(r, "complained")),
        ],
        false,
    );
    let settings = &signed.view.caller.account.settings;
    let bounce_threshold = f64::from(settings.bounce_alert_bp) / 10_000.0;
    let complaint_threshold = f64::from(settings.complaint_alert_bp) / 10_000.0;
    let bounce = c.rate("bounce_rate");
    let complaint = c.rate("complaint_rate");
    let rates = vec![
        RateRow {
            label: "Bounce rate",
            value: bounce.map_or_else(|| "—".to_owned(), percent_of),
            threshold: percent_of(bounce_threshold),
            over: bounce.is_some_and(|r| r > bounce_threshold),
        },
        RateRow {
            label: "Complaint rate",
            value: complaint.map_or_else(|| "—".to_owned(), percent_of),
            threshold: percent_of(complaint_threshold),
            over: complaint.is_some_and(|r| r > complaint_threshold),
        },
    ];
    let reputation = routes::reputation::reputation(State(s.clone()), authed(&signed))
        .await
        .or_page()?
        .0;
    let alerts = super::alerts(&s, &signed, "open", 20).await?;
    let page = OverviewPage {
        page: Layout::new(&s, &signed, "Overview", "overview", q.done.as_deref()).await,
        ranges: [("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days")]
            .into_iter()
            .map(|(key, label)| RangeLink {
                key,
                label,
                current: key == range.key(),
            })
            .collect(),
        cards,
        delivery_chart,
        engagement_chart,
        rates,
        score: reputation.reputation.score,
        reasons: reputation
            .reputation
            .reasons
            .iter()
            .map(|r| ReasonRow {
                factor: r.factor.replace('_', " "),
                message: r.message.clone(),
                impact: format!("−{}", r.impact),
            })
            .collect(),
        alerts: alerts
            .iter()
            .map(|a| AlertRow {
                id: a.id.clone(),
                kind: a.kind.replace('_', " "),
                message: a.message.clone(),
                opened: when(a.opened_at),
            })
            .collect(),
    };
    Ok(html(page.render()))
}

struct EventRow {
    at: String,
    kind: String,
    recipient: String,
    message_id: String,
    answer: String,
    detail: String,
}

fn event_row(e: &api::Event) -> EventRow {
    EventRow {
        at: when(e.at),
        kind: e.kind.clone(),
        recipient: e.recipient.clone().unwrap_or_default(),
        message_id: e.message_id.clone(),
        answer: e.smtp.as_ref().map_or_else(String::new, |a| {
            format!("{} {} {}", a.code, a.enhanced.clone().unwrap_or_default(), a.text)
                .trim()
                .to_owned()
        }),
        detail: [
            e.bounce.as_ref().map(|b| format!("{} bounce: {}", b.class, b.reason)),
            e.reason.clone(),
            e.mx.as_ref().map(|m| format!("MX {m}")),
            e.source_ip.as_ref().map(|ip| format!("from {ip}")),
            e.url.clone(),
            e.spam.as_ref().map(|sp| format!("spam score {:.1}", sp.score)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · "),
    }
}

struct HeldRow {
    id: String,
    sender: String,
    recipients: String,
    received: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    page: Layout,
    recipient: String,
    tag: String,
    stream: String,
    kind: String,
    since: String,
    until: String,
    kinds: Vec<&'static str>,
    events: Vec<EventRow>,
    next: Option<String>,
    held: Vec<HeldRow>,
    operator: bool,
}

/// `YYYY-MM-DDTHH:MM` (a browser's datetime-local) as RFC 3339 UTC.
fn rfc3339(v: &str) -> String {
    if v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') {
        format!("{v}:00Z")
    } else {
        v.to_owned()
    }
}

pub(crate) async fn messages(State(s): State<AppState>, signed: Signed, RawQuery(raw): RawQuery) -> PageResult {
    let pairs = super::form_urlencoded_pairs(&raw.unwrap_or_default());
    let field = |name: &str| super::field(&pairs, name);
    let message_id = field("message_id");
    if !message_id.is_empty() {
        return Ok(Redirect::to(&format!("/messages/{}", super::percent(&message_id))).into_response());
    }
    // The API's own filters, read by the API's own handler.
    let mut api_pairs = Vec::new();
    for name in ["recipient", "tag", "stream", "type", "since", "until", "cursor"] {
        let v = field(name);
        if !v.is_empty() {
            let v = if name == "since" || name == "until" {
                rfc3339(&v)
            } else {
                v
            };
            api_pairs.push((name, v));
        }
    }
    api_pairs.push(("limit", "50".to_owned()));
    let api_qs = super::encode_query(api_pairs.iter().map(|(k, v)| (*k, v.as_str())));
    let page_events = routes::events::list(State(s.clone()), authed(&signed), api_query(&api_qs)?)
        .await
        .or_page()?
        .0;
    let full = page_events.data.len() == 50;
    let next = match (&page_events.next_cursor, full) {
        (Some(cursor), true) => {
            let kept = pairs
                .iter()
                .filter(|(k, _)| k != "cursor" && k != "done")
                .map(|(k, v)| (k.as_str(), v.as_str()));
            Some(format!(
                "/messages?{}",
                super::encode_query(kept.chain([("cursor", cursor.as_str())]))
            ))
        }
        _ => None,
    };
    let held = match &s.queue {
        Some(_) => routes::queue::list(
            State(s.clone()),
            super::authed_here(&signed),
            ApiQuery(routes::queue::QueueQuery {
                destination: None,
                status: Some("held".to_owned()),
                limit: Some(100),
            }),
        )
        .await
        .map(|j| j.0.data)
        .unwrap_or_default(),
        None => Vec::new(),
    };
    let held = held
        .iter()
        .filter(|m| m.recipients.iter().any(|r| r.status == "held"))
        .take(100)
        .map(|m| HeldRow {
            id: m.id.clone(),
            sender: m.sender.clone(),
            recipients: m
                .recipients
                .iter()
                .filter(|r| r.status == "held")
                .map(|r| r.address.clone())
                .collect::<Vec<_>>()
                .join(", "),
            received: when(m.received_at),
        })
        .collect();
    let page = MessagesPage {
        page: Layout::new(
            &s,
            &signed,
            "Messages and events",
            "messages",
            Some(field("done").as_str()),
        )
        .await,
        recipient: field("recipient"),
        tag: field("tag"),
        stream: field("stream"),
        kind: field("type"),
        since: field("since"),
        until: field("until"),
        kinds: herald_types::EventKind::ALL.iter().map(|k| k.as_str()).collect(),
        events: page_events.data.iter().map(event_row).collect(),
        next,
        held,
        operator: signed.view.user.operator,
    };
    Ok(html(page.render()))
}

struct RecipientView {
    email: String,
    status: String,
    events: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    page: Layout,
    id: String,
    stream: String,
    sender: String,
    tags: String,
    metadata: Vec<(String, String)>,
    recipients: Vec<RecipientView>,
    held: bool,
    operator: bool,
}

pub(crate) async fn message(
    State(s): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let m = routes::messages::show(State(s.clone()), authed(&signed), ApiPath(id.clone()))
        .await
        .or_page()?
        .0;
    let held = match &s.queue {
        Some(_) => routes::queue::show(State(s.clone()), authed(&signed), ApiPath(id))
            .await
            .is_ok_and(|j| j.0.recipients.iter().any(|r| r.status == "held")),
        None => false,
    };
    let page = MessagePage {
        page: Layout::new(&s, &signed, format!("Message {}", m.id), "messages", q.done.as_deref()).await,
        id: m.id.clone(),
        stream: m.stream.clone(),
        sender: m.sender.clone().unwrap_or_default(),
        tags: m.tags.join(", "),
        metadata: m.metadata.clone().into_iter().collect(),
        recipients: m
            .recipients
            .iter()
            .map(|r| RecipientView {
                email: r.email.clone(),
                status: r.status.clone(),
                events: r.events.iter().map(event_row).collect(),
            })
            .collect(),
        held,
        operator: signed.view.user.operator,
    };
    Ok(html(page.render()))
}

pub(crate) async fn release(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let _ = routes::queue::release(State(s), authed(&signed), ApiPath(id.clone()))
        .await
        .or_page()?;
    Ok(done(&format!("/messages/{}", super::percent(&id)), "released"))
}

pub(crate) async fn drop_held(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let _ = routes::queue::drop_held(State(s), authed(&signed), ApiPath(id.clone()))
        .await
        .or_page()?;
    Ok(done(&format!("/messages/{}", super::percent(&id)), "dropped"))
}

/// Queued messages the delivery page sums up (the rest are not counted).
const QUEUE_SUMMARY_LIMIT: u32 = 10_000;

struct ProviderRow {
    provider: String,
    domains: usize,
    sent: String,
    delivered: String,
    deferred: String,
    bounced: String,
    delivery_rate: String,
    bounce_rate: String,
}

struct DestinationRow {
    key: String,
    state: String,
    rule: String,
    until: String,
    queued: String,
    connections: String,
    rate: String,
}

struct WarmupRow {
    key: String,
    pool: String,
    plan: String,
    day: String,
    provider: String,
    today: String,
    hour: String,
}

struct QueueRow {
    provider: String,
    pending: usize,
    held: usize,
    next: String,
}

#[derive(Template)]
#[template(path = "delivery.html")]
struct DeliveryPage {
    page: Layout,
    providers: Vec<ProviderRow>,
    chart: String,
    queue: Vec<QueueRow>,
    /// The queue summary counts only the first messages found.
    queue_capped: bool,
    operator: bool,
    destinations: Vec<DestinationRow>,
    warmup: Vec<WarmupRow>,
}

/// A receiving domain's provider: where Herald's delivery placed it, or
/// the domain itself.
fn provider_of(s: &AppState, domain: &str) -> String {
    if domain.is_empty() {
        return "unknown".to_owned();
    }
    s.queue
        .as_ref()
        .and_then(|q| q.provider_of(domain))
        .unwrap_or_else(|| domain.to_owned())
}

pub(crate) async fn delivery(State(s): State<AppState>, signed: Signed, Query(q): Query<PageQuery>) -> PageResult {
    let now = OffsetDateTime::now_utc();
    let since = (now - time::Duration::days(6)).replace_time(time::Time::MIDNIGHT);
    let stats = views::stats(
        &s.accounts,
        &signed.view.caller,
        StatsQuery {
            accounts: Vec::new(),
            since,
            until: now + time::Duration::hours(1),
            period: StatsPeriod::Day,
            group: Some(herald_store::StatsGroup::ReceivingDomain),
        },
    )
    .await
    .or_page()?;
    // Per provider: totals, its domains, and its daily deliveries.
    let mut totals: BTreeMap<String, (herald_store::Counts, std::collections::BTreeSet<String>)> = BTreeMap::new();
    let mut daily: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
    for row in &stats.data {
        let domain = row.group.clone().unwrap_or_default();
        let provider = provider_of(&s, &domain);
        let entry = totals.entry(provider.clone()).or_default();
        add_named(&mut entry.0, &row.counts);
        entry.1.insert(domain);
        *daily
            .entry(provider)
            .or_default()
            .entry(row.period.unix_timestamp())
            .or_default() += row.counts.get("delivered").copied().unwrap_or(0);
    }
    let mut providers: Vec<_> = totals.into_iter().collect();
    providers.sort_by_key(|(_, (c, _))| std::cmp::Reverse(c.get("accepted") + c.get("delivered")));
    let days: Vec<OffsetDateTime> = (0..7).map(|i| since + time::Duration::days(i)).collect();
    let classes = ["s1", "s2", "s3", "s4", "s5", "s6"];
    let chart_series: Vec<Series> = providers
        .iter()
        .take(6)
        .zip(classes)
        .map(|((name, _), class)| Series {
            name: name.clone(),
            class,
            #[allow(clippy::cast_precision_loss)]
            values: days
                .iter()
                .map(|d| {
                    daily
                        .get(name)
                        .and_then(|m| m.get(&d.unix_timestamp()))
                        .copied()
                        .unwrap_or(0) as f64
                })
                .collect(),
        })
        .collect();
    let chart = chart::lines(
        "Delivered per day by provider",
        &days.iter().map(|d| d.date().to_string()).collect::<Vec<_>>(),
        &chart_series,
        false,
    );
    let rate = |c: &herald_store::Counts, name: &str| c.rate(name).map_or_else(|| "—".to_owned(), percent_of);
    let providers = providers
        .iter()
        .map(|(name, (c, domains))| ProviderRow {
            provider: name.clone(),
            domains: domains.len(),
            sent: count(u(c.get("accepted"))),
            delivered: count(u(c.get("delivered"))),
            deferred: count(u(c.get("deferred"))),
            bounced: count(u(c.bounced())),
            delivery_rate: rate(c, "delivery_rate"),
            bounce_rate: rate(c, "bounce_rate"),
        })
        .collect();
    // The account's own queue, by provider.
    let queued = match &s.queue {
        Some(_) => routes::queue::list(
            State(s.clone()),
            super::authed_here(&signed),
            ApiQuery(routes::queue::QueueQuery {
                destination: None,
                status: None,
                limit: Some(QUEUE_SUMMARY_LIMIT),
            }),
        )
        .await
        .map(|j| j.0.data)
        .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut by_provider: BTreeMap<String, (usize, usize, Option<OffsetDateTime>)> = BTreeMap::new();
    for m in &queued {
        for r in &m.recipients {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d).to_ascii_lowercase();
            let slot = by_provider.entry(provider_of(&s, &domain)).or_default();
            match r.status.as_str() {
                "pending" => {
                    slot.0 += 1;
                    slot.2 = match (slot.2, r.next_attempt) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                "held" => slot.1 += 1,
                _ => {}
            }
        }
    }
    let queue_capped = queued.len() >= QUEUE_SUMMARY_LIMIT as usize;
    let operator = signed.view.caller.admin;
    let (destinations, warmup) = if operator {
        let d = routes::queue::destinations(State(s.clone()), authed(&signed))
            .await
            .map(|j| j.0.data)
            .unwrap_or_default();
        let w = routes::queue::warmup(State(s.clone()), authed(&signed))
            .await
            .map(|j| j.0.data)
            .unwrap_or_default();
        (d, w)
    } else {
        (Vec::new(), Vec::new())
    };
    let page = DeliveryPage {
        page: Layout::new(&s, &signed, "Delivery", "delivery", q.done.as_deref()).await,
        providers,
        chart,
        queue: by_provider
            .into_iter()
            .map(|(provider, (pending, held, next))| QueueRow {
                provider,
                pending,
                held,
                next: when_opt(next),
            })
            .collect(),
        queue_capped,
        operator,
        destinations: destinations
            .iter()
            .map(|d| DestinationRow {
                key: d.key.clone(),
                state: d.state.clone(),
                rule: d.rule.clone().unwrap_or_default(),
                until: when_opt(d.until),
                queued: count(d.queued),
                connections: format!("{} / {}", d.connections, d.max_connections),
                rate: format!("{:.0} %", d.rate_factor * 100.0),
            })
            .collect(),
        warmup: warmup
            .iter()
            .map(|w| WarmupRow {
                key: w.key.clone(),
                pool: w.pool.clone().unwrap_or_default(),
                plan: w.plan.clone(),
                day: format!("{} of {}", w.day, w.days),
                provider: w.provider.clone(),
                today: format!("{} / {}", w.sent_today, w.daily_cap),
                hour: format!("{} / {}", w.sent_this_hour, w.hourly_cap),
            })
            .collect(),
    };
    Ok(html(page.render()))
}
