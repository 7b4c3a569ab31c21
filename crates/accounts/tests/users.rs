//! Dashboard users and sessions, in process on a real SQLite store: the
//! lockout holds against a burst of parallel guesses, sessions end when
//! idle, when old, with a new password, and a session on a sub that is
//! no longer the user's falls back to the user's own account.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::Arc;

use herald_accounts::users::{LOCK_AFTER, SignInError, token_key};
use herald_accounts::{Accounts, Caller};
use herald_store::{Session, Store};
use herald_testkit::TempStore;

const PASSWORD: &str = "a long enough password";

async fn setup() -> (TempStore, Arc<dyn Store>, Accounts) {
    let t = TempStore::sqlite().expect("a temp dir");
    let store = t.open().await.expect("the store opens");
    (t, store.clone(), Accounts::new(store))
}

async fn user(accounts: &Accounts, account: &str, email: &str) {
    let owner = Caller::operator(accounts.find(account).await.unwrap());
    accounts
        .create_user(&owner, email, Some(PASSWORD.to_owned()), false)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_parallel_guesses_gets_no_more_than_the_limit() {
    let (_t, store, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    user(&accounts, "acme", "ann@acme.test").await;
    // 30 wrong guesses at once, and the right password among them.
    let mut tries = Vec::new();
    for i in 0..31 {
        let accounts = accounts.clone();
        let password = if i == 30 {
            PASSWORD.to_owned()
        } else {
            format!("guess number {i}")
        };
        tries.push(tokio::spawn(async move {
            accounts.sign_in("ann@acme.test", &password).await
        }));
    }
    let mut checked_wrong = 0;
    let mut signed_in = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => signed_in += 1,
            Err(SignInError::Wrong) => checked_wrong += 1,
            Err(SignInError::Locked(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    // At most LOCK_AFTER passwords were checked in all; whichever they
    // were, the user ends locked or signed in, never past the limit.
    assert!(
        checked_wrong + signed_in <= LOCK_AFTER as usize,
        "{checked_wrong} wrong, {signed_in} in"
    );
    let ann = store.user_by_email("ann@acme.test").await.unwrap().unwrap();
    if signed_in == 0 {
        assert!(ann.locked_until.is_some(), "{ann:?}");
        let refused = accounts.sign_in("ann@acme.test", PASSWORD).await;
        assert!(matches!(refused, Err(SignInError::Locked(_))), "{refused:?}");
    }
}

#[tokio::test]
async fn sessions_end_when_idle_old_or_the_password_changes() {
    let (_t, store, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    user(&accounts, "acme", "ann@acme.test").await;
    let signed = accounts.sign_in("ann@acme.test", PASSWORD).await.unwrap();
    let live = accounts.session(&signed.token).await.unwrap().unwrap();
    assert_eq!(live.caller.account.name.as_str(), "acme");
    assert!(!live.caller.admin);

    // Planted sessions: one idle for 13 hours, one signed in 8 days ago
    // and used a minute ago.
    let now = time::OffsetDateTime::now_utc();
    let plant = |token: &str, created: time::Duration, seen: time::Duration| Session {
        token_hash: token_key(token),
        user: signed.user.id.clone(),
        acting: signed.user.account.clone(),
        created_at: now - created,
        last_seen_at: now - seen,
    };
    store
        .insert_session(&plant("idle", time::Duration::hours(13), time::Duration::hours(13)))
        .await
        .unwrap();
    store
        .insert_session(&plant("old", time::Duration::days(8), time::Duration::minutes(1)))
        .await
        .unwrap();
    assert!(accounts.session("idle").await.unwrap().is_none());
    assert!(accounts.session("old").await.unwrap().is_none());
    assert!(
        store.session(&token_key("idle")).await.unwrap().is_none(),
        "deleted when found dead"
    );

    // A new password ends every session, this one too.
    accounts
        .change_password(&signed.user, PASSWORD, "another long password")
        .await
        .unwrap();
    assert!(accounts.session(&signed.token).await.unwrap().is_none());
    let wrong = accounts
        .change_password(&signed.user, "not it at all", "a third long password")
        .await;
    assert!(wrong.is_err());
}

#[tokio::test]
async fn a_session_falls_back_when_its_sub_is_no_longer_the_users() {
    let (_t, _store, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    accounts.create_as_operator("acme-eu", Some("acme")).await.unwrap();
    accounts.create_as_operator("other", None).await.unwrap();
    user(&accounts, "acme", "ann@acme.test").await;
    let signed = accounts.sign_in("ann@acme.test", PASSWORD).await.unwrap();
    let view = accounts.session(&signed.token).await.unwrap().unwrap();
    let names: Vec<String> = accounts
        .switchable(&view)
        .await
        .unwrap()
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    assert_eq!(names, ["acme", "acme-eu"]);
    // Another brand is not found, as through Herald-Account.
    assert!(accounts.switch_account(&view, "other").await.is_err());
    accounts.switch_account(&view, "acme-eu").await.unwrap();
    let on_sub = accounts.session(&signed.token).await.unwrap().unwrap();
    assert_eq!(on_sub.caller.account.name.as_str(), "acme-eu");
    // The sub becomes a master of its own: the session is back on acme.
    accounts
        .promote(&Caller::operator(accounts.find("acme").await.unwrap()), "acme-eu")
        .await
        .unwrap();
    let back = accounts.session(&signed.token).await.unwrap().unwrap();
    assert_eq!(back.caller.account.name.as_str(), "acme");
}
