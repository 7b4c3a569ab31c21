//! DNS blocklists: which lists exist, how each is asked, what each answer
//! means, and the check of many addresses and domains against many lists
//! at a bounded pace.
//!
//! A DNSBL is asked with an A query: an IPv4 address's octets reversed
//! (`10.2.0.192.zen.spamhaus.org` for 192.0.2.10), an IPv6 address's 32
//! nibbles reversed, or a domain as it is (`acme.com.dbl.spamhaus.org`).
//! NXDOMAIN means not listed. An answer is read by the list's own table:
//! the codes it documents as listings (with their meanings), the codes it
//! documents as a refusal of the query (Spamhaus' 127.255.255.254 for
//! queries through public resolvers, URIBL's and SURBL's 127.0.0.1), and
//! for the URI lists a bit mask. Whatever the list: an answer in
//! 127.255.255.0/24 is a query error, and an answer outside 127.0.0.0/8 is
//! a resolver that rewrites NXDOMAIN, never a listing — a check that
//! cannot tell says "error", not "listed" and not "clean".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use herald_api_types::monitor::{BlocklistReport, ListAnswer, ListStatus, TargetKind};
use herald_dns::{DnsError, Resolver};
use ipnet::IpNet;

/// What a list answers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// IPv4 addresses, and IPv6 ones when `ipv6` is set.
    Ip { ipv6: bool },
    /// Domain names.
    Domain,
}

/// How a list's answers read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Codes {
    /// Exact codes, each with its meaning; other 127.0.0.0/8 answers are
    /// listings of unknown meaning.
    Table(&'static [(u8, u8, &'static str)]),
    /// The last octet is a bit mask (SURBL, URIBL).
    Bits(&'static [(u8, &'static str)]),
    /// Spamhaus' Zero Reputation Domains: 127.0.2.N, first seen N hours ago.
    Hours,
}

/// One blocklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocklist {
    /// The DNS zone queries go to.
    pub zone: String,
    pub name: String,
    pub subject: Subject,
    codes: Codes,
    /// Answers the list documents as refusals or errors: (third octet,
    /// fourth octet, meaning) under 127.
    errors: &'static [(u8, u8, &'static str)],
    /// Answers that are not listings (a reputation list's neutral and good
    /// grades).
    clean: &'static [(u8, u8, &'static str)],
    /// Whether the list publishes a TXT record with each listing.
    txt: bool,
    /// Points a listing takes off a reputation score.
    pub weight: u32,
    /// `{}` stands for the address or domain.
    delist: Option<String>,
}

/// Spamhaus ZEN: SBL, CSS, XBL, PBL (and DROP through SBL) in one zone.
const ZEN: &[(u8, u8, &str)] = &[
    (
        0,
        2,
        "SBL: a direct spam source or spam operation (Spamhaus Block List)",
    ),
    (0, 3, "CSS: a spam source seen sending low-reputation mail (SBL CSS)"),
    (
        0,
        4,
        "XBL: an infected or exploited host sending spam (Exploits Block List)",
    ),
    (0, 5, "XBL: an infected or exploited host (Exploits Block List)"),
    (0, 6, "XBL: an infected or exploited host (Exploits Block List)"),
    (0, 7, "XBL: an infected or exploited host (Exploits Block List)"),
    (
        0,
        9,
        "DROP: a hijacked or leased-to-spammers network (Don't Route Or Peer)",
    ),
    (
        0,
        10,
        "PBL: an end-user address range (the ISP says it should not send mail directly)",
    ),
    (
        0,
        11,
        "PBL: an end-user address range (Spamhaus says it should not send mail directly)",
    ),
];

/// Spamhaus' answers for refused queries, in every zone.
const SPAMHAUS_ERRORS: &[(u8, u8, &str)] = &[
    (255, 252, "Spamhaus: typing error in the list's name"),
    (
        255,
        254,
        "Spamhaus refused the query: it came through a public or open resolver (use your own resolver or a DQS key)",
    ),
    (255, 255, "Spamhaus refused the query: too many queries (rate limited)"),
    (1, 255, "Spamhaus DBL: an IP address was asked about, not a domain"),
];

/// Spamhaus DBL (and the Zero Reputation Domains, 127.0.2.x).
const DBL: &[(u8, u8, &str)] = &[
    (1, 2, "DBL: a spam domain"),
    (1, 4, "DBL: a phishing domain"),
    (1, 5, "DBL: a malware domain"),
    (1, 6, "DBL: a botnet command and control domain"),
    (1, 102, "DBL: an abused legitimate domain used in spam"),
    (1, 103, "DBL: an abused legitimate domain used as a spammed redirector"),
    (1, 104, "DBL: an abused legitimate domain used in phishing"),
    (1, 105, "DBL: an abused legitimate domain used for malware"),
    (
        1,
        106,
        "DBL: an abused legitimate domain used for botnet command and control",
    ),
];

const LISTED: &[(u8, u8, &str)] = &[(0, 2, "listed")];

/// Mailspike: 127.0.0.2 took part in a spam wave; 10–12 are its worst
/// reputation grades (the ones `bl.mailspike.net` carries).
const MAILSPIKE: &[(u8, u8, &str)] = &[
    (0, 2, "Mailspike: took part in a recent spam wave"),
    (0, 10, "Mailspike: worst reputation (L5)"),
    (0, 11, "Mailspike: very bad reputation (L4)"),
    (0, 12, "Mailspike: bad reputation (L3)"),
];
/// `rep.mailspike.net` grades every address it knows: 13 and up are
/// suspicious to excellent, not listings.
const MAILSPIKE_GRADES: &[(u8, u8, &str)] = &[
    (0, 13, "suspicious (L2)"),
    (0, 14, "neutral, probably spam (L1)"),
    (0, 15, "neutral"),
    (0, 16, "neutral, probably legitimate"),
    (0, 17, "possibly legitimate (H2)"),
    (0, 18, "good (H3)"),
    (0, 19, "very good (H4)"),
    (0, 20, "excellent (H5)"),
];

/// SURBL multi: bit 2 abuse list (ABUSE, 64), phishing 8, malware 16,
/// cracked sites 128.
const SURBL_BITS: &[(u8, &str)] = &[
    (8, "SURBL PH: phishing"),
    (16, "SURBL MW: malware"),
    (64, "SURBL ABUSE: spam and abuse"),
    (128, "SURBL CR: cracked (compromised) site"),
];
const ZRD_ERRORS: &[(u8, u8, &str)] = &[(2, 255, "Spamhaus ZRD: an IP address was asked about, not a domain")];

const SURBL_ERRORS: &[(u8, u8, &str)] = &[(0, 1, "SURBL refused the query (blocked resolver or a non-domain)")];

/// URIBL multi: black 2, grey 4, red 8 (1 is a refused query).
const URIBL_BITS: &[(u8, &str)] = &[
    (2, "URIBL black: a domain in spam, high confidence"),
    (4, "URIBL grey: a domain in bulk mail that recipients often do not want"),
    (8, "URIBL red: a domain in spam, being watched"),
];
const URIBL_ERRORS: &[(u8, u8, &str)] = &[(0, 1, "URIBL refused the query (blocked resolver or too many queries)")];

/// One entry of the built-in catalogue.
struct Known {
    /// The zone and the zones that answer the same way (Spamhaus' DQS
    /// zones are `<key>.zen.dq.spamhaus.net`).
    zones: &'static [&'static str],
    name: &'static str,
    subject: Subject,
    codes: Codes,
    errors: &'static [(u8, u8, &'static str)],
    clean: &'static [(u8, u8, &'static str)],
    txt: bool,
    weight: u32,
    delist: Option<&'static str>,
}

/// `(zones, name, subject, codes, errors, clean, txt, weight, delist)`,
/// one line per list.
macro_rules! known {
    ($zones:expr, $name:expr, $subject:expr, $codes:expr, $errors:expr, $clean:expr, $txt:expr, $weight:expr, $delist:expr) => {
        Known {
            zones: $zones,
            name: $name,
            subject: $subject,
            codes: $codes,
            errors: $errors,
            clean: $clean,
            txt: $txt,
            weight: $weight,
            delist: Some($delist),
        }
    };
}

const SPAMHAUS_LOOKUP: &str = "https://check.spamhaus.org/listed/?searchterm={}";
const UCEPROTECT_LOOKUP: &str = "https://www.uceprotect.net/en/rblcheck.php?ipr={}";
const V4: Subject = Subject::Ip { ipv6: false };
const V4_V6: Subject = Subject::Ip { ipv6: true };

/// The lists Herald knows, with their codes (from the lists' documentation
/// as rspamd's `rbl.conf` and SpamAssassin's rules read them) and the
/// points a listing costs: lists that judge an address by its own mail
/// weigh most, those that list a whole provider least (UCEPROTECT 3).
/// SORBS is absent: it shut down in June 2024 and its zones must not be
/// trusted.
const CATALOGUE: &[Known] = &[
    known!(
        &["zen.spamhaus.org", "zen.dq.spamhaus.net"],
        "Spamhaus ZEN",
        V4_V6,
        Codes::Table(ZEN),
        SPAMHAUS_ERRORS,
        &[],
        true,
        25,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["sbl.spamhaus.org", "sbl.dq.spamhaus.net"],
        "Spamhaus SBL",
        V4_V6,
        Codes::Table(ZEN),
        SPAMHAUS_ERRORS,
        &[],
        true,
        25,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["xbl.spamhaus.org", "xbl.dq.spamhaus.net"],
        "Spamhaus XBL",
        V4_V6,
        Codes::Table(ZEN),
        SPAMHAUS_ERRORS,
        &[],
        true,
        25,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["pbl.spamhaus.org", "pbl.dq.spamhaus.net"],
        "Spamhaus PBL",
        V4_V6,
        Codes::Table(ZEN),
        SPAMHAUS_ERRORS,
        &[],
        true,
        20,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["dbl.spamhaus.org", "dbl.dq.spamhaus.net"],
        "Spamhaus DBL",
        Subject::Domain,
        Codes::Table(DBL),
        SPAMHAUS_ERRORS,
        &[],
        true,
        25,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["zrd.dq.spamhaus.net"],
        "Spamhaus ZRD",
        Subject::Domain,
        Codes::Hours,
        ZRD_ERRORS,
        &[],
        false,
        5,
        SPAMHAUS_LOOKUP
    ),
    known!(
        &["bl.spamcop.net"],
        "SpamCop",
        V4,
        Codes::Table(&[(
            0,
            2,
            "SpamCop: reported as a spam source by SpamCop users (expires about 24 h after the last report)"
        )]),
        &[],
        &[],
        true,
        15,
        "https://www.spamcop.net/bl.shtml?{}"
    ),
    known!(
        &["b.barracudacentral.org"],
        "Barracuda",
        V4,
        Codes::Table(&[(0, 2, "Barracuda: poor reputation (Barracuda Reputation Block List)")]),
        &[],
        &[],
        true,
        15,
        "https://www.barracudacentral.org/lookups/lookup-reputation?lookup_entry={}"
    ),
    known!(
        &["dnsbl-1.uceprotect.net"],
        "UCEPROTECT level 1",
        V4,
        Codes::Table(&[(
            0,
            2,
            "UCEPROTECT level 1: this address sent to spam traps (expires by itself)"
        )]),
        &[],
        &[],
        true,
        10,
        UCEPROTECT_LOOKUP
    ),
    known!(
        &["dnsbl-2.uceprotect.net"],
        "UCEPROTECT level 2",
        V4,
        Codes::Table(&[(
            0,
            2,
            "UCEPROTECT level 2: the address's allocation holds many level-1 listings"
        )]),
        &[],
        &[],
        true,
        5,
        UCEPROTECT_LOOKUP
    ),
    known!(
        &["dnsbl-3.uceprotect.net"],
        "UCEPROTECT level 3",
        V4,
        Codes::Table(&[(
            0,
            2,
            "UCEPROTECT level 3: the address's provider (AS) holds many level-1 listings"
        )]),
        &[],
        &[],
        true,
        2,
        UCEPROTECT_LOOKUP
    ),
    known!(
        &["psbl.surriel.com"],
        "PSBL",
        V4,
        Codes::Table(&[(
            0,
            2,
            "PSBL: sent mail to the Passive Spam Block List's spam traps (self-removal at psbl.org)"
        )]),
        &[],
        &[],
        true,
        10,
        "https://psbl.org/listing?ip={}"
    ),
    known!(
        &["bl.mailspike.net"],
        "Mailspike BL",
        V4,
        Codes::Table(MAILSPIKE),
        &[],
        &[],
        true,
        10,
        "https://mailspike.org/iplookup.html"
    ),
    known!(
        &["rep.mailspike.net"],
        "Mailspike reputation",
        V4,
        Codes::Table(MAILSPIKE),
        &[],
        MAILSPIKE_GRADES,
        false,
        10,
        "https://mailspike.org/iplookup.html"
    ),
    known!(
        &["multi.surbl.org"],
        "SURBL",
        Subject::Domain,
        Codes::Bits(SURBL_BITS),
        SURBL_ERRORS,
        &[],
        true,
        20,
        "https://www.surbl.org/surbl-analysis"
    ),
    known!(
        &["multi.uribl.com"],
        "URIBL",
        Subject::Domain,
        Codes::Bits(URIBL_BITS),
        URIBL_ERRORS,
        &[],
        true,
        20,
        "https://lookup.uribl.com/?domain={}"
    ),
];

/// The lists checked when the configuration names none: the major free
/// lists for addresses and for domains (Barracuda answers only resolvers
/// registered with it; UCEPROTECT's levels 2 and 3 list whole networks).
pub const DEFAULT_LISTS: &[&str] = &[
    "zen.spamhaus.org",
    "bl.spamcop.net",
    "b.barracudacentral.org",
    "dnsbl-1.uceprotect.net",
    "dnsbl-2.uceprotect.net",
    "dnsbl-3.uceprotect.net",
    "psbl.surriel.com",
    "bl.mailspike.net",
    "dbl.spamhaus.org",
    "multi.surbl.org",
    "multi.uribl.com",
];

fn zone_matches(zone: &str, known: &str) -> bool {
    zone == known || zone.strip_suffix(known).is_some_and(|head| head.ends_with('.'))
}

impl Blocklist {
    /// A list by its zone: the catalogue's entry when it knows the zone
    /// (or a zone under one of its own, such as a Spamhaus DQS key's), or
    /// else an IPv4 list read the generic way. `None` for a zone that is
    /// not a DNS name.
    pub fn named(zone: &str) -> Option<Self> {
        let zone = crate::normalize_domain(zone)?;
        Some(
            match CATALOGUE
                .iter()
                .find(|k| k.zones.iter().any(|z| zone_matches(&zone, z)))
            {
                Some(k) => Self {
                    zone,
                    name: k.name.to_owned(),
                    subject: k.subject,
                    codes: k.codes.clone(),
                    errors: k.errors,
                    clean: k.clean,
                    txt: k.txt,
                    weight: k.weight,
                    delist: k.delist.map(str::to_owned),
                },
                None => Self::custom(&zone, &zone, Subject::Ip { ipv6: false }, None)?,
            },
        )
    }

    /// A list the catalogue does not know: every answer in 127.0.0.0/8
    /// outside 127.255.255.0/24 is a listing.
    pub fn custom(zone: &str, name: &str, subject: Subject, delist: Option<String>) -> Option<Self> {
        Some(Self {
            zone: crate::normalize_domain(zone)?,
            name: name.to_owned(),
            subject,
            codes: Codes::Table(LISTED),
            errors: &[],
            clean: &[],
            txt: true,
            weight: 10,
            delist,
        })
    }

    /// Whether this list answers about `target`.
    pub fn applies_to(&self, target: &Query) -> bool {
        match (self.subject, target) {
            (Subject::Ip { .. }, Query::Ip(IpAddr::V4(_))) => true,
            (Subject::Ip { ipv6 }, Query::Ip(IpAddr::V6(_))) => ipv6,
            (Subject::Domain, Query::Domain(_)) => true,
            _ => false,
        }
    }

    /// The name asked for `target` in this list.
    pub fn query_name(&self, target: &Query) -> String {
        match target {
            Query::Ip(ip) => {
                let reversed = herald_dns::reverse_name(*ip);
                let labels = reversed
                    .strip_suffix(".in-addr.arpa")
                    .or_else(|| reversed.strip_suffix(".ip6.arpa"))
                    .unwrap_or(&reversed);
                format!("{labels}.{}", self.zone)
            }
            Query::Domain(d) => format!("{d}.{}", self.zone),
        }
    }

    /// Where a listing of `target` is looked up and removed.
    pub fn delist_url(&self, target: &str) -> Option<String> {
        self.delist.as_ref().map(|t| t.replace("{}", target))
    }

    /// What an answer's addresses mean: listed with meanings, or an error.
    pub fn interpret(&self, answers: &[Ipv4Addr]) -> (ListStatus, Vec<String>) {
        let mut meanings = Vec::new();
        let mut errors = Vec::new();
        for a in answers {
            let [first, _, third, fourth] = a.octets();
            if first != 127 {
                errors.push(format!(
                    "{a} is outside 127.0.0.0/8: the resolver rewrites answers (NXDOMAIN hijacking), so this list \
                     cannot be read through it"
                ));
                continue;
            }
            if let Some((_, _, m)) = self.errors.iter().find(|(t, f, _)| *t == third && *f == fourth) {
                errors.push((*m).to_owned());
                continue;
            }
            if a.octets()[1] == 255 && third == 255 {
                errors.push(format!("{a}: the list refused the query"));
                continue;
            }
            if self.clean.iter().any(|(t, f, _)| *t == third && *f == fourth) {
                continue;
            }
            match &self.codes {
                Codes::Table(table) => match table.iter().find(|(t, f, _)| *t == third && *f == fourth) {
                    Some((_, _, m)) => meanings.push((*m).to_owned()),
                    None => meanings.push(format!("listed (code {a})")),
                },
                Codes::Hours if third == 2 && (2..=24).contains(&fourth) => meanings.push(format!(
                    "ZRD: a domain first seen within the last {fourth} hours (zero reputation)"
                )),
                Codes::Hours => meanings.push(format!("listed (code {a})")),
                Codes::Bits(bits) => {
                    let found: Vec<&str> = bits.iter().filter(|(b, _)| fourth & b != 0).map(|(_, m)| *m).collect();
                    if found.is_empty() {
                        meanings.push(format!("listed (code {a})"));
                    } else {
                        meanings.extend(found.into_iter().map(str::to_owned));
                    }
                }
            }
        }
        if meanings.is_empty() && !errors.is_empty() {
            (ListStatus::Error, errors)
        } else if meanings.is_empty() {
            (ListStatus::Clean, Vec::new())
        } else {
            (ListStatus::Listed, meanings)
        }
    }
}

/// One address or domain to ask lists about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Query {
    Ip(IpAddr),
    Domain(String),
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Domain(d) => f.write_str(d),
        }
    }
}

/// Addresses sampled from one network, at most this many.
pub const MAX_SAMPLES: usize = 16;

/// What `herald check blocklists` and the API accept: an address, a
/// network in CIDR notation, or a domain. `None` for anything else.
pub fn parse_target(input: &str) -> Option<(TargetKind, IpNet)> {
    let input = input.trim();
    if let Ok(ip) = input.parse::<IpAddr>() {
        return Some((TargetKind::Ip, IpNet::from(ip)));
    }
    let net = input.parse::<IpNet>().ok()?;
    let net = net.trunc();
    if net.prefix_len() == net.max_prefix_len() {
        return Some((TargetKind::Ip, net));
    }
    Some((TargetKind::Network, net))
}

/// The addresses a network is checked by: lists name single addresses, and
/// a network's reputation shows in its first and last addresses and in one
/// address of each /24 (each /64 for IPv6), spread evenly, at most `max`.
/// Blocklists that list ranges (SBL, DROP, PBL, UCEPROTECT 2) answer for
/// any address in them, so a sample finds them without asking for every
/// address.
pub fn sample(net: IpNet, max: usize) -> Vec<IpAddr> {
    let max = max.max(1);
    let net = net.trunc();
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if host_bits == 0 {
        return vec![net.addr()];
    }
    // The unit a list judges by: a /24 for IPv4, a /64 for IPv6.
    let unit_bits: u32 = match net {
        IpNet::V4(_) => 8,
        IpNet::V6(_) => 64,
    };
    let base: u128 = match net.network() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let to_ip = |n: u128| -> IpAddr {
        match net {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
        }
    };
    let size: u128 = if host_bits >= 128 {
        u128::MAX
    } else {
        1u128 << host_bits
    };
    let mut out: Vec<u128> = Vec::new();
    if host_bits <= unit_bits {
        // Within one unit: the first and last usable addresses.
        let (first, last) = if host_bits <= 1 || matches!(net, IpNet::V6(_)) {
            (base, base + (size - 1))
        } else {
            (base + 1, base + size - 2)
        };
        out.push(first);
        if matches!(net, IpNet::V4(_)) {
            out.push(last);
        }
    } else {
        let units_bits = host_bits - unit_bits;
        let units: u128 = if units_bits >= 128 {
            u128::MAX
        } else {
            1u128 << units_bits
        };
        let unit_size: u128 = 1u128 << unit_bits;
        let take = u128::try_from(max).unwrap_or(u128::MAX).min(units);
        for i in 0..take {
            // Evenly spread: unit k = i * (units - 1) / (take - 1).
            let k = if take == 1 { 0 } else { mul_div(i, units - 1, take - 1) };
            out.push(base + k * unit_size + 1);
        }
    }
    out.dedup();
    out.truncate(max);
    out.into_iter().map(to_ip).collect()
}

/// `a * b / c` without overflow for the values [`sample`] uses.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    match a.checked_mul(b) {
        Some(p) => p / c,
        None => (b / c) * a + ((b % c) * a) / c,
    }
}

/// The names a domain is looked up by: itself, then its parents from the
/// shortest (two labels) up (URI lists list registered domains, and a
/// listed domain makes its subdomains suspect), at most four in all.
pub fn domain_names(domain: &str) -> Vec<String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let mut out = vec![domain.clone()];
    for keep in 2..labels.len() {
        if out.len() == 4 {
            break;
        }
        out.push(labels[labels.len() - keep..].join("."));
    }
    out
}

/// How a batch of lookups runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// The longest one lookup may take, retries included.
    pub timeout: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            concurrency: 64,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What a target stands for: the addresses or domain names asked about.
/// `None` when `input` is neither an address, a network nor a domain.
pub fn expand(input: &str, max_samples: usize) -> Option<(String, TargetKind, Vec<Query>)> {
    if let Some((kind, net)) = parse_target(input) {
        let queries = sample(net, max_samples).into_iter().map(Query::Ip).collect();
        let shown = match kind {
            TargetKind::Ip => net.addr().to_string(),
            _ => net.to_string(),
        };
        return Some((shown, kind, queries));
    }
    let domain = crate::normalize_domain(input)?;
    let queries = domain_names(&domain).into_iter().map(Query::Domain).collect();
    Some((domain, TargetKind::Domain, queries))
}

/// A live check of one target (an address, a network or a domain) against
/// `lists`; `None` when the target is none of those. The history is left
/// empty for the caller to fill.
pub async fn check_target(
    resolver: &dyn Resolver,
    lists: &[Blocklist],
    input: &str,
    pace: Pace,
    max_samples: usize,
) -> Option<BlocklistReport> {
    let (target, kind, queries) = expand(input, max_samples)?;
    let answers = check(resolver, lists, &queries, pace).await;
    Some(BlocklistReport {
        target,
        kind,
        checked: queries.iter().map(ToString::to_string).collect(),
        listed: answers.iter().any(|a| a.status == ListStatus::Listed),
        errors: u32::try_from(answers.iter().filter(|a| a.status == ListStatus::Error).count()).unwrap_or(u32::MAX),
        answers,
        history: Vec::new(),
    })
}

type Lookup<'a> = Pin<Box<dyn Future<Output = ListAnswer> + Send + 'a>>;

/// Asks every list that applies about every query, at most
/// `pace.concurrency` lookups at a time; one answer per (query, list), in
/// the order of `queries` then `lists`.
pub async fn check(resolver: &dyn Resolver, lists: &[Blocklist], queries: &[Query], pace: Pace) -> Vec<ListAnswer> {
    let mut jobs: Vec<Lookup<'_>> = Vec::new();
    for q in queries {
        for list in lists.iter().filter(|l| l.applies_to(q)) {
            jobs.push(Box::pin(ask(resolver, list, q, pace.timeout)));
        }
    }
    futures_util::stream::iter(jobs)
        .buffered(pace.concurrency.max(1))
        .collect()
        .await
}

async fn ask(resolver: &dyn Resolver, list: &Blocklist, query: &Query, timeout: Duration) -> ListAnswer {
    let name = list.query_name(query);
    let address = query.to_string();
    let mut answer = ListAnswer {
        list: list.zone.clone(),
        name: list.name.clone(),
        address: address.clone(),
        status: ListStatus::Clean,
        codes: Vec::new(),
        meanings: Vec::new(),
        detail: None,
        delist_url: None,
    };
    let reply = tokio::time::timeout(timeout, resolver.ipv4(&name)).await;
    match reply {
        Err(_) => {
            answer.status = ListStatus::Error;
            answer.detail = Some(format!("no answer within {} s", timeout.as_secs()));
        }
        Ok(Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..))) => {}
        Ok(Err(e)) => {
            answer.status = ListStatus::Error;
            answer.detail = Some(e.to_string());
        }
        Ok(Ok(mut codes)) => {
            codes.sort();
            codes.dedup();
            let (status, meanings) = list.interpret(&codes);
            answer.codes = codes.iter().map(ToString::to_string).collect();
            answer.status = status;
            if status == ListStatus::Error {
                answer.detail = Some(meanings.join("; "));
            } else {
                answer.meanings = meanings;
            }
            if status == ListStatus::Listed {
                answer.delist_url = list.delist_url(&address);
                if list.txt
                    && let Ok(Ok(txt)) = tokio::time::timeout(timeout, resolver.txt(&name)).await
                {
                    let text: String = txt.join(" ").chars().filter(|c| !c.is_control()).take(500).collect();
                    if !text.is_empty() {
                        answer.detail = Some(text);
                    }
                }
            }
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_dns::StaticResolver;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn list(zone: &str) -> Blocklist {
        Blocklist::named(zone).unwrap_or_else(|| panic!("{zone}"))
    }

    #[test]
    fn query_names_reverse_addresses_and_keep_domains() {
        let zen = list("zen.spamhaus.org");
        assert_eq!(
            zen.query_name(&Query::Ip(ip("192.0.2.10"))),
            "10.2.0.192.zen.spamhaus.org"
        );
        let v6 = zen.query_name(&Query::Ip(ip("2001:db8::1")));
        assert!(
            v6.starts_with("1.0.0.0.0.0.0.0") && v6.ends_with(".8.b.d.0.1.0.0.2.zen.spamhaus.org"),
            "{v6}"
        );
        assert_eq!(v6.split('.').count(), 32 + 3);
        let dbl = list("DBL.Spamhaus.org.");
        assert_eq!(
            dbl.query_name(&Query::Domain("acme.test".into())),
            "acme.test.dbl.spamhaus.org"
        );
        assert!(!dbl.applies_to(&Query::Ip(ip("192.0.2.1"))));
        assert!(zen.applies_to(&Query::Ip(ip("2001:db8::1"))));
        assert!(!list("bl.spamcop.net").applies_to(&Query::Ip(ip("2001:db8::1"))));
    }

    #[test]
    fn answers_read_by_each_lists_table() {
        let zen = list("zen.spamhaus.org");
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let (status, m) = zen.interpret(&[a("127.0.0.2"), a("127.0.0.11")]);
        assert_eq!(status, ListStatus::Listed);
        assert!(m[0].starts_with("SBL") && m[1].starts_with("PBL"), "{m:?}");
        // Refusals are errors, never listings, whatever the list.
        let (status, m) = zen.interpret(&[a("127.255.255.254")]);
        assert_eq!(status, ListStatus::Error);
        assert!(m[0].contains("public"), "{m:?}");
        assert_eq!(
            list("bl.spamcop.net").interpret(&[a("127.255.255.255")]).0,
            ListStatus::Error
        );
        // A resolver that answers NXDOMAIN with an advertising page.
        assert_eq!(
            list("bl.spamcop.net").interpret(&[a("198.51.100.7")]).0,
            ListStatus::Error
        );
        // DBL asked about an address.
        assert_eq!(
            list("dbl.spamhaus.org").interpret(&[a("127.0.1.255")]).0,
            ListStatus::Error
        );
        assert_eq!(
            list("dbl.spamhaus.org").interpret(&[a("127.0.1.102")]).0,
            ListStatus::Listed
        );
        // Bit masks: URIBL black + red; 127.0.0.1 is a refusal.
        let (status, m) = list("multi.uribl.com").interpret(&[a("127.0.0.10")]);
        assert_eq!(status, ListStatus::Listed);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            list("multi.uribl.com").interpret(&[a("127.0.0.1")]).0,
            ListStatus::Error
        );
        let (_, m) = list("multi.surbl.org").interpret(&[a("127.0.0.80")]);
        assert_eq!(m.len(), 2, "phishing and abuse: {m:?}");
        // An unknown code of a known list is still a listing.
        let (status, m) = zen.interpret(&[a("127.0.0.44")]);
        assert_eq!((status, m[0].contains("127.0.0.44")), (ListStatus::Listed, true));
        // A DQS zone reads as ZEN; an unknown zone generically.
        assert_eq!(list("abcdef.zen.dq.spamhaus.net").name, "Spamhaus ZEN");
        assert_eq!(
            list("bl.example.test").interpret(&[a("127.0.0.3")]).0,
            ListStatus::Listed
        );
        assert!(Blocklist::named("not a zone").is_none());
        // A reputation list's good grades are not listings.
        assert_eq!(
            list("rep.mailspike.net").interpret(&[a("127.0.0.17")]).0,
            ListStatus::Clean
        );
        assert_eq!(
            list("rep.mailspike.net").interpret(&[a("127.0.0.10")]).0,
            ListStatus::Listed
        );
        assert_eq!(
            list("zrd.dq.spamhaus.net").interpret(&[a("127.0.2.255")]).0,
            ListStatus::Error
        );
    }

    #[test]
    fn networks_are_sampled_not_expanded() {
        let net = |s: &str| s.parse::<IpNet>().unwrap_or_else(|_| panic!("{s}"));
        assert_eq!(sample(net("192.0.2.7/32"), 16), [ip("192.0.2.7")]);
        assert_eq!(sample(net("192.0.2.0/24"), 16), [ip("192.0.2.1"), ip("192.0.2.254")]);
        assert_eq!(sample(net("192.0.2.8/30"), 16), [ip("192.0.2.9"), ip("192.0.2.10")]);
        let wide = sample(net("10.0.0.0/8"), 16);
        assert_eq!(wide.len(), 16);
        assert_eq!(wide[0], ip("10.0.0.1"));
        assert_eq!(wide[15], ip("10.255.255.1"));
        assert_eq!(
            sample(net("198.51.100.0/23"), 16),
            [ip("198.51.100.1"), ip("198.51.101.1")]
        );
        assert_eq!(sample(net("0.0.0.0/0"), 16).len(), 16);
        assert_eq!(sample(net("2001:db8::/32"), 4).len(), 4);
        assert_eq!(sample(net("2001:db8::/64"), 4), [ip("2001:db8::")]);
        assert_eq!(sample(net("::/0"), 16).len(), 16);
    }

    #[test]
    fn targets_parse_and_domains_climb_to_two_labels() {
        assert_eq!(parse_target("192.0.2.1").map(|t| t.0), Some(TargetKind::Ip));
        assert_eq!(parse_target("192.0.2.1/32").map(|t| t.0), Some(TargetKind::Ip));
        assert_eq!(
            parse_target("192.0.2.77/24").map(|(k, n)| (k, n.to_string())),
            Some((TargetKind::Network, "192.0.2.0/24".to_owned()))
        );
        assert!(parse_target("acme.test").is_none());
        assert_eq!(
            domain_names("rp.mail.acme.test."),
            ["rp.mail.acme.test", "acme.test", "mail.acme.test"]
        );
        assert_eq!(domain_names("acme.test"), ["acme.test"]);
        // Deep names keep the registered domain.
        assert_eq!(
            domain_names("a.b.c.d.acme.test"),
            ["a.b.c.d.acme.test", "acme.test", "d.acme.test", "c.d.acme.test"]
        );
    }

    #[tokio::test]
    async fn a_check_reads_listings_errors_and_absences() {
        let r = StaticResolver::new()
            .ip("10.2.0.192.zen.spamhaus.org", ip("127.0.0.2"))
            .txt(
                "10.2.0.192.zen.spamhaus.org",
                "Listed: https://check.spamhaus.org/sbl/query/SBL1",
            )
            .ip("10.2.0.192.bl.spamcop.net", ip("127.255.255.254"));
        let lists = [
            list("zen.spamhaus.org"),
            list("bl.spamcop.net"),
            list("dbl.spamhaus.org"),
        ];
        let answers = check(
            &r,
            &lists,
            &[Query::Ip(ip("192.0.2.10")), Query::Ip(ip("192.0.2.11"))],
            Pace::default(),
        )
        .await;
        let got: Vec<(&str, &str, ListStatus)> = answers
            .iter()
            .map(|a| (a.address.as_str(), a.list.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            [
                ("192.0.2.10", "zen.spamhaus.org", ListStatus::Listed),
                ("192.0.2.10", "bl.spamcop.net", ListStatus::Error),
                ("192.0.2.11", "zen.spamhaus.org", ListStatus::Clean),
                ("192.0.2.11", "bl.spamcop.net", ListStatus::Clean),
            ]
        );
        assert_eq!(
            answers[0].detail.as_deref(),
            Some("Listed: https://check.spamhaus.org/sbl/query/SBL1")
        );
        assert_eq!(
            answers[0].delist_url.as_deref(),
            Some("https://check.spamhaus.org/listed/?searchterm=192.0.2.10")
        );
    }
}
