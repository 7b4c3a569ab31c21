//! `/healthz`, `/metrics`, `/api/v1/openapi.json`, and the JSON 404.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use herald_api_types::Health;

use crate::{ApiError, AppState};

/// Liveness and the store's reachability. No authentication.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health, description = "the store does not answer")))]
pub async fn healthz(State(s): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = s.accounts.store();
    let ok = store.ping().await.is_ok();
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.to_owned(),
        store: store.backend().to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics, text exposition format. Open unless `[metrics] token`
/// is set (then a bearer token); absent here when `[metrics] listen` serves
/// it on a listener of its own.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let text = s.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let json = DOC.get_or_init(|| crate::openapi::openapi_json().to_string());
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}
