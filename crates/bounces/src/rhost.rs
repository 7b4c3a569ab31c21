//! What the large mailbox providers mean by their own words and codes
//! (Sisimai's `rhost` modules): Orange's `OFR_416` numbers, Cox's and
//! Spectrum's `AUP#` labels, Microsoft's `5.7.5xx`, Google's code and
//! phrase pairs. A host is chosen the way `rhost/lib.go` chooses it: by
//! the recipient's domain (a host pattern that ends with it, so
//! `outlook.com` selects `.prod.outlook.com`), then by the remote host,
//! then by the reporting host. Its table speaks before the generic one.

use crate::Reason;
use crate::classify::{Command, Fact};
use crate::tables::rhost::RHOSTS;
use crate::tables::{Rhost, Rule, Style};

/// The remote host whose table applies to `f`, if any.
fn select(f: &Fact, text: &str) -> Option<&'static Rhost> {
    let domain = f.recipient.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    // A pattern that ends with the recipient's domain (`rhost.Name`'s
    // reversed test); a domain of one label would match too much.
    if domain.contains('.')
        && let Some(h) = RHOSTS.iter().find(|h| h.hosts.iter().any(|p| p.ends_with(domain)))
    {
        return Some(h);
    }
    let ends = |name: &str| {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        RHOSTS
            .iter()
            .find(|h| h.hosts.iter().any(|p| !name.is_empty() && name.ends_with(p)))
    };
    let mut remote: Vec<&str> = f.remote_mta.iter().map(String::as_str).collect();
    remote.extend(hosts_named(text));
    remote
        .into_iter()
        .find_map(ends)
        .or_else(|| f.reporter.as_deref().and_then(ends))
}

/// Host names a diagnostic mentions (`host mx.example.com[192.0.2.1]`).
fn hosts_named(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("host ").filter_map(move |(i, _)| {
        let rest = &text[i + 5..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        let h = &rest[..end];
        h.contains('.').then_some(h)
    })
}

/// The reason a known provider's own conventions give, if any. `lower` is
/// the fact's diagnostic folded to lower case, `raw` the same text as
/// written.
pub(crate) fn reason(f: &Fact, lower: &str, raw: &str) -> Option<Reason> {
    if lower.is_empty() {
        return None;
    }
    let host = select(f, lower)?;
    let text = if host.case_sensitive { raw } else { lower };
    let status = f.status.as_deref().unwrap_or("");
    let said = |r: &Rule| r.phrases.iter().any(|p| text.contains(p));
    let by_phrase = || {
        host.rules
            .iter()
            .find(|r| r.labels.is_empty() && r.codes.is_empty() && said(r))
    };
    let found = match host.style {
        Style::Phrases => by_phrase(),
        Style::GSuite => {
            let class = |s: &str| s.as_bytes().first().copied();
            let reply = f.reply_code.map(|c| c.to_string()).unwrap_or_default();
            host.rules.iter().find(|r| {
                let skip = match r.reason {
                    Reason::NetworkError => class(status) == Some(b'5') || class(&reply) == Some(b'5'),
                    Reason::HostUnknown => {
                        matches!(class(status), None | Some(b'4')) || matches!(class(&reply), None | Some(b'4'))
                    }
                    _ => false,
                };
                !skip && said(r)
            })
        }
        Style::Google => {
            let reply = f.reply_code.filter(|c| (200..=599).contains(c))?;
            if status.len() < 5 {
                return None;
            }
            let (r2, s2) = (reply % 100, &status[2..]);
            host.rules.iter().find(|r| {
                r.replies.iter().any(|&c| c % 100 == r2)
                    && r.codes.iter().any(|c| c.get(2..).is_some_and(|c| c.starts_with(s2)))
                    && said(r)
            })
        }
        Style::Microsoft => host
            .rules
            .iter()
            .find(|r| !r.codes.is_empty() && r.codes.iter().any(|c| status_in(status, c)) && said(r))
            .or_else(|| {
                host.rules.iter().find(|r| {
                    !r.labels.is_empty()
                        && f.reply_code.is_some_and(|c| r.replies.contains(&c))
                        && r.labels.iter().any(|l| raw.contains(l))
                })
            }),
        Style::Mimecast => host
            .rules
            .iter()
            .find(|r| f.reply_code.is_some_and(|c| r.replies.contains(&c)) && said(r)),
        Style::Cox => label_after(raw, "AUP#", |c| c == ' ')
            .and_then(|l| host.rules.iter().find(|r| r.labels.contains(&l)))
            .or_else(by_phrase),
        Style::GoDaddy => label_after(raw, " IB", |c| c == ' ')
            .and_then(|l| {
                host.rules
                    .iter()
                    .find(|r| r.labels.iter().any(|x| x.strip_prefix("IB") == Some(l)))
            })
            .or_else(by_phrase),
        Style::Iua => label_after(lower, ".i.ua/err/", |c| c == '/')
            .and_then(|l| host.rules.iter().find(|r| r.labels.contains(&l))),
        Style::Facebook => {
            let at = raw.find('-')?;
            let label = raw.get(at.checked_sub(3)?..at + 3)?;
            host.rules.iter().find(|r| r.labels.contains(&label))
        }
        Style::Spectrum => {
            let code = spectrum_code(lower)?;
            host.rules.iter().find(|r| {
                r.labels.iter().any(|l| match l.split_once('-') {
                    Some((a, b)) => a.parse().is_ok_and(|a: u32| a <= code) && b.parse().is_ok_and(|b: u32| code <= b),
                    None => l.parse() == Ok(code),
                })
            })
        }
        Style::FrancePtt => france_ptt_token(lower)
            .and_then(|token| {
                host.rules.iter().find(|r| {
                    r.labels.iter().any(|l| match l.strip_suffix('X') {
                        Some(stem) => token
                            .char_indices()
                            .last()
                            .is_some_and(|(cut, _)| cut > 0 && token[..cut].ends_with(stem)),
                        None => token.ends_with(l),
                    })
                })
            })
            .or_else(by_phrase),
        Style::NttDocomo => {
            // Exact codes first (5.0.0 is the fallback below, with the
            // command, not a code that decides alone).
            if let Some(r) = host
                .rules
                .iter()
                .find(|r| status != "5.0.0" && r.codes.contains(&status))
            {
                Some(r)
            } else if let Some(r) = by_phrase() {
                Some(r)
            } else if status == "5.0.0" {
                return match f.command {
                    Some(Command::Rcpt) => Some(Reason::UserUnknown),
                    Some(Command::Data) => Some(Reason::Rejected),
                    _ => None,
                };
            } else {
                None
            }
        }
    };
    found.map(|r| r.reason)
}

/// Whether `status` is `code`, or within a `a.b.MIN-a.b.MAX` range.
pub(crate) fn status_in(status: &str, code: &str) -> bool {
    let Some((low, high)) = code.split_once('-') else {
        return status == code;
    };
    let third = |s: &str| s.rsplit('.').next().and_then(|d| d.parse::<u32>().ok());
    let prefix = |s: &str| s.rsplit_once('.').map(|(p, _)| p.to_string());
    let (Some(p), Some(lo), Some(hi), Some(n)) = (prefix(low), third(low), third(high), third(status)) else {
        return false;
    };
    prefix(status).as_deref() == Some(p.as_str()) && (lo..=hi).contains(&n)
}

/// The text between `marker` and the first character `stop` accepts (or
/// the end).
fn label_after<'a>(text: &'a str, marker: &str, stop: impl Fn(char) -> bool) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let end = rest.find(stop).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Spectrum's four-digit code after `AUP#` (`AUP#I1260`).
fn spectrum_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("aup#")? + 4..];
    let mut digits = String::new();
    for c in rest.chars().take(12) {
        if c.is_ascii_digit() {
            digits.push(c);
            if digits.len() == 4 {
                return digits.parse().ok();
            }
        } else {
            digits.clear();
        }
    }
    None
}

/// Orange's and La Poste's token: the word that starts at the last
/// character of the last `LPN`/`OFR`/`OUK` label (`OFR_416 [416]` gives
/// `-416`).
fn france_ptt_token(text: &str) -> Option<String> {
    let t = text.replace('_', "-");
    let (label, at) = ["lpn", "ofr", "ouk"].iter().find_map(|l| t.rfind(l).map(|i| (*l, i)))?;
    let hyphen = t[at..].starts_with(&format!("{label}-"));
    let start = at + label.len() - 1 + usize::from(hyphen);
    Some(t[start..].split_whitespace().next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(rcpt: &str, status: &str, reply: u16) -> Fact {
        Fact {
            recipient: rcpt.into(),
            status: Some(status.into()),
            reply_code: Some(reply),
            ..Fact::default()
        }
    }

    #[test]
    fn hosts_codes_and_labels() {
        let t = "550 5.5.0 mailbox unavailable lpn007_416";
        assert_eq!(
            reason(&fact("a@orange.fr", "5.1.1", 550), t, t),
            Some(Reason::UserUnknown)
        );
        let t = "554 5.7.1 rejected aup#i1260";
        assert_eq!(
            reason(&fact("a@charter.net", "5.7.1", 554), t, t),
            Some(Reason::NetworkError)
        );
        assert!(status_in("5.7.620", "5.7.606-5.7.649"));
        assert!(!status_in("5.7.650", "5.7.606-5.7.649"));
        assert!(!status_in("4.7.620", "5.7.606-5.7.649"));
        // A token that ends in a multi-byte character is read, not split.
        let t = "421 service refused ofr_10\u{e9}";
        assert_eq!(reason(&fact("a@orange.fr", "4.0.0", 421), t, t), None);
        // A domain of one label selects nothing; an unknown host neither.
        assert_eq!(reason(&fact("a@com", "5.1.1", 550), "x", "x"), None);
        assert_eq!(reason(&fact("a@example.org", "5.1.1", 550), "x", "x"), None);
    }
}
