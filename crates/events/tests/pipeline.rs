//! The pipeline stores every emitted event, in order, through a real store.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::time::Duration;

use herald_events::{EventPipeline, Suppressor};
use herald_store::{EventFilter, EventStore, NewAccount, Store, SuppressionFilter};
use herald_testkit::TempStore;
use herald_types::{
    AccountId, AccountName, AccountSettings, BounceClass, BounceInfo, Event, EventKind, EventSink, MessageId,
};

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

fn bounce(kind: EventKind, account: &AccountId, to: &str, class: BounceClass) -> Event {
    let mut e = Event::new(kind, account.clone(), MessageId::generate());
    e.recipient = Some(to.to_owned());
    e.bounce = Some(BounceInfo {
        class,
        reason: "mailboxfull".to_owned(),
    });
    e
}

async fn listed(store: &dyn Store, account: &AccountId) -> Vec<(String, String, bool)> {
    let mut l: Vec<_> = store
        .list_suppressions(account, &SuppressionFilter::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.address, s.reason, s.brand))
        .collect();
    l.sort();
    l
}

/// Bounces and complaints keep the lists: hard at once, soft at the
/// account's threshold within a day, complaints for the whole brand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suppressor_keeps_lists_from_bounces_and_complaints() {
    let t = TempStore::sqlite().unwrap();
    let store = t.open().await.unwrap();
    let brand = store
        .create_account(NewAccount {
            name: AccountName::parse("brand").unwrap(),
            parent: None,
        })
        .await
        .unwrap();
    let sub = store
        .create_account(NewAccount {
            name: AccountName::parse("brand-news").unwrap(),
            parent: Some(brand.id.clone()),
        })
        .await
        .unwrap();
    let settings = AccountSettings {
        soft_bounce_threshold: 3,
        ..AccountSettings::default()
    };
    store.set_account_settings(&sub.id, &settings).await.unwrap();
    let pipeline = EventPipeline::with_stages(store.clone(), vec![Suppressor::new(store.clone())]);

    // Two soft bounces: under the threshold of 3.
    for _ in 0..2 {
        pipeline.emit(bounce(
            EventKind::Bounced,
            &sub.id,
            "full@example.net",
            BounceClass::Soft,
        ));
    }
    // A soft bounce of another account does not count for this one.
    pipeline.emit(bounce(
        EventKind::Bounced,
        &brand.id,
        "full@example.net",
        BounceClass::Soft,
    ));
    pipeline.emit(bounce(
        EventKind::Bounced,
        &sub.id,
        "Gone@Example.net",
        BounceClass::Hard,
    ));
    assert!(pipeline.flush().await);
    assert_eq!(
        listed(store.as_ref(), &sub.id).await,
        vec![("gone@example.net".to_owned(), "hard_bounce".to_owned(), false)]
    );
    assert!(
        listed(store.as_ref(), &brand.id).await.is_empty(),
        "one soft bounce is under 4"
    );

    // The third soft bounce (an expiry counts) reaches the threshold.
    pipeline.emit(bounce(
        EventKind::Expired,
        &sub.id,
        "full@example.net",
        BounceClass::Soft,
    ));
    let mut complaint = Event::new(EventKind::Complained, sub.id.clone(), MessageId::generate());
    complaint.recipient = Some("angry@example.net".to_owned());
    pipeline.emit(complaint.clone());
    assert!(pipeline.flush().await);
    assert_eq!(
        listed(store.as_ref(), &sub.id).await,
        vec![
            ("full@example.net".to_owned(), "soft_bounces".to_owned(), false),
            ("gone@example.net".to_owned(), "hard_bounce".to_owned(), false),
        ]
    );
    let brand_list = store
        .list_suppressions(&brand.id, &SuppressionFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(brand_list.len(), 1, "{brand_list:?}");
    assert_eq!(
        (
            brand_list[0].address.as_str(),
            brand_list[0].reason.as_str(),
            brand_list[0].brand
        ),
        ("angry@example.net", "complaint", true)
    );
    assert_eq!(brand_list[0].source_event.as_ref(), Some(&complaint.id));
    // What the sending path asks: the sub's mail to the complainer is stopped.
    let stopped = store
        .suppressed(&sub.id, Some(&brand.id), &["angry@example.net".to_owned()])
        .await
        .unwrap();
    assert_eq!(stopped.len(), 1);
    pipeline.close(Duration::from_secs(10)).await;
}
