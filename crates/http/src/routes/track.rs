//! `/t/o`, `/t/c`, `/u`: the open pixel, click redirects and unsubscribe
//! links in mail. No authentication: the signed token is the credential,
//! and an altered one is answered 404.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use herald_tracking::Purpose;

use super::{ApiPath, Peer};
use crate::AppState;
use crate::engagement::{Tracker, Visitor};
use crate::error::ApiError;

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

fn tracker(s: &AppState) -> Result<&Tracker, ApiError> {
    s.tracker.as_deref().ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such link")
}

fn visitor(method: &Method, headers: &HeaderMap, peer: Option<IpAddr>) -> Visitor {
    Visitor {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        ip: peer,
        head: method == Method::HEAD,
    }
}

/// The open pixel: records an open, answers a 1×1 GIF that is never cached.
#[utoipa::path(get, path = "/t/o/{token}", tag = "tracking",
    params(("token" = String, Path, description = "signed open token")),
    responses((status = 200, content_type = "image/gif", description = "the pixel"), (status = 404, body = herald_api_types::ErrorBody, description = "unknown token")))]
pub async fn open(
    State(s): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let t = tracker(&s)?;
    let token = t.decode(Purpose::Open, &token).ok_or_else(not_found)?;
    t.open(&token, &visitor(&method, &headers, peer)).await;
    Ok((
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store, no-cache, must-revalidate, private"),
        ],
        PIXEL,
    )
        .into_response())
}

/// A tracked link: records the click and redirects to the link's target
/// (only ever the one signed into the token).
#[utoipa::path(get, path = "/t/c/{token}", tag = "tracking",
    params(("token" = String, Path, description = "signed click token")),
    responses((status = 302, description = "to the link's target"), (status = 404, body = herald_api_types::ErrorBody, description = "unknown token")))]
pub async fn click(
    State(s): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    headers: HeaderMap,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let t = tracker(&s)?;
    let token = t.decode(Purpose::Click, &token).ok_or_else(not_found)?;
    let url = token.url.clone().ok_or_else(not_found)?;
    t.click(&token, &visitor(&method, &headers, peer)).await;
    Ok(Redirect::to(&url).into_response())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em}}</style>\
         </head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

/// An unsubscribe link opened in a browser: a page with a button. A GET
/// never changes anything (link scanners and prefetchers follow every
/// link in mail); the button POSTs, as mail clients do for RFC 8058.
#[utoipa::path(get, path = "/u/{token}", tag = "tracking",
    params(("token" = String, Path, description = "signed unsubscribe token")),
    responses((status = 200, content_type = "text/html", description = "a page asking to confirm"), (status = 404, body = herald_api_types::ErrorBody, description = "unknown token")))]
pub async fn unsubscribe_page(State(s): State<AppState>, ApiPath(raw): ApiPath<String>) -> Result<Response, ApiError> {
    let t = tracker(&s)?;
    let token = t.decode(Purpose::Unsubscribe, &raw).ok_or_else(not_found)?;
    let who = escape(&token.recipient);
    let form = format!(
        "<p>Stop this mail to {who}?</p><form method=\"post\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe</button></form>"
    );
    Ok(page("Unsubscribe", &form).into_response())
}

/// Unsubscribes: the RFC 8058 one-click POST a mail client makes, or the
/// page's button. Recorded (suppression and event) before the answer.
#[utoipa::path(post, path = "/u/{token}", tag = "tracking",
    params(("token" = String, Path, description = "signed unsubscribe token")),
    responses((status = 200, content_type = "text/html", description = "unsubscribed"), (status = 404, body = herald_api_types::ErrorBody, description = "unknown token")))]
pub async fn unsubscribe(
    State(s): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    headers: HeaderMap,
    ApiPath(raw): ApiPath<String>,
) -> Result<Response, ApiError> {
    let t = tracker(&s)?;
    let token = t.decode(Purpose::Unsubscribe, &raw).ok_or_else(not_found)?;
    t.unsubscribe(&token, &visitor(&method, &headers, peer))
        .await
        .map_err(|e| ApiError::from(herald_accounts::AccountsError::from(e)))?;
    let who = escape(&token.recipient);
    Ok(page("Unsubscribed", &format!("<p>{who} will get no more of this mail.</p>")).into_response())
}
