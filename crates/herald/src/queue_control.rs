//! The delivery queue as the HTTP API sees it, over the spool and the MTA.

use std::sync::Arc;

use herald_api_types::{QueuedMessage, QueuedRecipient};
use herald_http::{QueueControl, QueueEntry};
use herald_mta::Mta;
use herald_spool::{Queued, RcptStatus, Spool};
use herald_types::MessageId;

pub struct SpoolQueue {
    pub spool: Arc<Spool>,
    pub mta: Mta,
}

fn entry(q: Queued) -> QueueEntry {
    let recipients = q
        .envelope
        .recipients
        .iter()
        .zip(&q.states)
        .map(|(r, s)| QueuedRecipient {
            address: r.to_string(),
            status: s.status.as_str().to_owned(),
            attempts: s.attempts,
            next_attempt: (s.status == RcptStatus::Pending).then(|| herald_spool::from_ms(s.next_attempt_ms)),
        })
        .collect();
    QueueEntry {
        account: q.envelope.account.clone(),
        message: QueuedMessage {
            id: q.id.to_string(),
            account: q.envelope.account.to_string(),
            sender: q.envelope.sender.to_string(),
            size: q.size,
            received_at: q.envelope.received_at,
            recipients,
        },
    }
}

fn destination(d: herald_mta::DestinationView) -> herald_api_types::QueueDestination {
    herald_api_types::QueueDestination {
        key: d.key,
        provider: d.site,
        source_ip: d.source.map(|ip| ip.to_string()),
        state: d.state.to_owned(),
        rule: d.rule,
        until: d.until_ms.map(herald_spool::from_ms),
        rate_factor: d.rate_factor,
        queued: d.queued as u64,
        connections: d.connections as u64,
        max_connections: d.max_connections as u64,
        messages_per_minute: d.messages_per_minute,
        delivered: d.delivered,
        deferred: d.deferred,
        bounced: d.bounced,
        tls_failures: d.tls_failures,
    }
}

fn warmup(w: herald_mta::WarmupStatus) -> herald_api_types::WarmupState {
    herald_api_types::WarmupState {
        headroom_today: w.daily_cap.saturating_sub(w.sent_today),
        key: w.key,
        pool: w.pool,
        plan: w.plan,
        day: w.day + 1,
        days: w.days as u64,
        provider: w.provider,
        daily_cap: w.daily_cap,
        hourly_cap: w.hourly_cap,
        sent_today: w.sent_today,
        sent_this_hour: w.sent_this_hour,
    }
}

impl QueueControl for SpoolQueue {
    fn provider_of(&self, domain: &str) -> Option<String> {
        self.mta.provider_of(domain)
    }

    fn goes_to(&self, domain: &str, destination: &str) -> bool {
        self.mta
            .destination_of(domain)
            .is_some_and(|d| d.eq_ignore_ascii_case(destination))
    }

    fn tls_report(&self, day: &str) -> Vec<serde_json::Value> {
        self.mta.tls_report(day)
    }

    fn warmup(&self) -> Vec<herald_api_types::WarmupState> {
        self.mta.warmup().into_iter().map(warmup).collect()
    }

    fn destinations(&self) -> Vec<herald_api_types::QueueDestination> {
        self.mta.destinations().into_iter().map(destination).collect()
    }

    fn list(&self) -> Vec<QueueEntry> {
        self.spool.list().into_iter().map(entry).collect()
    }

    fn list_of(&self, account: Option<&herald_types::AccountId>, held_only: bool, limit: usize) -> Vec<QueueEntry> {
        self.spool
            .list_where(
                |envelope, states| {
                    account.is_none_or(|a| &envelope.account == a)
                        && (!held_only || states.iter().any(|s| s.status == RcptStatus::Held))
                },
                limit,
            )
            .into_iter()
            .map(entry)
            .collect()
    }

    fn get(&self, id: &MessageId) -> Option<QueueEntry> {
        self.spool.get(id).map(entry)
    }

    fn retry(&self, id: &MessageId) -> bool {
        self.mta.retry(id).is_ok()
    }

    fn bounce(&self, id: &MessageId) -> bool {
        self.mta.bounce(id).is_ok()
    }

    fn purge(&self, id: &MessageId) -> bool {
        self.mta.purge(id).is_ok()
    }

    fn release(&self, id: &MessageId) -> Option<usize> {
        self.mta.release(id).ok()
    }

    fn drop_held(&self, id: &MessageId, why: &str) -> Option<usize> {
        self.mta.drop_held(id, why).ok()
    }
}

/// The MTA's warm-up counts, for the `warmup_cap` alert.
pub struct WarmupCaps {
    pub mta: Mta,
    /// Pool name to the accounts it is for.
    pub pools: Vec<(String, Vec<String>)>,
}

impl herald_monitor::conditions::WarmupView for WarmupCaps {
    fn capped(&self) -> Vec<herald_monitor::conditions::Capped> {
        self.mta
            .warmup()
            .into_iter()
            .filter(|w| w.daily_cap > 0 && w.sent_today >= w.daily_cap && w.provider != "*")
            .map(|w| herald_monitor::conditions::Capped {
                accounts: w
                    .pool
                    .as_ref()
                    .and_then(|p| self.pools.iter().find(|(name, _)| name == p))
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default(),
                key: w.key,
                provider: w.provider,
                daily_cap: w.daily_cap,
            })
            .collect()
    }
}

/// The HTTP layer's webhook test posts, made by the dispatcher.
pub struct WebhookTests(pub Arc<herald_webhooks::Dispatcher>);

#[async_trait::async_trait]
impl herald_http::WebhookTester for WebhookTests {
    async fn test(&self, hook: &herald_store::Webhook, account: &str) -> herald_api_types::WebhookTest {
        let (delivered, error, millis) = self.0.test_post(hook, account).await;
        herald_api_types::WebhookTest {
            delivered,
            error,
            millis,
        }
    }
}
