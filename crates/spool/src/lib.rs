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
//! Must never: answer an enqueue before its body and journal record are
//! synced; send a finished message again after a restart; panic on a torn
//! or damaged file.

mod codec;
mod files;
mod record;
mod recover;
mod state;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use herald_types::{Envelope, MessageId};
use tokio::sync::{mpsc, oneshot};

pub use record::Location;
pub use state::{RcptState, RcptStatus, from_ms, to_ms};

use crate::files::Segments;
use crate::record::Record;
use crate::writer::{Command, Writer};

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
}

fn lock(index: &Mutex<Index>) -> std::sync::MutexGuard<'_, Index> {
    // A panic while holding the lock cannot leave an entry half-written
    // (every change is a single insert, remove or assignment).
    index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Spool {
    /// Opens the spool in `root` (creating it), recovers the queue from the
    /// journal, writes a fresh checkpoint and starts the writer.
    pub fn open(root: &Path, options: SpoolOptions) -> Result<Self, SpoolError> {
        let open_err = |e: std::io::Error| SpoolError::Open(format!("{}: {e}", root.display()));
        let found = recover::recover(root).map_err(open_err)?;
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
        };
        writer.checkpoint().map_err(open_err)?;
        let recovered = lock(&index).len();
        if recovered > 0 || found.skipped > 0 {
            tracing::info!(messages = recovered, skipped = found.skipped, "spool recovered");
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
        })
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
        if envelope.recipients.is_empty() {
            return Err(SpoolError::Invalid("a message needs at least one recipient"));
        }
        if u32::try_from(body.len()).is_err() {
            return Err(SpoolError::Invalid("message larger than 4 GiB"));
        }
        let id = MessageId::generate();
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Command::Enqueue {
                id: id.to_bytes(),
                envelope: Arc::new(envelope),
                body,
                ack,
            })
            .map_err(|_| SpoolError::Stopped)?;
        done.await.map_err(|_| SpoolError::Stopped)??;
        Ok(id)
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
        let key = id.to_bytes();
        let mut index = lock(&self.index);
        let entry = index.get_mut(&key).ok_or(SpoolError::NotFound)?;
        let slot = entry.states.get_mut(recipient).ok_or(SpoolError::NotFound)?;
        *slot = state;
        let done = entry.states.iter().all(|s| s.status.is_final());
        let segment = entry.loc.segment;
        if done {
            index.remove(&key);
        }
        drop(index);
        let send = |c| self.tx.send(c).map_err(|_| SpoolError::Stopped);
        send(Command::Record(Record::Recipient {
            id: key,
            index: u32::try_from(recipient).unwrap_or(u32::MAX),
            state,
        }))?;
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

impl Drop for Spool {
    fn drop(&mut self) {
        self.close();
    }
}
