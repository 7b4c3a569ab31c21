//! The conditions Herald watches besides blocklists and rates, each told
//! through the one alert path ([`Alerter`]): a condition opens an alert
//! when it starts, is told again daily while it lasts, and resolves when
//! it ends.
//!
//! - `deferral_storm`: a receiving domain deferring most of an account's
//!   mail over the last hour (at least `deferral_min` attempts, over
//!   `deferral_share` deferred).
//! - `dmarc_missing`: a domain an account registered has no DMARC record
//!   (at the domain or its organisational domain).
//! - `dmarc_unknown_source`: the last days' DMARC reports show mail in the
//!   domain's name failing DMARC from sources that are neither Herald's,
//!   nor in the domain's SPF, nor a known service or forwarder (a spoofer,
//!   or a service someone forgot to authorise).
//! - `warmup_cap`: a sending address (or domain) reached today's warm-up
//!   cap for a provider: its mail to that provider waits (or overflows).
//! - `certificate_expiry`: a TLS certificate Herald serves expires within
//!   `certificate_warning` (or has expired).
//!
//! DNS and report questions are asked at most every `slow_interval`; stats,
//! warm-up and certificates every `interval`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_api_types::dmarc::SourceLabel;
use herald_dns::Resolver;
use herald_events::alerts::Alerter;
use herald_store::{StatsGroup, StatsPeriod, StatsQuery, Store, StoreResult};
use herald_types::{AccountId, AccountName};
use tokio::sync::watch;

/// One source (address or domain) at its warm-up cap for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capped {
    /// `ip:192.0.2.10` or `domain:news.example.com`.
    pub key: String,
    pub provider: String,
    pub daily_cap: u32,
    /// The accounts the source's pool is for (empty: shared).
    pub accounts: Vec<String>,
}

/// Where the warm-up counts are (the MTA's pools).
pub trait WarmupView: Send + Sync {
    /// Sources with no headroom left today, per provider.
    fn capped(&self) -> Vec<Capped>;
}

/// What is watched and when.
#[derive(Debug, Clone)]
pub struct ConditionSettings {
    pub interval: Duration,
    /// DMARC records and reports are looked at this often.
    pub slow_interval: Duration,
    pub deferral_share: f64,
    pub deferral_min: i64,
    /// The days of DMARC reports looked at, and the failing messages from
    /// unknown sources that make an alert.
    pub dmarc_days: u32,
    pub dmarc_unknown_min: u64,
    pub certificates: Vec<PathBuf>,
    pub certificate_warning: Duration,
    pub operator: AccountName,
    /// This node's name: warm-up counts and certificates are a node's own,
    /// so their alerts' keys carry it and each node settles only its own.
    pub node: String,
}

impl ConditionSettings {
    pub fn defaults(operator: AccountName) -> Self {
        Self {
            interval: Duration::from_secs(300),
            slow_interval: Duration::from_secs(3600),
            deferral_share: 0.5,
            deferral_min: 20,
            dmarc_days: 7,
            dmarc_unknown_min: 10,
            certificates: Vec::new(),
            certificate_warning: Duration::from_secs(14 * 86_400),
            operator,
            node: String::new(),
        }
    }
}

pub struct Conditions {
    store: Arc<dyn Store>,
    resolver: Arc<dyn Resolver>,
    dmarc: Arc<herald_dmarc::Dmarc>,
    alerter: Alerter,
    warmup: Option<Arc<dyn WarmupView>>,
    settings: ConditionSettings,
    /// When DNS and reports were last looked at.
    slow_done: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Conditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conditions")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Conditions {
    pub fn new(
        store: Arc<dyn Store>,
        resolver: Arc<dyn Resolver>,
        dmarc: Arc<herald_dmarc::Dmarc>,
        alerter: Alerter,
        warmup: Option<Arc<dyn WarmupView>>,
        settings: ConditionSettings,
    ) -> Self {
        Self {
            store,
            resolver,
            dmarc,
            alerter,
            warmup,
            settings,
            slow_done: tokio::sync::Mutex::new(None),
        }
    }

    /// Checks every `interval` until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.settings.interval) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.check_once().await {
                tracing::warn!(error = %e, "cannot check alert conditions");
            }
        }
    }

    /// One look at every condition (DNS and reports only when due).
    pub async fn check_once(&self) -> StoreResult<()> {
        self.deferral_storms().await?;
        self.warmup_caps().await?;
        self.certificates().await?;
        let due = {
            let mut last = self.slow_done.lock().await;
            let due = last.is_none_or(|t| t.elapsed() >= self.settings.slow_interval);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.dmarc_conditions().await?;
        }
        Ok(())
    }

    async fn operator(&self) -> StoreResult<Option<AccountId>> {
        Ok(self.store.account_by_name(&self.settings.operator).await?.map(|a| a.id))
    }

    async fn deferral_storms(&self) -> StoreResult<()> {
        let now = time::OffsetDateTime::now_utc();
        // The last full hour and this one so far (rollups are hourly).
        let hour_start = now
            .replace_minute(0)
            .and_then(|t| t.replace_second(0))
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(now);
        let mut holding = HashSet::new();
        for account in self.store.list_accounts(herald_store::AccountFilter::All).await? {
            let rows = self
                .store
                .stats(&StatsQuery {
                    accounts: vec![account.id.clone()],
                    since: hour_start - time::Duration::hours(1),
                    until: now,
                    period: StatsPeriod::Hour,
                    group: Some(StatsGroup::ReceivingDomain),
                })
                .await?;
            let mut per_domain: std::collections::BTreeMap<String, herald_store::Counts> = Default::default();
            for r in rows {
                if !r.group.is_empty() {
                    per_domain.entry(r.group).or_default().add(&r.counts);
                }
            }
            for (domain, c) in per_domain {
                let deferred = c.get("deferred");
                let attempts = deferred + c.get("delivered") + c.get("bounced_hard") + c.get("bounced_soft");
                #[allow(clippy::cast_precision_loss)] // counts of an hour
                let share = if attempts > 0 {
                    deferred as f64 / attempts as f64
                } else {
                    0.0
                };
                if attempts >= self.settings.deferral_min && share > self.settings.deferral_share {
                    let key = format!("deferral_storm:{domain}");
                    let message = format!(
                        "{domain} deferred {deferred} of {attempts} delivery attempts ({:.0}%) in the last hour: \
                         look at the deferrals' answers (rate limits, reputation, content)",
                        share * 100.0
                    );
                    self.alerter
                        .raise(&account.id, "deferral_storm", &key, &message)
                        .await?;
                    holding.insert((account.id.clone(), key));
                }
            }
        }
        self.alerter.settle("deferral_storm", &holding).await?;
        Ok(())
    }

    async fn warmup_caps(&self) -> StoreResult<()> {
        let Some(view) = &self.warmup else {
            return Ok(());
        };
        let operator = self.operator().await?;
        let mut holding = HashSet::new();
        let scope = format!("warmup_cap:{}:", self.settings.node);
        for c in view.capped() {
            let key = format!("{scope}{}:{}", c.key, c.provider);
            let message = format!(
                "{} reached today's warm-up cap of {} messages for {}: its mail there waits until tomorrow \
                 (or goes through the pool's overflow)",
                c.key.trim_start_matches("ip:").trim_start_matches("domain:"),
                c.daily_cap,
                c.provider
            );
            let mut told: Vec<AccountId> = operator.iter().cloned().collect();
            for name in &c.accounts {
                if let Ok(n) = AccountName::parse(name)
                    && let Some(a) = self.store.account_by_name(&n).await?
                    && !told.contains(&a.id)
                {
                    told.push(a.id);
                }
            }
            for account in told {
                self.alerter.raise(&account, "warmup_cap", &key, &message).await?;
                holding.insert((account, key.clone()));
            }
        }
        self.alerter.settle_scope("warmup_cap", &scope, &holding).await?;
        Ok(())
    }

    async fn certificates(&self) -> StoreResult<()> {
        let Some(operator) = self.operator().await? else {
            return Ok(());
        };
        let now = time::OffsetDateTime::now_utc();
        let mut holding = HashSet::new();
        let scope = format!("certificate_expiry:{}:", self.settings.node);
        for path in &self.settings.certificates {
            let key = format!("{scope}{}", path.display());
            let Some((subject, not_after)) = read_certificate(path) else {
                // Unreadable now (being replaced?): an alert stands as it is.
                holding.insert((operator.clone(), key));
                continue;
            };
            let left = not_after - now;
            let warn = time::Duration::try_from(self.settings.certificate_warning).unwrap_or(time::Duration::ZERO);
            if left > warn {
                continue;
            }
            let when = not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let message = if left.is_negative() {
                format!(
                    "the certificate for {subject} ({}) expired at {when}: renew it",
                    path.display()
                )
            } else {
                format!(
                    "the certificate for {subject} ({}) expires at {when}, in {} days: renew it",
                    path.display(),
                    left.whole_days()
                )
            };
            self.alerter
                .raise(&operator, "certificate_expiry", &key, &message)
                .await?;
            holding.insert((operator.clone(), key));
        }
        self.alerter
            .settle_scope("certificate_expiry", &scope, &holding)
            .await?;
        Ok(())
    }

    async fn dmarc_conditions(&self) -> StoreResult<()> {
        let mut missing = HashSet::new();
        let mut unknown = HashSet::new();
        let now = time::OffsetDateTime::now_utc();
        for account in self.store.list_accounts(herald_store::AccountFilter::All).await? {
            for d in self.store.list_domains(&account.id).await? {
                let domain = d.name.to_string();
                // The DMARC record alone (the linter's tree walk), not the
                // whole linter: SPF, DKIM and MX are not this alert's.
                let (dmarc, findings) = herald_checks::check_dmarc(self.resolver.as_ref(), &domain).await;
                let dns_error = findings.iter().any(|f| f.code == "dmarc.dns_error");
                let key = format!("dmarc_missing:{domain}");
                if dmarc.record.is_none() && !dns_error {
                    let message = format!(
                        "{domain} publishes no DMARC record: receivers cannot tell its mail from forgeries and \
                         send no reports. Publish one at _dmarc.{domain} (start with v=DMARC1; p=none; rua=…)"
                    );
                    self.alerter.raise(&account.id, "dmarc_missing", &key, &message).await?;
                    missing.insert((account.id.clone(), key));
                } else if dns_error {
                    // Cannot tell: the alert stands as it is.
                    missing.insert((account.id.clone(), key));
                }
                // Report data is shown only for domains the account verified
                // (as the DMARC API does): a name merely registered tells
                // its registrant nothing about others' mail.
                if d.verified_at.is_none() {
                    continue;
                }
                let summary = self.dmarc.summary(&domain, self.settings.dmarc_days, now).await?;
                let mut failing: Vec<(String, u64)> = summary
                    .sources
                    .iter()
                    .filter(|s| s.label == SourceLabel::Unknown)
                    .map(|s| (s.ip.clone(), s.tally.messages.saturating_sub(s.tally.dmarc_pass)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                let total: u64 = failing.iter().map(|(_, n)| n).sum();
                if total >= self.settings.dmarc_unknown_min {
                    failing.sort_by_key(|f| std::cmp::Reverse(f.1));
                    let top: Vec<String> = failing.iter().take(5).map(|(ip, n)| format!("{ip} ({n})")).collect();
                    let key = format!("dmarc_unknown_source:{domain}");
                    let message = format!(
                        "{total} messages in {domain}'s name failed DMARC from {} unknown sources in the last {} \
                         days: {}. Authorise them if they are yours; otherwise they are forgeries",
                        failing.len(),
                        self.settings.dmarc_days,
                        top.join(", ")
                    );
                    self.alerter
                        .raise(&account.id, "dmarc_unknown_source", &key, &message)
                        .await?;
                    unknown.insert((account.id.clone(), key));
                }
            }
        }
        self.alerter.settle("dmarc_missing", &missing).await?;
        self.alerter.settle("dmarc_unknown_source", &unknown).await?;
        Ok(())
    }
}

/// The first certificate of a PEM file: its subject (or first name) and
/// when it expires.
fn read_certificate(path: &std::path::Path) -> Option<(String, time::OffsetDateTime)> {
    let bytes = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).ok()?;
    let cert = pem.parse_x509().ok()?;
    let not_after = time::OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp()).ok()?;
    let subject = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                _ => None,
            })
        })
        .unwrap_or_else(|| cert.subject().to_string());
    Some((subject, not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_read_for_their_expiry() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            rcgen::CertificateParams::new(vec!["mta.example.test".to_owned()]).unwrap_or_else(|e| panic!("{e}"));
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, cert.pem()).unwrap_or_else(|e| panic!("{e}"));
        let (subject, not_after) = read_certificate(&path).unwrap_or_else(|| panic!("read"));
        assert_eq!(subject, "mta.example.test");
        assert_eq!(
            (not_after.year(), u8::from(not_after.month()), not_after.day()),
            (2031, 5, 17)
        );
        std::fs::write(&path, b"not a certificate").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_certificate(&path).is_none());
    }
}
