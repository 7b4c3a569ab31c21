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
