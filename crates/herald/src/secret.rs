//! The platform secret: 32 random bytes, kept as 64 hex characters in a
//! file only its owner reads. Everything Herald signs or seals derives its
//! key from it; nodes that share a database must share this file.

use std::path::Path;

use anyhow::{Context, bail};

/// Bytes of secret.
const LEN: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() != LEN * 2 {
        return None;
    }
    (0..LEN)
        .map(|i| u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect()
}

/// Reads the secret, making it first if the file does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(text) => match unhex(&text) {
            Some(secret) => Ok(secret),
            None => bail!(
                "{} does not hold a platform secret ({} hex characters)",
                path.display(),
                LEN * 2
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = vec![0u8; LEN];
            getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for the platform secret: {e}"))?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            crate::tls::write_private(path, format!("{}\n", hex(&secret)).as_bytes())?;
            tracing::info!(file = %path.display(), "made the platform secret");
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the platform secret {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(&path).unwrap(), first);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, "too short").unwrap();
        assert!(load_or_create(&path).is_err());
    }
}
