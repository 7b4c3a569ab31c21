//! Herald's vocabulary: the ids, names and addresses every other crate speaks.
//!
//! This crate is L0: pure data and validation, no I/O, no async runtime, so it
//! can be fuzzed and used from any layer. Every value here is validated when it
//! is built (`parse`/`new`), so a `AccountName` or an `EmailAddress` held
//! anywhere else in Herald is known to be well-formed; code downstream never
//! re-checks. Ids are newtypes with a readable prefix (`acc_…`, `key_…`) so a
//! stray id in a log or a URL says what it names.

mod account;
mod address;
pub mod csv_file;
mod duration;
mod envelope;
mod event;
mod id;
mod sender;
pub mod submit;

pub use account::{AccountKind, AccountName, AccountSettings, AccountStatus, KeyScope, is_within, same_tree};
pub use address::{DomainName, EmailAddress};
pub use duration::{format_duration, parse_duration};
pub use envelope::{DEFAULT_STREAM, Envelope, ReversePath, is_stream_name};
pub use event::{
    BounceClass, BounceInfo, DurableEvents, Engagement, Event, EventJournal, EventKind, EventSink, SmtpAnswer,
    SpamScore, now_ms,
};
pub use id::{
    AccountId, AlertId, ApiKeyId, DkimKeyId, DomainId, EventId, IdError, MessageId, SmtpCredentialId, UserId, WebhookId,
};
pub use sender::SenderRule;
pub use submit::{Accepted, Outcome, Submit, SubmitError};

/// A value that failed validation: what was given and what was expected.
/// The message is safe to show to the user who typed the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {expected}")]
pub struct InvalidValue {
    /// The kind of value, e.g. "account name".
    pub what: &'static str,
    /// The value as given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

impl InvalidValue {
    pub fn new(what: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            what,
            value: value.to_owned(),
            expected,
        }
    }
}
