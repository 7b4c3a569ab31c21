//! What `/metrics` is made of at the composition root: histogram buckets
//! for every latency the services record, and gauges sampled from state
//! no single event changes (the spool's depth and size on disk).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use herald_spool::Spool;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::sync::watch;

/// How often the sampled gauges are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Buckets of request, command and store latencies: a millisecond to a
/// minute.
const FAST: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of a message's time from acceptance to delivery: a second to
/// the five days a message may wait.
const DELIVERY: &[f64] = &[
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4.0 * 3600.0,
    12.0 * 3600.0,
    86400.0,
    3.0 * 86400.0,
    5.0 * 86400.0,
];

/// Every histogram rendered as a Prometheus histogram (buckets, `_sum`,
/// `_count`) so rates and quantiles aggregate across nodes.
pub fn buckets(builder: PrometheusBuilder) -> anyhow::Result<PrometheusBuilder> {
    Ok(builder
        .set_buckets(FAST)?
        .set_buckets_for_metric(Matcher::Full("herald_delivery_latency_seconds".into()), DELIVERY)?)
}

/// Keeps `herald_spool_messages` and `herald_spool_bytes` (the spool's
/// files on disk: data segments, journal, checkpoint) current until `stop`.
pub fn sample_spool(spool: Arc<Spool>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            metrics::gauge!("herald_spool_messages").set(spool.len() as f64);
            let root = spool.root().to_owned();
            if let Ok(bytes) = tokio::task::spawn_blocking(move || bytes_under(&root)).await {
                metrics::gauge!("herald_spool_bytes").set(bytes as f64);
            }
        }
    });
}

/// The size of the files in a folder and its subfolders.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
