//! SPF records (RFC 7208 §4.5, §4.6, §5, §6 and the ABNF of §12): which TXT
//! record is the SPF record, and what it says.
//!
//! The whole record is parsed before anything is evaluated, because §4.6
//! makes a syntax error anywhere a `permerror`, even after a matching
//! mechanism (test `detect-errors-anywhere`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::macros::{MacroString, Place};

/// A record's result when a directive matches (RFC 7208 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `+` (the default)
    Pass,
    /// `-`
    Fail,
    /// `~`
    SoftFail,
    /// `?`
    Neutral,
}

impl Qualifier {
    pub fn as_char(self) -> char {
        match self {
            Self::Pass => '+',
            Self::Fail => '-',
            Self::SoftFail => '~',
            Self::Neutral => '?',
        }
    }
}

/// The prefix lengths of `a` and `mx` (`a/24//64`), defaults 32 and 128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualCidr {
    pub v4: u8,
    pub v6: u8,
}

impl Default for DualCidr {
    fn default() -> Self {
        Self { v4: 32, v6: 128 }
    }
}

/// A mechanism (RFC 7208 §5). Domain-specs are kept as macro strings;
/// `None` means the domain being checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A {
        domain: Option<MacroString>,
        cidr: DualCidr,
    },
    Mx {
        domain: Option<MacroString>,
        cidr: DualCidr,
    },
    Ptr(Option<MacroString>),
    Ip4 {
        addr: Ipv4Addr,
        prefix: u8,
    },
    Ip6 {
        addr: Ipv6Addr,
        prefix: u8,
    },
    Exists(MacroString),
}

impl Mechanism {
    /// Whether evaluating it counts against the limit of 10 DNS-querying
    /// terms (RFC 7208 §4.6.4): include, a, mx, ptr and exists do
    /// (redirect, a modifier, does too).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Self::Include(_) | Self::A { .. } | Self::Mx { .. } | Self::Ptr(_) | Self::Exists(_)
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Include(_) => "include",
            Self::A { .. } => "a",
            Self::Mx { .. } => "mx",
            Self::Ptr(_) => "ptr",
            Self::Ip4 { .. } => "ip4",
            Self::Ip6 { .. } => "ip6",
            Self::Exists(_) => "exists",
        }
    }
}

/// A qualifier and a mechanism, with the text they were written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
    pub text: String,
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A modifier (RFC 7208 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    Redirect(MacroString),
    Explanation(MacroString),
    /// Ignored by evaluation (§6), but its value must be a valid macro string.
    Unknown {
        name: String,
        value: MacroString,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Directive(Directive),
    Modifier(Modifier),
}

/// A parsed `v=spf1` record, its terms in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub terms: Vec<Term>,
}

/// Why a record is not valid SPF: evaluation answers `permerror`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", term.as_ref().map(|t| format!("`{t}`: ")).unwrap_or_default())]
pub struct ParseError {
    /// The term at fault, when one is.
    pub term: Option<String>,
    pub problem: String,
}

impl ParseError {
    fn record(problem: impl Into<String>) -> Self {
        Self {
            term: None,
            problem: problem.into(),
        }
    }

    fn term(term: &str, problem: impl Into<String>) -> Self {
        Self {
            term: Some(term.to_owned()),
            problem: problem.into(),
        }
    }
}

const VERSION: &str = "v=spf1";

/// Whether a TXT record is an SPF record: it starts with `v=spf1` (any
/// case) followed by a space or nothing (RFC 7208 §4.5). `v=spf10` is not.
pub fn is_spf_record(txt: &str) -> bool {
    txt.get(..VERSION.len())
        .is_some_and(|v| v.eq_ignore_ascii_case(VERSION))
        && matches!(txt.as_bytes().get(VERSION.len()), None | Some(b' '))
}

impl std::str::FromStr for Record {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Record {
    /// Parses a whole record, `v=spf1` included.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if !is_spf_record(text) {
            return Err(ParseError::record("not an SPF record (no v=spf1)"));
        }
        // §3.1: SPF records are 7-bit ASCII; checked before any term so a
        // stray byte is never mistaken for a term boundary.
        if !text.is_ascii() {
            return Err(ParseError::record("non-ASCII characters in the record"));
        }
        let mut terms = Vec::new();
        let (mut redirect, mut exp) = (false, false);
        // §4.6.1: terms are separated by one or more spaces, nothing else.
        for raw in text[VERSION.len()..].split(' ').filter(|t| !t.is_empty()) {
            let term = parse_term(raw)?;
            let seen = match &term {
                Term::Modifier(Modifier::Redirect(_)) => Some(&mut redirect),
                Term::Modifier(Modifier::Explanation(_)) => Some(&mut exp),
                _ => None,
            };
            if let Some(seen) = seen {
                // §6: redirect and exp at most once each.
                if *seen {
                    return Err(ParseError::term(raw, "appears more than once"));
                }
                *seen = true;
            }
            terms.push(term);
        }
        Ok(Self { terms })
    }

    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.terms.iter().filter_map(|t| match t {
            Term::Directive(d) => Some(d),
            Term::Modifier(_) => None,
        })
    }

    pub fn redirect(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|t| match t {
            Term::Modifier(Modifier::Redirect(d)) => Some(d),
            _ => None,
        })
    }

    pub fn explanation(&self) -> Option<&MacroString> {
        self.terms.iter().find_map(|t| match t {
            Term::Modifier(Modifier::Explanation(d)) => Some(d),
            _ => None,
        })
    }
}

/// `name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )`: its length at the
/// start of `term`, 0 when there is none.
fn name_len(term: &str) -> usize {
    let bytes = term.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        .count()
}

fn parse_term(raw: &str) -> Result<Term, ParseError> {
    // §4.6.1: a modifier is a name with `=` right after it, before any `:`
    // or `/`; anything else is a directive.
    let n = name_len(raw);
    if n > 0 && raw.as_bytes().get(n) == Some(&b'=') {
        return parse_modifier(raw, &raw[..n], &raw[n + 1..]).map(Term::Modifier);
    }
    parse_directive(raw).map(Term::Directive)
}

fn parse_modifier(raw: &str, name: &str, value: &str) -> Result<Modifier, ParseError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        // Known names never fall back to unknown-modifier: `exp=-all` is an
        // error, not an unknown modifier (tests `exp-syntax-error`,
        // `redirect-syntax-error`).
        "redirect" => domain_spec(raw, value).map(Modifier::Redirect),
        "exp" => domain_spec(raw, value).map(Modifier::Explanation),
        _ => MacroString::parse(value, Place::Term)
            .map(|value| Modifier::Unknown { name: lower, value })
            .map_err(|e| ParseError::term(raw, e)),
    }
}

/// A required `domain-spec`: a valid macro string with a `domain-end`.
fn domain_spec(raw: &str, spec: &str) -> Result<MacroString, ParseError> {
    if spec.is_empty() {
        return Err(ParseError::term(raw, "empty domain"));
    }
    let m = MacroString::parse(spec, Place::Term).map_err(|e| ParseError::term(raw, e))?;
    if !m.has_domain_end() {
        return Err(ParseError::term(
            raw,
            "the domain must end in a macro or a top-level label (not all digits)",
        ));
    }
    Ok(m)
}

fn parse_directive(raw: &str) -> Result<Directive, ParseError> {
    let (qualifier, body) = match raw.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &raw[1..]),
        Some(b'-') => (Qualifier::Fail, &raw[1..]),
        Some(b'~') => (Qualifier::SoftFail, &raw[1..]),
        Some(b'?') => (Qualifier::Neutral, &raw[1..]),
        _ => (Qualifier::Pass, raw),
    };
    let name_end = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let (name, rest) = body.split_at(name_end);
    let arg = rest.strip_prefix(':');
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if rest.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(domain_spec(raw, arg.unwrap_or_default())?),
        "exists" => Mechanism::Exists(domain_spec(raw, arg.unwrap_or_default())?),
        "ptr" => match arg {
            Some(spec) => Mechanism::Ptr(Some(domain_spec(raw, spec)?)),
            None if rest.is_empty() => Mechanism::Ptr(None),
            None => return Err(ParseError::term(raw, "ptr takes no prefix length")),
        },
        kind @ ("a" | "mx") => {
            let (domain, cidr) = match arg {
                Some(spec_and_cidr) => {
                    let (spec, cidr) = split_dual_cidr(raw, spec_and_cidr)?;
                    (Some(domain_spec(raw, spec)?), cidr)
                }
                None => {
                    let (left, cidr) = split_dual_cidr(raw, rest)?;
                    if !left.is_empty() {
                        return Err(ParseError::term(raw, "bad prefix length"));
                    }
                    (None, cidr)
                }
            };
            if kind == "a" {
                Mechanism::A { domain, cidr }
            } else {
                Mechanism::Mx { domain, cidr }
            }
        }
        "ip4" => {
            let (addr, prefix) = split_network(raw, arg, 32)?;
            let addr = addr
                .parse::<Ipv4Addr>()
                .map_err(|_| ParseError::term(raw, "not an IPv4 address"))?;
            Mechanism::Ip4 { addr, prefix }
        }
        "ip6" => {
            let (addr, prefix) = split_network(raw, arg, 128)?;
            let addr = addr
                .parse::<Ipv6Addr>()
                .map_err(|_| ParseError::term(raw, "not an IPv6 address"))?;
            Mechanism::Ip6 { addr, prefix }
        }
        "all" => return Err(ParseError::term(raw, "all takes no argument")),
        _ => return Err(ParseError::term(raw, "unknown mechanism")),
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: raw.to_owned(),
    })
}

/// `ip4-cidr-length` / `ip6-cidr-length`: digits without a leading zero,
/// at most `max` (RFC 7208 §5.6 makes larger values an error).
fn prefix(raw: &str, digits: &str, max: u8) -> Result<u8, ParseError> {
    let bad = || ParseError::term(raw, format!("bad prefix length /{digits} (0 to {max})"));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(bad());
    }
    match digits.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(bad()),
    }
}

/// Splits `ip4:`/`ip6:` arguments into the address and its prefix length.
fn split_network<'a>(raw: &str, arg: Option<&'a str>, max: u8) -> Result<(&'a str, u8), ParseError> {
    let arg = arg.ok_or_else(|| ParseError::term(raw, "needs an address"))?;
    match arg.split_once('/') {
        Some((addr, digits)) => Ok((addr, prefix(raw, digits, max)?)),
        None => Ok((arg, max)),
    }
}

/// Splits a trailing `dual-cidr-length` (`/24`, `//64`, `/24//64`) off `s`.
/// A domain-spec can itself hold `/` (`foo:bar/baz.example.com`), so only a
/// slash followed by digits to the end counts.
fn split_dual_cidr<'a>(raw: &str, s: &'a str) -> Result<(&'a str, DualCidr), ParseError> {
    fn digits_after(s: &str, sep: &str) -> Option<usize> {
        let i = s.rfind(sep)?;
        let tail = &s[i + sep.len()..];
        (!tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit())).then_some(i)
    }
    let mut cidr = DualCidr::default();
    let mut rest = s;
    if let Some(i) = digits_after(rest, "//") {
        cidr.v6 = prefix(raw, &rest[i + 2..], 128)?;
        rest = &rest[..i];
    }
    if let Some(i) = digits_after(rest, "/") {
        cidr.v4 = prefix(raw, &rest[i + 1..], 32)?;
        rest = &rest[..i];
    }
    Ok((rest, cidr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Record, ParseError> {
        Record::parse(s)
    }

    #[test]
    fn selection_needs_the_exact_version() {
        assert!(is_spf_record("v=spf1"));
        assert!(is_spf_record("V=SpF1 -all"));
        assert!(!is_spf_record("v=spf10"));
        assert!(!is_spf_record("v=spf1mx"));
        assert!(!is_spf_record(" v=spf1"));
        assert!(!is_spf_record("v=DKIM1"));
    }

    #[test]
    fn every_mechanism_parses() {
        let r = parse("v=spf1 +all -include:_spf.example.com ~a ?a:mail.example.com/24//64 mx//64 ptr ptr:example.com ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{ir}.bl.example.com").unwrap();
        let mechs: Vec<_> = r.directives().map(|d| (d.qualifier, d.mechanism.clone())).collect();
        assert_eq!(mechs.len(), 10);
        assert_eq!(mechs[0], (Qualifier::Pass, Mechanism::All));
        assert_eq!(mechs[1].0, Qualifier::Fail);
        assert_eq!(
            mechs[2],
            (
                Qualifier::SoftFail,
                Mechanism::A {
                    domain: None,
                    cidr: DualCidr::default()
                }
            )
        );
        match &mechs[3] {
            (Qualifier::Neutral, Mechanism::A { domain: Some(d), cidr }) => {
                assert_eq!(d.as_str(), "mail.example.com");
                assert_eq!(*cidr, DualCidr { v4: 24, v6: 64 });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            mechs[4].1,
            Mechanism::Mx {
                domain: None,
                cidr: DualCidr { v4: 32, v6: 64 }
            }
        );
        assert_eq!(
            mechs[7].1,
            Mechanism::Ip4 {
                addr: "192.0.2.0".parse().unwrap(),
                prefix: 24
            }
        );
        assert_eq!(
            mechs[8].1,
            Mechanism::Ip6 {
                addr: "2001:db8::".parse().unwrap(),
                prefix: 32
            }
        );
        assert_eq!(r.directives().filter(|d| d.mechanism.queries_dns()).count(), 7);
    }

    #[test]
    fn modifiers_and_their_limits() {
        let r = parse("v=spf1 redirect=_spf.example.com exp=explain.%{d} moo.cow-far_out=man:dog/cat").unwrap();
        assert_eq!(r.redirect().unwrap().as_str(), "_spf.example.com");
        assert_eq!(r.explanation().unwrap().as_str(), "explain.%{d}");
        assert!(matches!(&r.terms[2], Term::Modifier(Modifier::Unknown { name, .. }) if name == "moo.cow-far_out"));
        assert!(parse("v=spf1 a=1 a=2").is_ok(), "unknown modifiers may repeat");
        for bad in [
            "v=spf1 redirect=a.example.com redirect=b.example.com",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 exp=",
            "v=spf1 redirect=",
            "v=spf1 exp=-all",
            "v=spf1 foo=%abc",
            "v=spf1 1up=foo",
            "v=spf1 =all",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    /// Each line is a syntax error the OpenSPF suite or RFC 7208 names.
    #[test]
    fn syntax_errors_anywhere_are_permanent() {
        for bad in [
            "v=spf1 ip4:1.2.3.4 -all moo",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 -all.",
            "v=spf1 -all:foobar",
            "v=spf1 -all/8",
            "v=spf1 ptr/0",
            "v=spf1 ptr:",
            "v=spf1 a:",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 a:foo-bar",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:example.com:8080",
            "v=spf1 a:museum.",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 a:ctrl.example.com\rptr",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 exists",
            "v=spf1 exists:mail.example.com/24",
            "v=spf1 ip4",
            "v=spf1 ip4:1.2.3.4/033",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:01.2.3.4",
            "v=spf1 ip6",
            "v=spf1 ip6:::1.1.1.1/129",
            "v=spf1 ip6:::1.1.1.1//33",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 exists:%(ir).sbl.example.com",
            "v=spf1 -all exp=%{r}.example.com",
            "v=spf1 a:\u{ef}\u{bb}\u{bf}garbage.example.net",
            "v=spf1 ip4:192.0.2.5\n include:spf.example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn odd_but_valid() {
        for good in [
            "v=spf1",
            "v=spf1 a  -all ",
            "v=spf1 a:foo:bar/baz.example.com",
            "v=spf1 a:mail.example...com",
            "v=spf1 a:foo.example.xn--zckzah",
            "v=spf1 ip6:Cafe:Babe:8000::/33",
            "v=spf1 ip4:1.1.1.1/0 default=+",
            "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
            "v=spf1 exists:%{l2r+-}.user.%{d2}",
            "V=SPF1 A MX -ALL",
        ] {
            assert!(parse(good).is_ok(), "{good:?}: {:?}", parse(good));
        }
    }

    #[test]
    fn errors_name_the_term() {
        let e = parse("v=spf1 ip4:1.2.3.4/33 -all").unwrap_err();
        assert_eq!(e.term.as_deref(), Some("ip4:1.2.3.4/33"));
        assert_eq!(e.to_string(), "`ip4:1.2.3.4/33`: bad prefix length /33 (0 to 32)");
    }
}
