//! Opens, clicks and unsubscribes: what the tracking and unsubscribe
//! endpoints record, answered from the signed token alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_store::{EventFilter, NewSuppression, Store};
use herald_tracking::{Keyring, MachineRules, Purpose, Request, TrackToken, is_machine};
use herald_types::{DurableEvents, Engagement, Event, EventKind, EventSink, MessageId};

use crate::coalesce::{Coalescer, Key, Offer};

/// Opens (and clicks of one link) by one reader within this time are one
/// event with a count, unless configured otherwise.
pub const DEFAULT_COALESCE_WINDOW: Duration = Duration::from_secs(60);

/// Messages whose stream, tags and metadata are remembered; past this the
/// memory starts over.
const REMEMBERED_MESSAGES: usize = 100_000;

/// What engagement events carry from their message, as its `accepted`
/// event recorded it.
#[derive(Debug, Clone, Default)]
struct MessageContext {
    stream: Option<String>,
    sender: Option<String>,
    tags: Vec<String>,
    metadata: Vec<(String, String)>,
}

/// The state the engagement endpoints share.
pub struct Tracker {
    pub keys: Keyring,
    pub events: Arc<dyn EventSink>,
    pub rules: MachineRules,
    store: Arc<dyn Store>,
    /// Opens and clicks held for their window.
    coalescer: Coalescer,
    messages: Mutex<HashMap<MessageId, Arc<MessageContext>>>,
    /// Where unsubscribe events are made durable before the answer.
    durable: Option<Arc<dyn DurableEvents>>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker").finish_non_exhaustive()
    }
}

/// Who asked.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user_agent: String,
    pub ip: Option<IpAddr>,
    pub head: bool,
}

impl Tracker {
    pub fn new(keys: Keyring, events: Arc<dyn EventSink>, rules: MachineRules, store: Arc<dyn Store>) -> Self {
        Self {
            keys,
            events,
            rules,
            store,
            coalescer: Coalescer::new(DEFAULT_COALESCE_WINDOW),
            messages: Mutex::new(HashMap::new()),
            durable: None,
        }
    }

    /// Opens and clicks by one reader within `window` are one event.
    pub fn with_coalesce_window(mut self, window: Duration) -> Self {
        self.coalescer = Coalescer::new(window);
        self
    }

    /// Emits the opens and clicks whose window has closed (all, at
    /// shutdown), or sheds them when the event pipeline is behind.
    pub fn release_due(&self, all: bool) {
        self.coalescer.release(self.events.as_ref(), Instant::now(), all);
    }

    /// Releases due opens and clicks until `stop`, then all that are held.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = (self.coalescer.window() / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => self.release_due(false),
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.release_due(true);
    }

    /// Unsubscribe events are made durable here (the spool's journal)
    /// before the page that confirms them is answered.
    pub fn with_durable_events(mut self, durable: Arc<dyn DurableEvents>) -> Self {
        self.durable = Some(durable);
        self
    }

    /// The message's stream, sender, tags and metadata (cached).
    async fn context(&self, t: &TrackToken) -> Arc<MessageContext> {
        if let Some(c) = self.messages.lock().ok().and_then(|m| m.get(&t.message).cloned()) {
            return c;
        }
        let filter = EventFilter {
            account: Some(t.account.clone()),
            kinds: vec![EventKind::Accepted, EventKind::Dropped],
            message_id: Some(t.message.clone()),
            ..EventFilter::default()
        };
        let found = match self.store.list_events(&filter, 1).await {
            Ok(events) => events.into_iter().next(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a message's events");
                return Arc::default();
            }
        };
        // Not recorded (yet): nothing to remember.
        let Some(e) = found else { return Arc::default() };
        let c = Arc::new(MessageContext {
            stream: Some(e.stream),
            sender: e.sender,
            tags: e.tags,
            metadata: e.metadata,
        });
        if let Ok(mut m) = self.messages.lock() {
            if m.len() >= REMEMBERED_MESSAGES {
                m.clear();
            }
            m.insert(t.message.clone(), c.clone());
        }
        c
    }

    pub fn decode(&self, purpose: Purpose, token: &str) -> Option<TrackToken> {
        TrackToken::decode(&self.keys, purpose, token)
    }

    fn engagement(&self, t: &TrackToken, v: &Visitor) -> Engagement {
        let now = u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(u32::MAX);
        let request = Request {
            head: v.head,
            user_agent: &v.user_agent,
            ip: v.ip,
            click: t.purpose == Purpose::Click,
            since_sent: now.saturating_sub(t.sent_at),
        };
        Engagement {
            user_agent: v.user_agent.clone(),
            ip: v.ip,
            machine: is_machine(&self.rules, &request),
            url: t.url.clone(),
            count: 1,
        }
    }

    async fn event(&self, kind: EventKind, t: &TrackToken, engagement: Option<Engagement>) -> Event {
        let c = self.context(t).await;
        let mut e = Event::new(kind, t.account.clone(), t.message.clone());
        if let Some(stream) = &c.stream {
            e.stream = stream.clone();
        }
        e.sender = c.sender.clone();
        e.tags = c.tags.clone();
        e.metadata = c.metadata.clone();
        e.recipient = Some(t.recipient.clone());
        e.engagement = engagement;
        e
    }

    /// Holds an event of `kind` for this reader, or counts it into the
    /// one held; whether it started a new one.
    async fn engage(&self, kind: EventKind, t: &TrackToken, v: &Visitor) -> bool {
        let engagement = self.engagement(t, v);
        let key: Key = (
            kind,
            t.message.to_bytes(),
            t.recipient.clone(),
            t.url.clone(),
            engagement.machine,
        );
        // A repeat costs a lookup, never the store.
        if self.coalescer.count(&key) {
            return false;
        }
        let event = self.event(kind, t, Some(engagement)).await;
        match self.coalescer.offer(key, event, Instant::now()) {
            Ok(Offer::Held) => true,
            Ok(Offer::Counted) => false,
            // Too many held: this reader's event goes on now, uncoalesced.
            Err(event) => Coalescer::pass_on(self.events.as_ref(), event),
        }
    }

    /// Records an open: opens by one reader (person or machine apart)
    /// within the window are one event with a count.
    pub async fn open(&self, t: &TrackToken, v: &Visitor) -> bool {
        self.engage(EventKind::Opened, t, v).await
    }

    /// Records a click: clicks of one link by one reader within the window
    /// are one event with a count.
    pub async fn click(&self, t: &TrackToken, v: &Visitor) {
        self.engage(EventKind::Clicked, t, v).await;
    }

    /// Whether the visitor is a machine (scanners follow links without a person).
    pub fn is_machine(&self, t: &TrackToken, v: &Visitor) -> bool {
        self.engagement(t, v).machine
    }

    /// Suppresses the recipient for every account of the brand and records
    /// the event, once.
    pub async fn unsubscribe(&self, t: &TrackToken, v: &Visitor) -> Result<(), herald_store::StoreError> {
        let event = self
            .event(EventKind::Unsubscribed, t, Some(self.engagement(t, v)))
            .await;
        let brand = match self.store.account_by_id(&t.account).await? {
            Some(a) => a.brand().clone(),
            // The account is gone: nothing to send from, nothing to record.
            None => return Ok(()),
        };
        let entry = NewSuppression {
            account: brand,
            address: t.recipient.clone(),
            reason: "unsubscribe".to_owned(),
            source_event: Some(event.id.clone()),
            brand: true,
        };
        if self.store.suppress(&entry).await? {
            match &self.durable {
                Some(d) => d
                    .record(vec![event])
                    .await
                    .map_err(herald_store::StoreError::Unavailable)?,
                None => self.events.emit(event),
            }
        }
        Ok(())
    }
}
