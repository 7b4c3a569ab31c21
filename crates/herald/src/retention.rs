//! `[retention]`: old history is deleted daily (and by `herald retention
//! run`), so the store grows with the window, not with the years. Stats
//! rollups stay: they are what the pruned events became.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{Prunable, Store};

use crate::output;

/// How often the server prunes; the first run comes shortly after start.
const EVERY: Duration = Duration::from_secs(24 * 3600);
const FIRST_AFTER: Duration = Duration::from_secs(60);

/// How long each kind of history is kept; `None` keeps it forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub keep: Vec<(Prunable, Option<Duration>)>,
}

/// Prunes everything past its window; how many rows of each went.
pub async fn run_once(store: &dyn Store, retention: &Retention) -> anyhow::Result<Vec<(Prunable, u64)>> {
    run_showing(store, retention, &indicatif::ProgressBar::hidden()).await
}

/// [`run_once`], each kind a step of `bar`.
async fn run_showing(
    store: &dyn Store,
    retention: &Retention,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<(Prunable, u64)>> {
    let now = time::OffsetDateTime::now_utc();
    let mut done = Vec::new();
    bar.set_length(retention.keep.len() as u64 + 1);
    for (what, keep) in &retention.keep {
        bar.set_message(what.as_str());
        bar.inc(1);
        let Some(keep) = keep else { continue };
        let before = now - *keep;
        let n = store.prune(*what, before).await?;
        if n > 0 {
            tracing::info!(what = what.as_str(), deleted = n, "retention");
        }
        done.push((*what, n));
    }
    // Dashboard sessions idle past their limit: refused already, deleted
    // here so the table holds live sessions only.
    bar.set_message("sessions");
    bar.inc(1);
    let idle = time::Duration::try_from(herald_accounts::users::SESSION_IDLE)?;
    let ended = store.prune_sessions(now - idle).await?;
    if ended > 0 {
        tracing::info!(deleted = ended, "idle dashboard sessions");
    }
    Ok(done)
}

/// The server's daily run.
pub fn spawn_daily(store: Arc<dyn Store>, retention: Retention, mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut wait = FIRST_AFTER;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = run_once(store.as_ref(), &retention).await {
                tracing::warn!(error = %e, "retention run failed; trying again at the next one");
            }
            wait = EVERY;
        }
    });
}

/// `herald retention run`.
pub async fn command(store: &dyn Store, retention: &Retention, json: bool) -> anyhow::Result<()> {
    let bar = output::progress(Some(retention.keep.len() as u64 + 1), "kinds", json);
    let done = run_showing(store, retention, &bar).await;
    bar.finish_and_clear();
    let done = done?;
    if json {
        let map: serde_json::Map<String, serde_json::Value> =
            done.iter().map(|(w, n)| (w.as_str().to_owned(), (*n).into())).collect();
        output::json(&map)
    } else {
        for (what, n) in done {
            output::line(&format!("{}: {n} deleted", what.as_str()));
        }
        Ok(())
    }
}
