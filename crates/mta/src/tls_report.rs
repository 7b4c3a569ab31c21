//! What TLS-RPT (RFC 8460) reports: per day and recipient domain, the
//! policy applied (`sts` or `no-policy-found`), how many sessions succeeded
//! and how many failed, by result type and MX host.
//!
//! Kept per UTC day in memory and in `<data_dir>/tls-rpt.json` (saved with
//! the warm-up counts, every few seconds), at most the last 8 days; each
//! day reads as the `policies` array of an RFC 8460 report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Days kept.
const DAYS: usize = 8;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Entry {
    policy_type: String,
    /// The policy as fetched, for `policy-string` (MTA-STS: its lines).
    policy_string: Vec<String>,
    mx_host: Vec<String>,
    success: u64,
    /// "result|mx" → count.
    failures: BTreeMap<String, u64>,
}

/// The counts.
#[derive(Debug, Default)]
pub struct TlsReports {
    /// day (YYYY-MM-DD) → domain → entry.
    days: Mutex<BTreeMap<String, BTreeMap<String, Entry>>>,
    file: Option<PathBuf>,
    dirty: AtomicBool,
}

/// The policy a session was made under.
#[derive(Debug, Clone)]
pub struct Applied {
    pub domain: String,
    /// `sts`, or `no-policy-found`.
    pub policy_type: &'static str,
    pub policy_string: Vec<String>,
    pub mx_host: Vec<String>,
}

fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl TlsReports {
    pub fn new(file: Option<PathBuf>) -> Self {
        let days = file
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Self {
            days: Mutex::new(days),
            file,
            dirty: AtomicBool::new(false),
        }
    }

    fn entry<R>(&self, applied: &Applied, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut days = lock(&self.days);
        let day = days.entry(today()).or_default();
        let e = day.entry(applied.domain.to_ascii_lowercase()).or_insert_with(|| Entry {
            policy_type: applied.policy_type.to_owned(),
            policy_string: applied.policy_string.clone(),
            mx_host: applied.mx_host.clone(),
            ..Entry::default()
        });
        if e.policy_type != applied.policy_type {
            e.policy_type = applied.policy_type.to_owned();
            e.policy_string = applied.policy_string.clone();
            e.mx_host = applied.mx_host.clone();
        }
        let r = f(e);
        while days.len() > DAYS {
            days.pop_first();
        }
        self.dirty.store(true, Ordering::Relaxed);
        r
    }

    pub fn success(&self, applied: &Applied) {
        self.entry(applied, |e| e.success += 1);
    }

    /// A failed session: RFC 8460's result type and the MX host.
    pub fn failure(&self, applied: &Applied, result: &str, mx: &str) {
        metrics::counter!("herald_tls_failures_total", "policy" => applied.policy_type, "result" => result.to_owned())
            .increment(1);
        self.entry(applied, |e| {
            *e.failures
                .entry(format!("{result}|{}", mx.to_ascii_lowercase()))
                .or_default() += 1;
        });
    }

    pub fn save(&self) {
        let Some(path) = &self.file else { return };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let Ok(json) = serde_json::to_vec(&*lock(&self.days)) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .is_err()
        {
            tracing::warn!(path = %path.display(), "cannot save the TLS report counts");
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// A day's `policies`, as RFC 8460 §4.4 writes them.
    pub fn policies(&self, day: &str) -> Vec<serde_json::Value> {
        let days = lock(&self.days);
        let Some(domains) = days.get(day) else {
            return Vec::new();
        };
        domains
            .iter()
            .map(|(domain, e)| {
                let failed: u64 = e.failures.values().sum();
                let details: Vec<serde_json::Value> = e
                    .failures
                    .iter()
                    .map(|(k, n)| {
                        let (result, mx) = k.split_once('|').unwrap_or((k.as_str(), ""));
                        serde_json::json!({
                            "result-type": result,
                            "receiving-mx-hostname": mx,
                            "failed-session-count": n,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "policy": {
                        "policy-type": e.policy_type,
                        "policy-string": e.policy_string,
                        "policy-domain": domain,
                        "mx-host": e.mx_host,
                    },
                    "summary": {
                        "total-successful-session-count": e.success,
                        "total-failure-session-count": failed,
                    },
                    "failure-details": details,
                })
            })
            .collect()
    }
}
