//! Postback URLs (webhooks): each account's events posted to its URLs.
//!
//! Main design decision: a webhook owes the events stored after its
//! **cursor**, a position in the events table's storage order, kept in the
//! webhook's row. No copy of an event is queued anywhere: the events table
//! is the durable outbox, and the cursor moves only after a URL answered
//! 2xx. So events survive restarts, delivery is at least once (a post whose
//! answer was lost is made again; each event carries its id for
//! de-duplication), and each URL gets its events in order.
//!
//! Each active webhook has its own task: a slow or dead URL only holds up
//! itself, never another URL nor mail. A failed post (non-2xx, time-out,
//! refused connection) is retried with exponential back-off; a URL failing
//! for `give_up_after` (24 h by default) is disabled, and an `alert` event
//! says so.
//!
//! Each post is signed: `Herald-Signature: t=<unix time>,v1=<hex HMAC-SHA256
//! of "<t>.<body>" with the webhook's secret>`.
//!
//! Opens and clicks come in floods (a newsletter read by thousands within
//! minutes), so they are always posted in batches — a JSON array of up to
//! [`ENGAGEMENT_BATCH`] consecutive ones — whatever the webhook's
//! `batch_size`; other events go one per post unless `batch_size` says
//! otherwise.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_events::Stage;
use herald_store::{Store, Webhook, WebhookStatus};
use herald_types::{Event, EventKind, WebhookId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::{Notify, watch};

/// Opens and clicks posted together at most.
pub const ENGAGEMENT_BATCH: u32 = 100;

/// A webhook's backlog is counted up to this many events
/// (`herald_webhook_backlog_events`): past it, the figure says "far behind"
/// without costing a long count.
const BACKLOG_CAP: u32 = 100_000;

/// A long backlog is counted at most this often per webhook; between
/// counts the figure stays (a page that is not full is counted exactly).
const BACKLOG_RECOUNT: Duration = Duration::from_secs(15);

fn is_engagement(e: &Event) -> bool {
    matches!(e.kind, EventKind::Opened | EventKind::Clicked)
}

/// How many of the owed events (in order) the next post carries, and
/// whether it is a JSON array: `batch_size` of them, or a run of
/// consecutive opens and clicks, always in an array.
fn next_post(owed: &[(i64, Event)], batch_size: u32) -> (usize, bool) {
    if batch_size > 1 {
        return (owed.len().min(batch_size as usize), true);
    }
    match owed.iter().take_while(|(_, e)| is_engagement(e)).count() {
        0 => (owed.len().min(1), false),
        run => (run.min(ENGAGEMENT_BATCH as usize), true),
    }
}

/// How events are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a URL has to answer.
    pub timeout: Duration,
    /// The first wait after a failure; doubled after each one.
    pub retry_initial: Duration,
    /// The longest wait between tries.
    pub retry_max: Duration,
    /// A URL failing this long is disabled.
    pub give_up_after: Duration,
    /// How often the list of webhooks is read again (new ones start within
    /// this time) and an idle webhook looks for events without a wake-up.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
            poll: Duration::from_secs(2),
        }
    }
}

/// Turns an event, with its account's name, into the JSON users see (the
/// API's shape).
pub type Render = Arc<dyn Fn(&Event, &str) -> serde_json::Value + Send + Sync>;

/// The `Herald-Signature` header value for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("t={t},v1={}", data_encoding::HEXLOWER.encode(&digest))
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Posts only to permitted (public) addresses, without redirects.
    http: herald_outbound::Guard,
    settings: Settings,
    render: Render,
    alerter: herald_events::alerts::Alerter,
    /// Woken when events are stored.
    wake: Arc<Notify>,
    running: Mutex<HashSet<WebhookId>>,
    /// Events each running webhook is owed, as last counted, and when a
    /// long backlog was last counted.
    backlog: Mutex<HashMap<WebhookId, (u64, Option<std::time::Instant>)>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The pipeline stage that wakes the dispatcher when events are stored,
/// so they go out at once; give the same `Notify` to [`Dispatcher::new`].
#[derive(Debug)]
pub struct Wake(pub Arc<Notify>);

#[async_trait]
impl Stage for Wake {
    async fn stored(&self, _: &[Event]) -> Result<(), String> {
        self.0.notify_waiters();
        Ok(())
    }
}

enum Outcome {
    Delivered,
    Failed(String),
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        settings: Settings,
        render: Render,
        alerter: herald_events::alerts::Alerter,
        wake: Arc<Notify>,
        outbound: Arc<herald_outbound::Policy>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = herald_outbound::Guard::new(
            outbound,
            settings.timeout,
            concat!("Herald-Webhooks/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(Arc::new(Self {
            store,
            http,
            settings,
            render,
            alerter,
            wake,
            running: Mutex::new(HashSet::new()),
            backlog: Mutex::new(HashMap::new()),
        }))
    }

    /// Runs until `stop` turns true: keeps one task per active webhook.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            match self.store.list_webhooks(None).await {
                Ok(all) => {
                    for w in all.into_iter().filter(|w| w.status == WebhookStatus::Active) {
                        let new = self.running.lock().map(|mut r| r.insert(w.id.clone())).unwrap_or(false);
                        if new {
                            tasks.spawn(self.clone().serve(w.id, stop.clone()));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the webhooks"),
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(self.settings.poll) => {}
                Some(_) = tasks.join_next() => {}
            }
        }
        // Posts in flight end within the time-out.
        while tasks.join_next().await.is_some() {}
    }

    /// One webhook's loop: post what it is owed, in order, until it is
    /// deleted, disabled or the server stops.
    async fn serve(self: Arc<Self>, id: WebhookId, mut stop: watch::Receiver<bool>) {
        let mut backoff = self.settings.retry_initial;
        let mut account: Option<String> = None;
        let mut alert_settled = false;
        loop {
            if *stop.borrow() {
                break;
            }
            let hook = match self.store.webhook(&id).await {
                Ok(Some(w)) if w.status == WebhookStatus::Active => w,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(webhook = %id, error = %e, "cannot read the webhook");
                    self.pause(self.settings.poll, &mut stop).await;
                    continue;
                }
            };
            // Active again: the alert that told of its disabling ends.
            if !alert_settled {
                match self.alerter.resolve(&hook.account, &disabled_key(&hook.id)).await {
                    Ok(_) => alert_settled = true,
                    Err(e) => tracing::warn!(webhook = %id, error = %e, "cannot resolve the webhook's alert"),
                }
            }
            let page = hook.batch_size.max(ENGAGEMENT_BATCH);
            let owed = match herald_store::timed("page_events", self.store.page_events(&hook.owed(), hook.cursor, page))
                .await
            {
                Ok(mut owed) => {
                    self.count_backlog(&hook, owed.len(), page).await;
                    let (n, _) = next_post(&owed, hook.batch_size);
                    owed.truncate(n);
                    owed
                }
                Err(e) => {
                    tracing::warn!(webhook = %id, error = %e, "cannot read the events owed");
                    self.pause(self.settings.poll, &mut stop).await;
                    continue;
                }
            };
            let Some(&(last, _)) = owed.last() else {
                // Nothing owed: wait for new events (or the next poll).
                let woken = self.wake.notified();
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(self.settings.poll) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
                continue;
            };
            // The account's name, for the events' JSON: read once (names
            // do not change; a deleted account takes its webhooks along).
            if account.is_none() {
                account = self
                    .store
                    .account_by_id(&hook.account)
                    .await
                    .ok()
                    .flatten()
                    .map(|a| a.name.to_string());
            }
            let started = std::time::Instant::now();
            let outcome = match &account {
                Some(name) => self.post(&hook, name, &owed).await,
                None => Outcome::Failed("cannot read the webhook's account".to_owned()),
            };
            // The delivery log the dashboard shows (best effort: a post is
            // never retried for want of its log line).
            let attempt = herald_store::NewWebhookAttempt {
                webhook: id.clone(),
                at: time::OffsetDateTime::now_utc(),
                first: owed.first().map_or(last, |(p, _)| *p),
                last,
                events: u32::try_from(owed.len()).unwrap_or(u32::MAX),
                delivered: matches!(outcome, Outcome::Delivered),
                error: match &outcome {
                    Outcome::Failed(why) => Some(why.clone()),
                    Outcome::Delivered => None,
                },
                millis: u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX),
            };
            if let Err(e) = self.store.record_webhook_attempt(&attempt).await {
                tracing::debug!(webhook = %id, error = %e, "cannot record a webhook post");
            }
            metrics::histogram!(
                "herald_webhook_post_duration_seconds",
                "outcome" => if matches!(outcome, Outcome::Delivered) { "delivered" } else { "failed" }
            )
            .record(started.elapsed().as_secs_f64());
            match outcome {
                Outcome::Delivered => {
                    metrics::counter!("herald_webhook_events_total", "outcome" => "delivered")
                        .increment(owed.len() as u64);
                    backoff = self.settings.retry_initial;
                    // Conditional on the cursor read: a re-send that rewound
                    // it meanwhile wins, and the next round posts from there.
                    if let Err(e) = self.store.webhook_delivered(&id, hook.cursor, last).await {
                        // Posted again after the pause: at least once.
                        tracing::warn!(webhook = %id, error = %e, "cannot record a delivered post");
                        self.pause(self.settings.poll, &mut stop).await;
                    }
                }
                Outcome::Failed(why) => {
                    metrics::counter!("herald_webhook_posts_failed_total").increment(1);
                    let now = time::OffsetDateTime::now_utc();
                    let since = hook.failing_since.unwrap_or(now);
                    tracing::warn!(webhook = %id, url = %hook.url, error = %why, retry_in = ?backoff, "webhook post failed");
                    let _ = self.store.webhook_failed(&id, now, &why).await;
                    if now - since >= self.settings.give_up_after {
                        self.disable(&hook, since, &why).await;
                        break;
                    }
                    self.pause(backoff, &mut stop).await;
                    backoff = (backoff * 2).min(self.settings.retry_max);
                }
            }
        }
        if let Ok(mut r) = self.running.lock() {
            r.remove(&id);
        }
        self.set_backlog(&id, None);
    }

    /// Counts what `hook` is owed after reading a page of `read` events:
    /// the page when it was not full, else a count up to [`BACKLOG_CAP`]
    /// at most every [`BACKLOG_RECOUNT`].
    async fn count_backlog(&self, hook: &Webhook, read: usize, page: u32) {
        if read < page as usize {
            self.set_backlog(&hook.id, Some((read as u64, None)));
            return;
        }
        let counted_lately = self.backlog.lock().ok().and_then(|all| {
            let (n, at) = all.get(&hook.id)?;
            at.filter(|at| at.elapsed() < BACKLOG_RECOUNT).map(|_| *n)
        });
        if counted_lately.is_some() {
            return;
        }
        let owed = match herald_store::timed(
            "count_events_after",
            self.store.count_events_after(&hook.owed(), hook.cursor, BACKLOG_CAP),
        )
        .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(webhook = %hook.id, error = %e, "cannot count a webhook's backlog");
                read as u64
            }
        };
        self.set_backlog(&hook.id, Some((owed, Some(std::time::Instant::now()))));
    }

    /// Records one webhook's backlog (`None`: it stopped running) and the
    /// sum over all of them.
    fn set_backlog(&self, id: &WebhookId, owed: Option<(u64, Option<std::time::Instant>)>) {
        let Ok(mut all) = self.backlog.lock() else { return };
        match owed {
            Some(n) => all.insert(id.clone(), n),
            None => all.remove(id),
        };
        metrics::gauge!("herald_webhook_backlog_events").set(all.values().map(|(n, _)| *n).sum::<u64>() as f64);
        metrics::gauge!("herald_webhooks_running").set(all.len() as f64);
    }

    async fn pause(&self, d: Duration, stop: &mut watch::Receiver<bool>) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    async fn post(&self, hook: &Webhook, account: &str, owed: &[(i64, Event)]) -> Outcome {
        let (_, array) = next_post(owed, hook.batch_size);
        let body = if array {
            serde_json::Value::Array(owed.iter().map(|(_, e)| (self.render)(e, account)).collect())
        } else {
            owed.first().map(|(_, e)| (self.render)(e, account)).unwrap_or_default()
        };
        match self
            .send_signed(hook, serde_json::to_vec(&body).unwrap_or_default())
            .await
        {
            Ok(()) => Outcome::Delivered,
            Err(class) => Outcome::Failed(class),
        }
    }

    /// Posts `body` to `hook`'s URL through the guard, signed with its
    /// secret. A failure is its class only: the tenant never learns the
    /// target's text or what the network said (a webhook is not a port
    /// scanner).
    async fn send_signed(&self, hook: &Webhook, body: Vec<u8>) -> Result<(), String> {
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let request = self.http.post(&hook.url).map_err(|refused| refused.class())?;
        self.http
            .send(
                request
                    .header("content-type", "application/json")
                    .header("herald-signature", signature(&hook.secret, t, &body))
                    .header("herald-webhook", hook.id.as_str())
                    .body(body),
            )
            .await
            .map(|_| ())
            .map_err(|failure| failure.class())
    }

    /// Posts a test event to `hook` now, signed as every post is, through
    /// the same guard; its cursor and log are left alone.
    pub async fn test_post(&self, hook: &Webhook, account: &str) -> (bool, Option<String>, u32) {
        let started = std::time::Instant::now();
        let at = time::OffsetDateTime::now_utc();
        let body = serde_json::json!({
            "id": format!("evt_test_{}", at.unix_timestamp_nanos()),
            "type": "test",
            "at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "account": account,
            "webhook": hook.id.as_str(),
            "message": "A test post from Herald: no mail was sent.",
        });
        let outcome = self
            .send_signed(hook, serde_json::to_vec(&body).unwrap_or_default())
            .await;
        let millis = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
        tracing::info!(webhook = %hook.id, delivered = outcome.is_ok(), "webhook test post");
        match outcome {
            Ok(_) => (true, None, millis),
            Err(why) => (false, Some(why), millis),
        }
    }

    async fn disable(&self, hook: &Webhook, since: time::OffsetDateTime, why: &str) {
        if let Err(e) = self.store.set_webhook_status(&hook.id, WebhookStatus::Disabled).await {
            tracing::error!(webhook = %hook.id, error = %e, "cannot disable a failing webhook");
            return;
        }
        let since = since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        tracing::error!(webhook = %hook.id, url = %hook.url, since = %since, "webhook disabled after failing too long");
        let message = format!(
            "webhook {} disabled: {} failing since {since} ({why})",
            hook.id, hook.url
        );
        if let Err(e) = self
            .alerter
            .raise(&hook.account, "webhook_disabled", &disabled_key(&hook.id), &message)
            .await
        {
            tracing::error!(webhook = %hook.id, error = %e, "cannot record the webhook's alert");
        }
    }
}

/// The condition of a disabled webhook.
fn disabled_key(id: &WebhookId) -> String {
    format!("webhook_disabled:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_and_clicks_go_in_batches_other_events_alone() {
        let e = |kind| {
            (
                0,
                Event::new(
                    kind,
                    herald_types::AccountId::generate(),
                    herald_types::MessageId::generate(),
                ),
            )
        };
        let owed = [
            e(EventKind::Opened),
            e(EventKind::Clicked),
            e(EventKind::Opened),
            e(EventKind::Delivered),
            e(EventKind::Opened),
        ];
        assert_eq!(next_post(&owed, 1), (3, true), "the run of engagement, as an array");
        assert_eq!(next_post(&owed[3..], 1), (1, false), "a delivery alone");
        assert_eq!(next_post(&owed, 2), (2, true), "batch_size counts every kind");
        let many: Vec<_> = (0..250).map(|_| e(EventKind::Clicked)).collect();
        assert_eq!(next_post(&many, 1), (100, true));
        assert_eq!(next_post(&[], 1), (0, false));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        // Computed independently with Python:
        // hmac.new(b"whsec_test", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
