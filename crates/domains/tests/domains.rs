//! Domains against a real DNS server on loopback: register, publish what
//! Herald says to publish, verify, sign, rotate, retire.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::sync::Arc;

use herald_accounts::AccountsError;
use herald_auth::{Check, DkimVerifier, DnsRecord, RecordPlan, Sealer};
use herald_dns::{HickoryResolver, Settings};
use herald_domains::Domains;
use herald_store::{KeyState, NewAccount, Store};
use herald_testkit::{DnsServer, TempStore, Zones};
use herald_types::AccountName;

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

fn publish(records: &[DnsRecord]) -> Zones {
    records.iter().fold(Zones::new(), |z, r| {
        if r.rtype == "CNAME" {
            z.cname(&r.name, &r.value)
        } else {
            z.txt(&r.name, &r.value)
        }
    })
}

fn selectors_in(signed: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(signed)
        .split("DKIM-Signature:")
        .skip(1)
        .filter_map(|sig| {
            sig.split(';')
                .find_map(|t| t.trim().strip_prefix("s=").map(str::to_owned))
        })
        .collect()
}

const MESSAGE: &[u8] = b"From: news@acme.test\r\nTo: a@example.net\r\nSubject: hi\r\nDate: Mon, 23 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@acme.test>\r\n\r\nHello\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_publish_verify_sign_rotate_retire() {
    let t = TempStore::sqlite().unwrap();
    let store: Arc<dyn Store> = t.open().await.unwrap();
    let acme = store
        .create_account(NewAccount {
            name: AccountName::parse("acme").unwrap(),
            parent: None,
        })
        .await
        .unwrap();
    let globex = store
        .create_account(NewAccount {
            name: AccountName::parse("globex").unwrap(),
            parent: None,
        })
        .await
        .unwrap();
    let mut dns = DnsServer::start(&Zones::new()).await.unwrap();
    let resolver = Arc::new(
        HickoryResolver::with_servers(
            &[dns.addr()],
            Settings {
                cache: false,
                ..Settings::default()
            },
        )
        .unwrap(),
    );
    let domains = Domains::new(
        store.clone(),
        resolver,
        Arc::new(Sealer::new(b"platform secret for the test.....")),
        plan(),
    );

    for platform in ["mta.test", "bounces.mta.test"] {
        assert!(
            matches!(domains.add(&acme, platform).await, Err(AccountsError::Unprocessable(_))),
            "{platform} is the platform's"
        );
    }
    let added = domains.add(&acme, "acme.test").await.unwrap();
    assert_eq!(added.domain.keys.len(), 2);
    assert!(added.domain.keys.iter().all(|k| k.state == KeyState::Active));
    assert!(
        added.domain.keys.iter().all(|k| k.private_key.starts_with("v1:")),
        "private keys are sealed"
    );
    assert_eq!(added.records.len(), 6, "SPF, two DKIM, DMARC, return path, tracking");
    assert!(matches!(
        domains.add(&globex, "acme.test").await,
        Err(AccountsError::Conflict(_))
    ));

    // Nothing published yet.
    let v = domains.verify(&acme, "acme.test").await.unwrap();
    assert!(
        !v.verified && v.checks.iter().all(|(_, c)| *c == Check::Missing),
        "{:?}",
        v.checks
    );

    // Publish exactly what Herald said, with a wrong DMARC first.
    let mut records = added.records.clone();
    let dmarc = records.iter_mut().find(|r| r.name.starts_with("_dmarc.")).unwrap();
    let right = dmarc.value.clone();
    dmarc.value = "v=DMARC1; rua=mailto:x@y.test".into();
    dns.replace(&publish(&records)).await.unwrap();
    let v = domains.verify(&acme, "acme.test").await.unwrap();
    let wrong: Vec<_> = v.checks.iter().filter(|(_, c)| *c != Check::Ok).collect();
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(matches!(&wrong[0].1, Check::Wrong(found) if found.contains("rua=mailto:x@y.test")));
    records
        .iter_mut()
        .find(|r| r.name.starts_with("_dmarc."))
        .unwrap()
        .value = right;
    dns.replace(&publish(&records)).await.unwrap();
    let v = domains.verify(&acme, "acme.test").await.unwrap();
    assert!(v.verified && v.report.domain.verified_at.is_some(), "{:?}", v.checks);

    // Signing with both keys, verifiable against the published records.
    let signer = domains.signer("ACME.test").await.unwrap();
    let signed = signer.sign(MESSAGE).unwrap();
    let first = selectors_in(&signed);
    assert_eq!(first.len(), 2);
    let verifier = DkimVerifier::with_servers(&[dns.addr()]).unwrap();
    assert!(verifier.verify(&signed).await.iter().all(|v| v.pass));

    // Rotation: new selectors beside the old; signing stays until they verify.
    let rotated = domains.rotate(&acme, "acme.test").await.unwrap();
    assert_eq!(
        rotated
            .domain
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Pending)
            .count(),
        2
    );
    assert_eq!(rotated.records.len(), 8, "old and new DKIM records published together");
    assert!(
        matches!(
            domains.rotate(&acme, "acme.test").await,
            Err(AccountsError::Conflict(_))
        ),
        "one rotation at a time"
    );
    let v = domains.verify(&acme, "acme.test").await.unwrap();
    assert!(!v.switched && !v.verified);
    assert_eq!(
        selectors_in(&domains.signer("acme.test").await.unwrap().sign(MESSAGE).unwrap()),
        first
    );
    dns.replace(&publish(&rotated.records)).await.unwrap();
    let v = domains.verify(&acme, "acme.test").await.unwrap();
    assert!(v.switched && v.verified, "{:?}", v.checks);
    let now_signing = selectors_in(&domains.signer("acme.test").await.unwrap().sign(MESSAGE).unwrap());
    assert_eq!(now_signing.len(), 2);
    assert!(
        now_signing.iter().all(|s| !first.contains(s)),
        "signing switched to the new keys"
    );
    assert!(
        verifier
            .verify(&domains.signer("acme.test").await.unwrap().sign(MESSAGE).unwrap())
            .await
            .iter()
            .all(|v| v.pass)
    );

    // Retire the old keys: their records are no longer asked for.
    let retired = domains.retire(&acme, "acme.test").await.unwrap();
    assert_eq!(retired.records.len(), 6);
    assert!(
        retired
            .domain
            .keys
            .iter()
            .filter(|k| first.contains(&k.selector))
            .all(|k| k.state == KeyState::Retired)
    );

    // Another account sees none of it.
    for result in [
        domains.get(&globex, "acme.test").await.map(|_| ()),
        domains.delete(&globex, "acme.test").await,
    ] {
        assert_eq!(result.unwrap_err(), AccountsError::NotFound("domain"));
    }
    assert!(domains.signer("unknown.test").await.is_none());
    domains.delete(&acme, "acme.test").await.unwrap();
    assert!(
        domains.signer("acme.test").await.is_none(),
        "a deleted domain signs nothing"
    );
}
