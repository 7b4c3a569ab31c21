//! Handing a message to the mail path: the same acceptance the SMTP
//! listeners use, implemented by the binary over the spool and the MTA.

use async_trait::async_trait;
use herald_types::{EmailAddress, Envelope, MessageId};

/// What became of one recipient at acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    /// Not sent, and never will be (a `dropped` event says why).
    Dropped {
        reason: String,
    },
}

/// A message accepted: its id (also when every recipient was dropped and
/// nothing was queued) and each recipient's outcome, in envelope order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: MessageId,
    pub recipients: Vec<(EmailAddress, Outcome)>,
}

impl Accepted {
    /// Whether any recipient was queued (the message went to the spool).
    pub fn queued(&self) -> bool {
        self.recipients.iter().any(|(_, o)| *o == Outcome::Queued)
    }
}

/// Why a message was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("<{0}>: sender not approved for this account")]
    SenderNotApproved(String),
    #[error("<{0}>: From header address not approved for this account")]
    FromNotApproved(String),
    #[error("a message needs a sender address")]
    NullSender,
    #[error("message larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("the message could not be stored; try again")]
    Unavailable,
}

/// Acceptance, as the send API uses it.
#[async_trait]
pub trait Submit: Send + Sync {
    /// Checks, stores durably and queues the message; returns once it is
    /// safe on disk. Suppressed recipients are dropped, not queued.
    async fn submit(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError>;

    /// The domain of the Message-IDs Herald makes.
    fn message_id_domain(&self) -> &str;

    /// The largest message accepted, in bytes.
    fn max_message_size(&self) -> usize;
}
