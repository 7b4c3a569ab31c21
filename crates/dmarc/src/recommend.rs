//! The next step for a domain's DMARC policy, from the last days' reports.
//!
//! The ladder is the one postmasters climb: `none`, then `quarantine` and
//! `reject` each at 25, 50 and 100 percent. A step is taken only on enough
//! evidence (messages and days of reports) that the domain's own sources
//! pass: forwarders are left out, since their failures are not the
//! domain's to fix, and so are unknown sources, which are spoofers or
//! services not yet set up (they are listed beside the recommendation so a
//! forgotten service of yours is found before it is blocked).
//!
//! RFC 9989 (DMARCbis) drops `pct` for a `t=y` testing flag; receivers that
//! follow it treat any pct under 100 as testing mode, so the partial steps
//! still read as "watch before enforcing" there.

use herald_api_types::dmarc::{PublishedPolicy, Recommendation};

/// The rungs of the ladder, in order: (policy, percent).
pub const LADDER: [(&str, u8); 7] = [
    ("none", 100),
    ("quarantine", 25),
    ("quarantine", 50),
    ("quarantine", 100),
    ("reject", 25),
    ("reject", 50),
    ("reject", 100),
];
/// The share of your own mail that must pass to step up.
pub const ADVANCE_AT: f64 = 0.98;
/// Under this share, an enforcing policy is loosened a step: legitimate
/// mail is being lost.
pub const RETREAT_BELOW: f64 = 0.90;
/// Failing mail from unknown sources and other services, as a share of all
/// the mail, above which the next step waits for a review: some of it may
/// be a service of yours not set up yet, which enforcement would block.
pub const REVIEW_ABOVE: f64 = 0.05;
/// Evidence needed before any step: messages from your own sources…
pub const MIN_MESSAGES: u64 = 100;
/// …over this many days with reports.
pub const MIN_DAYS: usize = 7;

/// The evidence a recommendation is made on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// The published policy, when any report named one.
    pub policy: Option<PublishedPolicy>,
    /// Messages from the domain's own sources, and how many passed DMARC.
    pub own_messages: u64,
    pub own_pass: u64,
    /// Days with at least one report.
    pub days: usize,
    /// Failing messages from unknown sources and known services.
    pub others_failing: u64,
    /// Every message of the period.
    pub total_messages: u64,
}

/// Where a published policy stands on the ladder: the highest rung it
/// reaches (quarantine at 30% is on the 25% rung; at 10% it is below it,
/// on the rung before).
fn rung(policy: &PublishedPolicy) -> usize {
    LADDER
        .iter()
        .rposition(|(p, pct)| *p == policy.p && *pct <= policy.pct)
        .or_else(|| {
            LADDER
                .iter()
                .position(|(p, _)| *p == policy.p)
                .map(|first| first.saturating_sub(1))
        })
        .unwrap_or(0)
}

/// The next step.
pub fn recommend(e: &Evidence) -> Recommendation {
    let current = e.policy.as_ref().map_or(0, rung);
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    let compliance = if e.own_messages == 0 {
        0.0
    } else {
        e.own_pass as f64 / e.own_messages as f64
    };
    let at = |rung: usize, action: &str, reason: String| Recommendation {
        action: action.to_owned(),
        p: LADDER[rung].0.to_owned(),
        pct: LADDER[rung].1,
        compliance,
        reason,
    };
    // Where no step is taken, the policy stays as published, between rungs
    // or not.
    let stay = |action: &str, reason: String| match &e.policy {
        Some(p) => Recommendation {
            action: action.to_owned(),
            p: p.p.clone(),
            pct: p.pct,
            compliance,
            reason,
        },
        None => at(0, action, reason),
    };
    #[allow(clippy::cast_precision_loss)] // Counts stay far below 2^52.
    let others_share = if e.total_messages == 0 {
        0.0
    } else {
        e.others_failing as f64 / e.total_messages as f64
    };
    let percent = compliance * 100.0;
    let others = if e.others_failing > 0 {
        format!(
            " {} failing messages came from unknown sources or other services: make sure none of them is yours.",
            e.others_failing
        )
    } else {
        String::new()
    };
    if e.own_messages < MIN_MESSAGES || e.days < MIN_DAYS {
        return stay(
            "collect",
            format!(
                "Not enough data yet: {} messages from your sources over {} days of reports \
                 (at least {MIN_MESSAGES} messages over {MIN_DAYS} days are needed).",
                e.own_messages, e.days
            ),
        );
    }
    if compliance >= ADVANCE_AT {
        if current + 1 == LADDER.len() {
            return stay(
                "hold",
                format!("{percent:.1}% of your mail passes DMARC and the policy is already reject at 100%."),
            );
        }
        let next = current + 1;
        if others_share > REVIEW_ABOVE {
            return stay(
                "review",
                format!(
                    "{percent:.1}% of your mail passes DMARC, but {:.1}% of all the mail in your name fails from \
                     unknown sources or other services ({} messages): check the sources listed for a service of \
                     yours before moving to p={} at {}%.",
                    others_share * 100.0,
                    e.others_failing,
                    LADDER[next].0,
                    LADDER[next].1
                ),
            );
        }
        return at(
            next,
            "advance",
            format!(
                "{percent:.1}% of your mail passes DMARC (at least {:.0}% needed): move to p={} at {}%.{others}",
                ADVANCE_AT * 100.0,
                LADDER[next].0,
                LADDER[next].1
            ),
        );
    }
    if compliance < RETREAT_BELOW && current > 0 {
        let back = current - 1;
        return at(
            back,
            "fix",
            format!(
                "Only {percent:.1}% of your mail passes DMARC under an enforcing policy: step back to p={} at {}% \
                 and fix the failing sources listed.",
                LADDER[back].0, LADDER[back].1
            ),
        );
    }
    stay(
        "fix",
        format!(
            "{percent:.1}% of your mail passes DMARC; fix the failing sources listed before tightening \
             (at least {:.0}% needed).{others}",
            ADVANCE_AT * 100.0
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: &str, pct: u8) -> Option<PublishedPolicy> {
        Some(PublishedPolicy {
            p: p.into(),
            sp: None,
            pct,
            adkim: "r".into(),
            aspf: "r".into(),
        })
    }

    fn evidence(p: Option<PublishedPolicy>, own: u64, pass: u64, days: usize) -> Evidence {
        Evidence {
            policy: p,
            own_messages: own,
            own_pass: pass,
            days,
            others_failing: 0,
            total_messages: own,
        }
    }

    fn step(r: &Recommendation) -> (&str, &str, u8) {
        (r.action.as_str(), r.p.as_str(), r.pct)
    }

    #[test]
    fn the_ladder_is_climbed_one_rung_at_a_time() {
        let cases = [
            (policy("none", 100), ("advance", "quarantine", 25)),
            (None, ("advance", "quarantine", 25)),
            (policy("quarantine", 25), ("advance", "quarantine", 50)),
            (policy("quarantine", 30), ("advance", "quarantine", 50)),
            (policy("quarantine", 10), ("advance", "quarantine", 25)),
            (policy("reject", 5), ("advance", "reject", 25)),
            (policy("quarantine", 100), ("advance", "reject", 25)),
            (policy("reject", 50), ("advance", "reject", 100)),
            (policy("reject", 100), ("hold", "reject", 100)),
        ];
        for (p, want) in cases {
            let r = recommend(&evidence(p.clone(), 10_000, 9_900, 30));
            assert_eq!(step(&r), want, "from {p:?}");
            assert!((r.compliance - 0.99).abs() < 1e-9);
        }
    }

    #[test]
    fn failing_mail_holds_or_steps_back() {
        // 95%: not enough to advance, not bad enough to retreat.
        let r = recommend(&evidence(policy("quarantine", 50), 1000, 950, 30));
        assert_eq!(step(&r), ("fix", "quarantine", 50));
        // 80% under enforcement: loosen a step.
        let r = recommend(&evidence(policy("quarantine", 50), 1000, 800, 30));
        assert_eq!(step(&r), ("fix", "quarantine", 25));
        // 80% at none: nothing to loosen.
        let r = recommend(&evidence(policy("none", 100), 1000, 800, 30));
        assert_eq!(step(&r), ("fix", "none", 100));
    }

    #[test]
    fn too_little_evidence_changes_nothing() {
        assert_eq!(
            step(&recommend(&evidence(policy("none", 100), 99, 99, 30))),
            ("collect", "none", 100)
        );
        assert_eq!(
            step(&recommend(&evidence(policy("quarantine", 100), 5000, 5000, 6))),
            ("collect", "quarantine", 100)
        );
    }

    #[test]
    fn failing_strangers_are_mentioned_and_many_wait_for_a_review() {
        let mut e = evidence(policy("none", 100), 1000, 1000, 10);
        e.others_failing = 42;
        e.total_messages = 1042;
        let r = recommend(&e);
        assert_eq!(step(&r), ("advance", "quarantine", 25));
        assert!(r.reason.contains("42 failing messages"), "{}", r.reason);
        // 10% of all the mail fails from strangers: look before blocking.
        e.others_failing = 112;
        e.total_messages = 1112;
        let r = recommend(&e);
        assert_eq!(step(&r), ("review", "none", 100));
        assert!(r.reason.contains("112 messages"), "{}", r.reason);
    }

    #[test]
    fn a_policy_between_rungs_is_kept_as_published_when_not_moving() {
        let r = recommend(&evidence(policy("quarantine", 10), 50, 50, 30));
        assert_eq!(step(&r), ("collect", "quarantine", 10));
        let r = recommend(&evidence(policy("reject", 60), 1000, 950, 30));
        assert_eq!(step(&r), ("fix", "reject", 60));
    }
}
