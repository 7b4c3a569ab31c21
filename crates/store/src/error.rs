//! Store errors, shaped by what the caller must decide.

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (or is not visible to the caller).
    #[error("{what} not found")]
    NotFound { what: &'static str },

    /// The change would break a uniqueness or ownership rule. Nothing was
    /// written; retrying the same call fails the same way.
    #[error("conflict: {what}")]
    Conflict { what: String },

    /// The database could not be reached or timed out. Nothing was written;
    /// the same call may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    /// Anything else: a bug, a corrupt row, a failed migration. Not retryable.
    #[error("store failure: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn not_found(what: &'static str) -> Self {
        Self::NotFound { what }
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
