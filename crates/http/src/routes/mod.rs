//! The routes. Each module declares its handlers with `#[utoipa::path]`; the
//! `routes!` macro registers a handler and its documentation together.

pub mod accounts;
pub mod checks;
pub mod credentials;
pub mod dmarc;
pub mod domains;
pub mod events;
pub mod messages;
pub mod monitor;
pub mod queue;
pub mod reputation;
pub mod stats;
pub mod suppressions;
pub mod system;
pub mod track;
pub mod users;
pub mod webhooks;

use std::net::IpAddr;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState};

/// A JSON object body whose rejection is an [`ApiError`] naming the bad
/// field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        // axum's extractor checks the content type and the syntax, and
        // reads `T` naming the path to a bad field.
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(not_an_object());
        }
        let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(Self(axum::Json::<T>::from_bytes(&bytes)?.0))
    }
}

/// Request bodies are JSON objects, as the document says: serde would
/// also read a struct from an array of its fields in order, a form no
/// client means (`[null, null]` made an API key).
pub(crate) fn is_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

pub(crate) fn not_an_object() -> ApiError {
    ApiError::invalid("the body must be a JSON object")
}

/// A query string whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A path parameter whose rejection is an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// A JSON body that may be absent: an empty body means `T::default()`, so
/// `POST /api/v1/api-keys` works with no body at all.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
        if !is_object(&bytes) {
            return Err(not_an_object());
        }
        Ok(Self(value))
    }
}

/// The client's IP address when the server knows it (a router driven
/// without a listener, as in unit tests, does not): behind a trusted proxy,
/// the one it forwards for ([`crate::client_ip`]).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(crate::client_ip::of(parts)))
    }
}

/// Every documented route, each with its request body limit (checked
/// against Content-Length before anything else, and while reading).
pub fn api(send_body_limit: usize) -> OpenApiRouter<AppState> {
    let sending = OpenApiRouter::new()
        .routes(routes!(messages::send))
        .routes(routes!(suppressions::import))
        .routes(routes!(dmarc::upload))
        .layer(axum::extract::DefaultBodyLimit::max(send_body_limit))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(send_body_limit));
    OpenApiRouter::new()
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::show, accounts::delete))
        .routes(routes!(accounts::promote))
        .routes(routes!(accounts::suspend))
        .routes(routes!(accounts::reactivate))
        .routes(routes!(accounts::update_settings))
        .routes(routes!(credentials::list_keys, credentials::create_key))
        .routes(routes!(credentials::revoke_key))
        .routes(routes!(credentials::list_smtp, credentials::create_smtp))
        .routes(routes!(credentials::revoke_smtp))
        .routes(routes!(credentials::list_senders, credentials::add_sender))
        .routes(routes!(credentials::remove_sender))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::delete))
        .routes(routes!(domains::list, domains::add))
        .routes(routes!(domains::show, domains::delete))
        .routes(routes!(domains::verify))
        .routes(routes!(domains::rotate))
        .routes(routes!(domains::retire))
        .routes(routes!(events::list))
        .routes(routes!(events::export))
        .routes(routes!(stats::stats))
        .routes(routes!(reputation::reputation))
        .routes(routes!(dmarc::list))
        .routes(routes!(dmarc::broken))
        .routes(routes!(dmarc::summary))
        .routes(routes!(dmarc::sources_export))
        .routes(routes!(checks::dns))
        .routes(routes!(monitor::check))
        .routes(routes!(monitor::listings))
        .routes(routes!(monitor::run))
        .routes(routes!(monitor::alerts))
        .routes(routes!(monitor::acknowledge))
        .routes(routes!(suppressions::list, suppressions::add))
        .routes(routes!(suppressions::export))
        .routes(routes!(suppressions::show, suppressions::remove))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::show, webhooks::delete))
        .routes(routes!(webhooks::enable))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::resend))
        .routes(routes!(messages::show))
        .routes(routes!(queue::list))
        .routes(routes!(queue::destinations))
        .routes(routes!(queue::warmup))
        .routes(routes!(queue::tls_reports))
        .routes(routes!(queue::show, queue::purge))
        .routes(routes!(queue::retry))
        .routes(routes!(queue::bounce))
        .routes(routes!(queue::release))
        .routes(routes!(queue::drop_held))
        .routes(routes!(track::open))
        .routes(routes!(track::click))
        .routes(routes!(track::unsubscribe_page, track::unsubscribe))
        .routes(routes!(system::healthz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi_json))
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(crate::MAX_BODY))
        .merge(sending)
}
