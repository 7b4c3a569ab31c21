//! Alerts by mail: an account's alerts go to its `alert_email`, written by
//! the platform (`alerts@<bounce domain>`, never a tenant's address) and
//! accepted like any other message of the account.

use std::sync::Arc;

use async_trait::async_trait;
use herald_message::{Draft, build};
use herald_types::{AccountId, EmailAddress};

use crate::Acceptor;

/// The local part alerts are sent from.
pub const ALERTS_LOCAL: &str = "alerts";

/// Mails alerts through acceptance.
pub struct AlertMailer {
    acceptor: Arc<Acceptor>,
    bounce_domain: String,
}

impl std::fmt::Debug for AlertMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertMailer")
            .field("bounce_domain", &self.bounce_domain)
            .finish_non_exhaustive()
    }
}

impl AlertMailer {
    pub fn new(acceptor: Arc<Acceptor>, bounce_domain: &str) -> Self {
        Self {
            acceptor,
            bounce_domain: bounce_domain.to_owned(),
        }
    }
}

#[async_trait]
impl herald_events::alerts::AlertMail for AlertMailer {
    async fn send(&self, account: &AccountId, subject: &str, text: &str) {
        let settings = match self.acceptor.policy().accounts().store().account_by_id(account).await {
            Ok(Some(a)) => a.settings,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the account to mail an alert");
                return;
            }
        };
        let Some(to) = settings
            .alert_email
            .as_deref()
            .and_then(|t| EmailAddress::parse(t).ok())
        else {
            return;
        };
        let from = format!("{ALERTS_LOCAL}@{}", self.bounce_domain);
        let Ok(sender) = EmailAddress::parse(&from) else {
            return;
        };
        let message = build(&Draft {
            from: (Some("Herald alerts".to_owned()), from.clone()),
            to: vec![(None, to.to_string())],
            subject: subject.to_owned(),
            text: Some(text.replace('\n', "\r\n")),
            // RFC 3834: a machine sent this; auto-responders stay silent.
            headers: vec![("Auto-Submitted".to_owned(), "auto-generated".to_owned())],
            id_domain: self.bounce_domain.clone(),
            ..Draft::default()
        });
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write an alert mail");
                return;
            }
        };
        let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        if let Err(e) = self
            .acceptor
            .send_as_platform(account, sender, to, message, local)
            .await
        {
            tracing::warn!(error = %e, account = %account, "cannot mail an alert");
        }
    }
}
