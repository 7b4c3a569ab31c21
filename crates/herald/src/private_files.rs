//! Herald's files are the owner's alone: the store (people's addresses,
//! events), the spool (their mail), the platform secret, TLS keys, the
//! operator's mailboxes. Every file Herald creates is made with a 0077
//! umask (files 0600, folders 0700), and at start the data folder and the
//! SQLite files are brought to that, for installations made before.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// From now on, files this process creates are owner-only.
pub fn owner_only_umask() {
    let _ = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Makes every file under `dir` 0600 and every folder 0700 (links are left
/// alone). Errors are logged: a file Herald cannot chmod is one it does not
/// own, which the operator should hear about but not be stopped by.
pub fn tighten(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.permissions().mode() & 0o777 != mode
        && let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
    {
        tracing::warn!(path = %dir.display(), error = %e, "cannot make a data file owner-only");
    }
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            tighten(&entry.path());
        }
    }
}

/// The SQLite files of a `sqlite://` store URL (the database, its WAL and
/// shared-memory files), made owner-only.
pub fn tighten_sqlite(url: &str) {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return;
    };
    let path = path.split('?').next().unwrap_or(path);
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        if Path::new(&file).exists() {
            tighten(Path::new(&file));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_data_folder_becomes_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("spool/journal");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("00000001.jnl"), b"x").unwrap();
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(sub.join("00000001.jnl"), std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten(dir.path());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&sub.join("00000001.jnl")), 0o600);
    }
}
