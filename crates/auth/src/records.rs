//! The DNS records a sending domain publishes, and the check of each
//! against what DNS holds.

use crate::{Algorithm, GeneratedKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Spf,
    Dkim,
    Dmarc,
    ReturnPath,
    Tracking,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spf => "spf",
            Self::Dkim => "dkim",
            Self::Dmarc => "dmarc",
            Self::ReturnPath => "return_path",
            Self::Tracking => "tracking",
        }
    }
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub kind: RecordKind,
    /// The owner name, without a trailing dot.
    pub name: String,
    /// "TXT" or "CNAME".
    pub rtype: &'static str,
    pub value: String,
}

/// What the platform offers every domain: where SPF includes point, where
/// DMARC reports go, and the hosts the CNAMEs point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlan {
    /// The domain to `include:` in SPF (it lists the platform's addresses).
    pub spf_include: String,
    /// Where DMARC aggregate reports go (`rua`).
    pub dmarc_rua: String,
    /// The platform's bounce domain; `<return_path_label>.<domain>` points there.
    pub bounce_domain: String,
    pub return_path_label: String,
    /// The tracking host; `<tracking_label>.<domain>` points there.
    pub tracking_host: String,
    pub tracking_label: String,
}

impl RecordPlan {
    /// Every record `domain` publishes, DKIM keys included.
    pub fn records(&self, domain: &str, keys: &[(String, Algorithm, String)]) -> Vec<DnsRecord> {
        let mut out = vec![DnsRecord {
            kind: RecordKind::Spf,
            name: domain.to_owned(),
            rtype: "TXT",
            value: format!("v=spf1 include:{} ~all", self.spf_include),
        }];
        for (selector, algorithm, public) in keys {
            out.push(DnsRecord {
                kind: RecordKind::Dkim,
                name: format!("{selector}._domainkey.{domain}"),
                rtype: "TXT",
                value: GeneratedKey {
                    algorithm: *algorithm,
                    private_der: Vec::new(),
                    public_b64: public.clone(),
                }
                .dns_record(),
            });
        }
        out.push(DnsRecord {
            kind: RecordKind::Dmarc,
            name: format!("_dmarc.{domain}"),
            rtype: "TXT",
            value: format!("v=DMARC1; p=none; rua=mailto:{}", self.dmarc_rua),
        });
        out.push(DnsRecord {
            kind: RecordKind::ReturnPath,
            name: format!("{}.{domain}", self.return_path_label),
            rtype: "CNAME",
            value: self.bounce_domain.clone(),
        });
        out.push(DnsRecord {
            kind: RecordKind::Tracking,
            name: format!("{}.{domain}", self.tracking_label),
            rtype: "CNAME",
            value: self.tracking_host.clone(),
        });
        out
    }
}

/// How a published record compares with the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Ok,
    Missing,
    /// Something is published, but not what is needed: what was found.
    Wrong(String),
}

fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.split_whitespace().collect::<String>()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Compares what DNS holds (`found`: every TXT string of the name, or the
/// CNAME target) with `expected`. SPF and DMARC records a domain already
/// has are accepted when they do the job (the include is there; a policy
/// exists), since a domain has one SPF and one DMARC record to share.
pub fn check_record(expected: &DnsRecord, found: &[String]) -> Check {
    match expected.kind {
        RecordKind::Spf => {
            let spf: Vec<&String> = found
                .iter()
                .filter(|t| t.to_ascii_lowercase().starts_with("v=spf1"))
                .collect();
            let include = expected
                .value
                .split_whitespace()
                .find(|t| t.starts_with("include:"))
                .unwrap_or_default();
            match spf.as_slice() {
                [] => Check::Missing,
                [one]
                    if one
                        .split_whitespace()
                        .any(|t| t.eq_ignore_ascii_case(include) || t.eq_ignore_ascii_case(&format!("+{include}"))) =>
                {
                    Check::Ok
                }
                [one] => Check::Wrong((*one).clone()),
                many => Check::Wrong(format!("{} SPF records (RFC 7208 allows one)", many.len())),
            }
        }
        RecordKind::Dkim => {
            let want = tags(&expected.value);
            let dkim: Vec<&String> = found.iter().filter(|t| t.contains("p=")).collect();
            match dkim.first() {
                None => Check::Missing,
                Some(got) => {
                    let have = tags(got);
                    if tag(&have, "p") == tag(&want, "p")
                        && tag(&have, "k").unwrap_or("rsa") == tag(&want, "k").unwrap_or("rsa")
                    {
                        Check::Ok
                    } else {
                        Check::Wrong((*got).clone())
                    }
                }
            }
        }
        RecordKind::Dmarc => {
            let dmarc: Vec<&String> = found
                .iter()
                .filter(|t| t.to_ascii_uppercase().starts_with("V=DMARC1"))
                .collect();
            match dmarc.as_slice() {
                [] => Check::Missing,
                [one] if tag(&tags(one), "p").is_some() => Check::Ok,
                [one] => Check::Wrong((*one).clone()),
                many => Check::Wrong(format!("{} DMARC records (RFC 9989 allows one)", many.len())),
            }
        }
        RecordKind::ReturnPath | RecordKind::Tracking => match found.first() {
            None => Check::Missing,
            Some(target) if target.trim_end_matches('.').eq_ignore_ascii_case(&expected.value) => Check::Ok,
            Some(target) => Check::Wrong(target.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RecordPlan {
        RecordPlan {
            spf_include: "_spf.mta.test".into(),
            dmarc_rua: "dmarc@mta.test".into(),
            bounce_domain: "bounces.mta.test".into(),
            return_path_label: "bounces".into(),
            tracking_host: "track.mta.test".into(),
            tracking_label: "track".into(),
        }
    }

    #[test]
    fn every_record_is_planned() {
        let records = plan().records("acme.test", &[("hrld20261123r".into(), Algorithm::Rsa, "MIIB".into())]);
        let lines: Vec<String> = records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.value))
            .collect();
        assert_eq!(
            lines,
            [
                "acme.test TXT v=spf1 include:_spf.mta.test ~all",
                "hrld20261123r._domainkey.acme.test TXT v=DKIM1; k=rsa; p=MIIB",
                "_dmarc.acme.test TXT v=DMARC1; p=none; rua=mailto:dmarc@mta.test",
                "bounces.acme.test CNAME bounces.mta.test",
                "track.acme.test CNAME track.mta.test",
            ]
        );
    }

    #[test]
    fn published_records_are_judged_on_what_matters() {
        let r = plan().records("acme.test", &[("s".into(), Algorithm::Ed25519, "KEY".into())]);
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        // SPF: the include within the domain's own record is enough.
        assert_eq!(
            check_record(&r[0], &s(&["v=spf1 ip4:192.0.2.1 include:_spf.mta.test -all"])),
            Check::Ok
        );
        assert_eq!(check_record(&r[0], &s(&["google-site-verification=x"])), Check::Missing);
        assert!(matches!(check_record(&r[0], &s(&["v=spf1 -all"])), Check::Wrong(_)));
        assert!(matches!(
            check_record(&r[0], &s(&["v=spf1 include:_spf.mta.test ~all", "v=spf1 -all"])),
            Check::Wrong(_)
        ));
        // DKIM: the key must be ours; spaces in the published value do not matter.
        assert_eq!(check_record(&r[1], &s(&["v=DKIM1; k=ed25519; p=K E Y"])), Check::Ok);
        assert!(matches!(
            check_record(&r[1], &s(&["v=DKIM1; k=ed25519; p=OTHER"])),
            Check::Wrong(_)
        ));
        assert!(
            matches!(check_record(&r[1], &s(&["v=DKIM1; p=KEY"])), Check::Wrong(_)),
            "k=rsa by default"
        );
        assert_eq!(check_record(&r[1], &[]), Check::Missing);
        // DMARC: any valid policy will do.
        assert_eq!(
            check_record(&r[2], &s(&["v=DMARC1; p=reject; rua=mailto:x@y.test"])),
            Check::Ok
        );
        assert!(matches!(
            check_record(&r[2], &s(&["v=DMARC1; rua=mailto:x@y.test"])),
            Check::Wrong(_)
        ));
        // CNAMEs: exactly the target, with or without the final dot.
        assert_eq!(check_record(&r[3], &s(&["bounces.mta.test."])), Check::Ok);
        assert!(matches!(check_record(&r[4], &s(&["elsewhere.test"])), Check::Wrong(_)));
    }
}
