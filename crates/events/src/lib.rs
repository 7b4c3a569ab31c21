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
//! Later stages (suppression, stats, webhooks) hang off the same stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_store::EventStore;
use herald_types::{Event, EventSink};
use tokio::sync::mpsc;

/// Events written per transaction at most.
pub const MAX_BATCH: usize = 1000;
/// Longest wait between retries of a failing store.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The pipeline; share it as `Arc<dyn EventSink>`.
#[derive(Debug)]
pub struct EventPipeline {
    tx: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    /// Emitted and not yet stored.
    pending: Arc<AtomicUsize>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl EventPipeline {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn EventStore>) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(write_loop(store, rx, pending.clone()));
        Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            pending,
            task: Mutex::new(Some(task)),
        })
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

impl EventSink for EventPipeline {
    fn emit(&self, event: Event) {
        metrics::counter!("herald_events_total", "type" => event.kind.as_str()).increment(1);
        // Counted before it is sent, so the writer never subtracts first.
        self.pending.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|tx| tx.send(event).is_ok()))
            .unwrap_or(false);
        if !sent {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("event emitted after the pipeline closed; not stored");
        }
    }

    fn backlog(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

async fn write_loop(store: Arc<dyn EventStore>, mut rx: mpsc::UnboundedReceiver<Event>, pending: Arc<AtomicUsize>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match store.insert_events(&batch).await {
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
        batch.clear();
    }
}
