//! The HTTP face of Herald, on axum: the REST API under `/api/v1`, its
//! OpenAPI document, `/healthz`, `/metrics`, and the dashboard under `/`
//! (`web`), which renders the API's own handlers.
//!
//! Main design decision: handlers are thin. Each one authenticates through
//! the [`auth::Authed`] extractor, calls one `herald_accounts` operation and
//! converts the result with [`views`]; the rules live in `herald-accounts`,
//! shared with the CLI. Routes are declared through `utoipa-axum`, so a route
//! cannot exist without its entry in the OpenAPI document.
//!
//! Must never: answer 403 for an object the caller cannot see (404 instead,
//! so ids cannot be probed), or put a cause from the store into a response
//! body (it goes to the log).

mod auth;
pub mod client_ip;
mod coalesce;
mod compose;
mod engagement;
mod error;
mod limits;
mod metrics_layer;
mod openapi;
mod routes;

pub use routes::stats::stats_query;
mod serve;
mod submit;
pub mod views;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use herald_accounts::Accounts;
use metrics_exporter_prometheus::PrometheusHandle;

pub use compose::MAX_RECIPIENTS;
pub use engagement::{DEFAULT_COALESCE_WINDOW, Tracker, Visitor};
pub use error::ApiError;
pub use limits::AuthFailures;
pub use openapi::openapi;
pub use routes::messages::{IDEMPOTENCY_HEADER, IDEMPOTENCY_WINDOW, REPLAYED_HEADER};
pub use serve::{PeerAddr, TlsListener, serve};
pub use submit::{Accepted, Outcome, Submit, SubmitError};

/// The largest request body the API reads, but for sends and uploads.
pub const MAX_BODY: usize = 1024 * 1024;

/// The largest send request for messages of up to `max_message_size`
/// bytes: the message's bytes once more for what JSON adds (base64 of
/// attachments is already in the message; escapes of `raw` text, such as
/// `\r\n`, take up to twice its bytes), and a mebibyte for the fields.
pub fn send_body_limit(max_message_size: usize) -> usize {
    max_message_size.saturating_mul(2).saturating_add(1024 * 1024)
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Accounts,
    /// Renders `/metrics`; `None` when no recorder is installed (some tests).
    pub metrics: Option<Arc<PrometheusHandle>>,
    /// The delivery queue, when this process runs one.
    pub queue: Option<Arc<dyn QueueControl>>,
    /// Sending domains, when configured.
    pub domains: Option<Arc<herald_domains::Domains>>,
    /// Opens, clicks and unsubscribes, when this process serves them.
    pub tracker: Option<Arc<Tracker>>,
    /// Acceptance of mail for the send API, when this process sends.
    pub submit: Option<Arc<dyn Submit>>,
    /// DMARC reports, when configured.
    pub dmarc: Option<Arc<herald_dmarc::Dmarc>>,
    /// Live DNS, for the DNS linter.
    pub resolver: Option<Arc<dyn herald_dns::Resolver>>,
    /// Failed API authentications per client address.
    pub auth_failures: Arc<limits::AuthFailures>,
    /// Blocklist checks and the scheduled monitor, when configured.
    pub monitor: Option<Arc<herald_monitor::Monitor>>,
    /// Test posts to webhooks, when this process posts them.
    pub webhook_tester: Option<Arc<dyn WebhookTester>>,
}

/// Posts a test event to a webhook now, as every post is made (signed,
/// through the outbound guard), without touching its cursor or log.
#[async_trait::async_trait]
pub trait WebhookTester: Send + Sync {
    async fn test(&self, hook: &herald_store::Webhook, account: &str) -> herald_api_types::WebhookTest;
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// A queued message and the account it belongs to (for visibility).
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub account: herald_types::AccountId,
    pub message: herald_api_types::QueuedMessage,
}

/// The operations on the delivery queue the API offers; implemented by the
/// binary over the spool and the MTA. Each returns `false` / `None` when the
/// message is not (or no longer) queued.
pub trait QueueControl: Send + Sync {
    fn list(&self) -> Vec<QueueEntry>;
    /// The queued messages of `account` (every account's with `None`),
    /// only those with a held recipient when `held_only`, at most `limit`.
    fn list_of(&self, account: Option<&herald_types::AccountId>, held_only: bool, limit: usize) -> Vec<QueueEntry> {
        self.list()
            .into_iter()
            .filter(|e| account.is_none_or(|a| &e.account == a))
            .filter(|e| !held_only || e.message.recipients.iter().any(|r| r.status == "held"))
            .take(limit)
            .collect()
    }
    fn get(&self, id: &herald_types::MessageId) -> Option<QueueEntry>;
    fn retry(&self, id: &herald_types::MessageId) -> bool;
    fn bounce(&self, id: &herald_types::MessageId) -> bool;
    fn purge(&self, id: &herald_types::MessageId) -> bool;
    /// Releases the held recipients of `id` for delivery now; how many
    /// (`None`: not queued).
    fn release(&self, _id: &herald_types::MessageId) -> Option<usize> {
        None
    }
    /// Drops the held recipients of `id`, with `dropped` events giving
    /// `why`; how many (`None`: not queued).
    fn drop_held(&self, _id: &herald_types::MessageId, _why: &str) -> Option<usize> {
        None
    }
    /// The provider (a destination's name) a recipient domain's mail goes
    /// to, when Herald knows it.
    fn provider_of(&self, _domain: &str) -> Option<String> {
        None
    }
    /// Whether a recipient domain's mail goes to `destination` (a
    /// provider's name or a destination's key).
    fn goes_to(&self, _domain: &str, _destination: &str) -> bool {
        false
    }
    /// Every destination and its state.
    fn destinations(&self) -> Vec<herald_api_types::QueueDestination> {
        Vec::new()
    }
    /// Every warming source and sending domain, per provider.
    fn warmup(&self) -> Vec<herald_api_types::WarmupState> {
        Vec::new()
    }
    /// A day's TLS-RPT `policies` (`YYYY-MM-DD`).
    fn tls_report(&self, _day: &str) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

/// Settings of the HTTP layer itself.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// A request running longer is answered 503 and abandoned.
    pub request_timeout: Duration,
    /// The largest body of a send, report upload or suppression import
    /// ([`send_body_limit`] of the message size limit).
    pub send_body_limit: usize,
    /// The dashboard is reached over HTTPS (directly or through a proxy):
    /// its cookies are `Secure` and `__Host-` prefixed.
    pub secure_cookies: bool,
    /// The URL people reach Herald by (`https://mail.example.com`), when
    /// configured: forms posted from it are this site's, whatever `Host`
    /// a proxy passes on.
    pub public_url: Option<String>,
    /// `[http] trusted_proxies`: connections from these may name the
    /// client they forward (`Forwarded`, `X-Forwarded-For`).
    pub trusted_proxies: client_ip::TrustedProxies,
    /// `[metrics] token`: `/metrics` answers only with this bearer token.
    pub metrics_token: Option<String>,
    /// `/metrics` is served elsewhere (`[metrics] listen`): not here.
    pub metrics_elsewhere: bool,
}

/// A listener of its own for `/metrics` (`[metrics] listen`): that route
/// only, behind the token when one is set.
pub fn metrics_router(state: AppState, token: Option<&str>) -> Router {
    let gate = metrics_layer::MetricsGate::new(token, false);
    Router::new()
        .route("/metrics", axum::routing::get(routes::system::metrics))
        .layer(axum::middleware::from_fn(move |req, next| {
            metrics_layer::gate(gate.clone(), req, next)
        }))
        .with_state(state)
}

/// The whole HTTP application.
pub fn router(state: AppState, options: HttpOptions) -> Router {
    let trusted = options.trusted_proxies.clone();
    let gate = metrics_layer::MetricsGate::new(options.metrics_token.as_deref(), options.metrics_elsewhere);
    let (api, _doc) = routes::api(options.send_body_limit).split_for_parts();
    let dashboard = web::routes(
        web::WebOptions {
            secure: options.secure_cookies,
            import_limit: options.send_body_limit,
        },
        options.public_url.as_deref(),
    );
    api.merge(dashboard)
        .fallback(web::fallback)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            options.request_timeout,
        ))
        // Outside every other layer that may answer: each error, from any
        // of them, leaves in the documented JSON shape.
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn(move |req, next| {
            client_ip::resolve(trusted.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(move |req, next| {
            metrics_layer::gate(gate.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(metrics_layer::record))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
