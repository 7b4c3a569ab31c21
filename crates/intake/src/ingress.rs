//! The policy behind the SMTP sessions: Herald's
//! [`Ingress`](herald_smtp_server::Ingress). Authentication and relay
//! networks are decided here; what happens to a message is the
//! [`Acceptor`]'s, shared with the send API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_accounts::{Accounts, AccountsError};
use herald_smtp_server::{AuthRefusal, Incoming, Ingress, ListenerKind, Principal, Reply};
use herald_types::{AccountName, DEFAULT_STREAM, EmailAddress, Envelope, MessageId, ReversePath, SubmitError};
use ipnet::IpNet;

use crate::accept::Acceptor;
use crate::inbound::Inbound;

/// How long relay accounts are remembered: a change by the CLI or the API
/// applies to new sessions within this time.
const CACHE_TTL: Duration = Duration::from_secs(5);

type Cached<T> = Mutex<HashMap<String, (Instant, T)>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct SmtpIngress {
    acceptor: Arc<Acceptor>,
    inbound: Arc<Inbound>,
    accounts: Accounts,
    relays: Vec<(IpNet, AccountName)>,
    relay_accounts: Cached<Option<Principal>>,
}

impl std::fmt::Debug for SmtpIngress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpIngress").finish_non_exhaustive()
    }
}

impl SmtpIngress {
    pub fn new(
        acceptor: Arc<Acceptor>,
        inbound: Arc<Inbound>,
        accounts: Accounts,
        relays: Vec<(IpNet, AccountName)>,
    ) -> Self {
        Self {
            acceptor,
            inbound,
            accounts,
            relays,
            relay_accounts: Mutex::new(HashMap::new()),
        }
    }

    fn cached<T: Clone>(cache: &Cached<T>, key: &str) -> Option<T> {
        lock(cache)
            .get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, v)| v.clone())
    }
}

#[async_trait]
impl Ingress for SmtpIngress {
    async fn authenticate(&self, username: &str, password: &str) -> Result<Principal, AuthRefusal> {
        match self.accounts.authenticate_smtp(username, password).await {
            Ok(account) => Ok(Principal {
                account: account.id,
                name: account.name.to_string(),
            }),
            Err(AccountsError::Suspended(_)) => Err(AuthRefusal::Suspended),
            Err(AccountsError::Unavailable | AccountsError::Internal(_)) => Err(AuthRefusal::Unavailable),
            Err(_) => Err(AuthRefusal::Invalid),
        }
    }

    async fn relay_principal(&self, ip: IpAddr) -> Option<Principal> {
        let (_, name) = self.relays.iter().find(|(net, _)| net.contains(&ip))?;
        if let Some(p) = Self::cached(&self.relay_accounts, name.as_str()) {
            return p;
        }
        // A relay account that is missing or suspended relays nothing.
        let principal = match self.accounts.find(name.as_str()).await {
            Ok(account) if account.is_active() => Some(Principal {
                account: account.id,
                name: account.name.to_string(),
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "relay network bound to an unusable account");
                None
            }
        };
        lock(&self.relay_accounts).insert(name.to_string(), (Instant::now(), principal.clone()));
        principal
    }

    async fn check_sender(&self, principal: &Principal, sender: &ReversePath) -> Result<(), Reply> {
        self.acceptor
            .check_sender(&principal.account, sender)
            .await
            .map_err(|e| match e {
                SubmitError::NullSender => Reply::new(550, [5, 7, 1], "<>: A null sender cannot be submitted"),
                e => refusal(&e),
            })
    }

    async fn check_recipient(
        &self,
        kind: ListenerKind,
        _: Option<&Principal>,
        rcpt: &EmailAddress,
    ) -> Result<(), Reply> {
        // The inbound MX takes only the addresses Herald manages.
        if kind == ListenerKind::Inbound && self.inbound.route(rcpt).is_none() {
            return Err(Reply::new(
                550,
                [5, 7, 1],
                format!("<{rcpt}>: Recipient not handled here"),
            ));
        }
        Ok(())
    }

    async fn accept(&self, message: Incoming) -> Result<MessageId, Reply> {
        let Some(principal) = message.principal else {
            if message.kind == ListenerKind::Inbound {
                self.inbound
                    .take(&message.recipients, &message.body, message.client_ip)
                    .await?;
                return Ok(MessageId::generate());
            }
            return Err(Reply::new(550, [5, 7, 1], "No handler for this message"));
        };
        let envelope = Envelope {
            sender: message.sender,
            recipients: message.recipients,
            account: principal.account.clone(),
            client_ip: message.client_ip,
            received_at: message.received_at,
            stream: DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        match self.acceptor.accept(envelope, message.body).await {
            Ok(accepted) => Ok(accepted.id),
            Err(e) => Err(refusal(&e)),
        }
    }
}

/// The SMTP answer to a refused message.
fn refusal(e: &SubmitError) -> Reply {
    match e {
        SubmitError::SenderNotApproved(addr) => Reply::sender_not_approved(addr),
        SubmitError::Unavailable => Reply::try_later(),
        e => {
            let (code, enhanced) = e.smtp();
            Reply::new(code, enhanced, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_smtp_meaning() {
        assert_eq!(refusal(&SubmitError::Unavailable).code, 451);
        assert_eq!(refusal(&SubmitError::TooLarge(10)).code, 552);
        let r = refusal(&SubmitError::SenderNotApproved("x@acme.test".into()));
        assert_eq!((r.code, r.enhanced), (550, [5, 7, 1]));
    }
}
