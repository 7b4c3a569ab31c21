//! The deliverability center's reports as a service: ingest and analytics
//! of DMARC aggregate reports (with the failure and TLS reports beside
//! them), shared by the inbound MX, the API and the CLI.
//!
//! - [`ingest`]: bytes of any report, in any wrapping, read into one row
//!   each; the same report twice is stored once; unreadable bytes are kept
//!   with their error (never dropped).
//! - [`Dmarc::summary_of`]: one domain's window (the last N days, or any
//!   [`window::Window`] of at most a year, last year's included) by day,
//!   reporter and source IP, each source labelled ([`sources`]: yours, a known service,
//!   a forwarder, unknown), what a stricter policy would block, and the
//!   next policy step ([`recommend`]).
//!
//! Main design decision: reports are stored whole, one row each, and
//! counted when asked ([`tally`]); the store never parses them. A domain's
//! month of reports is a few hundred rows, read and counted in
//! milliseconds, while an import stays one insert per report.

pub mod body;
pub mod ingest;
pub mod recommend;
pub mod services;
pub mod sources;
pub mod tally;
pub mod window;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use herald_api_types::dmarc::{DmarcSummary, Enforcement, ImportOutcome, SourceLabel};
use herald_dns::Resolver;
use herald_reports::{AggregateReport, Report};
use herald_store::{AccountFilter, ReportFilter, ReportKind, StatsGroup, StatsPeriod, StatsQuery, Store, StoreResult};
use ipnet::IpNet;
use time::OffsetDateTime;

pub use ingest::{Origin, Prepared, prepare, prepare_all};
pub use services::ServiceMap;
pub use sources::OwnIps;
pub use window::{Window, WindowError};

/// Reports read from the store a page at a time.
const PAGE: u32 = 200;
/// The longest summary window.
pub const MAX_DAYS: u32 = 366;
/// The window when none is given.
pub const DEFAULT_DAYS: u32 = 30;
/// Records a summary counts at most: a domain's month from the largest
/// reporters is a few hundred thousand; past this, reports are left out
/// (newest kept first is not needed: the answer says it is partial).
pub const MAX_SUMMARY_RECORDS: usize = 2_000_000;

/// The service: a store, a resolver for the labels, and Herald's own IPs.
#[derive(Clone)]
pub struct Dmarc {
    store: Arc<dyn Store>,
    resolver: Arc<dyn Resolver>,
    own_networks: Vec<IpNet>,
}

impl std::fmt::Debug for Dmarc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dmarc")
            .field("own_networks", &self.own_networks)
            .finish_non_exhaustive()
    }
}

impl Dmarc {
    /// `own_networks`: the networks Herald sends from beside those its
    /// delivery stats show (`[dmarc] sending_networks`).
    pub fn new(store: Arc<dyn Store>, resolver: Arc<dyn Resolver>, own_networks: Vec<IpNet>) -> Self {
        Self {
            store,
            resolver,
            own_networks,
        }
    }

    /// Reads and stores the reports of one input (any kind, any wrapping,
    /// several attached to one message); what cannot be read is kept as a
    /// broken report and answered `failed`. An outcome per report, at
    /// least one. An `Err` is the store's: nothing was kept, try again.
    pub async fn ingest(
        &self,
        bytes: &[u8],
        origin: Origin,
        source_name: Option<String>,
    ) -> StoreResult<Vec<ImportOutcome>> {
        let prepared = prepare(bytes, origin, source_name, OffsetDateTime::now_utc());
        self.store(prepared).await
    }

    /// Stores prepared reports: readable ones in one transaction, broken
    /// ones each on its own. Outcomes in the order given.
    pub async fn store(&self, prepared: Vec<Prepared>) -> StoreResult<Vec<ImportOutcome>> {
        let rows: Vec<herald_store::NewReport> = prepared
            .iter()
            .filter_map(|p| match p {
                Prepared::Report(r) => Some(r.clone()),
                Prepared::Broken(_) => None,
            })
            .collect();
        let mut stored = self.store.insert_reports(&rows).await?.into_iter();
        let mut outcomes = Vec::with_capacity(prepared.len());
        for p in &prepared {
            let s = match p {
                Prepared::Report(_) => stored
                    .next()
                    .ok_or_else(|| herald_store::StoreError::Backend("the store skipped a report".into()))?,
                Prepared::Broken(b) => self.store.insert_broken_report(b).await?,
            };
            let outcome = ingest::outcome(p, s);
            // `kind` is one of three words Herald wrote, never a report's.
            let kind = match p {
                Prepared::Report(r) => r.kind.as_str(),
                Prepared::Broken(_) => "unreadable",
            };
            let status = match outcome.status {
                herald_api_types::dmarc::ImportStatus::Imported => "imported",
                herald_api_types::dmarc::ImportStatus::Duplicate => "duplicate",
                herald_api_types::dmarc::ImportStatus::Failed => "failed",
            };
            metrics::counter!("herald_reports_processed_total", "kind" => kind, "outcome" => status).increment(1);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// The domain's last `days` days (to `now`) of aggregate reports.
    pub async fn summary(&self, domain: &str, days: u32, now: OffsetDateTime) -> StoreResult<DmarcSummary> {
        self.summary_of(domain, Window::last_days(days.clamp(1, MAX_DAYS), now))
            .await
    }

    /// The domain's aggregate reports whose period begins in `window` (on
    /// or after the day `since` falls on, before `until`), and the failure
    /// reports dated in it (by their arrival, not their import).
    pub async fn summary_of(&self, domain: &str, window: Window) -> StoreResult<DmarcSummary> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let Window { since, until } = window;
        let days = window.days();
        let (reports, truncated) = self.aggregates(&domain, since, until).await?;
        let failure_reports = self.count(ReportKind::Failure, &domain, since, until).await?;
        let analysis = tally::analyse(&reports);
        let own = OwnIps {
            networks: self.own_networks.clone(),
            seen: self.sending_ips(since, until).await?,
        };
        let sources = sources::sources(
            Arc::clone(&self.resolver),
            &domain,
            analysis.by_source,
            &own,
            ServiceMap::builtin(),
        )
        .await;
        let mut enforcement = Enforcement::default();
        let (mut own_messages, mut own_pass) = (0, 0);
        for s in &sources {
            let failing = s.tally.messages - s.tally.dmarc_pass;
            enforcement.failing += failing;
            match s.label {
                SourceLabel::Yours => {
                    enforcement.yours += failing;
                    own_messages += s.tally.messages;
                    own_pass += s.tally.dmarc_pass;
                }
                SourceLabel::Forwarder => enforcement.forwarded += failing,
                SourceLabel::Service | SourceLabel::Unknown => enforcement.others += failing,
            }
        }
        let recommendation = recommend::recommend(&recommend::Evidence {
            policy: analysis.policy.clone(),
            own_messages,
            own_pass,
            days: analysis.by_day.len(),
            others_failing: enforcement.others,
            total_messages: analysis.totals.messages,
        });
        Ok(DmarcSummary {
            domain,
            days,
            since,
            until,
            reports: analysis.reports,
            truncated,
            failure_reports,
            policy: analysis.policy,
            totals: analysis.totals,
            by_day: analysis.by_day,
            by_reporter: analysis.by_reporter,
            sources,
            enforcement,
            recommendation,
        })
    }

    /// The aggregate reports about `domain` whose period starts in the
    /// window (on or after the day `since` falls on, before `until`), and
    /// whether [`MAX_SUMMARY_RECORDS`] left some out.
    async fn aggregates(
        &self,
        domain: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<(Vec<AggregateReport>, bool)> {
        let first_day = since.unix_timestamp() - since.unix_timestamp().rem_euclid(86_400);
        let mut records = 0;
        let mut filter = ReportFilter {
            kind: Some(ReportKind::Aggregate),
            domain: Some(domain.to_owned()),
            since: Some(since),
            until: Some(until),
            after: None,
            with_body: true,
        };
        let mut out = Vec::new();
        loop {
            let page = self.store.list_reports(&filter, PAGE).await?;
            for row in &page {
                // A body this version cannot read is skipped, not fatal: the
                // summary of the rest is still worth having.
                if records + usize::try_from(row.record_count).unwrap_or(usize::MAX) > MAX_SUMMARY_RECORDS {
                    tracing::warn!(domain, records, "DMARC summary left reports out");
                    return Ok((out, true));
                }
                match row.body.as_deref().map(body::decode) {
                    Some(Ok(Report::Aggregate(a))) if a.begin >= first_day => {
                        records += a.records.len();
                        out.push(a);
                    }
                    Some(Err(e)) => tracing::warn!(id = row.id, error = %e, "stored DMARC report unreadable"),
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after = Some(last.id),
                _ => return Ok((out, false)),
            }
        }
    }

    async fn count(
        &self,
        kind: ReportKind,
        domain: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut filter = ReportFilter {
            kind: Some(kind),
            domain: Some(domain.to_owned()),
            since: Some(since),
            until: Some(until),
            ..ReportFilter::default()
        };
        let mut n = 0;
        loop {
            let page = self.store.list_reports(&filter, PAGE).await?;
            n += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == PAGE as usize => filter.after = Some(last.id),
                _ => return Ok(n),
            }
        }
    }

    /// The IPs Herald's own deliveries went out from in the window.
    async fn sending_ips(&self, since: OffsetDateTime, until: OffsetDateTime) -> StoreResult<HashSet<IpAddr>> {
        let accounts: Vec<_> = self
            .store
            .list_accounts(AccountFilter::All)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect();
        if accounts.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = self
            .store
            .stats(&StatsQuery {
                accounts,
                since,
                until,
                period: StatsPeriod::Day,
                group: Some(StatsGroup::SourceIp),
            })
            .await?;
        Ok(rows
            .iter()
            .filter(|r| r.counts.get("delivered") > 0)
            .filter_map(|r| r.group.parse().ok())
            .collect())
    }
}
