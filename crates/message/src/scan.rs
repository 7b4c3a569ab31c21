//! Text helpers for reading machine-written mail (bounces, complaints,
//! DMARC and TLS reports): a byte search, header-like fields in a body,
//! white space folded, a string cut on a character boundary. Each is linear
//! in its input.

/// Where `needle` first occurs in `hay`. The texts searched are short and
/// the patterns many, so a scan for the needle's rarest-looking byte pair
/// beats building a Two-Way searcher for every pattern.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let n = needle.len();
    if n == 0 {
        return Some(0);
    }
    if hay.len() < n {
        return None;
    }
    let (first, last) = (needle[0], needle[n - 1]);
    let end = hay.len() - n;
    let mut i = 0;
    while i <= end {
        match hay[i..=end].iter().position(|&b| b == first) {
            None => return None,
            Some(k) => i += k,
        }
        if hay[i + n - 1] == last && &hay[i..i + n] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Folds every run of white space (and control characters) to one space,
/// trimmed, keeping the case.
pub fn one_line(text: &str) -> String {
    // White space and control characters are ASCII and never occur inside
    // a multi-byte UTF-8 sequence, so the runs between them are copied
    // whole, as `str` slices.
    const SEP: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            t[c] = b.is_ascii_whitespace() || b.is_ascii_control();
            c += 1;
        }
        t
    };
    let sep = |c: u8| SEP[c as usize];
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && sep(b[i]) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !sep(b[i]) {
            i += 1;
        }
        if start < i {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&text[start..i]);
        }
    }
    out
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Reads `Name: value` fields (with folded continuation lines) from a block
/// of header-like text, lower-casing the names.
pub fn fields(text: &str) -> Vec<(String, String)> {
    fields_named(text, None)
}

/// [`fields`], keeping only the names listed (lower-case) when a list is
/// given: a returned message's header carries dozens of fields of which a
/// few are read.
pub fn fields_named(text: &str, keep: Option<&[&str]>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut keeping = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if keeping && let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        keeping = false;
        if let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && name.len() < 60
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            if keep.is_some_and(|k| !k.iter().any(|n| n.eq_ignore_ascii_case(name))) {
                continue;
            }
            keeping = true;
            out.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}
