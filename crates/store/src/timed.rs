//! Store latency on the mail path, for `/metrics`:
//! `herald_store_operation_duration_seconds{operation,result}`, where
//! `operation` is one of the names the callers write (a fixed set: the
//! store calls made for every message, event batch or webhook post) and
//! `result` is `ok` or `error`.

use std::future::Future;

use crate::StoreResult;

/// Runs one store call and records how long it took.
pub async fn timed<T>(operation: &'static str, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!("herald_store_operation_duration_seconds", "operation" => operation, "result" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}
