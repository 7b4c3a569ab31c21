//! Where a recipient domain's mail goes: a smarthost route, or the
//! domain's MX hosts, or its own address (implicit MX). Null MX and
//! non-existent domains are answered here, before any connection.

use herald_dns::{DnsError, MailRoute, Resolver};
use herald_types::SmtpAnswer;

use crate::SmarthostRoute;

/// The hosts to try, in order, and on which port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub hosts: Vec<String>,
    pub port: u16,
    /// The domain has no MX: a host without addresses means the domain
    /// cannot receive mail (permanent), not a passing failure.
    pub implicit: bool,
    /// A smarthost route, not the domain's own MX.
    pub smarthost: bool,
    /// The MX records were authenticated by DNSSEC (DANE may apply).
    pub dnssec: bool,
}

impl Target {
    /// The queue this target belongs to: the same set of hosts is one
    /// destination, whichever domains point at it.
    pub fn key(&self) -> String {
        format!("{}:{}", self.hosts.join(","), self.port)
    }
}

/// A decision made without connecting: the answer to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub answer: SmtpAnswer,
    pub permanent: bool,
}

fn refusal(code: u16, enhanced: &str, text: String, permanent: bool) -> Refusal {
    Refusal {
        answer: SmtpAnswer {
            code,
            enhanced: Some(enhanced.to_owned()),
            text,
            phase: "dns".to_owned(),
        },
        permanent,
    }
}

/// Routes mail for `domain`: smarthost routes first (first match wins),
/// else DNS.
pub async fn route(
    domain: &str,
    routes: &[SmarthostRoute],
    resolver: &dyn Resolver,
    port: u16,
) -> Result<Target, Refusal> {
    if let Some(r) = routes
        .iter()
        .find(|r| r.domain == "*" || r.domain.eq_ignore_ascii_case(domain))
    {
        return Ok(Target {
            hosts: vec![r.host.clone()],
            port: r.port,
            implicit: false,
            smarthost: true,
            dnssec: false,
        });
    }
    match resolver.mail_route(domain).await {
        Ok(MailRoute::Exchanges(mx)) => Ok(Target {
            hosts: mx.into_iter().map(|m| m.exchange).collect(),
            port,
            implicit: false,
            smarthost: false,
            dnssec: false,
        }),
        Ok(MailRoute::Implicit) => Ok(Target {
            hosts: vec![domain.to_owned()],
            port,
            implicit: true,
            smarthost: false,
            dnssec: false,
        }),
        Ok(MailRoute::NullMx) => Err(refusal(
            556,
            "5.1.10",
            format!("{domain} accepts no mail (null MX)"),
            true,
        )),
        Err(DnsError::NoSuchName(_)) => Err(refusal(550, "5.1.2", format!("domain {domain} does not exist"), true)),
        Err(DnsError::NoRecords(..)) => Err(refusal(
            550,
            "5.1.2",
            format!("domain {domain} has no mail route"),
            true,
        )),
        Err(e @ DnsError::Temporary(..)) => Err(refusal(451, "4.4.3", e.to_string(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_dns::StaticResolver;

    fn smarthost(domain: &str) -> SmarthostRoute {
        SmarthostRoute {
            domain: domain.into(),
            host: "relay.test".into(),
            port: 2525,
        }
    }

    #[tokio::test]
    async fn smarthosts_first_then_mx_then_the_domain_itself() {
        let dns = StaticResolver::new()
            .mx("mx.test", 10, "mx1.mx.test")
            .ip("plain.test", "127.0.0.9".parse().unwrap())
            .mx("null.test", 0, ".")
            .fail("flaky.test");
        let routes = [smarthost("routed.test")];
        let via = route("Routed.TEST", &routes, &dns, 25).await.unwrap();
        assert_eq!((via.hosts.clone(), via.port), (vec!["relay.test".to_owned()], 2525));
        let mx = route("mx.test", &routes, &dns, 25).await.unwrap();
        assert_eq!(
            (mx.hosts.clone(), mx.port, mx.implicit),
            (vec!["mx1.mx.test".to_owned()], 25, false)
        );
        assert!(route("plain.test", &routes, &dns, 25).await.unwrap().implicit);

        let null = route("null.test", &routes, &dns, 25).await.unwrap_err();
        assert!(null.permanent && null.answer.enhanced.as_deref() == Some("5.1.10"));
        let none = route("nxdomain.test", &routes, &dns, 25).await.unwrap_err();
        assert!(none.permanent && none.answer.enhanced.as_deref() == Some("5.1.2"));
        let flaky = route("flaky.test", &routes, &dns, 25).await.unwrap_err();
        assert!(!flaky.permanent && flaky.answer.code == 451);

        let all = route("anything.test", &[smarthost("*")], &dns, 25).await.unwrap();
        assert_eq!(all.hosts, vec!["relay.test".to_owned()]);
    }
}
