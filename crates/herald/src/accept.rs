//! Acceptance: what every message goes through before Herald takes
//! responsibility for it, whether it came by SMTP or the send API. The
//! sender and the From header must be approved for the account; Herald's
//! `X-Herald-*` controls are read and removed; Message-ID and Date are added
//! when missing; suppressed recipients are dropped; the rest is stored
//! durably, announced as `accepted`, and queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_accounts::{Accounts, Caller};
use herald_http::{Accepted, Outcome, Submit, SubmitError};
use herald_message::{Controls, HeaderBlock, ensure_identity};
use herald_mta::Mta;
use herald_spool::Spool;
use herald_types::{
    AccountId, DEFAULT_STREAM, EmailAddress, Envelope, Event, EventKind, EventSink, MessageId, ReversePath, SenderRule,
    is_stream_name,
};

/// How long approved senders are remembered: a change by the CLI or the
/// API applies within this time.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// Events waiting to be stored past which acceptance holds new mail back
/// (about 50 MB of events in memory).
const MAX_EVENT_BACKLOG: usize = 100_000;
/// How long a message waits for the backlog to shrink before the client is
/// told to try again later.
const BACKLOG_WAIT: Duration = Duration::from_secs(30);
const BACKLOG_POLL: Duration = Duration::from_millis(5);

/// What acceptance needs of an account, cached briefly.
#[derive(Clone)]
struct AccountFacts {
    /// Its approved senders.
    rules: Arc<Vec<SenderRule>>,
    /// Its brand's master account, whose brand-wide suppressions apply.
    brand: Option<AccountId>,
}

pub struct Acceptor {
    /// The domain of Message-IDs Herald adds.
    hostname: String,
    accounts: Accounts,
    spool: Arc<Spool>,
    mta: Mta,
    events: Arc<dyn EventSink>,
    max_message_size: usize,
    facts: Mutex<HashMap<AccountId, (Instant, AccountFacts)>>,
}

/// The addresses of a From header (`Name <a@b>, c@d`).
pub fn from_addresses(value: &str) -> Vec<EmailAddress> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    for part in parts {
        let addr = match (part.rfind('<'), part.rfind('>')) {
            (Some(a), Some(b)) if a < b => &part[a + 1..b],
            _ => part,
        };
        if let Ok(a) = EmailAddress::parse(addr.trim()) {
            out.push(a);
        }
    }
    out
}

impl Acceptor {
    pub fn new(
        hostname: String,
        accounts: Accounts,
        spool: Arc<Spool>,
        mta: Mta,
        events: Arc<dyn EventSink>,
        max_message_size: usize,
    ) -> Self {
        Self {
            hostname,
            accounts,
            spool,
            mta,
            events,
            max_message_size,
            facts: Mutex::new(HashMap::new()),
        }
    }

    /// The account's approved senders and brand (cached briefly).
    async fn facts(&self, account: &AccountId) -> Result<AccountFacts, SubmitError> {
        {
            let cache = self.facts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, facts)) = cache.get(account)
                && at.elapsed() < CACHE_TTL
            {
                return Ok(facts.clone());
            }
        }
        let found = self
            .accounts
            .store()
            .account_by_id(account)
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        let Some(found) = found else {
            return Ok(AccountFacts {
                rules: Arc::new(Vec::new()),
                brand: None,
            });
        };
        let brand = Some(found.brand().clone());
        let rules = self
            .accounts
            .list_senders(&Caller::operator(found))
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        let facts = AccountFacts {
            rules: Arc::new(rules.into_iter().map(|r| r.rule).collect()),
            brand,
        };
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(account.clone(), (Instant::now(), facts.clone()));
        Ok(facts)
    }

    /// Holds a message back while the event store is far behind: each
    /// accepted recipient is an event, and mail must not outrun them.
    async fn events_keep_up(&self) -> Result<(), SubmitError> {
        if self.events.backlog() <= MAX_EVENT_BACKLOG {
            return Ok(());
        }
        let started = Instant::now();
        while self.events.backlog() > MAX_EVENT_BACKLOG {
            if started.elapsed() > BACKLOG_WAIT {
                tracing::warn!(
                    backlog = self.events.backlog(),
                    "events are not being stored; refusing mail for now"
                );
                return Err(SubmitError::Unavailable);
            }
            tokio::time::sleep(BACKLOG_POLL).await;
        }
        Ok(())
    }

    /// The envelope sender must be an approved sender of the account.
    pub async fn check_sender(&self, account: &AccountId, sender: &ReversePath) -> Result<(), SubmitError> {
        let ReversePath::Address(from) = sender else {
            return Err(SubmitError::NullSender);
        };
        if self.facts(account).await?.rules.iter().any(|r| r.allows(from)) {
            Ok(())
        } else {
            Err(SubmitError::SenderNotApproved(from.to_string()))
        }
    }

    /// The From header is what readers see: each of its addresses must be
    /// approved too, or passing the envelope check would allow spoofing.
    async fn check_from_header(&self, account: &AccountId, block: &HeaderBlock) -> Result<(), SubmitError> {
        let Some(from) = block.get("From") else { return Ok(()) };
        let rules = self.facts(account).await?.rules;
        match from_addresses(&from)
            .into_iter()
            .find(|a| !rules.iter().any(|r| r.allows(a)))
        {
            Some(stranger) => Err(SubmitError::FromNotApproved(stranger.to_string())),
            None => Ok(()),
        }
    }

    /// Checks, stores and queues a message. The envelope's stream, tags and
    /// metadata are joined by those of the message's `X-Herald-*` headers.
    pub async fn accept(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError> {
        self.take(envelope, body, true).await
    }

    /// Forwards a message Herald received (a person's reply) to `to` for
    /// `account`, with a null envelope sender so a failure bounces nowhere.
    /// The account's sender rules do not apply (the From is the person's),
    /// and `X-Herald-*` headers an outsider wrote are removed, not obeyed.
    pub async fn forward(
        &self,
        account: &AccountId,
        to: EmailAddress,
        body: Vec<u8>,
        client_ip: std::net::IpAddr,
    ) -> Result<Accepted, SubmitError> {
        let envelope = Envelope {
            sender: ReversePath::Null,
            recipients: vec![to],
            account: account.clone(),
            client_ip,
            received_at: time::OffsetDateTime::now_utc(),
            stream: DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        };
        self.take(envelope, body, false).await
    }

    async fn take(&self, mut envelope: Envelope, mut body: Vec<u8>, checked: bool) -> Result<Accepted, SubmitError> {
        self.events_keep_up().await?;
        let account = envelope.account.clone();
        if checked {
            self.check_sender(&account, &envelope.sender).await?;
        }
        if body.len() > self.max_message_size {
            return Err(SubmitError::TooLarge(self.max_message_size));
        }
        let mut header_id = None;
        if let Ok(mut block) = HeaderBlock::parse(&body) {
            let mut controls = Controls::take(&mut block);
            if checked {
                self.check_from_header(&account, &block).await?;
            } else {
                controls = Controls::default();
            }
            let id = ensure_identity(&mut block, &self.hostname, envelope.received_at);
            header_id =
                Some(id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()).filter(|h| !h.is_empty());
            body = block.to_bytes();
            if envelope.stream == DEFAULT_STREAM
                && let Some(stream) = controls.stream.filter(|s| is_stream_name(s))
            {
                envelope.stream = stream;
            }
            for tag in controls.tags {
                if !envelope.tags.contains(&tag) {
                    envelope.tags.push(tag);
                }
            }
            envelope.metadata.extend(controls.metadata);
        }

        // Suppressed recipients are dropped; if the list cannot be read the
        // message waits (the client retries) rather than mail someone who
        // asked not to get it.
        let asked: Vec<String> = envelope.recipients.iter().map(ToString::to_string).collect();
        let brand = self.facts(&account).await?.brand;
        let suppressed = self
            .accounts
            .store()
            .suppressed(&account, brand.as_ref(), &asked)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read the suppression list");
                SubmitError::Unavailable
            })?;
        let reasons: HashMap<String, String> = suppressed.into_iter().map(|s| (s.address, s.reason)).collect();
        let outcome = |r: &EmailAddress| match reasons.get(&r.to_string().to_lowercase()) {
            Some(reason) => Outcome::Dropped {
                reason: format!("suppressed: {reason}"),
            },
            None if herald_mta::simulator::is_suppressed(r.local_part(), r.domain().as_str()) => Outcome::Dropped {
                reason: "suppressed: simulator".to_owned(),
            },
            None => Outcome::Queued,
        };
        let outcomes: Vec<(EmailAddress, Outcome)> =
            envelope.recipients.iter().map(|r| (r.clone(), outcome(r))).collect();
        let template = Event::new(EventKind::Accepted, account.clone(), MessageId::generate()).of_message(&envelope);
        let sender = envelope.sender.to_string();
        let client_ip = envelope.client_ip;
        envelope.recipients = outcomes
            .iter()
            .filter(|(_, o)| *o == Outcome::Queued)
            .map(|(r, _)| r.clone())
            .collect();

        let size = body.len();
        let queued = envelope.recipients.len();
        let id = if queued == 0 {
            MessageId::generate()
        } else {
            self.spool.enqueue(envelope, body).await.map_err(|e| {
                tracing::error!(error = %e, "cannot store an incoming message");
                SubmitError::Unavailable
            })?
        };
        tracing::info!(message = %id, account = %account, from = %sender, recipients = outcomes.len(), queued, size, client = %client_ip, "accepted");
        let mut index = 0;
        for (rcpt, outcome) in &outcomes {
            let mut event = template.clone();
            event.id = herald_types::EventId::generate();
            event.message_id = id.clone();
            event.recipient = Some(rcpt.to_string());
            event.sender = Some(sender.clone());
            event.source_ip = Some(client_ip);
            match outcome {
                Outcome::Dropped { reason } => {
                    event.kind = EventKind::Dropped;
                    event.reason = Some(reason.clone());
                }
                // The index in the spooled envelope, which VERP tokens name.
                Outcome::Queued => {
                    event.rcpt_index = Some(index);
                    if index == 0 {
                        event.header_id = header_id.clone();
                    }
                    index += 1;
                }
            }
            self.events.emit(event);
        }
        if queued > 0 {
            self.mta.submit(&id);
        }
        Ok(Accepted {
            id,
            recipients: outcomes,
        })
    }
}

#[async_trait]
impl Submit for Acceptor {
    async fn submit(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError> {
        self.accept(envelope, body).await
    }

    fn message_id_domain(&self) -> &str {
        &self.hostname
    }

    fn max_message_size(&self) -> usize {
        self.max_message_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_headers_give_every_address() {
        let got: Vec<String> = from_addresses("\"Doe, Jane\" <jane@acme.test>, bob@acme.test, Bad <not an address>")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["jane@acme.test", "bob@acme.test"]);
    }
}
