//! The behaviour every store backend must show, run against SQLite always
//! and PostgreSQL when configured (see `tests/store_suite.rs`).
//!
//! Each case gets a fresh, empty store. Cases assert what a user of Herald
//! would notice: names unique, deletes that cascade or refuse, revocations
//! that stick, a bootstrap that happens once even when nodes race.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, ensure};
use herald_store::{
    AccountFilter, DkimAlgorithm, EventFilter, KeyState, NewAccount, NewApiKey, NewDkimKey, NewSmtpCredential,
    NewWebhook, Store, StoreError, WebhookStatus,
};
use herald_types::{
    AccountId, AccountName, AccountStatus, ApiKeyId, BounceClass, BounceInfo, DomainName, Event, EventId, EventKind,
    KeyScope, MessageId, SenderRule, SmtpAnswer, SmtpCredentialId,
};

type CaseFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
/// A named case of the suite.
pub type Case = (&'static str, fn(Arc<dyn Store>) -> CaseFuture);

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        /// Every case, by name.
        pub const CASES: &[Case] = &[$((stringify!($name), |s| Box::pin($name(s)))),*];
    };
}

cases![
    accounts_are_unique_by_name_and_listed_by_kind,
    sub_accounts_need_an_existing_parent,
    status_changes_persist,
    promotion_detaches_a_sub,
    deleting_refuses_masters_with_subs_and_cascades_credentials,
    api_keys_are_found_by_prefix_and_revoked_per_account,
    smtp_credentials_are_found_by_username_and_revoked_per_account,
    approved_senders_are_per_account,
    bootstrap_happens_once_even_when_racing,
    bootstrap_reuses_an_existing_master,
    concurrent_writers_all_succeed,
    times_round_trip_exactly,
    events_round_trip_with_every_field,
    events_filter_and_page_stably,
    domains_have_one_owner_and_keep_their_keys,
    key_switches_and_rotations_are_all_or_nothing,
    suppressions_are_per_account_and_keep_the_first_reason,
    brand_wide_suppressions_cover_every_account_of_the_brand,
    suppression_lists_page_search_import_and_remove,
    bounces_find_their_message_and_are_counted,
    idempotency_keys_are_claimed_once_and_answer_the_same,
    webhooks_are_owed_what_is_stored_after_them,
    stats_roll_up_each_stored_event_once,
    reports_are_stored_once_and_broken_ones_kept,
    retention_prunes_old_history_only,
    listings_open_once_and_end,
    alerts_are_one_open_per_condition,
    users_lock_and_sessions_follow_their_user,
];

fn name(s: &str) -> AccountName {
    AccountName::parse(s).expect("test names are valid")
}

fn master(s: &str) -> NewAccount {
    NewAccount {
        name: name(s),
        parent: None,
    }
}

fn sub(s: &str, parent: &AccountId) -> NewAccount {
    NewAccount {
        name: name(s),
        parent: Some(parent.clone()),
    }
}

fn key(account: &AccountId, prefix: &str) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::generate(),
        account: account.clone(),
        prefix: prefix.to_owned(),
        hash: format!("$argon2id$fake${prefix}"),
        scope: KeyScope::Account,
        label: Some(format!("label of {prefix}")),
    }
}

fn credential(account: &AccountId, username: &str) -> NewSmtpCredential {
    NewSmtpCredential {
        id: SmtpCredentialId::generate(),
        account: account.clone(),
        username: username.to_owned(),
        hash: format!("$argon2id$fake${username}"),
        label: None,
    }
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

fn is_not_found<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound { .. }))
}

async fn accounts_are_unique_by_name_and_listed_by_kind(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    ensure!(acme.parent.is_none() && acme.status == AccountStatus::Active);
    let eu = s.create_account(sub("acme-eu", &acme.id)).await?;
    let globex = s.create_account(master("globex")).await?;
    ensure!(
        eu.parent.as_ref().map(|p| p.name.as_str()) == Some("acme"),
        "sub knows its master: {eu:?}"
    );

    ensure!(s.account_by_name(&name("acme-eu")).await? == Some(eu.clone()));
    ensure!(s.account_by_id(&eu.id).await? == Some(eu.clone()));
    ensure!(s.account_by_name(&name("nobody")).await?.is_none());

    let dup = s.create_account(master("acme")).await;
    ensure!(is_conflict(&dup), "a taken name is a conflict: {dup:?}");
    let dup_sub = s.create_account(sub("globex", &acme.id)).await;
    ensure!(
        is_conflict(&dup_sub),
        "names are unique across masters and subs: {dup_sub:?}"
    );

    let names = |v: Vec<herald_store::Account>| v.into_iter().map(|a| a.name.to_string()).collect::<Vec<_>>();
    ensure!(names(s.list_accounts(AccountFilter::All).await?) == ["acme", "acme-eu", "globex"]);
    ensure!(names(s.list_accounts(AccountFilter::Masters).await?) == ["acme", "globex"]);
    ensure!(names(s.list_accounts(AccountFilter::SubsOf(acme.id.clone())).await?) == ["acme-eu"]);
    ensure!(s.list_accounts(AccountFilter::SubsOf(globex.id)).await?.is_empty());
    Ok(())
}

async fn sub_accounts_need_an_existing_parent(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let orphan = s.create_account(sub("orphan", &AccountId::generate())).await;
    ensure!(is_not_found(&orphan), "unknown parent: {orphan:?}");
    ensure!(s.account_by_name(&name("orphan")).await?.is_none(), "nothing written");
    Ok(())
}

async fn status_changes_persist(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let a = s.create_account(master("acme")).await?;
    ensure!(
        a.settings == herald_types::AccountSettings::default(),
        "new accounts track nothing"
    );
    let tracking = herald_types::AccountSettings {
        track_opens: true,
        track_clicks: true,
        hard_bounce_threshold: 2,
        soft_bounce_threshold: 10,
        reply_forward_to: Some("owner@acme.test".to_owned()),
        reply_url: Some("https://hooks.acme.test/replies".to_owned()),
        bounce_alert_bp: 500,
        complaint_alert_bp: 10,
        daily_quota: Some(10_000),
        rate_per_minute: Some(600),
        spam_threshold_centi: Some(750),
        alert_email: Some("ops@acme.test".to_owned()),
        stream_domains: [("newsletter".to_owned(), "news.acme.test".to_owned())].into(),
    };
    s.set_account_settings(&a.id, &tracking).await?;
    ensure!(s.account_by_id(&a.id).await?.context("exists")?.settings == tracking);
    ensure!(is_not_found(
        &s.set_account_settings(&AccountId::generate(), &tracking).await
    ));
    s.set_account_status(&a.id, AccountStatus::Suspended).await?;
    ensure!(s.account_by_id(&a.id).await?.context("exists")?.status == AccountStatus::Suspended);
    s.set_account_status(&a.id, AccountStatus::Active).await?;
    ensure!(s.account_by_id(&a.id).await?.context("exists")?.is_active());
    let missing = s
        .set_account_status(&AccountId::generate(), AccountStatus::Suspended)
        .await;
    ensure!(is_not_found(&missing), "{missing:?}");
    Ok(())
}

async fn promotion_detaches_a_sub(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let eu = s.create_account(sub("acme-eu", &acme.id)).await?;
    s.promote_account(&eu.id).await?;
    let eu = s.account_by_id(&eu.id).await?.context("exists")?;
    ensure!(eu.parent.is_none(), "promoted: {eu:?}");
    ensure!(s.list_accounts(AccountFilter::SubsOf(acme.id)).await?.is_empty());
    ensure!(s.list_accounts(AccountFilter::Masters).await?.len() == 2);
    ensure!(is_not_found(&s.promote_account(&AccountId::generate()).await));
    Ok(())
}

async fn deleting_refuses_masters_with_subs_and_cascades_credentials(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let eu = s.create_account(sub("acme-eu", &acme.id)).await?;
    s.insert_api_key(key(&eu.id, "hrld_eukey00001")).await?;
    s.insert_smtp_credential(credential(&eu.id, "acme-eu-smtp")).await?;
    s.add_sender(&eu.id, &SenderRule::parse("@acme.eu")?).await?;

    let refused = s.delete_account(&acme.id).await;
    ensure!(is_conflict(&refused), "a master with subs stays: {refused:?}");
    ensure!(s.account_by_id(&acme.id).await?.is_some());

    s.delete_account(&eu.id).await?;
    ensure!(s.account_by_id(&eu.id).await?.is_none());
    ensure!(
        s.api_key_by_prefix("hrld_eukey00001").await?.is_none(),
        "its keys go with it"
    );
    ensure!(
        s.smtp_credential_by_username("acme-eu-smtp").await?.is_none(),
        "its credentials go with it"
    );
    ensure!(s.list_senders(&eu.id).await?.is_empty(), "its senders go with it");

    s.delete_account(&acme.id).await?;
    ensure!(is_not_found(&s.delete_account(&acme.id).await), "deleting twice");
    Ok(())
}

async fn api_keys_are_found_by_prefix_and_revoked_per_account(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let k1 = s.insert_api_key(key(&acme.id, "hrld_aaaaaaaaaa")).await?;
    let k2 = s.insert_api_key(key(&acme.id, "hrld_bbbbbbbbbb")).await?;
    s.insert_api_key(key(&globex.id, "hrld_cccccccccc")).await?;
    ensure!(k1.hash == "$argon2id$fake$hrld_aaaaaaaaaa" && k1.scope == KeyScope::Account);
    ensure!(k1.label.as_deref() == Some("label of hrld_aaaaaaaaaa") && k1.revoked_at.is_none());
    ensure!(s.api_key_by_prefix("hrld_aaaaaaaaaa").await? == Some(k1.clone()));

    let dup = s.insert_api_key(key(&globex.id, "hrld_aaaaaaaaaa")).await;
    ensure!(is_conflict(&dup), "prefixes are unique: {dup:?}");
    let nowhere = s.insert_api_key(key(&AccountId::generate(), "hrld_dddddddddd")).await;
    ensure!(is_not_found(&nowhere), "{nowhere:?}");

    let listed: Vec<_> = s.list_api_keys(&acme.id).await?.into_iter().map(|k| k.id).collect();
    ensure!(
        listed == [k1.id.clone(), k2.id.clone()],
        "oldest first, own keys only: {listed:?}"
    );

    let foreign = s.revoke_api_key(&globex.id, &k1.id).await;
    ensure!(
        is_not_found(&foreign),
        "another account's key is not found: {foreign:?}"
    );
    ensure!(
        s.api_key_by_prefix("hrld_aaaaaaaaaa")
            .await?
            .context("exists")?
            .revoked_at
            .is_none()
    );

    s.revoke_api_key(&acme.id, &k1.id).await?;
    let first = s
        .api_key_by_prefix("hrld_aaaaaaaaaa")
        .await?
        .context("exists")?
        .revoked_at;
    ensure!(first.is_some());
    s.revoke_api_key(&acme.id, &k1.id).await?;
    let second = s
        .api_key_by_prefix("hrld_aaaaaaaaaa")
        .await?
        .context("exists")?
        .revoked_at;
    ensure!(first == second, "revoking again keeps the first time");
    ensure!(
        s.api_key_by_prefix("hrld_bbbbbbbbbb")
            .await?
            .context("exists")?
            .revoked_at
            .is_none()
    );
    Ok(())
}

async fn smtp_credentials_are_found_by_username_and_revoked_per_account(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let c = s.insert_smtp_credential(credential(&acme.id, "acme-x1")).await?;
    ensure!(c.username == "acme-x1" && c.hash == "$argon2id$fake$acme-x1");
    ensure!(is_conflict(
        &s.insert_smtp_credential(credential(&globex.id, "acme-x1")).await
    ));
    ensure!(s.list_smtp_credentials(&acme.id).await? == vec![c.clone()]);
    ensure!(s.list_smtp_credentials(&globex.id).await?.is_empty());
    ensure!(is_not_found(&s.revoke_smtp_credential(&globex.id, &c.id).await));
    s.revoke_smtp_credential(&acme.id, &c.id).await?;
    let after = s.smtp_credential_by_username("acme-x1").await?.context("exists")?;
    ensure!(after.revoked_at.is_some());
    Ok(())
}

async fn approved_senders_are_per_account(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let domain = SenderRule::parse("@acme.com")?;
    let exact = SenderRule::parse("billing@acme.net")?;
    s.add_sender(&acme.id, &domain).await?;
    s.add_sender(&acme.id, &exact).await?;
    s.add_sender(&globex.id, &domain).await?;
    ensure!(
        is_conflict(&s.add_sender(&acme.id, &domain).await),
        "the same rule twice"
    );
    let rules: Vec<_> = s.list_senders(&acme.id).await?.into_iter().map(|a| a.rule).collect();
    ensure!(
        rules.len() == 2 && rules.contains(&domain) && rules.contains(&exact),
        "{rules:?}"
    );
    s.remove_sender(&acme.id, &domain).await?;
    ensure!(is_not_found(&s.remove_sender(&acme.id, &domain).await));
    ensure!(
        s.list_senders(&globex.id).await?.len() == 1,
        "removing one account's rule leaves another's"
    );
    Ok(())
}

async fn bootstrap_happens_once_even_when_racing(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let mut racers = Vec::new();
    for i in 0..4 {
        let s = s.clone();
        racers.push(tokio::spawn(async move {
            let k = key(&AccountId::generate(), &format!("hrld_boot{i:06}"));
            s.bootstrap(
                master("main"),
                NewApiKey {
                    scope: KeyScope::Admin,
                    ..k
                },
            )
            .await
        }));
    }
    let mut winners = Vec::new();
    for r in racers {
        if let Some(b) = r.await?? {
            winners.push(b);
        }
    }
    ensure!(winners.len() == 1, "exactly one bootstrap, got {}", winners.len());
    let b = &winners[0];
    ensure!(b.account.name.as_str() == "main" && b.account.parent.is_none());
    ensure!(b.key.account == b.account.id && b.key.scope == KeyScope::Admin);
    ensure!(s.list_api_keys(&b.account.id).await?.len() == 1, "losers wrote nothing");
    ensure!(s.list_accounts(AccountFilter::All).await?.len() == 1);
    Ok(())
}

async fn bootstrap_reuses_an_existing_master(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let main = s.create_account(master("main")).await?;
    let b = s
        .bootstrap(master("main"), key(&AccountId::generate(), "hrld_reuse0000"))
        .await?
        .context("first bootstrap")?;
    ensure!(b.account.id == main.id, "the existing master gets the key");
    ensure!(
        s.bootstrap(master("main"), key(&main.id, "hrld_reuse0001"))
            .await?
            .is_none()
    );
    Ok(())
}

async fn concurrent_writers_all_succeed(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let a = s.create_account(master(&format!("acct{i:03}"))).await?;
            s.insert_api_key(key(&a.id, &format!("hrld_conc{i:06}"))).await?;
            s.add_sender(&a.id, &SenderRule::parse(&format!("@d{i}.example"))?)
                .await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    ensure!(s.list_accounts(AccountFilter::All).await?.len() == 40);
    Ok(())
}

async fn times_round_trip_exactly(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let a = s.create_account(master("acme")).await?;
    let after = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    ensure!(
        before <= a.created_at && a.created_at <= after,
        "{} not within the call",
        a.created_at
    );
    let again = s.account_by_id(&a.id).await?.context("exists")?;
    ensure!(again.created_at == a.created_at);
    Ok(())
}

fn event(kind: EventKind, account: &AccountId, message: &MessageId, rcpt: &str) -> Event {
    let mut e = Event::new(kind, account.clone(), message.clone());
    e.recipient = Some(rcpt.to_owned());
    e.sender = Some("news@acme.test".to_owned());
    e
}

async fn events_round_trip_with_every_field(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let account = AccountId::generate();
    let message = MessageId::generate();
    let bare = Event::new(EventKind::Accepted, account.clone(), message.clone());
    let mut full = event(EventKind::Bounced, &account, &message, "who@example.net");
    full.source_ip = Some("192.0.2.10".parse()?);
    full.mx = Some("mx1.example.net".to_owned());
    full.smtp = Some(SmtpAnswer {
        code: 550,
        enhanced: Some("5.1.1".to_owned()),
        text: "user unknown".to_owned(),
        phase: "rcpt".to_owned(),
    });
    full.bounce = Some(BounceInfo {
        class: BounceClass::Hard,
        reason: "userunknown".to_owned(),
    });
    full.reason = Some("suppressed: unsubscribe".to_owned());
    full.rcpt_index = Some(7);
    full.tags = vec!["welcome".to_owned(), "spring sale".to_owned()];
    full.metadata = vec![
        ("order".to_owned(), "1234".to_owned()),
        ("cohort".to_owned(), "B".to_owned()),
    ];
    full.engagement = Some(herald_types::Engagement {
        user_agent: "Mozilla/5.0 (X11)".to_owned(),
        ip: Some("198.51.100.7".parse()?),
        machine: false,
        url: Some("https://acme.test/p?x=1".to_owned()),
        count: 3,
    });
    s.insert_events(&[full.clone(), bare.clone()]).await?;
    // A batch retried after an unclear failure changes nothing.
    s.insert_events(&[full.clone()]).await?;
    let all = s
        .list_events(
            &EventFilter {
                account: Some(account),
                ..EventFilter::default()
            },
            100,
        )
        .await?;
    ensure!(all == vec![bare, full], "stored exactly, oldest first: {all:#?}");
    Ok(())
}

async fn events_filter_and_page_stably(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let a = AccountId::generate();
    let b = AccountId::generate();
    let m1 = MessageId::generate();
    let m2 = MessageId::generate();
    let batch = vec![
        event(EventKind::Accepted, &a, &m1, "x@example.net"),
        event(EventKind::Delivered, &a, &m1, "x@example.net"),
        event(EventKind::Accepted, &a, &m2, "y@example.net"),
        event(EventKind::Deferred, &a, &m2, "y@example.net"),
        event(EventKind::Accepted, &b, &MessageId::generate(), "x@example.net"),
    ];
    s.insert_events(&batch).await?;
    let of_a = |f: EventFilter| EventFilter {
        account: Some(a.clone()),
        ..f
    };
    let count = |v: Vec<Event>| v.len();
    ensure!(
        count(s.list_events(&of_a(EventFilter::default()), 100).await?) == 4,
        "one account only"
    );
    let kinds = EventFilter {
        kinds: vec![EventKind::Delivered, EventKind::Deferred],
        ..EventFilter::default()
    };
    ensure!(count(s.list_events(&of_a(kinds), 100).await?) == 2);
    let rcpt = EventFilter {
        recipient: Some("x@example.net".into()),
        ..EventFilter::default()
    };
    ensure!(count(s.list_events(&of_a(rcpt), 100).await?) == 2);
    let msg = EventFilter {
        message_id: Some(m2.clone()),
        ..EventFilter::default()
    };
    ensure!(count(s.list_events(&of_a(msg), 100).await?) == 2);
    let future = EventFilter {
        since: Some(time::OffsetDateTime::now_utc() + time::Duration::hours(1)),
        ..EventFilter::default()
    };
    ensure!(count(s.list_events(&of_a(future), 100).await?) == 0);
    let past = EventFilter {
        until: Some(time::OffsetDateTime::now_utc() - time::Duration::hours(1)),
        ..EventFilter::default()
    };
    ensure!(count(s.list_events(&of_a(past), 100).await?) == 0);

    // Pages of 3: a new event arriving between pages lands after them.
    let first = s.list_events(&of_a(EventFilter::default()), 3).await?;
    ensure!(first.len() == 3);
    let late = event(EventKind::Delivered, &a, &m2, "y@example.net");
    s.insert_events(std::slice::from_ref(&late)).await?;
    let cursor = EventFilter {
        after: first.last().map(|e| e.id.clone()),
        ..EventFilter::default()
    };
    let second = s.list_events(&of_a(cursor), 3).await?;
    let ids: Vec<_> = second.iter().map(|e| e.id.clone()).collect();
    ensure!(
        ids == vec![batch[3].id.clone(), late.id.clone()],
        "stable pages: {ids:?}"
    );

    // By position: an event made earlier (a smaller id) but stored after a
    // page was read is still on the next page.
    let page = s.page_events(&of_a(EventFilter::default()), 0, 100).await?;
    ensure!(page.len() == 5 && page.windows(2).all(|w| w[0].0 < w[1].0));
    let last = page.last().map(|(p, _)| *p).unwrap_or_default();
    let mut early = event(EventKind::Opened, &a, &m1, "x@example.net");
    early.id = EventId::parse(&format!("evt_{}", "0".repeat(32)))?;
    s.insert_events(std::slice::from_ref(&early)).await?;
    let next = s.page_events(&of_a(EventFilter::default()), last, 100).await?;
    ensure!(next.len() == 1 && next[0].1.id == early.id, "{next:?}");
    // A backlog counts what a page would hold, up to its cap.
    let all = EventFilter::default();
    ensure!(s.count_events_after(&of_a(all.clone()), 0, 100).await? == 6);
    ensure!(s.count_events_after(&of_a(all.clone()), 0, 4).await? == 4);
    ensure!(s.count_events_after(&of_a(all.clone()), last, 100).await? == 1);
    let delivered = EventFilter {
        kinds: vec![EventKind::Delivered],
        ..EventFilter::default()
    };
    let want = page.iter().filter(|(_, e)| e.kind == EventKind::Delivered).count() as u64;
    ensure!(s.count_events_after(&of_a(delivered), 0, 100).await? == want);

    // Tags and metadata.
    let mut tagged = event(EventKind::Accepted, &a, &MessageId::generate(), "t@example.net");
    tagged.tags = vec!["spring_sale".to_owned(), "50%".to_owned()];
    tagged.metadata = vec![("order".to_owned(), "12_34".to_owned())];
    s.insert_events(std::slice::from_ref(&tagged)).await?;
    let by = |tag: Option<&str>, meta: Option<(&str, &str)>| EventFilter {
        tag: tag.map(str::to_owned),
        metadata: meta.map(|(k, v)| (k.to_owned(), v.to_owned())),
        ..EventFilter::default()
    };
    for (f, n) in [
        (by(Some("spring_sale"), None), 1),
        (by(Some("50%"), None), 1),
        // Wildcards in the value are plain characters.
        (by(Some("spring"), None), 0),
        (by(Some("spring_sal%"), None), 0),
        (by(None, Some(("order", "12_34"))), 1),
        (by(None, Some(("order", "12"))), 0),
        (by(None, Some(("order", "12x34"))), 0),
        (by(Some("50%"), Some(("order", "12_34"))), 1),
    ] {
        let got = s.page_events(&of_a(f.clone()), 0, 100).await?;
        ensure!(got.len() == n, "{f:?}: {got:?}");
    }
    Ok(())
}

fn dkim(selector: &str, algorithm: DkimAlgorithm, state: KeyState) -> NewDkimKey {
    NewDkimKey {
        selector: selector.to_owned(),
        algorithm,
        private_key: format!("sealed:{selector}"),
        public_key: format!("pub-{selector}"),
        state,
    }
}

async fn domains_have_one_owner_and_keep_their_keys(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let name = DomainName::parse("acme.test")?;
    let keys = vec![
        dkim("hrld-20261123-rsa", DkimAlgorithm::RsaSha256, KeyState::Active),
        dkim("hrld-20261123-ed", DkimAlgorithm::Ed25519Sha256, KeyState::Active),
    ];
    let d = s.create_domain(&acme.id, &name, keys).await?;
    ensure!(d.account == acme.id && d.verified_at.is_none());
    let selectors: Vec<_> = d.keys.iter().map(|k| k.selector.as_str()).collect();
    ensure!(selectors == ["hrld-20261123-rsa", "hrld-20261123-ed"], "{selectors:?}");
    ensure!(d.keys[1].algorithm == DkimAlgorithm::Ed25519Sha256 && d.keys[1].private_key == "sealed:hrld-20261123-ed");
    ensure!(s.domain(&name).await? == Some(d.clone()));

    let taken = s.create_domain(&globex.id, &name, vec![]).await;
    ensure!(is_conflict(&taken), "one owner per domain: {taken:?}");
    s.create_domain(&acme.id, &DomainName::parse("acme-mail.test")?, vec![])
        .await?;
    let names: Vec<_> = s
        .list_domains(&acme.id)
        .await?
        .into_iter()
        .map(|d| d.name.to_string())
        .collect();
    ensure!(names == ["acme-mail.test", "acme.test"], "{names:?}");
    ensure!(s.list_domains(&globex.id).await?.is_empty());

    let when = time::OffsetDateTime::from_unix_timestamp(1_790_000_000)?;
    s.set_domain_verified(&d.id, Some(when)).await?;
    ensure!(s.domain(&name).await?.context("exists")?.verified_at == Some(when));

    ensure!(
        is_not_found(&s.delete_domain(&globex.id, &name).await),
        "another account's domain"
    );
    s.delete_domain(&acme.id, &name).await?;
    ensure!(s.domain(&name).await?.is_none());
    // Deleting the account takes its remaining domains along.
    s.delete_account(&acme.id).await?;
    ensure!(s.domain(&DomainName::parse("acme-mail.test")?).await?.is_none());
    Ok(())
}

async fn key_switches_and_rotations_are_all_or_nothing(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let name = DomainName::parse("acme.test")?;
    let d = s
        .create_domain(
            &acme.id,
            &name,
            vec![dkim("old", DkimAlgorithm::RsaSha256, KeyState::Active)],
        )
        .await?;
    // A rotation whose second key clashes with an existing selector adds nothing.
    let clash = s
        .add_dkim_keys(
            &d.id,
            vec![
                dkim("new", DkimAlgorithm::RsaSha256, KeyState::Pending),
                dkim("old", DkimAlgorithm::RsaSha256, KeyState::Pending),
            ],
        )
        .await;
    ensure!(is_conflict(&clash), "{clash:?}");
    ensure!(
        s.domain(&name).await?.context("exists")?.keys.len() == 1,
        "nothing of a failed rotation is kept"
    );
    s.add_dkim_keys(&d.id, vec![dkim("new", DkimAlgorithm::RsaSha256, KeyState::Pending)])
        .await?;
    let keys = s.domain(&name).await?.context("exists")?.keys;
    let (old, new) = (keys[0].id.clone(), keys[1].id.clone());
    s.set_key_states(
        &d.id,
        &[(new.clone(), KeyState::Active), (old.clone(), KeyState::Retiring)],
    )
    .await?;
    let states: Vec<_> = s
        .domain(&name)
        .await?
        .context("exists")?
        .keys
        .iter()
        .map(|k| k.state)
        .collect();
    ensure!(states == [KeyState::Retiring, KeyState::Active], "{states:?}");
    // A switch naming a key of no such domain changes nothing.
    let stray = s
        .set_key_states(
            &d.id,
            &[
                (old.clone(), KeyState::Retired),
                (herald_types::DkimKeyId::generate(), KeyState::Active),
            ],
        )
        .await;
    ensure!(is_not_found(&stray), "{stray:?}");
    ensure!(s.domain(&name).await?.context("exists")?.keys[0].state == KeyState::Retiring);
    Ok(())
}

fn entry(account: &AccountId, address: &str, reason: &str, brand: bool) -> herald_store::NewSuppression {
    herald_store::NewSuppression {
        account: account.clone(),
        address: address.to_owned(),
        reason: reason.to_owned(),
        source_event: None,
        brand,
    }
}

async fn suppressions_are_per_account_and_keep_the_first_reason(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let source = herald_types::EventId::generate();
    let mut first = entry(&acme.id, "Jane@Example.NET", "hard_bounce", false);
    first.source_event = Some(source.clone());
    ensure!(s.suppress(&first).await?);
    ensure!(
        !s.suppress(&entry(&acme.id, "jane@example.net", "soft_bounces", false))
            .await?,
        "already suppressed"
    );
    let asked = vec!["JANE@example.net".to_owned(), "joe@example.net".to_owned()];
    let found = s.suppressed(&acme.id, None, &asked).await?;
    ensure!(found.len() == 1, "{found:?}");
    // The key is lower-case; the address as given is kept to show, its
    // domain lower-cased.
    ensure!(
        found[0].address == "jane@example.net"
            && found[0].shown == "Jane@example.net"
            && found[0].reason == "hard_bounce"
            && found[0].source_event == Some(source)
            && !found[0].brand
    );
    ensure!(
        s.suppressed(&globex.id, None, &asked).await?.is_empty(),
        "another account's list is its own"
    );
    ensure!(s.suppressed(&acme.id, None, &[]).await?.is_empty());
    // A brand-wide entry widens an account-only one.
    ensure!(
        s.suppress(&entry(&acme.id, "jane@example.net", "complaint", true))
            .await?
    );
    let found = s.suppressed(&acme.id, None, &asked).await?;
    ensure!(
        found.len() == 1 && found[0].reason == "complaint" && found[0].brand,
        "{found:?}"
    );
    ensure!(
        !s.suppress(&entry(&acme.id, "jane@example.net", "unsubscribe", true))
            .await?
    );
    Ok(())
}

async fn brand_wide_suppressions_cover_every_account_of_the_brand(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let eu = s.create_account(sub("acme-eu", &acme.id)).await?;
    let us = s.create_account(sub("acme-us", &acme.id)).await?;
    s.suppress(&entry(&acme.id, "complainer@example.net", "complaint", true))
        .await?;
    s.suppress(&entry(&acme.id, "bounced-at-master@example.net", "hard_bounce", false))
        .await?;
    s.suppress(&entry(&eu.id, "bounced-at-eu@example.net", "hard_bounce", false))
        .await?;
    let asked: Vec<String> = [
        "complainer@example.net",
        "bounced-at-master@example.net",
        "bounced-at-eu@example.net",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let addresses = |v: Vec<herald_store::Suppression>| {
        let mut a: Vec<String> = v.into_iter().map(|s| s.address).collect();
        a.sort();
        a
    };
    ensure!(
        addresses(s.suppressed(&us.id, Some(&acme.id), &asked).await?) == ["complainer@example.net"],
        "a sibling sees only the brand-wide entry"
    );
    ensure!(
        addresses(s.suppressed(&eu.id, Some(&acme.id), &asked).await?)
            == ["bounced-at-eu@example.net", "complainer@example.net"]
    );
    ensure!(
        addresses(s.suppressed(&acme.id, Some(&acme.id), &asked).await?)
            == ["bounced-at-master@example.net", "complainer@example.net"]
    );
    Ok(())
}

async fn suppression_lists_page_search_import_and_remove(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let many: Vec<_> = (0..25)
        .map(|i| entry(&acme.id, &format!("user{i:02}@example.net"), "import", false))
        .chain([entry(&acme.id, "odd_one%@example.org", "manual", false)])
        .collect();
    ensure!(s.suppress_many(&many).await? == 26);
    ensure!(s.suppress_many(&many[..3]).await? == 0, "importing again adds nothing");
    let mut seen = Vec::new();
    let mut filter = herald_store::SuppressionFilter::default();
    loop {
        let page = s.list_suppressions(&acme.id, &filter, 10).await?;
        if page.is_empty() {
            break;
        }
        filter.after = page.last().map(|e| e.address.clone());
        seen.extend(page.into_iter().map(|e| e.address));
    }
    ensure!(seen.len() == 26 && seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let search = |text: &str| herald_store::SuppressionFilter {
        search: Some(text.to_owned()),
        ..Default::default()
    };
    ensure!(s.list_suppressions(&acme.id, &search("USER1"), 100).await?.len() == 10);
    ensure!(
        s.list_suppressions(&acme.id, &search("_one%"), 100).await?.len() == 1,
        "the search's own % and _ are literal"
    );
    ensure!(s.list_suppressions(&acme.id, &search("r_1"), 100).await?.is_empty());
    let manual = herald_store::SuppressionFilter {
        reason: Some("manual".into()),
        ..Default::default()
    };
    ensure!(s.list_suppressions(&acme.id, &manual, 100).await?.len() == 1);
    ensure!(s.remove_suppression(&acme.id, "USER00@example.net").await?);
    ensure!(!s.remove_suppression(&acme.id, "user00@example.net").await?);
    ensure!(
        s.suppressed(&acme.id, None, &["user00@example.net".into()])
            .await?
            .is_empty()
    );
    Ok(())
}

async fn bounces_find_their_message_and_are_counted(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let message = herald_types::MessageId::generate();
    let mut events = Vec::new();
    for (i, rcpt) in ["a@example.net", "b@example.net"].iter().enumerate() {
        let mut e = Event::new(EventKind::Accepted, acme.id.clone(), message.clone());
        e.recipient = Some((*rcpt).to_owned());
        e.rcpt_index = Some(u32::try_from(i)?);
        if i == 0 {
            e.header_id = Some("abc@mta.test".to_owned());
        }
        events.push(e);
    }
    for class in [BounceClass::Soft, BounceClass::Soft, BounceClass::Hard] {
        let mut e = Event::new(EventKind::Bounced, acme.id.clone(), message.clone());
        e.recipient = Some("b@example.net".to_owned());
        e.bounce = Some(BounceInfo {
            class,
            reason: "mailboxfull".into(),
        });
        events.push(e);
    }
    s.insert_events(&events).await?;
    ensure!(s.recipient_at(&message, 1).await? == Some((acme.id.clone(), "b@example.net".to_owned())));
    ensure!(s.recipient_at(&message, 2).await?.is_none());
    // Stored again (a retried batch): still one entry.
    s.insert_events(&events[..1]).await?;
    ensure!(s.messages_by_header_id("abc@mta.test").await? == [(message.clone(), acme.id.clone())]);
    ensure!(s.messages_by_header_id("other@mta.test").await?.is_empty());
    let soft = EventFilter {
        account: Some(acme.id.clone()),
        recipient: Some("b@example.net".into()),
        bounce_class: Some(BounceClass::Soft),
        since: Some(time::OffsetDateTime::now_utc() - time::Duration::hours(24)),
        ..EventFilter::default()
    };
    ensure!(s.count_events(&soft).await? == 2);
    Ok(())
}

async fn idempotency_keys_are_claimed_once_and_answer_the_same(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::IdempotencyClaim;
    let acme = s.create_account(master("acme")).await?;
    let globex = s.create_account(master("globex")).await?;
    let day_ago = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    // Racing claims of one key: exactly one wins.
    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (s, id) = (s.clone(), acme.id.clone());
        racing.spawn(async move { s.claim_idempotency(&id, "order-1", "fp-a", day_ago).await });
    }
    let claims = racing.join_all().await;
    let won = claims
        .iter()
        .filter(|c| matches!(c, Ok(IdempotencyClaim::Claimed)))
        .count();
    ensure!(won == 1, "{claims:?}");
    ensure!(
        claims
            .iter()
            .all(|c| matches!(c, Ok(IdempotencyClaim::Claimed | IdempotencyClaim::InProgress { .. }))),
        "{claims:?}"
    );
    s.complete_idempotency(&acme.id, "order-1", 202, "{\"id\":\"msg_1\"}")
        .await?;
    let again = s.claim_idempotency(&acme.id, "order-1", "fp-b", day_ago).await?;
    ensure!(
        again
            == IdempotencyClaim::Done {
                fingerprint: "fp-a".into(),
                status: 202,
                body: "{\"id\":\"msg_1\"}".into()
            },
        "{again:?}"
    );
    ensure!(
        s.claim_idempotency(&globex.id, "order-1", "fp-a", day_ago).await? == IdempotencyClaim::Claimed,
        "keys are per account"
    );
    // A released claim frees the key; a completed one is not released.
    ensure!(s.claim_idempotency(&acme.id, "order-2", "fp", day_ago).await? == IdempotencyClaim::Claimed);
    s.release_idempotency(&acme.id, "order-2").await?;
    ensure!(s.claim_idempotency(&acme.id, "order-2", "fp", day_ago).await? == IdempotencyClaim::Claimed);
    s.release_idempotency(&acme.id, "order-1").await?;
    ensure!(matches!(
        s.claim_idempotency(&acme.id, "order-1", "fp-a", day_ago).await?,
        IdempotencyClaim::Done { .. }
    ));
    // Keys older than the window are forgotten, by claim or by purge.
    let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    ensure!(s.claim_idempotency(&acme.id, "order-1", "fp-c", future).await? == IdempotencyClaim::Claimed);
    ensure!(s.purge_idempotency(future).await? == 3, "order-1, order-2 and globex's");
    ensure!(s.claim_idempotency(&acme.id, "order-2", "fp", day_ago).await? == IdempotencyClaim::Claimed);
    Ok(())
}

/// Runs every case on fresh stores from `fresh`, and fails naming each case
/// that failed.
pub async fn run<F, Fut>(backend: &str, mut fresh: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<(crate::TempStore, Arc<dyn Store>)>>,
{
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let (_guard, store) = fresh().await?;
        ensure!(store.backend() == backend, "expected the {backend} backend");
        if let Err(e) = case(store).await {
            failed.push(format!("{name}: {e:#}"));
        }
    }
    ensure!(
        failed.is_empty(),
        "{} of {} cases failed on {backend}:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n")
    );
    Ok(())
}

async fn webhooks_are_owed_what_is_stored_after_them(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let other = s.create_account(master("other")).await?;
    let message = MessageId::generate();
    // Stored before the webhook: not owed.
    s.insert_events(&[event(EventKind::Accepted, &acme.id, &message, "a@x.test")])
        .await?;
    let hook = s
        .create_webhook(&NewWebhook {
            account: acme.id.clone(),
            url: "https://hooks.acme.test/h".to_owned(),
            kinds: vec![EventKind::Delivered, EventKind::Bounced],
            batch_size: 10,
            secret: "whsec_x".to_owned(),
        })
        .await?;
    ensure!(hook.status == WebhookStatus::Active && hook.kinds == [EventKind::Delivered, EventKind::Bounced]);
    ensure!(
        s.page_events(&hook.owed(), hook.cursor, 100).await?.is_empty(),
        "nothing owed yet"
    );
    let owed = [
        event(EventKind::Delivered, &acme.id, &message, "a@x.test"),
        event(EventKind::Opened, &acme.id, &message, "a@x.test"),
        event(EventKind::Delivered, &other.id, &message, "b@x.test"),
        event(EventKind::Bounced, &acme.id, &message, "c@x.test"),
    ];
    s.insert_events(&owed[..2]).await?;
    s.insert_events(&owed[2..]).await?;
    let got = s.page_events(&hook.owed(), hook.cursor, 100).await?;
    let ids: Vec<_> = got.iter().map(|(_, e)| e.id.clone()).collect();
    ensure!(ids == [owed[0].id.clone(), owed[3].id.clone()], "{got:#?}");
    ensure!(got[0].0 < got[1].0, "positions grow in storage order");
    // All kinds when none are named; one page at a time.
    let of_acme = EventFilter {
        account: Some(acme.id.clone()),
        ..EventFilter::default()
    };
    let page = s.page_events(&of_acme, hook.cursor, 2).await?;
    ensure!(page.len() == 2 && page[1].1.id == owed[1].id);

    ensure!(s.webhook_delivered(&hook.id, hook.cursor, got[0].0).await?);
    // A post that read an older cursor records nothing.
    ensure!(!s.webhook_delivered(&hook.id, hook.cursor, got[1].0).await?);
    let early = time::OffsetDateTime::from_unix_timestamp(1_700_000_000)?;
    s.webhook_failed(&hook.id, early, "HTTP 500").await?;
    s.webhook_failed(&hook.id, early + time::Duration::hours(1), "timed out")
        .await?;
    let h = s.webhook(&hook.id).await?.context("exists")?;
    ensure!(h.cursor == got[0].0 && h.failing_since == Some(early) && h.last_error.as_deref() == Some("timed out"));
    ensure!(s.page_events(&h.owed(), h.cursor, 100).await?.len() == 1);
    s.set_webhook_status(&hook.id, WebhookStatus::Disabled).await?;
    ensure!(s.list_webhooks(None).await?[0].status == WebhookStatus::Disabled);
    s.set_webhook_status(&hook.id, WebhookStatus::Active).await?;
    let h = s.webhook(&hook.id).await?.context("exists")?;
    ensure!(h.status == WebhookStatus::Active && h.failing_since.is_none() && h.last_error.is_none());
    ensure!(s.webhook_delivered(&hook.id, got[0].0, got[1].0).await?);
    // A re-send moves the cursor back, never forward.
    ensure!(s.rewind_webhook(&hook.id, got[0].0).await?);
    ensure!(!s.rewind_webhook(&hook.id, got[1].0).await?);
    ensure!(s.webhook(&hook.id).await?.is_some_and(|h| h.cursor == got[0].0));
    // The delivery log keeps the last posts, newest first.
    for i in 0..(herald_store::WEBHOOK_ATTEMPTS_KEPT + 5) {
        s.record_webhook_attempt(&herald_store::NewWebhookAttempt {
            webhook: hook.id.clone(),
            at: early + time::Duration::seconds(i),
            first: i,
            last: i + 1,
            events: 2,
            delivered: i % 2 == 0,
            error: (i % 2 == 1).then(|| "HTTP 5xx".to_owned()),
            millis: 12,
        })
        .await?;
    }
    let log = s.webhook_attempts(&hook.id, 1000).await?;
    ensure!(log.len() as i64 == herald_store::WEBHOOK_ATTEMPTS_KEPT, "{}", log.len());
    ensure!(log[0].attempt.first == herald_store::WEBHOOK_ATTEMPTS_KEPT + 4 && log[0].id > log[1].id);
    ensure!(log[1].attempt.error.as_deref() == Some("HTTP 5xx") && !log[1].attempt.delivered);
    let unknown = s
        .record_webhook_attempt(&herald_store::NewWebhookAttempt {
            webhook: herald_types::WebhookId::generate(),
            ..log[0].attempt.clone()
        })
        .await;
    ensure!(matches!(unknown, Err(StoreError::NotFound { .. })), "{unknown:?}");
    ensure!(s.list_webhooks(Some(&other.id)).await?.is_empty());
    ensure!(s.list_webhooks(Some(&acme.id)).await?.len() == 1);
    ensure!(s.delete_webhook(&hook.id).await?);
    ensure!(!s.delete_webhook(&hook.id).await?);
    ensure!(matches!(
        s.set_webhook_status(&hook.id, WebhookStatus::Active).await,
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

async fn stats_roll_up_each_stored_event_once(s: Arc<dyn Store>) -> anyhow::Result<()> {
    let acme = s.create_account(master("acme")).await?;
    let sub = s.create_account(sub("acme-news", &acme.id)).await?;
    let at = time::OffsetDateTime::from_unix_timestamp(1_763_884_800)?; // 2025-11-23 08:00 UTC
    let mk = |kind: EventKind, account: &AccountId, rcpt: &str, minutes: i64| {
        let mut e = event(kind, account, &MessageId::generate(), rcpt);
        e.at = at + time::Duration::minutes(minutes);
        e
    };
    let mut batch = vec![
        mk(EventKind::Accepted, &acme.id, "a@gmail.test", 0),
        mk(EventKind::Delivered, &acme.id, "a@gmail.test", 1),
        mk(EventKind::Accepted, &acme.id, "b@yahoo.test", 70),
        mk(EventKind::Accepted, &sub.id, "c@gmail.test", 5),
    ];
    let mut bounce = mk(EventKind::Bounced, &acme.id, "b@yahoo.test", 71);
    bounce.bounce = Some(BounceInfo {
        class: BounceClass::Hard,
        reason: "userunknown".to_owned(),
    });
    batch.push(bounce);
    // Two opens of one message by the same reader: one unique.
    let open = mk(EventKind::Opened, &acme.id, "a@gmail.test", 2);
    let mut again = open.clone();
    again.id = EventId::generate();
    batch.push(open);
    batch.push(again);
    s.insert_events(&batch).await?;
    // A batch stored again (a retry after an unclear failure) counts once.
    s.insert_events(&batch).await?;

    let query = |period, group| herald_store::StatsQuery {
        accounts: vec![acme.id.clone(), sub.id.clone()],
        since: at - time::Duration::days(1),
        until: at + time::Duration::days(1),
        period,
        group,
    };
    let hours = s.stats(&query(herald_store::StatsPeriod::Hour, None)).await?;
    ensure!(hours.len() == 2, "two hours: {hours:#?}");
    ensure!(hours[0].period == at && hours[1].period == at + time::Duration::hours(1));
    let first = &hours[0].counts;
    ensure!(
        (
            first.get("accepted"),
            first.get("delivered"),
            first.get("opened"),
            first.get("opened_unique")
        ) == (2, 1, 2, 1),
        "{first:?}"
    );
    ensure!(hours[1].counts.get("bounced_hard") == 1 && hours[1].counts.get("accepted") == 1);
    let days = s
        .stats(&query(
            herald_store::StatsPeriod::Day,
            Some(herald_store::StatsGroup::ReceivingDomain),
        ))
        .await?;
    let by: Vec<(&str, i64)> = days
        .iter()
        .map(|r| (r.group.as_str(), r.counts.get("accepted")))
        .collect();
    ensure!(by == [("gmail.test", 2), ("yahoo.test", 1)], "{by:?}");
    let accounts = s
        .stats(&query(
            herald_store::StatsPeriod::Day,
            Some(herald_store::StatsGroup::Account),
        ))
        .await?;
    ensure!(accounts.len() == 2, "{accounts:#?}");
    let only_sub = herald_store::StatsQuery {
        accounts: vec![sub.id.clone()],
        ..query(herald_store::StatsPeriod::Day, None)
    };
    ensure!(s.stats(&only_sub).await?[0].counts.get("accepted") == 1);
    // Later opens of the same reader are never unique again.
    let mut later = mk(EventKind::Opened, &acme.id, "a@gmail.test", 3);
    later.message_id = batch[5].message_id.clone();
    s.insert_events(std::slice::from_ref(&later)).await?;
    let hours = s.stats(&query(herald_store::StatsPeriod::Hour, None)).await?;
    ensure!(hours[0].counts.get("opened") == 3 && hours[0].counts.get("opened_unique") == 1);
    Ok(())
}

fn report(org: &str, id: &str, domain: &str, day: i64) -> herald_store::NewReport {
    let begin = time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + day * 86_400).expect("valid time");
    herald_store::NewReport {
        kind: herald_store::ReportKind::Aggregate,
        org_name: org.to_owned(),
        report_id: id.to_owned(),
        domain: domain.to_owned(),
        begin,
        end: begin + time::Duration::seconds(86_399),
        received_at: begin + time::Duration::days(1),
        origin: "import".to_owned(),
        source_name: Some(format!("{org}!{domain}!{id}.xml")),
        record_count: 2,
        message_count: 7,
        body: format!("{{\"report_id\":\"{id}\"}}").into_bytes(),
    }
}

async fn reports_are_stored_once_and_broken_ones_kept(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::{NewBrokenReport, ReportFilter, ReportKind, Stored};
    let first = s
        .insert_reports(&[
            report("google.com", "1", "example.com", 0),
            report("google.com", "2", "example.com", 1),
        ])
        .await?;
    ensure!(matches!(first[..], [Stored::New(_), Stored::New(_)]), "{first:?}");
    // The same report again (by org, id and domain), beside a new one,
    // another reporter's report with the same id and the same reporter's
    // id about another domain: only the repeat is a duplicate.
    let again = s
        .insert_reports(&[
            report("google.com", "1", "example.com", 0),
            report("Yahoo", "1", "example.com", 2),
            report("google.com", "3", "other.example", 2),
            report("google.com", "1", "other.example", 0),
        ])
        .await?;
    ensure!(again[0] == Stored::Duplicate(first[0].id()), "{again:?}");
    ensure!(
        matches!(again[1..], [Stored::New(_), Stored::New(_), Stored::New(_)]),
        "{again:?}"
    );

    // By domain and period, with or without bodies.
    let day = |d: i64| time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + d * 86_400).expect("valid time");
    let filter = ReportFilter {
        kind: Some(ReportKind::Aggregate),
        domain: Some("example.com".into()),
        since: Some(day(1)),
        until: Some(day(3)),
        with_body: true,
        ..ReportFilter::default()
    };
    let found = s.list_reports(&filter, 100).await?;
    let ids: Vec<(&str, &str)> = found
        .iter()
        .map(|r| (r.org_name.as_str(), r.report_id.as_str()))
        .collect();
    ensure!(ids == [("google.com", "2"), ("Yahoo", "1")], "{ids:?}");
    ensure!(found[0].body.as_deref() == Some(&br#"{"report_id":"2"}"#[..]));
    ensure!(found[0].record_count == 2 && found[0].message_count == 7);
    ensure!(found[0].source_name.as_deref() == Some("google.com!example.com!2.xml"));
    ensure!(found[0].end - found[0].begin == time::Duration::seconds(86_399));
    let all = s.list_reports(&ReportFilter::default(), 100).await?;
    ensure!(all.len() == 5 && all.iter().all(|r| r.body.is_none()));
    let page = s
        .list_reports(
            &ReportFilter {
                after: Some(all[1].id),
                ..ReportFilter::default()
            },
            1,
        )
        .await?;
    ensure!(page.len() == 1 && page[0].id == all[2].id, "cursor paging");

    // Broken reports keep their bytes and their reason, once per content.
    let broken = NewBrokenReport {
        digest: "ab".repeat(32),
        received_at: day(0),
        origin: "mx".into(),
        source_name: Some("dmarc@reporter.example".into()),
        error: "XML: unexpected end".into(),
        raw: b"<feedback><report_metadata>\xff".to_vec(),
    };
    let kept = s.insert_broken_report(&broken).await?;
    ensure!(matches!(kept, Stored::New(_)));
    ensure!(s.insert_broken_report(&broken).await? == Stored::Duplicate(kept.id()));
    let listed = s.list_broken_reports(0, 10).await?;
    ensure!(listed.len() == 1 && listed[0].error == "XML: unexpected end" && listed[0].size == broken.raw.len() as u64);
    ensure!(s.broken_report_bytes(kept.id()).await?.as_deref() == Some(&broken.raw[..]));
    ensure!(s.broken_report_bytes(kept.id() + 100).await?.is_none());
    Ok(())
}

async fn retention_prunes_old_history_only(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::{NewBrokenReport, Prunable, ReportFilter};
    let acme = s.create_account(master("acme")).await?;
    let now = time::OffsetDateTime::now_utc();
    // Events made 40 and 10 days ago (ids carry their time) and now.
    let at = |days_ago: i64, n: u8| {
        let when = now - time::Duration::days(days_ago);
        let ms = u64::try_from(when.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut e = event(EventKind::Delivered, &acme.id, &MessageId::generate(), "a@x.test");
        e.id = herald_types::EventId::parse(&format!("evt_{ms:012x}7{n:03x}8000000000000000")).expect("an event id");
        e.at -= time::Duration::days(days_ago);
        e
    };
    s.insert_events(&[at(40, 1), at(40, 2), at(10, 3), at(0, 4)]).await?;
    let mut accepted = event(EventKind::Accepted, &acme.id, &MessageId::generate(), "b@x.test");
    accepted.header_id = Some("kept@acme.test".to_owned());
    s.insert_events(&[accepted]).await?;
    let all = EventFilter {
        account: Some(acme.id.clone()),
        ..EventFilter::default()
    };
    ensure!(s.count_events(&all).await? == 5);
    ensure!(s.prune(Prunable::Events, now - time::Duration::days(30)).await? == 2);
    ensure!(s.count_events(&all).await? == 3, "newer events stay");
    ensure!(
        s.prune(Prunable::Events, now - time::Duration::days(30)).await? == 0,
        "once"
    );
    // The Message-ID index, by when each message was accepted.
    ensure!(s.prune(Prunable::MessageIndex, now - time::Duration::days(1)).await? == 0);
    ensure!(!s.messages_by_header_id("kept@acme.test").await?.is_empty());
    ensure!(
        s.prune(Prunable::MessageIndex, now + time::Duration::minutes(1))
            .await?
            == 1
    );
    ensure!(s.messages_by_header_id("kept@acme.test").await?.is_empty());
    // Reports by the end of the period they cover; broken ones by arrival.
    s.insert_reports(&[
        report("google.com", "1", "example.com", 0),
        report("google.com", "2", "example.com", 5),
    ])
    .await?;
    let day = |d: i64| time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + d * 86_400).expect("valid time");
    ensure!(s.prune(Prunable::Reports, day(3)).await? == 1);
    let left = s.list_reports(&ReportFilter::default(), 10).await?;
    ensure!(left.len() == 1 && left[0].report_id == "2", "{left:?}");
    s.insert_broken_report(&NewBrokenReport {
        digest: "cd".repeat(32),
        received_at: day(0),
        origin: "mx".into(),
        source_name: None,
        error: "not a report".into(),
        raw: b"junk".to_vec(),
    })
    .await?;
    ensure!(s.prune(Prunable::BrokenReports, day(1)).await? == 1);
    ensure!(s.list_broken_reports(0, 10).await?.is_empty());
    Ok(())
}

async fn listings_open_once_and_end(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::{ListingFilter, MonitorTarget, SeenListing};
    let acme = s.create_account(master("acme")).await?;
    let other = s.create_account(master("other")).await?;
    let t0 = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)?;
    let seen = |codes: &[&str]| SeenListing {
        target: "192.0.2.10".into(),
        kind: "ip".into(),
        list: "zen.spamhaus.org".into(),
        name: "Spamhaus ZEN".into(),
        codes: codes.iter().map(|c| (*c).to_owned()).collect(),
        reason: "SBL".into(),
        delist_url: Some("https://check.spamhaus.org/".into()),
        weight: 25,
    };
    ensure!(
        s.listing_seen(&seen(&["127.0.0.2"]), t0).await?,
        "a first sighting starts a listing"
    );
    let later = t0 + time::Duration::hours(1);
    ensure!(
        !s.listing_seen(&seen(&["127.0.0.2", "127.0.0.4"]), later).await?,
        "a second one updates it"
    );
    let open = s
        .listings(
            &ListingFilter {
                active_only: true,
                ..ListingFilter::default()
            },
            10,
        )
        .await?;
    ensure!(open.len() == 1, "{open:?}");
    ensure!(open[0].started_at == t0 && open[0].last_seen_at == later);
    ensure!(open[0].seen.codes == ["127.0.0.2", "127.0.0.4"] && open[0].seen.weight == 25);
    ensure!(
        s.listing_ended("192.0.2.10", "zen.spamhaus.org", later + time::Duration::hours(1))
            .await?
    );
    ensure!(
        !s.listing_ended("192.0.2.10", "zen.spamhaus.org", later).await?,
        "ends once"
    );
    // Listed again: a second listing, the first kept as history.
    ensure!(
        s.listing_seen(&seen(&["127.0.0.3"]), later + time::Duration::hours(2))
            .await?
    );
    let all = s
        .listings(
            &ListingFilter {
                targets: Some(vec!["192.0.2.10".into()]),
                ..ListingFilter::default()
            },
            10,
        )
        .await?;
    ensure!(
        all.len() == 2 && all[0].ended_at.is_none() && all[1].ended_at.is_some(),
        "{all:?}"
    );
    // A long list of targets is asked in parts, merged newest first.
    let mut many: Vec<String> = (0..1200).map(|i| format!("10.0.{}.{}", i / 250, i % 250)).collect();
    many.push("192.0.2.10".into());
    let found = s
        .listings(
            &ListingFilter {
                targets: Some(many),
                ..ListingFilter::default()
            },
            10,
        )
        .await?;
    ensure!(found.len() == 2 && found[0].ended_at.is_none(), "{found:?}");
    let none = s
        .listings(
            &ListingFilter {
                targets: Some(vec!["198.51.100.1".into()]),
                ..ListingFilter::default()
            },
            10,
        )
        .await?;
    ensure!(none.is_empty());
    // Targets: replaced whole, duplicates once, read per account.
    let t = |a: &AccountId, target: &str, origin: &str| MonitorTarget {
        account: a.clone(),
        target: target.into(),
        origin: origin.into(),
    };
    s.replace_monitor_targets(&[
        t(&acme.id, "192.0.2.10", "sending_ip"),
        t(&other.id, "other.test", "sending_domain"),
    ])
    .await?;
    s.replace_monitor_targets(&[
        t(&acme.id, "192.0.2.10", "sending_ip"),
        t(&acme.id, "192.0.2.10", "sending_ip"),
        t(&acme.id, "acme.test", "sending_domain"),
    ])
    .await?;
    let mine = s.monitor_targets(Some(std::slice::from_ref(&acme.id))).await?;
    ensure!(mine.len() == 2, "{mine:?}");
    ensure!(
        s.monitor_targets(Some(std::slice::from_ref(&other.id)))
            .await?
            .is_empty(),
        "replaced"
    );
    ensure!(s.monitor_targets(None).await?.len() == 2);
    Ok(())
}

async fn alerts_are_one_open_per_condition(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::{AlertFilter, AlertOpened, NewAlert};
    let acme = s.create_account(master("acme")).await?;
    let other = s.create_account(master("other")).await?;
    let t0 = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)?;
    let new = |account: &AccountId, key: &str| NewAlert {
        account: account.clone(),
        kind: "blocklist".into(),
        key: key.into(),
        message: format!("{key} listed"),
    };
    let AlertOpened::New(first) = s.open_alert(&new(&acme.id, "blocklist:a"), t0).await? else {
        anyhow::bail!("the first alert is new");
    };
    // Racing nodes: one opens, the others find it.
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            let n = new(&acme.id, "blocklist:a");
            tokio::spawn(async move { s.open_alert(&n, t0).await })
        })
        .collect();
    for r in racers {
        match r.await?? {
            AlertOpened::Existing(a) => ensure!(a.id == first.id),
            AlertOpened::New(a) => anyhow::bail!("a second open alert {a:?}"),
        }
    }
    ensure!(
        matches!(
            s.open_alert(&new(&other.id, "blocklist:a"), t0).await?,
            AlertOpened::New(_)
        ),
        "per account"
    );
    let next_day = t0 + time::Duration::days(1);
    ensure!(
        s.alert_notified(&first.id, "still listed", first.notified_at, next_day)
            .await?
    );
    ensure!(
        !s.alert_notified(&first.id, "again", first.notified_at, next_day)
            .await?,
        "another node notified it first"
    );
    // Acknowledged only by its own account.
    ensure!(
        s.acknowledge_alert(std::slice::from_ref(&other.id), &first.id, t0)
            .await?
            .is_none()
    );
    let acked = s
        .acknowledge_alert(std::slice::from_ref(&acme.id), &first.id, t0 + time::Duration::hours(1))
        .await?
        .context("acknowledged")?;
    ensure!(acked.acknowledged_at == Some(t0 + time::Duration::hours(1)) && acked.message == "still listed");
    let resolved = s
        .resolve_alert(&acme.id, "blocklist:a", t0 + time::Duration::days(2))
        .await?
        .context("resolved")?;
    ensure!(resolved.id == first.id && resolved.resolved_at.is_some());
    ensure!(
        s.resolve_alert(&acme.id, "blocklist:a", t0).await?.is_none(),
        "resolves once"
    );
    // The condition again: a new alert.
    let AlertOpened::New(second) = s
        .open_alert(&new(&acme.id, "blocklist:a"), t0 + time::Duration::days(3))
        .await?
    else {
        anyhow::bail!("a new alert after the old one resolved");
    };
    ensure!(second.id != first.id);
    let open = s
        .list_alerts(
            &AlertFilter {
                accounts: Some(vec![acme.id.clone()]),
                open: Some(true),
                ..AlertFilter::default()
            },
            10,
        )
        .await?;
    ensure!(open.len() == 1 && open[0].id == second.id, "{open:?}");
    let all = s.list_alerts(&AlertFilter::default(), 10).await?;
    ensure!(all.len() == 3);
    Ok(())
}

async fn users_lock_and_sessions_follow_their_user(s: Arc<dyn Store>) -> anyhow::Result<()> {
    use herald_store::{NewUser, Session};
    use herald_types::UserId;
    let acme = s.create_account(master("acme")).await?;
    let other = s.create_account(master("other")).await?;
    let new = |account: &AccountId, email: &str| NewUser {
        id: UserId::generate(),
        account: account.clone(),
        email: email.to_owned(),
        hash: "$argon2id$fake".to_owned(),
        operator: false,
    };
    let ann = s.insert_user(new(&acme.id, "ann@acme.test")).await?;
    ensure!(ann.failed_logins == 0 && ann.locked_until.is_none() && !ann.operator);
    // An address is one user's across the platform.
    let taken = s.insert_user(new(&other.id, "ann@acme.test")).await;
    ensure!(is_conflict(&taken), "{taken:?}");
    let missing = s.insert_user(new(&AccountId::generate(), "x@acme.test")).await;
    ensure!(is_not_found(&missing), "{missing:?}");
    let bob = s.insert_user(new(&other.id, "bob@other.test")).await?;
    ensure!(
        s.list_users(&acme.id)
            .await?
            .iter()
            .map(|u| &u.email)
            .collect::<Vec<_>>()
            == ["ann@acme.test"]
    );

    // Attempts are counted before the check, in one statement each: of
    // racing attempts, only the first five are let through; a failure then
    // locks; a lock refuses attempts and successes until it expires, and
    // an expired lock starts the count afresh.
    let t0 = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)?;
    let until = t0 + time::Duration::minutes(15);
    let mut racing = Vec::new();
    for _ in 0..12 {
        let s = s.clone();
        let id = ann.id.clone();
        racing.push(tokio::spawn(async move { s.login_attempt(&id, 5, t0).await }));
    }
    let mut through = 0;
    for r in racing {
        through += usize::from(r.await??);
    }
    ensure!(through == 5, "{through} racing attempts let through");
    ensure!(
        s.user_by_id(&ann.id)
            .await?
            .is_some_and(|u| u.failed_logins == 5 && u.locked_until.is_none())
    );
    ensure!(s.login_failed(&ann.id, 5, until).await?, "the fifth failure locks");
    let locked = s.user_by_email("ann@acme.test").await?.context("ann")?;
    ensure!(locked.locked_until == Some(until), "{locked:?}");
    ensure!(!s.login_attempt(&ann.id, 5, t0 + time::Duration::minutes(1)).await?);
    ensure!(
        !s.login_succeeded(&ann.id, t0 + time::Duration::minutes(1)).await?,
        "a lock holds against a right password"
    );
    let later = until + time::Duration::seconds(1);
    ensure!(
        s.login_attempt(&ann.id, 5, later).await?,
        "an expired lock lets an attempt through"
    );
    let fresh = s.user_by_id(&ann.id).await?.context("ann")?;
    ensure!(fresh.failed_logins == 1 && fresh.locked_until.is_none(), "{fresh:?}");
    ensure!(
        !s.login_failed(&ann.id, 5, later + time::Duration::minutes(15)).await?,
        "one failure does not lock"
    );
    let at = later;
    ensure!(s.login_succeeded(&ann.id, at).await?);
    let clear = s.user_by_id(&ann.id).await?.context("ann")?;
    ensure!(clear.failed_logins == 0 && clear.locked_until.is_none() && clear.last_login_at == Some(at));

    // Sessions: found by their key, switched, touched, pruned, and gone
    // with their user or a new password.
    let session = |key: &str, user: &UserId, acting: &AccountId| Session {
        token_hash: key.to_owned(),
        user: user.clone(),
        acting: acting.clone(),
        created_at: at,
        last_seen_at: at,
    };
    s.insert_session(&session("k1", &ann.id, &acme.id)).await?;
    s.insert_session(&session("k2", &ann.id, &acme.id)).await?;
    s.insert_session(&session("k3", &bob.id, &other.id)).await?;
    let gone = s.insert_session(&session("k4", &UserId::generate(), &acme.id)).await;
    ensure!(is_not_found(&gone), "a session of no user: {gone:?}");
    s.set_session_account("k1", &other.id).await?;
    ensure!(s.session("k1").await?.is_some_and(|x| x.acting == other.id));
    let later = at + time::Duration::hours(1);
    s.touch_session("k2", later).await?;
    ensure!(
        s.prune_sessions(at + time::Duration::minutes(1)).await? == 2,
        "k1 and k3 idle"
    );
    ensure!(s.session("k2").await?.is_some_and(|x| x.last_seen_at == later));
    s.insert_session(&session("k5", &ann.id, &acme.id)).await?;
    s.set_user_password(&ann.id, "$argon2id$new").await?;
    ensure!(
        s.session("k2").await?.is_none() && s.session("k5").await?.is_none(),
        "a new password ends sessions"
    );
    s.insert_session(&session("k6", &ann.id, &acme.id)).await?;
    let wrong_account = s.delete_user(&other.id, &ann.id).await;
    ensure!(is_not_found(&wrong_account), "{wrong_account:?}");
    s.delete_user(&acme.id, &ann.id).await?;
    ensure!(s.session("k6").await?.is_none() && s.user_by_id(&ann.id).await?.is_none());
    s.delete_session("nothing").await?;
    Ok(())
}
