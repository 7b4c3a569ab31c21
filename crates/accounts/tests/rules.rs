//! The account rules, in process on a real SQLite store.

use herald_accounts::{Accounts, AccountsError, Caller};
use herald_testkit::TempStore;
use herald_types::{AccountStatus, KeyScope};

async fn setup() -> (TempStore, Accounts) {
    let t = TempStore::sqlite().expect("a temp dir");
    let store = t.open().await.expect("the store opens");
    (t, Accounts::new(store))
}

/// A caller as the HTTP layer makes one: from a fresh key of `account`.
async fn caller_for(accounts: &Accounts, account: &str, scope: KeyScope) -> (Caller, String) {
    let operator = Caller::operator(accounts.find(account).await.expect("the account exists"));
    let issued = accounts
        .issue_api_key(&operator, scope, None)
        .await
        .expect("a key is issued");
    let principal = accounts
        .authenticate_key(&issued.secret)
        .await
        .expect("the new key works");
    let caller = accounts
        .caller(principal, None)
        .await
        .expect("a caller for its own account");
    (caller, issued.secret)
}

#[tokio::test]
async fn only_admin_keys_issue_admin_keys() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    let (master, _) = caller_for(&accounts, "acme", KeyScope::Account).await;
    let refused = accounts.issue_api_key(&master, KeyScope::Admin, None).await;
    assert!(matches!(refused, Err(AccountsError::Forbidden(_))), "{refused:?}");
    let (admin, _) = caller_for(&accounts, "acme", KeyScope::Admin).await;
    let issued = accounts.issue_api_key(&admin, KeyScope::Admin, None).await.unwrap();
    assert_eq!(issued.record.scope, KeyScope::Admin);
}

#[tokio::test]
async fn only_masters_have_subs() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    accounts.create_as_operator("acme-eu", Some("acme")).await.unwrap();
    let nested = accounts.create_as_operator("acme-eu-x", Some("acme-eu")).await;
    assert!(matches!(nested, Err(AccountsError::Forbidden(_))), "{nested:?}");

    // A master's key always creates under itself; naming another parent is
    // answered as if that parent did not exist.
    accounts.create_as_operator("globex", None).await.unwrap();
    let (master, _) = caller_for(&accounts, "acme", KeyScope::Account).await;
    let elsewhere = accounts.create_account(&master, "sneaky", Some("globex")).await;
    assert_eq!(elsewhere.unwrap_err(), AccountsError::NotFound("parent account"));
    let own = accounts.create_account(&master, "acme-us", Some("ACME")).await.unwrap();
    assert_eq!(own.parent.unwrap().name.as_str(), "acme");
}

#[tokio::test]
async fn a_key_cannot_suspend_or_delete_its_own_account() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    let (admin, _) = caller_for(&accounts, "acme", KeyScope::Admin).await;
    for result in [
        accounts
            .set_status(&admin, "acme", AccountStatus::Suspended)
            .await
            .map(|_| ()),
        accounts.delete(&admin, "acme").await,
    ] {
        assert!(matches!(result, Err(AccountsError::Forbidden(_))), "{result:?}");
    }
}

#[tokio::test]
async fn revocation_beats_the_verification_cache() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    let (caller, key) = caller_for(&accounts, "acme", KeyScope::Account).await;
    // Verified once already (by caller_for), so the next check is cached.
    accounts.authenticate_key(&key).await.unwrap();
    accounts.revoke_api_key(&caller, &key[..15]).await.unwrap();
    assert_eq!(
        accounts.authenticate_key(&key).await.unwrap_err(),
        AccountsError::Unauthenticated
    );
}

#[tokio::test]
async fn smtp_credentials_authenticate_until_revoked_or_suspended() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    accounts.create_as_operator("acme-eu", Some("acme")).await.unwrap();
    let eu = Caller::operator(accounts.find("acme-eu").await.unwrap());
    let cred = accounts.issue_smtp_credential(&eu, Some("app".into())).await.unwrap();
    let user = cred.record.username.as_str();

    let who = accounts.authenticate_smtp(user, &cred.password).await.unwrap();
    assert_eq!(who.name.as_str(), "acme-eu");
    let wrong = accounts.authenticate_smtp(user, "not-the-password").await;
    assert_eq!(wrong.unwrap_err(), AccountsError::Unauthenticated);
    let nobody = accounts.authenticate_smtp("nobody", &cred.password).await;
    assert_eq!(nobody.unwrap_err(), AccountsError::Unauthenticated);

    let master = Caller::operator(accounts.find("acme").await.unwrap());
    accounts
        .set_status(&master, "acme", AccountStatus::Suspended)
        .await
        .unwrap();
    let suspended = accounts.authenticate_smtp(user, &cred.password).await;
    assert_eq!(
        suspended.unwrap_err(),
        AccountsError::Suspended("acme".into()),
        "the master's suspension covers its subs"
    );
    accounts
        .set_status(&master, "acme", AccountStatus::Active)
        .await
        .unwrap();

    accounts.revoke_smtp_credential(&eu, user).await.unwrap();
    let revoked = accounts.authenticate_smtp(user, &cred.password).await;
    assert_eq!(revoked.unwrap_err(), AccountsError::Unauthenticated);
}

#[tokio::test]
async fn bootstrap_gives_a_working_admin_key_once() {
    let (_t, accounts) = setup().await;
    let (account, key) = accounts.bootstrap("main").await.unwrap().expect("first time");
    assert_eq!(account.name.as_str(), "main");
    let principal = accounts.authenticate_key(&key.secret).await.unwrap();
    assert!(principal.admin);
    assert!(accounts.bootstrap("main").await.unwrap().is_none());
}
