//! The inbound MX: what the world sends back, taken only for the addresses
//! Herald manages and turned into events.
//!
//! - `b<VERP token>@…` (any return path Herald wrote): bounces (DSNs of any
//!   format), late ones included, and complaints that come to the return
//!   path. The token names the message and the recipient.
//! - `u<VERP token>@…`: the mailto List-Unsubscribe of bulk mail.
//! - `fbl@<bounce domain>`: feedback-loop reports (ARF).
//! - `bounces@<bounce domain>`: bounces without a token, matched by the
//!   returned message's Message-ID.
//! - `dmarc@`, `rua@`, `ruf@` and `dmarc-reports@<bounce domain>`: DMARC
//!   aggregate and failure reports and TLS reports, read and stored before
//!   `250` (one that cannot be read is stored as a broken report with its
//!   error; a store failure asks the sender to retry).
//! - `r<VERP token>@…`: the Reply-To of bulk mail of accounts that have
//!   replies passed on. Auto-replies, challenge-response requests and
//!   delivery notices are recorded (`replied` with that reason) and
//!   dropped; a person's reply is posted to the account's URL and/or
//!   forwarded to its address (a failure asks the sender to retry), then
//!   recorded as `replied` with reason `reply`.
//!
//! - `postmaster@` and `abuse@` at the bounce domain and the server's
//!   hostname: kept for the operator as files ([`mailbox`]).
//!
//! Anything else is refused at RCPT with `550 5.7.1`. A message is answered
//! `250` only after its events are stored and the suppression lists are
//! updated, so nothing the world told us is lost.
//!
//! Attribution trusts the VERP token: it is in the return path only the
//! recipient's own server saw. A report without one is matched by the
//! returned message's Message-ID — which any sender may copy — so it
//! applies only to the recipient it names, only if that address was a
//! recipient of the message, and not at all when messages of several
//! accounts carry that Message-ID. What no machine can read (a report
//! address's broken report, the operator's mail) is kept up to a daily
//! quota per sending address and in all ([`quota`]), then `452 4.3.1`.

mod mailbox;
mod quota;

use std::net::IpAddr;
use std::sync::Arc;

use herald_bounces::{Failure, Kind, Reason, Report};
use herald_events::EventPipeline;
use herald_smtp_server::Reply;
use herald_store::{EventFilter, NewSuppression, Store, StoreError};
use herald_tracking::{Keyring, VerpToken};

use std::path::PathBuf;

use mailbox::OPERATOR_MAILBOXES;
use quota::DailyQuota;

use crate::accept::Acceptor;
use crate::forward::{self, FORWARDING_LOCAL, ForwardLimit};
use herald_outbound::Guard;
use herald_types::{
    AccountId, BounceClass, BounceInfo, EmailAddress, Event, EventKind, EventSink, MessageId, SmtpAnswer,
};

/// The local part of the feedback-loop address on the bounce domain.
pub const FEEDBACK_LOCAL: &str = "fbl";
/// The local part of the bounce address for bounces without a VERP token.
pub const BOUNCES_LOCAL: &str = "bounces";

/// What a recipient of the inbound MX is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A return path: bounces and complaints for one message and recipient.
    Verp(VerpToken),
    /// A mailto unsubscribe for one message and recipient.
    Unsubscribe(VerpToken),
    /// The feedback-loop address.
    Feedback,
    /// The bounce address without a token.
    Bounces,
    /// A reply address for one message and recipient.
    Reply(VerpToken),
    /// A DMARC report address.
    Dmarc,
    /// A mailbox of the operator (`postmaster`, `abuse`).
    Operator(&'static str),
}

/// The local parts of the DMARC report addresses on the bounce domain.
pub const DMARC_LOCALS: [&str; 4] = ["dmarc", "dmarc-reports", "rua", "ruf"];

pub struct Inbound {
    keys: Keyring,
    /// Person's replies forwarded per account per hour.
    forwards: ForwardLimit,
    store: Arc<dyn Store>,
    events: Arc<EventPipeline>,
    bounce_domain: String,
    /// Forwards replies.
    acceptor: Arc<Acceptor>,
    /// Posts replies, only to permitted addresses.
    http: Guard,
    /// Stores DMARC and TLS reports.
    dmarc: Arc<herald_dmarc::Dmarc>,
    /// The domains whose postmaster and abuse mail Herald takes.
    local_domains: Vec<String>,
    /// Where the operator's mail is kept; `None`: not taken.
    mailbox: Option<PathBuf>,
    /// Unreadable mail kept per day.
    unreadable: DailyQuota,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("bounce_domain", &self.bounce_domain)
            .finish_non_exhaustive()
    }
}

/// Why a message was not taken now.
#[derive(Debug)]
enum Refusal {
    /// A limit of the account was reached: try again later.
    Busy,
    /// Something failed on the way (store, URL, spool): try again later.
    Failed(anyhow::Error),
    /// Today's quota of unreadable mail is used.
    Full,
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Self::Failed(e)
    }
}

/// The inbound MX's settings and limits.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// Replies forwarded per account per hour.
    pub forwards_per_hour: u32,
    /// Which addresses reply URLs may reach.
    pub outbound: Arc<herald_outbound::Policy>,
    /// Domains besides the bounce domain whose `postmaster@` and `abuse@`
    /// are taken (the server's hostname).
    pub local_domains: Vec<String>,
    /// Where mail to `postmaster@` and `abuse@` is kept; `None` refuses it.
    pub mailbox: Option<PathBuf>,
    /// Unreadable messages kept per day per sending address, and in all.
    pub unreadable_per_ip: u32,
    pub unreadable_total: u32,
}

impl Default for InboundSettings {
    fn default() -> Self {
        Self {
            forwards_per_hour: DEFAULT_FORWARDS_PER_HOUR,
            outbound: Arc::default(),
            local_domains: Vec::new(),
            mailbox: None,
            unreadable_per_ip: 50,
            unreadable_total: 5000,
        }
    }
}

/// Replies forwarded per account per hour unless configured.
pub const DEFAULT_FORWARDS_PER_HOUR: u32 = 100;

/// How long a reply URL has to answer.
const POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A recipient a report is about, found in our records.
struct Target {
    account: AccountId,
    message: MessageId,
    recipient: String,
}

impl Inbound {
    pub fn new(
        keys: Keyring,
        store: Arc<dyn Store>,
        events: Arc<EventPipeline>,
        bounce_domain: &str,
        acceptor: Arc<Acceptor>,
        dmarc: Arc<herald_dmarc::Dmarc>,
        settings: &InboundSettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            keys,
            forwards: ForwardLimit::new(settings.forwards_per_hour),
            store,
            events,
            bounce_domain: bounce_domain.to_ascii_lowercase(),
            acceptor,
            http: Guard::new(
                settings.outbound.clone(),
                POST_TIMEOUT,
                concat!("Herald/", env!("CARGO_PKG_VERSION")),
            )?,
            dmarc,
            local_domains: std::iter::once(bounce_domain)
                .chain(settings.local_domains.iter().map(String::as_str))
                .map(str::to_ascii_lowercase)
                .collect(),
            mailbox: settings.mailbox.clone(),
            unreadable: DailyQuota::new(settings.unreadable_per_ip, settings.unreadable_total),
        })
    }

    /// The route of a recipient, or `None` when Herald does not take it.
    pub fn route(&self, rcpt: &EmailAddress) -> Option<Route> {
        let local = rcpt.local_part();
        if let Some(token) = VerpToken::parse(&self.keys, local) {
            return Some(Route::Verp(token));
        }
        if let Some(rest) = local.strip_prefix(['u', 'U'])
            && let Some(token) = VerpToken::parse(&self.keys, &format!("b{rest}"))
        {
            return Some(Route::Unsubscribe(token));
        }
        if let Some(rest) = local.strip_prefix(['r', 'R'])
            && let Some(token) = VerpToken::parse(&self.keys, &format!("b{rest}"))
        {
            return Some(Route::Reply(token));
        }
        let domain = rcpt.domain().as_str();
        let lower = local.to_ascii_lowercase();
        if self.mailbox.is_some()
            && self.local_domains.iter().any(|d| d == domain)
            && let Some(name) = OPERATOR_MAILBOXES.iter().find(|m| **m == lower)
        {
            return Some(Route::Operator(name));
        }
        if domain != self.bounce_domain {
            return None;
        }
        match lower.as_str() {
            FEEDBACK_LOCAL => Some(Route::Feedback),
            BOUNCES_LOCAL => Some(Route::Bounces),
            l if DMARC_LOCALS.contains(&l) => Some(Route::Dmarc),
            _ => None,
        }
    }

    /// Handles a message for `recipients` (all of them routed). Returns once
    /// what it says is recorded.
    pub async fn take(&self, recipients: &[EmailAddress], body: &[u8], client_ip: IpAddr) -> Result<(), Reply> {
        // Each route once: a message to rua@ and ruf@, or to one address
        // a thousand times, is read and recorded once.
        let mut routes: Vec<Route> = Vec::new();
        for route in recipients.iter().filter_map(|r| self.route(r)) {
            if !routes.contains(&route) {
                routes.push(route);
            }
        }
        let report = herald_bounces::parse(body);
        let kind = match report.as_ref().map(|r| &r.kind) {
            Some(Kind::Bounce) => "bounce",
            Some(Kind::Feedback) => "feedback",
            Some(Kind::AutoReply) => "autoreply",
            None => "other",
        };
        metrics::counter!("herald_inbound_messages_total", "kind" => kind).increment(1);
        let mut emitted = 0;
        for route in &routes {
            emitted += self
                .handle(route, report.as_ref(), body, client_ip)
                .await
                .map_err(|e| match e {
                    Refusal::Busy => Reply::new(451, [4, 7, 1], "Too many replies for this account; try again later"),
                    Refusal::Full => Reply::new(
                        452,
                        [4, 3, 1],
                        "Too much unreadable mail from you today; try again tomorrow",
                    ),
                    Refusal::Failed(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "inbound message not handled; asking the sender to retry");
                        Reply::try_later()
                    }
                })?;
        }
        if emitted > 0 && !self.events.flush().await {
            return Err(Reply::try_later());
        }
        tracing::info!(kind, events = emitted, "inbound message taken");
        Ok(())
    }

    async fn handle(
        &self,
        route: &Route,
        report: Option<&Report>,
        body: &[u8],
        client_ip: IpAddr,
    ) -> Result<usize, Refusal> {
        match route {
            Route::Dmarc => {
                let now = time::OffsetDateTime::now_utc();
                let bytes = body.to_vec();
                let source = Some(format!("smtp from {client_ip}"));
                // Reading is CPU work: off the async threads.
                let prepared = tokio::task::spawn_blocking(move || {
                    herald_dmarc::prepare_all(&bytes, herald_dmarc::Origin::Mx, source, now)
                })
                .await
                .map_err(|e| Refusal::Failed(e.into()))?;
                // Readable reports are what the address is for; what no
                // machine can read is kept only up to today's quota. Past
                // it, a message with readable reports beside a broken one
                // still gives its reports.
                let mut prepared = prepared;
                let broken = prepared.iter().any(|p| matches!(p, herald_dmarc::Prepared::Broken(_)));
                if broken && !self.unreadable.take(client_ip) {
                    prepared.retain(|p| matches!(p, herald_dmarc::Prepared::Report(_)));
                    if prepared.is_empty() {
                        return Err(Refusal::Full);
                    }
                    tracing::warn!(client = %client_ip, "unreadable part of a DMARC report message not kept: over today's quota");
                }
                for o in self.dmarc.store(prepared).await? {
                    tracing::info!(status = ?o.status, kind = o.kind.as_deref().unwrap_or("-"),
                        org = o.org_name.as_deref().unwrap_or("-"), domain = o.domain.as_deref().unwrap_or("-"),
                        error = o.error.as_deref().unwrap_or(""), "DMARC report received");
                }
                Ok(0)
            }
            Route::Operator(name) => {
                let Some(dir) = self.mailbox.clone() else { return Ok(0) };
                if !self.unreadable.take(client_ip) {
                    return Err(Refusal::Full);
                }
                let (bytes, name) = (body.to_vec(), *name);
                let kept = tokio::task::spawn_blocking(move || mailbox::keep(&dir, name, &bytes))
                    .await
                    .map_err(|e| Refusal::Failed(e.into()))?
                    .map_err(|e| Refusal::Failed(e.into()))?;
                tracing::info!(mailbox = name, client = %client_ip, file = %kept.display(), "mail for the operator kept");
                Ok(0)
            }
            Route::Unsubscribe(token) => Ok(self.unsubscribe(token).await?),
            Route::Reply(token) => {
                let Some(target) = self.by_token(token).await? else {
                    return Ok(0);
                };
                let kind = herald_bounces::sort_reply(body, report);
                if kind == herald_bounces::ReplyKind::Person {
                    self.pass_on(&target, body, client_ip).await?;
                }

                let mut e = self.event(EventKind::Replied, &target).await?;
                e.reason = Some(kind.as_str().to_owned());
                tracing::info!(message = %target.message, recipient = %target.recipient, kind = kind.as_str(), "reply recorded");
                self.events.emit(e);
                Ok(1)
            }
            Route::Verp(token) => {
                let Some(report) = report else { return Ok(0) };
                let Some(target) = self.by_token(token).await? else {
                    return Ok(0);
                };
                match report.kind {
                    Kind::Bounce => {
                        // The token names the recipient; the report's line
                        // for that recipient, or its first, says why.
                        let failure = report
                            .failures
                            .iter()
                            .find(|f| f.recipient.eq_ignore_ascii_case(&target.recipient))
                            .or(report.failures.first());
                        match failure {
                            Some(f) => Ok(self.bounce(&target, f).await?),
                            None => Ok(0),
                        }
                    }
                    Kind::Feedback => Ok(self.complaint(&target, report.failures.first()).await?),
                    // Vacation replies to the return path say nothing about
                    // delivery.
                    Kind::AutoReply => Ok(0),
                }
            }
            Route::Feedback | Route::Bounces => {
                let Some(report) = report else { return Ok(0) };
                let mut n = 0;
                for f in &report.failures {
                    let Some(target) = self.by_report(report, f).await? else {
                        tracing::info!(recipient = %f.recipient, "report about a message not found here");
                        continue;
                    };
                    n += match report.kind {
                        Kind::Bounce => self.bounce(&target, f).await?,
                        Kind::Feedback => self.complaint(&target, Some(f)).await?,
                        Kind::AutoReply => 0,
                    };
                }
                Ok(n)
            }
        }
    }

    /// Passes a person's reply on as the account asked: posted to its URL
    /// (any answer but 2xx is a failure), forwarded to its address in a
    /// notice from the platform. Over the account's forwarding limit the
    /// sender is asked to retry later, before anything is posted.
    async fn pass_on(&self, target: &Target, body: &[u8], client_ip: IpAddr) -> Result<(), Refusal> {
        let Some(account) = self.store.account_by_id(&target.account).await? else {
            return Ok(());
        };
        let settings = &account.settings;
        // A suspended brand sends nothing, forwards included; the reply is
        // still recorded and posted.
        let forward_to = settings.reply_forward_to.as_deref().filter(|_| account.is_active());
        if forward_to.is_some() && !self.forwards.has_room(&account.id) {
            tracing::warn!(account = %account.name, "reply forwarding limit reached; asking the sender to retry");
            return Err(Refusal::Busy);
        }
        if let Some(url) = &settings.reply_url {
            let parsed = mail_parser::MessageParser::default().parse(body);
            let from = parsed
                .as_ref()
                .and_then(|m| m.from())
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_owned);
            let payload = serde_json::json!({
                "type": "reply",
                "account": account.name.as_str(),
                "message_id": target.message.to_string(),
                "recipient": target.recipient,
                "from": from,
                "subject": parsed.as_ref().and_then(|m| m.subject()),
                "text": parsed.as_ref().and_then(|m| m.body_text(0)),
                "html": parsed.as_ref().and_then(|m| m.body_html(0)),
                "raw": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, body),
            });
            let request = self
                .http
                .post(url)
                .map_err(|f| Refusal::Failed(anyhow::anyhow!("the reply URL: {}", f.class())))?;
            self.http
                .send(request.json(&payload))
                .await
                .map_err(|f| Refusal::Failed(anyhow::anyhow!("the reply URL: {}", f.class())))?;
        }
        if let Some(to) = forward_to {
            if !self.forwards.take(&account.id) {
                return Err(Refusal::Busy);
            }
            let to = EmailAddress::parse(to).map_err(|e| Refusal::Failed(e.into()))?;
            let sender = EmailAddress::parse(&format!("{FORWARDING_LOCAL}@{}", self.bounce_domain))
                .map_err(|e| Refusal::Failed(e.into()))?;
            let message = forward::notice(
                body,
                &self.bounce_domain,
                &to,
                target.message.as_str(),
                &target.recipient,
            )
            .map_err(|e| Refusal::Failed(e.into()))?;
            self.acceptor
                .send_as_platform(&target.account, sender, to, message, client_ip)
                .await
                .map_err(|e| Refusal::Failed(anyhow::anyhow!("cannot forward the reply: {e}")))?;
        }
        Ok(())
    }

    /// The message and recipient a token names. What acceptance recorded
    /// is found without waiting on the event writer: in the spool while
    /// the message is queued (its envelope names account and recipients);
    /// then in the store; and if not there yet, once more after the events
    /// emitted so far are stored (a bounce can outrun its `accepted` event).
    async fn by_token(&self, token: &VerpToken) -> Result<Option<Target>, StoreError> {
        if let Some(q) = self.acceptor.queued(&token.message)
            && let Some(rcpt) = q.envelope.recipients.get(usize::from(token.recipient))
        {
            return Ok(Some(Target {
                account: q.envelope.account.clone(),
                message: token.message.clone(),
                recipient: rcpt.to_string(),
            }));
        }
        let lookup = || async {
            self.store
                .recipient_at(&token.message, u32::from(token.recipient))
                .await
                .map(|found| {
                    found.map(|(account, recipient)| Target {
                        account,
                        message: token.message.clone(),
                        recipient,
                    })
                })
        };
        match lookup().await? {
            Some(t) => Ok(Some(t)),
            None if self.events.flush().await => lookup().await,
            None => Ok(None),
        }
    }

    /// Finds what a report that came without a token is about: the
    /// returned message's return path when it carries one of our tokens
    /// (then the report must be about that token's recipient), else its
    /// Message-ID — any sender can copy one, so the match counts only for
    /// the recipient the report names, only if that address was a
    /// recipient of the message, and only when no other account's message
    /// carries the same Message-ID.
    async fn by_report(&self, report: &Report, f: &Failure) -> Result<Option<Target>, StoreError> {
        if let Some(local) = report
            .original_return_path
            .as_deref()
            .and_then(|rp| rp.trim_matches(['<', '>']).rsplit_once('@'))
            .map(|(l, _)| l)
            && let Some(token) = VerpToken::parse(&self.keys, local)
        {
            let target = self.by_token(&token).await?;
            return Ok(target.filter(|t| f.recipient.is_empty() || same_address(&t.recipient, &f.recipient)));
        }
        let Some(header_id) = report.original_message_id.as_deref() else {
            return Ok(None);
        };
        let mut found = self.store.messages_by_header_id(header_id).await?;
        if found.is_empty() && self.events.flush().await {
            // Its acceptance may not be stored yet.
            found = self.store.messages_by_header_id(header_id).await?;
        }
        let Some((_, first_account)) = found.first() else {
            return Ok(None);
        };
        if found.iter().any(|(_, account)| account != first_account) {
            tracing::warn!(
                header_id,
                "a report names a Message-ID that messages of several accounts carry; not applied"
            );
            return Ok(None);
        }
        for (message, account) in found {
            let accepted = self
                .store
                .list_events(
                    &EventFilter {
                        message_id: Some(message.clone()),
                        kinds: vec![EventKind::Accepted],
                        ..EventFilter::default()
                    },
                    MAX_RECIPIENTS_READ,
                )
                .await?;
            if let Some(rcpt) = accepted
                .into_iter()
                .filter_map(|e| e.recipient)
                .find(|r| same_address(r, &f.recipient))
            {
                return Ok(Some(Target {
                    account,
                    message,
                    recipient: rcpt,
                }));
            }
        }
        Ok(None)
    }

    /// An event about `target`, with its message's stream, sender, tags and
    /// metadata (from its `accepted` event).
    async fn event(&self, kind: EventKind, target: &Target) -> Result<Event, StoreError> {
        let mut e = Event::new(kind, target.account.clone(), target.message.clone());
        e.recipient = Some(target.recipient.clone());
        let accepted = self
            .store
            .list_events(
                &EventFilter {
                    message_id: Some(target.message.clone()),
                    kinds: vec![EventKind::Accepted],
                    ..EventFilter::default()
                },
                1,
            )
            .await?;
        if let Some(a) = accepted.into_iter().next() {
            e.stream = a.stream;
            e.sender = a.sender;
            e.tags = a.tags;
            e.metadata = a.metadata;
        }
        Ok(e)
    }

    /// A bounce (or a delay) reported after the fact: `bounced`, or
    /// `deferred` when the reason may pass, whatever the recipient's state.
    async fn bounce(&self, target: &Target, f: &Failure) -> Result<usize, StoreError> {
        let delayed = f.action.as_deref().is_some_and(|a| a.eq_ignore_ascii_case("delayed"));
        if f.action.as_deref().is_some_and(|a| {
            a.eq_ignore_ascii_case("delivered")
                || a.eq_ignore_ascii_case("relayed")
                || a.eq_ignore_ascii_case("expanded")
        }) {
            return Ok(0);
        }
        let transient = delayed || !f.hard && is_transient(f);
        let kind = if transient {
            EventKind::Deferred
        } else {
            EventKind::Bounced
        };
        let mut e = self.event(kind, target).await?;
        let temporary = transient || f.status.as_deref().is_some_and(|s| s.starts_with('4'));
        e.smtp = Some(SmtpAnswer {
            code: f.reply_code.unwrap_or(if temporary { 450 } else { 550 }),
            enhanced: f.status.clone(),
            text: f.diagnostic.clone(),
            phase: "dsn".to_owned(),
        });
        e.mx = f.remote_mta.clone();
        e.bounce = Some(BounceInfo {
            class: if f.hard { BounceClass::Hard } else { BounceClass::Soft },
            reason: f.reason.as_str().to_owned(),
        });
        tracing::info!(message = %target.message, recipient = %target.recipient, kind = kind.as_str(),
            reason = f.reason.as_str(), "bounce message recorded");
        self.events.emit(e);
        Ok(1)
    }

    /// A complaint: a `complained` event; the suppressor then suppresses the
    /// address for the whole brand.
    async fn complaint(&self, target: &Target, f: Option<&Failure>) -> Result<usize, StoreError> {
        let mut e = self.event(EventKind::Complained, target).await?;
        e.reason = Some(
            f.and_then(|f| f.feedback_type.clone())
                .unwrap_or_else(|| "abuse".to_owned()),
        );
        tracing::info!(message = %target.message, recipient = %target.recipient, "complaint recorded");
        self.events.emit(e);
        Ok(1)
    }

    /// A mailto unsubscribe: suppressed for the brand, and one event.
    async fn unsubscribe(&self, token: &VerpToken) -> Result<usize, StoreError> {
        let Some(target) = self.by_token(token).await? else {
            return Ok(0);
        };
        let Some(account) = self.store.account_by_id(&target.account).await? else {
            return Ok(0);
        };
        let mut e = self.event(EventKind::Unsubscribed, &target).await?;
        e.reason = Some("mailto".to_owned());
        let entry = NewSuppression {
            account: account.brand().clone(),
            address: target.recipient.to_ascii_lowercase(),
            reason: "unsubscribe".to_owned(),
            source_event: Some(e.id.clone()),
            brand: true,
        };
        if !self.store.suppress(&entry).await? {
            return Ok(0);
        }
        self.events.emit(e);
        Ok(1)
    }
}

/// The most recipients a message has (the send API's and SMTP's limit),
/// read when matching a report to one of them.
const MAX_RECIPIENTS_READ: u32 = 1000;

/// Whether two addresses are the same mailbox: the domain compared without
/// case, the local part exactly but for ASCII case (as every provider
/// treats it, and as the report's writer may have changed it).
fn same_address(a: &str, b: &str) -> bool {
    match (a.rsplit_once('@'), b.trim().trim_matches(['<', '>']).rsplit_once('@')) {
        (Some((la, da)), Some((lb, db))) => la.eq_ignore_ascii_case(lb) && da.eq_ignore_ascii_case(db),
        _ => false,
    }
}

/// Reasons that say the mailbox may take mail again soon (it is full): a
/// late DSN for them is a deferral, not a bounce.
fn is_transient(f: &Failure) -> bool {
    matches!(f.reason, Reason::MailboxFull | Reason::SystemFull)
}
