//! The one thread that writes the spool: group commit.
//!
//! It takes every command waiting in its channel, writes all their bytes
//! with one `write` per file, makes them durable with one `fdatasync` per
//! file, and only then answers each command. Sessions that arrive while a
//! sync runs wait for the next one together, so under load one sync serves
//! many messages and throughput is not bound to the disk's sync latency.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use herald_types::Envelope;
use tokio::sync::{mpsc, oneshot};

use crate::files::{self, Segments};
use crate::record::{self, Location, Record};
use crate::state::{self, RcptState};
use crate::{Entry, Index, SpoolError, SpoolOptions};

/// At most this many commands share one sync: a bound on the latency the
/// first of them sees.
const MAX_BATCH: usize = 4096;
/// A checkpoint serialises this many entries per hold of the index lock, so
/// the API is never blocked for long.
const CHECKPOINT_CHUNK: usize = 4096;
/// Rough size of one live message's record, to decide when the journal has
/// grown enough beyond the live state to be worth rewriting.
const RECORD_ESTIMATE: u64 = 256;

pub enum Command {
    Enqueue {
        id: [u8; 16],
        envelope: Arc<Envelope>,
        body: Vec<u8>,
        ack: oneshot::Sender<Result<(), SpoolError>>,
    },
    /// A recipient's new state: durable with the next sync, no answer.
    Record(Record),
    /// The message left the queue; its segment may be freed.
    Done { id: [u8; 16], segment: u32 },
    /// Answers once everything sent before it is durable.
    Sync(oneshot::Sender<Result<(), SpoolError>>),
    /// Finish this batch, then stop.
    Stop,
}

pub struct Writer {
    pub root: PathBuf,
    pub stats: Arc<crate::SpoolStats>,
    pub options: SpoolOptions,
    pub index: Arc<Mutex<Index>>,
    pub segments: Arc<Segments>,
    pub data: File,
    pub data_no: u32,
    pub data_len: u64,
    pub journal: File,
    pub journal_no: u32,
    pub journal_len: u64,
    /// Live messages per data segment; a segment at zero is deleted.
    pub live: HashMap<u32, u32>,
    /// Set after a failed write or sync. The page cache can no longer be
    /// trusted to match the disk (a failed fsync may drop dirty pages), so
    /// the spool refuses new mail rather than acknowledge what it may lose.
    pub failed: Option<String>,
}

impl Writer {
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut data_buf = Vec::with_capacity(1 << 20);
        let mut journal_buf = Vec::with_capacity(1 << 16);
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let stop = batch.iter().any(|c| matches!(c, Command::Stop));
            self.process(batch, &mut data_buf, &mut journal_buf);
            data_buf.clear();
            journal_buf.clear();
            if stop {
                break;
            }
        }
        // Commands sent after this point find the channel closed (Stopped).
    }

    fn fail(&mut self, what: &str, e: &io::Error) {
        let message = format!("{what}: {e}");
        tracing::error!(error = %message, "spool write failed; refusing new mail until restart");
        self.failed = Some(message);
    }

    fn process(&mut self, batch: Vec<Command>, data_buf: &mut Vec<u8>, journal_buf: &mut Vec<u8>) {
        if self.failed.is_none()
            && self.data_len >= self.options.segment_bytes
            && let Err(e) = self.rotate_data()
        {
            self.fail("new data segment", &e);
        }
        let mut acks = Vec::new();
        let mut inserts = Vec::new();
        let mut freed = Vec::new();
        for cmd in batch {
            match cmd {
                Command::Enqueue {
                    id,
                    envelope,
                    body,
                    ack,
                } => {
                    if let Some(why) = &self.failed {
                        let _ = ack.send(Err(SpoolError::Failed(why.clone())));
                        continue;
                    }
                    let offset = self.data_len + data_buf.len() as u64;
                    let crc = record::encode_data(&body, data_buf);
                    let loc = Location {
                        segment: self.data_no,
                        offset,
                        len: u32::try_from(body.len()).unwrap_or(u32::MAX),
                        crc,
                    };
                    let states = vec![RcptState::new(state::to_ms(envelope.received_at)); envelope.recipients.len()];
                    record::encode_message_parts(id, loc, &envelope, &states, journal_buf);
                    *self.live.entry(self.data_no).or_default() += 1;
                    inserts.push((id, Entry { loc, envelope, states }));
                    acks.push(ack);
                }
                Command::Record(r) => r.encode_into(journal_buf),
                Command::Done { id, segment } => {
                    Record::Done { id }.encode_into(journal_buf);
                    if let Some(n) = self.live.get_mut(&segment) {
                        *n = n.saturating_sub(1);
                        if *n == 0 && segment != self.data_no {
                            self.live.remove(&segment);
                            freed.push(segment);
                        }
                    }
                }
                Command::Sync(ack) => acks.push(ack),
                Command::Stop => {}
            }
        }
        let outcome = if self.failed.is_some() {
            Err(io::Error::other("spool failed earlier"))
        } else {
            self.write_and_sync(data_buf, journal_buf)
        };
        match outcome {
            Ok(()) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.stats.batches.fetch_add(1, Relaxed);
                self.stats.enqueued.fetch_add(inserts.len() as u64, Relaxed);
                if let Ok(mut index) = self.index.lock() {
                    index.extend(inserts);
                }
                // Freed before answering, so whoever waited on this batch
                // sees the spool settled.
                self.free_segments(&freed);
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                if let Err(e) = self.maybe_checkpoint() {
                    tracing::warn!(error = %e, "spool checkpoint failed; the journal keeps growing until one succeeds");
                }
            }
            Err(e) => {
                if self.failed.is_none() {
                    self.fail("write", &e);
                }
                let why = self.failed.clone().unwrap_or_default();
                for ack in acks {
                    let _ = ack.send(Err(SpoolError::Failed(why.clone())));
                }
            }
        }
    }

    fn write_and_sync(&mut self, data_buf: &[u8], journal_buf: &[u8]) -> io::Result<()> {
        // Bodies first: a journal record must never be durable before the
        // body it points to. (A record whose body is missing after a crash
        // was never acknowledged; reading it fails its CRC and it is dropped.)
        if !data_buf.is_empty() {
            self.data.write_all(data_buf)?;
            self.data.sync_data()?;
            self.data_len += data_buf.len() as u64;
        }
        if !journal_buf.is_empty() {
            self.journal.write_all(journal_buf)?;
            self.journal.sync_data()?;
            self.journal_len += journal_buf.len() as u64;
        }
        Ok(())
    }

    fn rotate_data(&mut self) -> io::Result<()> {
        let next = self.data_no + 1;
        let file = files::create_append(&files::data_path(&self.root, next))?;
        let old = self.data_no;
        self.data = file;
        self.data_no = next;
        self.data_len = 0;
        // A segment with nothing live left can go as soon as it stops being
        // the head.
        if self.live.get(&old).copied().unwrap_or(0) == 0 {
            self.live.remove(&old);
            self.free_segments(&[old]);
        }
        Ok(())
    }

    fn free_segments(&mut self, freed: &[u32]) {
        for &n in freed {
            self.segments.forget(n);
            match std::fs::remove_file(files::data_path(&self.root, n)) {
                Ok(()) => tracing::debug!(segment = n, "spool segment freed"),
                Err(e) => tracing::warn!(segment = n, error = %e, "cannot delete a finished spool segment"),
            }
        }
    }

    fn maybe_checkpoint(&mut self) -> io::Result<()> {
        let live = self.index.lock().map(|i| i.len() as u64).unwrap_or(0);
        if self.journal_len >= self.options.checkpoint_bytes && self.journal_len >= 4 * live * RECORD_ESTIMATE {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Writes every live message, with its current state, to a new journal
    /// file; once that is durable, the older journal files are deleted.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        let next = self.journal_no + 1;
        let path = files::journal_path(&self.root, next);
        let result = self.write_snapshot(&path);
        let (file, len) = match result {
            Ok(done) => done,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        self.journal = file;
        self.journal_no = next;
        self.journal_len = len;
        for n in files::journal_numbers(&self.root)? {
            if n < next {
                std::fs::remove_file(files::journal_path(&self.root, n))?;
            }
        }
        files::sync_dir(&self.root.join(files::JOURNAL_DIR))?;
        tracing::debug!(journal = next, bytes = len, "spool checkpoint");
        Ok(())
    }

    fn write_snapshot(&self, path: &std::path::Path) -> io::Result<(File, u64)> {
        let mut file = files::create_append(path)?;
        let ids: Vec<[u8; 16]> = self
            .index
            .lock()
            .map_err(|_| io::Error::other("index poisoned"))?
            .keys()
            .copied()
            .collect();
        let mut buf = Vec::with_capacity(1 << 20);
        let mut len = 0u64;
        for chunk in ids.chunks(CHECKPOINT_CHUNK) {
            {
                let index = self.index.lock().map_err(|_| io::Error::other("index poisoned"))?;
                for id in chunk {
                    // Gone since the ids were taken: its Done record follows
                    // in this new journal.
                    if let Some(e) = index.get(id) {
                        record::encode_message_parts(*id, e.loc, &e.envelope, &e.states, &mut buf);
                    }
                }
            }
            file.write_all(&buf)?;
            len += buf.len() as u64;
            buf.clear();
        }
        file.sync_data()?;
        Ok((file, len))
    }
}
