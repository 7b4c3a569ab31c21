//! Webhooks as accounts manage them: each belongs to the acting account;
//! another account's answers `NotFound`.

use herald_store::{NewWebhook, Webhook, WebhookStatus};
use herald_types::{EventKind, InvalidValue, WebhookId};

use crate::{Accounts, AccountsError, AccountsResult, Caller};

/// The most events in one post.
pub const MAX_BATCH: u32 = 1000;
/// Webhooks per account at most.
pub const MAX_WEBHOOKS: usize = 20;

impl Accounts {
    /// Adds a webhook to the acting account: owed every event (of `kinds`,
    /// all when empty) stored from now on. Its secret is in the answer.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        url_: &str,
        kinds: &[String],
        batch_size: Option<u32>,
    ) -> AccountsResult<Webhook> {
        let url = self.check_tenant_url("url", url_).await?;
        let kinds = kinds
            .iter()
            .map(|k| EventKind::parse(k.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let batch_size = batch_size.unwrap_or(1);
        if batch_size == 0 || batch_size > MAX_BATCH {
            return Err(InvalidValue::new("batch_size", &batch_size.to_string(), "1 to 1000 events per post").into());
        }
        if self.store().list_webhooks(Some(&caller.account.id)).await?.len() >= MAX_WEBHOOKS {
            return Err(AccountsError::Conflict(format!(
                "an account has at most {MAX_WEBHOOKS} webhooks"
            )));
        }
        let hook = self
            .store()
            .create_webhook(&NewWebhook {
                account: caller.account.id.clone(),
                url,
                kinds,
                batch_size,
                secret: format!("whsec_{}", crate::secret::new_password()),
            })
            .await?;
        tracing::info!(account = %caller.account.name, webhook = %hook.id, url = %hook.url, "webhook added");
        Ok(hook)
    }

    pub async fn list_webhooks(&self, caller: &Caller) -> AccountsResult<Vec<Webhook>> {
        Ok(self.store().list_webhooks(Some(&caller.account.id)).await?)
    }

    pub async fn webhook(&self, caller: &Caller, id: &str) -> AccountsResult<Webhook> {
        let id = WebhookId::parse(id).map_err(|_| AccountsError::NotFound("webhook"))?;
        match self.store().webhook(&id).await? {
            Some(w) if w.account == caller.account.id => Ok(w),
            _ => Err(AccountsError::NotFound("webhook")),
        }
    }

    pub async fn delete_webhook(&self, caller: &Caller, id: &str) -> AccountsResult<()> {
        let hook = self.webhook(caller, id).await?;
        self.store().delete_webhook(&hook.id).await?;
        tracing::info!(account = %caller.account.name, webhook = %hook.id, "webhook removed");
        Ok(())
    }

    /// Turns a webhook back on (after it was disabled for failing): it
    /// resumes where it stopped, owed everything since.
    pub async fn enable_webhook(&self, caller: &Caller, id: &str) -> AccountsResult<Webhook> {
        let hook = self.webhook(caller, id).await?;
        self.store().set_webhook_status(&hook.id, WebhookStatus::Active).await?;
        tracing::info!(account = %caller.account.name, webhook = %hook.id, "webhook enabled");
        self.webhook(caller, hook.id.as_str()).await
    }

    /// A webhook's last posts, newest first.
    pub async fn webhook_deliveries(
        &self,
        caller: &Caller,
        id: &str,
    ) -> AccountsResult<Vec<herald_store::WebhookAttempt>> {
        let hook = self.webhook(caller, id).await?;
        let limit = u32::try_from(herald_store::WEBHOOK_ATTEMPTS_KEPT).unwrap_or(100);
        Ok(self.store().webhook_attempts(&hook.id, limit).await?)
    }

    /// Posts again every event from a recorded post on: the webhook's
    /// cursor moves back to just before it (events after it go again too:
    /// at least once, as always; receivers tell repeats by event id).
    /// Returns the position posting resumes after, and whether the cursor
    /// moved (it had not, when the webhook had not posted that far).
    pub async fn resend_webhook(&self, caller: &Caller, id: &str, delivery: i64) -> AccountsResult<(i64, bool)> {
        let attempts = self.webhook_deliveries(caller, id).await?;
        let attempt = attempts
            .iter()
            .find(|a| a.id == delivery)
            .ok_or(AccountsError::NotFound("webhook delivery"))?;
        let to = attempt.attempt.first.saturating_sub(1);
        let moved = self.store().rewind_webhook(&attempt.attempt.webhook, to).await?;
        tracing::info!(account = %caller.account.name, webhook = %attempt.attempt.webhook, from = to, moved, "webhook re-send");
        Ok((to, moved))
    }
}
