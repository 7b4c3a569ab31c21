//! `herald rules`: what an SMTP answer means under the rules in force.

use herald_mta::shaping::Shaping;
use herald_rules::{Answer, Context, Decision, Phase};
use serde::Serialize;

use crate::cli::RulesCommand;
use crate::config::Config;
use crate::output;

/// Reads "451 4.7.650 text" into its code, enhanced code and text. A
/// multi-line answer ("550-5.1.1 ...\n550 5.1.1 ...") is read as one.
fn parse_answer(s: &str) -> anyhow::Result<(u16, Option<String>, String)> {
    let mut lines = s.trim().lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().ok_or_else(|| anyhow::anyhow!("an empty answer"))?;
    let code: u16 = first
        .get(..3)
        .and_then(|c| c.parse().ok())
        .filter(|c| (200..=599).contains(c))
        .ok_or_else(|| anyhow::anyhow!("{first:?} does not start with a reply code (200-599)"))?;
    let mut texts = Vec::new();
    let mut enhanced = None;
    for line in std::iter::once(first).chain(lines) {
        let rest = line
            .strip_prefix(&code.to_string())
            .map_or(line, |r| r.trim_start_matches(['-', ' ']));
        let mut words = rest.splitn(2, ' ');
        let word = words.next().unwrap_or("");
        let is_enhanced = word.split('.').count() == 3
            && word
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && word.starts_with(['2', '4', '5']);
        if is_enhanced {
            enhanced.get_or_insert_with(|| word.to_owned());
            texts.push(words.next().unwrap_or("").to_owned());
        } else {
            texts.push(rest.to_owned());
        }
    }
    Ok((code, enhanced, texts.join(" ").trim().to_owned()))
}

#[derive(Serialize)]
struct Tested {
    decision: String,
    rule: String,
    origin: &'static str,
    provider: Option<String>,
}

pub fn run(config: &Config, cmd: RulesCommand, json: bool) -> anyhow::Result<()> {
    let rules = &config.delivery.rules;
    match cmd {
        RulesCommand::Test {
            answer,
            phase,
            domain,
            sender_domain,
            provider,
            attempt,
        } => {
            let (code, enhanced, text) = parse_answer(&answer)?;
            let phase = match phase {
                None => None,
                Some(p) => Some(Phase::parse(&p).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--phase {p:?}: expected connect, greeting, ehlo, starttls, mail, rcpt, data, end_of_data or dns"
                    )
                })?),
            };
            let shaping = Shaping::new(config.delivery.destinations.clone(), config.delivery.limits());
            let provider = provider
                .map(|p| p.to_ascii_lowercase())
                .or_else(|| shaping.place(&domain, &[]).site);
            let decision: Decision = rules.decide(
                &Answer {
                    code,
                    enhanced: enhanced.as_deref(),
                    text: &text,
                    phase,
                },
                &Context {
                    sender_domain: sender_domain.as_deref(),
                    recipient_domain: &domain,
                    provider: provider.as_deref(),
                },
                attempt.max(1),
            );
            let tested = Tested {
                decision: decision.describe(),
                rule: decision.rule.clone(),
                origin: decision.origin.as_str(),
                provider,
            };
            if json {
                return output::json(&tested);
            }
            output::line(&tested.decision);
            let origin = match decision.origin {
                herald_rules::Origin::Config => "from the configuration",
                herald_rules::Origin::Default => "a default rule",
                herald_rules::Origin::Classifier => "no rule matched; the bounce classifier decided",
            };
            output::line(&format!("rule: {} ({origin})", tested.rule));
            Ok(())
        }
        RulesCommand::List => {
            let specs: Vec<_> = rules
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "origin": r.origin.as_str(),
                        "rule": r.spec,
                    })
                })
                .collect();
            if json {
                return output::json(&specs);
            }
            for r in rules.rules() {
                let toml = toml::to_string(&r.spec).unwrap_or_default();
                output::line(&format!("# {} rule\n[[response_rules]]\n{toml}", r.origin.as_str()));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_servers_write_them() {
        assert_eq!(
            parse_answer("451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited").unwrap(),
            (
                451,
                Some("4.7.650".into()),
                "The mail server [192.0.2.1] has been temporarily rate limited".into()
            )
        );
        assert_eq!(
            parse_answer("421 Service not available").unwrap(),
            (421, None, "Service not available".into())
        );
        assert_eq!(
            parse_answer(
                "550-5.1.1 The email account that you tried to reach does not exist.\n550 5.1.1 Please try again"
            )
            .unwrap(),
            (
                550,
                Some("5.1.1".into()),
                "The email account that you tried to reach does not exist. Please try again".into()
            )
        );
        assert!(parse_answer("").is_err());
        assert!(parse_answer("hello").is_err());
        assert!(parse_answer("999 x").is_err());
    }
}
