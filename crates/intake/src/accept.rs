//! Acceptance: what every message goes through before Herald takes
//! responsibility for it, whether it came by SMTP or the send API. The
//! account must be active; the envelope sender and every author address
//! must be approved and not another brand's ([`SenderPolicy`]); a header
//! block that does not parse is refused; Herald's `X-Herald-*` controls are
//! read and removed; From, Message-ID and Date are added when missing;
//! suppressed recipients are dropped; the rest is stored durably, announced
//! as `accepted`, and queued.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_accounts::Accounts;
use herald_message::{Controls, HeaderBlock, authors, ensure_identity};
use herald_mta::Mta;
use herald_spool::Spool;
use herald_types::{
    Accepted, AccountId, DEFAULT_STREAM, EmailAddress, Envelope, Event, EventKind, EventSink, MessageId, Outcome,
    ReversePath, Submit, SubmitError, is_stream_name,
};

use crate::senders::{AccountFacts, SenderPolicy};

/// Events waiting to be stored past which acceptance holds new mail back
/// (about 50 MB of events in memory).
const MAX_EVENT_BACKLOG: usize = 100_000;
/// How long a message waits for the backlog to shrink before the client is
/// told to try again later.
const BACKLOG_WAIT: Duration = Duration::from_secs(30);
const BACKLOG_POLL: Duration = Duration::from_millis(5);

/// Starts delivery of a message just spooled: the MTA in production, a
/// recorder in tests.
pub trait Deliver: Send + Sync {
    fn submit(&self, id: &MessageId);
}

impl Deliver for Mta {
    fn submit(&self, id: &MessageId) {
        Mta::submit(self, id);
    }
}

pub struct Acceptor {
    /// The domain of Message-IDs Herald adds.
    hostname: String,
    policy: SenderPolicy,
    spool: Arc<Spool>,
    mta: Arc<dyn Deliver>,
    events: Arc<dyn EventSink>,
    max_message_size: usize,
    quotas: crate::quota::Quotas,
    /// Content scoring, when `[spamd]` is configured, and the scans in
    /// flight at once.
    spamd: Option<(crate::spamd::SpamdSettings, Arc<tokio::sync::Semaphore>)>,
}

/// Messages scored by spamd at once; more wait their turn.
const SCANS: usize = 16;

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    pub fn new(
        hostname: String,
        accounts: Accounts,
        spool: Arc<Spool>,
        mta: Arc<dyn Deliver>,
        events: Arc<dyn EventSink>,
        max_message_size: usize,
    ) -> Self {
        Self {
            hostname,
            policy: SenderPolicy::new(accounts),
            spool,
            mta,
            events,
            max_message_size,
            quotas: crate::quota::Quotas::default(),
            spamd: None,
        }
    }

    /// Every message is scored by spamd before it is queued; over the
    /// account's threshold it is held.
    #[must_use]
    pub fn with_spamd(mut self, settings: crate::spamd::SpamdSettings) -> Self {
        self.spamd = Some((settings, Arc::new(tokio::sync::Semaphore::new(SCANS))));
        self
    }

    /// The content's score against the account's threshold; `None` when
    /// no spamd is configured, or it failed and unscored mail is accepted.
    async fn score(&self, facts: &AccountFacts, body: &[u8]) -> Result<Option<herald_types::SpamScore>, SubmitError> {
        let Some((settings, scans)) = &self.spamd else {
            return Ok(None);
        };
        // A message personalised per recipient is scored as one copy whose
        // every placeholder holds all the recipients' values (bounded):
        // what any recipient would read is read.
        let rendered;
        let content: &[u8] = if herald_message::personal::is_personal(body) {
            let mut stored =
                herald_message::personal::decode(body).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
            let mut merged: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
            let mut budget = settings.max_size;
            for r in &stored.personal.recipients {
                for (k, v) in &r.values {
                    let slot = merged.entry(k.clone()).or_default();
                    if budget > v.len() && !slot.split('\n').any(|x| x == v) {
                        budget -= v.len() + 1;
                        if !slot.is_empty() {
                            slot.push('\n');
                        }
                        slot.push_str(v);
                    }
                }
            }
            if let Some(first) = stored.personal.recipients.first_mut() {
                first.values = merged;
            }
            rendered =
                herald_message::personal::render(&stored, 0).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
            &rendered
        } else {
            body
        };
        let _turn = scans.acquire().await.map_err(|_| SubmitError::Unavailable)?;
        let threshold = facts
            .settings
            .spam_threshold_centi
            .map_or(settings.threshold, |c| f64::from(c) / 100.0);
        match crate::spamd::check(settings, content).await {
            Ok(v) => {
                metrics::counter!("herald_spamd_scans_total", "outcome" => if v.score > threshold { "held" } else { "passed" }).increment(1);
                Ok(Some(herald_types::SpamScore {
                    score: v.score,
                    threshold,
                    rules: v.rules,
                }))
            }
            Err(e) => {
                metrics::counter!("herald_spamd_scans_total", "outcome" => "error").increment(1);
                tracing::warn!(error = %e, accept = settings.accept_on_error, "spamd could not score a message");
                if settings.accept_on_error {
                    Ok(None)
                } else {
                    Err(SubmitError::Unavailable)
                }
            }
        }
    }

    /// The rules of who may send as which name.
    pub fn policy(&self) -> &SenderPolicy {
        &self.policy
    }

    /// A message still in the queue, as accepted (account, recipients).
    pub fn queued(&self, id: &MessageId) -> Option<herald_spool::Queued> {
        self.spool.get(id)
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

    /// The envelope sender must be an approved sender of the account, and
    /// the account active: what SMTP asks at `MAIL FROM`.
    pub async fn check_sender(&self, account: &AccountId, sender: &ReversePath) -> Result<(), SubmitError> {
        self.policy.check_sender(account, sender).await.map(|_| ())
    }

    /// Checks, stores and queues a message. The envelope's stream, tags and
    /// metadata are joined by those of the message's `X-Herald-*` headers.
    pub async fn accept(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError> {
        self.take(envelope, body, true).await
    }

    /// [`Acceptor::accept`] for a message the send API personalised per
    /// recipient (`herald_message::personal`). Only this entry reads a body
    /// as one: through [`Acceptor::accept`] its magic line is a header line
    /// without a colon, and refused.
    pub async fn accept_personal(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError> {
        self.events_keep_up().await?;
        let facts = self.policy.check_sender(&envelope.account, &envelope.sender).await?;
        if body.len() > self.max_message_size {
            return Err(SubmitError::TooLarge(self.max_message_size));
        }
        self.take_personal(envelope, body, facts).await
    }

    /// Sends a message Herald wrote in its own name (a forwarding notice,
    /// from `sender` at the platform's domain) to `to`, accounted to
    /// `account`. The account's sender rules do not apply — the author is
    /// the platform, never a tenant — and no `X-Herald-*` control is obeyed.
    pub async fn send_as_platform(
        &self,
        account: &AccountId,
        sender: EmailAddress,
        to: EmailAddress,
        body: Vec<u8>,
        client_ip: std::net::IpAddr,
    ) -> Result<Accepted, SubmitError> {
        let envelope = Envelope {
            sender: ReversePath::Address(sender),
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

    async fn take(&self, mut envelope: Envelope, body: Vec<u8>, checked: bool) -> Result<Accepted, SubmitError> {
        self.events_keep_up().await?;
        let account = envelope.account.clone();
        let facts = if checked {
            self.policy.check_sender(&account, &envelope.sender).await?
        } else {
            self.policy.facts(&account).await?
        };
        if body.len() > self.max_message_size {
            return Err(SubmitError::TooLarge(self.max_message_size));
        }
        // A header block that does not parse is refused, never skipped:
        // what a reader would see could not be checked.
        let mut block = HeaderBlock::parse(&body).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
        drop(body);
        // Herald's controls are removed in every case; only a checked
        // submission's are obeyed.
        let controls = Controls::take(&mut block);
        let authors = authors(&block).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
        if checked {
            self.policy.check_authors(&facts, &authors).await?;
        }
        if authors.from.is_empty()
            && let ReversePath::Address(sender) = &envelope.sender
        {
            // RFC 5322 §3.6: a message has a From. The envelope sender was
            // just approved, so it stands in.
            block.append("From", &sender.to_string());
        }
        let id = ensure_identity(&mut block, &self.hostname, envelope.received_at);
        let header_id =
            Some(id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()).filter(|h| !h.is_empty());
        let body = block.to_bytes();
        drop(block);
        if checked {
            if envelope.stream == DEFAULT_STREAM
                && let Some(stream) = controls.stream.filter(|s| is_stream_name(s))
            {
                envelope.stream = stream;
            }
            let written_from = match (&authors.from[..], &envelope.sender) {
                ([], ReversePath::Address(sender)) => vec![sender.domain().to_string()],
                (from, _) => from.iter().map(|a| a.domain().to_string()).collect(),
            };
            stream_authors(&facts, &envelope.stream, written_from.iter().map(String::as_str))?;
            for tag in controls.tags {
                if !envelope.tags.contains(&tag) {
                    envelope.tags.push(tag);
                }
            }
            envelope.metadata.extend(controls.metadata);
        }

        self.finish(envelope, body, facts, header_id).await
    }

    /// A message personalised per recipient (the send API with
    /// substitutions): its one author is the draft's From, checked like any
    /// other; it is stored once and rendered per recipient at delivery.
    async fn take_personal(
        &self,
        envelope: Envelope,
        body: Vec<u8>,
        facts: AccountFacts,
    ) -> Result<Accepted, SubmitError> {
        let stored = herald_message::personal::decode(&body).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
        let p = &stored.personal;
        let from = EmailAddress::parse(&p.from.1).map_err(|e| SubmitError::BadHeaders(e.to_string()))?;
        stream_authors(&facts, &envelope.stream, [from.domain().as_str()])?;
        let authors = herald_message::Authors::of_mailbox(p.from.0.as_deref(), from);
        self.policy.check_authors(&facts, &authors).await?;
        if p.headers
            .iter()
            .any(|(n, _)| n.len() > 9 && n[..9].eq_ignore_ascii_case("x-herald-"))
        {
            return Err(SubmitError::BadHeaders(
                "controls belong in the request's fields".to_owned(),
            ));
        }
        let header_id = Some(p.message_id.clone()).filter(|h| !h.is_empty());
        drop(stored);
        self.finish(envelope, body, facts, header_id).await
    }

    /// Drops suppressed recipients, stores the rest with the events that
    /// record it, and queues it.
    async fn finish(
        &self,
        mut envelope: Envelope,
        body: Vec<u8>,
        facts: AccountFacts,
        header_id: Option<String>,
    ) -> Result<Accepted, SubmitError> {
        let account = envelope.account.clone();
        // Suppressed recipients are dropped; if the list cannot be read the
        // message waits (the client retries) rather than mail someone who
        // asked not to get it.
        let asked: Vec<String> = envelope.recipients.iter().map(ToString::to_string).collect();
        let store = self.policy.accounts().store();
        let suppressed = herald_store::timed("suppressed", store.suppressed(&account, Some(&facts.brand), &asked))
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
        let id = MessageId::generate();
        let template = Event::new(EventKind::Accepted, account.clone(), id.clone()).of_message(&envelope);
        let sender = envelope.sender.to_string();
        let client_ip = envelope.client_ip;
        envelope.recipients = outcomes
            .iter()
            .filter(|(_, o)| *o == Outcome::Queued)
            .map(|(r, _)| r.clone())
            .collect();
        let mut index = 0;
        let events: Vec<Event> = outcomes
            .iter()
            .map(|(rcpt, outcome)| {
                let mut event = template.clone();
                event.id = herald_types::EventId::generate();
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
                event
            })
            .collect();

        // The message and the events that record its acceptance are made
        // durable together, before the client hears 250/202; the events
        // reach the pipeline from the spool, and a crash replays them.
        let size = body.len();
        let queued = envelope.recipients.len();
        // Scored before it is counted and stored (a refusal for now takes
        // nothing from the quota): over the threshold, every queued
        // recipient is held (with a `held` event) until an operator
        // releases it or its account drops it.
        let spam = if queued > 0 {
            self.score(&facts, &body).await?
        } else {
            None
        };
        // The account's rate and daily quota count what would be sent.
        self.quotas
            .take(
                self.policy.accounts().store().as_ref(),
                &account,
                &facts.name,
                &facts.settings,
                u32::try_from(queued).unwrap_or(u32::MAX),
            )
            .await?;
        let held = spam.as_ref().is_some_and(|s| s.score > s.threshold);
        let mut events = events;
        if let Some(score) = &spam {
            let mut holds = Vec::new();
            for e in events.iter_mut().filter(|e| e.kind == EventKind::Accepted) {
                e.spam = Some(score.clone());
                if held {
                    let mut h = e.clone();
                    h.id = herald_types::EventId::generate();
                    h.kind = EventKind::Held;
                    h.header_id = None;
                    h.reason = Some(format!(
                        "spam score {:.1} is over the threshold {:.1}{}",
                        score.score,
                        score.threshold,
                        if score.rules.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", score.rules.join(", "))
                        }
                    ));
                    holds.push(h);
                }
            }
            events.extend(holds);
        }
        let stored = if queued == 0 {
            self.spool.journal_events(events).await
        } else if held {
            self.spool.enqueue_held_with(id.clone(), envelope, body, events).await
        } else {
            self.spool.enqueue_with(id.clone(), envelope, body, events).await
        };
        stored.map_err(|e| {
            tracing::error!(error = %e, "cannot store an incoming message");
            SubmitError::Unavailable
        })?;
        tracing::info!(message = %id, account = %account, from = %sender, recipients = outcomes.len(), queued, size, client = %client_ip, "accepted");
        if held {
            tracing::warn!(message = %id, account = %account, score = spam.as_ref().map_or(0.0, |s| s.score), "held: spam score over the threshold");
        } else if queued > 0 {
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

    async fn submit_personal(&self, envelope: Envelope, body: Vec<u8>) -> Result<Accepted, SubmitError> {
        self.accept_personal(envelope, body).await
    }

    fn message_id_domain(&self) -> &str {
        &self.hostname
    }

    fn max_message_size(&self) -> usize {
        self.max_message_size
    }
}

/// Each From domain must belong to the message's stream
/// ([`herald_types::AccountSettings::check_stream_author`]).
fn stream_authors<'a>(
    facts: &AccountFacts,
    stream: &str,
    from_domains: impl IntoIterator<Item = &'a str>,
) -> Result<(), SubmitError> {
    for domain in from_domains {
        facts
            .settings
            .check_stream_author(stream, domain)
            .map_err(SubmitError::StreamDomain)?;
    }
    Ok(())
}
