//! The operator's mailboxes: mail to `postmaster@` and `abuse@` (RFC 5321
//! §4.5.1 requires the first; RFC 2142 expects the second), kept as one
//! file per message under `<data_dir>/mailbox/<name>/`, owner-only, synced
//! before the sender hears `250`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The mailboxes kept for the operator.
pub const OPERATOR_MAILBOXES: [&str; 2] = ["postmaster", "abuse"];

/// Writes `body` as a new file in `dir/<mailbox>/`, durably: a temporary
/// file synced, renamed into place, and the folder synced. Blocking.
pub fn keep(dir: &Path, mailbox: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    let folder = dir.join(mailbox);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&folder)?;
    let now = time::OffsetDateTime::now_utc();
    let name = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}.eml",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        uuid_like()
    );
    let tmp = folder.join(format!(".{name}.tmp"));
    let path = folder.join(&name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(&folder)?.sync_all()?;
    Ok(path)
}

/// A unique name part: a fresh message id's hex.
fn uuid_like() -> String {
    herald_types::MessageId::generate().to_string()
}
