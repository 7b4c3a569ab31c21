//! The SMTP-answer rule engine: what an answer from a receiving server
//! means for the recipient (delivered, try again when, or bounced hard or
//! soft, and why) and for the destination as a whole (carry on, slow down,
//! or stop for a while).
//!
//! Main design decision: rules are data. The operator's
//! `[[response_rules]]` are matched first, in order, then Herald's default
//! rules (`defaults.toml`, written in the same format, so `herald rules
//! list` shows them as an operator would write them); the first rule that
//! matches decides. An answer no rule names falls back to the classifier
//! that reads bounce messages (`herald-feedback`), so a synchronous answer
//! and a later DSN for the same problem carry the same reason.
//!
//! How long a deferred recipient waits comes from the rule (`duration`) or
//! from its reason's retry ladder ([`RetryPolicy`]); the caller caps it by
//! the message's maximum age. Pure: no clock, no I/O.

mod fallback;
mod retry;
mod spec;

use std::time::Duration;

pub use herald_bounces::Reason;
use herald_types::BounceClass;
pub use retry::RetryPolicy;
pub use spec::{Action, CodeSpec, OneOrMany, Rule, RuleError, RuleSpec, reason_named};

/// Where in the SMTP conversation an answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Opening the connection (no answer: a made-up one).
    Connect,
    Greeting,
    /// EHLO, or HELO after a refused EHLO.
    Ehlo,
    StartTls,
    Mail,
    Rcpt,
    /// The reply to `DATA` (before the content).
    Data,
    /// The reply after the content.
    EndOfData,
    /// Finding where the domain's mail goes (MX and address lookups).
    Dns,
    /// Decided inside Herald (an operator's bounce, a lost body).
    Queue,
}

impl Phase {
    pub const ALL: [Self; 10] = [
        Self::Connect,
        Self::Greeting,
        Self::Ehlo,
        Self::StartTls,
        Self::Mail,
        Self::Rcpt,
        Self::Data,
        Self::EndOfData,
        Self::Dns,
        Self::Queue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Greeting => "greeting",
            Self::Ehlo => "ehlo",
            Self::StartTls => "starttls",
            Self::Mail => "mail",
            Self::Rcpt => "rcpt",
            Self::Data => "data",
            Self::EndOfData => "end_of_data",
            Self::Dns => "dns",
            Self::Queue => "queue",
        }
    }

    /// Reads a phase name as events carry it (`helo` is EHLO's).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        match s.as_str() {
            "helo" => Some(Self::Ehlo),
            "end_of_data" | "dot" | "eod" => Some(Self::EndOfData),
            _ => Self::ALL.into_iter().find(|p| p.as_str() == s),
        }
    }
}

/// An answer, real or made up for a failure that had none.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub code: u16,
    pub enhanced: Option<&'a str>,
    pub text: &'a str,
    pub phase: Option<Phase>,
}

/// What the answer was about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    pub sender_domain: Option<&'a str>,
    pub recipient_domain: &'a str,
    /// The destination the mail went to (`google`, `microsoft`, a
    /// `[[destinations]]` name), when it has a name.
    pub provider: Option<&'a str>,
}

/// Who made a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A `[[response_rules]]` entry.
    Config,
    /// One of Herald's default rules.
    Default,
    /// No rule matched: the bounce classifier named the reason.
    Classifier,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Default => "default",
            Self::Classifier => "classifier",
        }
    }
}

/// What becomes of the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Deferred {
        /// The wait before the next attempt (the caller caps it at the
        /// message's maximum age).
        retry_after: Duration,
        reason: Reason,
        /// Once the message is this old it bounces (with `then`) instead of
        /// waiting again; `None`: it may wait until its maximum age.
        give_up_after: Option<Duration>,
        /// What it becomes when it can wait no longer: bounced with this
        /// class and the reason, or (`None`) expired.
        then: Option<BounceClass>,
    },
    Bounced {
        class: BounceClass,
        reason: Reason,
    },
}

/// What the destination (the receiving provider or host set) should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond this recipient.
    None,
    /// Slow down (a lower rate and fewer connections, climbing back as
    /// answers improve) and pause for this long.
    Backoff(Duration),
    /// No connection at all for this long.
    Suspend(Duration),
}

/// A decision and the rule that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub effect: Effect,
    /// The rule's name; `classifier` when none matched.
    pub rule: String,
    pub origin: Origin,
}

impl Decision {
    /// One line for people: the decision and the rule that made it.
    pub fn describe(&self) -> String {
        let what = match &self.outcome {
            Outcome::Delivered => "delivered".to_owned(),
            Outcome::Bounced { class, reason } => format!("bounce {} ({})", class.as_str(), reason.as_str()),
            Outcome::Deferred {
                retry_after,
                reason,
                give_up_after,
                then,
            } => {
                let mut s = format!("defer ({}), retry in {}", reason.as_str(), human(*retry_after));
                match (give_up_after, then) {
                    (Some(age), Some(class)) => s.push_str(&format!(
                        "; bounces {} once the message is {} old",
                        class.as_str(),
                        human(*age)
                    )),
                    (None, Some(class)) => s.push_str(&format!(
                        "; bounces {} ({}) when the maximum age runs out",
                        class.as_str(),
                        reason.as_str()
                    )),
                    _ => s.push_str("; expires when the maximum age runs out"),
                }
                s
            }
        };
        let effect = match self.effect {
            Effect::None => String::new(),
            Effect::Backoff(d) => format!("; the destination backs off for {}", human(d)),
            Effect::Suspend(d) => format!("; the destination is suspended for {}", human(d)),
        };
        format!("{what}{effect}")
    }
}

/// A duration as people write it: `20m`, `1h30m`, `24h`, `45s`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Herald's default rules, in the operators' format.
pub const DEFAULT_RULES: &str = include_str!("defaults.toml");

#[derive(serde::Deserialize)]
struct RuleFile {
    response_rules: Vec<RuleSpec>,
}

/// The rules in force: the operator's, then the defaults, then the
/// classifier.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<Rule>,
    retry: RetryPolicy,
}

/// Two rule sets are equal when their rules are written the same, in the
/// same order, with the same retry ladders.
impl PartialEq for RuleSet {
    fn eq(&self, other: &Self) -> bool {
        self.retry == other.retry
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| a.spec == b.spec && a.origin == b.origin)
    }
}

impl Eq for RuleSet {}

impl RuleSet {
    /// The operator's rules (checked here) before the defaults.
    pub fn new(config: &[RuleSpec], retry: RetryPolicy) -> Result<Self, RuleError> {
        let mut rules = config
            .iter()
            .map(|r| r.compile(Origin::Config))
            .collect::<Result<Vec<_>, _>>()?;
        rules.extend(default_rules()?);
        Ok(Self { rules, retry })
    }

    /// The defaults alone.
    pub fn defaults() -> Result<Self, RuleError> {
        Self::new(&[], RetryPolicy::builtin())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Decides what `answer` means; `attempts` counts this one (1 = the
    /// first attempt), for the retry ladder.
    pub fn decide(&self, answer: &Answer<'_>, ctx: &Context<'_>, attempts: u16) -> Decision {
        for rule in &self.rules {
            if rule.matches(answer, ctx) {
                return self.apply(rule, answer, attempts);
            }
        }
        let outcome = fallback::classify(answer);
        Decision {
            outcome: self.with_retry(outcome, attempts),
            effect: Effect::None,
            rule: "classifier".to_owned(),
            origin: Origin::Classifier,
        }
    }

    fn apply(&self, rule: &Rule, answer: &Answer<'_>, attempts: u16) -> Decision {
        let classified = || fallback::reason(answer);
        let reason = rule.reason.unwrap_or_else(classified);
        let (outcome, effect) = match &rule.action {
            Action::Delivered => (Outcome::Delivered, Effect::None),
            Action::Bounce { class } => (
                Outcome::Bounced {
                    class: class.unwrap_or_else(|| fallback::class_of(reason, answer)),
                    reason,
                },
                Effect::None,
            ),
            Action::Defer {
                retry,
                give_up_after,
                then,
            } => (
                Outcome::Deferred {
                    retry_after: retry.unwrap_or_else(|| self.retry.delay(reason, attempts)),
                    reason,
                    give_up_after: *give_up_after,
                    then: *then,
                },
                Effect::None,
            ),
            Action::Backoff(d) => (deferred_for(*d, reason), Effect::Backoff(*d)),
            Action::Suspend(d) => (deferred_for(*d, reason), Effect::Suspend(*d)),
        };
        Decision {
            outcome,
            effect,
            rule: rule.name.clone(),
            origin: rule.origin,
        }
    }

    fn with_retry(&self, outcome: Outcome, attempts: u16) -> Outcome {
        match outcome {
            Outcome::Deferred {
                reason,
                give_up_after,
                then,
                ..
            } => Outcome::Deferred {
                retry_after: self.retry.delay(reason, attempts),
                reason,
                give_up_after,
                then,
            },
            other => other,
        }
    }
}

fn deferred_for(wait: Duration, reason: Reason) -> Outcome {
    Outcome::Deferred {
        retry_after: wait,
        reason,
        give_up_after: None,
        then: None,
    }
}

fn default_rules() -> Result<Vec<Rule>, RuleError> {
    let file: RuleFile = toml::from_str(DEFAULT_RULES).map_err(|e| RuleError {
        rule: "defaults".into(),
        field: "response_rules",
        message: e.to_string(),
    })?;
    file.response_rules.iter().map(|r| r.compile(Origin::Default)).collect()
}

#[cfg(test)]
mod tests;
