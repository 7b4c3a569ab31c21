//! The pipeline stores every emitted event, in order, through a real store.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::time::Duration;

use herald_events::EventPipeline;
use herald_store::{EventFilter, EventStore};
use herald_testkit::TempStore;
use herald_types::{AccountId, Event, EventKind, EventSink, MessageId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_emitted_before_close_is_stored_in_order() {
    let t = TempStore::sqlite().unwrap();
    let store = t.open().await.unwrap();
    let events: std::sync::Arc<dyn EventStore> = store.clone();
    let pipeline = EventPipeline::start(events);
    let account = AccountId::generate();
    let mut sent = Vec::new();
    for _ in 0..2500 {
        let e = Event::new(EventKind::Accepted, account.clone(), MessageId::generate());
        sent.push(e.id.clone());
        pipeline.emit(e);
    }
    assert!(pipeline.backlog() > 0, "nothing is stored synchronously");
    pipeline.close(Duration::from_secs(30)).await;
    assert_eq!(pipeline.backlog(), 0, "everything stored is off the backlog");
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let filter = EventFilter {
            account: Some(account.clone()),
            after: after.clone(),
            ..EventFilter::default()
        };
        let page = store.list_events(&filter, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| e.id.clone());
        stored.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(stored, sent, "all 2500, in emission order");
    assert_eq!(store.backend(), "sqlite");
}
