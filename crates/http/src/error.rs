//! Errors as the client sees them: a status and `{"error": {code, message}}`.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_accounts::AccountsError;
use herald_api_types::{ErrorBody, ErrorDetail};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    /// Seconds before a retry may succeed (`Retry-After`), when known.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A validation error naming the field at fault (`to[2].email`).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_request",
            message: format!("{field}: {message}"),
            field: Some(field),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid or revoked API key",
        )
    }

    /// Too many failed authentications from this address; try after `wait`.
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(wait.as_secs().max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many failed authentications from this address; try again later",
            )
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        match e {
            AccountsError::Unauthenticated => Self::unauthorized(),
            AccountsError::Suspended(_) => Self::new(StatusCode::FORBIDDEN, "account_suspended", e.to_string()),
            AccountsError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            AccountsError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            AccountsError::Conflict(m) => Self::new(StatusCode::CONFLICT, "conflict", m),
            AccountsError::Invalid(v) => Self::invalid(v.to_string()),
            AccountsError::Unprocessable(m) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", m),
            AccountsError::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage temporarily unavailable; retry later",
            ),
            AccountsError::Internal(cause) => {
                tracing::error!(%cause, "internal error answering a request");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, "invalid_request", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The `code` of an error answer that a layer below the handlers made.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Longest plain-text message from a lower layer that is passed on.
const MAX_PASSED_MESSAGE: usize = 512;

/// Gives every error answer the JSON shape, whichever layer made it: a
/// body limit (413), a timeout (503), a method the route lacks (405), an
/// extractor's rejection. Answers already in JSON, and successes, pass as
/// they are; headers such as `Allow` and `Retry-After` are kept.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    // JSON already, or one of the dashboard's HTML error pages: as it is.
    let shaped = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if status.as_u16() < 400 || shaped {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // What axum's own rejections say is bland and useful ("length limit
    // exceeded"); anything long or binary is replaced by the status text.
    let text = axum::body::to_bytes(body, MAX_PASSED_MESSAGE)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && !t.contains('<'));
    let message = text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase());
    let body = ErrorBody {
        error: ErrorDetail {
            code: code_of(status).to_owned(),
            message,
            field: None,
        },
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
