//! Small text helpers shared by the decoders: finding addresses, status
//! codes and reply codes in free text, matching phrase patterns, folding a
//! diagnostic onto one line. Everything here is linear in its input.

pub(crate) use herald_message::scan::{clip, fields, fields_named, find, one_line};

/// Whether `hay` (already lower-case) matches `pat`: the fragments of `pat`
/// separated by `*` must appear in that order (`"mailbox *full"`).
pub(crate) fn matches(hay: &str, pat: &str) -> bool {
    let mut rest = hay.as_bytes();
    for frag in pat.split('*') {
        if frag.is_empty() {
            continue;
        }
        match find(rest, frag.as_bytes()) {
            Some(i) => rest = &rest[i + frag.len()..],
            None => return false,
        }
    }
    true
}

/// A set of patterns (see [`matches`]) searched together: an Aho-Corasick
/// automaton finds every occurrence of each pattern's first fragment in one
/// pass, and only those are checked for the rest. Each pattern carries an
/// id below 64; [`Index::scan`] returns the ids found as a bit set.
pub(crate) struct Index {
    /// Over the first fragments of three bytes or more (automaton pattern
    /// ids are positions in `entries`).
    automaton: aho_corasick::AhoCorasick,
    /// Id, pattern, length of its first fragment.
    entries: Vec<(u8, &'static str, usize)>,
    /// Patterns whose first fragment is shorter: they would match almost
    /// everywhere, so they are tried on their own.
    short: Vec<(u8, &'static str)>,
}

impl Index {
    pub(crate) fn new(patterns: impl IntoIterator<Item = (u8, &'static str)>) -> Self {
        let mut entries = Vec::new();
        let mut short = Vec::new();
        for (id, p) in patterns {
            debug_assert!(id < 64);
            let first = p.find('*').unwrap_or(p.len());
            if first < 3 {
                short.push((id, p));
            } else {
                entries.push((id, p, first));
            }
        }
        let automaton = aho_corasick::AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .build(entries.iter().map(|(_, p, first)| &p.as_bytes()[..*first]))
            .expect("the phrase tables build an automaton");
        Index {
            automaton,
            entries,
            short,
        }
    }

    /// The ids of the patterns that occur in `text`.
    pub(crate) fn scan(&self, text: &str) -> u64 {
        let mut found = 0u64;
        // Patterns whose later fragments were not found after an occurrence
        // of the first: they cannot match at any later one either, and
        // trying again would make the scan quadratic.
        let mut dead: Vec<u64> = Vec::new();
        for m in self.automaton.find_overlapping_iter(text) {
            let e = m.pattern().as_usize();
            let (id, pat, first) = self.entries[e];
            let bit = 1u64 << id;
            if found & bit != 0 {
                continue;
            }
            if first == pat.len() {
                found |= bit;
                continue;
            }
            if dead.get(e / 64).is_some_and(|w| w & (1 << (e % 64)) != 0) {
                continue;
            }
            // The automaton matched whole bytes of an ASCII or UTF-8
            // pattern, so its end is a character boundary.
            if matches(&text[m.end()..], &pat[first..]) {
                found |= bit;
            } else {
                if dead.is_empty() {
                    dead = vec![0u64; self.entries.len() / 64 + 1];
                }
                dead[e / 64] |= 1 << (e % 64);
            }
        }
        for &(id, pat) in &self.short {
            if found & (1u64 << id) == 0 && matches(text, pat) {
                found |= 1u64 << id;
            }
        }
        found
    }
}

/// Whether any of the patterns matches (see [`matches`]).
pub(crate) fn matches_any(hay: &str, pats: &[&str]) -> bool {
    pats.iter().any(|p| matches(hay, p))
}

/// Lower-cases and folds every run of white space to one space, trimmed.
pub(crate) fn fold(text: &str) -> String {
    lowered(one_line(text))
}

/// [`fold`] of a text already on one line.
pub(crate) fn lower(line: &str) -> String {
    lowered(line.to_string())
}

fn lowered(mut out: String) -> String {
    // Only ASCII letters are lower-cased: the patterns are ASCII, and full
    // Unicode case folding of long Japanese or Cyrillic notices would cost
    // more than it finds.
    out.make_ascii_lowercase();
    // ‘ and ’ read as an apostrophe ("couldn’t").
    if out.as_bytes().contains(&0xe2) && out.contains(['\u{2018}', '\u{2019}']) {
        out = out.replace(['\u{2018}', '\u{2019}'], "'");
    }
    out
}

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

fn is_domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
}

/// Every e-mail address in `text`, lower-cased, in order of appearance, with
/// the byte offset where each starts.
pub(crate) fn addresses(text: &str) -> Vec<(usize, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut last_end = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' {
            i += 1;
            continue;
        }
        let mut s = i;
        while s > last_end && is_local_char(bytes[s - 1]) {
            s -= 1;
        }
        let mut e = i + 1;
        while e < bytes.len() && is_domain_char(bytes[e]) {
            e += 1;
        }
        let (mut ls, mut de) = (s, e);
        while ls < i && bytes[ls] == b'.' {
            ls += 1;
        }
        while de > i + 1 && (bytes[de - 1] == b'.' || bytes[de - 1] == b'-') {
            de -= 1;
        }
        if ls < i && de > i + 1 {
            let domain = &text[i + 1..de];
            if domain.contains('.') && !domain.starts_with('.') && !domain.contains("..") {
                out.push((ls, text[ls..de].to_ascii_lowercase()));
            }
        }
        last_end = e;
        i = e.max(i + 1);
    }
    out
}

/// The first address in `text`.
pub(crate) fn first_address(text: &str) -> Option<String> {
    addresses(text).into_iter().next().map(|(_, a)| a)
}

fn digits(b: &[u8], mut i: usize, max: usize) -> usize {
    let s = i;
    while i < b.len() && i - s < max && b[i].is_ascii_digit() {
        i += 1;
    }
    i - s
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in `text`.
pub(crate) fn find_status(text: &str) -> Option<String> {
    statuses(text).next().map(str::to_string)
}

/// The enhanced status codes in `text`, in order: a class digit (2, 4, 5)
/// not glued to a word, a number or a dotted run (addresses, versions), a
/// subject of 0-7 and a detail of up to three digits.
pub(crate) fn statuses(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 4 < b.len() {
            let at = i;
            i += 1;
            let c = b[at];
            if (c == b'2' || c == b'4' || c == b'5')
                && b[at + 1] == b'.'
                && (at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'.'))
            {
                let n1 = digits(b, at + 2, 3);
                if n1 > 0 && at + 2 + n1 < b.len() && b[at + 2 + n1] == b'.' {
                    let j = at + 3 + n1;
                    let n2 = digits(b, j, 3);
                    let end = j + n2;
                    if n2 > 0
                        && (end >= b.len()
                            || !(b[end].is_ascii_alphanumeric()
                                || (b[end] == b'.' && end + 1 < b.len() && b[end + 1].is_ascii_digit())))
                    {
                        let s = &text[at..end];
                        if valid_status(s) {
                            i = end;
                            return Some(s);
                        }
                    }
                }
            }
        }
        None
    })
}

/// The status code a text means when it names several (Sisimai's
/// `status.Find`): the precise ones folded left to right with
/// [`prefer_status`]; `X.0.0` and `4.4.7` (which say little) only when
/// there is no other.
pub(crate) fn said_status(text: &str) -> Option<String> {
    let mut precise: Option<&str> = None;
    let mut vague: Option<&str> = None;
    for s in statuses(text) {
        let slot = if s.ends_with(".0.0") || s == "4.4.7" {
            &mut vague
        } else {
            &mut precise
        };
        *slot = Some(match *slot {
            None => s,
            Some(acc) => prefer_status(acc, s, None),
        });
    }
    precise.or(vague).map(str::to_string)
}

/// Which of two status codes to keep, the first from the report's
/// `Status:` field (or an earlier mention), the second from the server's
/// words (Sisimai's `status.Prefer`). The field wins unless it says less:
/// a class mismatch is settled by the reply code, `X.0.0` and `X.Y.0`
/// yield to a precise code, and a few catch-all codes (4.4.7 expired,
/// 4.7.0, 5.3.x, X.5.x protocol) yield to what the server actually said.
pub(crate) fn prefer_status<'a>(field: &'a str, said: &'a str, reply: Option<u16>) -> &'a str {
    if field == said {
        return field;
    }
    let (fc, sc) = (field.as_bytes()[0], said.as_bytes()[0]);
    if let Some(r) = reply
        && fc != sc
    {
        let rc = b'0' + (r / 100) as u8;
        if rc == fc {
            return field;
        }
        if rc == sc {
            return said;
        }
    }
    let zero = |s: &str| s.ends_with(".0.0");
    if zero(field) {
        return if zero(said) { field } else { said };
    }
    let has_zero = |s: &str| s[1..].contains(".0");
    if has_zero(field) && !has_zero(said) {
        return said;
    }
    if zero(said) {
        return field;
    }
    let catch_all = field == "4.4.7"
        || field == "4.7.0"
        || field.starts_with("5.3.")
        || [".5.1", ".5.2", ".5.4", ".5.5"]
            .iter()
            .any(|p| field[1..].starts_with(p));
    if catch_all {
        return said;
    }
    if field == "5.1.1" {
        return if has_zero(said) || said.starts_with("5.5.") {
            field
        } else {
            said
        };
    }
    if field == "5.1.3" && said.starts_with("5.7.") {
        return said;
    }
    field
}

/// Whether `s` looks like an enhanced status code: class 2, 4 or 5, a
/// subject of 0-7 and a detail.
pub(crate) fn valid_status(s: &str) -> bool {
    let mut it = s.split('.');
    let (Some(a), Some(b), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return false;
    };
    matches!(a, "2" | "4" | "5")
        && b.len() <= 3
        && c.len() <= 3
        && !c.is_empty()
        && b.parse::<u16>().is_ok_and(|n| n <= 7)
        && c.bytes().all(|x| x.is_ascii_digit())
}

/// The first SMTP reply code (`550`) in `text`: three digits starting with
/// 2, 4 or 5, standing alone (followed by a space, `-`, or the end) and not
/// part of a dotted number, address or date.
pub(crate) fn find_reply_code(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        let c = b[i];
        if (c == b'4' || c == b'5' || c == b'2')
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
            && (i == 0
                || matches!(
                    b[i - 1],
                    b' ' | b':' | b'(' | b'\t' | b'\n' | b'\r' | b'<' | b'"' | b'[' | b'='
                ))
            && (i + 3 == b.len()
                || matches!(
                    b[i + 3],
                    b' ' | b'-' | b'\t' | b'\n' | b'\r' | b')' | b',' | b']' | b'"'
                ))
            && !(i + 3 < b.len()
                && b[i + 3] == b'-'
                && i + 4 < b.len()
                && b[i + 4].is_ascii_digit()
                && !looks_like_status(&b[i + 4..]))
        {
            let n = (c - b'0') as u16 * 100 + (b[i + 1] - b'0') as u16 * 10 + (b[i + 2] - b'0') as u16;
            let second_ok = b[i + 1] <= b'5';
            // A 2xx code only when it is clearly an answer ("250 2.1.5",
            // "250-…"): small numbers abound in prose.
            let positive_ok =
                n >= 400 || (i + 5 < b.len() && (b[i + 3] == b'-' || (b[i + 4] == b'2' && b[i + 5] == b'.')));
            if second_ok && positive_ok {
                // A year or a count in prose ("within 250 days") is not a code:
                // require the code to be followed by a status, a word or the end.
                return Some(n);
            }
        }
        i += 1;
    }
    None
}

fn looks_like_status(b: &[u8]) -> bool {
    b.len() >= 3 && b[1] == b'.' && b[2].is_ascii_digit()
}

/// Whether the text's first token is an SMTP reply code; returns it.
pub(crate) fn leading_reply_code(text: &str) -> Option<u16> {
    let t = text.trim_start();
    let b = t.as_bytes();
    if b.len() >= 3
        && matches!(b[0], b'2' | b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && (b.len() == 3 || matches!(b[3], b' ' | b'-' | b'\t'))
    {
        return t[..3].parse().ok();
    }
    None
}

/// Removes the reply code and status that multi-line SMTP answers repeat
/// on every line (`550-5.2.1 The user ... 550-5.2.1 prevents ...`), keeping
/// the first, so that phrases split over lines can be matched.
pub(crate) fn strip_continuations(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut seen = false;
    let mut copied = 0;
    while i + 4 <= b.len() {
        let at_word = i == 0 || b[i - 1].is_ascii_whitespace();
        if at_word
            && matches!(b[i], b'2' | b'4' | b'5')
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
            && (b[i + 3] == b'-' || (b[i + 3] == b' ' && looks_like_status(&b[(i + 4).min(b.len())..])))
        {
            let mut j = i + 4;
            if looks_like_status(&b[j.min(b.len())..]) {
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                    j += 1;
                }
            }
            if seen {
                out.push_str(&text[copied..i]);
                copied = j;
            }
            seen = true;
            i = j;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// Cuts `b` to at most `max` bytes.
pub(crate) fn clip_bytes(b: &[u8], max: usize) -> &[u8] {
    &b[..b.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("your mailbox is full now", "mailbox *full"));
        assert!(!matches("full mailbox", "mailbox *full"));
    }

    #[test]
    fn finds_codes() {
        assert_eq!(
            find_status("550 5.1.1 <a@b.c>... User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_status("host 192.0.2.1 said"), None);
        assert_eq!(find_status("(#5.5.0)").as_deref(), Some("5.5.0"));
        assert_eq!(find_reply_code("host mx [192.0.2.1]: 550 5.1.1 no"), Some(550));
        assert_eq!(find_reply_code("192.0.2.250 said"), None);
        assert_eq!(find_reply_code("550-5.1.1 The email"), Some(550));
    }

    #[test]
    fn finds_addresses() {
        let a = addresses("<kijitora@example.jp>: said <Neko@Example.ORG>.");
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].1, "neko@example.org");
        assert!(addresses("@@@ a@b").is_empty());
    }
}
