//! Events: every step of a message's life, in the one shape the API,
//! webhooks and the CLI share (see interfaces.md).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AccountId, EventId, InvalidValue, MessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Accepted,
    Delivered,
    Deferred,
    Bounced,
    Dropped,
    Expired,
    Opened,
    Clicked,
    Complained,
    Unsubscribed,
    /// Mail came back to a reply address: sorted (auto-reply, challenge,
    /// delivery notice) and dropped, or a person's reply passed on.
    Replied,
    /// Something an account should know: a webhook disabled, a rate over
    /// its threshold. `reason` says what.
    Alert,
    /// Kept from delivery: its content scored over the account's spam
    /// threshold (`spam` says the score and the rules that hit). Released
    /// or dropped by the operator.
    Held,
}

impl EventKind {
    pub const ALL: [Self; 13] = [
        Self::Accepted,
        Self::Delivered,
        Self::Deferred,
        Self::Bounced,
        Self::Dropped,
        Self::Expired,
        Self::Opened,
        Self::Clicked,
        Self::Complained,
        Self::Unsubscribed,
        Self::Replied,
        Self::Alert,
        Self::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Delivered => "delivered",
            Self::Deferred => "deferred",
            Self::Bounced => "bounced",
            Self::Dropped => "dropped",
            Self::Expired => "expired",
            Self::Opened => "opened",
            Self::Clicked => "clicked",
            Self::Complained => "complained",
            Self::Unsubscribed => "unsubscribed",
            Self::Replied => "replied",
            Self::Alert => "alert",
            Self::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            InvalidValue::new(
                "event type",
                s,
                "accepted, delivered, deferred, bounced, dropped, expired, opened, clicked, complained, unsubscribed, replied, alert or held",
            )
        })
    }
}

/// A remote server's answer, and where in the dialogue it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpAnswer {
    pub code: u16,
    /// RFC 3463 enhanced status code, e.g. "5.1.1", when the server gave one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub enhanced: Option<String>,
    pub text: String,
    /// connect, greeting, ehlo, starttls, mail, rcpt, data, or dns.
    pub phase: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BounceClass {
    /// The address will never work: suppress it.
    Hard,
    /// This message failed; the address may work another time.
    Soft,
}

impl BounceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceInfo {
    pub class: BounceClass,
    /// A reason from Sisimai's taxonomy, e.g. "userunknown", "mailboxfull".
    pub reason: String,
}

/// Now, in milliseconds: the precision the store keeps, so a time read back
/// equals the time written.
pub fn now_ms() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

/// What SpamAssassin's `spamd` said of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpamScore {
    /// Its score (GTUBE scores 1000).
    pub score: f64,
    /// The account's threshold it was held over (or kept under).
    pub threshold: f64,
    /// The rules that hit, as spamd names them.
    #[serde(default)]
    pub rules: Vec<String>,
}

// Scores are finite: the reader refuses NaN and infinities.
impl Eq for SpamScore {}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    #[serde(rename = "type")]
    pub kind: EventKind,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub account: AccountId,
    pub stream: String,
    pub message_id: MessageId,
    pub recipient: Option<String>,
    pub sender: Option<String>,
    /// The address Herald sent from (delivery events) or the client's
    /// address (accepted).
    pub source_ip: Option<IpAddr>,
    /// The remote host that answered.
    pub mx: Option<String>,
    pub smtp: Option<SmtpAnswer>,
    pub bounce: Option<BounceInfo>,
    /// Why the message was not sent to the recipient (`dropped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The recipient's position among the message's queued recipients (the
    /// index a VERP token names), on `accepted` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcpt_index: Option<u32>,
    /// The message's Message-ID header (without brackets), on the first
    /// `accepted` event of a message, so bounces that name only it are matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    /// For opens and clicks: the reader's user agent and address, whether a
    /// machine made it, and the link followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Engagement>,
    /// The content's spam score, on `accepted` and `held` events when
    /// spamd scored the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spam: Option<SpamScore>,
}

/// What an open or a click tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    pub user_agent: String,
    pub ip: Option<IpAddr>,
    pub machine: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How many opens (or clicks of this link) by this reader the event
    /// stands for: repeats within a window are one event.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Event {
    /// A new event of `kind` for a message, now, with nothing else filled in.
    pub fn new(kind: EventKind, account: AccountId, message_id: MessageId) -> Self {
        let at = now_ms();
        Self {
            id: EventId::generate(),
            kind,
            at,
            account,
            stream: "transactional".to_owned(),
            message_id,
            recipient: None,
            sender: None,
            source_ip: None,
            mx: None,
            smtp: None,
            bounce: None,
            reason: None,
            rcpt_index: None,
            header_id: None,
            tags: Vec::new(),
            metadata: Vec::new(),
            engagement: None,
            spam: None,
        }
    }

    /// Stream, tags and metadata of the message, carried into the event.
    pub fn of_message(mut self, envelope: &crate::Envelope) -> Self {
        self.stream = envelope.stream.clone();
        self.tags = envelope.tags.clone();
        self.metadata = envelope.metadata.clone();
        self
    }
}

/// Where events go. `emit` never blocks and never fails the caller: the
/// sink owns buffering, durability and delivery onwards.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    fn emit(&self, event: Event);

    /// An event already journaled durably (in the spool) under `ticket`.
    /// The sink tells the journal ([`EventJournal::release`]) once the
    /// event is stored and everything it implies is done, so the journal
    /// can forget it; until then a crash replays it.
    fn emit_journaled(&self, event: Event, ticket: u64) {
        let _ = ticket;
        self.emit(event);
    }

    /// Events emitted but not yet stored. Acceptance holds back new mail
    /// while this is large, so memory stays bounded and events keep up.
    fn backlog(&self) -> usize {
        0
    }
}

/// The journal journaled events come from: told when it may forget them.
pub trait EventJournal: Send + Sync {
    /// The events of these tickets are stored and staged.
    fn release(&self, tickets: &[u64]);
}

/// Makes events durable before an answer that depends on them is given
/// (an unsubscribe page, a 202): they are journaled, then reach the sink.
#[async_trait::async_trait]
pub trait DurableEvents: Send + Sync {
    /// Returns once `events` are durable; `Err` (with a cause for the log)
    /// when they could not be made so, and the answer must say "try again".
    async fn record(&self, events: Vec<Event>) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_events_serialise_in_the_documented_shape() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Ok(k));
        }
        assert!(EventKind::parse("sent").is_err());
        let mut e = Event::new(EventKind::Bounced, AccountId::generate(), MessageId::generate());
        e.smtp = Some(SmtpAnswer {
            code: 550,
            enhanced: Some("5.1.1".into()),
            text: "user unknown".into(),
            phase: "rcpt".into(),
        });
        e.bounce = Some(BounceInfo {
            class: BounceClass::Hard,
            reason: "userunknown".into(),
        });
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "bounced");
        assert_eq!(json["smtp"]["enhanced"], "5.1.1");
        assert_eq!(json["bounce"]["class"], "hard");
        assert!(json["id"].as_str().unwrap().starts_with("evt_"));
        assert!(json["at"].as_str().unwrap().ends_with('Z'), "UTC: {}", json["at"]);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, e, "an event survives its JSON form exactly");
    }
}
