//! The event pipeline: every service emits events here without waiting, and
//! one task writes them to the store in batches.
//!
//! Main design decision: emitting never blocks or fails the sender (a
//! delivery must not stall on the database), so events wait in memory until
//! their batch is written. A batch is one transaction of up to
//! [`MAX_BATCH`] events, written as soon as the previous one is done, so
//! under load batches grow and the store sees few, large transactions. When
//! the store fails, the batch is kept and retried with back-off; nothing is
//! dropped. On shutdown, [`EventPipeline::close`] writes what is waiting.
//!
//! Stages see each batch once it is stored: the [`Suppressor`] keeps
//! suppression lists from bounces and complaints; webhooks and stats hang
//! off the same stream. A stage that fails is tried again with the same
//! batch (stages are idempotent) before the next batch is written, so
//! nothing a stored event implies is skipped. [`EventPipeline::flush`]
//! waits until what was emitted is stored and staged, for callers that
//! must not answer before.
//!
//! Events journaled in the spool come with a ticket
//! ([`EventSink::emit_journaled`]); once their batch is stored and staged
//! the tickets are released to the journal ([`EventPipeline::attach_journal`]),
//! which may then forget them. Until then a crash replays them, and the
//! store keeps one copy of each event id.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use herald_store::EventStore;
use herald_types::{Event, EventJournal, EventSink};
use tokio::sync::{mpsc, oneshot};

pub mod alerts;
pub mod reputation;
mod suppression;

pub use suppression::Suppressor;

/// Events written per transaction at most.
pub const MAX_BATCH: usize = 1000;
/// Longest wait between retries of a failing store.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A stage after storage: sees every batch once it is stored, in order,
/// before the next batch is written. An `Err` (its cause, for the log) has
/// the pipeline give it the same batch again after a pause, so a stage
/// must be idempotent: a batch may also come again after a crash.
#[async_trait]
pub trait Stage: Send + Sync {
    async fn stored(&self, batch: &[Event]) -> Result<(), String>;
}

// Events are the traffic; a flush is rare, and boxing events would cost an
// allocation each.
#[allow(clippy::large_enum_variant)]
enum Item {
    /// An event, with its journal ticket when it was journaled.
    Event(Event, Option<u64>),
    /// Answered once every event sent before it is stored and staged.
    Flush(oneshot::Sender<()>),
}

/// The pipeline; share it as `Arc<dyn EventSink>`.
pub struct EventPipeline {
    tx: Mutex<Option<mpsc::UnboundedSender<Item>>>,
    /// Emitted and not yet stored.
    pending: Arc<AtomicUsize>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Where journaled events' tickets are released.
    journal: Arc<OnceLock<Weak<dyn EventJournal>>>,
}

impl std::fmt::Debug for EventPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPipeline")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl EventPipeline {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn EventStore>) -> Arc<Self> {
        Self::with_stages(store, Vec::new())
    }

    /// Starts the writer task with stages that see each stored batch.
    pub fn with_stages(store: Arc<dyn EventStore>, stages: Vec<Arc<dyn Stage>>) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let journal: Arc<OnceLock<Weak<dyn EventJournal>>> = Arc::new(OnceLock::new());
        let task = tokio::spawn(write_loop(store, stages, rx, pending.clone(), journal.clone()));
        Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            pending,
            task: Mutex::new(Some(task)),
            journal,
        })
    }

    /// Where tickets of journaled events are released once stored and
    /// staged (the spool). Set once; weak, as the journal holds the sink.
    pub fn attach_journal(&self, journal: Weak<dyn EventJournal>) {
        let _ = self.journal.set(journal);
    }

    /// Returns once every event emitted before this call is stored and has
    /// passed the stages: what a caller needs before it acknowledges
    /// something the events record (a bounce taken by the inbound MX).
    /// `false` when the pipeline is closed.
    pub async fn flush(&self) -> bool {
        let (done, wait) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|tx| tx.send(Item::Flush(done)).is_ok()))
            .unwrap_or(false);
        sent && wait.await.is_ok()
    }

    /// Stops taking events and returns once every event emitted before is
    /// stored (or the store kept failing for `grace`).
    pub async fn close(&self, grace: Duration) {
        self.tx.lock().map(|mut t| t.take()).ok();
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::error!("events not yet stored when the shutdown grace period ran out were lost");
        }
    }
}

impl EventPipeline {
    fn send(&self, item: Item, kind: &'static str) {
        metrics::counter!("herald_events_total", "type" => kind).increment(1);
        // Counted before it is sent, so the writer never subtracts first.
        self.pending.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|tx| tx.send(item).is_ok()))
            .unwrap_or(false);
        if !sent {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                "event emitted after the pipeline closed; not stored (a journaled one is replayed at the next start)"
            );
        }
    }
}

impl EventSink for EventPipeline {
    fn emit(&self, event: Event) {
        let kind = event.kind.as_str();
        self.send(Item::Event(event, None), kind);
    }

    fn emit_journaled(&self, event: Event, ticket: u64) {
        let kind = event.kind.as_str();
        self.send(Item::Event(event, Some(ticket)), kind);
    }

    fn backlog(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

/// Runs a stage on a batch until it succeeds, backing off between tries.
async fn stage_until_done(stage: &dyn Stage, batch: &[Event]) {
    let mut backoff = Duration::from_millis(100);
    while let Err(e) = stage.stored(batch).await {
        tracing::warn!(error = %e, events = batch.len(), retry_in = ?backoff, "an event stage failed; retrying the batch");
        metrics::counter!("herald_event_stage_retries_total").increment(1);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn write_loop(
    store: Arc<dyn EventStore>,
    stages: Vec<Arc<dyn Stage>>,
    mut rx: mpsc::UnboundedReceiver<Item>,
    pending: Arc<AtomicUsize>,
    journal: Arc<OnceLock<Weak<dyn EventJournal>>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tickets = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Event(e, ticket) => {
                    batch.push(e);
                    tickets.extend(ticket);
                }
                // A flush ends the batch: it is answered once what came
                // before it is written.
                Item::Flush(done) => {
                    flushes.push(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let mut backoff = Duration::from_millis(100);
            loop {
                match herald_store::timed("insert_events", store.insert_events(&batch)).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, events = batch.len(), retry_in = ?backoff, "storing events failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            metrics::counter!("herald_events_stored_total").increment(batch.len() as u64);
            pending.fetch_sub(batch.len(), Ordering::Relaxed);
            for stage in &stages {
                stage_until_done(stage.as_ref(), &batch).await;
            }
            if !tickets.is_empty()
                && let Some(journal) = journal.get().and_then(Weak::upgrade)
            {
                journal.release(&tickets);
            }
            batch.clear();
            tickets.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
