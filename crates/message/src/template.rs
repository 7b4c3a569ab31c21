//! `{{key}}` substitutions: per-recipient values filled into a subject or
//! a body.

use std::collections::BTreeMap;

/// Where the text goes: HTML gets its values escaped, so a value can never
/// inject markup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Text,
    Html,
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `v` with `&`, `<`, `>`, `"` and `'` as HTML entities: safe in text
/// and in quoted attributes.
pub fn escape_html(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    escape_into(&mut out, v);
    out
}

fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Replaces every `{{key}}` (spaces inside the braces allowed) with the
/// recipient's value, or with nothing when the recipient has none. Braces
/// around anything that is not a key are left as written.
pub fn substitute(template: &str, values: &BTreeMap<String, String>, context: Context) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let key = after[..close].trim();
        if is_key(key) {
            let value = values.get(key).map(String::as_str).unwrap_or("");
            match context {
                Context::Text => out.push_str(value),
                Context::Html => escape_into(&mut out, value),
            }
            rest = &after[close + 2..];
        } else {
            // Not a key: keep one brace and look again from the next, so
            // `{{{key}}}` still fills the inner key.
            out.push('{');
            rest = &rest[open + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `template` has any `{{key}}` to fill.
pub fn has_placeholders(template: &str) -> bool {
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        match after.find("}}") {
            Some(close) if is_key(after[..close].trim()) => return true,
            Some(_) => rest = &rest[open + 1..],
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        [("first_name", "Jane"), ("plan", "<b>Pro</b> & more")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn keys_are_filled_per_context() {
        let v = values();
        assert_eq!(
            substitute("Hi {{first_name}}, {{ plan }}!", &v, Context::Text),
            "Hi Jane, <b>Pro</b> & more!"
        );
        assert_eq!(
            substitute("<p>{{plan}}</p>", &v, Context::Html),
            "<p>&lt;b&gt;Pro&lt;/b&gt; &amp; more</p>"
        );
    }

    #[test]
    fn missing_values_are_empty_and_non_keys_stay() {
        let v = values();
        assert_eq!(substitute("Hi {{nick}}.", &v, Context::Text), "Hi .");
        assert_eq!(substitute("a {{#if x}} b {{", &v, Context::Text), "a {{#if x}} b {{");
        assert_eq!(substitute("{{{first_name}}}", &v, Context::Text), "{Jane}");
        assert_eq!(substitute("naïve {{first_name}} ü", &v, Context::Text), "naïve Jane ü");
    }

    #[test]
    fn placeholders_are_found_only_when_fillable() {
        assert!(has_placeholders("Dear {{ name }}"));
        assert!(!has_placeholders("{{#each}} {{"));
        assert!(!has_placeholders("plain"));
    }
}
