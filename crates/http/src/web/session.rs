//! Signing in and out, and switching the account a session shows.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use herald_accounts::users::{SESSION_MAX, SignInError};
use serde::Deserialize;

use super::{Signed, WebOptions, done, html};
use crate::routes::Peer;
use crate::{ApiError, AppState};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The sign-in form with a fresh double-submit token.
fn login_form(options: WebOptions, status: StatusCode, next: String, email: String, error: Option<String>) -> Response {
    // A random token for the double-submit cookie, as random as a session's.
    let token = herald_accounts::secret::new_session_token();
    let page = LoginPage {
        csrf: token.clone(),
        next,
        email,
        error,
    };
    let mut response = (status, html(page.render())).into_response();
    if let Ok(v) = HeaderValue::from_str(&options.cookie(options.login_cookie(), &token, Some(3600), "Strict")) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

pub(crate) async fn login_page(
    axum::Extension(options): axum::Extension<WebOptions>,
    Query(q): Query<NextQuery>,
) -> Response {
    login_form(
        options,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        String::new(),
        None,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub(crate) async fn login(
    State(s): State<AppState>,
    axum::Extension(options): axum::Extension<WebOptions>,
    Peer(ip): Peer,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    let email: String = f.email.chars().take(254).collect();
    if let Some(wait) = ip.and_then(|ip| s.auth_failures.wait(&ip)) {
        let mut r = login_form(
            options,
            StatusCode::TOO_MANY_REQUESTS,
            next,
            email,
            Some(format!(
                "Too many failed sign-ins from this address. Try again in {} seconds.",
                wait.as_secs().max(1)
            )),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    match s.accounts.sign_in(&f.email, &f.password).await {
        Ok(signed) => {
            let mut r = Redirect::to(&next).into_response();
            let session = options.cookie(
                options.session_cookie(),
                &signed.token,
                Some(SESSION_MAX.as_secs()),
                "Lax",
            );
            let clear = options.cookie(options.login_cookie(), "", Some(0), "Strict");
            for c in [session, clear] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Err(e) => {
            let (status, message) = match &e {
                // The same answer for both: a stranger learns nothing of
                // which addresses have users.
                SignInError::Wrong | SignInError::Locked(_) => {
                    if let Some(ip) = ip {
                        s.auth_failures.count(ip);
                    }
                    (
                        StatusCode::UNAUTHORIZED,
                        "Wrong e-mail address or password. After 5 failed attempts, signing in is paused for 15 minutes."
                            .to_owned(),
                    )
                }
                SignInError::Busy => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                SignInError::Other(inner) => {
                    let api = ApiError::from(inner.clone());
                    (api.status, api.message)
                }
            };
            login_form(options, status, next, email, Some(message))
        }
    }
}

pub(crate) async fn logout(
    State(s): State<AppState>,
    axum::Extension(options): axum::Extension<WebOptions>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Some(token) = super::cookie(&headers, options.session_cookie())
        && let Err(e) = s.accounts.sign_out(token).await
    {
        tracing::warn!(error = %e, "cannot end a dashboard session");
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&options.cookie(options.session_cookie(), "", Some(0), "Lax")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    account: String,
}

/// Shows another account: one of the user's subs (any account for an
/// operator user); anything else is 404, as with `Herald-Account`.
pub(crate) async fn switch(State(s): State<AppState>, signed: Signed, Form(f): Form<SwitchForm>) -> Response {
    match s.accounts.switch_account(&signed.view, &f.account).await {
        Ok(_) => done("/", "switched"),
        Err(e) => super::api_error_page(ApiError::from(e)),
    }
}

/// Only a path on this site: never `//host` or `/\host`, which browsers
/// read as another site, nor any white space or control character (a
/// browser drops a tab or a line break, so `/<tab>/host` is `//host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(
            safe_next(Some("/messages?recipient=a%40b")),
            "/messages?recipient=a%40b"
        );
        for hostile in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil",
            "/ok/\u{7f}",
            "/caf\u{e9}",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
