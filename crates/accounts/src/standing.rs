//! Whether an account may send: read for every message (at `MAIL FROM`,
//! before every delivery attempt), so it must cost little, and a change must
//! count at once, whichever process made it.
//!
//! Main design decision: accounts' standings are remembered, and every
//! change of status (suspend, reactivate, promote, delete) — by the CLI or
//! the server — writes a fresh random token to a signal file in the data
//! folder after it is stored. A remembered standing is used only while the
//! token is the one read before the standing was read from the store, so
//! the first look after a change reads the store again; reading a small
//! file costs microseconds, a store round trip a thread hop. Without a
//! signal file (tests, a store shared with other hosts) nothing is
//! remembered for long: a standing is used for at most [`TTL`] in any case.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_store::{Account, Store};
use herald_types::AccountId;

use crate::AccountsResult;

/// The longest a remembered standing is used, whatever the signal says: a
/// change the signal does not announce (another host sharing the store)
/// counts within this time.
pub const TTL: Duration = Duration::from_secs(5);
/// Past this many remembered accounts the memory starts afresh.
const LIMIT: usize = 100_000;

/// An account's standing.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// It and its brand's master are active.
    Active(Box<Account>),
    /// It, or its master (named here), is suspended.
    Suspended(String),
    /// No such account (deleted).
    Missing,
}

type Entry = (Instant, Vec<u8>, Standing);

/// Remembered standings and the signal that ends them.
#[derive(Debug, Default)]
pub(crate) struct Standings {
    signal: Option<PathBuf>,
    entries: Mutex<HashMap<AccountId, Entry>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Standings {
    pub(crate) fn with_signal(signal: PathBuf) -> Self {
        Self {
            signal: Some(signal),
            entries: Mutex::default(),
        }
    }

    /// The signal's token now; `None` when there is no signal or it cannot
    /// be read (nothing is remembered then). A missing file is a token too.
    fn token(&self) -> Option<Vec<u8>> {
        let path = self.signal.as_ref()?;
        match std::fs::read(path) {
            Ok(token) => Some(token),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Vec::new()),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the account change signal");
                None
            }
        }
    }

    pub(crate) async fn get(&self, store: &dyn Store, id: &AccountId) -> AccountsResult<Standing> {
        let token = self.token();
        if let Some(token) = &token {
            let known = lock(&self.entries)
                .get(id)
                .filter(|(at, seen, _)| seen == token && at.elapsed() < TTL)
                .map(|(_, _, s)| s.clone());
            if let Some(standing) = known {
                return Ok(standing);
            }
        }
        let standing = read(store, id).await?;
        if let Some(token) = token {
            let mut entries = lock(&self.entries);
            if entries.len() >= LIMIT {
                entries.clear();
            }
            entries.insert(id.clone(), (Instant::now(), token, standing.clone()));
        }
        Ok(standing)
    }

    /// Announces a change: a fresh token, written whole (a temporary file
    /// renamed over the signal) so a reader never sees half of one.
    pub(crate) fn announce(&self) {
        let Some(path) = &self.signal else {
            return;
        };
        // This process's own memory is fresh at once.
        lock(&self.entries).clear();
        if path.parent().is_some_and(|folder| !folder.is_dir()) {
            // No data folder here: no server runs on it to be told.
            return;
        }
        let mut token = [0u8; 16];
        if getrandom::fill(&mut token).is_err() {
            // Not random, but still different from the token before.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            token = now.to_le_bytes();
        }
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        let temporary = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::write(&temporary, hex).and_then(|()| std::fs::rename(&temporary, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            tracing::warn!(file = %path.display(), error = %e,
                "cannot announce an account change; a running server sees it within {} s", TTL.as_secs());
        }
    }
}

/// The standing as the store has it now.
async fn read(store: &dyn Store, id: &AccountId) -> AccountsResult<Standing> {
    let Some(account) = store.account_by_id(id).await? else {
        return Ok(Standing::Missing);
    };
    if !account.is_active() {
        return Ok(Standing::Suspended(account.name.to_string()));
    }
    if let Some(parent) = account.parent_id() {
        match store.account_by_id(parent).await? {
            Some(master) if master.is_active() => {}
            Some(master) => return Ok(Standing::Suspended(master.name.to_string())),
            // A sub whose master is gone may not send.
            None => return Ok(Standing::Suspended(account.name.to_string())),
        }
    }
    Ok(Standing::Active(Box::new(account)))
}
