//! Macro strings (RFC 7208 §7): parsed once with the record, expanded
//! against one evaluation's values.
//!
//! Parsing is strict because §4.6 makes every syntax error in a record a
//! `permerror`, including one inside a macro (`%(ir)`, `%{x}`, `%{d0}`).
//! Expansion is a pure function of [`MacroVars`]: the one value that needs
//! DNS, `%{p}`, is resolved by the evaluator beforehand (only when
//! [`MacroString::needs_ptr`] says so) and handed in.

use std::fmt;
use std::net::IpAddr;

/// RFC 7208 §7.3: a domain name made by expansion is cut from the left,
/// label by label, until it fits.
pub const MAX_DOMAIN_LEN: usize = 253;

/// A macro letter (RFC 7208 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Letter {
    /// `s`: the sender, `local-part@domain`.
    Sender,
    /// `l`: the sender's local-part.
    Local,
    /// `o`: the sender's domain.
    SenderDomain,
    /// `d`: the domain being checked (changes with include and redirect).
    Domain,
    /// `i`: the client IP, dotted quad or 32 dotted nibbles.
    Ip,
    /// `p`: the validated domain name of the client IP (needs DNS).
    ValidatedName,
    /// `v`: `in-addr` or `ip6`.
    IpVersion,
    /// `h`: the HELO/EHLO domain.
    Helo,
    /// `c`: the client IP in its usual text form (explanations only).
    ClientIp,
    /// `r`: the checking host's domain (explanations only).
    Receiver,
    /// `t`: the current time in seconds since the epoch (explanations only).
    Timestamp,
}

impl Letter {
    fn from_char(c: char) -> Option<(Self, bool)> {
        let letter = match c.to_ascii_lowercase() {
            's' => Self::Sender,
            'l' => Self::Local,
            'o' => Self::SenderDomain,
            'd' => Self::Domain,
            'i' => Self::Ip,
            'p' => Self::ValidatedName,
            'v' => Self::IpVersion,
            'h' => Self::Helo,
            'c' => Self::ClientIp,
            'r' => Self::Receiver,
            't' => Self::Timestamp,
            _ => return None,
        };
        Some((letter, c.is_ascii_uppercase()))
    }

    /// §7.2: `c`, `r` and `t` may appear only in explanation text.
    fn explanation_only(self) -> bool {
        matches!(self, Self::ClientIp | Self::Receiver | Self::Timestamp)
    }
}

/// One `%{…}` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    pub letter: Letter,
    /// Upper-case letter: the value is URL-escaped after transformation.
    pub escape: bool,
    /// Keep only this many right-hand parts (never 0).
    pub keep: Option<u32>,
    pub reverse: bool,
    /// The characters the value is split on; `.` when none are given.
    pub delimiters: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(String),
    /// `%%`, `%_` or `%-`: their expansion, kept apart from literals
    /// because the ABNF counts them as macro-expands for `domain-end`.
    Escape(&'static str),
    Macro(Macro),
}

/// Where a macro string appears, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A domain-spec or an unknown modifier's value: no spaces, no `c`, `r`, `t`.
    Term,
    /// The TXT record an `exp=` points at: spaces and every letter allowed.
    Explanation,
}

/// A parsed macro string, with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString {
    text: String,
    pub(crate) tokens: Vec<Token>,
}

impl fmt::Display for MacroString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl MacroString {
    pub(crate) fn parse(text: &str, place: Place) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '%' {
                let escape = match chars.next() {
                    Some('%') => Some("%"),
                    Some('_') => Some(" "),
                    Some('-') => Some("%20"),
                    Some('{') => None,
                    Some(other) => return Err(format!("'%' followed by {other:?} is not a macro")),
                    None => return Err("a '%' ends the string".into()),
                };
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                match escape {
                    Some(e) => tokens.push(Token::Escape(e)),
                    None => tokens.push(Token::Macro(parse_macro(&mut chars, place)?)),
                }
            } else if is_macro_literal(c) || (c == ' ' && place == Place::Explanation) {
                literal.push(c);
            } else {
                return Err(format!("{c:?} is not allowed here"));
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Self {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The text as written in the record.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the string holds any macro (so its value depends on the
    /// evaluation, and a linter cannot know what it will look up).
    pub fn has_macros(&self) -> bool {
        self.tokens.iter().any(|t| matches!(t, Token::Macro(_)))
    }

    /// Whether expansion needs `%{p}`, which costs PTR and address lookups.
    pub fn needs_ptr(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t, Token::Macro(m) if m.letter == Letter::ValidatedName))
    }

    /// RFC 7208 §7.1 `domain-end`: the string ends in a macro-expand, or in
    /// `"." toplabel ["."]`.
    pub(crate) fn has_domain_end(&self) -> bool {
        match self.tokens.last() {
            None => false,
            Some(Token::Macro(_) | Token::Escape(_)) => true,
            Some(Token::Literal(tail)) => {
                let tail = tail.strip_suffix('.').unwrap_or(tail);
                match tail.rsplit_once('.') {
                    Some((_, top)) => is_toplabel(top),
                    None => false,
                }
            }
        }
    }

    /// The expansion (§7.3), for explanation text and unknown modifiers.
    pub fn expand(&self, vars: &MacroVars<'_>) -> String {
        let mut out = String::new();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Escape(s) => out.push_str(s),
                Token::Macro(m) => out.push_str(&expand_one(m, vars)),
            }
        }
        out
    }

    /// The expansion as a domain name to query: a trailing dot dropped
    /// (§7.3 examples, test `trailing-dot-domain`) and labels cut from the
    /// left past [`MAX_DOMAIN_LEN`].
    pub fn expand_domain(&self, vars: &MacroVars<'_>) -> String {
        let expanded = self.expand(vars);
        let mut name = expanded.strip_suffix('.').unwrap_or(&expanded);
        while name.len() > MAX_DOMAIN_LEN {
            match name.split_once('.') {
                Some((_, rest)) => name = rest,
                None => break,
            }
        }
        name.to_owned()
    }
}

/// `macro-literal = %x21-24 / %x26-7E`: visible ASCII except `%`.
fn is_macro_literal(c: char) -> bool {
    matches!(c, '\x21'..='\x24' | '\x26'..='\x7e')
}

/// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`:
/// not all digits, no leading or trailing dash.
pub(crate) fn is_toplabel(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.iter().any(|b| b.is_ascii_alphabetic() || *b == b'-')
}

/// After `%{`: `macro-letter transformers *delimiter "}"`.
fn parse_macro(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, place: Place) -> Result<Macro, String> {
    let c = chars.next().ok_or("unterminated macro")?;
    let (letter, escape) = Letter::from_char(c).ok_or_else(|| format!("unknown macro letter {c:?}"))?;
    if letter.explanation_only() && place == Place::Term {
        return Err(format!("macro letter {c:?} is allowed only in explanations"));
    }
    let mut digits = String::new();
    while let Some(d) = chars.next_if(char::is_ascii_digit) {
        digits.push(d);
    }
    let keep = if digits.is_empty() {
        None
    } else {
        // §7.3: the number of parts must be nonzero; huge ones keep all.
        let n = digits.parse::<u32>().unwrap_or(u32::MAX);
        if n == 0 {
            return Err("a macro cannot keep 0 parts".into());
        }
        Some(n)
    };
    let reverse = chars.next_if(|c| c.eq_ignore_ascii_case(&'r')).is_some();
    let mut delimiters = String::new();
    loop {
        match chars.next() {
            Some('}') => break,
            Some(d @ ('.' | '-' | '+' | ',' | '/' | '_' | '=')) => delimiters.push(d),
            Some(other) => return Err(format!("{other:?} is not a macro delimiter")),
            None => return Err("unterminated macro".into()),
        }
    }
    Ok(Macro {
        letter,
        escape,
        keep,
        reverse,
        delimiters,
    })
}

/// The values macros expand to in one evaluation.
#[derive(Debug, Clone)]
pub struct MacroVars<'a> {
    /// `local-part@domain`, with `postmaster` for an empty local-part.
    pub sender: &'a str,
    pub local: &'a str,
    pub sender_domain: &'a str,
    pub domain: &'a str,
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The validated name for `%{p}`; `unknown` when `None`.
    pub validated: Option<&'a str>,
    pub receiver: &'a str,
    pub timestamp: u64,
}

fn expand_one(m: &Macro, vars: &MacroVars<'_>) -> String {
    let value: String = match m.letter {
        Letter::Sender => vars.sender.to_owned(),
        Letter::Local => vars.local.to_owned(),
        Letter::SenderDomain => vars.sender_domain.to_owned(),
        Letter::Domain => vars.domain.to_owned(),
        Letter::Ip => dotted_ip(vars.ip),
        Letter::ValidatedName => vars.validated.unwrap_or("unknown").to_owned(),
        Letter::IpVersion => match vars.ip {
            IpAddr::V4(_) => "in-addr".to_owned(),
            IpAddr::V6(_) => "ip6".to_owned(),
        },
        Letter::Helo => vars.helo.to_owned(),
        Letter::ClientIp => vars.ip.to_string(),
        Letter::Receiver => vars.receiver.to_owned(),
        Letter::Timestamp => vars.timestamp.to_string(),
    };
    let transformed = if m.keep.is_none() && !m.reverse && m.delimiters.is_empty() {
        value
    } else {
        let delimiters = if m.delimiters.is_empty() { "." } else { &m.delimiters };
        let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
        if m.reverse {
            parts.reverse();
        }
        if let Some(keep) = m.keep {
            let keep = usize::try_from(keep).unwrap_or(usize::MAX);
            if parts.len() > keep {
                parts.drain(..parts.len() - keep);
            }
        }
        parts.join(".")
    };
    if m.escape {
        url_escape(&transformed)
    } else {
        transformed
    }
}

/// `%{i}`: IPv4 as a dotted quad; IPv6 as 32 nibbles with dots between
/// (§7.3), so `%{ir}` is the reverse name. The nibbles are upper-case: the
/// RFC leaves their case open (DNS ignores it) and the OpenSPF suite expects
/// upper-case in explanations (`v-macro-ip6`).
fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .flat_map(|byte| [byte >> 4, byte & 0x0f])
                .map(|n| char::from(b"0123456789ABCDEF"[usize::from(n)]).to_string())
                .collect();
            nibbles.join(".")
        }
    }
}

/// §7.3: upper-case macros are URL-escaped, every character outside RFC
/// 3986's unreserved set as `%XX`.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(ip: &str) -> MacroVars<'static> {
        MacroVars {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            helo: "mx.example.org",
            validated: Some("mx.example.org"),
            receiver: "mx.receiver.test",
            timestamp: 1_700_000_000,
        }
    }

    fn expand(s: &str, ip: &str) -> String {
        MacroString::parse(s, Place::Explanation).unwrap().expand(&vars(ip))
    }

    /// The examples of RFC 7208 §7.4.
    #[test]
    fn rfc_examples_expand_as_written() {
        let v4 = "192.0.2.3";
        for (spec, want) in [
            ("%{s}", "strong-bad@email.example.com"),
            ("%{o}", "email.example.com"),
            ("%{d}", "email.example.com"),
            ("%{d4}", "email.example.com"),
            ("%{d3}", "email.example.com"),
            ("%{d2}", "example.com"),
            ("%{d1}", "com"),
            ("%{dr}", "com.example.email"),
            ("%{d2r}", "example.email"),
            ("%{l}", "strong-bad"),
            ("%{l-}", "strong.bad"),
            ("%{lr}", "strong-bad"),
            ("%{lr-}", "bad.strong"),
            ("%{l1r-}", "strong"),
            ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
            ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
            (
                "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
                "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
            ),
            (
                "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
                "3.2.0.192.in-addr.strong.lp._spf.example.com",
            ),
            (
                "%{d2}.trusted-domains.example.net",
                "example.com.trusted-domains.example.net",
            ),
            ("%{p2}", "example.org"),
            ("%{c} %{r} %{t}", "192.0.2.3 mx.receiver.test 1700000000"),
        ] {
            assert_eq!(expand(spec, v4), want, "{spec}");
        }
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01"),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"
        );
        assert_eq!(expand("%{c}", "2001:db8::cb01"), "2001:db8::cb01");
    }

    #[test]
    fn escapes_and_upper_case_letters() {
        assert_eq!(expand("a%%b%_c%-d", "192.0.2.3"), "a%b c%20d");
        let mut v = vars("192.0.2.3");
        v.local = "~jack&jill=up-a_b3.c";
        let m = MacroString::parse("l=%{L}", Place::Explanation).unwrap();
        assert_eq!(m.expand(&v), "l=~jack%26jill%3Dup-a_b3.c");
    }

    #[test]
    fn multiple_delimiters_split_on_any() {
        let mut v = vars("192.0.2.3");
        v.local = "foo-bar+zip+quux";
        let m = MacroString::parse("%{l2r+-}", Place::Term).unwrap();
        assert_eq!(m.expand(&v), "bar.foo");
    }

    #[test]
    fn syntax_errors_are_found() {
        for bad in [
            "%(ir)",
            "foo%.bar",
            "%",
            "%{x}",
            "%{d0}",
            "%{d",
            "%{d2r!}",
            "a b",
            "caf\u{e9}",
            "a\0",
        ] {
            assert!(MacroString::parse(bad, Place::Term).is_err(), "{bad:?}");
        }
        for term_only_bad in ["%{c}", "%{r}", "%{t}"] {
            assert!(MacroString::parse(term_only_bad, Place::Term).is_err());
            assert!(MacroString::parse(term_only_bad, Place::Explanation).is_ok());
        }
        assert!(MacroString::parse("The %{x}-files.", Place::Explanation).is_err());
        assert!(MacroString::parse("two  spaces", Place::Explanation).is_ok());
    }

    #[test]
    fn domain_end_needs_a_toplabel_or_a_macro() {
        for (spec, ok) in [
            ("example.com", true),
            ("example.com.", true),
            ("foo.example.xn--zckzah", true),
            ("%{d}", true),
            ("%{d}.com", true),
            ("foo%%", true),
            ("museum", false),
            ("museum.", false),
            ("foo-bar", false),
            ("111.222.33.44", false),
            ("abc.123", false),
            ("example.-com", false),
            ("example.com:8080", false),
            ("foo.com/24", false),
            ("%{d}com", false),
        ] {
            let m = MacroString::parse(spec, Place::Term).unwrap();
            assert_eq!(m.has_domain_end(), ok, "{spec}");
        }
    }

    #[test]
    fn long_expansions_lose_labels_on_the_left() {
        let mut v = vars("192.0.2.3");
        let long = format!("{}.example.com", "a".repeat(60));
        v.sender_domain = &long;
        let m = MacroString::parse("foo.%{o}.%{o}.%{o}.%{o}.", Place::Term).unwrap();
        let name = m.expand_domain(&v);
        assert!(name.len() <= MAX_DOMAIN_LEN, "{}", name.len());
        assert!(name.starts_with("example.com."), "{name}");
        assert!(!name.ends_with('.'));
    }
}
