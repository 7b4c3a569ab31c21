//! The `tag=value; tag=value` lists that DKIM key records (RFC 6376 §3.2)
//! and DMARC records (RFC 9989, "General Record Format", which borrows
//! DKIM's syntax) are written in. One parser for both, so both are read
//! with the same tolerance.

/// A tag list could not be read; the message names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagError(pub String);

/// Whitespace allowed around tags, names, `=` and values (RFC 6376 §3.2's
/// FWS: spaces, tabs and folded line breaks).
fn is_fws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `tag-name = ALPHA *ALNUMPUNC` (ALNUMPUNC: letters, digits, `_`).
fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `VALCHAR = %x21-3A / %x3C-7E`, with whitespace allowed inside a value.
fn valid_value(value: &str) -> bool {
    value
        .chars()
        .all(|c| matches!(c, '\x21'..='\x3a' | '\x3c'..='\x7e') || is_fws(c))
}

/// The tags of `text` in order, names as written, values trimmed.
///
/// Empty entries (`a=1;;b=2`, a trailing `;`) are skipped: the grammar
/// allows only the trailing one, but every verifier in use tolerates both
/// and refusing them would only produce findings nobody is hurt by. A
/// repeated tag is an error (RFC 6376 §3.2: "MUST be treated as an error");
/// `case_insensitive` makes `P=` repeat `p=`, as DMARC's quoted ABNF
/// literals do, while DKIM's tag names are case-sensitive.
pub(crate) fn parse(text: &str, case_insensitive: bool) -> Result<Vec<(&str, &str)>, TagError> {
    let mut tags: Vec<(&str, &str)> = Vec::new();
    for spec in text.split(';') {
        let spec = spec.trim_matches(is_fws);
        if spec.is_empty() {
            continue;
        }
        let Some((name, value)) = spec.split_once('=') else {
            return Err(TagError(format!("`{spec}` is not a tag=value pair")));
        };
        let (name, value) = (name.trim_end_matches(is_fws), value.trim_start_matches(is_fws));
        if !valid_name(name) {
            return Err(TagError(format!("`{name}` is not a valid tag name")));
        }
        if !valid_value(value) {
            return Err(TagError(format!(
                "the value of {name}= holds characters tag values may not (control or non-ASCII)"
            )));
        }
        let same = |(seen, _): &(&str, &str)| match case_insensitive {
            true => seen.eq_ignore_ascii_case(name),
            false => *seen == name,
        };
        if tags.iter().any(same) {
            return Err(TagError(format!("{name}= appears more than once")));
        }
        tags.push((name, value));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_split_and_trimmed() {
        assert_eq!(
            parse("v=DKIM1; k=rsa;\r\n\tp=MIIB AQAB ;", false).unwrap(),
            vec![("v", "DKIM1"), ("k", "rsa"), ("p", "MIIB AQAB")]
        );
        assert_eq!(
            parse("v = DMARC1 ;; p = none", true).unwrap(),
            vec![("v", "DMARC1"), ("p", "none")]
        );
        assert_eq!(parse("p=", false).unwrap(), vec![("p", "")]);
        assert_eq!(parse("", false).unwrap(), vec![]);
    }

    #[test]
    fn malformed_lists_are_refused_with_the_part_at_fault() {
        assert_eq!(
            parse("v=DMARC1; p reject", true),
            Err(TagError("`p reject` is not a tag=value pair".into()))
        );
        assert!(parse("v=DMARC1; 1p=none", true).unwrap_err().0.contains("`1p`"));
        assert!(
            parse("v=DMARC1; p=none; p=reject", true)
                .unwrap_err()
                .0
                .contains("more than once")
        );
        assert!(parse("v=DMARC1; p=none; P=reject", true).is_err());
        assert!(
            parse("v=DKIM1; p=x; P=y", false).is_ok(),
            "DKIM tag names are case-sensitive"
        );
        assert!(parse("v=DKIM1; n=caf\u{e9}", false).is_err());
    }
}
