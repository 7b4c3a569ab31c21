//! Sending domains: what an account registers so its mail is signed and
//! aligned — DKIM keys, the DNS records to publish, the check of those
//! records against live DNS, and key rotation.
//!
//! Main design decision: DNS decides. A new domain signs at once with its
//! first keys (a signature that does not verify yet is treated by receivers
//! like no signature, never worse); a rotation publishes new selectors
//! beside the old and switches signing to them only when verification
//! finds them in DNS; the old keys stay published (retiring) until retired.
//!
//! Errors are `AccountsError`s, so both faces answer them as they answer
//! every account operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_accounts::{AccountsError, AccountsResult};
use herald_auth::{
    Algorithm, Check, DnsRecord, DomainSigner, RecordKind, RecordPlan, Sealer, SigningKey, check_record,
};
use herald_dns::{DnsError, Resolver};
use herald_store::{Account, DkimAlgorithm, DkimKey, Domain, KeyState, NewDkimKey, Store};
use herald_types::DomainName;

/// How long a domain's signer is reused before its keys are read again (a
/// rotation reaches delivery within this time).
const SIGNER_TTL: Duration = Duration::from_secs(30);

/// A domain with the records it publishes.
#[derive(Debug, Clone)]
pub struct DomainReport {
    pub domain: Domain,
    pub records: Vec<DnsRecord>,
}

/// The outcome of checking a domain's records against DNS.
#[derive(Debug, Clone)]
pub struct Verification {
    pub report: DomainReport,
    pub checks: Vec<(DnsRecord, Check)>,
    /// Every record as expected.
    pub verified: bool,
    /// Pending keys were found in DNS and now sign.
    pub switched: bool,
}

/// What delivery needs to know about a sending domain.
#[derive(Debug, Clone)]
pub struct Sending {
    /// Signs with the domain's active keys (none: no active key).
    pub signer: Option<Arc<DomainSigner>>,
    /// Every record verified: its return-path CNAME reaches the bounce domain.
    pub verified: bool,
    /// The brand (master account) of the account that registered it: only
    /// that brand's mail is signed with its keys and gets its return path.
    pub brand: herald_types::AccountId,
}

type SignerCache = Mutex<HashMap<String, (Instant, Option<Sending>)>>;

pub struct Domains {
    store: Arc<dyn Store>,
    resolver: Arc<dyn Resolver>,
    sealer: Arc<Sealer>,
    plan: RecordPlan,
    signers: SignerCache,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domains")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

fn algorithm_of(a: DkimAlgorithm) -> Algorithm {
    match a {
        DkimAlgorithm::RsaSha256 => Algorithm::Rsa,
        DkimAlgorithm::Ed25519Sha256 => Algorithm::Ed25519,
    }
}

fn stored(a: Algorithm) -> DkimAlgorithm {
    match a {
        Algorithm::Rsa => DkimAlgorithm::RsaSha256,
        Algorithm::Ed25519 => DkimAlgorithm::Ed25519Sha256,
    }
}

fn internal(e: impl std::fmt::Display) -> AccountsError {
    AccountsError::Internal(e.to_string())
}

impl Domains {
    /// `resolver` should not cache: verification must see what is published now.
    pub fn new(store: Arc<dyn Store>, resolver: Arc<dyn Resolver>, sealer: Arc<Sealer>, plan: RecordPlan) -> Self {
        Self {
            store,
            resolver,
            sealer,
            plan,
            signers: Mutex::new(HashMap::new()),
        }
    }

    fn report(&self, domain: Domain) -> DomainReport {
        let keys: Vec<_> = domain
            .keys
            .iter()
            .filter(|k| k.state != KeyState::Retired)
            .map(|k| (k.selector.clone(), algorithm_of(k.algorithm), k.public_key.clone()))
            .collect();
        let records = self.plan.records(domain.name.as_str(), &keys);
        DomainReport { domain, records }
    }

    /// New keys, one per algorithm, in `state`, with selectors for today
    /// that no key of the domain uses yet.
    async fn new_keys(&self, existing: &[DkimKey], state: KeyState) -> AccountsResult<Vec<NewDkimKey>> {
        let today = time::OffsetDateTime::now_utc().date();
        let mut out = Vec::new();
        for algorithm in [Algorithm::Rsa, Algorithm::Ed25519] {
            let selector = (1..)
                .map(|n| herald_auth::selector_for(today, algorithm, n))
                .find(|s| !existing.iter().any(|k| &k.selector == s))
                .unwrap_or_default();
            // RSA generation takes a while: off the async workers.
            let key = tokio::task::spawn_blocking(move || herald_auth::generate(algorithm))
                .await
                .map_err(internal)?
                .map_err(internal)?;
            out.push(NewDkimKey {
                selector,
                algorithm: stored(algorithm),
                private_key: self.sealer.seal(&key.private_der).map_err(internal)?,
                public_key: key.public_b64,
                state,
            });
        }
        Ok(out)
    }

    /// The account's domain, or `NotFound` (also for another account's).
    async fn owned(&self, account: &Account, name: &str) -> AccountsResult<Domain> {
        let name = DomainName::parse(name).map_err(|_| AccountsError::NotFound("domain"))?;
        match self.store.domain(&name).await? {
            Some(d) if d.account == account.id => Ok(d),
            _ => Err(AccountsError::NotFound("domain")),
        }
    }

    /// Registers a domain with an RSA-2048 and an Ed25519 key, signing at once.
    pub async fn add(&self, account: &Account, name: &str) -> AccountsResult<DomainReport> {
        let name = DomainName::parse(name)?;
        // The platform's own domain (and what is under it) sends Herald's
        // own notices and receives every return path: no tenant's keys may
        // sign in its name.
        if let Ok(platform) = DomainName::parse(&self.plan.bounce_domain)
            && name.is_within(&platform)
        {
            return Err(AccountsError::Unprocessable(format!(
                "{name} is this platform's own domain and cannot be a tenant's sending domain"
            )));
        }
        let keys = self.new_keys(&[], KeyState::Active).await?;
        let domain = self.store.create_domain(&account.id, &name, keys).await?;
        self.forget(name.as_str());
        tracing::info!(account = %account.name, domain = %name, "domain added");
        Ok(self.report(domain))
    }

    pub async fn get(&self, account: &Account, name: &str) -> AccountsResult<DomainReport> {
        Ok(self.report(self.owned(account, name).await?))
    }

    pub async fn list(&self, account: &Account) -> AccountsResult<Vec<DomainReport>> {
        Ok(self
            .store
            .list_domains(&account.id)
            .await?
            .into_iter()
            .map(|d| self.report(d))
            .collect())
    }

    pub async fn delete(&self, account: &Account, name: &str) -> AccountsResult<()> {
        let domain = self.owned(account, name).await?;
        self.store.delete_domain(&account.id, &domain.name).await?;
        self.forget(domain.name.as_str());
        tracing::info!(account = %account.name, domain = %domain.name, "domain deleted");
        Ok(())
    }

    /// Publishes new selectors beside the current ones (pending until
    /// verification finds them).
    pub async fn rotate(&self, account: &Account, name: &str) -> AccountsResult<DomainReport> {
        let domain = self.owned(account, name).await?;
        if domain.keys.iter().any(|k| k.state == KeyState::Pending) {
            return Err(AccountsError::Conflict(format!(
                "{} has a rotation waiting for verification; publish its records and verify first",
                domain.name
            )));
        }
        let keys = self.new_keys(&domain.keys, KeyState::Pending).await?;
        self.store.add_dkim_keys(&domain.id, keys).await?;
        tracing::info!(account = %account.name, domain = %domain.name, "DKIM rotation started");
        self.get(account, name).await
    }

    /// Retires the keys a rotation replaced: their records may go.
    pub async fn retire(&self, account: &Account, name: &str) -> AccountsResult<DomainReport> {
        let domain = self.owned(account, name).await?;
        let retiring: Vec<_> = domain
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Retiring)
            .map(|k| (k.id.clone(), KeyState::Retired))
            .collect();
        if retiring.is_empty() {
            return Err(AccountsError::Conflict(format!(
                "{} has no keys waiting to be retired",
                domain.name
            )));
        }
        self.store.set_key_states(&domain.id, &retiring).await?;
        self.get(account, name).await
    }

    async fn lookup(&self, record: &DnsRecord) -> Result<Vec<String>, String> {
        let found = if record.rtype == "CNAME" {
            self.resolver.cname(&record.name).await.map(|t| vec![t])
        } else {
            self.resolver.txt(&record.name).await
        };
        match found {
            Ok(v) => Ok(v),
            Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Each record of a domain against DNS, changing nothing (what a page
    /// shows; [`Domains::verify`] acts on the same checks).
    pub async fn check(&self, account: &Account, name: &str) -> AccountsResult<Verification> {
        let domain = self.owned(account, name).await?;
        let report = self.report(domain);
        let checks = self.check_records(&report.records).await;
        let verified = checks.iter().all(|(_, c)| *c == Check::Ok);
        Ok(Verification {
            report,
            checks,
            verified,
            switched: false,
        })
    }

    async fn check_records(&self, records: &[DnsRecord]) -> Vec<(DnsRecord, Check)> {
        let mut checks = Vec::with_capacity(records.len());
        for record in records {
            let check = match self.lookup(record).await {
                Ok(found) => check_record(record, &found),
                Err(e) => Check::Wrong(format!("DNS lookup failed: {e}")),
            };
            checks.push((record.clone(), check));
        }
        checks
    }

    /// Checks every record against DNS; switches signing to pending keys
    /// found there; records whether the domain verified.
    pub async fn verify(&self, account: &Account, name: &str) -> AccountsResult<Verification> {
        let domain = self.owned(account, name).await?;
        let report = self.report(domain.clone());
        let checks = self.check_records(&report.records).await;
        let dkim_ok = |selector: &str| {
            checks.iter().any(|(r, c)| {
                r.kind == RecordKind::Dkim && r.name.starts_with(&format!("{selector}._domainkey.")) && *c == Check::Ok
            })
        };
        let pending: Vec<&DkimKey> = domain.keys.iter().filter(|k| k.state == KeyState::Pending).collect();
        let switched = !pending.is_empty() && pending.iter().all(|k| dkim_ok(&k.selector));
        if switched {
            let mut states: Vec<_> = pending.iter().map(|k| (k.id.clone(), KeyState::Active)).collect();
            states.extend(
                domain
                    .keys
                    .iter()
                    .filter(|k| k.state == KeyState::Active)
                    .map(|k| (k.id.clone(), KeyState::Retiring)),
            );
            self.store.set_key_states(&domain.id, &states).await?;
            tracing::info!(domain = %domain.name, "DKIM rotation: the new keys sign now");
        }
        let verified = checks.iter().all(|(_, c)| *c == Check::Ok);
        let now = time::OffsetDateTime::now_utc();
        self.store
            .set_domain_verified(&domain.id, verified.then_some(now))
            .await?;
        self.forget(domain.name.as_str());
        let report = self.get(account, name).await?;
        Ok(Verification {
            report,
            checks,
            verified,
            switched,
        })
    }

    fn forget(&self, domain: &str) {
        if let Ok(mut s) = self.signers.lock() {
            s.remove(domain);
        }
    }

    /// The signer for mail from `domain` (its active keys), if it has any.
    pub async fn signer(&self, domain: &str) -> Option<Arc<DomainSigner>> {
        self.sending(domain).await.and_then(|s| s.signer)
    }

    /// What delivery needs for mail from `domain`, if it is registered.
    /// Cached for a short while: this is on the delivery path.
    pub async fn sending(&self, domain: &str) -> Option<Sending> {
        let key = domain.to_ascii_lowercase();
        if let Ok(cache) = self.signers.lock()
            && let Some((at, sending)) = cache.get(&key)
            && at.elapsed() < SIGNER_TTL
        {
            return sending.clone();
        }
        let sending = self.load_sending(&key).await;
        if let Ok(mut cache) = self.signers.lock() {
            cache.insert(key, (Instant::now(), sending.clone()));
        }
        sending
    }

    /// What delivery may use for mail of `brand` from `domain`: the
    /// domain's signer and return path only when that brand registered it.
    /// Another brand's mail in this domain gets nothing of it — no
    /// signature, no aligned return path — whatever its headers say.
    pub async fn sending_for(&self, brand: &herald_types::AccountId, domain: &str) -> Option<Sending> {
        self.sending(domain).await.filter(|s| &s.brand == brand)
    }

    /// The return-path domain for mail of `brand` from `domain`: the
    /// domain's own `<label>.<domain>` once verified by that brand (aligned
    /// with From for DMARC), else the platform's bounce domain.
    pub async fn return_path_domain(&self, brand: &herald_types::AccountId, domain: Option<&str>) -> String {
        match domain {
            Some(d) if self.sending_for(brand, d).await.is_some_and(|s| s.verified) => {
                format!("{}.{}", self.plan.return_path_label, d.to_ascii_lowercase())
            }
            _ => self.plan.bounce_domain.clone(),
        }
    }

    /// The platform's own bounce domain: the return path and the author
    /// domain of mail Herald sends in its own name.
    pub fn bounce_domain(&self) -> &str {
        &self.plan.bounce_domain
    }

    async fn load_sending(&self, domain: &str) -> Option<Sending> {
        let name = DomainName::parse(domain).ok()?;
        let d = self.store.domain(&name).await.ok()??;
        let owner = self.store.account_by_id(&d.account).await.ok()??;
        Some(Sending {
            verified: d.verified_at.is_some(),
            signer: self.load_signer(&d),
            brand: owner.brand().clone(),
        })
    }

    fn load_signer(&self, d: &Domain) -> Option<Arc<DomainSigner>> {
        let domain = d.name.as_str();
        let keys: Vec<SigningKey> = d
            .keys
            .iter()
            .filter(|k| k.state == KeyState::Active)
            .filter_map(|k| match self.sealer.open(&k.private_key) {
                Ok(der) => Some(SigningKey {
                    selector: k.selector.clone(),
                    algorithm: algorithm_of(k.algorithm),
                    private_der: der,
                }),
                Err(e) => {
                    tracing::error!(domain, selector = %k.selector, error = %e, "cannot open a DKIM key; is this the platform secret it was sealed with?");
                    None
                }
            })
            .collect();
        if keys.is_empty() {
            return None;
        }
        match DomainSigner::new(d.name.as_str(), &keys) {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                tracing::error!(domain, error = %e, "cannot load the domain's DKIM keys");
                None
            }
        }
    }
}
