//! SPF (RFC 7208): the domain's `v=spf1` record, read with `herald-spf`'s
//! parser, and the cost of evaluating it counted statically.
//!
//! A receiver counts DNS-querying terms as it reaches them, so the count
//! depends on the client; the linter counts the worst case, a client no
//! term matches: every term before `all`, every include followed, the
//! redirect when there is no `all`. That is the number that decides
//! whether some mail gets `permerror`, and the one postmasters compare with
//! the limit of 10. Terms whose target is a macro depend on the message and
//! are counted once without being followed.

use std::future::Future;
use std::pin::Pin;

use herald_dns::{DnsError, Resolver};
use herald_spf::{MAX_DNS_LOOKUPS, MAX_MX_NAMES, MAX_VOID_LOOKUPS, MacroString, Mechanism, Qualifier, Record, Term};

use crate::{CheckKind, Finding, Findings, Severity, SpfCheck, SpfInclude};

/// RFC 7208 §3.4: records should stay under 450 octets, so the whole DNS
/// answer (with the other TXT records at the name) fits a 512-octet UDP
/// packet; past it some resolvers truncate and retry over TCP, others fail.
const MAX_RECORD_LEN: usize = 450;
/// RFC 1035 §3.3 and RFC 7208 §3.3: one TXT string holds at most 255
/// octets. A longer record is published as several strings, which
/// receivers join without adding a space.
const MAX_TXT_STRING: usize = 255;
/// From this many lookups on, one more include (or a provider adding one to
/// theirs) tips the record into `permerror`.
const NEAR_LOOKUP_LIMIT: u32 = MAX_DNS_LOOKUPS - 1;
/// Includes are followed until this many lookups are counted: enough to
/// tell a postmaster how far over the limit a record is, while a huge or
/// cyclic tree costs a bounded number of queries. Past it the count is a
/// lower bound.
const MAX_COUNTED_LOOKUPS: u32 = 4 * MAX_DNS_LOOKUPS;
/// `ip4:`/`ip6:` networks wider than these let millions of hosts, usually
/// most of a cloud provider's customers, send as the domain.
const BROAD_IP4_PREFIX: u8 = 8;
const BROAD_IP6_PREFIX: u8 = 16;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The SPF record at a name, as selected by RFC 7208 §4.5.
pub(crate) enum Fetched {
    Record(String, Record),
    /// No TXT record starts with `v=spf1` (or the name does not exist).
    None,
    Several(usize),
    Invalid(String, herald_spf::ParseError),
    Dns(DnsError),
}

pub(crate) async fn fetch(resolver: &dyn Resolver, domain: &str) -> Fetched {
    let txts = match resolver.txt(domain).await {
        Ok(txts) => txts,
        Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => return Fetched::None,
        Err(e) => return Fetched::Dns(e),
    };
    let spf: Vec<String> = txts.into_iter().filter(|t| herald_spf::is_spf_record(t)).collect();
    match spf.as_slice() {
        [] => Fetched::None,
        [text] => match Record::parse(text) {
            Ok(record) => Fetched::Record(text.clone(), record),
            Err(e) => Fetched::Invalid(text.clone(), e),
        },
        several => Fetched::Several(several.len()),
    }
}

pub(crate) async fn check(resolver: &dyn Resolver, domain: &str) -> (SpfCheck, Vec<Finding>) {
    let mut walk = Walk {
        resolver,
        findings: Findings::new(CheckKind::Spf),
        lookups: 0,
        voids: Vec::new(),
        includes: Vec::new(),
        capped: false,
    };
    let (record, summary) = match fetch(resolver, domain).await {
        Fetched::Record(text, record) => {
            length(&mut walk.findings, domain, &text);
            let mut path = vec![domain.to_owned()];
            walk.record(domain, &record, &mut path, true).await;
            walk.limits();
            let summary = format!(
                "{}{} DNS lookup{} (limit {MAX_DNS_LOOKUPS}), {} void (limit {MAX_VOID_LOOKUPS}){}",
                if walk.capped { "at least " } else { "" },
                walk.lookups,
                if walk.lookups == 1 { "" } else { "s" },
                walk.voids.len(),
                ending(&record)
                    .map(|all| format!(", ends in {all}"))
                    .unwrap_or_default(),
            );
            (Some(text), summary)
        }
        Fetched::None => {
            walk.findings.add(
                Severity::Warning,
                "spf.missing",
                format!(
                    "{domain} publishes no SPF record, so receivers get SPF \"none\" for its mail and DMARC can pass \
                     only through DKIM. Publish one TXT record listing every service that sends as {domain}, \
                     ending in -all or ~all (e.g. \"v=spf1 include:<your provider> -all\")."
                ),
            );
            (None, "no SPF record".to_owned())
        }
        Fetched::Several(n) => {
            walk.findings.add(
                Severity::Error,
                "spf.multiple_records",
                format!(
                    "{domain} publishes {n} SPF records; receivers answer permerror for all its mail (RFC 7208 \
                     §4.5). Merge them into a single v=spf1 record."
                ),
            );
            (None, format!("{n} SPF records (permerror)"))
        }
        Fetched::Invalid(text, e) => {
            walk.findings.add(
                Severity::Error,
                "spf.syntax",
                format!(
                    "{domain}'s SPF record is invalid ({e}); receivers answer permerror for all its mail (RFC 7208 \
                     §4.6).{}",
                    split_hint(&text)
                ),
            );
            length(&mut walk.findings, domain, &text);
            (Some(text), "invalid record (permerror)".to_owned())
        }
        Fetched::Dns(e) => {
            walk.findings.dns_error(domain, &e);
            (None, "DNS did not answer".to_owned())
        }
    };
    let findings = walk.findings;
    let report = SpfCheck {
        ok: findings.ok(),
        summary,
        record,
        lookups: walk.lookups,
        void_lookups: u32::try_from(walk.voids.len()).unwrap_or(u32::MAX),
        includes: walk.includes,
    };
    (report, findings.into_vec())
}

/// How the top record ends: its `all` directive as written, or its redirect.
fn ending(record: &Record) -> Option<String> {
    let all = record
        .directives()
        .find(|d| d.mechanism == Mechanism::All)
        .map(|d| d.text.clone());
    all.or_else(|| record.redirect().map(|r| format!("redirect={r}")))
}

/// Why a long record may break where its strings were joined.
fn split_hint(text: &str) -> String {
    if text.len() > MAX_TXT_STRING {
        format!(
            " At {} octets the record is published as several strings of at most {MAX_TXT_STRING}, which receivers \
             join without a space: check that each string boundary falls where you meant it.",
            text.len()
        )
    } else {
        String::new()
    }
}

fn length(findings: &mut Findings, domain: &str, text: &str) {
    if text.len() > MAX_RECORD_LEN {
        findings.add(
            Severity::Warning,
            "spf.too_long",
            format!(
                "{domain}'s SPF record is {} octets; over {MAX_RECORD_LEN} the DNS answer may not fit a UDP packet \
                 and some receivers fail to read it (RFC 7208 §3.4). Move addresses into an included record of your \
                 own (include:_spf.{domain}).",
                text.len()
            ),
        );
    }
}

/// One static evaluation: the counters span every include and redirect,
/// as a receiver's do (RFC 7208 §4.6.4).
struct Walk<'r> {
    resolver: &'r dyn Resolver,
    findings: Findings,
    lookups: u32,
    /// The terms whose lookup found nothing, as "`term` in domain".
    voids: Vec<String>,
    includes: Vec<SpfInclude>,
    /// Stopped following includes at [`MAX_COUNTED_LOOKUPS`].
    capped: bool,
}

impl Walk<'_> {
    /// One record's terms. `top`: this record decides the result for mail
    /// no term matches (the domain's own record, or a redirect's target),
    /// so how it ends matters; an included record's ending does not.
    fn record<'a>(
        &'a mut self,
        domain: &'a str,
        record: &'a Record,
        path: &'a mut Vec<String>,
        top: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut reached_all = false;
            let mut unreachable = Vec::new();
            for term in &record.terms {
                let Term::Directive(directive) = term else {
                    continue;
                };
                if reached_all {
                    unreachable.push(directive.text.as_str());
                    continue;
                }
                self.directive(domain, directive, path, top).await;
                reached_all = directive.mechanism == Mechanism::All;
            }
            if !unreachable.is_empty() {
                self.findings.add(
                    Severity::Warning,
                    "spf.unreachable_terms",
                    format!(
                        "In {domain}'s SPF record, {} come after `all` and are never evaluated. Move them before \
                         `all` or remove them.",
                        unreachable.join(" ")
                    ),
                );
            }
            match record.redirect() {
                Some(_) if reached_all => self.findings.add(
                    Severity::Warning,
                    "spf.redirect_ignored",
                    format!(
                        "{domain}'s SPF record has both `all` and redirect=; receivers ignore the redirect (RFC 7208 \
                         §6.1). Remove one of them."
                    ),
                ),
                Some(target) => {
                    self.lookups += 1;
                    let term = format!("redirect={target}");
                    self.follow(domain, "redirect", &term, target, path, top).await;
                }
                None if top && !reached_all => self.findings.add(
                    Severity::Warning,
                    "spf.no_all",
                    format!(
                        "{domain}'s SPF record ends without `all` or redirect=, so mail from servers it does not list \
                         gets \"neutral\", as with ?all. End it with ~all or -all."
                    ),
                ),
                None => {}
            }
        })
    }

    async fn directive(&mut self, domain: &str, directive: &herald_spf::Directive, path: &mut Vec<String>, top: bool) {
        let term = directive.text.as_str();
        if directive.mechanism.queries_dns() {
            self.lookups += 1;
        }
        match &directive.mechanism {
            Mechanism::All => self.all(domain, directive.qualifier, top),
            Mechanism::Include(target) => self.follow(domain, "include", term, target, path, false).await,
            Mechanism::A { domain: target, .. } => {
                if let Some(name) = self.static_target(target.as_ref(), domain) {
                    let answer = self.resolver.addresses(&name).await.map(drop);
                    self.void_or_error(term, domain, &name, answer);
                }
            }
            Mechanism::Mx { domain: target, .. } => {
                if let Some(name) = self.static_target(target.as_ref(), domain) {
                    match self.resolver.mx(&name).await {
                        Ok(records) if records.len() > MAX_MX_NAMES => self.findings.add(
                            Severity::Error,
                            "spf.too_many_mx",
                            format!(
                                "`{term}` in {domain}'s SPF record names {name}, which has {} MX records; receivers \
                                 answer permerror past {MAX_MX_NAMES} (RFC 7208 §4.6.4). Use a:/ip4: terms instead.",
                                records.len()
                            ),
                        ),
                        answer => self.void_or_error(term, domain, &name, answer.map(drop)),
                    }
                }
            }
            Mechanism::Ptr(_) => self.findings.add(
                Severity::Warning,
                "spf.ptr",
                format!(
                    "{domain}'s SPF record uses `{term}`, which RFC 7208 §5.5 says not to use: it is slow, \
                     unreliable, and some receivers skip it. List the senders' addresses with ip4:/ip6: instead."
                ),
            ),
            Mechanism::Exists(target) => {
                if let Some(name) = self.static_target(Some(target), domain) {
                    let answer = self.resolver.ipv4(&name).await.map(drop);
                    self.void_or_error(term, domain, &name, answer);
                }
            }
            Mechanism::Ip4 { prefix, .. } => self.network(domain, term, directive.qualifier, *prefix, BROAD_IP4_PREFIX),
            Mechanism::Ip6 { prefix, .. } => self.network(domain, term, directive.qualifier, *prefix, BROAD_IP6_PREFIX),
        }
    }

    fn all(&mut self, domain: &str, qualifier: Qualifier, top: bool) {
        match qualifier {
            Qualifier::Pass if top => self.findings.add(
                Severity::Critical,
                "spf.pass_all",
                format!(
                    "{domain}'s SPF record ends in +all: every server on the internet passes SPF for {domain}. \
                     Replace it with -all (or ~all)."
                ),
            ),
            Qualifier::Pass => self.findings.add(
                Severity::Critical,
                "spf.pass_all",
                format!(
                    "{domain}'s SPF record, which is included, ends in +all, so the include matches every server \
                     on the internet and they all pass. Remove that include or have {domain} end in ~all or -all."
                ),
            ),
            Qualifier::Neutral if top => self.findings.add(
                Severity::Warning,
                "spf.neutral_all",
                format!(
                    "{domain}'s SPF record ends in ?all: mail from servers it does not list is \"neutral\", no \
                     different from having no SPF. End it with ~all or -all."
                ),
            ),
            _ => {}
        }
    }

    fn network(&mut self, domain: &str, term: &str, qualifier: Qualifier, prefix: u8, broad: u8) {
        if qualifier != Qualifier::Pass {
            return;
        }
        if prefix == 0 {
            self.findings.add(
                Severity::Critical,
                "spf.pass_all",
                format!(
                    "`{term}` in {domain}'s SPF record matches every address: every server on the internet passes \
                     SPF. List only your senders' networks."
                ),
            );
        } else if prefix < broad {
            self.findings.add(
                Severity::Warning,
                "spf.broad_network",
                format!(
                    "`{term}` in {domain}'s SPF record lets a whole /{prefix} network send as the domain. List only \
                     the addresses your senders use."
                ),
            );
        }
    }

    /// The name a term queries, unless it depends on the message (macros).
    fn static_target(&mut self, target: Option<&MacroString>, domain: &str) -> Option<String> {
        let Some(target) = target else {
            return Some(domain.to_owned());
        };
        if target.has_macros() {
            return None;
        }
        // Past the cap the count goes on but nothing more is asked.
        if self.lookups > MAX_COUNTED_LOOKUPS {
            self.capped = true;
            return None;
        }
        Some(target.as_str().trim_end_matches('.').to_ascii_lowercase())
    }

    fn void_or_error(&mut self, term: &str, domain: &str, name: &str, answer: Result<(), DnsError>) {
        match answer {
            Ok(()) => {}
            Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => self.voids.push(format!("`{term}` in {domain}")),
            Err(e) => self.findings.dns_error(name, &e),
        }
    }

    /// Follows `include:` or `redirect=` to `target`'s record.
    async fn follow(
        &mut self,
        parent: &str,
        via: &str,
        term: &str,
        target: &MacroString,
        path: &mut Vec<String>,
        top: bool,
    ) {
        if target.has_macros() {
            self.findings.add(
                Severity::Info,
                "spf.macro",
                format!(
                    "`{term}` in {parent}'s SPF record depends on each message (macros), so the records it reaches \
                     are not counted here."
                ),
            );
            return;
        }
        let domain = target.as_str().trim_end_matches('.').to_ascii_lowercase();
        if path.contains(&domain) {
            self.findings.add(
                Severity::Error,
                "spf.loop",
                format!(
                    "`{term}` in {parent}'s SPF record leads back to {domain}, which is already being evaluated: \
                     receivers go round until the 10-lookup limit and answer permerror. Remove the loop."
                ),
            );
            return;
        }
        if self.lookups > MAX_COUNTED_LOOKUPS {
            self.capped = true;
            return;
        }
        let before = self.lookups;
        let index = self.includes.len();
        self.includes.push(SpfInclude {
            parent: parent.to_owned(),
            via: via.to_owned(),
            domain: domain.clone(),
            record: None,
            lookups: 0,
        });
        let what = if via == "include" {
            ("spf.include_missing", "§5.2")
        } else {
            ("spf.redirect_missing", "§6.1")
        };
        match fetch(self.resolver, &domain).await {
            Fetched::Record(text, record) => {
                self.includes[index].record = Some(text);
                path.push(domain.clone());
                self.record(&domain, &record, path, top).await;
                path.pop();
            }
            Fetched::None => self.findings.add(
                Severity::Error,
                what.0,
                format!(
                    "`{term}` in {parent}'s SPF record points at {domain}, which has no SPF record: receivers answer \
                     permerror for any mail that reaches it (RFC 7208 {}). Fix the name or remove the term.",
                    what.1
                ),
            ),
            Fetched::Several(n) => self.findings.add(
                Severity::Error,
                "spf.multiple_records",
                format!(
                    "{domain}, reached through `{term}` in {parent}'s SPF record, publishes {n} SPF records: \
                     permerror (RFC 7208 §4.5)."
                ),
            ),
            Fetched::Invalid(text, e) => {
                self.findings.add(
                    Severity::Error,
                    "spf.syntax",
                    format!(
                        "{domain}'s SPF record, reached through `{term}` in {parent}'s, is invalid ({e}): permerror \
                         (RFC 7208 §4.6).{}",
                        split_hint(&text)
                    ),
                );
                self.includes[index].record = Some(text);
            }
            Fetched::Dns(e) => self.findings.dns_error(&domain, &e),
        }
        self.includes[index].lookups = self.lookups - before;
    }

    /// The processing limits of RFC 7208 §4.6.4, once everything is counted.
    fn limits(&mut self) {
        let at_least = if self.capped { "at least " } else { "" };
        if self.lookups > MAX_DNS_LOOKUPS {
            self.findings.add(
                Severity::Error,
                "spf.too_many_lookups",
                format!(
                    "The SPF record needs {at_least}{} DNS lookups; receivers stop at {MAX_DNS_LOOKUPS} and answer \
                     permerror (RFC 7208 §4.6.4), so SPF fails for mail from any server listed past that point. \
                     Replace includes with ip4:/ip6: ranges, or drop services that no longer send.",
                    self.lookups
                ),
            );
        } else if self.lookups >= NEAR_LOOKUP_LIMIT {
            self.findings.add(
                Severity::Warning,
                "spf.lookups_near_limit",
                format!(
                    "The SPF record needs {} of the {MAX_DNS_LOOKUPS} DNS lookups receivers allow; one more include \
                     (or a provider growing theirs) makes it a permerror.",
                    self.lookups
                ),
            );
        }
        let voids = u32::try_from(self.voids.len()).unwrap_or(u32::MAX);
        if voids > MAX_VOID_LOOKUPS {
            self.findings.add(
                Severity::Error,
                "spf.too_many_void_lookups",
                format!(
                    "{voids} lookups of the SPF record find nothing ({}); receivers answer permerror after \
                     {MAX_VOID_LOOKUPS} such lookups (RFC 7208 §4.6.4). Remove terms that name hosts which no \
                     longer exist.",
                    self.voids.join(", ")
                ),
            );
        } else if voids > 0 {
            self.findings.add(
                Severity::Warning,
                "spf.void_lookup",
                format!(
                    "Some SPF terms find nothing in DNS ({}): they authorise no one and count towards the limit of \
                     {MAX_VOID_LOOKUPS} void lookups (RFC 7208 §4.6.4). Remove them.",
                    self.voids.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use herald_dns::StaticResolver;

    use super::*;
    use crate::test_support::{absent, codes, find};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    async fn lint(resolver: &StaticResolver, domain: &str) -> (SpfCheck, Vec<Finding>) {
        check(resolver, domain).await
    }

    #[tokio::test]
    async fn a_plain_record_is_clean_and_counted() {
        let r = StaticResolver::new()
            .txt("acme.test", "v=spf1 mx a:out.acme.test include:_spf.mail.test -all")
            .txt("acme.test", "google-site-verification=abc")
            .mx("acme.test", 10, "mx.acme.test")
            .ip("out.acme.test", ip("192.0.2.1"))
            .txt("_spf.mail.test", "v=spf1 ip4:198.51.100.0/24 a:relay.mail.test ~all")
            .ip("relay.mail.test", ip("198.51.100.7"));
        let (report, findings) = lint(&r, "acme.test").await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(report.ok);
        assert_eq!(report.lookups, 4);
        assert_eq!(report.void_lookups, 0);
        assert_eq!(
            report.record.as_deref(),
            Some("v=spf1 mx a:out.acme.test include:_spf.mail.test -all")
        );
        assert_eq!(
            report.summary,
            "4 DNS lookups (limit 10), 0 void (limit 2), ends in -all"
        );
        assert_eq!(report.includes.len(), 1);
        assert_eq!(report.includes[0].domain, "_spf.mail.test");
        assert_eq!(report.includes[0].lookups, 1);
        assert_eq!(report.includes[0].parent, "acme.test");
    }

    #[tokio::test]
    async fn no_record_is_a_warning_and_several_are_a_permerror() {
        let r = StaticResolver::new()
            .txt("none.test", "hello")
            .txt("two.test", "v=spf1 -all")
            .txt("two.test", "v=spf1 mx -all");
        let (report, findings) = lint(&r, "none.test").await;
        assert_eq!(codes(&findings), vec![("spf.missing", Severity::Warning)]);
        assert!(report.ok);
        let (report, findings) = lint(&r, "nxdomain.test").await;
        assert_eq!(codes(&findings), vec![("spf.missing", Severity::Warning)]);
        assert_eq!(report.record, None);
        let (report, findings) = lint(&r, "two.test").await;
        assert_eq!(codes(&findings), vec![("spf.multiple_records", Severity::Error)]);
        assert!(!report.ok);
        assert!(
            find(&findings, "spf.multiple_records")
                .message
                .contains("2 SPF records")
        );
    }

    #[tokio::test]
    async fn syntax_errors_name_the_term() {
        let r = StaticResolver::new().txt("bad.test", "v=spf1 ip4:192.0.2.0/33 -all");
        let (report, findings) = lint(&r, "bad.test").await;
        assert_eq!(codes(&findings), vec![("spf.syntax", Severity::Error)]);
        assert!(find(&findings, "spf.syntax").message.contains("ip4:192.0.2.0/33"));
        assert_eq!(report.record.as_deref(), Some("v=spf1 ip4:192.0.2.0/33 -all"));
    }

    /// Strings joined without a space (`"...include:a.test" "include:b.test"`)
    /// are the usual way a long record breaks; the message says so.
    #[tokio::test]
    async fn a_long_broken_record_points_at_its_string_joins() {
        let long = format!("v=spf1 {}include:b.test -all", "ip4:192.0.2.1 ".repeat(20).trim_end());
        let r = StaticResolver::new().txt("long.test", &long);
        let (_, findings) = lint(&r, "long.test").await;
        assert!(find(&findings, "spf.syntax").message.contains("without a space"));
    }

    #[tokio::test]
    async fn lookups_over_ten_are_an_error_with_the_count() {
        let mut r = StaticResolver::new().txt(
            "big.test",
            "v=spf1 include:a.test include:b.test include:c.test include:d.test -all",
        );
        for d in ["a.test", "b.test", "c.test", "d.test"] {
            r = r.txt(d, &format!("v=spf1 a:h1.{d} a:h2.{d} ~all"));
            r = r
                .ip(&format!("h1.{d}"), ip("192.0.2.1"))
                .ip(&format!("h2.{d}"), ip("192.0.2.2"));
        }
        let (report, findings) = lint(&r, "big.test").await;
        assert_eq!(report.lookups, 12);
        assert_eq!(codes(&findings), vec![("spf.too_many_lookups", Severity::Error)]);
        assert!(
            find(&findings, "spf.too_many_lookups")
                .message
                .contains("12 DNS lookups")
        );
        assert_eq!(
            report.includes.iter().map(|i| i.lookups).collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
    }

    #[tokio::test]
    async fn nine_or_ten_lookups_are_a_warning() {
        let r = StaticResolver::new()
            .txt("near.test", "v=spf1 a mx include:x.test -all")
            .ip("near.test", ip("192.0.2.1"))
            .mx("near.test", 10, "near.test")
            .txt("x.test", "v=spf1 a a a a a a ~all")
            .ip("x.test", ip("192.0.2.2"));
        let (report, findings) = lint(&r, "near.test").await;
        assert_eq!(report.lookups, 9);
        assert_eq!(codes(&findings), vec![("spf.lookups_near_limit", Severity::Warning)]);
    }

    #[tokio::test]
    async fn void_lookups_are_counted_and_named() {
        let r = StaticResolver::new()
            .txt(
                "void.test",
                "v=spf1 a:gone1.void.test mx:gone2.void.test exists:gone3.void.test -all",
            )
            .txt("two.test", "v=spf1 a:gone1.void.test -all");
        let (report, findings) = lint(&r, "void.test").await;
        assert_eq!(report.void_lookups, 3);
        assert_eq!(codes(&findings), vec![("spf.too_many_void_lookups", Severity::Error)]);
        assert!(
            find(&findings, "spf.too_many_void_lookups")
                .message
                .contains("mx:gone2.void.test")
        );
        let (_, findings) = lint(&r, "two.test").await;
        assert_eq!(codes(&findings), vec![("spf.void_lookup", Severity::Warning)]);
    }

    #[tokio::test]
    async fn dangerous_and_weak_endings() {
        let r = StaticResolver::new()
            .txt("plus.test", "v=spf1 mx all")
            .mx("plus.test", 10, "mx.plus.test")
            .txt("neutral.test", "v=spf1 ip4:192.0.2.1 ?all")
            .txt("open.test", "v=spf1 ip4:192.0.2.1")
            .txt("anyone.test", "v=spf1 ip4:0.0.0.0/0 -all")
            .txt("wide.test", "v=spf1 ip4:10.0.0.0/7 -all")
            .txt("incl.test", "v=spf1 include:plus.test -all");
        let (report, findings) = lint(&r, "plus.test").await;
        assert_eq!(codes(&findings), vec![("spf.pass_all", Severity::Critical)]);
        assert_eq!(report.summary, "1 DNS lookup (limit 10), 0 void (limit 2), ends in all");
        let (_, findings) = lint(&r, "neutral.test").await;
        assert_eq!(codes(&findings), vec![("spf.neutral_all", Severity::Warning)]);
        let (_, findings) = lint(&r, "open.test").await;
        assert_eq!(codes(&findings), vec![("spf.no_all", Severity::Warning)]);
        let (_, findings) = lint(&r, "anyone.test").await;
        assert_eq!(codes(&findings), vec![("spf.pass_all", Severity::Critical)]);
        let (_, findings) = lint(&r, "wide.test").await;
        assert_eq!(codes(&findings), vec![("spf.broad_network", Severity::Warning)]);
        // +all in an included record makes the include match everyone.
        let (_, findings) = lint(&r, "incl.test").await;
        assert_eq!(codes(&findings), vec![("spf.pass_all", Severity::Critical)]);
        assert!(find(&findings, "spf.pass_all").message.contains("included"));
    }

    #[tokio::test]
    async fn ptr_is_discouraged_and_terms_after_all_are_dead() {
        let r = StaticResolver::new()
            .txt("ptr.test", "v=spf1 ptr -all include:late.test")
            .txt("late.test", "v=spf1 -all");
        let (report, findings) = lint(&r, "ptr.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("spf.ptr", Severity::Warning),
                ("spf.unreachable_terms", Severity::Warning)
            ]
        );
        assert_eq!(report.lookups, 1, "the include after all is never reached");
        assert!(report.includes.is_empty());
    }

    #[tokio::test]
    async fn redirects_are_followed_and_judged_as_the_top_record() {
        let r = StaticResolver::new()
            .txt("r.test", "v=spf1 redirect=_spf.r.test")
            .txt("_spf.r.test", "v=spf1 ip4:192.0.2.0/24 ?all")
            .txt("both.test", "v=spf1 -all redirect=_spf.r.test")
            .txt("dangling.test", "v=spf1 redirect=nowhere.test");
        let (report, findings) = lint(&r, "r.test").await;
        assert_eq!(codes(&findings), vec![("spf.neutral_all", Severity::Warning)]);
        assert_eq!(report.lookups, 1);
        assert_eq!(report.includes[0].via, "redirect");
        assert_eq!(
            report.summary,
            "1 DNS lookup (limit 10), 0 void (limit 2), ends in redirect=_spf.r.test"
        );
        let (_, findings) = lint(&r, "both.test").await;
        assert_eq!(codes(&findings), vec![("spf.redirect_ignored", Severity::Warning)]);
        let (_, findings) = lint(&r, "dangling.test").await;
        assert_eq!(codes(&findings), vec![("spf.redirect_missing", Severity::Error)]);
    }

    #[tokio::test]
    async fn broken_includes_are_errors() {
        let r = StaticResolver::new()
            .txt("a.test", "v=spf1 include:none.test include:bad.test -all")
            .txt("none.test", "not spf")
            .txt("bad.test", "v=spf1 moo -all");
        let (report, findings) = lint(&r, "a.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("spf.include_missing", Severity::Error),
                ("spf.syntax", Severity::Error)
            ]
        );
        assert!(find(&findings, "spf.syntax").message.contains("bad.test"));
        assert_eq!(report.includes[1].record.as_deref(), Some("v=spf1 moo -all"));
    }

    #[tokio::test]
    async fn loops_are_found_and_stop_the_walk() {
        let r = StaticResolver::new()
            .txt("loop.test", "v=spf1 include:b.loop.test -all")
            .txt("b.loop.test", "v=spf1 include:loop.test ~all");
        let (report, findings) = lint(&r, "loop.test").await;
        assert_eq!(codes(&findings), vec![("spf.loop", Severity::Error)]);
        assert_eq!(report.lookups, 2);
    }

    /// A diamond (two includes of one record) is not a loop: receivers
    /// evaluate it twice and count it twice.
    #[tokio::test]
    async fn a_record_included_twice_counts_twice() {
        let r = StaticResolver::new()
            .txt("d.test", "v=spf1 include:x.test include:y.test -all")
            .txt("x.test", "v=spf1 include:z.test ~all")
            .txt("y.test", "v=spf1 include:z.test ~all")
            .txt("z.test", "v=spf1 ip4:192.0.2.1 ~all");
        let (report, findings) = lint(&r, "d.test").await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(report.lookups, 4);
    }

    #[tokio::test]
    async fn a_huge_tree_is_counted_up_to_a_cap() {
        // Each level includes the next twice: 2^n records if followed fully.
        let mut r = StaticResolver::new();
        for level in 0..12 {
            r = r.txt(
                &format!("l{level}.test"),
                &format!("v=spf1 include:l{n}.test include:l{n}.test ~all", n = level + 1),
            );
        }
        r = r.txt("l12.test", "v=spf1 -all");
        let (report, findings) = lint(&r, "l0.test").await;
        assert!(report.lookups > MAX_COUNTED_LOOKUPS);
        assert!(report.lookups < MAX_COUNTED_LOOKUPS + 20, "{}", report.lookups);
        assert!(find(&findings, "spf.too_many_lookups").message.contains("at least"));
        assert!(report.summary.starts_with("at least"));
    }

    #[tokio::test]
    async fn macros_are_counted_but_not_followed() {
        let r = StaticResolver::new().txt("m.test", "v=spf1 exists:%{i}.spf.m.test include:%{d2}.x.test -all");
        let (report, findings) = lint(&r, "m.test").await;
        assert_eq!(report.lookups, 2);
        assert_eq!(codes(&findings), vec![("spf.macro", Severity::Info)]);
        assert_eq!(report.void_lookups, 0);
    }

    #[tokio::test]
    async fn too_many_mx_names_and_oversize_records() {
        let mut r = StaticResolver::new().txt(
            "mx.test",
            &format!("v=spf1 mx {} -all", "ip4:192.0.2.1 ".repeat(40).trim_end()),
        );
        for i in 0..11 {
            r = r.mx("mx.test", i, &format!("mx{i}.mx.test"));
        }
        let (_, findings) = lint(&r, "mx.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("spf.too_long", Severity::Warning),
                ("spf.too_many_mx", Severity::Error)
            ]
        );
    }

    #[tokio::test]
    async fn dns_failures_are_findings_not_silence() {
        let r = StaticResolver::new()
            .fail("down.test")
            .txt("inc.test", "v=spf1 include:down.test a:down.test -all");
        let (report, findings) = lint(&r, "down.test").await;
        assert_eq!(codes(&findings), vec![("spf.dns_error", Severity::Error)]);
        assert_eq!(report.summary, "DNS did not answer");
        let (_, findings) = lint(&r, "inc.test").await;
        assert_eq!(
            codes(&findings),
            vec![("spf.dns_error", Severity::Error), ("spf.dns_error", Severity::Error)]
        );
        absent(&findings, "spf.include_missing");
    }
}
