//! Request counts and latencies for `/metrics`, labelled by route template
//! (`/api/v1/accounts/{name}`, never the concrete path), by method among
//! the standard ones (anything else is `other`) and by status code: every
//! label comes from a fixed set, so clients cannot grow the label set
//! whatever they send.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The method's label: one of the standard methods, or `other`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status label: a valid HTTP status is a three-digit number from a
/// bounded set; nothing else can reach here.
fn status_label(code: u16) -> &'static str {
    const KNOWN: [&str; 27] = [
        "200", "201", "202", "204", "206", "301", "302", "303", "304", "307", "308", "400", "401", "403", "404", "405",
        "408", "409", "413", "415", "422", "429", "500", "502", "503", "504", "101",
    ];
    let text = code.to_string();
    KNOWN.iter().find(|k| **k == text).copied().unwrap_or(match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    })
}

pub async fn record(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = status_label(response.status().as_u16());
    metrics::counter!("herald_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("herald_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Who may read `/metrics` on a listener.
#[derive(Clone, Debug, Default)]
pub struct MetricsGate {
    /// SHA-256 of `[metrics] token`, when one is set: compared digest to
    /// digest, so the comparison's time says nothing of the token.
    token: Option<Vec<u8>>,
    /// `/metrics` is served on another listener: not on this one.
    elsewhere: bool,
}

impl MetricsGate {
    pub fn new(token: Option<&str>, elsewhere: bool) -> Self {
        Self {
            token: token.map(digest),
            elsewhere,
        }
    }
}

fn digest(v: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, v.as_bytes())
        .as_ref()
        .to_vec()
}

/// Answers `/metrics` 404 where it is served elsewhere, and 401 without
/// the token when one is set; every other path passes.
pub async fn gate(gate: MetricsGate, req: Request, next: Next) -> Response {
    if req.uri().path() != "/metrics" {
        return next.run(req).await;
    }
    if gate.elsewhere {
        return ApiError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    }
    if let Some(want) = &gate.token {
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| digest(token.trim()));
        if given.as_ref() != Some(want) {
            let mut response = ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "/metrics needs the metrics token as a bearer token",
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_sets() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"X-RANDOM-1234").unwrap()), "other");
        assert_eq!(status_label(404), "404");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
        assert_eq!(status_label(103), "1xx");
        assert_eq!(status_label(299), "2xx");
        assert_eq!(status_label(201), "201");
    }
}
