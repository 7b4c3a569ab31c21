//! MX: where mail to the domain goes. A sending domain needs somewhere to
//! receive bounces, replies and the DMARC reports it asks for, or to say
//! plainly (RFC 7505's null MX) that it receives nothing.
//!
//! The raw records are read ([`Resolver::mx`]), not delivery's route:
//! delivery quietly prefers real hosts over a misplaced null MX, a linter
//! must show it.

use herald_dns::{DnsError, Mx, Resolver};

use crate::{CheckKind, Finding, Findings, MxCheck, MxHostCheck, Severity};

pub(crate) async fn check(resolver: &dyn Resolver, domain: &str) -> (MxCheck, Vec<Finding>) {
    let mut findings = Findings::new(CheckKind::Mx);
    let mut report = MxCheck {
        ok: true,
        summary: String::new(),
        null_mx: false,
        hosts: Vec::new(),
    };
    let records = match resolver.mx(domain).await {
        Ok(records) => records,
        Err(DnsError::NoRecords(..)) => Vec::new(),
        Err(DnsError::NoSuchName(_)) => {
            findings.add(
                Severity::Error,
                "mx.nxdomain",
                format!(
                    "{domain} does not exist in DNS (NXDOMAIN): receivers refuse mail from it as from an unknown \
                     domain, and nothing can reach it. Check the name, or publish its records."
                ),
            );
            return finish(report, "the domain does not exist".to_owned(), findings);
        }
        Err(e) => {
            findings.dns_error(domain, &e);
            return finish(report, "DNS did not answer".to_owned(), findings);
        }
    };
    if records.is_empty() {
        let has_address = resolver.addresses(domain).await.is_ok();
        findings.add(
            Severity::Warning,
            "mx.missing",
            if has_address {
                format!(
                    "{domain} has no MX record, so mail to it goes to its own address (the implicit MX, RFC 5321 \
                     §5.1), where usually no mail server listens: bounces and DMARC reports sent to {domain} may be \
                     lost. Publish MX records, or a null MX (\"0 .\") if it receives no mail."
                )
            } else {
                format!(
                    "{domain} has no MX record and no address, so nothing can be delivered to it: bounces, replies \
                     and DMARC reports sent to {domain} are lost. Publish MX records, or a null MX (\"0 .\") to say \
                     it receives no mail."
                )
            },
        );
        return finish(report, "no MX records".to_owned(), findings);
    }
    let (nulls, mut hosts): (Vec<Mx>, Vec<Mx>) = records.into_iter().partition(|m| m.exchange.is_empty());
    if !nulls.is_empty() && hosts.is_empty() && nulls.len() == 1 {
        report.null_mx = true;
        findings.add(
            Severity::Info,
            "mx.null",
            format!(
                "{domain} publishes a null MX (RFC 7505): it accepts no mail, and senders bounce mail to it at once. \
                 That suits a domain that only sends, as long as its bounces and DMARC reports go elsewhere."
            ),
        );
        return finish(report, "null MX: accepts no mail".to_owned(), findings);
    }
    if !nulls.is_empty() {
        findings.add(
            Severity::Error,
            "mx.null_mixed",
            format!(
                "{domain} publishes a null MX (\".\") beside other MX records; RFC 7505 §3 says a null MX must be the \
                 only one, and senders disagree on what this means. Remove the null MX, or every other MX record."
            ),
        );
    }
    // Preference order, ties in the order received (as delivery tries them).
    hosts.sort_by_key(|m| m.preference);
    for mx in hosts {
        report.hosts.push(host(resolver, domain, mx, &mut findings).await);
    }
    let summary = format!(
        "{} MX host{}: {}",
        report.hosts.len(),
        if report.hosts.len() == 1 { "" } else { "s" },
        report
            .hosts
            .iter()
            .map(|h| format!("{} ({})", h.host, h.preference))
            .collect::<Vec<_>>()
            .join(", ")
    );
    finish(report, summary, findings)
}

fn finish(mut report: MxCheck, summary: String, findings: Findings) -> (MxCheck, Vec<Finding>) {
    report.ok = findings.ok();
    report.summary = summary;
    (report, findings.into_vec())
}

/// One MX host: a name with addresses, not an alias nor an address.
async fn host(resolver: &dyn Resolver, domain: &str, mx: Mx, findings: &mut Findings) -> MxHostCheck {
    let mut checked = MxHostCheck {
        preference: mx.preference,
        host: mx.exchange.clone(),
        addresses: Vec::new(),
    };
    let name = mx.exchange;
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    if literal.parse::<std::net::IpAddr>().is_ok() {
        findings.add(
            Severity::Error,
            "mx.ip_literal",
            format!(
                "{domain}'s MX record points at {name}, an IP address; an MX must name a host (RFC 5321 §5.1), and \
                 most senders look {name} up as a name and find nothing. Point it at a host name with an A record \
                 for that address."
            ),
        );
        return checked;
    }
    match resolver.addresses(&name).await {
        Ok(addresses) => checked.addresses = addresses.iter().map(ToString::to_string).collect(),
        Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => findings.add(
            Severity::Error,
            "mx.no_address",
            format!(
                "{domain}'s MX host {name} has no address (A or AAAA record), so mail sent to it cannot be \
                 delivered there. Publish its addresses or remove the MX record."
            ),
        ),
        Err(e) => findings.dns_error(&name, &e),
    }
    // RFC 2181 §10.3: an MX must not name an alias. Only a CNAME found
    // counts; any failure here is the lookup above's business.
    if let Ok(target) = resolver.cname(&name).await {
        findings.add(
            Severity::Warning,
            "mx.cname",
            format!(
                "{domain}'s MX host {name} is an alias (CNAME to {target}); RFC 2181 §10.3 forbids that and some \
                 senders refuse it. Point the MX at {target} directly."
            ),
        );
    }
    checked
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use herald_dns::StaticResolver;

    use super::*;
    use crate::test_support::codes;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn hosts_with_addresses_are_clean_and_ordered() {
        let r = StaticResolver::new()
            .mx("acme.test", 20, "mx2.acme.test")
            .mx("acme.test", 10, "mx1.acme.test")
            .ip("mx1.acme.test", ip("192.0.2.1"))
            .ip("mx1.acme.test", ip("2001:db8::1"))
            .ip("mx2.acme.test", ip("192.0.2.2"));
        let (report, findings) = check(&r, "acme.test").await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(report.ok);
        assert_eq!(report.summary, "2 MX hosts: mx1.acme.test (10), mx2.acme.test (20)");
        assert_eq!(report.hosts[0].addresses, vec!["192.0.2.1", "2001:db8::1"]);
        assert!(!report.null_mx);
    }

    #[tokio::test]
    async fn no_mx_is_a_warning_either_way() {
        let r = StaticResolver::new()
            .ip("direct.test", ip("192.0.2.1"))
            .txt("txtonly.test", "v=spf1 -all");
        let (report, findings) = check(&r, "direct.test").await;
        assert_eq!(codes(&findings), vec![("mx.missing", Severity::Warning)]);
        assert!(findings[0].message.contains("implicit MX"));
        assert!(report.ok);
        let (_, findings) = check(&r, "txtonly.test").await;
        assert_eq!(codes(&findings), vec![("mx.missing", Severity::Warning)]);
        assert!(findings[0].message.contains("no address"));
        let (report, findings) = check(&r, "nowhere.test").await;
        assert_eq!(codes(&findings), vec![("mx.nxdomain", Severity::Error)]);
        assert!(!report.ok);
    }

    #[tokio::test]
    async fn null_mx_alone_is_information_and_mixed_is_an_error() {
        let r = StaticResolver::new()
            .mx("null.test", 0, ".")
            .mx("mixed.test", 0, ".")
            .mx("mixed.test", 10, "mx.mixed.test")
            .ip("mx.mixed.test", ip("192.0.2.1"));
        let (report, findings) = check(&r, "null.test").await;
        assert_eq!(codes(&findings), vec![("mx.null", Severity::Info)]);
        assert!(report.null_mx);
        assert!(report.hosts.is_empty());
        let (report, findings) = check(&r, "mixed.test").await;
        assert_eq!(codes(&findings), vec![("mx.null_mixed", Severity::Error)]);
        assert!(!report.null_mx);
        assert_eq!(report.hosts.len(), 1);
    }

    #[tokio::test]
    async fn hosts_must_be_names_with_addresses() {
        let r = StaticResolver::new()
            .mx("bad.test", 10, "192.0.2.1")
            .mx("bad.test", 20, "gone.bad.test")
            .mx("bad.test", 30, "alias.bad.test")
            .mx("bad.test", 40, "down.bad.test")
            .cname("alias.bad.test", "real.bad.test")
            .ip("alias.bad.test", ip("192.0.2.9"))
            .fail("down.bad.test");
        let (report, findings) = check(&r, "bad.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("mx.ip_literal", Severity::Error),
                ("mx.no_address", Severity::Error),
                ("mx.cname", Severity::Warning),
                ("mx.dns_error", Severity::Error)
            ]
        );
        assert_eq!(report.hosts.len(), 4);
        assert!(!report.ok);
    }

    #[tokio::test]
    async fn a_failing_lookup_is_a_dns_error() {
        let r = StaticResolver::new().fail("down.test");
        let (report, findings) = check(&r, "down.test").await;
        assert_eq!(codes(&findings), vec![("mx.dns_error", Severity::Error)]);
        assert_eq!(report.summary, "DNS did not answer");
    }
}
