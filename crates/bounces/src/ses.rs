//! Amazon SES notifications forwarded by e-mail (an SNS "AWS Notification
//! Message" whose body is JSON): `notificationType` Bounce, Complaint or
//! Delivery, with `bouncedRecipients` / `complainedRecipients` /
//! `delivery.recipients`. No JSON library: the fields needed are flat
//! strings, found by name inside each recipient's object.

use crate::classify::Fact;

/// What an SES notification says.
pub(crate) enum Ses {
    Bounce(Vec<Fact>),
    Complaint(Vec<String>, Option<String>),
}

/// Reads an SES notification from a message body, if it is one.
pub(crate) fn read(body: &str) -> Option<Ses> {
    if !body.contains("notificationType") {
        return None;
    }
    // The SNS envelope carries the SES JSON as an escaped string.
    let json = body.replace("\\\"", "\"").replace("\\\\", "\\");
    let kind = string_after(&json, "\"notificationType\"")?;
    match kind.as_str() {
        "Bounce" => {
            let list = section(&json, "\"bouncedRecipients\"")?;
            let transient = string_after(&json, "\"bounceType\"").is_some_and(|t| t == "Transient");
            let sub = string_after(&json, "\"bounceSubType\"").unwrap_or_default();
            let mut facts = Vec::new();
            for obj in objects(list) {
                let Some(addr) = string_after(obj, "\"emailAddress\"") else {
                    continue;
                };
                let mut f = Fact {
                    recipient: crate::util::first_address(&addr).unwrap_or(addr.to_ascii_lowercase()),
                    status: string_after(obj, "\"status\"").filter(|s| crate::util::valid_status(s)),
                    action: string_after(obj, "\"action\"").map(|s| s.to_ascii_lowercase()),
                    ..Fact::default()
                };
                if let Some(d) = string_after(obj, "\"diagnosticCode\"") {
                    let (ty, rest) = match d.split_once(';') {
                        Some((t, r)) if t.len() < 20 && !t.contains(' ') => (Some(t.trim().to_ascii_lowercase()), r),
                        _ => (None, d.as_str()),
                    };
                    f.diag_type = ty;
                    f.diagnostic = crate::util::one_line(rest);
                }
                if sub.contains("Suppressed") || sub.contains("OnAccountSuppressionList") {
                    f.hint = Some(crate::Reason::Suppressed);
                }
                if f.status.is_none() && f.diagnostic.is_empty() && transient {
                    f.action = Some("delayed".into());
                }
                facts.push(f);
            }
            Some(Ses::Bounce(facts))
        }
        "Complaint" => {
            let list = section(&json, "\"complainedRecipients\"")?;
            let who = objects(list)
                .filter_map(|o| string_after(o, "\"emailAddress\""))
                .map(|a| a.to_ascii_lowercase())
                .collect();
            Some(Ses::Complaint(who, string_after(&json, "\"complaintFeedbackType\"")))
        }
        "Delivery" => {
            let list = section(&json, "\"recipients\"")?;
            let smtp = string_after(&json, "\"smtpResponse\"").unwrap_or_default();
            let facts = list
                .split('"')
                .skip(1)
                .step_by(2)
                .filter(|s| s.contains('@'))
                .map(|a| Fact {
                    recipient: a.to_ascii_lowercase(),
                    diagnostic: smtp.clone(),
                    action: Some("delivered".into()),
                    diag_type: Some("smtp".into()),
                    ..Fact::default()
                })
                .collect();
            Some(Ses::Bounce(facts))
        }
        _ => None,
    }
}

/// The string value after `"key"` and a colon.
fn string_after(json: &str, key: &str) -> Option<String> {
    let i = json.find(key)? + key.len();
    let rest = json[i..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string())
}

/// The `[...]` array after `"key":`.
fn section<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let i = json.find(key)? + key.len();
    let rest = &json[i..];
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    Some(&rest[open + 1..close])
}

/// The flat `{...}` objects of an array.
fn objects(list: &str) -> impl Iterator<Item = &str> {
    list.split('}').filter_map(|o| o.find('{').map(|i| &o[i + 1..]))
}
