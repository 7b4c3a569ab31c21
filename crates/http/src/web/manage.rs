//! Domains, suppressions, webhooks and settings: lists and the forms that
//! change them, each through the API's own handler.

use askama::Template;
use axum::extract::{Multipart, Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use herald_api_types as api;
use serde::Deserialize;

use super::{Layout, OrPage, PageResult, Signed, api_query, authed, done, error_page, html, when, when_opt};
use crate::routes::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::{ApiError, AppState, routes};

#[derive(Debug, Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// A JSON body for an API handler, from a form's fields.
fn body<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<ApiJson<T>, Response> {
    serde_json::from_value(value)
        .map(ApiJson)
        .map_err(|e| super::api_error_page(ApiError::invalid(e.to_string())))
}

struct DomainRow {
    name: String,
    verified: String,
    keys: usize,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    page: Layout,
    domains: Vec<DomainRow>,
}

pub(crate) async fn domains(State(s): State<AppState>, signed: Signed, Query(q): Query<DoneQuery>) -> PageResult {
    let list = routes::domains::list(State(s.clone()), authed(&signed))
        .await
        .or_page()?
        .0
        .data;
    let page = DomainsPage {
        page: Layout::new(&s, &signed, "Domains", "domains", q.done.as_deref()).await,
        domains: list
            .iter()
            .map(|d| DomainRow {
                name: d.name.clone(),
                verified: d.verified_at.map_or_else(|| "not verified".to_owned(), when),
                keys: d.keys.len(),
            })
            .collect(),
    };
    Ok(html(page.render()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct NameForm {
    name: String,
}

pub(crate) async fn add_domain(State(s): State<AppState>, signed: Signed, Form(f): Form<NameForm>) -> PageResult {
    let req = body::<api::AddDomain>(serde_json::json!({ "name": f.name.trim() }))?;
    let (_, Json(d)) = routes::domains::add(State(s), authed(&signed), req).await.or_page()?;
    Ok(done(&format!("/domains/{}", super::percent(&d.name)), "domain-added"))
}

struct RecordRow {
    kind: String,
    name: String,
    rtype: String,
    value: String,
    status: String,
    found: String,
}

struct DkimRow {
    selector: String,
    algorithm: String,
    state: String,
    created: String,
}

struct FindingRow {
    severity: String,
    check: String,
    message: String,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    page: Layout,
    name: String,
    verified: String,
    records: Vec<RecordRow>,
    keys: Vec<DkimRow>,
    findings: Vec<FindingRow>,
    lint_error: Option<String>,
}

/// A domain's records checked live against DNS (read only: the stored
/// verification changes by the "Verify now" form, the API's verify).
pub(crate) async fn domain(
    State(s): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let domains = s.domains.as_ref().ok_or_else(|| {
        error_page(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "sending domains are not configured",
        )
    })?;
    let v = crate::views::verification(&domains.check(&signed.view.caller.account, &name).await.or_page()?);
    let lint = routes::checks::dns(
        State(s.clone()),
        authed(&signed),
        ApiPath(v.domain.name.clone()),
        ApiQuery(routes::checks::DnsCheckQuery::default()),
    )
    .await;
    let (findings, lint_error) = match lint {
        Ok(Json(report)) => (
            report
                .findings
                .iter()
                .map(|f| FindingRow {
                    severity: format!("{:?}", f.severity).to_lowercase(),
                    check: format!("{:?}", f.check).to_lowercase(),
                    message: f.message.clone(),
                })
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.message)),
    };
    let page = DomainPage {
        page: Layout::new(
            &s,
            &signed,
            format!("Domain {}", v.domain.name),
            "domains",
            q.done.as_deref(),
        )
        .await,
        name: v.domain.name.clone(),
        verified: v.domain.verified_at.map_or_else(|| "not verified".to_owned(), when),
        records: v
            .checks
            .iter()
            .map(|c| RecordRow {
                kind: c.record.kind.clone(),
                name: c.record.name.clone(),
                rtype: c.record.rtype.clone(),
                value: c.record.value.clone(),
                status: c.status.clone(),
                found: c.found.clone().unwrap_or_default(),
            })
            .collect(),
        keys: v
            .domain
            .keys
            .iter()
            .map(|k| DkimRow {
                selector: k.selector.clone(),
                algorithm: k.algorithm.clone(),
                state: k.state.clone(),
                created: when(k.created_at),
            })
            .collect(),
        findings,
        lint_error,
    };
    Ok(html(page.render()))
}

pub(crate) async fn verify_domain(State(s): State<AppState>, signed: Signed, Path(name): Path<String>) -> PageResult {
    let v = routes::domains::verify(State(s), authed(&signed), ApiPath(name.clone()))
        .await
        .or_page()?
        .0;
    let what = if v.verified { "verified" } else { "not-verified" };
    Ok(done(&format!("/domains/{}", super::percent(&name)), what))
}

pub(crate) async fn rotate_domain(State(s): State<AppState>, signed: Signed, Path(name): Path<String>) -> PageResult {
    let _ = routes::domains::rotate(State(s), authed(&signed), ApiPath(name.clone()))
        .await
        .or_page()?;
    Ok(done(&format!("/domains/{}", super::percent(&name)), "rotated"))
}

struct SuppressionRow {
    address: String,
    reason: String,
    scope: String,
    created: String,
}

#[derive(Template)]
#[template(path = "suppressions.html")]
struct SuppressionsPage {
    page: Layout,
    search: String,
    rows: Vec<SuppressionRow>,
    next: Option<String>,
    imported: Option<String>,
}

pub(crate) async fn suppressions(State(s): State<AppState>, signed: Signed, RawQuery(raw): RawQuery) -> PageResult {
    let pairs = super::form_urlencoded_pairs(&raw.unwrap_or_default());
    let field = |name: &str| super::field(&pairs, name);
    let mut wanted = Vec::new();
    for name in ["search", "cursor"] {
        let v = field(name);
        if !v.is_empty() {
            wanted.push((name, v));
        }
    }
    wanted.push(("limit", "100".to_owned()));
    let qs = super::encode_query(wanted.iter().map(|(k, v)| (*k, v.as_str())));
    let list = routes::suppressions::list(State(s.clone()), authed(&signed), api_query(&qs)?)
        .await
        .or_page()?
        .0;
    let search = field("search");
    let next = list.next_cursor.as_ref().filter(|_| list.data.len() == 100).map(|c| {
        format!(
            "/suppressions?{}",
            super::encode_query([("search", search.as_str()), ("cursor", c.as_str())])
        )
    });
    let imported = match (field("rows").parse::<u64>(), field("added").parse::<u64>()) {
        (Ok(rows), Ok(added)) => {
            let mut notice = format!("{rows} rows read, {added} addresses added.");
            if let Ok(skipped) = field("skipped").parse::<u64>()
                && skipped > 0
            {
                notice.push_str(&format!(" {skipped} lines skipped: {}", field("bad")));
            }
            Some(notice)
        }
        _ => None,
    };
    let page = SuppressionsPage {
        page: Layout::new(
            &s,
            &signed,
            "Suppressions",
            "suppressions",
            Some(field("done").as_str()),
        )
        .await,
        search: field("search"),
        rows: list
            .data
            .iter()
            .map(|e| SuppressionRow {
                address: e.address.clone(),
                reason: e.reason.clone(),
                scope: if e.brand {
                    format!("brand ({})", e.account)
                } else {
                    e.account.clone()
                },
                created: when(e.created_at),
            })
            .collect(),
        next,
        imported,
    };
    Ok(html(page.render()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SuppressionForm {
    address: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn add_suppression(
    State(s): State<AppState>,
    signed: Signed,
    Form(f): Form<SuppressionForm>,
) -> PageResult {
    let reason = f.reason.trim();
    let req = body::<api::AddSuppression>(serde_json::json!({
        "address": f.address.trim(),
        "reason": if reason.is_empty() { None } else { Some(reason) },
    }))?;
    let _ = routes::suppressions::add(State(s), authed(&signed), req)
        .await
        .or_page()?;
    Ok(done("/suppressions", "suppression-added"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AddressForm {
    address: String,
}

pub(crate) async fn remove_suppression(
    State(s): State<AppState>,
    signed: Signed,
    Form(f): Form<AddressForm>,
) -> PageResult {
    let _ = routes::suppressions::remove(State(s), authed(&signed), ApiPath(f.address.trim().to_owned()))
        .await
        .or_page()?;
    Ok(done("/suppressions", "suppression-removed"))
}

/// A CSV file uploaded from the page (multipart; its CSRF token is in the
/// form's URL), imported as the API imports it.
pub(crate) async fn import_suppressions(State(s): State<AppState>, signed: Signed, mut form: Multipart) -> PageResult {
    let mut csv = None;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| error_page(e.status(), &e.body_text()))?
    {
        if field.name() == Some("file") {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| error_page(e.status(), &e.body_text()))?;
            csv = Some(bytes);
        }
    }
    let csv = csv.ok_or_else(|| error_page(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "choose a CSV file"))?;
    let done_import = routes::suppressions::import(
        State(s),
        authed(&signed),
        routes::ApiQuery(routes::suppressions::ImportQuery::default()),
        csv,
    )
    .await
    .or_page()?
    .0;
    // The first bad lines, for the notice (all are counted).
    let bad: String = done_import
        .errors
        .iter()
        .take(3)
        .map(|e| format!("line {}: {}", e.line, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .take(600)
        .collect();
    Ok(axum::response::Redirect::to(&format!(
        "/suppressions?{}",
        super::encode_query([
            ("done", "imported"),
            ("rows", done_import.rows.to_string().as_str()),
            ("added", done_import.added.to_string().as_str()),
            ("skipped", done_import.skipped.to_string().as_str()),
            ("bad", bad.as_str()),
        ])
    ))
    .into_response())
}

pub(crate) async fn export_suppressions(State(s): State<AppState>, signed: Signed) -> PageResult {
    let csv = routes::suppressions::export(State(s), authed(&signed))
        .await
        .or_page()?;
    let mut r = csv.into_response();
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"suppressions.csv\""),
    );
    Ok(r)
}

struct DeliveryRow {
    id: i64,
    at: String,
    events: u32,
    outcome: String,
    delivered: bool,
    millis: u32,
}

struct WebhookRow {
    deliveries: Vec<DeliveryRow>,
    id: String,
    url: String,
    events: String,
    status: String,
    failing_since: String,
    last_error: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    page: Layout,
    hooks: Vec<WebhookRow>,
    /// A secret made just now, shown once.
    secret: Option<(String, String)>,
    /// The event types a webhook may ask for.
    kinds: String,
}

pub(crate) async fn webhooks(State(s): State<AppState>, signed: Signed, Query(q): Query<DoneQuery>) -> PageResult {
    webhooks_page(&s, &signed, q.done.as_deref(), None).await
}

/// The webhooks page, optionally showing a secret just made.
async fn webhooks_page(
    s: &AppState,
    signed: &Signed,
    done_: Option<&str>,
    secret: Option<(String, String)>,
) -> PageResult {
    let list = routes::webhooks::list(State(s.clone()), authed(signed))
        .await
        .or_page()?
        .0
        .data;
    let mut logs = Vec::with_capacity(list.len());
    for w in &list {
        let log = routes::webhooks::deliveries(State(s.clone()), authed(signed), ApiPath(w.id.clone()))
            .await
            .or_page()?
            .0
            .data;
        logs.push(
            log.iter()
                .take(10)
                .map(|d| DeliveryRow {
                    id: d.id,
                    at: when(d.at),
                    events: d.events,
                    outcome: d.error.clone().unwrap_or_else(|| "delivered".to_owned()),
                    delivered: d.delivered,
                    millis: d.millis,
                })
                .collect::<Vec<_>>(),
        );
    }
    let page = WebhooksPage {
        page: Layout::new(s, signed, "Webhooks", "webhooks", done_).await,
        secret,
        kinds: herald_types::EventKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        hooks: list
            .iter()
            .zip(logs)
            .map(|(w, deliveries)| WebhookRow {
                deliveries,
                id: w.id.clone(),
                url: w.url.clone(),
                events: if w.events.is_empty() {
                    "every event".to_owned()
                } else {
                    w.events.join(", ")
                },
                status: w.status.clone(),
                failing_since: when_opt(w.failing_since),
                last_error: w.last_error.clone().unwrap_or_default(),
                disabled: w.status != "active",
            })
            .collect(),
    };
    Ok(html(page.render()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WebhookForm {
    url: String,
    /// Event types, comma-separated (empty: every event).
    #[serde(default)]
    events: String,
}

/// A new webhook; its signing secret is shown once, on the answer.
pub(crate) async fn create_webhook(
    State(s): State<AppState>,
    signed: Signed,
    Form(f): Form<WebhookForm>,
) -> PageResult {
    let events: Vec<&str> = f.events.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    let req = body::<api::CreateWebhook>(serde_json::json!({ "url": f.url.trim(), "events": events }))?;
    let (_, Json(hook)) = routes::webhooks::create(State(s.clone()), authed(&signed), req)
        .await
        .or_page()?;
    let secret = hook.secret.clone().unwrap_or_default();
    webhooks_page(
        &s,
        &signed,
        None,
        Some((format!("signing secret of {}", hook.url), secret)),
    )
    .await
}

pub(crate) async fn delete_webhook(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let _ = routes::webhooks::delete(State(s), authed(&signed), ApiPath(id))
        .await
        .or_page()?;
    Ok(done("/webhooks", "webhook-deleted"))
}

pub(crate) async fn resend_webhook(
    State(s): State<AppState>,
    signed: Signed,
    Path((id, delivery)): Path<(String, i64)>,
) -> PageResult {
    let (_, axum::Json(r)) = routes::webhooks::resend(State(s), authed(&signed), ApiPath((id, delivery)))
        .await
        .or_page()?;
    let what = match (r.moved, r.status.as_str()) {
        (false, _) => "resent-nothing",
        (true, "active") => "resent",
        (true, _) => "resent-disabled",
    };
    Ok(done("/webhooks", what))
}

pub(crate) async fn enable_webhook(State(s): State<AppState>, signed: Signed, Path(id): Path<String>) -> PageResult {
    let _ = routes::webhooks::enable(State(s), authed(&signed), ApiPath(id))
        .await
        .or_page()?;
    Ok(done("/webhooks", "webhook-enabled"))
}

struct KeyRow {
    id: String,
    prefix: String,
    scope: String,
    label: String,
    created: String,
    revoked: String,
    active: bool,
}

struct CredentialRow {
    id: String,
    username: String,
    label: String,
    created: String,
    revoked: String,
    active: bool,
}

struct SubRow {
    name: String,
    status: String,
    created: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: Layout,
    keys: Vec<KeyRow>,
    credentials: Vec<CredentialRow>,
    senders: Vec<(String, String)>,
    subs: Vec<SubRow>,
    is_master: bool,
    track_opens: bool,
    track_clicks: bool,
    bounce_alert: String,
    complaint_alert: String,
    alert_email: String,
    /// A secret made just now, shown once.
    secret: Option<(String, String)>,
    users: Vec<(String, String)>,
}

/// The settings page, optionally showing a secret just made.
async fn settings_page(
    s: &AppState,
    signed: &Signed,
    done_: Option<&str>,
    secret: Option<(String, String)>,
) -> PageResult {
    let keys = routes::credentials::list_keys(State(s.clone()), authed(signed))
        .await
        .or_page()?
        .0
        .data;
    let creds = routes::credentials::list_smtp(State(s.clone()), authed(signed))
        .await
        .or_page()?
        .0
        .data;
    let senders = routes::credentials::list_senders(State(s.clone()), authed(signed))
        .await
        .or_page()?
        .0
        .data;
    let users = routes::users::list(State(s.clone()), authed(signed))
        .await
        .or_page()?
        .0
        .data;
    let account = &signed.view.caller.account;
    let is_master = account.parent.is_none();
    let subs = if is_master {
        routes::accounts::list(State(s.clone()), super::authed_here(signed))
            .await
            .or_page()?
            .0
            .data
            .into_iter()
            .filter(|a| a.parent.as_deref() == Some(account.name.as_str()))
            .collect()
    } else {
        Vec::new()
    };
    let settings = &account.settings;
    let page = SettingsPage {
        page: Layout::new(s, signed, "Settings", "settings", done_).await,
        keys: keys
            .iter()
            .map(|k| KeyRow {
                id: k.id.clone(),
                prefix: k.prefix.clone(),
                scope: format!("{:?}", k.scope).to_lowercase(),
                label: k.label.clone().unwrap_or_default(),
                created: when(k.created_at),
                revoked: when_opt(k.revoked_at),
                active: k.revoked_at.is_none(),
            })
            .collect(),
        credentials: creds
            .iter()
            .map(|c| CredentialRow {
                id: c.id.clone(),
                username: c.username.clone(),
                label: c.label.clone().unwrap_or_default(),
                created: when(c.created_at),
                revoked: when_opt(c.revoked_at),
                active: c.revoked_at.is_none(),
            })
            .collect(),
        senders: senders.iter().map(|x| (x.sender.clone(), when(x.created_at))).collect(),
        subs: subs
            .iter()
            .map(|a| SubRow {
                name: a.name.clone(),
                status: format!("{:?}", a.status).to_lowercase(),
                created: when(a.created_at),
            })
            .collect(),
        is_master,
        track_opens: settings.track_opens,
        track_clicks: settings.track_clicks,
        bounce_alert: format!("{}", f64::from(settings.bounce_alert_bp) / 100.0),
        complaint_alert: format!("{}", f64::from(settings.complaint_alert_bp) / 100.0),
        alert_email: settings.alert_email.clone().unwrap_or_default(),
        secret,
        users: users
            .iter()
            .map(|u| (u.email.clone(), when_opt(u.last_login_at)))
            .collect(),
    };
    Ok(html(page.render()))
}

pub(crate) async fn settings(State(s): State<AppState>, signed: Signed, Query(q): Query<DoneQuery>) -> PageResult {
    settings_page(&s, &signed, q.done.as_deref(), None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct LabelForm {
    #[serde(default)]
    label: String,
}

fn label(l: &str) -> Option<String> {
    let l = l.trim();
    (!l.is_empty()).then(|| l.to_owned())
}

/// A new API key, shown once on the page that answers the form (never in
/// a URL).
pub(crate) async fn create_key(State(s): State<AppState>, signed: Signed, Form(f): Form<LabelForm>) -> PageResult {
    let req = api::CreateApiKey {
        label: label(&f.label),
        scope: None,
    };
    let (_, Json(k)) = routes::credentials::create_key(State(s.clone()), authed(&signed), OptionalJson(req))
        .await
        .or_page()?;
    settings_page(&s, &signed, None, Some(("API key".to_owned(), k.key))).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct IdForm {
    id: String,
}

pub(crate) async fn revoke_key(State(s): State<AppState>, signed: Signed, Form(f): Form<IdForm>) -> PageResult {
    let _ = routes::credentials::revoke_key(State(s), authed(&signed), ApiPath(f.id))
        .await
        .or_page()?;
    Ok(done("/settings", "key-revoked"))
}

pub(crate) async fn create_smtp(State(s): State<AppState>, signed: Signed, Form(f): Form<LabelForm>) -> PageResult {
    let req = api::CreateSmtpCredential { label: label(&f.label) };
    let (_, Json(c)) = routes::credentials::create_smtp(State(s.clone()), authed(&signed), OptionalJson(req))
        .await
        .or_page()?;
    settings_page(
        &s,
        &signed,
        None,
        Some((format!("SMTP password of {}", c.record.username), c.password)),
    )
    .await
}

pub(crate) async fn revoke_smtp(State(s): State<AppState>, signed: Signed, Form(f): Form<IdForm>) -> PageResult {
    let _ = routes::credentials::revoke_smtp(State(s), authed(&signed), ApiPath(f.id))
        .await
        .or_page()?;
    Ok(done("/settings", "smtp-revoked"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SenderForm {
    sender: String,
}

pub(crate) async fn add_sender(State(s): State<AppState>, signed: Signed, Form(f): Form<SenderForm>) -> PageResult {
    let req = body::<api::AddSender>(serde_json::json!({ "sender": f.sender.trim() }))?;
    let _ = routes::credentials::add_sender(State(s), authed(&signed), req)
        .await
        .or_page()?;
    Ok(done("/settings", "sender-added"))
}

pub(crate) async fn remove_sender(State(s): State<AppState>, signed: Signed, Form(f): Form<SenderForm>) -> PageResult {
    let _ = routes::credentials::remove_sender(State(s), authed(&signed), ApiPath(f.sender.trim().to_owned()))
        .await
        .or_page()?;
    Ok(done("/settings", "sender-removed"))
}

pub(crate) async fn create_sub(State(s): State<AppState>, signed: Signed, Form(f): Form<NameForm>) -> PageResult {
    let req = body::<api::CreateAccount>(serde_json::json!({
        "name": f.name.trim(),
        "parent": signed.view.caller.account.name.as_str(),
    }))?;
    let _ = routes::accounts::create(State(s), authed(&signed), req)
        .await
        .or_page()?;
    Ok(done("/settings", "sub-created"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AccountForm {
    /// Checkboxes: present when ticked.
    track_opens: Option<String>,
    track_clicks: Option<String>,
    bounce_alert_percent: String,
    complaint_alert_percent: String,
    #[serde(default)]
    alert_email: String,
}

fn number(field: &str, v: &str) -> Result<f64, Response> {
    v.trim()
        .parse::<f64>()
        .map_err(|_| super::api_error_page(ApiError::field(field, "a number")))
}

pub(crate) async fn update_settings(
    State(s): State<AppState>,
    signed: Signed,
    Form(f): Form<AccountForm>,
) -> PageResult {
    let req = body::<api::UpdateAccountSettings>(serde_json::json!({
        "track_opens": f.track_opens.is_some(),
        "track_clicks": f.track_clicks.is_some(),
        "bounce_alert_percent": number("bounce_alert_percent", &f.bounce_alert_percent)?,
        "complaint_alert_percent": number("complaint_alert_percent", &f.complaint_alert_percent)?,
        "alert_email": f.alert_email.trim(),
    }))?;
    let name = signed.view.caller.account.name.to_string();
    let _ = routes::accounts::update_settings(State(s), authed(&signed), ApiPath(name), req)
        .await
        .or_page()?;
    Ok(done("/settings", "settings"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    current: String,
    new: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserForm {
    email: String,
}

/// A new dashboard user of this account; Herald chooses its password and
/// shows it once, here.
pub(crate) async fn create_user(State(s): State<AppState>, signed: Signed, Form(f): Form<UserForm>) -> PageResult {
    let req = body::<api::CreateUser>(serde_json::json!({ "email": f.email.trim() }))?;
    let (_, Json(u)) = routes::users::create(State(s.clone()), authed(&signed), req)
        .await
        .or_page()?;
    let password = u.password.unwrap_or_default();
    settings_page(
        &s,
        &signed,
        None,
        Some((format!("password of {}", u.record.email), password)),
    )
    .await
}

pub(crate) async fn delete_user(State(s): State<AppState>, signed: Signed, Form(f): Form<UserForm>) -> PageResult {
    let _ = routes::users::delete(State(s), authed(&signed), ApiPath(f.email.trim().to_owned()))
        .await
        .or_page()?;
    Ok(done("/settings", "user-deleted"))
}

pub(crate) async fn change_password(
    State(s): State<AppState>,
    signed: Signed,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    s.accounts
        .change_password(&signed.view.user, &f.current, &f.new)
        .await
        .or_page()?;
    // Every session of the user ended, this one too.
    Ok(axum::response::Redirect::to("/login").into_response())
}
