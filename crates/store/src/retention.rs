//! What is kept how long: old history is deleted on a schedule, so the
//! store grows with the retention window, not with the years. Stats
//! rollups are never pruned (they are what history becomes).

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreResult;

/// What can be pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Events (and with them what the events API, webhooks and the inbound
    /// MX's late attribution can find).
    Events,
    /// The Message-ID index of accepted messages.
    MessageIndex,
    /// DMARC, failure and TLS reports, by the end of the period they cover.
    Reports,
    /// Reports that could not be read, by when they arrived.
    BrokenReports,
}

impl Prunable {
    pub const ALL: [Self; 4] = [Self::Events, Self::MessageIndex, Self::Reports, Self::BrokenReports];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::MessageIndex => "message_index",
            Self::Reports => "dmarc_reports",
            Self::BrokenReports => "broken_reports",
        }
    }
}

#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes the rows of `what` from before `before`; how many. Large
    /// deletions are made in batches, so other writers are not held up
    /// for long.
    async fn prune(&self, what: Prunable, before: OffsetDateTime) -> StoreResult<u64>;
}
