//! Acceptance's rules, in process: a real SQLite store and a real spool in
//! temp dirs, with delivery and the event pipeline replaced by recorders.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::{Arc, Mutex};

use herald_accounts::Accounts;
use herald_intake::{Acceptor, Deliver};
use herald_spool::{Spool, SpoolOptions};
use herald_store::{NewAccount, Store};
use herald_testkit::TempStore;
use herald_types::{
    AccountId, AccountName, AccountStatus, DomainName, EmailAddress, Envelope, Event, EventSink, MessageId,
    ReversePath, SenderRule, SubmitError,
};

#[derive(Debug, Default)]
struct Events(Mutex<Vec<Event>>);

impl EventSink for Events {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

#[derive(Default)]
struct Delivered(Mutex<Vec<MessageId>>);

impl Deliver for Delivered {
    fn submit(&self, id: &MessageId) {
        self.0.lock().unwrap().push(id.clone());
    }
}

struct Fixture {
    _store_dir: TempStore,
    _spool_dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    spool: Arc<Spool>,
    acceptor: Acceptor,
    ids: std::collections::HashMap<&'static str, AccountId>,
}

impl Fixture {
    /// acme (verified acme.test) with its sub acme-eu; globex, which was
    /// given `@acme.test` before the ownership rule existed.
    async fn new() -> Self {
        let t = TempStore::sqlite().unwrap();
        let store = t.open().await.unwrap();
        let mut ids: std::collections::HashMap<&'static str, AccountId> = std::collections::HashMap::new();
        for (name, parent) in [("acme", None), ("acme-eu", Some("acme")), ("globex", None)] {
            let parent = parent.map(|p: &str| ids[p].clone());
            let a = store
                .create_account(NewAccount {
                    name: AccountName::parse(name).unwrap(),
                    parent,
                })
                .await
                .unwrap();
            ids.insert(name, a.id);
        }
        let d = store
            .create_domain(&ids["acme"], &DomainName::parse("acme.test").unwrap(), Vec::new())
            .await
            .unwrap();
        store
            .set_domain_verified(&d.id, Some(time::OffsetDateTime::now_utc()))
            .await
            .unwrap();
        for (account, rule) in [
            ("acme", "@acme.test"),
            ("acme", "@other.test"),
            ("acme-eu", "@acme.test"),
            ("globex", "@acme.test"),
            ("globex", "@globex.test"),
        ] {
            store
                .add_sender(&ids[account], &SenderRule::parse(rule).unwrap())
                .await
                .unwrap();
        }
        let spool_dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(spool_dir.path(), SpoolOptions::default()).unwrap());
        let acceptor = Acceptor::new(
            "mta.test".to_owned(),
            Accounts::new(store.clone()),
            spool.clone(),
            Arc::new(Delivered::default()),
            Arc::new(Events::default()),
            1024 * 1024,
        );
        Self {
            _store_dir: t,
            _spool_dir: spool_dir,
            store,
            spool,
            acceptor,
            ids,
        }
    }

    fn envelope(&self, account: &str, sender: &str) -> Envelope {
        Envelope {
            sender: ReversePath::Address(EmailAddress::parse(sender).unwrap()),
            recipients: vec![EmailAddress::parse("jane@example.net").unwrap()],
            account: self.ids[account].clone(),
            client_ip: "192.0.2.1".parse().unwrap(),
            received_at: time::OffsetDateTime::now_utc(),
            stream: herald_types::DEFAULT_STREAM.to_owned(),
            tags: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// Submits `headers` + a body as `account` with envelope `sender`.
    async fn send(&self, account: &str, sender: &str, headers: &str) -> Result<Vec<u8>, SubmitError> {
        let body = format!("{headers}\r\nSubject: hi\r\n\r\nHello\r\n").into_bytes();
        let accepted = self.acceptor.accept(self.envelope(account, sender), body).await?;
        Ok(self.spool.read_body(&accepted.id).unwrap())
    }
}

#[tokio::test]
async fn every_author_address_must_be_approved() {
    let f = Fixture::new().await;
    f.send("acme", "news@acme.test", "From: Acme <news@acme.test>")
        .await
        .unwrap();
    let cases = [
        ("From: news@elsewhere.test", "news@elsewhere.test"),
        ("From: news@acme.test, boss@elsewhere.test", "boss@elsewhere.test"),
        ("From: news@acme.test\r\nFrom: ceo@elsewhere.test", "ceo@elsewhere.test"),
        (
            "From: news@acme.test\r\nSender: ops@elsewhere.test",
            "ops@elsewhere.test",
        ),
        ("From: \"ceo@elsewhere.test\" <news@acme.test>", "ceo@elsewhere.test"),
        ("From: news@acme.test (ceo@elsewhere.test)", "ceo@elsewhere.test"),
        ("From: Team: news@acme.test, ceo@elsewhere.test;", "ceo@elsewhere.test"),
        (
            "From: =?utf-8?q?ceo=40elsewhere.test?= <news@acme.test>",
            "ceo@elsewhere.test",
        ),
    ];
    for (headers, stranger) in cases {
        let refused = f.send("acme", "news@acme.test", headers).await;
        assert_eq!(
            refused,
            Err(SubmitError::FromNotApproved(stranger.to_owned())),
            "{headers}"
        );
    }
}

#[tokio::test]
async fn headers_that_do_not_parse_are_refused_not_skipped() {
    let f = Fixture::new().await;
    for headers in [
        "From : ceo@elsewhere.test",
        "From: ceo@elsewhere.test <news@acme.test>",
        "From: news@acme.test\r\n\t<ceo@elsewhere.test>",
        "From: <news@acme.test",
        "From: not an address",
        "From: =?utf-8?b?PGNlb0BlbHNld2hlcmUudGVzdD4=?=",
        "From: news@acme.test\r\nGarbage without a colon",
    ] {
        let refused = f.send("acme", "news@acme.test", headers).await;
        assert!(
            matches!(refused, Err(SubmitError::BadHeaders(_))),
            "{headers}: {refused:?}"
        );
        assert_eq!(refused.unwrap_err().smtp(), (550, [5, 6, 0]));
    }
    let body = b"no header block at all".to_vec();
    let refused = f.acceptor.accept(f.envelope("acme", "news@acme.test"), body).await;
    assert!(matches!(refused, Err(SubmitError::BadHeaders(_))), "{refused:?}");
    assert_eq!(f.spool.len(), 0, "nothing refused was spooled");
}

#[tokio::test]
async fn another_brands_domain_is_refused_whatever_the_approvals_say() {
    let f = Fixture::new().await;
    // globex holds `@acme.test` from before the rule; acme verified it.
    let as_envelope = f.send("globex", "news@acme.test", "From: news@globex.test").await;
    assert_eq!(
        as_envelope,
        Err(SubmitError::ForeignDomain("news@acme.test".to_owned()))
    );
    let as_author = f.send("globex", "news@globex.test", "From: news@acme.test").await;
    assert_eq!(as_author, Err(SubmitError::ForeignDomain("news@acme.test".to_owned())));
    let in_a_subdomain = f.send("globex", "news@globex.test", "From: a@mail.acme.test").await;
    assert_eq!(
        in_a_subdomain,
        Err(SubmitError::ForeignDomain("a@mail.acme.test".to_owned()))
    );
    assert_eq!(as_author.unwrap_err().smtp(), (550, [5, 7, 1]));
    // The brand's own sub uses it freely.
    f.send("acme-eu", "news@acme.test", "From: news@acme.test")
        .await
        .unwrap();
    f.send("globex", "news@globex.test", "From: news@globex.test")
        .await
        .unwrap();
}

#[tokio::test]
async fn controls_are_removed_and_a_missing_from_is_added() {
    let f = Fixture::new().await;
    let spooled = f
        .send(
            "acme",
            "news@acme.test",
            "To: jane@example.net\r\nX-Herald-Stream: newsletter\r\nx-herald-tag: a",
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&spooled).to_ascii_lowercase();
    assert!(!text.contains("x-herald"), "{text}");
    assert!(text.contains("from: news@acme.test\r\n"), "{text}");
    assert!(text.contains("message-id: <"), "{text}");
}

#[tokio::test]
async fn suspension_takes_effect_from_the_next_message() {
    let f = Fixture::new().await;
    f.acceptor
        .check_sender(
            &f.ids["acme-eu"],
            &ReversePath::Address(EmailAddress::parse("a@acme.test").unwrap()),
        )
        .await
        .unwrap();
    f.store
        .set_account_status(&f.ids["acme"], AccountStatus::Suspended)
        .await
        .unwrap();
    for account in ["acme", "acme-eu"] {
        let refused = f
            .acceptor
            .check_sender(
                &f.ids[account],
                &ReversePath::Address(EmailAddress::parse("a@acme.test").unwrap()),
            )
            .await;
        assert_eq!(refused, Err(SubmitError::Suspended("acme".to_owned())), "{account}");
        let refused = f.send(account, "news@acme.test", "From: news@acme.test").await;
        assert_eq!(refused, Err(SubmitError::Suspended("acme".to_owned())), "{account}");
    }
}

fn personal(from: &str, headers: Vec<(String, String)>) -> Vec<u8> {
    let p = herald_message::personal::Personal {
        from: (None, from.to_owned()),
        reply_to: None,
        subject: "hi".to_owned(),
        text: Some("Hello".to_owned()),
        html: None,
        headers,
        message_id: "p1@mta.test".to_owned(),
        date: 0,
        recipients: vec![herald_message::personal::PersonalRecipient {
            name: None,
            address: "jane@example.net".to_owned(),
            values: Default::default(),
        }],
    };
    herald_message::personal::encode(&p, &[]).unwrap()
}

/// Only the send API's composer hands in personalised messages, through
/// their own entry. A body that merely starts like one — over SMTP from a
/// trusted relay, or any other path to `accept` — is a header block that
/// does not parse; were it read as a personalised message, its headers
/// (a `Sender:` of another brand here) would skip every check.
#[tokio::test]
async fn a_body_shaped_like_a_personal_message_is_only_read_as_one_from_its_own_entry() {
    let f = Fixture::new().await;
    let forged = personal(
        "news@acme.test",
        vec![("Sender".to_owned(), "ceo@elsewhere.test".to_owned())],
    );
    let refused = f.acceptor.accept(f.envelope("acme", "news@acme.test"), forged).await;
    assert!(matches!(refused, Err(SubmitError::BadHeaders(_))), "{refused:?}");
    assert_eq!(f.spool.len(), 0);

    // Through its entry, the draft's From is held to the account's rules.
    let accepted = f
        .acceptor
        .accept_personal(
            f.envelope("acme", "news@acme.test"),
            personal("news@acme.test", Vec::new()),
        )
        .await
        .unwrap();
    assert!(herald_message::personal::is_personal(
        &f.spool.read_body(&accepted.id).unwrap()
    ));
    let refused = f
        .acceptor
        .accept_personal(
            f.envelope("acme", "news@acme.test"),
            personal("ceo@elsewhere.test", Vec::new()),
        )
        .await;
    assert_eq!(
        refused,
        Err(SubmitError::FromNotApproved("ceo@elsewhere.test".to_owned()))
    );
    // Nor may another brand's account name acme.test as author.
    let refused = f
        .acceptor
        .accept_personal(
            f.envelope("globex", "news@globex.test"),
            personal("news@acme.test", Vec::new()),
        )
        .await;
    assert!(matches!(refused, Err(SubmitError::ForeignDomain(_))), "{refused:?}");
}
