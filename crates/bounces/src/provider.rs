//! What the large mailbox providers mean by their own words and codes.
//!
//! Their answers follow documented, provider-specific conventions (Orange's
//! `OFR_416` numbers, Cox's and Spectrum's `AUP#` codes, Microsoft's
//! `5.7.5xx`, Yahoo's `[TSS04]`) that the generic tables would misread. A
//! provider is recognised by the recipient's domain or by the name of the
//! host that answered; its table is consulted before the generic one.

use crate::Reason;
use crate::classify::Fact;
use crate::util::matches_any;

struct Provider {
    /// Domain or host-name suffixes.
    hosts: &'static [&'static str],
    /// Phrases (lower-case, `*` = later on) and their reasons, in order.
    phrases: &'static [(&'static str, Reason)],
    /// A reader for coded answers (`LPN007_416`, `AUP#1260`).
    codes: Option<fn(&str) -> Option<Reason>>,
}

const PROVIDERS: &[Provider] = &[
    Provider {
        hosts: &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            ".onmicrosoft.com",
            ".exchangelabs.com",
        ],
        phrases: &[
            ("does not pass dmarc verification", Reason::AuthFailure),
            ("doesn't meet the required authentication level", Reason::AuthFailure),
            ("must pass either spf or dkim", Reason::AuthFailure),
            ("sender policy framework violation", Reason::AuthFailure),
            ("rate limited due to ip reputation", Reason::BadReputation),
            ("banned sending ip", Reason::Blocked),
            ("using customer block list", Reason::Blocked),
            ("access denied, banned sender", Reason::Blocked),
            ("access denied, bad helo", Reason::Blocked),
            ("access denied, rejected by recipient", Reason::Blocked),
            ("part of their network is on our block list", Reason::Blocked),
            ("must have a reverse dns record", Reason::Blocked),
            ("recipientnotfound", Reason::UserUnknown),
            ("recipient not found by smtp address lookup", Reason::UserUnknown),
            ("requested action not taken: mailbox unavailable", Reason::UserUnknown),
            ("recipient address rejected: access denied", Reason::UserUnknown),
            ("returned unknown recipient", Reason::UserUnknown),
            ("message expired", Reason::Expired),
            ("recipsizelimit", Reason::MesgTooBig),
            ("starttls is required to send mail", Reason::FailedStartTls),
        ],
        codes: None,
    },
    Provider {
        hosts: &[".yahoodns.net"],
        phrases: &[
            ("yahoo requires all senders to authenticate", Reason::AuthFailure),
            ("because the ip is in spamhaus's list", Reason::Blocked),
            ("not accepted from ip addresses on spamhaus xbl", Reason::Blocked),
            ("relaying denied for ", Reason::NoRelaying),
            ("headers are not rfc compliant", Reason::NotCompliantRfc),
            ("not accepted for policy reasons", Reason::PolicyViolation),
            (
                "temporarily deferred due to unexpected volume or user complaints",
                Reason::Rejected,
            ),
            ("due to unresolvable rfc.5321", Reason::Rejected),
            (" will be permanently deferred", Reason::Rejected),
            ("user is receiving mail too quickly", Reason::Speeding),
            (" is no longer valid.", Reason::Suspend),
            ("this mailbox is disabled", Reason::Suspend),
            ("max message per connection reached", Reason::TooManyConn),
            ("dd this user doesn't have a ", Reason::UserUnknown),
            ("mailbox not found", Reason::UserUnknown),
        ],
        codes: None,
    },
    Provider {
        hosts: &["laposte.net", "orange.fr", "wanadoo.fr"],
        phrases: &[("spf/dns de votre nom de domaine", Reason::AuthFailure)],
        codes: Some(orange),
    },
    Provider {
        hosts: &["qq.com", "foxmail.com"],
        phrases: &[
            ("spf check failed", Reason::AuthFailure),
            ("dmarc check failed", Reason::AuthFailure),
            ("suspected bounce attacks", Reason::Blocked),
            ("suspected spam ip", Reason::Blocked),
            ("connection denied", Reason::Blocked),
            ("message too large", Reason::MesgTooBig),
            ("suspected spam", Reason::Rejected),
            ("mail is rejected by recipients", Reason::Rejected),
            ("spam is embedded in the email", Reason::SpamDetected),
            ("mail content denied", Reason::SpamDetected),
            ("mailbox unavailable or access denined", Reason::Speeding),
            ("frequency of receiving messages is limited", Reason::Speeding),
            ("is a deactivated mailbox", Reason::Suspend),
            ("bad address syntax", Reason::SyntaxError),
            ("frequency limited", Reason::TooManyConn),
            ("mailbox not found", Reason::UserUnknown),
        ],
        codes: None,
    },
    Provider {
        hosts: &["cox.net"],
        phrases: &[
            ("too many bad commands from", Reason::Blocked),
            ("too many invalid recipients", Reason::Blocked),
            ("dns check failure - try again later", Reason::RequirePtr),
            ("rejected - no rdns", Reason::RequirePtr),
            ("esmtp no data before greeting", Reason::PolicyViolation),
            ("attachment extension is forbidden", Reason::PolicyViolation),
            ("esmtp server temporarily not available", Reason::SystemError),
            ("too many sessions from", Reason::TooManyConn),
            ("requested action aborted: try again later", Reason::TooManyConn),
            ("message threshold exceeded", Reason::TooManyConn),
            ("recipient rejected", Reason::UserUnknown),
            ("sender rejected", Reason::Rejected),
        ],
        codes: Some(cox),
    },
    Provider {
        hosts: &["charter.net", "spectrum.net", "rr.com"],
        phrases: &[],
        codes: Some(spectrum),
    },
    Provider {
        hosts: &[".messagelabs.com"],
        phrases: &[
            ("turn on smtp authentication", Reason::SecurityError),
            ("no such user", Reason::UserUnknown),
            ("user unknown", Reason::UserUnknown),
        ],
        codes: None,
    },
    Provider {
        // KDDI (au): a domain filter refuses with an empty address.
        hosts: &["ezweb.ne.jp", "au.com", ".ezweb.ne.jp"],
        phrases: &[
            ("550 : user unknown", Reason::Filtered),
            ("<>: user unknown", Reason::Filtered),
            ("was rejected by a remote mail server", Reason::Filtered),
        ],
        codes: None,
    },
    Provider {
        hosts: &[".mimecast.com"],
        phrases: &[
            ("spf sender invalid - envelope rejected", Reason::AuthFailure),
            ("dkim sender invalid - envelope rejected", Reason::AuthFailure),
            ("dmarc sender invalid - envelope rejected", Reason::AuthFailure),
            ("internal resources are temporarily unavailable", Reason::BadReputation),
            ("local ct ip reputation", Reason::BadReputation),
            ("sender address blocked", Reason::Blocked),
            ("ip temporarily blacklisted", Reason::Blocked),
            ("this route requires", Reason::FailedStartTls),
            ("maximum email size exceeded", Reason::MesgTooBig),
            ("mail loop detected", Reason::NetworkError),
            ("open relay not allowed", Reason::NoRelaying),
            ("open relay is not allowed", Reason::NoRelaying),
            ("account inbounds disabled", Reason::NotAccept),
            ("anti-spoofing policy", Reason::PolicyViolation),
            ("content examination policy", Reason::PolicyViolation),
            ("host network not allowed", Reason::PolicyViolation),
            ("host network, not allowed", Reason::PolicyViolation),
            ("envelope blocked", Reason::Rejected),
            ("blocked senders", Reason::Rejected),
            ("block policy for envelope from", Reason::Rejected),
            ("incorrect authentication data", Reason::SecurityError),
            ("submitter failed to authenticate", Reason::SecurityError),
            ("unable to process", Reason::SystemError),
            ("message ended early", Reason::SystemError),
            ("account service is temporarily unavailable", Reason::TooManyConn),
            ("exceeding outbound thread limit", Reason::TooManyConn),
            ("invalid recipient", Reason::UserUnknown),
            ("user unknown", Reason::UserUnknown),
            ("virus signature", Reason::VirusDetected),
            ("mcspamsignature", Reason::VirusDetected),
        ],
        codes: None,
    },
];

/// Orange and La Poste end their answers with a label and a number
/// (`LPN007_416`, `OFR_506 [506]`); the number names the reason.
fn orange(text: &str) -> Option<Reason> {
    let t = text.replace('_', "-");
    let at = ["lpnaaa", "lpn", "ofr", "ouk"]
        .iter()
        .filter_map(|l| t.rfind(l).map(|i| (i, l.len())))
        .max()?;
    let tail = &t[at.0 + at.1..];
    let word = tail.split_whitespace().next().unwrap_or("");
    let digits: String = word
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let n = &digits[digits.len().saturating_sub(3)..];
    use Reason::*;
    Some(match n {
        "101" | "102" | "103" | "510" | "999" => Blocked,
        "104" => TooManyConn,
        "305" | "402" => SecurityError,
        "401" | "517" => AuthFailure,
        "403" | "405" | "415" | "421" => Rejected,
        "416" => UserUnknown,
        "417" => MailboxFull,
        "420" | "426" => Suspend,
        "505" => SystemError,
        "506" => SpamDetected,
        "514" => MesgTooBig,
        "630" => PolicyViolation,
        _ => return None,
    })
}

/// Cox names the cause after `AUP#`.
fn cox(text: &str) -> Option<Reason> {
    let i = text.find("aup#")? + 4;
    let code: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    use Reason::*;
    Some(match code.as_str() {
        "cxbl" | "cdrbl" => Blocked,
        c if c.starts_with("ipbl") => Blocked,
        c if c.starts_with("urlbl") => SpamDetected,
        "cxdns" => RequirePtr,
        "cxsndr" => AuthFailure,
        "cxsmtp" => Rejected,
        "cxcnct" | "cxmxrt" => TooManyConn,
        "cxthrt" | "cxmj" => SecurityError,
        _ => return None,
    })
}

/// Spectrum (Charter) answers with `AUP#I1260`-style numbers.
fn spectrum(text: &str) -> Option<Reason> {
    let i = text.find("aup#")? + 4;
    let digits: String = text[i..]
        .chars()
        .take(8)
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let n: u16 = digits.get(..4)?.parse().ok()?;
    use Reason::*;
    Some(match n {
        1000 | 1200..=1250 => Blocked,
        1010..=1080 | 1500 | 1520 => Rejected,
        1090 => SystemError,
        1100..=1150 => RequirePtr,
        1160..=1190 | 1560 => PolicyViolation,
        1260 => NetworkError,
        1300..=1340 => TooManyConn,
        1350..=1490 | 1540 | 1550 | 1580 => Speeding,
        1530 => MesgTooBig,
        _ => return None,
    })
}

/// The host names a failure mentions: the recipient's domain, the
/// Remote-MTA, and `host X[…]` in the text.
fn names(f: &Fact, text: &str) -> Vec<String> {
    let mut out = vec![f.recipient.rsplit('@').next().unwrap_or("").to_string()];
    out.extend(f.remote_mta.iter().cloned());
    for (i, _) in text.match_indices("host ") {
        let h: String = text[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
            .collect();
        if h.contains('.') {
            out.push(h);
        }
    }
    out.extend(f.reporter.iter().cloned());
    out
}

/// The reason a known provider's own conventions give, if any.
/// `text` is the fact's diagnostic, folded.
pub(crate) fn reason(f: &Fact, text: &str) -> Option<Reason> {
    if text.is_empty() {
        return None;
    }
    // The recipient's domain first, then the hosts named, then the
    // reporter: the first that belongs to a known provider decides.
    names(f, text).iter().find_map(|n| {
        let p = PROVIDERS.iter().find(|p| {
            p.hosts.iter().any(|h| {
                let h = h.trim_start_matches('.');
                n == h || (n.len() > h.len() && n.ends_with(h) && n.as_bytes()[n.len() - h.len() - 1] == b'.')
            })
        })?;
        if let Some(r) = p.codes.and_then(|c| c(text)) {
            return Some(r);
        }
        p.phrases
            .iter()
            .find(|(ph, _)| matches_any(text, &[ph]))
            .map(|(_, r)| *r)
    })
}
