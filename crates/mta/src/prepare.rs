//! The last step before the wire: what exactly is sent, from which return
//! path, to whom.

use async_trait::async_trait;
use herald_spool::Queued;
use herald_types::ReversePath;

/// One SMTP transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// `MAIL FROM` (a per-recipient VERP address, typically).
    pub sender: ReversePath,
    /// Indexes into the message's recipients.
    pub recipients: Vec<usize>,
    /// The message as sent; shared between transactions that send the
    /// same bytes (a message to many recipients, each with its own VERP
    /// return path, is in memory once). Empty when it could not be made:
    /// the recipients are then bounced, never sent something else.
    pub content: std::sync::Arc<[u8]>,
}

/// Turns a queued message into the transactions that deliver it to some of
/// its recipients. Called on the delivery path for every attempt, so it
/// should be quick; it must never lose a recipient (each index given comes
/// back in exactly one transaction).
///
/// The worker asks for the recipients' [`Prepare::groups`] first, then
/// prepares one group at a time just before sending it, so at most one
/// group's copy of a large message is in memory per connection.
#[async_trait]
pub trait Prepare: Send + Sync {
    /// How `recipients` split into groups prepared (and sent) separately:
    /// one group by default (the same content for all).
    fn groups(&self, _message: &Queued, _body: &[u8], recipients: &[usize]) -> Vec<Vec<usize>> {
        vec![recipients.to_vec()]
    }

    async fn prepare(&self, message: &Queued, body: &[u8], recipients: &[usize]) -> Vec<Prepared>;

    /// Whether the message must wait without being tried (its account is
    /// suspended): it is looked at again later, counts no attempt and does
    /// not expire while held. Called before every attempt.
    async fn hold(&self, _message: &Queued) -> bool {
        false
    }

    /// The name of the message's account, which `[[ip_pools]]` map to
    /// pools; `None` when unknown.
    async fn account_name(&self, _message: &Queued) -> Option<String> {
        None
    }
}

/// Sends the message as it was accepted, in one transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

#[async_trait]
impl Prepare for Passthrough {
    async fn prepare(&self, message: &Queued, body: &[u8], recipients: &[usize]) -> Vec<Prepared> {
        vec![Prepared {
            sender: message.envelope.sender.clone(),
            recipients: recipients.to_vec(),
            content: std::sync::Arc::from(body),
        }]
    }
}
