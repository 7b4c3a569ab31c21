//! Rebuilding the queue from the journal after a stop or a crash.
//!
//! Only the journal is read (bodies stay on disk until delivery), in file
//! order; each file ends where its last whole, CRC-valid frame ends, which
//! after a crash is the last write that reached the kernel. Data segments
//! no live message points to are deleted.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::files;
use crate::record::Record;
use crate::{Entry, Index};

/// What recovery found.
#[derive(Debug, Default)]
pub struct Recovered {
    pub index: Index,
    /// Live messages per data segment.
    pub live: HashMap<u32, u32>,
    pub next_data: u32,
    pub next_journal: u32,
    /// Records that had a valid CRC but did not decode (a bug, or a file
    /// from another version), skipped.
    pub skipped: usize,
    /// Journaled events, by ticket: each may or may not have been stored
    /// before the stop, so each is replayed (the store keeps one copy).
    pub events: BTreeMap<u64, Vec<u8>>,
}

fn apply(out: &mut Recovered, record: Record) {
    let index = &mut out.index;
    match record {
        Record::Message {
            id,
            loc,
            envelope,
            states,
        } => {
            index.insert(
                id,
                Entry {
                    loc,
                    envelope: Arc::from(envelope),
                    states,
                },
            );
        }
        Record::Recipient { id, index: i, state } => {
            if let Some(entry) = index.get_mut(&id)
                && let Some(slot) = usize::try_from(i).ok().and_then(|i| entry.states.get_mut(i))
            {
                *slot = state;
            }
        }
        Record::Done { id } => {
            index.remove(&id);
        }
        Record::Event { seq, json } => {
            out.events.insert(seq, json);
        }
    }
}

pub fn recover(root: &Path) -> io::Result<Recovered> {
    // Owner-only folders: the spool holds people's mail.
    for dir in [files::DATA_DIR, files::JOURNAL_DIR] {
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(root.join(dir))?;
    }
    let mut out = Recovered::default();
    let journals = files::journal_numbers(root)?;
    for &n in &journals {
        let bytes = std::fs::read(files::journal_path(root, n))?;
        let mut at = 0;
        while at < bytes.len() {
            match crate::record::Record::decode_frame(&bytes[at..]) {
                Some((Ok(record), used)) => {
                    apply(&mut out, record);
                    at += used;
                }
                Some((Err(e), used)) => {
                    tracing::error!(journal = n, offset = at, error = %e, "skipping an undecodable journal record");
                    out.skipped += 1;
                    at += used;
                }
                None => {
                    tracing::warn!(
                        journal = n,
                        offset = at,
                        bytes = bytes.len() - at,
                        "journal ends in an incomplete record (a write cut off by a crash); ignoring it"
                    );
                    break;
                }
            }
        }
    }
    // A message whose recipients are all final but whose Done record was
    // lost is finished: it must not be sent again.
    out.index.retain(|_, e| e.states.iter().any(|s| !s.status.is_final()));
    for entry in out.index.values() {
        *out.live.entry(entry.loc.segment).or_default() += 1;
    }
    let segments = files::data_numbers(root)?;
    for &n in &segments {
        if !out.live.contains_key(&n) {
            std::fs::remove_file(files::data_path(root, n))?;
        }
    }
    out.next_data = segments.last().map_or(1, |n| n + 1);
    out.next_journal = journals.last().map_or(1, |n| n + 1);
    Ok(out)
}
