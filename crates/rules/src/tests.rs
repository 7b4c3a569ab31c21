use std::time::Duration;

use herald_types::BounceClass;

use super::*;

fn answer<'a>(code: u16, enhanced: Option<&'a str>, text: &'a str, phase: Phase) -> Answer<'a> {
    Answer {
        code,
        enhanced,
        text,
        phase: Some(phase),
    }
}

fn to(domain: &str) -> Context<'_> {
    Context {
        sender_domain: Some("example.com"),
        recipient_domain: domain,
        provider: None,
    }
}

fn decide(code: u16, enhanced: Option<&str>, text: &str) -> Decision {
    RuleSet::defaults()
        .unwrap()
        .decide(&answer(code, enhanced, text, Phase::Rcpt), &to("example.net"), 1)
}

const MIN: Duration = Duration::from_secs(60);

#[test]
fn the_default_rules_compile() {
    let rules = RuleSet::defaults().unwrap();
    assert!(rules.rules().len() >= 10);
    assert!(rules.rules().iter().all(|r| r.origin == Origin::Default));
}

#[test]
fn providers_throttling_backs_the_destination_off() {
    // Texts as the providers send them.
    let gmail = decide(
        421,
        Some("4.7.28"),
        "[192.0.2.10] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited.",
    );
    assert_eq!(gmail.rule, "gmail-unusual-rate");
    assert!(matches!(gmail.effect, Effect::Backoff(_)));
    let microsoft = decide(
        451,
        Some("4.7.650"),
        "The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)",
    );
    assert_eq!(microsoft.rule, "microsoft-ip-reputation");
    assert!(matches!(microsoft.effect, Effect::Backoff(d) if d == 60 * MIN));
    assert!(matches!(
        microsoft.outcome,
        Outcome::Deferred { reason: Reason::BadReputation, retry_after, .. } if retry_after == 60 * MIN
    ));
    let yahoo = decide(
        421,
        Some("4.7.0"),
        "[TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    );
    assert_eq!(yahoo.rule, "yahoo-deferred");
    assert!(matches!(yahoo.effect, Effect::Backoff(_)));
    let yahoo_stop = decide(
        421,
        Some("4.7.0"),
        "[TS03] All messages from 192.0.2.10 will be permanently deferred; Retrying will NOT succeed.",
    );
    assert!(matches!(yahoo_stop.effect, Effect::Suspend(d) if d == 240 * MIN));
    let generic = decide(450, None, "Too many messages from your host, slow down");
    assert_eq!(generic.rule, "rate-limited");
    let conns = decide(421, Some("4.7.0"), "Too many concurrent connections from this IP");
    assert_eq!(conns.rule, "too-many-connections");
    assert!(matches!(
        conns.outcome,
        Outcome::Deferred {
            reason: Reason::TooManyConn,
            ..
        }
    ));
}

#[test]
fn one_busy_mailbox_does_not_slow_the_destination() {
    let d = decide(
        450,
        Some("4.2.1"),
        "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later point.",
    );
    assert_eq!(d.rule, "recipient-receiving-too-fast");
    assert_eq!(d.effect, Effect::None);
}

#[test]
fn a_full_mailbox_waits_and_bounces_as_mailboxfull_only_at_the_end() {
    for (code, enhanced, text) in [
        (
            552,
            Some("5.2.2"),
            "The email account that you tried to reach is over quota.",
        ),
        (550, None, "Mailbox full"),
        (554, Some("5.7.1"), "<a@example.net>: user is over quota"),
        (
            452,
            Some("4.2.2"),
            "The email account that you tried to reach is over quota.",
        ),
        (552, None, "Requested mail action aborted: exceeded storage allocation"),
    ] {
        let d = decide(code, enhanced, text);
        assert!(
            matches!(
                d.outcome,
                Outcome::Deferred {
                    reason: Reason::MailboxFull,
                    give_up_after: None,
                    then: Some(BounceClass::Soft),
                    ..
                }
            ),
            "{text}: {d:?}"
        );
        assert_eq!(d.effect, Effect::None);
    }
}

#[test]
fn a_host_not_found_is_retried_for_a_day_before_it_counts() {
    for (code, enhanced, text) in [
        (554, None, "Host not found"),
        (
            550,
            Some("5.1.2"),
            "Host or domain name not found. Name service error for name=example.invalid type=A: Host not found",
        ),
        (550, Some("5.1.2"), "domain example.invalid does not exist"),
    ] {
        let d = decide(code, enhanced, text);
        assert_eq!(d.rule, "host-not-found", "{text}");
        assert!(matches!(
            d.outcome,
            Outcome::Deferred {
                reason: Reason::HostUnknown,
                give_up_after: Some(age),
                then: Some(BounceClass::Hard),
                ..
            } if age == 24 * 60 * MIN
        ));
    }
    // The address, not the domain: a hard bounce at once.
    let user = decide(
        550,
        Some("5.1.1"),
        "The email account that you tried to reach does not exist.",
    );
    assert_eq!(
        user.outcome,
        Outcome::Bounced {
            class: BounceClass::Hard,
            reason: Reason::UserUnknown
        }
    );
    let plain = decide(550, None, "user does not exist");
    assert!(matches!(plain.outcome, Outcome::Bounced { .. }), "{plain:?}");
    // A null MX is the domain's own word: at once.
    let null = decide(556, Some("5.1.10"), "example.net accepts no mail (null MX)");
    assert!(matches!(
        null.outcome,
        Outcome::Bounced {
            class: BounceClass::Hard,
            ..
        }
    ));
}

#[test]
fn a_421_is_retried_in_about_twenty_minutes() {
    let d = decide(
        421,
        None,
        "mx.example.net Service not available, closing transmission channel",
    );
    assert_eq!(d.rule, "service-not-available");
    assert!(matches!(d.outcome, Outcome::Deferred { retry_after, .. } if retry_after == 20 * MIN));
}

#[test]
fn answers_no_rule_names_go_to_the_classifier() {
    let d = decide(550, None, "sorry, no mailbox here by that name. (#5.1.1)");
    assert_eq!((d.rule.as_str(), d.origin), ("classifier", Origin::Classifier));
    assert!(
        matches!(
            d.outcome,
            Outcome::Bounced {
                class: BounceClass::Hard,
                reason: Reason::UserUnknown
            }
        ),
        "{d:?}"
    );
    let ok = decide(250, Some("2.0.0"), "OK");
    assert_eq!(ok.outcome, Outcome::Delivered);
    // A 4xx waits on its reason's ladder, the default one: 15 min, then more.
    let rules = RuleSet::defaults().unwrap();
    let a = answer(451, Some("4.3.0"), "local error in processing", Phase::EndOfData);
    let waits: Vec<u64> = (1..=6)
        .map(|n| match rules.decide(&a, &to("x.test"), n).outcome {
            Outcome::Deferred { retry_after, .. } => retry_after.as_secs() / 60,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits, [15, 30, 60, 120, 240, 240]);
    // A 3xx where an answer belongs is never a bounce.
    assert!(matches!(decide(354, None, "go on").outcome, Outcome::Deferred { .. }));
}

#[test]
fn a_configured_rule_comes_before_the_defaults() {
    let spec: RuleFile = toml::from_str(
        r#"
        [[response_rules]]
        name = "outlook-throttle"
        code = 451
        enhanced = "4.7.650"
        phase = "rcpt"
        provider = "microsoft"
        action = "suspend"
        duration = "2h"
        "#,
    )
    .unwrap();
    let rules = RuleSet::new(&spec.response_rules, RetryPolicy::builtin()).unwrap();
    let a = answer(
        451,
        Some("4.7.650"),
        "temporarily rate limited due to IP reputation",
        Phase::Rcpt,
    );
    let ms = Context {
        provider: Some("Microsoft"),
        ..to("outlook.com")
    };
    let d = rules.decide(&a, &ms, 1);
    assert_eq!((d.rule.as_str(), d.origin), ("outlook-throttle", Origin::Config));
    assert_eq!(d.effect, Effect::Suspend(120 * MIN));
    // Other phases, or another provider: the default still decides.
    let other = rules.decide(&a, &to("outlook.com"), 1);
    assert_eq!(other.rule, "microsoft-ip-reputation");
    let mail = rules.decide(&answer(451, Some("4.7.650"), "", Phase::Mail), &ms, 1);
    assert_eq!(mail.rule, "microsoft-ip-reputation");
}

#[test]
fn rules_match_on_every_field() {
    let spec = RuleSpec {
        name: "only".into(),
        code: Some(CodeSpec::List(vec![
            CodeSpec::Number(550),
            CodeSpec::Pattern("55x".into()),
        ])),
        enhanced: Some("5.7.*".into()),
        text: Some("policy".into()),
        phase: Some(OneOrMany::Many(vec!["rcpt".into(), "end_of_data".into()])),
        sender_domain: Some(OneOrMany::One("*.brand.test".into())),
        domain: Some(OneOrMany::One("example.net".into())),
        action: "bounce".into(),
        reason: Some("policyviolation".into()),
        class: Some("soft".into()),
        ..RuleSpec::default()
    };
    let rule = spec.compile(Origin::Config).unwrap();
    let ctx = Context {
        sender_domain: Some("news.brand.test"),
        recipient_domain: "example.net",
        provider: None,
    };
    let hit = answer(554, Some("5.7.1"), "Rejected by POLICY", Phase::EndOfData);
    assert!(rule.matches(&hit, &ctx));
    for miss in [
        answer(451, Some("5.7.1"), "policy", Phase::Rcpt),
        answer(550, Some("5.1.1"), "policy", Phase::Rcpt),
        answer(550, None, "policy", Phase::Rcpt),
        answer(550, Some("5.7.1"), "spam", Phase::Rcpt),
        answer(550, Some("5.7.1"), "policy", Phase::Mail),
    ] {
        assert!(!rule.matches(&miss, &ctx), "{miss:?}");
    }
    let no_phase = Answer { phase: None, ..hit };
    assert!(!rule.matches(&no_phase, &ctx));
    assert!(!rule.matches(
        &hit,
        &Context {
            sender_domain: Some("brand.test"),
            ..ctx
        }
    ));
    assert!(!rule.matches(
        &hit,
        &Context {
            recipient_domain: "example.org",
            ..ctx
        }
    ));
}

#[test]
fn a_wrong_rule_is_refused_with_the_field_named() {
    let base = RuleSpec {
        name: "r".into(),
        action: "defer".into(),
        ..RuleSpec::default()
    };
    let cases: Vec<(RuleSpec, &str)> = vec![
        (
            RuleSpec {
                name: " ".into(),
                ..base.clone()
            },
            "name",
        ),
        (
            RuleSpec {
                code: Some(CodeSpec::Number(700)),
                ..base.clone()
            },
            "code",
        ),
        (
            RuleSpec {
                code: Some(CodeSpec::Pattern("6xx".into())),
                ..base.clone()
            },
            "code",
        ),
        (
            RuleSpec {
                enhanced: Some("4.7".into()),
                ..base.clone()
            },
            "enhanced",
        ),
        (
            RuleSpec {
                text: Some("(unclosed".into()),
                ..base.clone()
            },
            "text",
        ),
        (
            RuleSpec {
                text: Some("a{1000}{1000}".into()),
                ..base.clone()
            },
            "text",
        ),
        (
            RuleSpec {
                phase: Some(OneOrMany::One("handshake".into())),
                ..base.clone()
            },
            "phase",
        ),
        (
            RuleSpec {
                domain: Some(OneOrMany::One("not a domain".into())),
                ..base.clone()
            },
            "domain",
        ),
        (
            RuleSpec {
                action: "retry".into(),
                ..base.clone()
            },
            "action",
        ),
        (
            RuleSpec {
                action: "suspend".into(),
                ..base.clone()
            },
            "duration",
        ),
        (
            RuleSpec {
                duration: Some("soon".into()),
                ..base.clone()
            },
            "duration",
        ),
        (
            RuleSpec {
                duration: Some("0s".into()),
                ..base.clone()
            },
            "duration",
        ),
        (
            RuleSpec {
                reason: Some("sad".into()),
                ..base.clone()
            },
            "reason",
        ),
        (
            RuleSpec {
                class: Some("medium".into()),
                ..base.clone()
            },
            "class",
        ),
        (
            RuleSpec {
                action: "bounce".into(),
                give_up_after: Some("1h".into()),
                ..base.clone()
            },
            "give_up_after",
        ),
        (
            RuleSpec {
                action: "delivered".into(),
                reason: Some("blocked".into()),
                ..base.clone()
            },
            "reason",
        ),
    ];
    for (spec, field) in cases {
        let e = spec.compile(Origin::Config).unwrap_err();
        assert_eq!(e.field, field, "{spec:?}: {e}");
    }
    assert!(base.compile(Origin::Config).is_ok());
}

#[test]
fn decisions_read_as_sentences() {
    let d = decide(552, Some("5.2.2"), "over quota");
    assert_eq!(
        d.describe(),
        "defer (mailboxfull), retry in 1h; bounces soft (mailboxfull) when the maximum age runs out"
    );
    let b = decide(421, Some("4.7.28"), "unusual rate");
    assert_eq!(
        b.describe(),
        "defer (speeding), retry in 30m; expires when the maximum age runs out; the destination backs off for 30m"
    );
    assert_eq!(human(Duration::from_secs(5400)), "1h30m");
    assert_eq!(Phase::parse("HELO"), Some(Phase::Ehlo));
    assert_eq!(Phase::parse("end-of-data"), Some(Phase::EndOfData));
}
