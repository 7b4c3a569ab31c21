//! The one way an account hears about a condition: rates over thresholds,
//! blocklist listings, DMARC failures, deferral storms, disabled webhooks,
//! warm-up caps, certificates about to expire.
//!
//! A checker says a condition holds ([`Alerter::raise`]) or has ended
//! ([`Alerter::resolve`], or [`Alerter::settle`] for a checker that sees
//! every condition of its kind at once). The store keeps one open alert per
//! account and condition key, so however often a checker runs, and on
//! however many nodes, an account is told once when the condition starts,
//! again once a day while it holds, and once when it ends. Each telling is
//! an `alert` event (so it reaches the account's webhooks) and, when a
//! mailer is set, a mail to the account's alert address.
//!
//! An alert event's `reason` reads `<kind>: <message>` (or `<kind>
//! resolved: <message>`), and its metadata carries `alert_id`,
//! `alert_kind`, `alert_key` and `alert_state` (`open` or `resolved`).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use herald_store::{Alert, AlertFilter, AlertOpened, NewAlert, Store, StoreResult};
use herald_types::{AccountId, Event, EventKind, EventSink, MessageId};

/// How long an open alert waits before it is told again.
pub const RENOTIFY: time::Duration = time::Duration::days(1);

/// Delivers alerts by mail.
#[async_trait]
pub trait AlertMail: Send + Sync + std::fmt::Debug {
    /// Mails `subject` and `text` to `account`'s alert address, if it has
    /// one. Failures are the mailer's to log: an alert is recorded and
    /// posted whatever becomes of its mail.
    async fn send(&self, account: &AccountId, subject: &str, text: &str);
}

/// Raises and resolves alerts.
#[derive(Clone)]
pub struct Alerter {
    store: Arc<dyn Store>,
    events: Arc<dyn EventSink>,
    mail: Option<Arc<dyn AlertMail>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("mail", &self.mail)
            .finish_non_exhaustive()
    }
}

impl Alerter {
    pub fn new(store: Arc<dyn Store>, events: Arc<dyn EventSink>) -> Self {
        Self {
            store,
            events,
            mail: None,
        }
    }

    /// Alerts are mailed too.
    #[must_use]
    pub fn with_mail(mut self, mail: Arc<dyn AlertMail>) -> Self {
        self.mail = Some(mail);
        self
    }

    /// The condition `key` of `kind` holds for `account`: an alert opens
    /// and is told, or an open one is told again once [`RENOTIFY`] has
    /// passed. Whether it was told now.
    pub async fn raise(&self, account: &AccountId, kind: &str, key: &str, message: &str) -> StoreResult<bool> {
        let at = herald_types::now_ms();
        let new = NewAlert {
            account: account.clone(),
            kind: kind.to_owned(),
            key: key.to_owned(),
            message: message.to_owned(),
        };
        match self.store.open_alert(&new, at).await? {
            AlertOpened::New(alert) => {
                tracing::warn!(account = %account, kind, key, message, "alert");
                self.tell(&alert, false).await;
                Ok(true)
            }
            AlertOpened::Existing(mut alert) if at - alert.notified_at >= RENOTIFY => {
                if !self
                    .store
                    .alert_notified(&alert.id, message, alert.notified_at, at)
                    .await?
                {
                    return Ok(false);
                }
                message.clone_into(&mut alert.message);
                alert.notified_at = at;
                self.tell(&alert, false).await;
                Ok(true)
            }
            AlertOpened::Existing(_) => Ok(false),
        }
    }

    /// The condition `key` no longer holds for `account`: its open alert,
    /// if any, is resolved and told. Whether one was.
    pub async fn resolve(&self, account: &AccountId, key: &str) -> StoreResult<bool> {
        match self.store.resolve_alert(account, key, herald_types::now_ms()).await? {
            Some(alert) => {
                tracing::info!(account = %account, kind = %alert.kind, key, "alert resolved");
                self.tell(&alert, true).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// For a checker that sees every condition of `kind` at once: resolves
    /// each open alert of that kind whose (account, key) is not in
    /// `holding`. How many were resolved.
    pub async fn settle(&self, kind: &str, holding: &HashSet<(AccountId, String)>) -> StoreResult<u32> {
        self.settle_scope(kind, "", holding).await
    }

    /// [`Alerter::settle`] for a checker that sees only the conditions whose
    /// key starts with `scope` (one node's warm-up counts or certificate,
    /// when several nodes share the store): the others are left alone.
    pub async fn settle_scope(
        &self,
        kind: &str,
        scope: &str,
        holding: &HashSet<(AccountId, String)>,
    ) -> StoreResult<u32> {
        let open = self
            .store
            .list_alerts(
                &AlertFilter {
                    open: Some(true),
                    kind: Some(kind.to_owned()),
                    ..AlertFilter::default()
                },
                u32::MAX >> 1,
            )
            .await?;
        let mut resolved = 0;
        for alert in open {
            if alert.key.starts_with(scope)
                && !holding.contains(&(alert.account.clone(), alert.key.clone()))
                && self.resolve(&alert.account, &alert.key).await?
            {
                resolved += 1;
            }
        }
        Ok(resolved)
    }

    async fn tell(&self, alert: &Alert, resolved: bool) {
        // An alert is not about a message; its message id names nothing.
        let mut event = Event::new(EventKind::Alert, alert.account.clone(), MessageId::generate());
        let state = if resolved { "resolved" } else { "open" };
        event.reason = Some(if resolved {
            format!("{} resolved: {}", alert.kind, alert.message)
        } else {
            format!("{}: {}", alert.kind, alert.message)
        });
        event.metadata = vec![
            ("alert_id".to_owned(), alert.id.to_string()),
            ("alert_kind".to_owned(), alert.kind.clone()),
            ("alert_key".to_owned(), alert.key.clone()),
            ("alert_state".to_owned(), state.to_owned()),
        ];
        self.events.emit(event);
        if let Some(mail) = &self.mail {
            let subject = if resolved {
                format!("[Herald] resolved: {}", one_line(&alert.message))
            } else {
                format!("[Herald] alert: {}", one_line(&alert.message))
            };
            let text = format!(
                "{}\n\nKind: {}\nCondition: {}\nState: {state}\nOpened: {}\nAlert: {}\n",
                alert.message,
                alert.kind,
                alert.key,
                alert
                    .opened_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                alert.id
            );
            mail.send(&alert.account, &subject, &text).await;
        }
    }
}

/// A subject line: no line breaks, at most 150 characters.
fn one_line(s: &str) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match flat.char_indices().nth(150) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}
