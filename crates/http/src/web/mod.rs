//! The dashboard: server-rendered pages under `/`, for the people behind
//! an account (and the operator).
//!
//! Main design decision: a page is a renderer over the API. Each handler
//! resolves the session to the same [`Caller`] an API key would give, calls
//! the API's own handler functions (`routes::…`) or the services they call,
//! and renders what they return with compiled templates (askama, escaping
//! everything). So the dashboard cannot see or do anything the API would
//! refuse the same caller, and no rule is written twice.
//!
//! Trust: a stranger reaches `/login` and the static files only. Every
//! other page needs a session (an HttpOnly cookie holding a random token;
//! the store keeps its SHA-256). Every state-changing request carries a
//! CSRF token ([`csrf_guard`], before any handler runs): the session's
//! token derived one-way from the cookie, or for the sign-in form a
//! double-submit cookie; cross-site `Origin`/`Sec-Fetch-Site` are refused
//! too. Pages are `no-store`, framed by nobody, and under a CSP allowing
//! scripts and styles from this origin only.
//!
//! [`Caller`]: herald_accounts::Caller

// A page handler's error is the error page itself (axum's own pattern):
// boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

mod chart;
mod deliverability;
mod manage;
mod pages;
mod session;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use herald_accounts::users::SessionView;

use crate::{ApiError, AppState};

/// The largest form the dashboard reads (but for imports).
const MAX_FORM: usize = 64 * 1024;

/// How the dashboard's cookies are set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebOptions {
    /// Served over HTTPS (directly or behind a proxy): cookies are
    /// `Secure` and carry the `__Host-` prefix.
    pub secure: bool,
    /// The largest suppression import.
    pub import_limit: usize,
}

impl WebOptions {
    fn session_cookie(self) -> &'static str {
        if self.secure {
            "__Host-herald_session"
        } else {
            "herald_session"
        }
    }

    fn login_cookie(self) -> &'static str {
        if self.secure {
            "__Host-herald_login"
        } else {
            "herald_login"
        }
    }

    /// A `Set-Cookie` value for this site.
    fn cookie(self, name: &str, value: &str, max_age: Option<u64>, same_site: &str) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }
}

/// The origin (`scheme://host[:port]`) of the configured public URL.
#[derive(Debug, Clone, Default)]
struct PublicOrigin(Option<std::sync::Arc<str>>);

fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// Every dashboard route.
pub(crate) fn routes(options: WebOptions, public_url: Option<&str>) -> Router<AppState> {
    let public = PublicOrigin(public_url.and_then(origin_of).map(std::sync::Arc::from));
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/switch", post(session::switch))
        .route("/messages", get(pages::messages))
        .route("/messages/{id}", get(pages::message))
        .route("/messages/{id}/release", post(pages::release))
        .route("/messages/{id}/drop", post(pages::drop_held))
        .route("/delivery", get(pages::delivery))
        .route("/domains", get(manage::domains).post(manage::add_domain))
        .route("/domains/{name}", get(manage::domain))
        .route("/domains/{name}/rotate", post(manage::rotate_domain))
        .route("/domains/{name}/verify", post(manage::verify_domain))
        .route("/suppressions", get(manage::suppressions).post(manage::add_suppression))
        .route("/suppressions/remove", post(manage::remove_suppression))
        .route(
            "/suppressions/import",
            post(manage::import_suppressions).layer(axum::extract::DefaultBodyLimit::max(options.import_limit)),
        )
        .route("/suppressions/export.csv", get(manage::export_suppressions))
        .route("/webhooks", get(manage::webhooks).post(manage::create_webhook))
        .route("/webhooks/{id}/delete", post(manage::delete_webhook))
        .route("/webhooks/{id}/enable", post(manage::enable_webhook))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/resend",
            post(manage::resend_webhook),
        )
        .route("/deliverability", get(deliverability::page))
        .route("/alerts/{id}/acknowledge", post(deliverability::acknowledge))
        .route("/settings", get(manage::settings))
        .route("/settings/api-keys", post(manage::create_key))
        .route("/settings/api-keys/revoke", post(manage::revoke_key))
        .route("/settings/smtp", post(manage::create_smtp))
        .route("/settings/smtp/revoke", post(manage::revoke_smtp))
        .route("/settings/senders", post(manage::add_sender))
        .route("/settings/senders/remove", post(manage::remove_sender))
        .route("/settings/subaccounts", post(manage::create_sub))
        .route("/settings/account", post(manage::update_settings))
        .route("/settings/password", post(manage::change_password))
        .route("/settings/users", post(manage::create_user))
        .route("/settings/users/delete", post(manage::delete_user))
        .route("/static/app.css", get(static_css))
        .route("/static/app.js", get(static_js))
        .layer(axum::middleware::from_fn(csrf_guard))
        .layer(axum::middleware::map_response(page_headers))
        .layer(axum::Extension(options))
        .layer(axum::Extension(public))
}

/// Any other path: a page for a browser, the API's JSON 404 for the rest.
pub(crate) async fn fallback(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if browser && !uri.path().starts_with("/api/") {
        page_headers(error_page(StatusCode::NOT_FOUND, "There is no such page.")).await
    } else {
        crate::routes::system::not_found().await.into_response()
    }
}

/// The headers of every dashboard answer.
async fn page_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

const APP_CSS: &str = include_str!("../../static/app.css");
const APP_JS: &str = include_str!("../../static/app.js");

async fn static_css() -> Response {
    static_file("text/css; charset=utf-8", APP_CSS)
}

async fn static_js() -> Response {
    static_file("text/javascript; charset=utf-8", APP_JS)
}

fn static_file(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A cookie's value from the request.
fn cookie<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The CSRF token of a session, derived one-way from its cookie's token:
/// unknowable without the cookie, which scripts cannot read.
fn csrf_of(session_token: &str) -> String {
    herald_accounts::users::token_key(&format!("herald dashboard csrf\0{session_token}"))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn forbidden(why: &str) -> Response {
    error_page(StatusCode::FORBIDDEN, why)
}

/// Refuses every state-changing request that does not carry the CSRF
/// token of its session (or of the sign-in form), or that a browser says
/// came from another site.
async fn csrf_guard(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let options = request.extensions().get::<WebOptions>().copied().unwrap_or(WebOptions {
        secure: true,
        import_limit: MAX_FORM,
    });
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return forbidden("This form was sent from another site.");
    }
    // Without Sec-Fetch-Site (older browsers), Origin names the form's
    // site: this one's public URL, or the host the request was sent to
    // (`Host` in HTTP/1, the URI's authority in HTTP/2, or what a proxy
    // forwards).
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").trim_end_matches('/').to_ascii_lowercase();
        let public = request.extensions().get::<PublicOrigin>().and_then(|p| p.0.clone());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest.to_owned());
        let hosts = [
            headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request.uri().authority().map(|a| a.as_str().to_owned()),
            headers
                .get("x-forwarded-host")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned()),
        ];
        let ours = public.is_some_and(|p| *p == *origin)
            || origin_host.is_some_and(|o| hosts.iter().flatten().any(|h| h.eq_ignore_ascii_case(&o)));
        if !ours {
            return forbidden("This form was sent from another site.");
        }
    }
    let expected = if request.uri().path() == "/login" {
        cookie(headers, options.login_cookie()).map(str::to_owned)
    } else {
        cookie(headers, options.session_cookie()).map(csrf_of)
    };
    let Some(expected) = expected.filter(|e| !e.is_empty()) else {
        return forbidden("This form has expired. Reload the page and try again.");
    };
    // File uploads (multipart) carry the token in their URL, and only
    // they; other forms in the body, read here (bounded) and handed on.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let in_query = if content_type.starts_with("multipart/form-data") {
        request.uri().query().and_then(|q| {
            form_urlencoded_pairs(q)
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        })
    } else {
        None
    };
    let (request, presented) = if is_form {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
        };
        let presented = std::str::from_utf8(&bytes).ok().and_then(|b| {
            form_urlencoded_pairs(b)
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v)
        });
        (Request::from_parts(parts, axum::body::Body::from(bytes)), presented)
    } else {
        (request, in_query)
    };
    match presented {
        Some(p) if same(&p, &expected) => next.run(request).await,
        _ => forbidden("This form has expired or did not come from this dashboard. Reload the page and try again."),
    }
}

/// A query's value for `name`, trimmed (empty when absent).
pub(crate) fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// Pairs as a query string (encoded).
pub(crate) fn encode_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn form_urlencoded_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

/// A signed-in request: the session and the CSRF token its forms carry.
/// Without a live session the browser is sent to the sign-in page.
pub(crate) struct Signed {
    pub view: SessionView,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let options = parts
            .extensions
            .get::<WebOptions>()
            .copied()
            .ok_or_else(|| error_page(StatusCode::INTERNAL_SERVER_ERROR, "the dashboard is not configured"))?;
        let to_login = || {
            let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let target = if next == "/" || !next.starts_with('/') || next.starts_with("//") {
                "/login".to_owned()
            } else {
                format!("/login?next={}", percent(next))
            };
            let mut r = Redirect::to(&target).into_response();
            if let Ok(v) = HeaderValue::from_str(&options.cookie(options.session_cookie(), "", Some(0), "Lax")) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        };
        let Some(token) = cookie(&parts.headers, options.session_cookie()).map(str::to_owned) else {
            return Err(to_login());
        };
        match state.accounts.session(&token).await {
            Ok(Some(view)) => Ok(Self {
                view,
                csrf: csrf_of(&token),
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(api_error_page(ApiError::from(e))),
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What every signed-in page shows around its content.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub title: String,
    /// The navigation entry to highlight.
    pub nav: &'static str,
    pub user: String,
    pub account: String,
    /// Accounts the session may switch to (beside the current one).
    pub accounts: Vec<String>,
    /// An operator's switch takes a typed name.
    pub by_name: bool,
    pub operator: bool,
    pub csrf: String,
    /// A confirmation after a change, from a fixed list.
    pub notice: Option<&'static str>,
}

/// The navigation: path, label, key.
pub(crate) const NAV: [(&str, &str, &str); 8] = [
    ("/", "Overview", "overview"),
    ("/messages", "Messages", "messages"),
    ("/delivery", "Delivery", "delivery"),
    ("/domains", "Domains", "domains"),
    ("/suppressions", "Suppressions", "suppressions"),
    ("/webhooks", "Webhooks", "webhooks"),
    ("/deliverability", "Deliverability", "deliverability"),
    ("/settings", "Settings", "settings"),
];

/// The confirmations a redirect may ask a page to show (`?done=`).
fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "suppression-added" => "The address was added to the suppression list.",
        "suppression-removed" => "The address was removed from the suppression list.",
        "imported" => "The import is done.",
        "domain-added" => "The domain was added. Publish its records, then check them here.",
        "verified" => "Every record is in place: the domain is verified.",
        "not-verified" => "Not every record is in place yet; the domain is not verified.",
        "rotated" => "A new DKIM key was made; publish it, and the old one retires once the new one is seen.",
        "released" => "The held message was released for delivery.",
        "dropped" => "The held message was dropped.",
        "webhook-enabled" => "The webhook is enabled and catches up from where it stopped.",
        "webhook-deleted" => "The webhook was removed; nothing more is posted to it.",
        "user-deleted" => "The user was removed and signed out everywhere.",
        "resent" => "The events of that post and every later one are posted again.",
        "resent-nothing" => "Nothing to do: those events are still waiting to be posted.",
        "resent-disabled" => "Those events will be posted again once the webhook is enabled.",
        "key-revoked" => "The API key was revoked.",
        "smtp-revoked" => "The SMTP credential was revoked.",
        "sender-added" => "The sender was approved.",
        "sender-removed" => "The sender was removed.",
        "sub-created" => "The sub-account was created.",
        "settings" => "The settings were saved.",
        "password" => "The password was changed. Sign in again on your other devices.",
        "acknowledged" => "The alert was acknowledged.",
        "switched" => "Switched account.",
        _ => return None,
    })
}

impl Layout {
    pub(crate) async fn new(
        state: &AppState,
        signed: &Signed,
        title: impl Into<String>,
        nav: &'static str,
        done: Option<&str>,
    ) -> Self {
        let v = &signed.view;
        let current = v.caller.account.name.to_string();
        // An operator user may act on any account: it types the name (no
        // list of every account on every page).
        let by_name = v.user.operator;
        let accounts: Vec<String> = if by_name {
            Vec::new()
        } else {
            match state.accounts.switchable(v).await {
                Ok(all) => all
                    .into_iter()
                    .map(|a| a.name.to_string())
                    .filter(|n| *n != current)
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        Self {
            title: title.into(),
            nav,
            user: v.user.email.clone(),
            account: current,
            accounts,
            by_name,
            operator: v.user.operator,
            csrf: signed.csrf.clone(),
            notice: notice(done),
        }
    }

    pub fn nav_items(&self) -> Vec<NavItem> {
        NAV.iter()
            .map(|(href, label, key)| NavItem {
                href,
                label,
                current: *key == self.nav,
            })
            .collect()
    }
}

#[derive(Debug)]
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A page saying what went wrong, with the status.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    (status, html(page.render())).into_response()
}

/// An API error as a page (the message is the API's, never a store cause).
pub(crate) fn api_error_page(e: ApiError) -> Response {
    error_page(e.status, &e.message)
}

/// A rendered template as an HTML answer.
pub(crate) fn html(rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// A page handler's result: the page, or an error page.
pub(crate) type PageResult = Result<Response, Response>;

/// Turns an API answer into the value or an error page.
pub(crate) trait OrPage<T> {
    fn or_page(self) -> Result<T, Response>;
}

impl<T> OrPage<T> for Result<T, ApiError> {
    fn or_page(self) -> Result<T, Response> {
        self.map_err(api_error_page)
    }
}

impl<T> OrPage<T> for Result<T, herald_accounts::AccountsError> {
    fn or_page(self) -> Result<T, Response> {
        self.map_err(|e| api_error_page(ApiError::from(e)))
    }
}

/// After a change: back to `to` with a confirmation (303, so a reload does
/// not post again).
pub(crate) fn done(to: &str, what: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}done={what}")).into_response()
}

/// `query` as the API's query type, so a page reads its filters exactly as
/// the API does.
pub(crate) fn api_query<T: serde::de::DeserializeOwned>(query: &str) -> Result<crate::routes::ApiQuery<T>, Response> {
    let uri: axum::http::Uri = format!("/?{query}")
        .parse()
        .map_err(|_| error_page(StatusCode::BAD_REQUEST, "the address is not valid"))?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| crate::routes::ApiQuery(q.0))
        .map_err(|e| error_page(StatusCode::UNPROCESSABLE_ENTITY, &e.body_text()))
}

/// The caller of a signed-in request, for the API's handler functions.
pub(crate) fn authed(signed: &Signed) -> crate::auth::Authed {
    crate::auth::Authed(signed.view.caller.clone())
}

/// The same caller without operator power, for lists that an operator
/// would otherwise see for every account: a page shows the account it is
/// on.
pub(crate) fn authed_here(signed: &Signed) -> crate::auth::Authed {
    let mut caller = signed.view.caller.clone();
    caller.admin = false;
    crate::auth::Authed(caller)
}

/// The acting account's alerts (`open` or `all`), newest first.
pub(crate) async fn alerts(
    state: &AppState,
    signed: &Signed,
    which: &str,
    limit: u32,
) -> Result<Vec<herald_api_types::monitor::Alert>, Response> {
    let query = crate::routes::monitor::AlertQuery {
        state: Some(which.to_owned()),
        kind: None,
        limit: Some(limit),
    };
    let list = crate::routes::monitor::alerts(
        axum::extract::State(state.clone()),
        authed(signed),
        crate::routes::ApiQuery(query),
    )
    .await
    .or_page()?;
    Ok(list.0.data)
}

/// Times as the dashboard shows them (UTC).
pub(crate) fn when(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

pub(crate) fn when_opt(t: Option<time::OffsetDateTime>) -> String {
    t.map_or_else(|| "—".to_owned(), when)
}

/// A count with thousands separators.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate as a percentage with two decimals.
pub(crate) fn percent_of(rate: f64) -> String {
    format!("{:.2} %", rate * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_decode() {
        let pairs = form_urlencoded_pairs("csrf=ab%20c&x=a+b&bad=%zz");
        assert_eq!(pairs[0], ("csrf".to_owned(), "ab c".to_owned()));
        assert_eq!(pairs[1], ("x".to_owned(), "a b".to_owned()));
        assert_eq!(pairs[2], ("bad".to_owned(), "%zz".to_owned()));
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("xherald_session=no; herald_session=yes"),
        );
        assert_eq!(cookie(&h, "herald_session"), Some("yes"));
        assert_eq!(cookie(&h, "herald_login"), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert!(same(&csrf_of("a"), &csrf_of("a")));
        assert!(!same(&csrf_of("a"), &csrf_of("a")[..10]));
    }

    #[test]
    fn public_origins() {
        assert_eq!(
            origin_of("https://Mail.Example.com/path?x"),
            Some("https://mail.example.com".to_owned())
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080".to_owned())
        );
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(10_000_000), "10,000,000");
    }
}
