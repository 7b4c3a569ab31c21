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

/// A set of patterns (see [`matches`]) indexed by (a hash of) the first
/// three bytes of each, so that one pass over a text tells which of them
/// occur. Each pattern carries an id below 64; [`Index::scan`] returns the
/// ids found as a bit set.
pub(crate) struct Index {
    /// `starts[h]..starts[h + 1]` are the entries whose pattern begins with
    /// a byte triple hashing to `h`.
    starts: Vec<u32>,
    /// Id, pattern, length of its first fragment.
    entries: Vec<(u8, &'static str, usize)>,
    /// Patterns whose first fragment is shorter than three bytes.
    short: Vec<(u8, &'static str)>,
}

/// Five-bit classes of bytes for [`Index`] buckets: lower-case letters,
/// space, digits and a little punctuation apart, the rest together.
const CLASS: [u8; 256] = {
    let mut t = [31u8; 256];
    let mut c = b'a';
    while c <= b'z' {
        t[c as usize] = c - b'a';
        c += 1;
    }
    t[b' ' as usize] = 26;
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = 27;
        d += 1;
    }
    t[b'.' as usize] = 28;
    t[b'-' as usize] = 29;
    t[b'\'' as usize] = 30;
    t
};

/// The bucket of three bytes: their classes side by side (15 bits).
fn triple(a: u8, b: u8, c: u8) -> usize {
    (CLASS[a as usize] as usize) << 10 | (CLASS[b as usize] as usize) << 5 | CLASS[c as usize] as usize
}

impl Index {
    pub(crate) fn new(patterns: impl IntoIterator<Item = (u8, &'static str)>) -> Self {
        let mut all: Vec<(usize, u8, &'static str, usize)> = Vec::new();
        let mut short = Vec::new();
        for (id, p) in patterns {
            debug_assert!(id < 64);
            let first = p.find('*').unwrap_or(p.len());
            let b = p.as_bytes();
            if first < 3 {
                short.push((id, p));
            } else {
                all.push((triple(b[0], b[1], b[2]), id, p, first));
            }
        }
        all.sort_by_key(|e| e.0);
        let mut starts = vec![0u32; (1 << 15) + 1];
        for e in &all {
            starts[e.0 + 1] += 1;
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let entries = all.into_iter().map(|(_, id, p, first)| (id, p, first)).collect();
        Index { starts, entries, short }
    }

    /// The ids of the patterns that occur in `text`.
    pub(crate) fn scan(&self, text: &str) -> u64 {
        let b = text.as_bytes();
        let mut found = 0u64;
        // Patterns whose later fragments were not found after an occurrence
        // of the first: they cannot match at any later one either, and
        // trying again would make the scan quadratic.
        let mut dead = vec![0u64; self.entries.len() / 64 + 1];
        let mut h = if b.len() >= 2 { triple(0, b[0], b[1]) } else { 0 };
        for i in 0..b.len().saturating_sub(2) {
            // Rolling: drop the oldest byte's class, add the newest.
            h = (h << 5 | CLASS[b[i + 2] as usize] as usize) & 0x7fff;
            let (lo, hi) = (self.starts[h] as usize, self.starts[h + 1] as usize);
            if lo == hi {
                continue;
            }
            let here = &b[i..];
            for (e, &(id, pat, first)) in self.entries[lo..hi].iter().enumerate() {
                let bit = 1u64 << id;
                let e = lo + e;
                if found & bit != 0 || here.len() < first || dead[e / 64] & (1 << (e % 64)) != 0 {
                    continue;
                }
                // A pattern's first byte is ASCII or a UTF-8 lead byte, so
                // `i` is a character boundary when it matches.
                let p = pat.as_bytes();
                let mut k = 0;
                while k < first && here[k] == p[k] {
                    k += 1;
                }
                if k == first {
                    if first == pat.len() || matches(&text[i + first..], &pat[first..]) {
                        found |= bit;
                    } else {
                        dead[e / 64] |= 1 << (e % 64);
                    }
                }
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
    // One pass, byte by byte (see [`one_line`]); only ASCII letters are
    // lower-cased: the patterns are ASCII, and full Unicode case folding of
    // long Japanese or Cyrillic notices would cost more than it finds.
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut space = false;
    let mut i = 0;
    let b = text.as_bytes();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() || c.is_ascii_control() {
            space = !out.is_empty();
        } else if c == 0xe2 && b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0x98 | 0x99)) {
            // ‘ and ’ read as an apostrophe ("couldn’t").
            if space {
                out.push(b' ');
                space = false;
            }
            out.push(b'\'');
            i += 3;
            continue;
        } else {
            if space {
                out.push(b' ');
                space = false;
            }
            out.push(c.to_ascii_lowercase());
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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
