//! The delivery queue as the HTTP API sees it, over the spool and the MTA.

use std::sync::Arc;

use herald_api_types::{QueuedMessage, QueuedRecipient};
use herald_http::{QueueControl, QueueEntry};
use herald_mta::Mta;
use herald_spool::{Queued, RcptStatus, Spool};
use herald_types::MessageId;

pub struct SpoolQueue {
    pub spool: Arc<Spool>,
    pub mta: Mta,
}

fn entry(q: Queued) -> QueueEntry {
    let recipients = q
        .envelope
        .recipients
        .iter()
        .zip(&q.states)
        .map(|(r, s)| QueuedRecipient {
            address: r.to_string(),
            status: s.status.as_str().to_owned(),
            attempts: s.attempts,
            next_attempt: (s.status == RcptStatus::Pending).then(|| herald_spool::from_ms(s.next_attempt_ms)),
        })
        .collect();
    QueueEntry {
        account: q.envelope.account.clone(),
        message: QueuedMessage {
            id: q.id.to_string(),
            account: q.envelope.account.to_string(),
            sender: q.envelope.sender.to_string(),
            size: q.size,
            received_at: q.envelope.received_at,
            recipients,
        },
    }
}

impl QueueControl for SpoolQueue {
    fn list(&self) -> Vec<QueueEntry> {
        self.spool.list().into_iter().map(entry).collect()
    }

    fn get(&self, id: &MessageId) -> Option<QueueEntry> {
        self.spool.get(id).map(entry)
    }

    fn retry(&self, id: &MessageId) -> bool {
        self.mta.retry(id).is_ok()
    }

    fn bounce(&self, id: &MessageId) -> bool {
        self.mta.bounce(id).is_ok()
    }

    fn purge(&self, id: &MessageId) -> bool {
        self.mta.purge(id).is_ok()
    }
}
