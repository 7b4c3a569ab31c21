//! What went wrong, in the terms an API client or CLI user needs.

use herald_store::StoreError;
use herald_types::InvalidValue;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountsError {
    /// No key, an unknown key, or a revoked one (HTTP 401, SMTP 535).
    #[error("missing, invalid or revoked credentials")]
    Unauthenticated,

    /// The key is valid but its account (or the account's master) is
    /// suspended (HTTP 403).
    #[error("account {0} is suspended")]
    Suspended(String),

    /// The caller can see the object but may not do this to it (HTTP 403).
    #[error("{0}")]
    Forbidden(String),

    /// Absent, or not visible to the caller (HTTP 404).
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The change contradicts the current state (HTTP 409).
    #[error("{0}")]
    Conflict(String),

    /// The request is well-formed but a rule refuses it (HTTP 422), e.g.
    /// approving a sender in a domain the brand has not verified.
    #[error("{0}")]
    Unprocessable(String),

    /// A value in the request is malformed (HTTP 422).
    #[error(transparent)]
    Invalid(#[from] InvalidValue),

    /// The store is unreachable now (HTTP 503): retry later.
    #[error("storage temporarily unavailable")]
    Unavailable,

    /// A failure that is not the caller's (HTTP 500). The cause is logged,
    /// never sent to the client.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for AccountsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => Self::NotFound(what),
            StoreError::Conflict { what } => Self::Conflict(what),
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "store unavailable");
                Self::Unavailable
            }
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

pub type AccountsResult<T> = Result<T, AccountsError>;
