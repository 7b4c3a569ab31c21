//! The spool's promises, on real files: durable before acknowledged,
//! recovered after a stop or a torn write, finished messages never back,
//! disk and memory bounded by the queue rather than the traffic.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use herald_spool::{RcptState, RcptStatus, Spool, SpoolError, SpoolOptions};
use herald_types::{AccountId, EmailAddress, Envelope, ReversePath};

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        sender: ReversePath::Address(EmailAddress::parse("news@example.com").unwrap()),
        recipients: recipients.iter().map(|r| EmailAddress::parse(r).unwrap()).collect(),
        account: AccountId::generate(),
        client_ip: "192.0.2.7".parse().unwrap(),
        received_at: herald_spool::from_ms(1_700_000_000_000),
        stream: herald_types::DEFAULT_STREAM.to_owned(),
        tags: Vec::new(),
        metadata: Vec::new(),
    }
}

fn body(n: usize) -> Vec<u8> {
    format!("Subject: test {n}\r\n\r\n{}\r\n", "x".repeat(4000)).into_bytes()
}

fn delivered() -> RcptState {
    RcptState {
        status: RcptStatus::Delivered,
        attempts: 1,
        next_attempt_ms: 0,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_message_round_trips_and_leaves_when_every_recipient_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let id = spool
        .enqueue(envelope(&["a@example.net", "b@example.org"]), body(1))
        .await
        .unwrap();
    let queued = spool.get(&id).expect("queued");
    assert_eq!(queued.envelope.recipients.len(), 2);
    assert!(
        queued
            .states
            .iter()
            .all(|s| s.status == RcptStatus::Pending && s.attempts == 0)
    );
    assert_eq!(spool.read_body(&id).unwrap(), body(1));

    assert!(
        !spool.update(&id, 0, delivered()).unwrap(),
        "one recipient still pending"
    );
    assert_eq!(spool.get(&id).unwrap().states[0].status, RcptStatus::Delivered);
    let bounced = RcptState {
        status: RcptStatus::Bounced,
        ..delivered()
    };
    assert!(spool.update(&id, 1, bounced).unwrap(), "all final: done");
    assert!(spool.get(&id).is_none());
    assert_eq!(spool.update(&id, 0, delivered()), Err(SpoolError::NotFound));
    let empty = spool.enqueue(envelope(&[]), body(2)).await;
    assert!(matches!(empty, Err(SpoolError::Invalid(_))));
}

#[tokio::test]
async fn a_restart_recovers_pending_state_and_forgets_finished_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, finished, partly) = {
        let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
        let kept = spool.enqueue(envelope(&["a@example.net"]), body(1)).await.unwrap();
        let finished = spool.enqueue(envelope(&["b@example.net"]), body(2)).await.unwrap();
        let partly = spool
            .enqueue(envelope(&["c@example.net", "d@example.net"]), body(3))
            .await
            .unwrap();
        let deferred = RcptState {
            status: RcptStatus::Pending,
            attempts: 2,
            next_attempt_ms: 1_700_000_600_000,
        };
        spool.update(&kept, 0, deferred).unwrap();
        spool.update(&finished, 0, delivered()).unwrap();
        spool.update(&partly, 1, delivered()).unwrap();
        spool.flush().await.unwrap();
        spool.close();
        (kept, finished, partly)
    };
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    assert_eq!(spool.len(), 2);
    assert!(spool.get(&finished).is_none(), "a finished message never comes back");
    let k = spool.get(&kept).unwrap();
    assert_eq!(
        (k.states[0].attempts, k.states[0].next_attempt_ms),
        (2, 1_700_000_600_000)
    );
    assert_eq!(k.envelope.recipients[0].to_string(), "a@example.net");
    assert_eq!(k.envelope.client_ip.to_string(), "192.0.2.7");
    let p = spool.get(&partly).unwrap();
    assert_eq!(p.states[1].status, RcptStatus::Delivered);
    assert_eq!(p.states[0].status, RcptStatus::Pending);
    assert_eq!(spool.read_body(&partly).unwrap(), body(3), "bodies survive restarts");
}

#[tokio::test]
async fn a_torn_journal_tail_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let ids = {
        let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(spool.enqueue(envelope(&["a@example.net"]), body(n)).await.unwrap());
        }
        spool.close();
        ids
    };
    // A crash in the middle of a write leaves part of a record at the end.
    let journal_dir = dir.path().join("journal");
    let last = files_in(&journal_dir).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(journal_dir.join(last))
        .unwrap();
    f.write_all(&[200, 1, 0, 0, 7, 7, 7, 7, 1, 2, 3]).unwrap();
    drop(f);
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    assert_eq!(spool.len(), 5);
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(spool.read_body(id).unwrap(), body(n));
    }
    // And the spool goes on working after it.
    spool.enqueue(envelope(&["b@example.net"]), body(9)).await.unwrap();
}

#[tokio::test]
async fn a_damaged_body_is_reported_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let id = spool.enqueue(envelope(&["a@example.net"]), body(1)).await.unwrap();
    let data_dir = dir.path().join("data");
    let seg = data_dir.join(files_in(&data_dir).pop().unwrap());
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    assert!(matches!(spool.read_body(&id), Err(SpoolError::Unreadable(_))));
}

#[tokio::test]
async fn finished_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let options = SpoolOptions {
        segment_bytes: 16 * 1024,
        ..SpoolOptions::default()
    };
    let spool = Spool::open(dir.path(), options).unwrap();
    let mut ids = Vec::new();
    for n in 0..40 {
        // One at a time, so batches (and segment checks) are many.
        ids.push(spool.enqueue(envelope(&["a@example.net"]), body(n)).await.unwrap());
    }
    let data_dir = dir.path().join("data");
    assert!(
        files_in(&data_dir).len() >= 5,
        "160 KiB in 16 KiB segments: {:?}",
        files_in(&data_dir)
    );
    let keep = ids.pop().unwrap();
    for id in &ids {
        spool.update(id, 0, delivered()).unwrap();
    }
    spool.flush().await.unwrap();
    let left = files_in(&data_dir);
    assert!(
        left.len() <= 2,
        "only the head and the one with a live message stay: {left:?}"
    );
    assert_eq!(spool.read_body(&keep).unwrap(), body(39));
    spool.close();
    // A restart keeps the live one and its body.
    let spool = Spool::open(dir.path(), options).unwrap();
    assert_eq!(spool.read_body(&keep).unwrap(), body(39));
}

#[tokio::test]
async fn checkpoints_keep_the_journal_the_size_of_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let options = SpoolOptions {
        checkpoint_bytes: 32 * 1024,
        ..SpoolOptions::default()
    };
    let spool = Spool::open(dir.path(), options).unwrap();
    let keep = spool.enqueue(envelope(&["keep@example.net"]), body(0)).await.unwrap();
    for n in 1..400 {
        let id = spool.enqueue(envelope(&["a@example.net"]), body(n)).await.unwrap();
        spool.update(&id, 0, delivered()).unwrap();
    }
    spool.flush().await.unwrap();
    let journal_dir = dir.path().join("journal");
    let journals = files_in(&journal_dir);
    assert_eq!(journals.len(), 1, "old journal files are dropped: {journals:?}");
    let size = std::fs::metadata(journal_dir.join(&journals[0])).unwrap().len();
    assert!(
        size < 64 * 1024,
        "journal is {size} bytes after 400 messages through a 1-message queue"
    );
    spool.close();
    let spool = Spool::open(dir.path(), options).unwrap();
    assert_eq!(spool.len(), 1);
    assert!(spool.get(&keep).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), SpoolOptions::default()).unwrap());
    let mut tasks = Vec::new();
    for n in 0..500 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            spool.enqueue(envelope(&["a@example.net"]), body(n)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let batches = spool.stats().batches.load(Relaxed);
    let enqueued = spool.stats().enqueued.load(Relaxed);
    assert_eq!(enqueued, 500);
    assert!(
        batches < 250,
        "500 concurrent messages took {batches} syncs: no group commit"
    );
    assert_eq!(spool.len(), 500);
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_costs_well_under_a_kibibyte_of_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), SpoolOptions::default()).unwrap());
    let small = b"Subject: x\r\n\r\ny\r\n".to_vec();
    // Warm up allocator and buffers before measuring.
    for _ in 0..1000 {
        spool
            .enqueue(envelope(&["someone@example.net"]), small.clone())
            .await
            .unwrap();
    }
    let before = rss_bytes();
    const N: u64 = 50_000;
    let mut tasks = Vec::new();
    for chunk in 0..50 {
        let spool = spool.clone();
        let small = small.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..N / 50 {
                let to = format!("user{chunk}x{n}@example.net");
                spool.enqueue(envelope(&[to.as_str()]), small.clone()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let per_message = (rss_bytes().saturating_sub(before)) / N;
    println!("resident memory per queued message: {per_message} bytes");
    assert!(per_message < 1024, "{per_message} bytes per queued message");
}

/// Records what the spool hands over, with tickets.
#[derive(Debug, Default)]
struct Sink(std::sync::Mutex<Vec<(herald_types::Event, Option<u64>)>>);

impl herald_types::EventSink for Sink {
    fn emit(&self, event: herald_types::Event) {
        self.0.lock().unwrap().push((event, None));
    }
    fn emit_journaled(&self, event: herald_types::Event, ticket: u64) {
        self.0.lock().unwrap().push((event, Some(ticket)));
    }
}

fn event(kind: herald_types::EventKind, id: &herald_types::MessageId) -> herald_types::Event {
    let mut e = herald_types::Event::new(kind, AccountId::generate(), id.clone());
    e.recipient = Some("a@example.net".to_owned());
    e
}

/// Copies the spool's files as a crash would leave them (everything
/// acknowledged is synced, so the copy is what the disk holds).
fn crash_image(from: &Path, to: &Path) {
    for sub in ["data", "journal"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for name in files_in(&from.join(sub)) {
            std::fs::copy(from.join(sub).join(&name), to.join(sub).join(&name)).unwrap();
        }
    }
}

#[tokio::test]
async fn events_are_journaled_with_their_change_and_replayed_until_released() {
    use herald_types::{EventJournal, EventKind};
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Sink::default());
    let spool = Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(sink.clone())).unwrap();
    let id = herald_types::MessageId::generate();
    let accepted = event(EventKind::Accepted, &id);
    spool
        .enqueue_with(
            id.clone(),
            envelope(&["a@example.net", "b@example.net"]),
            body(1),
            vec![accepted.clone()],
        )
        .await
        .unwrap();
    // Handed over once durable, with a ticket.
    let handed = sink.0.lock().unwrap().clone();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].0, accepted);
    let first = handed[0].1.unwrap();
    let outcome = event(EventKind::Delivered, &id);
    spool.update_with_event(&id, 0, delivered(), outcome.clone()).unwrap();
    spool.flush().await.unwrap();
    assert_eq!(sink.0.lock().unwrap().len(), 2);
    let dropped = event(EventKind::Dropped, &herald_types::MessageId::generate());
    spool.journal_events(vec![dropped.clone()]).await.unwrap();
    assert_eq!(spool.unreleased_events(), 3);
    // The pipeline stored the first one.
    spool.release(&[first]);
    assert_eq!(spool.unreleased_events(), 2);

    // A crash now: every journaled event comes back (the released one too,
    // as no release is journaled; the store keeps one copy of an id).
    let crashed = tempfile::tempdir().unwrap();
    crash_image(dir.path(), crashed.path());
    let again = Arc::new(Sink::default());
    let recovered = Spool::open_with_events(crashed.path(), SpoolOptions::default(), Some(again.clone())).unwrap();
    let replayed: Vec<herald_types::Event> = again.0.lock().unwrap().iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(replayed, [accepted.clone(), outcome.clone(), dropped.clone()]);
    assert!(
        again.0.lock().unwrap().iter().all(|(_, t)| t.is_some()),
        "replayed with tickets"
    );
    assert_eq!(recovered.len(), 1, "b@ is still pending");
    // Released and stopped cleanly: a later start replays nothing.
    let tickets: Vec<u64> = again.0.lock().unwrap().iter().filter_map(|(_, t)| *t).collect();
    recovered.release(&tickets);
    recovered.close();
    drop(recovered);
    let quiet = Arc::new(Sink::default());
    let reopened = Spool::open_with_events(crashed.path(), SpoolOptions::default(), Some(quiet.clone())).unwrap();
    assert!(
        quiet.0.lock().unwrap().is_empty(),
        "released events are gone after a clean stop"
    );
    assert_eq!(reopened.len(), 1);

    // Unreleased events survive a clean stop too.
    spool.close();
    drop(spool);
    let later = Arc::new(Sink::default());
    let _reopened = Spool::open_with_events(dir.path(), SpoolOptions::default(), Some(later.clone())).unwrap();
    let kept: Vec<herald_types::Event> = later.0.lock().unwrap().iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(kept, [outcome, dropped], "only the released one is gone");
}

#[tokio::test]
async fn large_bodies_among_small_ones_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(Spool::open(dir.path(), SpoolOptions::default()).unwrap());
    let sizes = [100usize, 300_000, 50, 1_000_000, 10, 256 * 1024];
    let mut tasks = tokio::task::JoinSet::new();
    for (n, size) in sizes.iter().enumerate() {
        let spool = spool.clone();
        let body: Vec<u8> = (0..*size).map(|i| (i % 251) as u8 ^ n as u8).collect();
        tasks.spawn(async move {
            (
                spool.enqueue(envelope(&["a@example.net"]), body.clone()).await.unwrap(),
                body,
            )
        });
    }
    let stored: Vec<_> = tasks.join_all().await;
    for (id, body) in &stored {
        assert_eq!(&spool.read_body(id).unwrap(), body);
    }
    spool.close();
    let reopened = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    for (id, body) in &stored {
        assert_eq!(&reopened.read_body(id).unwrap(), body, "after a restart too");
    }
}

#[tokio::test]
async fn a_held_message_stays_held_across_a_restart_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let id = herald_types::MessageId::generate();
    {
        let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
        spool
            .enqueue_held_with(
                id.clone(),
                envelope(&["a@example.net", "b@example.org"]),
                body(1),
                Vec::new(),
            )
            .await
            .unwrap();
        let q = spool.get(&id).unwrap();
        assert!(q.states.iter().all(|s| s.status == RcptStatus::Held));
        spool.close();
    }
    let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
    let q = spool.get(&id).expect("held mail is recovered, not finished");
    assert!(q.states.iter().all(|s| s.status == RcptStatus::Held), "{:?}", q.states);
    // Released: pending again; dropped: purged, and the message leaves.
    let pending = RcptState::new(1_700_000_000_000);
    assert!(!spool.update_from(&id, 0, RcptStatus::Held, pending, None).unwrap());
    // A drop that comes after the release finds the recipient changed.
    let dropped = RcptState {
        status: RcptStatus::Purged,
        ..pending
    };
    assert_eq!(
        spool.update_from(&id, 0, RcptStatus::Held, dropped, None),
        Err(SpoolError::Changed)
    );
    let purged = RcptState {
        status: RcptStatus::Purged,
        ..pending
    };
    assert!(!spool.update(&id, 1, purged).unwrap(), "one recipient is still pending");
    assert!(spool.update(&id, 0, delivered()).unwrap());
    assert!(spool.get(&id).is_none());
}
