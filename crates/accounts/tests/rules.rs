//! The account rules, in process on a real SQLite store.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

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

/// Registers `domain` for `account` (no keys needed for ownership) and,
/// when `verified`, marks it verified as DNS verification would.
async fn register(accounts: &Accounts, account: &str, domain: &str, verified: bool) {
    let store = accounts.store();
    let owner = accounts.find(account).await.unwrap();
    let d = store
        .create_domain(&owner.id, &herald_types::DomainName::parse(domain).unwrap(), Vec::new())
        .await
        .unwrap();
    if verified {
        store
            .set_domain_verified(&d.id, Some(time::OffsetDateTime::now_utc()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn senders_are_approved_only_in_domains_the_brand_verified() {
    let (_t, accounts) = setup().await;
    for (name, parent) in [("acme", None), ("acme-eu", Some("acme")), ("globex", None)] {
        accounts.create_as_operator(name, parent).await.unwrap();
    }
    register(&accounts, "acme", "acme.test", true).await;
    register(&accounts, "globex", "globex.test", false).await;
    let (acme, _) = caller_for(&accounts, "acme", KeyScope::Account).await;
    let (globex, _) = caller_for(&accounts, "globex", KeyScope::Account).await;
    let (admin, _) = caller_for(&accounts, "globex", KeyScope::Admin).await;

    // The brand verified acme.test: its master and its subs may approve in
    // it, subdomains included (control of the parent's DNS is control of
    // the child's).
    accounts.add_sender(&acme, "@acme.test", false).await.unwrap();
    accounts
        .add_sender(&acme, "billing@news.acme.test", false)
        .await
        .unwrap();
    let eu = Caller::operator(accounts.find("acme-eu").await.unwrap());
    accounts.add_sender(&eu, "@acme.test", false).await.unwrap();

    // Another brand may not, whatever it asks; nor may anyone approve a
    // domain that was registered but never verified, or never registered.
    for (caller, rule) in [
        (&globex, "@acme.test"),
        (&globex, "ceo@acme.test"),
        (&globex, "@globex.test"),
        (&acme, "@elsewhere.test"),
    ] {
        let refused = accounts.add_sender(caller, rule, false).await;
        assert!(
            matches!(refused, Err(AccountsError::Unprocessable(_))),
            "{rule}: {refused:?}"
        );
    }
    // A tenant cannot override; an operator can, and the approval is then
    // what `herald check senders` reports.
    let forced = accounts.add_sender(&globex, "@acme.test", true).await;
    assert!(matches!(forced, Err(AccountsError::Forbidden(_))), "{forced:?}");
    accounts.add_sender(&admin, "@acme.test", true).await.unwrap();
    accounts.add_sender(&admin, "@globex.test", true).await.unwrap();
    let found = accounts.questionable_senders().await.unwrap();
    let summary: Vec<(String, String, &str)> = found
        .iter()
        .map(|q| (q.account.name.to_string(), q.rule.to_string(), q.problem.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("globex".to_owned(), "@acme.test".to_owned(), "other_brand"),
            ("globex".to_owned(), "@globex.test".to_owned(), "unverified"),
        ]
    );
}

#[tokio::test]
async fn the_closest_verified_registration_owns_a_domain() {
    let (_t, accounts) = setup().await;
    for name in ["acme", "globex"] {
        accounts.create_as_operator(name, None).await.unwrap();
    }
    register(&accounts, "acme", "acme.test", true).await;
    // Registering a subdomain of another brand's domain claims nothing
    // until it is verified (which needs that DNS), and then only itself.
    register(&accounts, "globex", "shop.acme.test", false).await;
    let owner = |d: &str| {
        let accounts = accounts.clone();
        let d = herald_types::DomainName::parse(d).unwrap();
        async move {
            accounts
                .domain_owner(&d)
                .await
                .unwrap()
                .map(|o| o.registered.to_string())
        }
    };
    assert_eq!(owner("shop.acme.test").await.as_deref(), Some("acme.test"));
    assert_eq!(owner("a.b.acme.test").await.as_deref(), Some("acme.test"));
    assert_eq!(owner("acme.test.evil").await, None);
    assert_eq!(owner("notacme.test").await, None);
}

#[tokio::test]
async fn tenant_urls_must_reach_public_addresses() {
    let (_t, accounts) = setup().await;
    accounts.create_as_operator("acme", None).await.unwrap();
    let (acme, _) = caller_for(&accounts, "acme", KeyScope::Account).await;
    for url in [
        "http://192.168.1.10/replies",
        "http://[::1]/r",
        "http://localhost:8080/r",
        "http://169.254.169.254/",
    ] {
        let patch = herald_accounts::SettingsPatch {
            reply_url: Some(url.to_owned()),
            ..Default::default()
        };
        let refused = accounts.update_settings(&acme, "acme", &patch).await;
        assert!(
            matches!(refused, Err(AccountsError::Unprocessable(_))),
            "{url}: {refused:?}"
        );
        let hook = accounts.create_webhook(&acme, url, &[], None).await;
        assert!(matches!(hook, Err(AccountsError::Unprocessable(_))), "{url}: {hook:?}");
    }
    // The operator may allow networks besides public ones.
    let allowed = accounts
        .clone()
        .with_outbound(std::sync::Arc::new(herald_outbound::Policy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
        ])));
    allowed
        .create_webhook(&acme, "http://127.0.0.1:9/hook", &[], None)
        .await
        .unwrap();
}

#[tokio::test]
async fn api_keys_are_kept_as_keyed_hashes_and_old_argon2_keys_are_rehashed() {
    let (_t, accounts) = setup().await;
    let accounts = accounts.with_platform_secret(b"a platform secret of the test....");
    accounts.create_as_operator("acme", None).await.unwrap();
    let (_, key) = caller_for(&accounts, "acme", KeyScope::Account).await;
    let prefix = herald_accounts::secret::prefix_of(&key).unwrap();
    let row = accounts.store().api_key_by_prefix(prefix).await.unwrap().unwrap();
    assert!(row.hash.starts_with("hmac-sha256$"), "{}", row.hash);
    // Another platform secret: the same key does not verify.
    let other = herald_accounts::Accounts::new(accounts.store().clone()).with_platform_secret(b"another secret");
    assert_eq!(
        other.authenticate_key(&key).await.unwrap_err(),
        AccountsError::Unauthenticated
    );

    // A key an earlier version stored with argon2 still works, once
    // rehashed.
    let fresh = herald_accounts::secret::new_api_key();
    let acme = accounts.find("acme").await.unwrap();
    accounts
        .store()
        .insert_api_key(herald_store::NewApiKey {
            id: herald_types::ApiKeyId::generate(),
            account: acme.id.clone(),
            prefix: fresh.prefix.clone(),
            hash: herald_accounts::secret::hash(&fresh.key).unwrap(),
            scope: KeyScope::Account,
            label: None,
        })
        .await
        .unwrap();
    accounts.authenticate_key(&fresh.key).await.unwrap();
    let row = accounts
        .store()
        .api_key_by_prefix(&fresh.prefix)
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.hash.starts_with("hmac-sha256$"),
        "rehashed on first use: {}",
        row.hash
    );
    accounts.authenticate_key(&fresh.key).await.unwrap();
    let wrong = format!("{}x", &fresh.key[..fresh.key.len() - 1]);
    assert_eq!(
        accounts.authenticate_key(&wrong).await.unwrap_err(),
        AccountsError::Unauthenticated
    );
}

/// Standings are remembered between changes, and a change made by another
/// process (the CLI: another `Accounts` on the same store and signal file)
/// counts from the next look on; one the signal does not announce counts
/// within the time limit at most.
#[tokio::test]
async fn a_change_of_standing_counts_at_once_across_processes() {
    use herald_accounts::Standing;
    let t = TempStore::sqlite().expect("a temp dir");
    let signal = t.dir().expect("a SQLite store has a folder").join("account-changes");
    let server = Accounts::new(t.open().await.unwrap()).with_change_signal(signal.clone());
    let cli = Accounts::new(t.open().await.unwrap()).with_change_signal(signal.clone());
    let acme = cli.create_as_operator("acme", None).await.unwrap();
    let eu = cli.create_as_operator("acme-eu", Some("acme")).await.unwrap();
    let operator = Caller::operator(acme.clone());
    assert!(matches!(server.standing(&eu.id).await.unwrap(), Standing::Active(_)));

    // The master suspended by the other process: the sub stops at once.
    cli.set_status(&operator, "acme", AccountStatus::Suspended)
        .await
        .unwrap();
    assert!(signal.exists(), "the change is announced");
    assert_eq!(
        server.standing(&eu.id).await.unwrap(),
        Standing::Suspended("acme".to_owned())
    );
    assert_eq!(
        server.standing(&acme.id).await.unwrap(),
        Standing::Suspended("acme".to_owned())
    );
    cli.set_status(&operator, "acme", AccountStatus::Active).await.unwrap();
    assert!(matches!(server.standing(&eu.id).await.unwrap(), Standing::Active(_)));

    // Changed in the store without an announcement: the remembered
    // standing serves (no store read per message), within its limit.
    server
        .store()
        .set_account_status(&eu.id, AccountStatus::Suspended)
        .await
        .unwrap();
    assert!(matches!(server.standing(&eu.id).await.unwrap(), Standing::Active(_)));
    // Without a signal nothing is remembered.
    let plain = Accounts::new(t.open().await.unwrap());
    assert_eq!(
        plain.standing(&eu.id).await.unwrap(),
        Standing::Suspended("acme-eu".to_owned())
    );

    // Deleted by the other process: gone at once.
    cli.set_status(&operator, "acme-eu", AccountStatus::Active)
        .await
        .unwrap();
    assert!(matches!(server.standing(&eu.id).await.unwrap(), Standing::Active(_)));
    cli.delete(&operator, "acme-eu").await.unwrap();
    assert_eq!(server.standing(&eu.id).await.unwrap(), Standing::Missing);
}
