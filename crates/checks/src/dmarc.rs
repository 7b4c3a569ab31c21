//! DMARC (RFC 9989): the policy that applies to the domain, found as a
//! receiver finds it, and the report addresses it names.
//!
//! Discovery is RFC 9989's DNS Tree Walk: `_dmarc.<domain>` first, then its
//! ancestors (at most five queries in all), which also yields the
//! organizational domain. No public suffix list: the walk asks DNS, as
//! DMARCbis receivers do. A domain without a record of its own inherits its
//! organizational domain's (its `sp=` policy); a report address outside the
//! organizational domain must be authorised by the destination (RFC 9990,
//! "Verifying External Destinations"; RFC 7489 §7.1), or reporters drop
//! those reports. And every `mailto:` destination must be able to receive
//! mail at all: a domain with a null MX (RFC 7505), or with neither MX nor
//! address, bounces every report. A DNS failure while asking is only a
//! warning: it says nothing about the destination.

use std::collections::BTreeMap;

use herald_dns::{DnsError, MailRoute, Resolver};

use crate::tags::{self, TagError};
use crate::{CheckKind, DmarcCheck, DmarcDestination, Finding, Findings, Severity, normalize_domain, within};

/// RFC 9989, "DNS Tree Walk": a name with this many labels or more jumps
/// straight to its last [`WALK_SHORTCUT_LABELS`] after the first query, so
/// a walk never takes more than five queries.
const WALK_SHORTCUT_FROM: usize = 5;
const WALK_SHORTCUT_LABELS: usize = 4;
/// RFC 9989, "General Record Format": the tags DMARCbis defines.
const KNOWN_TAGS: [&str; 11] = ["v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "t", "psd"];
/// RFC 9989, "Tags Removed": RFC 7489's tags that DMARCbis receivers ignore.
const REMOVED_TAGS: [&str; 3] = ["pct", "rf", "ri"];

/// A `v=DMARC1` record as selected by RFC 9989: the version tag first,
/// written exactly (`DMARC1` is case-sensitive).
fn is_dmarc_record(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(['v', 'V']) else {
        return false;
    };
    let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix('=') else {
        return false;
    };
    let Some(rest) = rest.trim_start_matches([' ', '\t']).strip_prefix("DMARC1") else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with(';')
}

/// What one `_dmarc` name holds.
#[derive(Debug)]
struct Level {
    /// The domain, without `_dmarc.`.
    domain: String,
    /// The one valid record, if there is exactly one.
    record: Option<String>,
    /// `psd=` of that record, lower-case.
    psd: Option<String>,
}

/// The names a DNS Tree Walk queries for `domain`, most specific first:
/// the domain, then (from five labels on) its last four, then one label
/// fewer at a time down to the top-level domain.
fn walk_names(domain: &str) -> Vec<String> {
    let labels: Vec<&str> = domain.split('.').collect();
    let mut names = vec![domain.to_owned()];
    let mut count = labels.len();
    while count > 1 {
        count = if count >= WALK_SHORTCUT_FROM {
            WALK_SHORTCUT_LABELS
        } else {
            count - 1
        };
        names.push(labels[labels.len() - count..].join("."));
    }
    names
}

pub(crate) async fn check(resolver: &dyn Resolver, domain: &str) -> (DmarcCheck, Vec<Finding>) {
    let mut findings = Findings::new(CheckKind::Dmarc);
    let mut levels: Vec<Level> = Vec::new();
    let mut incomplete = false;
    for name in walk_names(domain) {
        let first = levels.is_empty();
        let Some(level) = query(resolver, &name, first, &mut findings).await else {
            incomplete = true;
            break;
        };
        // RFC 9989: the walk stops at psd=n, and above the start at psd=y.
        let stop = matches!(level.psd.as_deref(), Some("n")) || (!first && level.psd.as_deref() == Some("y"));
        levels.push(level);
        if stop {
            break;
        }
    }
    let org = organizational_domain(domain, &levels);
    let own = levels.first().filter(|l| l.domain == domain && l.record.is_some());
    // The policy: the domain's own record, else its organizational
    // domain's, else a public suffix's (psd=y).
    let applied = own
        .or_else(|| levels.iter().find(|l| l.domain == org && l.record.is_some()))
        .or_else(|| {
            levels
                .iter()
                .find(|l| l.record.is_some() && l.psd.as_deref() == Some("y"))
        });
    let Some(applied) = applied else {
        if !incomplete {
            findings.add(
                Severity::Critical,
                "dmarc.missing",
                format!(
                    "No DMARC record applies to {domain} (no usable one at _dmarc.{domain}{}): receivers apply \
                     no policy, so anyone can send mail From {domain}, and no one sends you reports. Publish a TXT \
                     record at _dmarc.{domain}, e.g. \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}\", \
                     then move to p=quarantine or p=reject once the reports show all your mail passes.",
                    if org == domain {
                        String::new()
                    } else {
                        format!(" nor at _dmarc.{org}")
                    }
                ),
            );
        }
        let summary = if incomplete {
            "DNS did not answer"
        } else {
            "no DMARC record"
        };
        return (empty(findings.ok(), summary, &org), findings.into_vec());
    };
    let inherited = applied.domain != domain;
    let text = applied.record.clone().unwrap_or_default();
    let found_at = format!("_dmarc.{}", applied.domain);
    if inherited {
        findings.add(
            Severity::Info,
            "dmarc.inherited",
            format!(
                "{domain} has no DMARC record of its own; the record at {found_at} applies to it (its sp= policy, \
                 or p= when sp= is absent). Publish one at _dmarc.{domain} if {domain} needs its own policy or \
                 reports."
            ),
        );
    }
    let mut record = Parsed::default();
    match tags::parse(&text, true) {
        Ok(list) => record = review(&list, domain, &found_at, inherited, &mut findings),
        Err(TagError(problem)) => findings.add(
            Severity::Error,
            "dmarc.syntax",
            format!(
                "The DMARC record at {found_at} cannot be read ({problem}); receivers may ignore part or all of it. \
                 Write it as tag=value pairs separated by semicolons."
            ),
        ),
    }
    let mut destinations = Vec::new();
    for (host, _) in record.mailto_hosts() {
        if within(&host, &org) {
            continue;
        }
        let destination = authorize(resolver, &applied.domain, &host, &mut findings).await;
        destinations.push(destination);
    }
    for (host, addresses) in record.mailto_hosts() {
        reachable(resolver, &host, &addresses, &found_at, &mut findings).await;
    }
    let summary = format!(
        "{} at {found_at}{}; {}",
        record
            .policy
            .as_deref()
            .map_or("no policy".to_owned(), |p| format!("p={p}")),
        if inherited { " (inherited)" } else { "" },
        match record.rua.len() {
            0 => "no aggregate reports".to_owned(),
            1 => "aggregate reports to 1 address".to_owned(),
            n => format!("aggregate reports to {n} addresses"),
        }
    );
    let report = DmarcCheck {
        ok: findings.ok(),
        summary,
        record: Some(text),
        found_at: Some(found_at),
        inherited,
        organizational_domain: Some(org),
        tags: record.tags,
        policy: record.policy,
        rua: record.rua,
        ruf: record.ruf,
        external_destinations: destinations,
    };
    (report, findings.into_vec())
}

fn empty(ok: bool, summary: &str, org: &str) -> DmarcCheck {
    DmarcCheck {
        ok,
        summary: summary.to_owned(),
        record: None,
        found_at: None,
        inherited: false,
        organizational_domain: Some(org.to_owned()),
        tags: BTreeMap::new(),
        policy: None,
        rua: Vec::new(),
        ruf: Vec::new(),
        external_destinations: Vec::new(),
    }
}

/// Reads `_dmarc.<domain>`. `None` when DNS did not answer (reported).
/// Problems are reported for the starting domain only: an ancestor's
/// records are its owner's business unless they end up applying.
async fn query(resolver: &dyn Resolver, domain: &str, first: bool, findings: &mut Findings) -> Option<Level> {
    let name = format!("_dmarc.{domain}");
    let txts = match resolver.txt(&name).await {
        Ok(txts) => txts,
        Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => Vec::new(),
        Err(e) => {
            findings.dns_error(&name, &e);
            return None;
        }
    };
    let (valid, other): (Vec<String>, Vec<String>) = txts.into_iter().partition(|t| is_dmarc_record(t));
    if first {
        for text in other.iter().filter(|t| t.to_ascii_lowercase().contains("dmarc1")) {
            findings.add(
                Severity::Error,
                "dmarc.syntax",
                format!(
                    "The TXT record \"{text}\" at {name} is not a DMARC record to receivers, which discard it: a \
                     DMARC record must start with v=DMARC1 (in capitals) before any other tag."
                ),
            );
        }
    }
    if valid.len() > 1 {
        findings.add(
            Severity::Error,
            "dmarc.multiple_records",
            format!(
                "{name} holds {} DMARC records; receivers discard them all and look for a policy higher up, as if \
                 there were none. Keep exactly one.",
                valid.len()
            ),
        );
    }
    let record = match valid.len() {
        1 => valid.into_iter().next(),
        _ => None,
    };
    let psd = record.as_deref().and_then(|text| {
        let list = tags::parse(text, true).ok()?;
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("psd"))
            .map(|(_, v)| v.to_ascii_lowercase())
    });
    Some(Level {
        domain: domain.to_owned(),
        record,
        psd,
    })
}

/// RFC 9989, "Organizational Domain Discovery", over the levels walked
/// (longest first): the first with psd=n; else one label below the first
/// above the start with psd=y; else the shortest with a record; else the
/// domain itself.
fn organizational_domain(domain: &str, levels: &[Level]) -> String {
    let with_record = || levels.iter().filter(|l| l.record.is_some());
    if let Some(level) = with_record().find(|l| l.psd.as_deref() == Some("n")) {
        return level.domain.clone();
    }
    if let Some(level) = with_record()
        .skip_while(|l| l.domain == domain)
        .find(|l| l.psd.as_deref() == Some("y"))
    {
        let below = level.domain.split('.').count() + 1;
        let labels: Vec<&str> = domain.split('.').collect();
        return labels[labels.len().saturating_sub(below)..].join(".");
    }
    with_record()
        .next_back()
        .map_or_else(|| domain.to_owned(), |l| l.domain.clone())
}

/// What the record says, as far as the linter needs it.
#[derive(Debug, Default)]
struct Parsed {
    tags: BTreeMap<String, String>,
    policy: Option<String>,
    rua: Vec<String>,
    ruf: Vec<String>,
}

impl Parsed {
    /// The hosts of the valid `mailto:` report addresses, each once, with
    /// the URIs (`rua=mailto:…`) that name them.
    fn mailto_hosts(&self) -> Vec<(String, Vec<String>)> {
        let mut hosts: Vec<(String, Vec<String>)> = Vec::new();
        let tagged = self
            .rua
            .iter()
            .map(|u| ("rua", u))
            .chain(self.ruf.iter().map(|u| ("ruf", u)));
        for (tag, uri) in tagged {
            if let Ok(Uri::Mailto { host, .. }) = parse_uri(uri) {
                let named = format!("{tag}={uri}");
                match hosts.iter_mut().find(|(h, _)| *h == host) {
                    Some((_, uris)) => uris.push(named),
                    None => hosts.push((host, vec![named])),
                }
            }
        }
        hosts
    }
}

/// Checks each tag of a parsed record; returns what the report shows.
fn review(list: &[(&str, &str)], domain: &str, found_at: &str, inherited: bool, findings: &mut Findings) -> Parsed {
    let tags: BTreeMap<String, String> = list
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
        .collect();
    let get = |name: &str| tags.get(name).map(String::as_str);
    let mut invalid = |tag: &str, value: &str, allowed: &str, fallback: &str| {
        findings.add(
            Severity::Error,
            "dmarc.invalid_value",
            format!(
                "{tag}={value} in the DMARC record at {found_at} is not valid ({allowed}); receivers ignore it and \
                 {fallback}."
            ),
        );
    };
    let request = |v: &str| {
        ["none", "quarantine", "reject"]
            .iter()
            .find(|r| r.eq_ignore_ascii_case(v))
            .copied()
    };
    let p = get("p").and_then(request);
    if let Some(value) = get("p").filter(|_| p.is_none()) {
        invalid("p", value, "none, quarantine or reject", "treat the record as p=none");
    }
    let sp = get("sp").and_then(request);
    if let Some(value) = get("sp").filter(|_| sp.is_none()) {
        invalid("sp", value, "none, quarantine or reject", "apply p= to subdomains");
    }
    if let Some(value) = get("np").filter(|v| request(v).is_none()) {
        invalid(
            "np",
            value,
            "none, quarantine or reject",
            "apply sp= or p= to non-existent subdomains",
        );
    }
    for tag in ["adkim", "aspf"] {
        if let Some(value) = get(tag).filter(|v| !matches!(v.to_ascii_lowercase().as_str(), "r" | "s")) {
            invalid(tag, value, "r or s", "use relaxed alignment");
        }
    }
    let fo_valid = |v: &str| v.split(':').all(|o| matches!(o.trim(), "0" | "1" | "d" | "s"));
    if let Some(value) = get("fo").filter(|v| !fo_valid(v)) {
        invalid("fo", value, "0, 1, d, s or a colon-separated list of them", "use fo=0");
    }
    let yes_no = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "y" | "n");
    if let Some(value) = get("t").filter(|v| !yes_no(v)) {
        invalid("t", value, "y or n", "apply the policy");
    }
    let psd = get("psd").map(str::to_ascii_lowercase);
    if let Some(value) = get("psd").filter(|v| !matches!(v.to_ascii_lowercase().as_str(), "y" | "n" | "u")) {
        invalid("psd", value, "y, n or u", "use psd=u");
    }
    if !inherited && psd.as_deref() == Some("y") {
        findings.add(
            Severity::Warning,
            "dmarc.psd",
            format!(
                "The DMARC record at {found_at} says psd=y: the domain is a public suffix, so its subdomains count \
                 as separate organizations. Only registries publish this; remove it."
            ),
        );
    }

    // The policy a receiver applies to this domain's mail.
    let policy = if inherited { sp.or(p) } else { p };
    match (get("p"), inherited) {
        (None, _) => findings.add(
            Severity::Warning,
            "dmarc.no_policy",
            format!(
                "The DMARC record at {found_at} has no p= tag. DMARCbis receivers treat it as p=none, older (RFC \
                 7489) ones ignore the whole record. Add p=none, or p=quarantine/p=reject once reports show your \
                 mail passes."
            ),
        ),
        _ if policy == Some("none") => findings.add(
            Severity::Warning,
            "dmarc.policy_none",
            format!(
                "The DMARC policy for {domain} is none (at {found_at}): monitoring only, so receivers deliver \
                 mail that fails DMARC as if there were no policy. Move to {}quarantine, then reject, once the \
                 aggregate reports show all your mail passes.",
                if inherited { "sp=" } else { "p=" }
            ),
        ),
        _ => {}
    }
    if !inherited && sp == Some("none") && matches!(p, Some("quarantine" | "reject")) {
        findings.add(
            Severity::Warning,
            "dmarc.subdomain_policy_none",
            format!(
                "The DMARC record at {found_at} protects the domain (p={}) but not its subdomains (sp=none): \
                 anyone can send From any subdomain. Remove sp= or set it to quarantine or reject.",
                p.unwrap_or_default()
            ),
        );
    }
    if get("t").is_some_and(|t| t.eq_ignore_ascii_case("y")) {
        findings.add(
            Severity::Warning,
            "dmarc.testing",
            format!(
                "The DMARC record at {found_at} says t=y (testing): receivers are asked not to apply the policy. \
                 Remove t=y once the reports show your mail passes."
            ),
        );
    }
    removed_tags(&tags, found_at, findings);
    for name in tags.keys() {
        if !KNOWN_TAGS.contains(&name.as_str()) && !REMOVED_TAGS.contains(&name.as_str()) {
            findings.add(
                Severity::Warning,
                "dmarc.unknown_tag",
                format!(
                    "The DMARC record at {found_at} has an unknown tag {name}=, which receivers ignore. Check its \
                     spelling (the tags are v, p, sp, np, adkim, aspf, rua, ruf, fo, t and psd)."
                ),
            );
        }
    }
    let rua = uris(get("rua"), "rua", found_at, findings);
    let ruf = uris(get("ruf"), "ruf", found_at, findings);
    if get("rua").is_none() {
        findings.add(
            Severity::Warning,
            "dmarc.no_rua",
            format!(
                "The DMARC record at {found_at} has no rua= tag, so no receiver sends aggregate reports and you \
                 cannot see who sends as your domain or whether your mail passes. Add rua=mailto:<an address that \
                 reads reports>."
            ),
        );
    }
    // RFC 9989: without a usable p=, a record with a valid rua= URI acts
    // as p=none; without one it is not applied at all.
    let reports = rua.iter().any(|u| parse_uri(u).is_ok());
    if policy.is_none() && !reports {
        // As good as no record: as critical as `dmarc.missing`.
        findings.add(
            Severity::Critical,
            "dmarc.not_applied",
            format!(
                "The DMARC record at {found_at} has neither a valid p= tag nor a usable rua= address, so receivers \
                 ignore it: {domain} is unprotected, as with no record. Publish at least \
                 \"v=DMARC1; p=none; rua=mailto:<an address that reads reports>\"."
            ),
        );
    }
    Parsed {
        policy: policy.map(str::to_owned).or_else(|| reports.then(|| "none".to_owned())),
        tags,
        rua,
        ruf,
    }
}

/// RFC 7489 §6.3: `pct` is a whole number from 0 to 100.
fn valid_pct(value: &str) -> bool {
    let v = value.trim();
    (1..=3).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) && v.parse::<u8>().is_ok_and(|n| n <= 100)
}

fn removed_tags(tags: &BTreeMap<String, String>, found_at: &str, findings: &mut Findings) {
    let pct = tags.get("pct");
    if let Some(value) = pct.filter(|v| !valid_pct(v)) {
        // Invalid, not merely obsolete: an RFC 7489 receiver may discard
        // the record's policy for it.
        findings.add(
            Severity::Error,
            "dmarc.invalid_value",
            format!(
                "pct={value} in the DMARC record at {found_at} is not valid (a whole number from 0 to 100); \
                 receivers ignore it, or the whole record, and apply the policy to all failing mail at best. \
                 Remove pct=; use t=y while testing."
            ),
        );
    } else if let Some(pct) = pct.filter(|v| v.trim() != "100") {
        findings.add(
            Severity::Warning,
            "dmarc.pct",
            format!(
                "The DMARC record at {found_at} says pct={pct}: older receivers apply the policy to only part of the \
                 failing mail, DMARCbis ones (RFC 9989) ignore pct and apply it to all. Remove pct=; use t=y while \
                 testing."
            ),
        );
    }
    let removed: Vec<&str> = REMOVED_TAGS
        .iter()
        .copied()
        .filter(|t| tags.contains_key(*t) && (*t != "pct" || tags.get("pct").is_some_and(|v| v.trim() == "100")))
        .collect();
    if !removed.is_empty() {
        findings.add(
            Severity::Info,
            "dmarc.obsolete_tag",
            format!(
                "The DMARC record at {found_at} uses {}, removed in RFC 9989 and ignored by its receivers; they can \
                 be dropped.",
                removed.iter().map(|t| format!("{t}=")).collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

/// A DMARC report URI.
#[derive(Debug, PartialEq, Eq)]
enum Uri {
    Mailto { host: String, size_limit: bool },
    Other(String),
}

/// RFC 9989 "DMARC URIs": `mailto:local@host[!size]`, or another scheme.
fn parse_uri(uri: &str) -> Result<Uri, String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("it has no scheme".to_owned());
    };
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err("it has no scheme".to_owned());
    }
    if !scheme.eq_ignore_ascii_case("mailto") {
        return Ok(Uri::Other(scheme.to_ascii_lowercase()));
    }
    // An unescaped `!` starts RFC 7489's size limit; `?` starts headers.
    let (address, size) = match rest.split_once('!') {
        Some((address, size)) => (address, Some(size)),
        None => (rest, None),
    };
    let address = address.split('?').next().unwrap_or_default();
    let Some((local, host)) = address.rsplit_once('@') else {
        return Err("it has no @domain".to_owned());
    };
    let host = normalize_domain(host).ok_or_else(|| format!("{host:?} is not a domain"))?;
    if local.is_empty() {
        return Err("it has no local part".to_owned());
    }
    Ok(Uri::Mailto {
        host,
        size_limit: size.is_some(),
    })
}

/// The URIs of `rua=` or `ruf=`, each checked.
fn uris(value: Option<&str>, tag: &str, found_at: &str, findings: &mut Findings) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    let list: Vec<String> = value.split(',').map(|u| u.trim().to_owned()).collect();
    for uri in &list {
        match parse_uri(uri) {
            Ok(Uri::Mailto { size_limit: true, .. }) => findings.add(
                Severity::Info,
                "dmarc.size_limit",
                format!(
                    "{tag}={uri} at {found_at} carries a !size limit, which RFC 9989 removed: DMARCbis reporters \
                     ignore it."
                ),
            ),
            Ok(Uri::Mailto { .. }) => {}
            Ok(Uri::Other(scheme)) => findings.add(
                Severity::Warning,
                "dmarc.uri_scheme",
                format!(
                    "{tag}={uri} at {found_at} is a {scheme}: URI; reporters need only support mailto:, and most \
                     send nothing elsewhere. Use a mailto: address."
                ),
            ),
            Err(problem) => findings.add(
                Severity::Error,
                "dmarc.bad_uri",
                format!(
                    "{tag}={uri} at {found_at} is not a valid report URI ({problem}), so no reports are sent to it. \
                     Write it as mailto:reports@example.com."
                ),
            ),
        }
    }
    list
}

/// Whether mail to `host` can be delivered (RFC 5321 §5.1: its MX hosts,
/// else its own address; RFC 7505: a null MX says never). `uris` are the
/// report addresses at that host, named in the finding.
async fn reachable(resolver: &dyn Resolver, host: &str, uris: &[String], found_at: &str, findings: &mut Findings) {
    let why = match resolver.mail_route(host).await {
        Ok(MailRoute::Exchanges(_)) => return,
        Ok(MailRoute::NullMx) => format!("{host} publishes a null MX (RFC 7505): it accepts no mail"),
        Ok(MailRoute::Implicit) => match resolver.addresses(host).await {
            Ok(_) => return,
            Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => {
                format!("{host} has no MX record and no address, so nothing can be delivered to it")
            }
            Err(e) => return unchecked(host, uris, &e, findings),
        },
        Err(DnsError::NoSuchName(_)) => format!("{host} does not exist in DNS (NXDOMAIN)"),
        // A name that answers without MX records is the implicit MX,
        // which `mail_route` already gives; a resolver may still say so.
        Err(DnsError::NoRecords(..)) => match resolver.addresses(host).await {
            Ok(_) => return,
            Err(e @ DnsError::Temporary(..)) => return unchecked(host, uris, &e, findings),
            Err(_) => format!("{host} has no MX record and no address, so nothing can be delivered to it"),
        },
        Err(e) => return unchecked(host, uris, &e, findings),
    };
    findings.add(
        Severity::Error,
        "dmarc.undeliverable_destination",
        format!(
            "{} at {found_at} cannot receive reports: {why}. Reporters' mail to it bounces and the reports are \
             lost. Point the address at a domain that receives mail, or publish MX records for {host}.",
            uris.join(" and ")
        ),
    );
}

/// A destination DNS could not tell about: a warning, never "cannot
/// receive".
fn unchecked(host: &str, uris: &[String], error: &DnsError, findings: &mut Findings) {
    findings.add(
        Severity::Warning,
        "dmarc.destination_unchecked",
        format!(
            "DNS did not answer for {host} ({error}), so whether {} can receive reports was not checked. Check \
             {host}'s name servers and run the check again.",
            uris.join(" and ")
        ),
    );
}

/// Asks whether `host` agreed to receive reports about `policy_domain`.
async fn authorize(
    resolver: &dyn Resolver,
    policy_domain: &str,
    host: &str,
    findings: &mut Findings,
) -> DmarcDestination {
    let name = format!("{policy_domain}._report._dmarc.{host}");
    let authorized = match resolver.txt(&name).await {
        Ok(txts) => Some(txts.iter().any(|t| is_dmarc_record(t))),
        Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => Some(false),
        Err(e) => {
            findings.dns_error(&name, &e);
            None
        }
    };
    if authorized == Some(false) {
        findings.add(
            Severity::Error,
            "dmarc.unauthorized_destination",
            format!(
                "Reports for {policy_domain} go to {host}, outside its organizational domain, but {host} has not \
                 agreed to receive them, so reporters drop them (RFC 9990). {host}'s owner must publish the TXT \
                 record {name} with the value \"v=DMARC1\"."
            ),
        );
    }
    DmarcDestination {
        host: host.to_owned(),
        authorization_record: name,
        authorized,
    }
}

#[cfg(test)]
mod tests {
    use herald_dns::StaticResolver;

    use super::*;
    use crate::test_support::{absent, codes, find};

    async fn lint(r: &StaticResolver, domain: &str) -> (DmarcCheck, Vec<Finding>) {
        check(r, domain).await
    }

    /// A resolver where the report domains of these tests receive mail, so
    /// that each test sees only the findings it is about.
    fn dns() -> StaticResolver {
        [
            "acme.test",
            "reports.acme.test",
            "mail.acme.test",
            "reports.test",
            "values.test",
            "nop.test",
            "sub.test",
            "testing.test",
            "old.test",
            "pct.test",
            "uri.test",
            "ok.example",
            "nope.example",
            "vendor.example",
        ]
        .into_iter()
        .fold(StaticResolver::new(), |r, host| r.mx(host, 10, &format!("mx.{host}")))
    }

    #[test]
    fn records_are_selected_by_an_exact_version_first() {
        assert!(is_dmarc_record("v=DMARC1; p=none"));
        assert!(is_dmarc_record("v = DMARC1;p=none"));
        assert!(is_dmarc_record("V=DMARC1"));
        assert!(!is_dmarc_record("v=dmarc1; p=none"), "DMARC1 is case-sensitive");
        assert!(!is_dmarc_record("p=none; v=DMARC1"));
        assert!(!is_dmarc_record("v=DMARC10"));
        assert!(!is_dmarc_record(" v=DMARC1"));
    }

    #[test]
    fn the_walk_takes_at_most_five_queries() {
        assert_eq!(walk_names("acme.com"), vec!["acme.com", "com"]);
        assert_eq!(
            walk_names("a.mail.example.com"),
            vec!["a.mail.example.com", "mail.example.com", "example.com", "com"]
        );
        // RFC 9989's own example.
        assert_eq!(
            walk_names("a.b.c.d.e.mail.example.com"),
            vec![
                "a.b.c.d.e.mail.example.com",
                "e.mail.example.com",
                "mail.example.com",
                "example.com",
                "com"
            ]
        );
    }

    #[test]
    fn report_uris() {
        assert_eq!(
            parse_uri("mailto:dmarc@Reports.Example.NET"),
            Ok(Uri::Mailto {
                host: "reports.example.net".into(),
                size_limit: false
            })
        );
        assert_eq!(
            parse_uri("mailto:d@example.net!10m"),
            Ok(Uri::Mailto {
                host: "example.net".into(),
                size_limit: true
            })
        );
        assert_eq!(parse_uri("https://example.net/r"), Ok(Uri::Other("https".into())));
        assert!(parse_uri("dmarc@example.net").is_err());
        assert!(parse_uri("mailto:example.net").is_err());
        assert!(parse_uri("mailto:@example.net").is_err());
    }

    #[tokio::test]
    async fn a_good_record_is_clean() {
        let r = dns().txt(
            "_dmarc.acme.test",
            "v=DMARC1; p=reject; rua=mailto:dmarc@acme.test,mailto:agg@reports.acme.test; adkim=s",
        );
        let (report, findings) = lint(&r, "acme.test").await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(report.ok);
        assert_eq!(report.found_at.as_deref(), Some("_dmarc.acme.test"));
        assert!(!report.inherited);
        assert_eq!(report.policy.as_deref(), Some("reject"));
        assert_eq!(report.tags["adkim"], "s");
        assert_eq!(report.rua.len(), 2);
        assert_eq!(report.organizational_domain.as_deref(), Some("acme.test"));
        assert_eq!(
            report.summary,
            "p=reject at _dmarc.acme.test; aggregate reports to 2 addresses"
        );
    }

    #[tokio::test]
    async fn no_record_anywhere_is_critical() {
        let r = dns().txt("_dmarc.other.test", "v=DMARC1; p=reject");
        let (report, findings) = lint(&r, "mail.acme.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.missing", Severity::Critical)]);
        assert!(
            find(&findings, "dmarc.missing")
                .message
                .contains("_dmarc.mail.acme.test")
        );
        assert!(!report.ok);
        assert_eq!(report.record, None);
    }

    #[tokio::test]
    async fn a_record_without_policy_or_reports_is_as_critical_as_none() {
        let r = dns()
            .txt("_dmarc.bare.test", "v=DMARC1")
            .txt("_dmarc.reports.test", "v=DMARC1; rua=mailto:d@reports.test");
        let (report, findings) = lint(&r, "bare.test").await;
        assert_eq!(find(&findings, "dmarc.not_applied").severity, Severity::Critical);
        assert!(!report.ok);
        assert_eq!(report.policy, None);
        // With a report address it reads as p=none: a warning only.
        let (report, findings) = lint(&r, "reports.test").await;
        absent(&findings, "dmarc.not_applied");
        assert_eq!(report.policy.as_deref(), Some("none"));
    }

    #[tokio::test]
    async fn a_subdomain_inherits_its_organizational_domains_sp() {
        let r = dns().txt(
            "_dmarc.acme.test",
            "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@acme.test",
        );
        let (report, findings) = lint(&r, "news.mail.acme.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.inherited", Severity::Info)]);
        assert!(report.inherited);
        assert_eq!(report.found_at.as_deref(), Some("_dmarc.acme.test"));
        assert_eq!(report.policy.as_deref(), Some("quarantine"));
        assert_eq!(
            report.summary,
            "p=quarantine at _dmarc.acme.test (inherited); aggregate reports to 1 address"
        );
    }

    /// The nearest ancestor's record is not the one that applies: the
    /// organizational domain (the shortest with a record) is.
    #[tokio::test]
    async fn the_organizational_domain_is_the_shortest_with_a_record() {
        let r = dns()
            .txt("_dmarc.mail.acme.test", "v=DMARC1; p=none; rua=mailto:d@acme.test")
            .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:d@acme.test");
        let (report, _) = lint(&r, "a.mail.acme.test").await;
        assert_eq!(report.found_at.as_deref(), Some("_dmarc.acme.test"));
        assert_eq!(report.organizational_domain.as_deref(), Some("acme.test"));
        // psd=n makes a domain its own organization and stops the walk.
        let r = dns()
            .txt(
                "_dmarc.mail.acme.test",
                "v=DMARC1; p=none; psd=n; rua=mailto:d@mail.acme.test",
            )
            .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:d@acme.test");
        let (report, _) = lint(&r, "a.mail.acme.test").await;
        assert_eq!(report.organizational_domain.as_deref(), Some("mail.acme.test"));
        assert_eq!(report.policy.as_deref(), Some("none"));
        // psd=y above: the organization is one label below the suffix.
        let r = dns().txt("_dmarc.test", "v=DMARC1; p=reject; psd=y");
        let (report, findings) = lint(&r, "a.acme.test").await;
        assert_eq!(report.organizational_domain.as_deref(), Some("acme.test"));
        assert_eq!(report.found_at.as_deref(), Some("_dmarc.test"));
        absent(&findings, "dmarc.psd");
    }

    #[tokio::test]
    async fn syntax_problems_are_errors() {
        let r = dns()
            .txt("_dmarc.case.test", "v=dmarc1; p=reject")
            .txt("_dmarc.order.test", "p=reject; v=DMARC1")
            .txt("_dmarc.pairs.test", "v=DMARC1; p reject")
            .txt(
                "_dmarc.values.test",
                "v=DMARC1; p=rejected; sp=all; adkim=x; t=maybe; rua=mailto:d@values.test",
            )
            .txt("_dmarc.two.test", "v=DMARC1; p=none")
            .txt("_dmarc.two.test", "v=DMARC1; p=reject");
        let (_, findings) = lint(&r, "case.test").await;
        assert_eq!(
            codes(&findings),
            vec![("dmarc.syntax", Severity::Error), ("dmarc.missing", Severity::Critical)]
        );
        let (_, findings) = lint(&r, "order.test").await;
        assert!(find(&findings, "dmarc.syntax").message.contains("start with v=DMARC1"));
        let (_, findings) = lint(&r, "pairs.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.syntax", Severity::Error)]);
        let (report, findings) = lint(&r, "values.test").await;
        let invalid: Vec<&str> = findings
            .iter()
            .filter(|f| f.code == "dmarc.invalid_value")
            .map(|f| f.message.split(' ').next().unwrap())
            .collect();
        assert_eq!(invalid, vec!["p=rejected", "sp=all", "adkim=x", "t=maybe"]);
        assert_eq!(
            report.policy.as_deref(),
            Some("none"),
            "a bad p= falls back to none when rua= is valid"
        );
        let (report, findings) = lint(&r, "two.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("dmarc.multiple_records", Severity::Error),
                ("dmarc.missing", Severity::Critical)
            ]
        );
        assert_eq!(report.record, None);
    }

    #[tokio::test]
    async fn weak_policies_and_missing_reports_are_warnings() {
        let r = dns()
            .txt("_dmarc.none.test", "v=DMARC1; p=none")
            .txt("_dmarc.nop.test", "v=DMARC1; rua=mailto:d@nop.test")
            .txt("_dmarc.sub.test", "v=DMARC1; p=reject; sp=none; rua=mailto:d@sub.test")
            .txt(
                "_dmarc.testing.test",
                "v=DMARC1; p=reject; t=y; rua=mailto:d@testing.test",
            );
        let (report, findings) = lint(&r, "none.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("dmarc.policy_none", Severity::Warning),
                ("dmarc.no_rua", Severity::Warning)
            ]
        );
        assert!(report.ok, "warnings only");
        let (report, findings) = lint(&r, "nop.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.no_policy", Severity::Warning)]);
        assert_eq!(report.policy.as_deref(), Some("none"));
        let (_, findings) = lint(&r, "sub.test").await;
        assert_eq!(
            codes(&findings),
            vec![("dmarc.subdomain_policy_none", Severity::Warning)]
        );
        let (_, findings) = lint(&r, "testing.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.testing", Severity::Warning)]);
    }

    #[tokio::test]
    async fn removed_and_unknown_tags() {
        let r = dns()
            .txt(
                "_dmarc.old.test",
                "v=DMARC1; p=reject; pct=100; ri=86400; rf=afrf; rua=mailto:d@old.test",
            )
            .txt(
                "_dmarc.pct.test",
                "v=DMARC1; p=quarantine; pct=20; rua=mailto:d@pct.test",
            )
            .txt("_dmarc.typo.test", "v=DMARC1; p=reject; rau=mailto:d@typo.test");
        let (_, findings) = lint(&r, "old.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.obsolete_tag", Severity::Info)]);
        assert!(find(&findings, "dmarc.obsolete_tag").message.contains("pct=, rf=, ri="));
        let (_, findings) = lint(&r, "pct.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.pct", Severity::Warning)]);
        let (_, findings) = lint(&r, "typo.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("dmarc.unknown_tag", Severity::Warning),
                ("dmarc.no_rua", Severity::Warning)
            ]
        );
        assert!(find(&findings, "dmarc.unknown_tag").message.contains("rau="));
    }

    #[tokio::test]
    async fn report_uris_are_checked() {
        let r = dns().txt(
            "_dmarc.uri.test",
            "v=DMARC1; p=reject; rua=dmarc@uri.test, https://r.uri.test/x, mailto:d@uri.test!10m",
        );
        let (report, findings) = lint(&r, "uri.test").await;
        assert_eq!(
            codes(&findings),
            vec![
                ("dmarc.bad_uri", Severity::Error),
                ("dmarc.uri_scheme", Severity::Warning),
                ("dmarc.size_limit", Severity::Info)
            ]
        );
        assert!(find(&findings, "dmarc.bad_uri").message.contains("rua=dmarc@uri.test"));
        assert_eq!(report.rua.len(), 3);
    }

    #[tokio::test]
    async fn external_destinations_need_their_consent() {
        let r = dns()
            .txt(
                "_dmarc.acme.test",
                "v=DMARC1; p=reject; rua=mailto:a@ok.example,mailto:b@nope.example; ruf=mailto:c@nope.example",
            )
            .txt("acme.test._report._dmarc.ok.example", "v=DMARC1")
            .txt("nope.example", "unrelated");
        let (report, findings) = lint(&r, "acme.test").await;
        assert_eq!(
            codes(&findings),
            vec![("dmarc.unauthorized_destination", Severity::Error)]
        );
        assert!(
            find(&findings, "dmarc.unauthorized_destination")
                .message
                .contains("acme.test._report._dmarc.nope.example")
        );
        assert_eq!(
            report.external_destinations,
            vec![
                DmarcDestination {
                    host: "ok.example".into(),
                    authorization_record: "acme.test._report._dmarc.ok.example".into(),
                    authorized: Some(true),
                },
                DmarcDestination {
                    host: "nope.example".into(),
                    authorization_record: "acme.test._report._dmarc.nope.example".into(),
                    authorized: Some(false),
                }
            ],
            "each host once, rua and ruf together"
        );
    }

    /// An inherited record's destinations are authorised for the domain
    /// that published it.
    #[tokio::test]
    async fn inherited_destinations_are_checked_for_the_policy_domain() {
        let r = dns()
            .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:a@vendor.example")
            .txt("acme.test._report._dmarc.vendor.example", "v=DMARC1;");
        let (report, findings) = lint(&r, "mail.acme.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.inherited", Severity::Info)]);
        assert_eq!(report.external_destinations[0].authorized, Some(true));
    }

    #[tokio::test]
    async fn a_pct_outside_0_to_100_is_invalid() {
        for bad in ["150", "-1", "abc", "", "1000", "+50", "50.5"] {
            let r = dns().txt(
                "_dmarc.acme.test",
                &format!("v=DMARC1; p=reject; pct={bad}; rua=mailto:d@acme.test"),
            );
            let (_, findings) = lint(&r, "acme.test").await;
            assert_eq!(
                codes(&findings),
                vec![("dmarc.invalid_value", Severity::Error)],
                "pct={bad}"
            );
            assert!(
                find(&findings, "dmarc.invalid_value").message.starts_with(&format!(
                    "pct={bad} in the DMARC record at _dmarc.acme.test is not valid"
                )),
                "{findings:?}"
            );
        }
        // The ends of the range are valid: 0 is a warning like 20.
        for (good, code) in [("0", "dmarc.pct"), ("100", "dmarc.obsolete_tag")] {
            let r = dns().txt(
                "_dmarc.acme.test",
                &format!("v=DMARC1; p=reject; pct={good}; rua=mailto:d@acme.test"),
            );
            let (_, findings) = lint(&r, "acme.test").await;
            assert_eq!(codes(&findings).first().map(|c| c.0), Some(code), "pct={good}");
            absent(&findings, "dmarc.invalid_value");
        }
    }

    #[tokio::test]
    async fn report_destinations_that_cannot_receive_mail_are_errors() {
        let r = dns()
            .txt(
                "_dmarc.acme.test",
                "v=DMARC1; p=reject; rua=mailto:a@nullmx.acme.test,mailto:b@host.acme.test; \
                 ruf=mailto:c@nowhere.acme.test,mailto:d@gone.acme.test,mailto:e@nullmx.acme.test",
            )
            .mx("nullmx.acme.test", 0, ".")
            // No MX, but an address: the implicit MX receives.
            .ip("host.acme.test", "192.0.2.1".parse().unwrap())
            // Exists (a TXT record), no MX, no address.
            .txt("nowhere.acme.test", "v=spf1 -all");
        let (report, findings) = lint(&r, "acme.test").await;
        let undeliverable: Vec<&str> = findings
            .iter()
            .filter(|f| f.code == "dmarc.undeliverable_destination")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(undeliverable.len(), 3, "{findings:#?}");
        assert!(
            undeliverable[0].starts_with("rua=mailto:a@nullmx.acme.test and ruf=mailto:e@nullmx.acme.test at")
                && undeliverable[0].contains("null MX"),
            "{}",
            undeliverable[0]
        );
        assert!(
            undeliverable[1].starts_with("ruf=mailto:c@nowhere.acme.test")
                && undeliverable[1].contains("no MX record and no address"),
            "{}",
            undeliverable[1]
        );
        assert!(
            undeliverable[2].starts_with("ruf=mailto:d@gone.acme.test") && undeliverable[2].contains("NXDOMAIN"),
            "{}",
            undeliverable[2]
        );
        assert!(findings.iter().all(|f| f.severity == Severity::Error), "{findings:#?}");
        assert!(!report.ok);
    }

    #[tokio::test]
    async fn a_destination_dns_cannot_answer_for_is_only_a_warning() {
        let r = dns()
            .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:a@down.acme.test")
            .fail("down.acme.test");
        let (report, findings) = lint(&r, "acme.test").await;
        assert_eq!(
            codes(&findings),
            vec![("dmarc.destination_unchecked", Severity::Warning)]
        );
        assert!(
            find(&findings, "dmarc.destination_unchecked")
                .message
                .contains("rua=mailto:a@down.acme.test")
        );
        assert!(report.ok, "a DNS failure does not say the address cannot receive");
    }

    #[tokio::test]
    async fn dns_failures_are_not_a_missing_record() {
        let r = dns().fail("_dmarc.down.test");
        let (report, findings) = lint(&r, "down.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.dns_error", Severity::Error)]);
        assert_eq!(report.summary, "DNS did not answer");
        let r = dns()
            .txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:a@vendor.example")
            .fail("acme.test._report._dmarc.vendor.example");
        let (report, findings) = lint(&r, "acme.test").await;
        assert_eq!(codes(&findings), vec![("dmarc.dns_error", Severity::Error)]);
        assert_eq!(report.external_destinations[0].authorized, None);
    }
}
