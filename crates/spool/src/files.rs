//! The spool's directory: numbered data segments and journal files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::record::{DATA_HEADER, DATA_MAGIC, Location};

pub const DATA_DIR: &str = "data";
pub const JOURNAL_DIR: &str = "journal";
const DATA_EXT: &str = "seg";
const JOURNAL_EXT: &str = "jnl";

pub fn data_path(root: &Path, n: u32) -> PathBuf {
    root.join(DATA_DIR).join(format!("{n:08}.{DATA_EXT}"))
}

pub fn journal_path(root: &Path, n: u32) -> PathBuf {
    root.join(JOURNAL_DIR).join(format!("{n:08}.{JOURNAL_EXT}"))
}

/// The numbers of the files with extension `ext` in `dir`, ascending.
pub fn numbered(dir: &Path, ext: &str) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some(ext)
            && let Some(n) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub fn data_numbers(root: &Path) -> io::Result<Vec<u32>> {
    numbered(&root.join(DATA_DIR), DATA_EXT)
}

pub fn journal_numbers(root: &Path) -> io::Result<Vec<u32>> {
    numbered(&root.join(JOURNAL_DIR), JOURNAL_EXT)
}

/// Makes a directory entry durable: a new or removed file survives power
/// loss only once its directory is synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A new, empty file for appending (owner-only: it holds people's mail),
/// its directory entry synced.
pub fn create_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Open data segments for reading bodies, shared by every reader.
#[derive(Debug, Default)]
pub struct Segments {
    root: PathBuf,
    open: Mutex<HashMap<u32, Arc<File>>>,
}

impl Segments {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, n: u32) -> io::Result<Arc<File>> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| io::Error::other("segment cache poisoned"))?;
        if let Some(f) = open.get(&n) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(data_path(&self.root, n))?);
        open.insert(n, f.clone());
        Ok(f)
    }

    /// Forgets a segment about to be deleted.
    pub fn forget(&self, n: u32) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&n);
        }
    }

    /// Reads a body and checks it against its location's length and CRC.
    pub fn read(&self, loc: &Location) -> io::Result<Vec<u8>> {
        let file = self.file(loc.segment)?;
        let len = usize::try_from(loc.len).map_err(io::Error::other)?;
        let mut buf = vec![0; DATA_HEADER + len];
        file.read_exact_at(&mut buf, loc.offset)?;
        let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let stored_len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let body = buf.split_off(DATA_HEADER);
        if magic != DATA_MAGIC || stored_len != loc.len || crc32fast::hash(&body) != loc.crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("damaged body at segment {} offset {}", loc.segment, loc.offset),
            ));
        }
        Ok(body)
    }
}
