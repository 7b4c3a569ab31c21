//! Herald's durable message spool. A message is acknowledged (`250`, `202`)
//! only once it is here and synced to disk; after a crash or a restart,
//! every acknowledged message is found again with the state of each of its
//! recipients.
//!
//! # Design
//!
//! Two append-only streams in the spool directory:
//!
//! - **Data segments** (`data/NNNNNNNN.seg`, rotated at
//!   [`SpoolOptions::segment_bytes`]): message bodies, each framed with its
//!   length and CRC. Never rewritten; a segment is deleted once no live
//!   message is in it.
//! - **The journal** (`journal/NNNNNNNN.jnl`): small records — a message
//!   with its envelope, the location of its body and each recipient's state;
//!   a recipient's new state (absolute, so replay is idempotent); a message
//!   done. A restart reads only the journal, never the bodies, and never one
//!   file per message. When the journal has grown well past the live state, a
//!   checkpoint rewrites the live messages into a new journal file and drops
//!   the old ones, so its size follows the queue, not the traffic.
//!
//! One writer thread owns both files and commits in groups: it takes every
//! command waiting, writes them with one `write` per file, syncs each file
//! once (bodies before journal), then answers all of them. Concurrent
//! sessions thus share syncs, and a message costs a few hundred bytes of
//! journal and no file-system metadata churn (no per-message file, rename or
//! unlink). After a failed write or sync the spool refuses new mail: the
//! page cache can no longer be trusted to match the disk.
//!
//! In memory, each live message is an [`Entry`]: its body's location, its
//! envelope and one small state per recipient — a few hundred bytes for a
//! typical message, well under 1 KiB.
//!
//! Events that record what happened to a message (its acceptance, each
//! recipient's outcome) are journaled in the same records and the same
//! sync as the change itself, then handed to the event sink with a ticket;
//! the sink releases the ticket once the event is stored and staged.
//! Released events are dropped at the next checkpoint; the rest are
//! rewritten into it, and after a crash every journaled event not known to
//! be released is handed over again (the store keeps one copy of each
//! event id), so each is recorded exactly once.
//!
//! Must never: answer an enqueue before its body and journal record are
//! synced; send a finished message again after a restart; panic on a torn
//! or damaged file; lose an event journaled with a change.

mod codec;
mod files;
mod record;
mod recover;
mod state;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use herald_types::{DurableEvents, Envelope, Event, EventJournal, EventSink, MessageId};
use tokio::sync::{mpsc, oneshot};

pub use record::Location;
pub use state::{RcptState, RcptStatus, from_ms, to_ms};

use crate::files::Segments;
use crate::record::Record;
use crate::writer::{Command, Journaled, Unreleased, Writer};

/// Sizes that bound the spool's files.
#[derive(Debug, Clone, Copy)]
pub struct SpoolOptions {
    /// A data segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// The journal is rewritten once it exceeds this size (and four times
    /// the live state).
    pub checkpoint_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// A write or sync failed; nothing more is accepted until a restart.
    /// Tell clients to try later (SMTP 451 4.3.0).
    #[error("spool unavailable: {0}")]
    Failed(String),
    #[error("spool stopped")]
    Stopped,
    #[error("message not in the queue")]
    NotFound,
    #[error("the recipient's state changed meanwhile")]
    Changed,
    #[error("message body unreadable: {0}")]
    Unreadable(String),
    #[error("cannot open the spool: {0}")]
    Open(String),
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

/// A live message in memory.
#[derive(Debug, Clone)]
pub struct Entry {
    pub loc: Location,
    pub envelope: Arc<Envelope>,
    pub states: Vec<RcptState>,
}

pub(crate) type Index = HashMap<[u8; 16], Entry>;

/// A queued message as callers see it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: MessageId,
    pub envelope: Arc<Envelope>,
    pub states: Vec<RcptState>,
    /// Size of the body in bytes.
    pub size: u32,
}

/// Counters of the writer's work, for metrics and tests.
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Group commits (each one write + sync per file touched).
    pub batches: std::sync::atomic::AtomicU64,
    /// Messages made durable.
    pub enqueued: std::sync::atomic::AtomicU64,
}

/// The spool. Cheap to share behind an `Arc`; every method may be called
/// from any task.
#[derive(Debug)]
pub struct Spool {
    root: PathBuf,
    stats: Arc<SpoolStats>,
    tx: mpsc::UnboundedSender<Command>,
    index: Arc<Mutex<Index>>,
    segments: Arc<Segments>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Tickets of journaled events.
    next_seq: AtomicU64,
    unreleased: Unreleased,
}

fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    // A panic while holding the lock cannot leave an entry half-written
    // (every change is a single insert, remove or assignment).
    index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Spool {
    /// Opens the spool in `root` (creating it), recovers the queue from the
    /// journal, writes a fresh checkpoint and starts the writer. Journaled
    /// events are kept but go nowhere: see [`Spool::open_with_events`].
    pub fn open(root: &Path, options: SpoolOptions) -> Result<Self, SpoolError> {
        Self::open_with_events(root, options, None)
    }

    /// [`Spool::open`], handing journaled events to `sink` once durable —
    /// first the ones recovered from the journal (a crash may have kept
    /// them from being stored), then each new one.
    pub fn open_with_events(
        root: &Path,
        options: SpoolOptions,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Result<Self, SpoolError> {
        let open_err = |e: std::io::Error| SpoolError::Open(format!("{}: {e}", root.display()));
        let found = recover::recover(root).map_err(open_err)?;
        let next_seq = found.events.keys().next_back().map_or(1, |s| s + 1);
        let mut replay = Vec::with_capacity(found.events.len());
        let mut kept = std::collections::BTreeMap::new();
        for (seq, json) in found.events {
            match serde_json::from_slice::<Event>(&json) {
                Ok(event) => {
                    kept.insert(seq, Arc::<[u8]>::from(json));
                    replay.push((seq, event));
                }
                Err(e) => tracing::error!(seq, error = %e, "skipping an undecodable journaled event"),
            }
        }
        let unreleased: Unreleased = Arc::new(Mutex::new(kept));
        let segments = Arc::new(Segments::new(root));
        let index = Arc::new(Mutex::new(found.index));
        let data = files::create_append(&files::data_path(root, found.next_data)).map_err(open_err)?;
        // The journal starts empty and is immediately replaced by a checkpoint
        // of what was recovered, which also drops the older journal files.
        let journal = files::create_append(&files::journal_path(root, found.next_journal)).map_err(open_err)?;
        let stats = Arc::new(SpoolStats::default());
        let mut writer = Writer {
            root: root.to_owned(),
            stats: stats.clone(),
            options,
            index: index.clone(),
            segments: segments.clone(),
            data,
            data_no: found.next_data,
            data_len: 0,
            journal,
            journal_no: found.next_journal,
            journal_len: 0,
            live: found.live,
            failed: None,
            sink: sink.clone(),
            unreleased: unreleased.clone(),
        };
        writer.checkpoint().map_err(open_err)?;
        let recovered = lock(&index).len();
        if recovered > 0 || found.skipped > 0 || !replay.is_empty() {
            tracing::info!(
                messages = recovered,
                events = replay.len(),
                skipped = found.skipped,
                "spool recovered"
            );
        }
        if let Some(sink) = &sink {
            for (seq, event) in replay {
                sink.emit_journaled(event, seq);
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("spool-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(open_err)?;
        Ok(Self {
            root: root.to_owned(),
            stats,
            tx,
            index,
            segments,
            writer: Mutex::new(Some(handle)),
            next_seq: AtomicU64::new(next_seq),
            unreleased,
        })
    }

    /// Tickets and JSON for events about to be journaled.
    fn journaled(&self, events: Vec<Event>) -> Vec<Journaled> {
        events
            .into_iter()
            .map(|event| Journaled {
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                json: serde_json::to_vec(&event).unwrap_or_default(),
                event,
            })
            .collect()
    }

    /// Journaled events not yet released (for tests and metrics).
    pub fn unreleased_events(&self) -> usize {
        self.unreleased.lock().map(|u| u.len()).unwrap_or(0)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stats(&self) -> &SpoolStats {
        &self.stats
    }

    /// Stores a message durably. Returns once the body and the queue record
    /// are synced to disk: only then may the client be told `250`.
    pub async fn enqueue(&self, envelope: Envelope, body: Vec<u8>) -> Result<MessageId, SpoolError> {
        let id = MessageId::generate();
        self.enqueue_with(id.clone(), envelope, body, Vec::new()).await?;
        Ok(id)
    }

    /// Stores message `id` durably with the events that record its
    /// acceptance, in the same sync: the events reach the sink only once
    /// the message is durable, and are replayed after a crash until stored.
    pub async fn enqueue_with(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
        events: Vec<Event>,
    ) -> Result<(), SpoolError> {
        self.enqueue_inner(id, envelope, body, events, false).await
    }

    /// [`Spool::enqueue_with`] with every recipient `Held`: durable, and
    /// delivered only once released.
    pub async fn enqueue_held_with(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
        events: Vec<Event>,
    ) -> Result<(), SpoolError> {
        self.enqueue_inner(id, envelope, body, events, true).await
    }

    async fn enqueue_inner(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
        events: Vec<Event>,
        held: bool,
    ) -> Result<(), SpoolError> {
        if envelope.recipients.is_empty() {
            return Err(SpoolError::Invalid("a message needs at least one recipient"));
        }
        if u32::try_from(body.len()).is_err() {
            return Err(SpoolError::Invalid("message larger than 4 GiB"));
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Command::Enqueue {
                id: id.to_bytes(),
                envelope: Arc::new(envelope),
                body,
                events: self.journaled(events),
                held,
                ack,
            })
            .map_err(|_| SpoolError::Stopped)?;
        done.await.map_err(|_| SpoolError::Stopped)?
    }

    /// Journals events that go with no queue change (recipients dropped at
    /// acceptance, an unsubscribe); returns once they are durable.
    pub async fn journal_events(&self, events: Vec<Event>) -> Result<(), SpoolError> {
        if events.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Command::Events {
                events: self.journaled(events),
                ack: Some(ack),
            })
            .map_err(|_| SpoolError::Stopped)?;
        done.await.map_err(|_| SpoolError::Stopped)?
    }

    /// Returns once everything sent to the spool before is durable.
    pub async fn flush(&self) -> Result<(), SpoolError> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Command::Sync(ack)).map_err(|_| SpoolError::Stopped)?;
        done.await.map_err(|_| SpoolError::Stopped)?
    }

    fn queued(id: &[u8; 16], e: &Entry) -> Queued {
        Queued {
            id: MessageId::from_bytes(*id),
            envelope: e.envelope.clone(),
            states: e.states.clone(),
            size: e.loc.len,
        }
    }

    pub fn get(&self, id: &MessageId) -> Option<Queued> {
        let key = id.to_bytes();
        lock(&self.index).get(&key).map(|e| Self::queued(&key, e))
    }

    /// Every live message (for scheduling after a restart, and listings).
    pub fn list(&self) -> Vec<Queued> {
        lock(&self.index).iter().map(|(id, e)| Self::queued(id, e)).collect()
    }

    /// The live messages `keep` chooses, at most `limit`: only those are
    /// copied, so a listing of one account's (or held) mail costs a pass
    /// over the index, not a copy of it.
    pub fn list_where(&self, keep: impl Fn(&Envelope, &[RcptState]) -> bool, limit: usize) -> Vec<Queued> {
        lock(&self.index)
            .iter()
            .filter(|(_, e)| keep(&e.envelope, &e.states))
            .take(limit)
            .map(|(id, e)| Self::queued(id, e))
            .collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.index).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads a message's body, checked against its CRC. Blocking file I/O
    /// (usually served from the page cache): call it from a blocking context.
    pub fn read_body(&self, id: &MessageId) -> Result<Vec<u8>, SpoolError> {
        let loc = lock(&self.index)
            .get(&id.to_bytes())
            .map(|e| e.loc)
            .ok_or(SpoolError::NotFound)?;
        self.segments
            .read(&loc)
            .map_err(|e| SpoolError::Unreadable(e.to_string()))
    }

    /// Sets one recipient's state. When every recipient is final the message
    /// leaves the queue; returns whether it did. Durable with the next sync
    /// (a crash before it may repeat that delivery: at least once, never lost).
    pub fn update(&self, id: &MessageId, recipient: usize, state: RcptState) -> Result<bool, SpoolError> {
        self.update_inner(id, recipient, state, None, None)
    }

    /// [`Spool::update`] with the event that records the change, journaled
    /// in the same record batch: durable (and handed to the sink) with the
    /// next sync, or not at all — never one without the other.
    pub fn update_with_event(
        &self,
        id: &MessageId,
        recipient: usize,
        state: RcptState,
        event: Event,
    ) -> Result<bool, SpoolError> {
        self.update_inner(id, recipient, state, Some(event), None)
    }

    /// [`Spool::update`] (with `event`, if any) only while the recipient's
    /// status is still `from`: `Err(Changed)` when something else changed
    /// it first (a release racing a drop of held mail).
    pub fn update_from(
        &self,
        id: &MessageId,
        recipient: usize,
        from: RcptStatus,
        state: RcptState,
        event: Option<Event>,
    ) -> Result<bool, SpoolError> {
        self.update_inner(id, recipient, state, event, Some(from))
    }

    fn update_inner(
        &self,
        id: &MessageId,
        recipient: usize,
        state: RcptState,
        event: Option<Event>,
        expect: Option<RcptStatus>,
    ) -> Result<bool, SpoolError> {
        let key = id.to_bytes();
        let mut index = lock(&self.index);
        let entry = index.get_mut(&key).ok_or(SpoolError::NotFound)?;
        let slot = entry.states.get_mut(recipient).ok_or(SpoolError::NotFound)?;
        if expect.is_some_and(|e| slot.status != e) {
            return Err(SpoolError::Changed);
        }
        *slot = state;
        let done = entry.states.iter().all(|s| s.status.is_final());
        let segment = entry.loc.segment;
        if done {
            index.remove(&key);
        }
        drop(index);
        let send = |c| self.tx.send(c).map_err(|_| SpoolError::Stopped);
        let record = Record::Recipient {
            id: key,
            index: u32::try_from(recipient).unwrap_or(u32::MAX),
            state,
        };
        match event.and_then(|e| self.journaled(vec![e]).pop()) {
            Some(event) => send(Command::Update {
                record,
                event: Box::new(event),
            })?,
            None => send(Command::Record(record))?,
        }
        if done {
            send(Command::Done { id: key, segment })?;
        }
        Ok(done)
    }

    /// Stops the writer once everything sent before is written and synced,
    /// and waits for it. Later calls fail with `Stopped`.
    pub fn close(&self) {
        let _ = self.tx.send(Command::Stop);
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl EventJournal for Spool {
    fn release(&self, tickets: &[u64]) {
        if let Ok(mut kept) = self.unreleased.lock() {
            for t in tickets {
                kept.remove(t);
            }
        }
    }
}

#[async_trait]
impl DurableEvents for Spool {
    async fn record(&self, events: Vec<Event>) -> Result<(), String> {
        self.journal_events(events).await.map_err(|e| e.to_string())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.close();
    }
}
