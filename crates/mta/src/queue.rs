//! The scheduler, the destination queues and their workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::Resolver;
use herald_spool::{Queued, RcptState, RcptStatus, Spool};
use herald_types::{BounceClass, BounceInfo, Event, EventKind, EventSink, MessageId, SmtpAnswer};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use herald_rules::{Decision, Effect, Outcome};

use crate::Prepare;
use crate::client::{Connection, Dialer, Timeouts, opportunistic_tls};
use crate::destination::{Destination, DestinationView};
use crate::mta_sts::{Lookup, Mode, Policy, Sts};
use crate::pools::{Choice, Pools};
use crate::route::{Target, route};
use crate::shaping::Shaping;
use crate::simulator;
use crate::tls_check::CertStatus;
use crate::tls_report::{Applied, TlsReports};
use crate::{DeliveryConfig, QueueError};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> i64 {
    herald_spool::to_ms(time::OffsetDateTime::now_utc())
}

/// Next attempts, earliest first: (due unix ms, message id bytes).
type Timers = BinaryHeap<Reverse<(i64, [u8; 16])>>;

/// Some recipients of one message, bound for one destination.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: MessageId,
    pub recipients: Vec<usize>,
    /// The hosts this job's domain routes to (a destination rolled up from
    /// several domains holds jobs for different host sets).
    pub target: Target,
    /// The recipients' domain.
    pub domain: String,
    /// The domain's MTA-STS policy, when it has one.
    pub sts: Option<Policy>,
}

impl Job {
    /// Whether the domain's policy requires a valid certificate.
    fn enforced(&self) -> bool {
        self.sts.as_ref().is_some_and(|p| p.mode == Mode::Enforce)
    }

    /// The policy as TLS-RPT names it.
    fn applied(&self) -> Option<Applied> {
        self.sts.as_ref().map(|p| sts_applied(&self.domain, p))
    }
}

fn dane_applied(domain: &str, host: &str) -> Applied {
    Applied {
        domain: domain.to_owned(),
        policy_type: "tlsa",
        policy_string: Vec::new(),
        mx_host: vec![host.to_owned()],
    }
}

fn sts_applied(domain: &str, p: &Policy) -> Applied {
    let mode = match p.mode {
        Mode::Enforce => "enforce",
        Mode::Testing => "testing",
        Mode::None => "none",
    };
    let mut lines = vec!["version: STSv1".to_owned(), format!("mode: {mode}")];
    lines.extend(p.mx.iter().map(|m| format!("mx: {m}")));
    lines.push(format!("max_age: {}", p.max_age));
    Applied {
        domain: domain.to_owned(),
        policy_type: "sts",
        policy_string: lines,
        mx_host: p.mx.clone(),
    }
}

pub struct Inner {
    config: DeliveryConfig,
    spool: Arc<Spool>,
    resolver: Arc<dyn Resolver>,
    events: Arc<dyn EventSink>,
    prepare: Arc<dyn Prepare>,
    dialer: Dialer,
    shaping: Shaping,
    pools: Pools,
    sts: Option<Sts>,
    tls_reports: TlsReports,
    /// The next attempt of each message.
    timers: Mutex<Timers>,
    wake: Notify,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    /// Messages being delivered, with their jobs still open.
    in_flight: Mutex<HashMap<[u8; 16], usize>>,
    /// The destination each recipient domain went to last (for the queue
    /// listing's filter); at most `DOMAIN_MEMORY` domains.
    domain_destinations: Mutex<HashMap<String, String>>,
    /// Whether domains' MX records are authenticated, for DANE.
    mx_secure: Mutex<HashMap<String, (std::time::Instant, bool)>>,
    tasks: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mta")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A recipient's outcome, as written to the spool.
enum Final {
    Delivered,
    Bounced(BounceInfo),
    Expired(BounceInfo),
    Pending { next_ms: i64, reason: &'static str },
}

impl Inner {
    pub fn new(
        config: DeliveryConfig,
        spool: Arc<Spool>,
        resolver: Arc<dyn Resolver>,
        events: Arc<dyn EventSink>,
        prepare: Arc<dyn Prepare>,
    ) -> Arc<Self> {
        let tls = if config.starttls {
            match opportunistic_tls() {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "no TLS client configuration; delivering without STARTTLS");
                    None
                }
            }
        } else {
            None
        };
        let dialer = Dialer {
            ehlo_name: config.ehlo_name.clone(),
            timeouts: Timeouts {
                connect: config.connect_timeout,
                command: config.command_timeout,
            },
            tls,
            max_mx_hosts: config.max_mx_hosts,
            max_addresses: config.max_addresses,
            dane: config.dane,
            tlsa_cache: Arc::default(),
            verifier: match crate::tls_check::Verifier::new(&config.extra_roots) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "certificates cannot be checked; MTA-STS is not applied");
                    None
                }
            },
        };
        let shaping = Shaping::new(config.destinations.clone(), config.limits());
        let pools = Pools::new(config.pools.clone());
        let state = |name: &str| config.state_dir.as_ref().map(|d| d.join(name));
        let sts = if config.mta_sts && dialer.verifier.is_some() {
            let outbound = Arc::new(herald_outbound::Policy::new(config.fetch_allow.clone()));
            match crate::mta_sts::HttpsFetch::new(resolver.clone(), outbound, &config.extra_roots, config.mta_sts_port)
            {
                Ok(fetch) => Some(Sts::new(resolver.clone(), Arc::new(fetch), state("mta-sts.json"))),
                Err(e) => {
                    tracing::warn!(error = %e, "MTA-STS policies cannot be fetched; not applied");
                    None
                }
            }
        } else {
            None
        };
        let tls_reports = TlsReports::new(state("tls-rpt.json"));
        Arc::new(Self {
            config,
            spool,
            resolver,
            events,
            prepare,
            dialer,
            shaping,
            pools,
            sts,
            tls_reports,
            timers: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            destinations: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            domain_destinations: Mutex::new(HashMap::new()),
            mx_secure: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
        })
    }

    fn schedule_at(&self, due_ms: i64, id: &MessageId) {
        lock(&self.timers).push(Reverse((due_ms, id.to_bytes())));
        self.wake.notify_one();
    }

    pub fn schedule_now(&self, id: &MessageId) {
        self.schedule_at(now_ms(), id);
    }

    pub fn scheduled(&self) -> usize {
        lock(&self.timers).len()
    }

    /// Every destination seen since the start, with its state.
    pub fn destinations(&self) -> Vec<DestinationView> {
        let now = now_ms();
        let mut all: Vec<DestinationView> = lock(&self.destinations).values().map(|d| d.view(now)).collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// The destination (its provider's name, or its key) mail for `domain`
    /// went to last.
    pub fn destination_of(&self, domain: &str) -> Option<String> {
        lock(&self.domain_destinations)
            .get(&domain.to_ascii_lowercase())
            .cloned()
    }

    pub fn provider_of(&self, domain: &str) -> Option<String> {
        let domain = domain.to_ascii_lowercase();
        // Remembered destinations are a site's name, or a host set's key
        // (with its port after a colon).
        self.destination_of(&domain)
            .filter(|d| !d.contains(':'))
            .or_else(|| self.shaping.place(&domain, &[]).site)
    }

    fn remember_destination(&self, domain: &str, dest: &Destination) {
        let name = dest.site.clone().unwrap_or_else(|| dest.key.clone());
        let mut known = lock(&self.domain_destinations);
        if known.len() >= DOMAIN_MEMORY && !known.contains_key(domain) {
            known.clear();
        }
        known.insert(domain.to_ascii_lowercase(), name);
    }

    /// The metrics' gauges per destination and pool, from every
    /// destination's state. Labels are bounded: a provider's name or
    /// `other`, a pool's name or `system`.
    fn publish_gauges(&self) {
        #[derive(Default)]
        struct Sum {
            queued: usize,
            connections: usize,
            factor: f64,
            backoff: bool,
            suspended: bool,
            per_minute: Option<f64>,
        }
        let now = now_ms();
        let mut sums: HashMap<(String, String), Sum> = HashMap::new();
        for d in lock(&self.destinations).values() {
            let v = d.view(now);
            let pool = d
                .source
                .as_ref()
                .and_then(|(ip, _)| self.pools.pool_of(ip))
                .unwrap_or_else(|| "system".to_owned());
            let sum = sums
                .entry((v.site.clone().unwrap_or_else(|| "other".to_owned()), pool))
                .or_insert_with(|| Sum {
                    factor: 1.0,
                    ..Sum::default()
                });
            sum.queued += v.queued;
            sum.connections += v.connections;
            sum.factor = sum.factor.min(v.rate_factor);
            sum.backoff |= v.state == "backoff";
            sum.suspended |= v.state == "suspended";
            if let Some(m) = v.messages_per_minute {
                *sum.per_minute.get_or_insert(0.0) += f64::from(m) * v.rate_factor;
            }
        }
        for ((destination, pool), s) in sums {
            let labels = [("destination", destination), ("pool", pool)];
            metrics::gauge!("herald_destination_queued", &labels).set(s.queued as f64);
            metrics::gauge!("herald_destination_connections", &labels).set(s.connections as f64);
            metrics::gauge!("herald_destination_rate_factor", &labels).set(s.factor);
            metrics::gauge!("herald_destination_backoff", &labels).set(if s.backoff { 1.0 } else { 0.0 });
            metrics::gauge!("herald_destination_suspended", &labels).set(if s.suspended { 1.0 } else { 0.0 });
            if let Some(m) = s.per_minute {
                metrics::gauge!("herald_destination_rate_limit_per_minute", &labels).set(m);
            }
        }
        metrics::gauge!("herald_queue_scheduled").set(self.scheduled() as f64);
    }

    /// A TLS failure for TLS-RPT under the policy that required TLS.
    fn report_failure(&self, job: &Job, policy: &str, result: &'static str, host: &str) {
        if policy == "tlsa" {
            self.tls_reports.failure(&dane_applied(&job.domain, host), result, host);
        } else if let Some(applied) = job.applied() {
            self.tls_reports.failure(&applied, result, host);
        }
    }

    /// Whether `domain`'s MX records are authenticated (remembered five
    /// minutes).
    async fn mx_secure(&self, domain: &str) -> bool {
        let cached = lock(&self.mx_secure)
            .get(domain)
            .filter(|(at, _)| at.elapsed() < Duration::from_secs(300))
            .map(|(_, s)| *s);
        if let Some(s) = cached {
            return s;
        }
        let secure = self.resolver.mx_secure(domain).await.unwrap_or(false);
        let mut known = lock(&self.mx_secure);
        if known.len() >= DOMAIN_MEMORY {
            known.clear();
        }
        known.insert(domain.to_owned(), (std::time::Instant::now(), secure));
        secure
    }

    /// A day's TLS-RPT `policies` (RFC 8460), `YYYY-MM-DD`.
    pub fn tls_report(&self, day: &str) -> Vec<serde_json::Value> {
        self.tls_reports.policies(day)
    }

    pub fn warmup(&self) -> Vec<crate::pools::WarmupStatus> {
        self.pools.status(time::OffsetDateTime::now_utc())
    }

    fn expires_ms(&self, q: &Queued) -> i64 {
        let max_age = i64::try_from(self.config.max_age.as_millis()).unwrap_or(i64::MAX);
        herald_spool::to_ms(q.envelope.received_at).saturating_add(max_age)
    }

    pub fn retry(&self, id: &MessageId) -> Result<(), QueueError> {
        let q = self.spool.get(id).ok_or(QueueError::NotFound)?;
        let now = now_ms();
        for (i, s) in q.states.iter().enumerate() {
            if s.status == RcptStatus::Pending && s.next_attempt_ms > now {
                let _ = self.spool.update(
                    id,
                    i,
                    RcptState {
                        next_attempt_ms: now,
                        ..*s
                    },
                );
            }
        }
        self.schedule_at(now, id);
        Ok(())
    }

    /// Held recipients of `id` become pending, due now; how many.
    pub fn release(&self, id: &MessageId) -> Result<usize, QueueError> {
        let q = self.spool.get(id).ok_or(QueueError::NotFound)?;
        let now = now_ms();
        let mut released = 0;
        for (i, s) in q.states.iter().enumerate() {
            // Only while still held: a drop racing this release wins or
            // loses whole, per recipient.
            if s.status == RcptStatus::Held
                && self
                    .spool
                    .update_from(id, i, RcptStatus::Held, RcptState::new(now), None)
                    .is_ok()
            {
                released += 1;
            }
        }
        if released > 0 {
            self.schedule_at(now, id);
        }
        Ok(released)
    }

    /// Held recipients of `id` are removed, each with a `dropped` event
    /// giving `why`; how many.
    pub fn drop_held(&self, id: &MessageId, why: &str) -> Result<usize, QueueError> {
        let q = self.spool.get(id).ok_or(QueueError::NotFound)?;
        let mut dropped = 0;
        for (i, s) in q.states.iter().enumerate() {
            if s.status != RcptStatus::Held {
                continue;
            }
            let mut event =
                Event::new(EventKind::Dropped, q.envelope.account.clone(), q.id.clone()).of_message(&q.envelope);
            event.recipient = q.envelope.recipients.get(i).map(ToString::to_string);
            event.sender = Some(q.envelope.sender.to_string());
            event.reason = Some(why.to_owned());
            let purged = RcptState {
                status: RcptStatus::Purged,
                ..*s
            };
            if self
                .spool
                .update_from(&q.id, i, RcptStatus::Held, purged, Some(event))
                .is_ok()
            {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    pub fn give_up(&self, id: &MessageId, silently: bool) -> Result<(), QueueError> {
        let q = self.spool.get(id).ok_or(QueueError::NotFound)?;
        let answer = SmtpAnswer {
            code: 554,
            enhanced: Some("5.3.0".to_owned()),
            text: if silently {
                "purged by the operator"
            } else {
                "bounced by the operator"
            }
            .to_owned(),
            phase: "queue".to_owned(),
        };
        for (i, s) in q.states.iter().enumerate() {
            if s.status != RcptStatus::Pending {
                continue;
            }
            if silently {
                let _ = self.spool.update(
                    id,
                    i,
                    RcptState {
                        status: RcptStatus::Purged,
                        ..*s
                    },
                );
            } else {
                let outcome = Outcome::Bounced {
                    class: BounceClass::Soft,
                    reason: herald_rules::Reason::OnHold,
                };
                self.record(&q, i, &outcome, Some(answer.clone()), None);
            }
        }
        Ok(())
    }

    /// What an answer means for a recipient of `q` at `domain`, sent to
    /// the destination `site`.
    fn decide(&self, q: &Queued, domain: &str, site: Option<&str>, answer: &SmtpAnswer, attempts: u16) -> Decision {
        let sender_domain = match &q.envelope.sender {
            herald_types::ReversePath::Address(a) => Some(a.domain().as_str()),
            herald_types::ReversePath::Null => None,
        };
        let a = herald_rules::Answer {
            code: answer.code,
            enhanced: answer.enhanced.as_deref(),
            text: &answer.text,
            phase: herald_rules::Phase::parse(&answer.phase),
        };
        let ctx = herald_rules::Context {
            sender_domain,
            recipient_domain: domain,
            provider: site,
        };
        self.config.rules.decide(&a, &ctx, attempts)
    }

    /// The decision for recipient `index` of `q`, made, logged and written.
    fn decide_and_record(
        &self,
        q: &Queued,
        index: usize,
        dest: Option<&Destination>,
        answer: SmtpAnswer,
        conn: Option<(&str, std::net::IpAddr)>,
    ) -> Decision {
        let attempts = q.states.get(index).map_or(1, |s| s.attempts.saturating_add(1));
        let domain = q
            .envelope
            .recipients
            .get(index)
            .map(|r| r.domain().as_str().to_owned())
            .unwrap_or_default();
        let decision = self.decide(q, &domain, dest.and_then(|d| d.site.as_deref()), &answer, attempts);
        if decision.origin != herald_rules::Origin::Classifier {
            tracing::debug!(message = %q.id, rule = %decision.rule, decision = %decision.describe(), "response rule");
        }
        let written = self.record(q, index, &decision.outcome, Some(answer), conn);
        let label = dest.map_or_else(|| "none".to_owned(), |d| d.metric_label());
        let pool = dest
            .and_then(|d| d.source.as_ref())
            .and_then(|(ip, _)| self.pools.pool_of(ip))
            .unwrap_or_else(|| "system".to_owned());
        let outcome = match &written {
            Some(Final::Delivered) => "delivered",
            Some(Final::Bounced(_)) => "bounced",
            Some(Final::Expired(_)) => "expired",
            Some(Final::Pending { .. }) => "deferred",
            None => "gone",
        };
        metrics::counter!("herald_delivery_recipients_total", "destination" => label.clone(), "pool" => pool, "outcome" => outcome)
            .increment(1);
        match &written {
            Some(Final::Pending { reason, .. }) => {
                metrics::counter!("herald_delivery_deferred_total", "destination" => label, "reason" => *reason)
                    .increment(1);
            }
            Some(Final::Delivered) => {
                let age = now_ms()
                    .saturating_sub(herald_spool::to_ms(q.envelope.received_at))
                    .max(0);
                metrics::histogram!("herald_delivery_latency_seconds", "destination" => label)
                    .record(age as f64 / 1000.0);
            }
            _ => {}
        }
        if let Some(dest) = dest {
            let delivered = matches!(written, Some(Final::Delivered));
            let bounced = matches!(written, Some(Final::Bounced(_) | Final::Expired(_)));
            dest.observe(delivered, bounced, decision.effect, &decision.rule, now_ms());
        }
        decision
    }

    /// Writes one recipient's outcome to the spool and emits its event. A
    /// deferral that can wait no longer (past the rule's give-up age, or
    /// its next attempt past the maximum age) ends now: bounced with the
    /// rule's class, or expired.
    fn record(
        &self,
        q: &Queued,
        index: usize,
        outcome: &Outcome,
        answer: Option<SmtpAnswer>,
        conn: Option<(&str, std::net::IpAddr)>,
    ) -> Option<Final> {
        let state = q.states.get(index).copied()?;
        let attempts = state.attempts.saturating_add(1);
        let now = now_ms();
        let fin = match outcome {
            Outcome::Delivered => Final::Delivered,
            Outcome::Bounced { class, reason } => Final::Bounced(BounceInfo {
                class: *class,
                reason: reason.as_str().to_owned(),
            }),
            Outcome::Deferred {
                retry_after,
                reason,
                give_up_after,
                then,
            } => {
                let age = now.saturating_sub(herald_spool::to_ms(q.envelope.received_at));
                let too_old = give_up_after.is_some_and(|g| age >= i64::try_from(g.as_millis()).unwrap_or(i64::MAX));
                let next = now.saturating_add(i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX));
                let bounce = |class: BounceClass| BounceInfo {
                    class,
                    reason: reason.as_str().to_owned(),
                };
                if too_old {
                    Final::Bounced(bounce(then.unwrap_or(BounceClass::Hard)))
                } else if next >= self.expires_ms(q) {
                    match then {
                        Some(class) => Final::Bounced(bounce(*class)),
                        None => Final::Expired(BounceInfo {
                            class: BounceClass::Soft,
                            reason: "expired".to_owned(),
                        }),
                    }
                } else {
                    Final::Pending {
                        next_ms: next,
                        reason: reason.as_str(),
                    }
                }
            }
        };
        let (status, kind, next, bounce, reason) = match &fin {
            Final::Delivered => (RcptStatus::Delivered, EventKind::Delivered, 0, None, None),
            Final::Bounced(b) => (RcptStatus::Bounced, EventKind::Bounced, 0, Some(b.clone()), None),
            Final::Expired(b) => (RcptStatus::Expired, EventKind::Expired, 0, Some(b.clone()), None),
            Final::Pending { next_ms, reason } => (
                RcptStatus::Pending,
                EventKind::Deferred,
                *next_ms,
                None,
                Some((*reason).to_owned()),
            ),
        };
        let new = RcptState {
            status,
            attempts,
            next_attempt_ms: next,
        };
        let mut event = Event::new(kind, q.envelope.account.clone(), q.id.clone()).of_message(&q.envelope);
        event.recipient = q.envelope.recipients.get(index).map(ToString::to_string);
        event.sender = Some(q.envelope.sender.to_string());
        event.smtp = answer;
        event.bounce = bounce;
        event.reason = reason;
        if let Some((mx, ip)) = conn {
            event.mx = Some(mx.to_owned());
            event.source_ip = Some(ip);
        }
        // The new state and its event are journaled together: a crash
        // keeps both or neither (then the attempt is made again).
        // Gone meanwhile (purged, or finished by another path): no event.
        let _ = self.spool.update_with_event(&q.id, index, new, event);
        Some(fin)
    }

    /// Moves recipients' next attempt to `until` without counting an
    /// attempt (their destination is paused).
    fn postpone(&self, id: &MessageId, recipients: &[usize], until: i64) {
        let Some(q) = self.spool.get(id) else { return };
        for &i in recipients {
            if let Some(s) = q.states.get(i).copied()
                && s.status == RcptStatus::Pending
            {
                let _ = self.spool.update(
                    id,
                    i,
                    RcptState {
                        next_attempt_ms: until.max(s.next_attempt_ms),
                        ..s
                    },
                );
            }
        }
    }

    /// Plays the mailbox simulator's answers for recipients at its domain.
    fn simulate(&self, q: &Queued, recipients: &[usize]) {
        for &i in recipients {
            let (Some(state), Some(rcpt)) = (q.states.get(i).copied(), q.envelope.recipients.get(i)) else {
                continue;
            };
            let (answer, then) = simulator::simulate(rcpt.local_part(), u32::from(state.attempts));
            let decision = self.decide(
                q,
                simulator::SIMULATOR_DOMAIN,
                None,
                &answer,
                state.attempts.saturating_add(1),
            );
            let written = self.record(
                q,
                i,
                &decision.outcome,
                Some(answer),
                Some((simulator::SIMULATOR_DOMAIN, std::net::Ipv4Addr::LOCALHOST.into())),
            );
            if matches!(written, Some(Final::Pending { .. })) {
                // Retried soon, so a test of the deferrals does not wait
                // for the retry schedule.
                let _ = self.spool.update(
                    &q.id,
                    i,
                    RcptState {
                        status: RcptStatus::Pending,
                        attempts: state.attempts.saturating_add(1),
                        next_attempt_ms: now_ms() + simulator::SOFT_RETRY_MS,
                    },
                );
            }
            // What follows a delivery, as the inbound MX would record it: a
            // complaint (an ARF report), or an auto-reply to a reply address.
            let follow_up = match then {
                simulator::Then::Nothing => None,
                simulator::Then::Complaint => Some((EventKind::Complained, "abuse")),
                simulator::Then::AutoReply => Some((EventKind::Replied, "auto_reply")),
            };
            if let Some((kind, reason)) = follow_up {
                let mut event = Event::new(kind, q.envelope.account.clone(), q.id.clone()).of_message(&q.envelope);
                event.recipient = Some(rcpt.to_string());
                event.sender = Some(q.envelope.sender.to_string());
                event.reason = Some(reason.to_owned());
                self.events.emit(event);
            }
        }
    }

    fn expire(&self, q: &Queued, index: usize) {
        let Some(state) = q.states.get(index).copied() else {
            return;
        };
        let new = RcptState {
            status: RcptStatus::Expired,
            ..state
        };
        let mut event =
            Event::new(EventKind::Expired, q.envelope.account.clone(), q.id.clone()).of_message(&q.envelope);
        event.recipient = q.envelope.recipients.get(index).map(ToString::to_string);
        event.sender = Some(q.envelope.sender.to_string());
        event.bounce = Some(BounceInfo {
            class: BounceClass::Soft,
            reason: "expired".to_owned(),
        });
        let _ = self.spool.update_with_event(&q.id, index, new, event);
    }

    /// Called when a job of `id` is finished: once its last job is, the
    /// message is scheduled for its next attempt, if any recipient is left.
    fn job_done(&self, id: &MessageId) {
        let key = id.to_bytes();
        let last = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    in_flight.remove(&key);
                    true
                }
            }
        };
        if last && let Some(q) = self.spool.get(id) {
            let next = q
                .states
                .iter()
                .filter(|s| s.status == RcptStatus::Pending)
                .map(|s| s.next_attempt_ms)
                .min();
            if let Some(next) = next {
                self.schedule_at(next, id);
            }
        }
    }

    /// Where mail for `domain`, routed to `target`, belongs: its site (a
    /// smarthost is its own destination, whatever the domain).
    fn placement(&self, domain: &str, target: &Target) -> crate::shaping::Placement {
        if target.smarthost {
            crate::shaping::Placement {
                site: None,
                limits: *self.shaping.defaults(),
            }
        } else {
            self.shaping.place(domain, &target.hosts)
        }
    }

    /// The destination for `target` from `source` (`None`: the system's
    /// address), made on first use.
    fn destination(
        &self,
        placement: crate::shaping::Placement,
        target: &Target,
        source: Option<&crate::pools::Source>,
    ) -> Arc<Destination> {
        let site_key = match &placement.site {
            Some(name) => format!("{name}:{}", target.port),
            None => target.key(),
        };
        let key = match source {
            Some(s) => format!("{}>{site_key}", s.ip),
            None => site_key,
        };
        lock(&self.destinations)
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Destination::new(
                    key,
                    placement.site,
                    source.map(|s| (s.ip, s.ehlo.clone())),
                    placement.limits,
                ))
            })
            .clone()
    }
}

/// Recipient domains whose destination is remembered for the queue filter.
const DOMAIN_MEMORY: usize = 100_000;

/// The longest a held message waits before it is looked at again.
const HOLD_RECHECK: Duration = Duration::from_secs(60);

/// Sends the due recipients of one message to their destinations.
async fn dispatch(inner: Arc<Inner>, id: MessageId) {
    let key = id.to_bytes();
    if lock(&inner.in_flight).contains_key(&key) {
        return; // being delivered; its end reschedules it
    }
    let Some(q) = inner.spool.get(&id) else { return };
    let now = now_ms();
    let due: Vec<usize> = q
        .states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.status == RcptStatus::Pending && s.next_attempt_ms <= now)
        .map(|(i, _)| i)
        .collect();
    if due.is_empty() {
        return; // an earlier timer of a message already rescheduled
    }
    if inner.prepare.hold(&q).await {
        // Held (its account is suspended): neither tried nor expired; looked
        // at again after the first retry delay (at most a minute).
        let wait = inner
            .config
            .retry_schedule
            .first()
            .copied()
            .unwrap_or(HOLD_RECHECK)
            .clamp(Duration::from_secs(1), HOLD_RECHECK);
        inner.schedule_at(now + i64::try_from(wait.as_millis()).unwrap_or(60_000), &id);
        return;
    }
    if now >= inner.expires_ms(&q) {
        for i in due {
            inner.expire(&q, i);
        }
        return;
    }
    let mut by_domain: HashMap<String, Vec<usize>> = HashMap::new();
    for i in due {
        let domain = q.envelope.recipients[i].domain().as_str().to_owned();
        by_domain.entry(domain).or_default().push(i);
    }
    lock(&inner.in_flight).insert(key, by_domain.len());
    for (domain, recipients) in by_domain {
        if simulator::is_simulated(&domain) {
            inner.simulate(&q, &recipients);
            inner.job_done(&id);
            continue;
        }
        match route(
            &domain,
            &inner.config.routes,
            inner.resolver.as_ref(),
            inner.config.port,
        )
        .await
        {
            Ok(mut target) => {
                if inner.config.dane && !target.smarthost && !target.implicit {
                    target.dnssec = inner.mx_secure(&domain).await;
                }
                let sts = match &inner.sts {
                    Some(sts) if !target.smarthost => match sts.lookup(&domain).await {
                        Lookup::Policy(p) => Some(p),
                        Lookup::None => None,
                        Lookup::FetchFailed(_) => {
                            let applied = Applied {
                                domain: domain.clone(),
                                policy_type: "sts",
                                policy_string: Vec::new(),
                                mx_host: Vec::new(),
                            };
                            inner.tls_reports.failure(&applied, "sts-policy-fetch-error", "");
                            None
                        }
                    },
                    _ => None,
                };
                if let Some(p) = sts.as_ref().filter(|p| p.mode == Mode::Enforce) {
                    // Only the hosts the policy names (RFC 8461 §4.1).
                    let (allowed, refused): (Vec<String>, Vec<String>) =
                        target.hosts.iter().cloned().partition(|h| p.allows(h));
                    for host in &refused {
                        inner
                            .tls_reports
                            .failure(&sts_applied(&domain, p), "validation-failure", host);
                    }
                    if allowed.is_empty() {
                        let answer = SmtpAnswer {
                            code: 451,
                            enhanced: Some("4.7.5".to_owned()),
                            text: format!("no MX host of {domain} is in its MTA-STS policy"),
                            phase: "dns".to_owned(),
                        };
                        for i in recipients {
                            inner.decide_and_record(&q, i, None, answer.clone(), None);
                        }
                        inner.job_done(&id);
                        continue;
                    }
                    target.hosts = allowed;
                }
                let placement = inner.placement(&domain, &target);
                let provider = placement.site.clone().unwrap_or_else(|| target.key());
                let sender_domain = match &q.envelope.sender {
                    herald_types::ReversePath::Address(a) => Some(a.domain().as_str().to_owned()),
                    herald_types::ReversePath::Null => None,
                };
                let choice = if inner.config.pools.pools.is_empty() && inner.config.pools.domains.is_empty() {
                    Choice::System
                } else {
                    let account = inner.prepare.account_name(&q).await;
                    inner.pools.choose(
                        account.as_deref(),
                        &q.envelope.stream,
                        sender_domain.as_deref(),
                        &provider,
                        u32::try_from(recipients.len()).unwrap_or(u32::MAX),
                        time::OffsetDateTime::now_utc(),
                    )
                };
                let source = match choice {
                    Choice::System => None,
                    Choice::Source { source, .. } => Some(source),
                    Choice::Wait(until) => {
                        // Over its warm-up cap: waits, untried.
                        inner.postpone(&id, &recipients, until);
                        inner.job_done(&id);
                        continue;
                    }
                };
                let dest = inner.destination(placement, &target, source.as_ref());
                inner.remember_destination(&domain, &dest);
                if let Some(until) = dest.paused_until(now_ms()) {
                    // Backed off or suspended: wait without an attempt.
                    inner.postpone(&id, &recipients, until);
                    inner.job_done(&id);
                    continue;
                }
                enqueue(
                    &inner,
                    &dest,
                    Job {
                        id: id.clone(),
                        recipients,
                        target,
                        domain,
                        sts,
                    },
                );
            }
            Err(refusal) => {
                for i in recipients {
                    inner.decide_and_record(&q, i, None, refusal.answer.clone(), None);
                }
                inner.job_done(&id);
            }
        }
    }
}

fn enqueue(inner: &Arc<Inner>, dest: &Arc<Destination>, job: Job) {
    lock(&dest.jobs).push_back(job);
    dest.wake.notify_one();
    // One more worker while the limit allows; at the limit, a running
    // worker takes the job when it is free (the notify above wakes an idle one).
    if claim_worker(dest) {
        lock(&inner.tasks).spawn(worker(inner.clone(), dest.clone()));
    }
}

/// Takes a worker place if one is free under the destination's limit.
fn claim_worker(dest: &Destination) -> bool {
    let limit = dest.connection_limit();
    dest.workers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
        .is_ok()
}

fn pop(dest: &Destination) -> Option<Job> {
    lock(&dest.jobs).pop_front()
}

/// Every job waiting for `dest` moves to `until`, without an attempt.
fn postpone_waiting(inner: &Inner, dest: &Destination, until: i64) {
    let waiting: Vec<Job> = lock(&dest.jobs).drain(..).collect();
    for job in waiting {
        inner.postpone(&job.id, &job.recipients, until);
        inner.job_done(&job.id);
    }
}

/// Whether a connection can carry `job`'s mail: one of its hosts, and a
/// valid certificate when its domain's policy requires one.
fn serves(conn: &Connection, job: &Job) -> bool {
    conn.port == job.target.port
        && job.target.hosts.iter().any(|h| h.eq_ignore_ascii_case(&conn.mx))
        && (!job.enforced() || (conn.tls && conn.cert == CertStatus::Valid))
}

/// Delivers jobs of one destination over one connection at a time, until
/// there has been nothing to do for the idle time-out.
async fn worker(inner: Arc<Inner>, dest: Arc<Destination>) {
    let mut conn: Option<Connection> = None;
    let mut sent = 0usize;
    loop {
        // A back-off lowers the connection limit: extra workers leave
        // (closing their connection before giving up the place).
        if dest.workers.load(Ordering::SeqCst) > dest.connection_limit() {
            if let Some(c) = conn.take() {
                c.quit().await;
            }
            dest.workers.fetch_sub(1, Ordering::SeqCst);
            break;
        }
        let job = match pop(&dest) {
            Some(job) => job,
            None => {
                let woken = tokio::time::timeout(inner.config.idle_timeout, dest.wake.notified()).await;
                if woken.is_ok() {
                    continue;
                }
                // Idle: close the connection, then leave, unless a job
                // slipped in between the time-out and giving up the place.
                if let Some(c) = conn.take() {
                    c.quit().await;
                    sent = 0;
                }
                dest.workers.fetch_sub(1, Ordering::SeqCst);
                if !lock(&dest.jobs).is_empty() && claim_worker(&dest) {
                    continue;
                }
                break;
            }
        };
        if let Some(until) = dest.paused_until(now_ms()) {
            inner.postpone(&job.id, &job.recipients, until);
            inner.job_done(&job.id);
            postpone_waiting(&inner, &dest, until);
            continue;
        }
        let Some(q) = inner.spool.get(&job.id) else {
            inner.job_done(&job.id);
            continue;
        };
        let body = {
            let spool = inner.spool.clone();
            let id = job.id.clone();
            tokio::task::spawn_blocking(move || spool.read_body(&id)).await
        };
        let body = match body {
            Ok(Ok(b)) => b,
            other => {
                // The body cannot be read back: it was damaged on disk, or
                // never acknowledged before a crash. Nothing can be sent.
                tracing::error!(message = %job.id, error = ?other.err(), "message body unreadable; bouncing");
                let answer = SmtpAnswer {
                    code: 554,
                    enhanced: Some("5.3.0".into()),
                    text: "message content lost in the spool".into(),
                    phase: "queue".into(),
                };
                let outcome = Outcome::Bounced {
                    class: BounceClass::Soft,
                    reason: herald_rules::Reason::SystemError,
                };
                for &i in &job.recipients {
                    inner.record(&q, i, &outcome, Some(answer.clone()), None);
                }
                inner.job_done(&job.id);
                continue;
            }
        };
        if conn.as_ref().is_some_and(|c| !serves(c, &job)) {
            // Rolled-up domains route to different hosts: this job's hosts
            // need their own connection.
            if let Some(c) = conn.take() {
                c.quit().await;
            }
            sent = 0;
        }
        let mut handled: Vec<usize> = Vec::with_capacity(job.recipients.len());
        let mut unreachable = None;
        let mut paused = None;
        // One group prepared at a time, just before it is sent: a large
        // message personalised for many recipients is in memory once for
        // the spool's copy and once for the copy on its way.
        'groups: for group in inner.prepare.groups(&q, &body, &job.recipients) {
            let transactions = inner.prepare.prepare(&q, &body, &group).await;
            for tx in transactions {
                if tx.content.is_empty() {
                    // Nothing right can be sent: never something wrong.
                    let answer = SmtpAnswer {
                        code: 554,
                        enhanced: Some("5.3.0".into()),
                        text: "the message could not be prepared for this recipient".into(),
                        phase: "queue".into(),
                    };
                    let outcome = Outcome::Bounced {
                        class: BounceClass::Soft,
                        reason: herald_rules::Reason::SystemError,
                    };
                    for &i in &tx.recipients {
                        inner.record(&q, i, &outcome, Some(answer.clone()), None);
                        handled.push(i);
                    }
                    continue;
                }
                for chunk in tx.recipients.chunks(dest.limits.recipients_per_message) {
                    // A pause decided meanwhile (by this or another
                    // connection) stops sending at once.
                    if let Some(until) = dest.paused_until(now_ms()) {
                        paused = Some(until);
                        break 'groups;
                    }
                    loop {
                        let wait = dest.take_send(now_ms());
                        if wait.is_zero() {
                            break;
                        }
                        tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                    }
                    let mut retried = false;
                    loop {
                        if conn.is_some() && sent >= dest.per_connection(now_ms()) {
                            if let Some(c) = conn.take() {
                                c.quit().await;
                            }
                            sent = 0;
                        }
                        if conn.is_none() {
                            match inner
                                .dialer
                                .connect(
                                    &job.target,
                                    dest.limits.tls,
                                    job.enforced(),
                                    dest.source.as_ref(),
                                    inner.resolver.as_ref(),
                                )
                                .await
                            {
                                Ok(c) => {
                                    metrics::counter!(
                                        "herald_delivery_connections_total",
                                        "destination" => dest.metric_label(),
                                        "outcome" => "connected"
                                    )
                                    .increment(1);
                                    for (host, result, policy) in &c.tls_problems {
                                        inner.report_failure(&job, policy, result, host);
                                    }
                                    if c.tls_fallback.is_some() {
                                        dest.tls_failed();
                                        metrics::counter!(
                                            "herald_tls_failures_total",
                                            "destination" => dest.metric_label(),
                                            "result" => "starttls-failed"
                                        )
                                        .increment(1);
                                    }
                                    conn = Some(c);
                                }
                                Err(failure) => {
                                    metrics::counter!(
                                        "herald_delivery_connections_total",
                                        "destination" => dest.metric_label(),
                                        "outcome" => "failed"
                                    )
                                    .increment(1);
                                    for (host, result, policy) in &failure.tls_problems {
                                        inner.report_failure(&job, policy, result, host);
                                    }
                                    unreachable = Some(failure);
                                    break 'groups;
                                }
                            }
                        }
                        let Some(c) = conn.as_mut() else { break 'groups };
                        let rcpts: Vec<_> = chunk.iter().map(|&i| q.envelope.recipients[i].clone()).collect();
                        // TLS-RPT: a session under the domain's policy, and
                        // in testing mode what enforcing would have refused.
                        if c.dane {
                            inner.tls_reports.success(&dane_applied(&job.domain, &c.mx));
                        } else if let (Some(applied), Some(policy)) = (job.applied(), job.sts.as_ref()) {
                            let problem = if !c.tls {
                                Some("starttls-not-supported")
                            } else if let CertStatus::Invalid(r) = c.cert {
                                Some(r)
                            } else if !policy.allows(&c.mx) {
                                Some("validation-failure")
                            } else {
                                None
                            };
                            match problem {
                                Some(r) => inner.tls_reports.failure(&applied, r, &c.mx),
                                None => inner.tls_reports.success(&applied),
                            }
                        }
                        let started = std::time::Instant::now();
                        let result = c.send(&tx.sender, &rcpts, &tx.content).await;
                        metrics::histogram!(
                            "herald_delivery_attempt_duration_seconds",
                            "destination" => dest.metric_label()
                        )
                        .record(started.elapsed().as_secs_f64());
                        let peer = (c.mx.clone(), c.local_ip);
                        // A server that closes a reused connection with a
                        // 421 is counting messages per connection: learn
                        // its limit and send this one again at once on a
                        // new connection.
                        let closed_early =
                            !retried && sent > 0 && !result.reusable && result.answers.iter().all(|a| a.code == 421);
                        sent += 1;
                        if !result.reusable {
                            conn = None;
                        }
                        if closed_early {
                            dest.learn_per_connection(sent - 1, now_ms());
                            sent = 0;
                            retried = true;
                            continue;
                        }
                        if conn.is_none() {
                            sent = 0;
                        }
                        let mut effect_seen = false;
                        for (&i, answer) in chunk.iter().zip(result.answers) {
                            let d =
                                inner.decide_and_record(&q, i, Some(&dest), answer, Some((peer.0.as_str(), peer.1)));
                            effect_seen |= d.effect != Effect::None;
                            handled.push(i);
                        }
                        if effect_seen && let Some(until) = dest.paused_until(now_ms()) {
                            paused = Some(until);
                            break 'groups;
                        }
                        break;
                    }
                }
            }
        }
        drop(body);
        if let Some(until) = paused {
            let rest: Vec<usize> = job
                .recipients
                .iter()
                .copied()
                .filter(|i| !handled.contains(i))
                .collect();
            inner.postpone(&job.id, &rest, until);
            postpone_waiting(&inner, &dest, until);
            if let Some(c) = conn.take() {
                c.quit().await;
            }
            sent = 0;
        }
        if let Some(failure) = unreachable {
            // The destination cannot be reached: the rest of this job, and
            // every job waiting for the same hosts, would fail the same way
            // now.
            for &i in job.recipients.iter().filter(|i| !handled.contains(i)) {
                inner.decide_and_record(&q, i, Some(&dest), failure.answer.clone(), None);
            }
            let waiting: Vec<Job> = {
                let mut jobs = lock(&dest.jobs);
                let (same, other): (Vec<Job>, Vec<Job>) =
                    jobs.drain(..).partition(|j| j.target.key() == job.target.key());
                jobs.extend(other);
                same
            };
            for other in waiting {
                if let Some(oq) = inner.spool.get(&other.id) {
                    for &i in &other.recipients {
                        inner.decide_and_record(&oq, i, Some(&dest), failure.answer.clone(), None);
                    }
                }
                inner.job_done(&other.id);
            }
        }
        inner.job_done(&job.id);
    }
    if let Some(c) = conn {
        c.quit().await;
    }
}

/// The scheduler: loads the spool, then dispatches each message when due.
pub async fn run(inner: Arc<Inner>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
    for q in inner.spool.list() {
        if let Some(next) = q
            .states
            .iter()
            .filter(|s| s.status == RcptStatus::Pending)
            .map(|s| s.next_attempt_ms)
            .min()
        {
            inner.schedule_at(next, &q.id);
        }
    }
    let saver = {
        let inner = inner.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => {
                        inner.pools.save();
                        inner.tls_reports.save();
                        inner.publish_gauges();
                    }
                    _ = shutdown.changed() => break,
                }
            }
        })
    };
    loop {
        let now = now_ms();
        let mut due = Vec::new();
        let next = {
            let mut timers = lock(&inner.timers);
            while let Some(Reverse((at, _))) = timers.peek() {
                if *at > now {
                    break;
                }
                if let Some(Reverse((_, id))) = timers.pop() {
                    due.push(MessageId::from_bytes(id));
                }
            }
            timers.peek().map(|Reverse((at, _))| *at)
        };
        for id in due {
            lock(&inner.tasks).spawn(dispatch(inner.clone(), id));
        }
        // Reap finished tasks so the set stays small.
        while lock(&inner.tasks).try_join_next().is_some() {}
        let wait = next.map_or(Duration::from_secs(3600), |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0))
        });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = inner.wake.notified() => {}
            () = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        }
    }
    let mut tasks = std::mem::take(&mut *lock(&inner.tasks));
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!("deliveries still running after the shutdown grace period were cut off; they will be retried");
    }
    saver.abort();
    inner.pools.save();
    inner.tls_reports.save();
}
