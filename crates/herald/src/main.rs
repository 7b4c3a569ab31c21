//! `herald`: the binary and the composition root. It loads the config, picks
//! the concrete store, and wires the services; nothing below it names a
//! backend.

mod api_cmd;
mod cli;
mod client;
mod commands;
mod config;
mod dmarc_cmd;
mod domain_cmd;
mod events_cmd;
mod logging;
mod metrics;
mod monitor_cmd;
mod output;
mod private_files;
mod queue_cmd;
mod queue_control;
mod retention;
mod rules_cmd;
mod secret;
mod send_cmd;
mod serve;
mod suppression_cmd;
mod tls;

use std::process::ExitCode;

/// mimalloc rather than the system allocator: reading mail allocates many
/// short strings, and with glibc's malloc the bounce classifier spent a
/// fifth of its instructions in it (criterion, `herald-bounces`: +15-20%
/// messages/s with mimalloc on the same machine).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use herald_accounts::Accounts;

use crate::cli::{CheckCommand, Cli, Command, ConfigCommand};
use crate::config::LogFormat;

fn main() -> ExitCode {
    // Before any file is made: the store, spool and keys are owner-only.
    private_files::owner_only_umask();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            output::note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::note(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // One TLS provider for the whole process (ring), before anything uses TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();

    if let Command::Config(ConfigCommand::Init { path, force }) = &cli.command {
        return config_init(path, *force);
    }
    let (config, path) = config::load(cli.config.as_deref())?;
    let log_format = match &cli.log_format {
        Some(f) => LogFormat::parse(f).ok_or_else(|| anyhow::anyhow!("--log-format {f:?}: expected text or json"))?,
        None => config.log_format,
    };
    // The server logs at its configured level; one-shot commands only warn,
    // so their output is what they print.
    let level = if matches!(cli.command, Command::Serve) {
        config.log_level.as_str()
    } else {
        "warn"
    };
    logging::init(log_format, level);
    logging::log_panics();

    match cli.command {
        Command::Serve => serve::run(config).await,
        Command::Config(ConfigCommand::Check) => {
            let source = path.map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
            output::note(&format!("config OK ({source}); effective values:"));
            output::line(&config.to_toml());
            Ok(())
        }
        Command::Config(ConfigCommand::Init { .. }) => Ok(()),
        Command::Account(cmd) => commands::account(&open(&config).await?, cmd, cli.json).await,
        Command::ApiKey(cmd) => commands::api_key(&open(&config).await?, cmd, cli.json).await,
        Command::SmtpCredential(cmd) => commands::smtp_credential(&open(&config).await?, cmd, cli.json).await,
        Command::User(cmd) => commands::user(&open(&config).await?, cmd, cli.json).await,
        Command::Sender(cmd) => commands::sender(&open(&config).await?, cmd, cli.json).await,
        Command::Domain(cmd) => domain_cmd::run(&config, &open(&config).await?, cmd, cli.json).await,
        Command::Events(args) => events_cmd::run(&open(&config).await?, args, cli.json).await,
        Command::Queue(args) => queue_cmd::run(&config, args, cli.json).await,
        Command::Send(args) => send_cmd::run(&config, *args, cli.json).await,
        Command::Suppression(cmd) => suppression_cmd::run(&open(&config).await?, cmd, cli.json).await,
        Command::Feedback(cmd) => suppression_cmd::feedback(cmd, cli.json),
        Command::Stats(args) => events_cmd::stats(&open(&config).await?, args, cli.json).await,
        Command::Dmarc(cmd) => dmarc_cmd::run(&config, &open(&config).await?, cmd, cli.json).await,
        Command::Retention(cli::RetentionCommand::Run) => {
            retention::command(open(&config).await?.store().as_ref(), &config.retention, cli.json).await
        }
        Command::Check(CheckCommand::Blocklists { target }) => {
            monitor_cmd::check(&config, &open(&config).await?, &target, cli.json).await
        }
        Command::Blocklists(cmd) => monitor_cmd::blocklists(&config, &open(&config).await?, cmd, cli.json).await,
        Command::Alerts(cmd) => monitor_cmd::alerts(&open(&config).await?, cmd, cli.json).await,
        Command::Check(CheckCommand::Senders) => commands::check_senders(&open(&config).await?, cli.json).await,
        Command::Check(cmd) => dmarc_cmd::check(&config, &open(&config).await?, cmd, cli.json).await,
        Command::Rules(cmd) => rules_cmd::run(&config, cmd, cli.json),
        Command::Webhook(args) => api_cmd::webhook(&config, args, cli.json).await,
        Command::Message(args) => api_cmd::message(&config, args, cli.json).await,
        Command::Reputation(args) => api_cmd::reputation(&config, args, cli.json).await,
        Command::Health(args) => api_cmd::health(&config, args, cli.json).await,
        Command::Metrics(args) => api_cmd::metrics(&config, args).await,
        Command::Openapi => output::json(&herald_http::openapi()),
    }
}

async fn open(config: &config::Config) -> anyhow::Result<Accounts> {
    let store = herald_store_sql::open(&config.storage_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", config::redact(&config.storage_url)))?;
    let outbound = std::sync::Arc::new(herald_outbound::Policy::new(config.outbound_allow.clone()));
    let secret = secret::load_or_create(&config.secret_file)?;
    Ok(Accounts::new(store)
        .with_outbound(outbound)
        .with_platform_secret(&secret)
        .with_change_signal(config.data_dir.join(serve::ACCOUNT_SIGNAL_FILE)))
}

fn config_init(path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} exists; use --force to replace it", path.display());
    }
    std::fs::write(path, config::TEMPLATE).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    output::note(&format!("wrote {}", path.display()));
    Ok(())
}
