//! Logs via tracing to stderr: human-readable by default, JSON on request.
//! `RUST_LOG` overrides the configured level. Colours only on a terminal, so
//! captured logs stay greppable (`listening proto=http addr=…`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // sqlx logs every statement at info; only its warnings matter here.
        .add_directive("sqlx=warn".parse().unwrap_or_default());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// Panics are logged like everything else — one structured line with the
/// message and where it happened, never a raw backtrace on stderr — so a
/// bug hit by one client shows in the log collector, and says nothing to
/// the client. (Sessions catch their own panics and add the peer.)
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        tracing::error!(panic = %message, location = %location, thread = %thread, "a bug was hit; the task that hit it ended");
    }));
}
