//! Preparation chooses the DKIM key and the return path from the sending
//! account's brand and the From domain together: a message whose From
//! names another brand's domain gets neither that brand's signature nor
//! its aligned return path, however it reached the queue.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::Arc;

use herald_auth::{RecordPlan, Sealer};
use herald_domains::Domains;
use herald_intake::HeraldPreparer;
use herald_mta::Prepare;
use herald_spool::{Queued, RcptState};
use herald_store::{NewAccount, Store};
use herald_testkit::TempStore;
use herald_types::{AccountName, EmailAddress, Envelope, MessageId, ReversePath};

fn plan() -> RecordPlan {
    RecordPlan {
        spf_include: "_spf.mta.test".into(),
        dmarc_rua: "dmarc@mta.test".into(),
        bounce_domain: "mta.test".into(),
        return_path_label: "bounces".into(),
        tracking_host: "mta.test".into(),
        tracking_label: "track".into(),
    }
}

const BODY: &[u8] =
    b"From: News <news@acme.test>\r\nTo: jane@example.net\r\nSubject: hi\r\nMessage-ID: <1@mta.test>\r\n\r\nHello\r\n";

fn queued(account: &herald_store::Account) -> Queued {
    Queued {
        id: MessageId::generate(),
        envelope: Arc::new(Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@acme.test").unwrap()),
            recipients: vec![EmailAddress::parse("jane@example.net").unwrap()],
            account: account.id.clone(),
            client_ip: "192.0.2.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        }),
        states: vec![RcptState::new(0)],
        size: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domains_key_signs_only_its_brands_mail() {
    let t = TempStore::sqlite().unwrap();
    let store: Arc<dyn Store> = t.open().await.unwrap();
    let account = |name: &str, parent| {
        let store = store.clone();
        let name = AccountName::parse(name).unwrap();
        async move { store.create_account(NewAccount { name, parent }).await.unwrap() }
    };
    let acme = account("acme", None).await;
    let acme_eu = account("acme-eu", Some(acme.id.clone())).await;
    let globex = account("globex", None).await;
    let domains = Arc::new(Domains::new(
        store.clone(),
        Arc::new(herald_dns::StaticResolver::new()),
        Arc::new(Sealer::new(b"platform secret for the test.....")),
        plan(),
    ));
    let added = domains.add(&acme, "acme.test").await.unwrap();
    store
        .set_domain_verified(&added.domain.id, Some(time::OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let preparer = HeraldPreparer::new(
        herald_tracking::Keyring::new(b"tracking secret"),
        domains,
        herald_accounts::Accounts::new(store.clone()),
        "https://mta.test".to_owned(),
    );

    for (who, signed) in [(&acme, true), (&acme_eu, true), (&globex, false)] {
        let q = queued(who);
        let out = preparer.prepare(&q, BODY, &[0]).await;
        assert_eq!(out.len(), 1);
        let text = String::from_utf8_lossy(&out[0].content);
        let rp = out[0].sender.to_string();
        if signed {
            assert!(
                text.contains("DKIM-Signature:") && text.contains("d=acme.test"),
                "{}: {text}",
                who.name
            );
            assert!(
                rp.ends_with("@bounces.acme.test"),
                "{}: aligned return path, got {rp}",
                who.name
            );
        } else {
            assert!(
                !text.contains("DKIM-Signature"),
                "another brand's mail is not signed: {text}"
            );
            assert!(rp.ends_with("@mta.test"), "the platform's return path, got {rp}");
        }
    }
}
