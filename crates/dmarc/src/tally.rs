//! Counting aggregate reports: one pass over the records of a period, by
//! day, by reporter and by source IP. Pure: reports in, counts out.
//!
//! What each count means (per record, weighted by its message count):
//! - DMARC pass: the receiver's aligned DKIM or aligned SPF verdict passed
//!   (`policy_evaluated`), which is what DMARC enforcement looks at.
//! - SPF/DKIM pass: the raw `auth_results`: some SPF check, or some DKIM
//!   signature, passed, aligned or not. The gap between pass and aligned is
//!   the mail that authenticates as someone else (an ESP's own domain).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use herald_api_types::dmarc::{DayTally, PublishedPolicy, ReporterTally, Tally};
use herald_reports::{AggregateReport, Record};

/// The counts behind one source IP, with the evidence its label needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceCounts {
    pub tally: Tally,
    pub reporters: BTreeSet<String>,
    /// Messages whose aligned DKIM passed while no SPF check passed: the
    /// signature of a forwarded message.
    pub forwarded: u64,
}

/// A period's reports, counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    pub reports: u64,
    pub totals: Tally,
    pub by_day: Vec<DayTally>,
    pub by_reporter: Vec<ReporterTally>,
    /// By IP (canonical text), in no particular order.
    pub by_source: HashMap<String, SourceCounts>,
    /// The policy of the report whose period ended last.
    pub policy: Option<PublishedPolicy>,
}

/// Counts `reports` (all about one domain).
pub fn analyse(reports: &[AggregateReport]) -> Analysis {
    let mut a = Analysis {
        reports: reports.len() as u64,
        ..Analysis::default()
    };
    let mut days: BTreeMap<String, Tally> = BTreeMap::new();
    let mut reporters: BTreeMap<String, (u64, Tally)> = BTreeMap::new();
    let mut latest: Option<&AggregateReport> = None;
    for report in reports {
        if latest.is_none_or(|l| report.end > l.end) {
            latest = Some(report);
        }
        let day = day_of(report.begin);
        let day_tally = days.entry(day).or_default();
        let reporter = reporters.entry(report.org_name.clone()).or_default();
        reporter.0 += 1;
        for record in &report.records {
            add(&mut a.totals, record);
            add(day_tally, record);
            add(&mut reporter.1, record);
            let source = a.by_source.entry(record.source_ip.clone()).or_default();
            add(&mut source.tally, record);
            if !source.reporters.contains(&report.org_name) {
                source.reporters.insert(report.org_name.clone());
            }
            if record.dkim == "pass" && !spf_passed(record) {
                source.forwarded = source.forwarded.saturating_add(record.count);
            }
        }
    }
    finish(&mut a.totals);
    a.by_day = days
        .into_iter()
        .map(|(day, mut tally)| {
            finish(&mut tally);
            DayTally { day, tally }
        })
        .collect();
    a.by_reporter = reporters
        .into_iter()
        .map(|(org_name, (n, mut tally))| {
            finish(&mut tally);
            ReporterTally {
                org_name,
                reports: n,
                tally,
            }
        })
        .collect();
    a.by_reporter.sort_by_key(|r| std::cmp::Reverse(r.tally.messages));
    for source in a.by_source.values_mut() {
        finish(&mut source.tally);
    }
    a.policy = latest.map(|r| PublishedPolicy {
        p: r.policy.p.clone().unwrap_or_else(|| "none".into()),
        sp: r.policy.sp.clone(),
        pct: r.policy.pct.unwrap_or(100),
        adkim: r.policy.adkim.clone().unwrap_or_else(|| "r".into()),
        aspf: r.policy.aspf.clone().unwrap_or_else(|| "r".into()),
    });
    a
}

/// Whether any SPF check of the record passed, aligned or not.
fn spf_passed(r: &Record) -> bool {
    r.spf == "pass" || r.spf_results.iter().any(|s| s.result == "pass")
}

fn add(t: &mut Tally, r: &Record) {
    let n = r.count;
    t.messages = t.messages.saturating_add(n);
    let dkim_aligned = r.dkim == "pass";
    let spf_aligned = r.spf == "pass";
    if dkim_aligned || spf_aligned {
        t.dmarc_pass = t.dmarc_pass.saturating_add(n);
    }
    if spf_aligned {
        t.spf_aligned = t.spf_aligned.saturating_add(n);
    }
    if spf_passed(r) {
        t.spf_pass = t.spf_pass.saturating_add(n);
    }
    if dkim_aligned {
        t.dkim_aligned = t.dkim_aligned.saturating_add(n);
    }
    if dkim_aligned || r.dkim_results.iter().any(|d| d.result == "pass") {
        t.dkim_pass = t.dkim_pass.saturating_add(n);
    }
    match r.disposition.as_str() {
        "quarantine" => t.disposition_quarantine += n,
        "reject" => t.disposition_reject += n,
        // `none`, and RFC 9990's `pass`: delivered as sent.
        _ => t.disposition_none += n,
    }
}

/// Fills in the rates from the counts.
pub fn finish(t: &mut Tally) {
    t.rates.clear();
    if t.messages == 0 {
        return;
    }
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    let share = |n: u64| n as f64 / t.messages as f64;
    let rates = [
        ("dmarc_pass_rate", share(t.dmarc_pass)),
        ("spf_pass_rate", share(t.spf_pass)),
        ("spf_alignment_rate", share(t.spf_aligned)),
        ("dkim_pass_rate", share(t.dkim_pass)),
        ("dkim_alignment_rate", share(t.dkim_aligned)),
    ];
    for (name, rate) in rates {
        t.rates.insert(name.to_owned(), rate);
    }
}

/// Adds `other`'s counts to `t` (rates are recomputed by [`finish`]).
pub fn merge(t: &mut Tally, other: &Tally) {
    t.messages = t.messages.saturating_add(other.messages);
    t.dmarc_pass = t.dmarc_pass.saturating_add(other.dmarc_pass);
    t.spf_pass = t.spf_pass.saturating_add(other.spf_pass);
    t.spf_aligned = t.spf_aligned.saturating_add(other.spf_aligned);
    t.dkim_pass = t.dkim_pass.saturating_add(other.dkim_pass);
    t.dkim_aligned = t.dkim_aligned.saturating_add(other.dkim_aligned);
    t.disposition_none = t.disposition_none.saturating_add(other.disposition_none);
    t.disposition_quarantine = t.disposition_quarantine.saturating_add(other.disposition_quarantine);
    t.disposition_reject = t.disposition_reject.saturating_add(other.disposition_reject);
}

/// `2026-11-23` for a Unix time, UTC.
pub fn day_of(unix: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_reports::{DkimAuth, PolicyPublished, SpfAuth};

    pub(crate) fn record(ip: &str, count: u64, dkim: &str, spf: &str, raw_spf: &str) -> Record {
        Record {
            source_ip: ip.into(),
            count,
            disposition: "none".into(),
            dkim: dkim.into(),
            spf: spf.into(),
            header_from: "example.com".into(),
            dkim_results: vec![DkimAuth {
                domain: "example.com".into(),
                result: dkim.into(),
                ..DkimAuth::default()
            }],
            spf_results: vec![SpfAuth {
                domain: "example.com".into(),
                result: raw_spf.into(),
                ..SpfAuth::default()
            }],
            ..Record::default()
        }
    }

    fn report(org: &str, begin: i64, records: Vec<Record>) -> AggregateReport {
        AggregateReport {
            org_name: org.into(),
            report_id: format!("{org}-{begin}"),
            begin,
            end: begin + 86_399,
            policy: PolicyPublished {
                domain: "example.com".into(),
                p: Some("quarantine".into()),
                pct: Some(50),
                ..PolicyPublished::default()
            },
            records,
            ..AggregateReport::default()
        }
    }

    #[test]
    fn counts_by_day_reporter_and_source() {
        let day1 = 1_700_006_400; // 2023-11-15 00:00 UTC
        let mut forwarded = record("192.0.2.9", 4, "pass", "fail", "fail");
        forwarded.disposition = "quarantine".into();
        let reports = [
            report(
                "google.com",
                day1,
                vec![record("192.0.2.1", 10, "pass", "pass", "pass"), forwarded],
            ),
            report(
                "Yahoo",
                day1 + 86_400,
                vec![
                    record("192.0.2.1", 6, "fail", "pass", "pass"),
                    record("198.51.100.7", 5, "fail", "fail", "softfail"),
                ],
            ),
        ];
        let a = analyse(&reports);
        assert_eq!(a.reports, 2);
        let t = &a.totals;
        assert_eq!(
            (t.messages, t.dmarc_pass, t.spf_aligned, t.dkim_aligned),
            (25, 20, 16, 14)
        );
        assert_eq!((t.spf_pass, t.dkim_pass), (16, 14));
        assert_eq!((t.disposition_none, t.disposition_quarantine), (21, 4));
        assert_eq!(t.rates["dmarc_pass_rate"], 0.8);
        let days: Vec<(&str, u64)> = a.by_day.iter().map(|d| (d.day.as_str(), d.tally.messages)).collect();
        assert_eq!(days, [("2023-11-15", 14), ("2023-11-16", 11)]);
        let reporters: Vec<(&str, u64)> = a
            .by_reporter
            .iter()
            .map(|r| (r.org_name.as_str(), r.tally.messages))
            .collect();
        assert_eq!(reporters, [("google.com", 14), ("Yahoo", 11)], "largest first");
        let ours = &a.by_source["192.0.2.1"];
        assert_eq!(ours.tally.messages, 16);
        assert_eq!(ours.reporters.iter().collect::<Vec<_>>(), ["Yahoo", "google.com"]);
        assert_eq!(a.by_source["192.0.2.9"].forwarded, 4, "DKIM pass with SPF fail");
        assert_eq!(a.by_source["198.51.100.7"].forwarded, 0);
        let policy = a.policy.expect("a policy");
        assert_eq!(
            (policy.p.as_str(), policy.pct, policy.adkim.as_str()),
            ("quarantine", 50, "r")
        );
    }

    #[test]
    fn nothing_counted_has_no_rates() {
        let a = analyse(&[]);
        assert_eq!(a.totals.messages, 0);
        assert!(a.totals.rates.is_empty());
        assert!(a.policy.is_none());
    }
}
