//! Configuration, loaded in two stages: [`raw::RawConfig`] mirrors the TOML
//! file (so serde reports unknown keys and wrong types with their place in
//! the file), then [`Config::from_raw`] checks every value and resolves
//! defaults that depend on others (the storage URL on the data dir, the host
//! name on the machine).

mod raw;
mod validated;

pub use raw::RawConfig;
pub use validated::{Config, LogFormat, redact_password as redact};

use std::path::{Path, PathBuf};

/// The commented config `herald config init` writes: every key with its
/// default. The same file is `herald.example.toml` at the repository root.
pub const TEMPLATE: &str = include_str!("../../../../herald.example.toml");

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_PATH: &str = "herald.toml";

/// Loads the config: `explicit` if given (it must exist), else
/// `./herald.toml` if present, else the embedded default.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let path = match explicit {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    };
    let raw = match &path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", p.display()))?;
            toml::from_str::<RawConfig>(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", p.display()))?
        }
        None => RawConfig::default(),
    };
    let config = Config::from_raw(raw).map_err(|e| match &path {
        Some(p) => anyhow::anyhow!("config {}: {e}", p.display()),
        None => anyhow::anyhow!("config: {e}"),
    })?;
    Ok((config, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_exactly_the_defaults() {
        let from_template: RawConfig = toml::from_str(TEMPLATE).expect("the template parses");
        assert_eq!(from_template, RawConfig::default());
    }

    #[test]
    fn the_template_documents_every_key() {
        // Every key the raw config knows appears, uncommented, in the template.
        let defaults = toml::Value::try_from(RawConfig::default()).expect("serialises");
        let template: toml::Value = toml::from_str(TEMPLATE).expect("parses");
        for (section, keys) in defaults.as_table().expect("table") {
            let Some(keys) = keys.as_table() else {
                // A top-level list ([[response_rules]], [[destinations]]).
                assert!(
                    template.get(section).is_some(),
                    "{section} is missing from herald.example.toml"
                );
                continue;
            };
            for key in keys.keys() {
                assert!(
                    template.get(section).and_then(|s| s.get(key)).is_some(),
                    "[{section}] {key} is missing from herald.example.toml"
                );
            }
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let err = toml::from_str::<RawConfig>("[http]\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_addr"), "{err}");
        let err = toml::from_str::<RawConfig>("[http]\ntls = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("tls") && err.contains("bool"), "{err}");
    }
}
