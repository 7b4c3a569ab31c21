//! Rules as operators write them (`[[response_rules]]`), and their checked,
//! compiled form.

use std::time::Duration;

use herald_bounces::Reason;
use herald_types::BounceClass;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::Phase;

/// A rule as written in TOML. Every field but `name` and `action` is
/// optional; a rule matches an answer when every field it sets matches.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// `451`, or a pattern with `x` for any digit: `"4xx"`, `"45x"`; or a
    /// list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    /// `"4.7.650"`, or with wildcards per part: `"4.7.*"`, `"4.7.5xx"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<String>,
    /// A regular expression, matched case-insensitively against the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// connect, greeting, ehlo, starttls, mail, rcpt, data, end_of_data,
    /// dns, queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<OneOrMany>,
    /// The envelope sender's domain: `"example.com"` or `"*.example.com"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_domain: Option<OneOrMany>,
    /// The recipient's domain, same patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<OneOrMany>,
    /// The destination's name (a `[[destinations]]` entry or a preset:
    /// `"google"`, `"microsoft"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<OneOrMany>,
    /// delivered | defer | bounce | suspend | backoff.
    pub action: String,
    /// defer: retry after this long (else the reason's retry ladder);
    /// backoff: the destination pauses this long, and the message waits as
    /// long; suspend: how long the destination is suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A reason of Sisimai's taxonomy (`mailboxfull`, `speeding`, ...);
    /// else the classifier names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// bounce: hard or soft (else hard only for reasons that mean the
    /// address cannot work). defer: the class it bounces with once it can
    /// wait no longer; unset, it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// defer: bounce (with `class`, or hard) once the message is this old,
    /// before the maximum age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub give_up_after: Option<String>,
}

/// A number or a pattern.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum CodeSpec {
    Number(u16),
    Pattern(String),
    List(Vec<CodeSpec>),
}

/// One value or a list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// A rule that cannot be used: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule's name (or its position when it has none).
    pub rule: String,
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule {:?}: {}: {}", self.rule, self.field, self.message)
    }
}

impl std::error::Error for RuleError {}

/// Three digits where `x` stands for any digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digits(Vec<Option<u8>>);

impl Digits {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.len() > 3 {
            return None;
        }
        s.bytes()
            .map(|b| match b {
                b'0'..=b'9' => Some(Some(b - b'0')),
                b'x' | b'X' => Some(None),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    fn matches(&self, value: &str) -> bool {
        value.len() == self.0.len()
            && value
                .bytes()
                .zip(&self.0)
                .all(|(b, want)| b.is_ascii_digit() && want.is_none_or(|d| d == b - b'0'))
    }
}

/// An enhanced status code pattern: three parts, each `*` or digits with `x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enhanced([Option<Digits>; 3]);

impl Enhanced {
    fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let [class, subject, detail] = parts.as_slice() else {
            return None;
        };
        let part = |p: &str| -> Option<Option<Digits>> {
            if p == "*" {
                Some(None)
            } else {
                Digits::parse(p).map(Some)
            }
        };
        let class = part(class)?;
        if class.as_ref().is_some_and(|d| d.0.len() != 1) {
            return None;
        }
        Some(Self([class, part(subject)?, part(detail)?]))
    }

    fn matches(&self, code: &str) -> bool {
        let parts: Vec<&str> = code.split('.').collect();
        parts.len() == 3
            && self
                .0
                .iter()
                .zip(&parts)
                .all(|(want, got)| want.as_ref().is_none_or(|d| d.matches(got)))
    }
}

/// `example.com` (that domain) or `*.example.com` (its subdomains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomainPattern {
    Exact(String),
    Below(String),
}

impl DomainPattern {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Some(rest) = s.strip_prefix("*.") {
            return valid_name(rest).then(|| Self::Below(format!(".{rest}")));
        }
        if s == "*" {
            return Some(Self::Below(String::new()));
        }
        valid_name(&s).then_some(Self::Exact(s))
    }

    pub(crate) fn matches(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        match self {
            Self::Exact(d) => domain.eq_ignore_ascii_case(d),
            Self::Below(suffix) => {
                domain.len() > suffix.len()
                    && domain.is_char_boundary(domain.len() - suffix.len())
                    && domain[domain.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// What a rule does with the answers it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Delivered,
    Defer {
        retry: Option<Duration>,
        give_up_after: Option<Duration>,
        /// The class it bounces with once it can wait no longer; `None`:
        /// it expires.
        then: Option<BounceClass>,
    },
    Bounce {
        class: Option<BounceClass>,
    },
    /// No connection to the destination for the duration; the message
    /// waits as long.
    Suspend(Duration),
    /// The destination slows down and pauses for the duration; the message
    /// waits as long.
    Backoff(Duration),
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub(crate) codes: Vec<Digits>,
    pub(crate) enhanced: Option<Enhanced>,
    pub(crate) text: Option<Regex>,
    pub(crate) phases: Vec<Phase>,
    pub(crate) sender_domains: Vec<DomainPattern>,
    pub(crate) domains: Vec<DomainPattern>,
    pub(crate) providers: Vec<String>,
    pub action: Action,
    pub reason: Option<Reason>,
    /// Where it comes from: the configuration, or Herald's defaults.
    pub origin: crate::Origin,
    /// The rule as written, for listings.
    pub spec: RuleSpec,
}

/// The largest compiled form of one text pattern.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The reason with this name (`mailboxfull`), in any case.
pub fn reason_named(name: &str) -> Option<Reason> {
    let name = name.trim().to_ascii_lowercase();
    Reason::ALL.into_iter().find(|r| r.as_str() == name)
}

fn class_named(name: &str) -> Option<BounceClass> {
    match name.trim().to_ascii_lowercase().as_str() {
        "hard" => Some(BounceClass::Hard),
        "soft" => Some(BounceClass::Soft),
        _ => None,
    }
}

fn code_patterns(spec: &CodeSpec, out: &mut Vec<Digits>) -> Result<(), String> {
    match spec {
        CodeSpec::Number(n) if (200..=599).contains(n) => {
            out.extend(Digits::parse(&n.to_string()));
            Ok(())
        }
        CodeSpec::Number(n) => Err(format!("{n} is not a reply code (200-599)")),
        CodeSpec::Pattern(p) => match Digits::parse(p) {
            Some(d) if d.0.len() == 3 && d.0[0].is_none_or(|c| (2..=5).contains(&c)) => {
                out.push(d);
                Ok(())
            }
            _ => Err(format!(
                "{p:?} is not a reply code or a pattern such as \"4xx\" or \"45x\""
            )),
        },
        CodeSpec::List(list) if list.is_empty() => Err("an empty list".into()),
        CodeSpec::List(list) => list.iter().try_for_each(|c| match c {
            CodeSpec::List(_) => Err("a list inside a list".into()),
            other => code_patterns(other, out),
        }),
    }
}

impl RuleSpec {
    /// Checks every field; the error names the first one that is wrong.
    pub fn compile(&self, origin: crate::Origin) -> Result<Rule, RuleError> {
        let name = self.name.trim().to_owned();
        let err = |field: &'static str, message: String| RuleError {
            rule: name.clone(),
            field,
            message,
        };
        if name.is_empty() {
            return Err(err("name", "a rule needs a name".into()));
        }
        let mut codes = Vec::new();
        if let Some(spec) = &self.code {
            code_patterns(spec, &mut codes).map_err(|m| err("code", m))?;
        }
        let enhanced = match &self.enhanced {
            None => None,
            Some(e) => Some(Enhanced::parse(e).ok_or_else(|| {
                err(
                    "enhanced",
                    format!("{e:?} is not an enhanced status code or a pattern such as \"4.7.*\" or \"4.7.5xx\""),
                )
            })?),
        };
        let text = match &self.text {
            None => None,
            Some(t) => Some(
                RegexBuilder::new(t)
                    .case_insensitive(true)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| err("text", format!("not a usable regular expression: {e}")))?,
            ),
        };
        let phases = match &self.phase {
            None => Vec::new(),
            Some(p) => p
                .items()
                .iter()
                .map(|s| {
                    Phase::parse(s).ok_or_else(|| {
                        err(
                            "phase",
                            format!(
                                "{s:?} is not a phase (connect, greeting, ehlo, starttls, mail, rcpt, data, end_of_data, dns, queue)"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let domains_of = |field: &'static str, list: &Option<OneOrMany>| -> Result<Vec<DomainPattern>, RuleError> {
            list.as_ref().map_or(Ok(Vec::new()), |l| {
                l.items()
                    .iter()
                    .map(|d| {
                        DomainPattern::parse(d).ok_or_else(|| {
                            err(
                                field,
                                format!("{d:?} is not a domain or a pattern such as \"*.example.com\""),
                            )
                        })
                    })
                    .collect()
            })
        };
        let sender_domains = domains_of("sender_domain", &self.sender_domain)?;
        let domains = domains_of("domain", &self.domain)?;
        let providers: Vec<String> = self
            .provider
            .as_ref()
            .map(|p| p.items().iter().map(|s| s.trim().to_ascii_lowercase()).collect())
            .unwrap_or_default();
        if providers.iter().any(String::is_empty) {
            return Err(err("provider", "an empty provider name".into()));
        }
        let duration = |field: &'static str, value: &Option<String>| -> Result<Option<Duration>, RuleError> {
            value
                .as_ref()
                .map(|d| {
                    herald_types::parse_duration(d)
                        .map_err(|e| err(field, e.to_string()))
                        .and_then(|d| {
                            if d.is_zero() {
                                Err(err(field, "must be longer than zero".into()))
                            } else {
                                Ok(d)
                            }
                        })
                })
                .transpose()
        };
        let length = duration("duration", &self.duration)?;
        let give_up_after = duration("give_up_after", &self.give_up_after)?;
        let reason = match &self.reason {
            None => None,
            Some(r) => {
                Some(reason_named(r).ok_or_else(|| err("reason", format!("{r:?} is not a reason Herald knows")))?)
            }
        };
        let class = match &self.class {
            None => None,
            Some(c) => Some(class_named(c).ok_or_else(|| err("class", format!("{c:?} is not hard or soft")))?),
        };
        let needs_duration = |what: &str| err("duration", format!("the {what} action needs a duration"));
        let unused = |field: &'static str, what: &str| err(field, format!("has no meaning for the {what} action"));
        let action = match self.action.trim().to_ascii_lowercase().as_str() {
            "delivered" => Action::Delivered,
            "defer" => Action::Defer {
                retry: length,
                give_up_after,
                then: if give_up_after.is_some() {
                    Some(class.unwrap_or(BounceClass::Hard))
                } else {
                    class
                },
            },
            "bounce" => Action::Bounce { class },
            "suspend" => Action::Suspend(length.ok_or_else(|| needs_duration("suspend"))?),
            "backoff" => Action::Backoff(length.ok_or_else(|| needs_duration("backoff"))?),
            other => {
                return Err(err(
                    "action",
                    format!("{other:?} is not an action (delivered, defer, bounce, suspend, backoff)"),
                ));
            }
        };
        match &action {
            Action::Delivered | Action::Bounce { .. } if length.is_some() => {
                return Err(unused("duration", self.action.trim()));
            }
            Action::Suspend(_) | Action::Backoff(_) if class.is_some() => {
                return Err(unused("class", self.action.trim()));
            }
            Action::Delivered if class.is_some() || reason.is_some() => {
                return Err(unused(if class.is_some() { "class" } else { "reason" }, "delivered"));
            }
            _ => {}
        }
        if give_up_after.is_some() && !matches!(action, Action::Defer { .. }) {
            return Err(unused("give_up_after", self.action.trim()));
        }
        Ok(Rule {
            name,
            codes,
            enhanced,
            text,
            phases,
            sender_domains,
            domains,
            providers,
            action,
            reason,
            origin,
            spec: self.clone(),
        })
    }
}

impl Rule {
    pub(crate) fn matches(&self, answer: &crate::Answer<'_>, ctx: &crate::Context<'_>) -> bool {
        if !self.codes.is_empty() {
            let code = answer.code.to_string();
            if !self.codes.iter().any(|c| c.matches(&code)) {
                return false;
            }
        }
        if let Some(e) = &self.enhanced
            && !answer.enhanced.is_some_and(|got| e.matches(got))
        {
            return false;
        }
        if !self.phases.is_empty() && !answer.phase.is_some_and(|p| self.phases.contains(&p)) {
            return false;
        }
        if !self.sender_domains.is_empty()
            && !ctx
                .sender_domain
                .is_some_and(|d| self.sender_domains.iter().any(|p| p.matches(d)))
        {
            return false;
        }
        if !self.domains.is_empty() && !self.domains.iter().any(|p| p.matches(ctx.recipient_domain)) {
            return false;
        }
        if !self.providers.is_empty()
            && !ctx
                .provider
                .is_some_and(|name| self.providers.iter().any(|p| p.eq_ignore_ascii_case(name)))
        {
            return false;
        }
        // The costliest test last.
        if let Some(re) = &self.text
            && !re.is_match(answer.text)
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_what_they_say() {
        let d = Digits::parse("4xx").unwrap();
        assert!(d.matches("421") && d.matches("451") && !d.matches("521") && !d.matches("42"));
        let e = Enhanced::parse("4.7.5xx").unwrap();
        assert!(e.matches("4.7.500") && e.matches("4.7.599") && !e.matches("4.7.650") && !e.matches("4.7.5"));
        let any = Enhanced::parse("5.*.*").unwrap();
        assert!(any.matches("5.1.1") && any.matches("5.7.26") && !any.matches("4.1.1"));
        assert!(Enhanced::parse("4.7").is_none() && Enhanced::parse("45.7.1").is_none());
        let below = DomainPattern::parse("*.Example.com").unwrap();
        assert!(below.matches("mx.example.COM") && !below.matches("example.com") && !below.matches("badexample.com"));
        let exact = DomainPattern::parse("example.com.").unwrap();
        assert!(exact.matches("EXAMPLE.com") && !exact.matches("a.example.com"));
        assert!(DomainPattern::parse("exa mple.com").is_none() && DomainPattern::parse("").is_none());
    }
}
