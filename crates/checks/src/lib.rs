//! The DNS linter: a domain's SPF, DMARC, DKIM and MX records checked
//! against their RFCs, each problem a [`Finding`] with a severity, a stable
//! code and a sentence that tells a postmaster what to publish instead.
//!
//! [`check_dns`] is the one entry point (`herald check dns DOMAIN` and
//! `GET /api/v1/checks/dns/{domain}` both call it). It reads DNS the way a
//! receiver does, through [`herald_dns::Resolver`], and never stops at the
//! first problem: every record is checked and every finding reported, and
//! what was found is returned beside the findings. The main design decision
//! is that nothing here fails: a DNS timeout or SERVFAIL is itself a finding
//! (`<check>.dns_error`), because "I could not tell" is an answer a user can
//! act on (try again) and a half-empty report without it would read as clean.
//!
//! SPF records are parsed by `herald-spf`, the same parser delivery's SPF
//! checks use, so the linter and the receiver side never disagree about
//! what is valid. The linter must never send mail or write to DNS.

pub mod blocklists;
mod dkim;
mod dmarc;
mod mx;
mod spf;
pub mod spf_networks;
mod tags;

pub use herald_api_types::checks::{
    CheckKind, DkimCheck, DkimSelectorCheck, DmarcCheck, DmarcDestination, DnsReport, Finding, MxCheck, MxHostCheck,
    Severity, SpfCheck, SpfInclude,
};
use herald_dns::{DnsError, Resolver};

/// RFC 1035 §2.3.4: at most 63 octets a label, 253 a name (without the
/// final dot).
const MAX_LABEL_LEN: usize = 63;
const MAX_NAME_LEN: usize = 253;

/// Checks every record type of `domain` and returns what was found.
///
/// `selectors` are the DKIM selectors to check: the ones Herald manages for
/// the domain plus any the user named (DKIM keys cannot be listed, only
/// asked for by name). The four checks run concurrently; each one's DNS
/// questions wait at most the resolver's time-out. `domain` should have
/// passed [`normalize_domain`]; anything else simply does not exist in DNS.
pub async fn check_dns(resolver: &dyn Resolver, domain: &str, selectors: &[String]) -> DnsReport {
    let domain = normalize_domain(domain).unwrap_or_else(|| domain.trim().to_ascii_lowercase());
    let ((spf, spf_findings), (dmarc, dmarc_findings), (dkim, dkim_findings), (mx, mx_findings)) = tokio::join!(
        spf::check(resolver, &domain),
        dmarc::check(resolver, &domain),
        dkim::check(resolver, &domain, selectors),
        mx::check(resolver, &domain),
    );
    let mut findings = [spf_findings, dmarc_findings, dkim_findings, mx_findings].concat();
    // Most severe first; within a severity the checks keep their order
    // (the sort is stable), so the report reads the same every time.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let worst = findings.iter().map(|f| f.severity).max();
    DnsReport {
        domain,
        worst,
        ok: worst.is_none_or(|w| w < Severity::Error),
        findings,
        spf,
        dmarc,
        dkim,
        mx,
    }
}

/// Only the DMARC part of [`check_dns`]: the record that applies to
/// `domain` (its own or its organisational domain's) and its findings.
pub async fn check_dmarc(resolver: &dyn Resolver, domain: &str) -> (DmarcCheck, Vec<Finding>) {
    let domain = normalize_domain(domain).unwrap_or_else(|| domain.trim().to_ascii_lowercase());
    dmarc::check(resolver, &domain).await
}

/// A domain as DNS is asked about it: trimmed, lower-case, no final dot,
/// at least two labels of letters, digits, `-` and `_` within RFC 1035's
/// lengths. `None` for anything else (internationalised names must be
/// given as A-labels, `xn--…`).
pub fn normalize_domain(input: &str) -> Option<String> {
    let name = input.trim();
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let valid = name.len() <= MAX_NAME_LEN && name.contains('.') && name.split('.').all(valid_label);
    valid.then_some(name)
}

/// One DNS label as mail domains use them: letters, digits, `-` (not at
/// either end) and `_` (for names like `_dmarc`).
pub(crate) fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `name` is `domain` or a name below it (both lower-case, no final dot).
pub(crate) fn within(name: &str, domain: &str) -> bool {
    name == domain || name.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// One check's findings as they are collected.
#[derive(Debug)]
pub(crate) struct Findings {
    check: CheckKind,
    list: Vec<Finding>,
}

impl Findings {
    pub(crate) fn new(check: CheckKind) -> Self {
        Self {
            check,
            list: Vec::new(),
        }
    }

    /// Adds a finding; `code` is the full stable name (`spf.ptr`), written
    /// out at each call so the codes can be found with grep.
    pub(crate) fn add(&mut self, severity: Severity, code: &str, message: impl Into<String>) {
        debug_assert!(
            code.split_once('.')
                .is_some_and(|(check, _)| check_name(self.check) == check),
            "{code} is not a {:?} code",
            self.check
        );
        self.list.push(Finding {
            check: self.check,
            severity,
            code: code.to_owned(),
            message: message.into(),
        });
    }

    /// A question DNS did not answer: the check is incomplete, not clean.
    pub(crate) fn dns_error(&mut self, name: &str, error: &DnsError) {
        let code = match self.check {
            CheckKind::Spf => "spf.dns_error",
            CheckKind::Dmarc => "dmarc.dns_error",
            CheckKind::Dkim => "dkim.dns_error",
            CheckKind::Mx => "mx.dns_error",
        };
        self.add(
            Severity::Error,
            code,
            format!(
                "DNS did not answer for {name} ({error}), so this check is incomplete; receivers that meet the same \
                 failure defer or misjudge mail. Check the domain's name servers and run the check again."
            ),
        );
    }

    /// No finding is an error or critical.
    pub(crate) fn ok(&self) -> bool {
        self.list.iter().all(|f| f.severity < Severity::Error)
    }

    pub(crate) fn into_vec(self) -> Vec<Finding> {
        self.list
    }
}

/// The check's name as it starts its codes (and as JSON spells it).
fn check_name(check: CheckKind) -> &'static str {
    match check {
        CheckKind::Spf => "spf",
        CheckKind::Dmarc => "dmarc",
        CheckKind::Dkim => "dkim",
        CheckKind::Mx => "mx",
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The codes of `findings` with their severities, in order.
    pub(crate) fn codes(findings: &[Finding]) -> Vec<(&str, Severity)> {
        findings.iter().map(|f| (f.code.as_str(), f.severity)).collect()
    }

    /// The finding with `code`; panics with the whole list when absent.
    pub(crate) fn find<'f>(findings: &'f [Finding], code: &str) -> &'f Finding {
        findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} in {:#?}", codes(findings)))
    }

    pub(crate) fn absent(findings: &[Finding], code: &str) {
        assert!(
            findings.iter().all(|f| f.code != code),
            "unexpected {code} in {:#?}",
            findings
        );
    }
}

#[cfg(test)]
mod tests {
    use herald_dns::StaticResolver;

    use super::*;

    #[test]
    fn domains_are_normalised_or_refused() {
        assert_eq!(normalize_domain(" Acme.COM. ").as_deref(), Some("acme.com"));
        assert_eq!(normalize_domain("_dmarc.acme.com").as_deref(), Some("_dmarc.acme.com"));
        for bad in [
            "",
            "com",
            "acme..com",
            "-acme.com",
            "acme-.com",
            "a b.com",
            "bücher.de",
            "acme.com/x",
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_domain(&format!("{}.com", "a".repeat(64))), None);
        assert!(normalize_domain(&format!("{}.com", "a".repeat(63))).is_some());
    }

    /// The HTTP server runs handlers on a multi-threaded runtime, so the
    /// check's future must be `Send`; this would not compile otherwise.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_check_runs_as_a_spawned_task() {
        let resolver = std::sync::Arc::new(
            StaticResolver::new()
                .txt("acme.test", "v=spf1 -all")
                // A domain that only sends, its reports taken elsewhere
                // (to itself, they would bounce off the null MX).
                .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:d@in.acme.test")
                .mx("in.acme.test", 10, "mx.acme.test")
                .mx("acme.test", 0, "."),
        );
        let task = tokio::spawn(async move { check_dns(resolver.as_ref(), "acme.test", &[]).await });
        let report = task.await.unwrap();
        assert_eq!(report.worst, Some(Severity::Info));
        assert!(report.ok);
        assert!(report.mx.null_mx);
    }

    #[test]
    fn within_means_the_domain_or_below_on_a_label_boundary() {
        assert!(within("acme.com", "acme.com"));
        assert!(within("mail.acme.com", "acme.com"));
        assert!(!within("notacme.com", "acme.com"));
        assert!(!within("com", "acme.com"));
    }

    /// A domain that publishes nothing: DMARC is missing (critical), and
    /// the worst severity and the order of findings say so first.
    #[tokio::test]
    async fn a_bare_domain_is_critical_and_sorted_worst_first() {
        let resolver = StaticResolver::new().ip("bare.test", "192.0.2.1".parse().unwrap());
        let report = check_dns(&resolver, "Bare.Test.", &[]).await;
        assert_eq!(report.domain, "bare.test");
        assert_eq!(report.worst, Some(Severity::Critical));
        assert!(!report.ok);
        assert_eq!(report.findings[0].code, "dmarc.missing");
        let severities: Vec<Severity> = report.findings.iter().map(|f| f.severity).collect();
        let mut sorted = severities.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(severities, sorted);
        for code in ["spf.missing", "mx.missing", "dkim.no_selectors"] {
            test_support::find(&report.findings, code);
        }
        assert!(!report.dmarc.ok);
        assert!(report.spf.ok, "a missing SPF record is a warning");
    }
}
