//! The scheduler, the destination queues and their workers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_dns::Resolver;
use herald_spool::{Queued, RcptState, RcptStatus, Spool};
use herald_types::{BounceClass, BounceInfo, Event, EventKind, EventSink, MessageId, SmtpAnswer};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::Prepare;
use crate::classify::{Verdict, classify};
use crate::client::{Connection, Dialer, Timeouts, opportunistic_tls};
use crate::route::{Target, route};
use crate::schedule::next_attempt;
use crate::simulator;
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
struct Job {
    id: MessageId,
    recipients: Vec<usize>,
}

struct Destination {
    target: Target,
    jobs: Mutex<VecDeque<Job>>,
    workers: AtomicUsize,
    wake: Notify,
}

pub struct Inner {
    config: DeliveryConfig,
    spool: Arc<Spool>,
    resolver: Arc<dyn Resolver>,
    events: Arc<dyn EventSink>,
    prepare: Arc<dyn Prepare>,
    dialer: Dialer,
    /// The next attempt of each message.
    timers: Mutex<Timers>,
    wake: Notify,
    destinations: Mutex<HashMap<String, Arc<Destination>>>,
    /// Messages being delivered, with their jobs still open.
    in_flight: Mutex<HashMap<[u8; 16], usize>>,
    tasks: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mta")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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
        };
        Arc::new(Self {
            config,
            spool,
            resolver,
            events,
            prepare,
            dialer,
            timers: Mutex::new(BinaryHeap::new()),
            wake: Notify::new(),
            destinations: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
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
                let verdict = Verdict::Bounced {
                    class: BounceClass::Soft,
                    reason: "onhold",
                };
                self.record(&q, i, &verdict, Some(answer.clone()), None);
            }
        }
        Ok(())
    }

    /// Writes one recipient's outcome to the spool and emits its event.
    fn record(
        &self,
        q: &Queued,
        index: usize,
        verdict: &Verdict,
        answer: Option<SmtpAnswer>,
        conn: Option<(&str, std::net::IpAddr)>,
    ) {
        let Some(state) = q.states.get(index).copied() else {
            return;
        };
        let attempts = state.attempts.saturating_add(1);
        let now = now_ms();
        let (status, kind, next, bounce) = match verdict {
            Verdict::Delivered => (RcptStatus::Delivered, EventKind::Delivered, 0, None),
            Verdict::Bounced { class, reason } => (
                RcptStatus::Bounced,
                EventKind::Bounced,
                0,
                Some(BounceInfo {
                    class: *class,
                    reason: (*reason).to_owned(),
                }),
            ),
            Verdict::Deferred => {
                let expires = self.expires_ms(q);
                let next = next_attempt(now, expires, &self.config.retry_schedule, attempts);
                (RcptStatus::Pending, EventKind::Deferred, next, None)
            }
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
        if let Some((mx, ip)) = conn {
            event.mx = Some(mx.to_owned());
            event.source_ip = Some(ip);
        }
        // The new state and its event are journaled together: a crash
        // keeps both or neither (then the attempt is made again).
        // Gone meanwhile (purged, or finished by another path): no event.
        let _ = self.spool.update_with_event(&q.id, index, new, event);
    }

    /// Plays the mailbox simulator's answers for recipients at its domain.
    fn simulate(&self, q: &Queued, recipients: &[usize]) {
        for &i in recipients {
            let (Some(state), Some(rcpt)) = (q.states.get(i).copied(), q.envelope.recipients.get(i)) else {
                continue;
            };
            let (answer, then) = simulator::simulate(rcpt.local_part(), u32::from(state.attempts));
            let verdict = classify(&answer);
            self.record(
                q,
                i,
                &verdict,
                Some(answer),
                Some((simulator::SIMULATOR_DOMAIN, std::net::Ipv4Addr::LOCALHOST.into())),
            );
            if verdict == Verdict::Deferred {
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
}

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
            Ok(target) => enqueue(
                &inner,
                target,
                Job {
                    id: id.clone(),
                    recipients,
                },
            ),
            Err(refusal) => {
                let verdict = if refusal.permanent {
                    classify(&refusal.answer)
                } else {
                    Verdict::Deferred
                };
                for i in recipients {
                    inner.record(&q, i, &verdict, Some(refusal.answer.clone()), None);
                }
                inner.job_done(&id);
            }
        }
    }
}

fn enqueue(inner: &Arc<Inner>, target: Target, job: Job) {
    let dest = {
        let mut all = lock(&inner.destinations);
        all.entry(target.key())
            .or_insert_with(|| {
                Arc::new(Destination {
                    target,
                    jobs: Mutex::new(VecDeque::new()),
                    workers: AtomicUsize::new(0),
                    wake: Notify::new(),
                })
            })
            .clone()
    };
    lock(&dest.jobs).push_back(job);
    dest.wake.notify_one();
    // One more worker while the limit allows; at the limit, a running
    // worker takes the job when it is free (the notify above wakes an idle one).
    if claim_worker(&dest, inner.config.max_connections_per_destination) {
        lock(&inner.tasks).spawn(worker(inner.clone(), dest));
    }
}

/// Takes a worker place if one is free under `limit`.
fn claim_worker(dest: &Destination, limit: usize) -> bool {
    let limit = limit.max(1);
    dest.workers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
        .is_ok()
}

fn pop(dest: &Destination) -> Option<Job> {
    lock(&dest.jobs).pop_front()
}

/// Delivers jobs of one destination over one connection at a time, until
/// there has been nothing to do for the idle time-out.
async fn worker(inner: Arc<Inner>, dest: Arc<Destination>) {
    let mut conn: Option<Connection> = None;
    let mut sent = 0usize;
    loop {
        let job = match pop(&dest) {
            Some(job) => job,
            None => {
                let woken = tokio::time::timeout(inner.config.idle_timeout, dest.wake.notified()).await;
                if woken.is_ok() {
                    continue;
                }
                // Idle: leave, unless a job slipped in between the time-out
                // and giving up the place.
                dest.workers.fetch_sub(1, Ordering::SeqCst);
                if !lock(&dest.jobs).is_empty() && claim_worker(&dest, inner.config.max_connections_per_destination) {
                    continue;
                }
                break;
            }
        };
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
                let verdict = Verdict::Bounced {
                    class: BounceClass::Soft,
                    reason: "systemerror",
                };
                for &i in &job.recipients {
                    inner.record(&q, i, &verdict, Some(answer.clone()), None);
                }
                inner.job_done(&job.id);
                continue;
            }
        };
        let mut handled: Vec<usize> = Vec::with_capacity(job.recipients.len());
        let mut unreachable = None;
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
                    let verdict = Verdict::Bounced {
                        class: BounceClass::Soft,
                        reason: "systemerror",
                    };
                    for &i in &tx.recipients {
                        inner.record(&q, i, &verdict, Some(answer.clone()), None);
                        handled.push(i);
                    }
                    continue;
                }
                if conn.is_some() && sent >= inner.config.max_messages_per_connection {
                    if let Some(c) = conn.take() {
                        c.quit().await;
                    }
                    sent = 0;
                }
                if conn.is_none() {
                    match inner.dialer.connect(&dest.target, inner.resolver.as_ref()).await {
                        Ok(c) => conn = Some(c),
                        Err(failure) => {
                            unreachable = Some(failure);
                            break 'groups;
                        }
                    }
                }
                let Some(c) = conn.as_mut() else { break 'groups };
                let rcpts: Vec<_> = tx
                    .recipients
                    .iter()
                    .map(|&i| q.envelope.recipients[i].clone())
                    .collect();
                let result = c.send(&tx.sender, &rcpts, &tx.content).await;
                sent += 1;
                let peer = (c.mx.clone(), c.local_ip);
                for (&i, answer) in tx.recipients.iter().zip(result.answers) {
                    let verdict = classify(&answer);
                    inner.record(&q, i, &verdict, Some(answer), Some((peer.0.as_str(), peer.1)));
                    handled.push(i);
                }
                if !result.reusable {
                    conn = None;
                    sent = 0;
                }
            }
        }
        drop(body);
        if let Some(failure) = unreachable {
            // The destination cannot be reached: the rest of this job, and
            // every job waiting for it, would fail the same way now.
            let verdict = if failure.permanent {
                classify(&failure.answer)
            } else {
                Verdict::Deferred
            };
            for &i in job.recipients.iter().filter(|i| !handled.contains(i)) {
                inner.record(&q, i, &verdict, Some(failure.answer.clone()), None);
            }
            let waiting: Vec<Job> = lock(&dest.jobs).drain(..).collect();
            for other in waiting {
                if let Some(oq) = inner.spool.get(&other.id) {
                    for &i in &other.recipients {
                        inner.record(&oq, i, &verdict, Some(failure.answer.clone()), None);
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
}
