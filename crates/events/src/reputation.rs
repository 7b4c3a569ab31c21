//! Reputation: a 0–100 score per account and per sending IP, with the
//! reasons that lowered it, from the last days' stats; and the alerts that
//! tell an account when a rate crosses its threshold.
//!
//! The score starts at 100 and loses points for what mailbox providers
//! punish: unauthenticated sending domains, a bounce rate over 2%, a
//! complaint rate over 0.05%, a low acceptance rate, unsteady volume.
//! Active blocklist listings of the addresses and domains an account is
//! concerned by (its sending IPs, its domains, the networks its SPF
//! records authorise) cost each list's weight, at most 50 points.

use std::sync::Arc;
use std::time::Duration;

use herald_store::{Counts, StatsGroup, StatsPeriod, StatsQuery, Store, StoreResult};
use herald_types::AccountId;
use tokio::sync::watch;

/// Bounce rates above this warn (and alert, by default).
pub const BOUNCE_WARN: f64 = 0.02;
/// Complaint rates above this warn (and alert, by default).
pub const COMPLAINT_WARN: f64 = 0.0005;
/// Acceptance rates below this lose points.
pub const ACCEPTANCE_WARN: f64 = 0.95;
/// The days the score looks back on.
pub const WINDOW_DAYS: i64 = 7;

/// One thing that weighs on a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// authentication, bounce_rate, complaint_rate, acceptance_rate,
    /// volume_steadiness, blocklists.
    pub factor: &'static str,
    /// The measured value (a rate, a ratio), when there is one.
    pub value: Option<f64>,
    /// Where it starts to cost points.
    pub threshold: Option<f64>,
    /// Points taken off (0 when it is only information).
    pub impact: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reputation {
    pub score: u32,
    pub reasons: Vec<Reason>,
}

/// What a score is made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Counts per day, oldest first.
    pub days: Vec<Counts>,
    /// Sending domains and whether each verified (None: not an account's
    /// score, as for an IP).
    pub domains: Option<Vec<(String, bool)>>,
    /// Blocklist monitoring: `None` when nothing is monitored for the
    /// score's subject, else how many targets are and their active
    /// listings.
    pub blocklists: Option<Monitored>,
}

/// What blocklist monitoring knows about a score's subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Monitored {
    /// Addresses and domains checked.
    pub targets: usize,
    /// Active listings: (target, list name, weight).
    pub listed: Vec<(String, String, u32)>,
}

/// The most a score loses to listings.
pub const MAX_BLOCKLIST_IMPACT: u32 = 50;

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // bounded to 0..=100
fn points(p: f64) -> u32 {
    p.clamp(0.0, 100.0).round() as u32
}

/// The score and its reasons.
pub fn score(inputs: &Inputs) -> Reputation {
    let mut total = Counts::default();
    for d in &inputs.days {
        total.add(d);
    }
    let mut reasons = Vec::new();
    if let Some(domains) = &inputs.domains {
        let unverified: Vec<&str> = domains.iter().filter(|(_, ok)| !ok).map(|(d, _)| d.as_str()).collect();
        if domains.is_empty() {
            reasons.push(Reason {
                factor: "authentication",
                value: None,
                threshold: None,
                impact: 20,
                message: "no sending domain: mail is not signed with the sender's own domain".to_owned(),
            });
        } else if !unverified.is_empty() {
            reasons.push(Reason {
                factor: "authentication",
                value: None,
                threshold: None,
                impact: 20,
                message: format!("SPF, DKIM and DMARC not verified for {}", unverified.join(", ")),
            });
        }
    }
    if let Some(rate) = total.rate("bounce_rate")
        && rate > BOUNCE_WARN
    {
        reasons.push(Reason {
            factor: "bounce_rate",
            value: Some(rate),
            threshold: Some(BOUNCE_WARN),
            impact: points(5.0 + (rate - BOUNCE_WARN) * 500.0).min(30),
            message: format!("bounce rate {:.2}% is over 2%: clean the list", rate * 100.0),
        });
    }
    if let Some(rate) = total.rate("complaint_rate")
        && rate > COMPLAINT_WARN
    {
        reasons.push(Reason {
            factor: "complaint_rate",
            value: Some(rate),
            threshold: Some(COMPLAINT_WARN),
            impact: points(10.0 + (rate - COMPLAINT_WARN) * 20_000.0).min(40),
            message: format!(
                "complaint rate {:.3}% is over 0.05%: send only to people who asked",
                rate * 100.0
            ),
        });
    }
    if let Some(rate) = total.rate("acceptance_rate")
        && rate < ACCEPTANCE_WARN
    {
        reasons.push(Reason {
            factor: "acceptance_rate",
            value: Some(rate),
            threshold: Some(ACCEPTANCE_WARN),
            impact: points((ACCEPTANCE_WARN - rate) * 100.0).min(20),
            message: format!(
                "{:.1}% of delivery attempts accepted (under 95%): providers defer or refuse this mail",
                rate * 100.0
            ),
        });
    }
    // Steadiness: the coefficient of variation of daily volume.
    let volumes: Vec<f64> = inputs
        .days
        .iter()
        // Daily counts stay far below 2^52.
        .map(|d| {
            #[allow(clippy::cast_precision_loss)]
            let v = d.get("accepted") as f64;
            v
        })
        .collect();
    if volumes.len() >= 2 {
        #[allow(clippy::cast_precision_loss)]
        let n = volumes.len() as f64;
        let mean = volumes.iter().sum::<f64>() / n;
        if mean > 0.0 {
            let var = volumes.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let cv = var.sqrt() / mean;
            if cv > 1.0 {
                reasons.push(Reason {
                    factor: "volume_steadiness",
                    value: Some(cv),
                    threshold: Some(1.0),
                    impact: points((cv - 1.0) * 10.0).min(10),
                    message: format!(
                        "daily volume varies by {:.0}% of its mean: ramp up and keep a steady pace",
                        cv * 100.0
                    ),
                });
            }
        }
    }
    reasons.push(match &inputs.blocklists {
        None => Reason {
            factor: "blocklists",
            value: None,
            threshold: None,
            impact: 0,
            message: "no address or domain of this sender is monitored on blocklists yet".to_owned(),
        },
        Some(m) if m.listed.is_empty() => Reason {
            factor: "blocklists",
            value: Some(0.0),
            threshold: None,
            impact: 0,
            message: format!("none of {} monitored addresses and domains is listed", m.targets),
        },
        Some(m) => {
            let impact: u32 = m
                .listed
                .iter()
                .map(|(_, _, w)| *w)
                .sum::<u32>()
                .min(MAX_BLOCKLIST_IMPACT);
            let names: Vec<String> = m.listed.iter().map(|(t, l, _)| format!("{t} on {l}")).collect();
            #[allow(clippy::cast_precision_loss)] // a handful of listings
            let count = m.listed.len() as f64;
            Reason {
                factor: "blocklists",
                value: Some(count),
                threshold: Some(0.0),
                impact,
                message: format!("listed: {}; ask for removal once the cause is fixed", names.join(", ")),
            }
        }
    });
    let lost: u32 = reasons.iter().map(|r| r.impact).sum();
    Reputation {
        score: 100u32.saturating_sub(lost),
        reasons,
    }
}

/// The inputs of an account's score (its own mail) and of each IP it sent
/// from, over the last [`WINDOW_DAYS`].
pub async fn account_inputs(store: &dyn Store, account: &AccountId) -> StoreResult<(Inputs, Vec<(String, Inputs)>)> {
    let now = time::OffsetDateTime::now_utc();
    let query = |group| StatsQuery {
        accounts: vec![account.clone()],
        since: now - time::Duration::days(WINDOW_DAYS),
        until: now,
        period: StatsPeriod::Day,
        group,
    };
    let days = store.stats(&query(None)).await?.into_iter().map(|r| r.counts).collect();
    let domains = store
        .list_domains(account)
        .await?
        .into_iter()
        .map(|d| (d.name.to_string(), d.verified_at.is_some()))
        .collect();
    let mut ips: Vec<(String, Inputs)> = Vec::new();
    for row in store.stats(&query(Some(StatsGroup::SourceIp))).await? {
        if row.group.is_empty() {
            continue; // events without a sending IP (opens, acceptance)
        }
        match ips.iter_mut().find(|(ip, _)| *ip == row.group) {
            Some((_, inputs)) => inputs.days.push(row.counts),
            None => ips.push((
                row.group.clone(),
                Inputs {
                    days: vec![row.counts],
                    domains: None,
                    blocklists: None,
                },
            )),
        }
    }
    // Listings: the account's monitored targets, and each IP by itself.
    let mut targets: Vec<String> = store
        .monitor_targets(Some(std::slice::from_ref(account)))
        .await?
        .into_iter()
        .map(|t| t.target)
        .collect();
    targets.sort();
    targets.dedup();
    let listed = |t: &str, all: &[herald_store::Listing]| -> Vec<(String, String, u32)> {
        all.iter()
            .filter(|l| l.seen.target == t)
            .map(|l| (l.seen.target.clone(), l.seen.name.clone(), l.seen.weight))
            .collect()
    };
    let mut asked = targets.clone();
    asked.extend(ips.iter().map(|(ip, _)| ip.clone()));
    let active = store
        .listings(
            &herald_store::ListingFilter {
                targets: Some(asked),
                active_only: true,
                since: None,
            },
            1000,
        )
        .await?;
    for (ip, inputs) in &mut ips {
        if targets.contains(ip) || !listed(ip, &active).is_empty() {
            inputs.blocklists = Some(Monitored {
                targets: 1,
                listed: listed(ip, &active),
            });
        }
    }
    let blocklists = (!targets.is_empty()).then(|| Monitored {
        targets: targets.len(),
        listed: targets.iter().flat_map(|t| listed(t, &active)).collect(),
    });
    Ok((
        Inputs {
            days,
            domains: Some(domains),
            blocklists,
        },
        ips,
    ))
}

/// When rates are checked, and from what volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub interval: Duration,
    /// Delivered messages within the last 24 hours below which no rate
    /// alerts (a handful of bounces says little).
    pub min_volume: i64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(300),
            min_volume: 100,
        }
    }
}

/// The alerts an account's last 24 hours call for: (kind, message).
pub fn rate_alerts(day: &Counts, bounce_bp: u32, complaint_bp: u32, min_volume: i64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if day.ended() < min_volume {
        return out;
    }
    let bp = |rate: f64| rate * 10_000.0;
    if let Some(rate) = day.rate("bounce_rate")
        && bp(rate) > f64::from(bounce_bp)
    {
        out.push((
            "bounce_rate",
            format!(
                "bounce rate {:.2}% in the last 24 h is over the alert threshold of {:.2}%",
                rate * 100.0,
                f64::from(bounce_bp) / 100.0
            ),
        ));
    }
    if let Some(rate) = day.rate("complaint_rate")
        && bp(rate) > f64::from(complaint_bp)
    {
        out.push((
            "complaint_rate",
            format!(
                "complaint rate {:.3}% in the last 24 h is over the alert threshold of {:.2}%",
                rate * 100.0,
                f64::from(complaint_bp) / 100.0
            ),
        ));
    }
    out
}

/// Checks every account's rates each `interval`: an alert opens when a
/// rate crosses its threshold (told once a day while it stays over) and
/// resolves when it is back under.
pub async fn run_alerts(
    store: Arc<dyn Store>,
    alerter: crate::alerts::Alerter,
    settings: AlertSettings,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(settings.interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = check_alerts(store.as_ref(), &alerter, &settings).await {
            tracing::warn!(error = %e, "cannot check alert thresholds");
        }
    }
}

/// The rate kinds [`rate_alerts`] can name.
pub const RATE_KINDS: [&str; 2] = ["bounce_rate", "complaint_rate"];

async fn check_alerts(
    store: &dyn Store,
    alerter: &crate::alerts::Alerter,
    settings: &AlertSettings,
) -> StoreResult<()> {
    let now = time::OffsetDateTime::now_utc();
    // What holds now; every open rate alert not in it resolves (one read
    // of the open alerts, not a write per account).
    let mut holding: std::collections::HashSet<(AccountId, String)> = std::collections::HashSet::new();
    for account in store.list_accounts(herald_store::AccountFilter::All).await? {
        let rows = store
            .stats(&StatsQuery {
                accounts: vec![account.id.clone()],
                since: now - time::Duration::hours(24),
                until: now,
                period: StatsPeriod::Hour,
                group: None,
            })
            .await?;
        let mut day = Counts::default();
        for r in &rows {
            day.add(&r.counts);
        }
        let alerts = rate_alerts(
            &day,
            account.settings.bounce_alert_bp,
            account.settings.complaint_alert_bp,
            settings.min_volume,
        );
        for (kind, message) in alerts {
            alerter.raise(&account.id, kind, kind, &message).await?;
            holding.insert((account.id.clone(), kind.to_owned()));
        }
    }
    for kind in RATE_KINDS {
        alerter.settle(kind, &holding).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> Counts {
        let mut c = Counts::default();
        for (name, n) in pairs {
            let i = herald_store::COUNTERS.iter().position(|x| x == name).unwrap_or(0);
            c.0[i] = *n;
        }
        c
    }

    #[test]
    fn a_clean_steady_sender_scores_100() {
        let day = counts(&[("accepted", 1000), ("delivered", 990), ("bounced_hard", 10)]);
        let r = score(&Inputs {
            days: vec![day; 7],
            domains: Some(vec![("acme.test".to_owned(), true)]),
            blocklists: Some(Monitored {
                targets: 3,
                listed: Vec::new(),
            }),
        });
        assert_eq!(r.score, 100, "{r:?}");
    }

    #[test]
    fn bounces_complaints_and_unverified_domains_cost_points() {
        let day = counts(&[
            ("accepted", 1000),
            ("delivered", 900),
            ("bounced_hard", 100),
            ("complained", 9),
        ]);
        let r = score(&Inputs {
            days: vec![day],
            domains: Some(vec![("acme.test".to_owned(), false)]),
            blocklists: None,
        });
        let factors: Vec<&str> = r.reasons.iter().filter(|x| x.impact > 0).map(|x| x.factor).collect();
        assert_eq!(
            factors,
            ["authentication", "bounce_rate", "complaint_rate", "acceptance_rate"],
            "{r:?}"
        );
        // 10% bounces: 5 + 8% * 500 = 45, capped at 30; 1% complaints:
        // capped at 40; 90% accepted: (95% - 90%) * 100 = 5.
        assert_eq!(r.score, 100 - 20 - 30 - 40 - 5);
    }

    #[test]
    fn a_burst_after_silence_is_unsteady() {
        let quiet = counts(&[("accepted", 0)]);
        let burst = counts(&[("accepted", 10_000), ("delivered", 10_000)]);
        let r = score(&Inputs {
            days: vec![quiet, quiet, quiet, quiet, quiet, quiet, burst],
            domains: None,
            blocklists: None,
        });
        assert!(
            r.reasons
                .iter()
                .any(|x| x.factor == "volume_steadiness" && x.impact > 0),
            "{r:?}"
        );
    }

    #[test]
    fn listings_cost_their_lists_weight_up_to_a_cap() {
        let day = counts(&[("accepted", 1000), ("delivered", 1000)]);
        let listed = |n: usize| Inputs {
            days: vec![day; 7],
            domains: None,
            blocklists: Some(Monitored {
                targets: 4,
                listed: (0..n)
                    .map(|i| (format!("192.0.2.{i}"), "Spamhaus ZEN".to_owned(), 25))
                    .collect(),
            }),
        };
        let one = score(&listed(1));
        assert_eq!(one.score, 75, "{one:?}");
        assert!(
            one.reasons
                .iter()
                .any(|r| r.factor == "blocklists" && r.message.contains("192.0.2.0 on Spamhaus ZEN"))
        );
        assert_eq!(score(&listed(5)).score, 100 - MAX_BLOCKLIST_IMPACT);
    }

    #[test]
    fn rate_alerts_need_volume_and_a_crossed_threshold() {
        let bad = counts(&[("delivered", 95), ("bounced_hard", 5), ("complained", 1)]);
        let kinds: Vec<&str> = rate_alerts(&bad, 200, 5, 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["bounce_rate", "complaint_rate"]);
        assert!(rate_alerts(&bad, 600, 200, 10).is_empty(), "under higher thresholds");
        assert!(rate_alerts(&bad, 200, 5, 1000).is_empty(), "too little volume");
    }
}
