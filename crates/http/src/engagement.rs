//! Opens, clicks and unsubscribes: what the tracking and unsubscribe
//! endpoints record, answered from the signed token alone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_store::{EventFilter, NewSuppression, Store};
use herald_tracking::{Keyring, MachineRules, Purpose, Request, TrackToken, is_machine};
use herald_types::{DurableEvents, Engagement, Event, EventKind, EventSink, MessageId};

/// A second open of the same message by the same recipient within this
/// time is the same reading.
const OPEN_WINDOW: Duration = Duration::from_secs(120);
/// Past this many opens in one window the window turns early (a burst
/// this large loses some deduplication rather than memory).
const MAX_OPENS_PER_WINDOW: usize = 1_000_000;

/// Message, recipient, and whether a machine opened it: a proxy's prefetch
/// never hides the person's own reading.
type OpenKey = ([u8; 16], String, bool);

/// Recent opens in two generations: each lookup and insert is constant
/// time, and a generation is dropped whole once it is a window old.
#[derive(Default)]
struct RecentOpens {
    current: HashMap<OpenKey, Instant>,
    previous: HashMap<OpenKey, Instant>,
    turned: Option<Instant>,
}

impl RecentOpens {
    /// Remembers the open; false when the same one was seen within the window.
    fn first(&mut self, key: OpenKey, now: Instant) -> bool {
        let turned = *self.turned.get_or_insert(now);
        if now.duration_since(turned) >= OPEN_WINDOW || self.current.len() >= MAX_OPENS_PER_WINDOW {
            self.previous = std::mem::take(&mut self.current);
            self.turned = Some(now);
        }
        let seen = self.current.get(&key).or_else(|| self.previous.get(&key));
        if seen.is_some_and(|at| now.duration_since(*at) < OPEN_WINDOW) {
            return false;
        }
        self.current.insert(key, now);
        true
    }
}

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
    recent_opens: Mutex<RecentOpens>,
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
            recent_opens: Mutex::new(RecentOpens::default()),
            messages: Mutex::new(HashMap::new()),
            durable: None,
        }
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

    /// Records an open, unless the same reader opened it moments ago.
    pub async fn open(&self, t: &TrackToken, v: &Visitor) -> bool {
        let engagement = self.engagement(t, v);
        let key = (t.message.to_bytes(), t.recipient.clone(), engagement.machine);
        let first = self
            .recent_opens
            .lock()
            .map(|mut r| r.first(key, Instant::now()))
            .unwrap_or(true);
        if !first {
            return false;
        }
        self.events
            .emit(self.event(EventKind::Opened, t, Some(engagement)).await);
        true
    }

    pub async fn click(&self, t: &TrackToken, v: &Visitor) {
        let engagement = self.engagement(t, v);
        self.events
            .emit(self.event(EventKind::Clicked, t, Some(engagement)).await);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> OpenKey {
        ([n; 16], "rcpt@example.com".to_owned(), false)
    }

    #[test]
    fn an_open_repeated_within_two_minutes_counts_once() {
        let mut r = RecentOpens::default();
        let t0 = Instant::now();
        assert!(r.first(key(1), t0));
        assert!(!r.first(key(1), t0 + Duration::from_secs(119)));
        assert!(
            r.first(key(2), t0 + Duration::from_secs(119)),
            "another message is another open"
        );
        assert!(
            r.first(key(1), t0 + Duration::from_secs(121)),
            "past the window it is a new reading"
        );
    }

    #[test]
    fn an_open_is_remembered_across_a_generation_turn() {
        let mut r = RecentOpens::default();
        let t0 = Instant::now();
        assert!(r.first(key(9), t0)); // starts the generation
        assert!(r.first(key(1), t0 + Duration::from_secs(100)));
        // The generation turns at 120 s; the open at 100 s is still fresh at 150 s.
        assert!(r.first(key(3), t0 + Duration::from_secs(125)));
        assert!(!r.first(key(1), t0 + Duration::from_secs(150)));
        assert!(r.first(key(1), t0 + Duration::from_secs(221)));
    }

    #[test]
    fn old_generations_are_dropped() {
        let mut r = RecentOpens::default();
        let t0 = Instant::now();
        for n in 0..50 {
            r.first(key(n), t0);
        }
        r.first(key(100), t0 + Duration::from_secs(130));
        r.first(key(101), t0 + Duration::from_secs(260));
        assert_eq!(r.current.len() + r.previous.len(), 2, "the first 50 are forgotten");
    }
}
