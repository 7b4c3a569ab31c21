//! The one thread that writes the spool: group commit.
//!
//! It takes every command waiting in its channel, writes all their bytes
//! with one `write` per file, makes them durable with one `fdatasync` per
//! file, and only then answers each command. Sessions that arrive while a
//! sync runs wait for the next one together, so under load one sync serves
//! many messages and throughput is not bound to the disk's sync latency.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use herald_types::{Envelope, Event, EventSink};
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
/// Bodies this large are written from where they are rather than copied
/// into the batch's buffer: a large message is in memory once.
const COPY_LIMIT: usize = 256 * 1024;

/// An event to journal: its ticket, the event itself (handed to the sink
/// once durable) and its JSON (what the journal keeps).
pub struct Journaled {
    pub seq: u64,
    pub event: Event,
    pub json: Vec<u8>,
}

/// Journaled events not yet released by the sink, by ticket: rewritten at
/// every checkpoint, replayed after a crash.
pub type Unreleased = Arc<Mutex<BTreeMap<u64, Arc<[u8]>>>>;

pub enum Command {
    Enqueue {
        id: [u8; 16],
        envelope: Arc<Envelope>,
        body: Vec<u8>,
        /// Events journaled with the message (its `accepted` events).
        events: Vec<Journaled>,
        /// Every recipient starts `Held` instead of `Pending`.
        held: bool,
        ack: oneshot::Sender<Result<(), SpoolError>>,
    },
    /// A recipient's new state: durable with the next sync, no answer.
    Record(Record),
    /// A recipient's new state and the event that records it, durable
    /// together with the next sync, no answer.
    Update { record: Record, event: Box<Journaled> },
    /// Events alone; answered once durable when `ack` is given.
    Events {
        events: Vec<Journaled>,
        ack: Option<oneshot::Sender<Result<(), SpoolError>>>,
    },
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
    /// Where journaled events go once durable.
    pub sink: Option<Arc<dyn EventSink>>,
    pub unreleased: Unreleased,
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
                // A clean stop leaves a compact journal: the live queue and
                // the events the pipeline has not released.
                if self.failed.is_none()
                    && let Err(e) = self.checkpoint()
                {
                    tracing::warn!(error = %e, "spool checkpoint at stop failed; the next start reads the whole journal");
                }
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
        // Large bodies, each with where in `data_buf` it goes.
        let mut large: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut large_bytes = 0u64;
        // Events of changes that happened whatever the disk does (outcomes),
        // and events of changes a caller waits for (acceptances): the
        // latter are dropped with their refusal when a write fails.
        let mut events: Vec<Journaled> = Vec::new();
        let mut acked_events: Vec<Journaled> = Vec::new();
        for cmd in batch {
            match cmd {
                Command::Enqueue {
                    id,
                    envelope,
                    body,
                    events: journaled,
                    held,
                    ack,
                } => {
                    if let Some(why) = &self.failed {
                        let _ = ack.send(Err(SpoolError::Failed(why.clone())));
                        continue;
                    }
                    let offset = self.data_len + data_buf.len() as u64 + large_bytes;
                    let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX);
                    let crc = if body.len() >= COPY_LIMIT {
                        let crc = record::encode_data_header(&body, data_buf);
                        large_bytes += body.len() as u64;
                        large.push((data_buf.len(), body));
                        crc
                    } else {
                        record::encode_data(&body, data_buf)
                    };
                    let loc = Location {
                        segment: self.data_no,
                        offset,
                        len: body_len,
                        crc,
                    };
                    let at = state::to_ms(envelope.received_at);
                    let one = if held { RcptState::held(at) } else { RcptState::new(at) };
                    let states = vec![one; envelope.recipients.len()];
                    record::encode_message_parts(id, loc, &envelope, &states, journal_buf);
                    for e in &journaled {
                        record::encode_event(e.seq, &e.json, journal_buf);
                    }
                    acked_events.extend(journaled);
                    *self.live.entry(self.data_no).or_default() += 1;
                    inserts.push((id, Entry { loc, envelope, states }));
                    acks.push(ack);
                }
                Command::Record(r) => r.encode_into(journal_buf),
                Command::Update { record, event } => {
                    record.encode_into(journal_buf);
                    record::encode_event(event.seq, &event.json, journal_buf);
                    events.push(*event);
                }
                Command::Events { events: journaled, ack } => {
                    if let Some(why) = &self.failed {
                        match ack {
                            // The caller hears the failure and decides.
                            Some(ack) => {
                                let _ = ack.send(Err(SpoolError::Failed(why.clone())));
                            }
                            None => self.emit_unjournaled(journaled),
                        }
                        continue;
                    }
                    for e in &journaled {
                        record::encode_event(e.seq, &e.json, journal_buf);
                    }
                    if ack.is_some() {
                        acked_events.extend(journaled);
                    } else {
                        events.extend(journaled);
                    }
                    acks.extend(ack);
                }
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
            self.write_and_sync(data_buf, &large, journal_buf)
        };
        drop(large);
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
                acked_events.extend(events);
                self.hand_over(acked_events);
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
                // Outcomes that happened (deliveries) are still told, just
                // not journaled; acceptances that failed were refused above
                // and their events never reach here.
                self.emit_unjournaled(events);
            }
        }
    }

    /// Durable events go to the sink with their tickets, and are kept
    /// until released: inserted first, so a release can never come before.
    fn hand_over(&self, events: Vec<Journaled>) {
        if events.is_empty() {
            return;
        }
        if let Ok(mut kept) = self.unreleased.lock() {
            for e in &events {
                kept.insert(e.seq, Arc::from(e.json.as_slice()));
            }
        }
        if let Some(sink) = &self.sink {
            for e in events {
                sink.emit_journaled(e.event, e.seq);
            }
        }
    }

    fn emit_unjournaled(&self, events: Vec<Journaled>) {
        if let Some(sink) = &self.sink {
            for e in events {
                sink.emit(e.event);
            }
        }
    }

    /// Writes and syncs one group commit, timed for `/metrics`:
    /// `herald_spool_syncs_total`, `herald_spool_sync_duration_seconds` (the
    /// writes and every `fdatasync` of the batch) and
    /// `herald_spool_written_bytes_total`.
    fn write_and_sync(&mut self, data_buf: &[u8], large: &[(usize, Vec<u8>)], journal_buf: &[u8]) -> io::Result<()> {
        let started = std::time::Instant::now();
        let result = self.write_and_sync_untimed(data_buf, large, journal_buf);
        if result.is_ok() && !(data_buf.is_empty() && journal_buf.is_empty()) {
            let written = data_buf.len() + large.iter().map(|(_, b)| b.len()).sum::<usize>() + journal_buf.len();
            metrics::counter!("herald_spool_syncs_total").increment(1);
            metrics::counter!("herald_spool_written_bytes_total").increment(written as u64);
            metrics::histogram!("herald_spool_sync_duration_seconds").record(started.elapsed().as_secs_f64());
        }
        result
    }

    fn write_and_sync_untimed(
        &mut self,
        data_buf: &[u8],
        large: &[(usize, Vec<u8>)],
        journal_buf: &[u8],
    ) -> io::Result<()> {
        // Bodies first: a journal record must never be durable before the
        // body it points to. (A record whose body is missing after a crash
        // was never acknowledged; reading it fails its CRC and it is dropped.)
        if !data_buf.is_empty() {
            let mut at = 0;
            for (split, body) in large {
                self.data.write_all(&data_buf[at..*split])?;
                self.data.write_all(body)?;
                self.data_len += (split - at + body.len()) as u64;
                at = *split;
            }
            self.data.write_all(&data_buf[at..])?;
            self.data_len += (data_buf.len() - at) as u64;
            self.data.sync_data()?;
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
        let live = self.index.lock().map(|i| i.len() as u64).unwrap_or(0) * RECORD_ESTIMATE
            + self
                .unreleased
                .lock()
                .map(|u| u.values().map(|j| j.len() as u64 + 32).sum::<u64>())
                .unwrap_or(0);
        if self.journal_len >= self.options.checkpoint_bytes && self.journal_len >= 4 * live {
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
        // Events not yet released: a later crash must still replay them.
        let kept: Vec<(u64, Arc<[u8]>)> = self
            .unreleased
            .lock()
            .map_err(|_| io::Error::other("events poisoned"))?
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for chunk in kept.chunks(CHECKPOINT_CHUNK) {
            for (seq, json) in chunk {
                record::encode_event(*seq, json, &mut buf);
            }
            file.write_all(&buf)?;
            len += buf.len() as u64;
            buf.clear();
        }
        file.sync_data()?;
        Ok((file, len))
    }
}
