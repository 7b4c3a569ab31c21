//! Opens and clicks, coalesced and shed so that engagement never weighs on
//! mail.
//!
//! A reader who opens a message five times in a minute, or a scanner that
//! follows a link ten times, is one event with a count: the first of them
//! is held for the window, later ones within it only add to its count, and
//! the event leaves when the window closes. Memory is bounded: past
//! [`MAX_HELD`] held events a new reader's event is not held but passed on
//! at once, uncoalesced. Events leave only while
//! the event pipeline keeps up: when its backlog is past
//! [`SHED_BACKLOG`] — well below the level at which acceptance holds mail
//! back — engagement is dropped and counted instead, so a flood of opens
//! can never slow the intake of mail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_types::{Event, EventKind, EventSink};

/// Events held at most; past this, new readers' opens and clicks are
/// passed on at once (or shed while the pipeline is behind).
pub const MAX_HELD: usize = 100_000;
/// The event pipeline's backlog past which engagement is shed rather than
/// emitted (acceptance holds mail back at 100,000).
pub const SHED_BACKLOG: usize = 20_000;

/// One reader's action on one message (and link), by a person or a machine.
pub type Key = (EventKind, [u8; 16], String, Option<String>, bool);

#[derive(Debug)]
struct Held {
    event: Event,
    since: Instant,
}

/// What became of an offered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Counted into the event already held for this key.
    Counted,
    /// Held, to leave when its window closes.
    Held,
}

#[derive(Debug)]
pub struct Coalescer {
    window: Duration,
    held: Mutex<HashMap<Key, Held>>,
}

impl Coalescer {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            held: Mutex::new(HashMap::new()),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one more action into the held event of `key`, if there is one.
    pub fn count(&self, key: &Key) -> bool {
        match self.lock().get_mut(key) {
            Some(h) => {
                if let Some(g) = h.event.engagement.as_mut() {
                    g.count = g.count.saturating_add(1);
                }
                true
            }
            None => false,
        }
    }

    /// Holds `event` for `key` (or counts it into one held meanwhile);
    /// gives it back when [`MAX_HELD`] are held already.
    pub fn offer(&self, key: Key, event: Event, now: Instant) -> Result<Offer, Box<Event>> {
        let mut held = self.lock();
        if let Some(h) = held.get_mut(&key) {
            if let Some(g) = h.event.engagement.as_mut() {
                g.count = g.count.saturating_add(1);
            }
            return Ok(Offer::Counted);
        }
        if held.len() >= MAX_HELD {
            return Err(Box::new(event));
        }
        held.insert(key, Held { event, since: now });
        Ok(Offer::Held)
    }

    /// Passes on at once an event that could not be held, unless the
    /// pipeline is behind (then it is shed and counted); whether it went.
    pub fn pass_on(sink: &dyn EventSink, event: Box<Event>) -> bool {
        if sink.backlog() > SHED_BACKLOG {
            metrics::counter!("herald_engagement_shed_total").increment(1);
            return false;
        }
        sink.emit(*event);
        true
    }

    /// The events whose window has closed by `now` (all of them when
    /// `all`), removed from those held.
    pub fn take_due(&self, now: Instant, all: bool) -> Vec<Event> {
        let mut held = self.lock();
        let due: Vec<Key> = held
            .iter()
            .filter(|(_, h)| all || now.duration_since(h.since) >= self.window)
            .map(|(k, _)| k.clone())
            .collect();
        due.into_iter()
            .filter_map(|k| held.remove(&k))
            .map(|h| h.event)
            .collect()
    }

    /// Emits what is due to `sink`, unless its backlog says it is behind:
    /// then the events are shed (and counted), so mail keeps its pace.
    pub fn release(&self, sink: &dyn EventSink, now: Instant, all: bool) -> (usize, usize) {
        let due = self.take_due(now, all);
        let behind = sink.backlog() > SHED_BACKLOG;
        let n = due.len();
        if behind {
            metrics::counter!("herald_engagement_shed_total").increment(n as u64);
            if n > 0 {
                tracing::warn!(events = n, "the event pipeline is behind: opens and clicks shed");
            }
            return (0, n);
        }
        for e in due {
            sink.emit(e);
        }
        (n, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_types::{AccountId, Engagement, MessageId};

    fn open(machine: bool) -> (Key, Event) {
        let message = MessageId::generate();
        let mut e = Event::new(EventKind::Opened, AccountId::generate(), message.clone());
        e.engagement = Some(Engagement {
            user_agent: "x".into(),
            ip: None,
            machine,
            url: None,
            count: 1,
        });
        (
            (EventKind::Opened, message.to_bytes(), "r@x.test".into(), None, machine),
            e,
        )
    }

    #[derive(Debug, Default)]
    struct Sink {
        got: Mutex<Vec<Event>>,
        backlog: usize,
    }

    impl EventSink for Sink {
        fn emit(&self, event: Event) {
            self.got.lock().unwrap().push(event);
        }
        fn backlog(&self) -> usize {
            self.backlog
        }
    }

    #[test]
    fn repeats_within_the_window_are_one_event_with_a_count() {
        let c = Coalescer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (key, e) = open(false);
        assert_eq!(c.offer(key.clone(), e.clone(), t0), Ok(Offer::Held));
        assert!(c.count(&key));
        assert_eq!(c.offer(key.clone(), e, t0), Ok(Offer::Counted));
        let (machine_key, machine) = open(true);
        assert_eq!(
            c.offer(machine_key, machine, t0),
            Ok(Offer::Held),
            "a machine's is apart"
        );
        let sink = Sink::default();
        assert_eq!(c.release(&sink, t0 + Duration::from_secs(59), false), (0, 0), "not yet");
        assert_eq!(c.release(&sink, t0 + Duration::from_secs(60), false), (2, 0));
        let counts: Vec<u32> = sink
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.engagement.as_ref().unwrap().count)
            .collect();
        assert!(counts.contains(&3) && counts.contains(&1), "{counts:?}");
        assert!(!c.count(&key), "a new window after release");
    }

    #[test]
    fn a_pipeline_that_is_behind_gets_no_engagement() {
        let c = Coalescer::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let (key, e) = open(false);
        c.offer(key, e, t0).unwrap();
        let behind = Sink {
            backlog: SHED_BACKLOG + 1,
            ..Sink::default()
        };
        assert_eq!(c.release(&behind, t0 + Duration::from_secs(2), false), (0, 1));
        assert!(behind.got.lock().unwrap().is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let c = Coalescer::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..MAX_HELD {
            let (k, e) = open(false);
            c.offer(k, e, t0).unwrap();
        }
        let (k, e) = open(false);
        let given_back = c.offer(k.clone(), e, t0).expect_err("not held past the bound");
        // Passed on at once while the pipeline keeps up; shed when it is behind.
        let sink = Sink::default();
        assert!(Coalescer::pass_on(&sink, given_back.clone()));
        assert_eq!(sink.got.lock().unwrap().len(), 1);
        let behind = Sink {
            backlog: SHED_BACKLOG + 1,
            ..Sink::default()
        };
        assert!(!Coalescer::pass_on(&behind, given_back));
        assert!(behind.got.lock().unwrap().is_empty());
        // Repeats of readers already held are still counted.
        assert!(!c.count(&k));
    }
}
