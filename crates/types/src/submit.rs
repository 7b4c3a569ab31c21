//! Handing a message to the mail path, whoever hands it over: the words the
//! SMTP listeners, the send API and the inbound MX share with acceptance.
//!
//! They live here, below every service, so that an SMTP refusal never
//! comes from the HTTP crate's types or the other way round: each face maps
//! a [`SubmitError`] to its own protocol ([`SubmitError::smtp`] gives the
//! SMTP codes; the HTTP layer picks its statuses).

use async_trait::async_trait;

use crate::{EmailAddress, Envelope, MessageId};

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

/// Why a message was refused as a whole. The texts are safe to show the
/// client: they name what the client itself sent, never a cause inside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The envelope sender is not an approved sender of the account.
    #[error("<{0}>: sender not approved for this account")]
    SenderNotApproved(String),
    /// An address of a `From:` or `Sender:` field is not approved.
    #[error("<{0}>: From header address not approved for this account")]
    FromNotApproved(String),
    /// The address is in a domain another brand registered and verified:
    /// refused whatever the account's approvals say.
    #[error("<{0}>: the domain belongs to another brand")]
    ForeignDomain(String),
    /// The header block, or an author field in it, does not parse: what a
    /// reader would see cannot be known, so it is not sent.
    #[error("message headers not accepted: {0}")]
    BadHeaders(String),
    #[error("a message needs a sender address")]
    NullSender,
    /// The From domain does not belong to the message's stream: a stream
    /// with a sending domain of its own writes from it, and no other
    /// stream writes from that domain.
    #[error("{0}")]
    StreamDomain(String),
    /// The account (or its brand's master) is suspended.
    #[error("account {0} is suspended")]
    Suspended(String),
    #[error("message larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("the message could not be stored; try again")]
    Unavailable,
    /// Over the account's daily quota or rate: try again after the wait.
    #[error("{message}")]
    OverLimit {
        message: String,
        retry_after: std::time::Duration,
    },
}

impl SubmitError {
    /// The SMTP reply code and enhanced status (RFC 3463) for this refusal.
    pub fn smtp(&self) -> (u16, [u8; 3]) {
        match self {
            Self::SenderNotApproved(_)
            | Self::FromNotApproved(_)
            | Self::ForeignDomain(_)
            | Self::StreamDomain(_)
            | Self::NullSender
            | Self::Suspended(_) => (550, [5, 7, 1]),
            // RFC 3463 §3.7: 5.6.0, other or undefined media error.
            Self::BadHeaders(_) => (550, [5, 6, 0]),
            Self::TooLarge(_) => (552, [5, 3, 4]),
            Self::Unavailable => (451, [4, 3, 0]),
            // RFC 3463 X.4.5: mail system congestion (of this account's share).
            Self::OverLimit { .. } => (452, [4, 4, 5]),
        }
    }
}

/// Acceptance, as the send API and the SMTP listeners use it.
#[async_trait]
pub trait Submit: Send + Sync {
    /// Checks, stores durably and queues the message; returns once it is
    /// safe on disk. Suppressed recipients are dropped, not queued.
    async fn submit(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError>;

    /// [`Submit::submit`] for a message personalised per recipient, in the
    /// stored form the send API writes (`herald_message::personal`). Only
    /// the send API's composer calls it: a body given to `submit` is never
    /// read as one, whatever its first bytes.
    async fn submit_personal(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError>;

    /// The domain of the Message-IDs Herald makes.
    fn message_id_domain(&self) -> &str;

    /// The largest message accepted, in bytes.
    fn max_message_size(&self) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_smtp_meaning() {
        assert_eq!(SubmitError::Unavailable.smtp(), (451, [4, 3, 0]));
        assert_eq!(SubmitError::TooLarge(10).smtp(), (552, [5, 3, 4]));
        assert_eq!(SubmitError::BadHeaders("x".into()).smtp(), (550, [5, 6, 0]));
        assert_eq!(SubmitError::ForeignDomain("a@b.test".into()).smtp(), (550, [5, 7, 1]));
        assert_eq!(
            SubmitError::SenderNotApproved("a@b.test".into()).smtp(),
            (550, [5, 7, 1])
        );
    }
}
