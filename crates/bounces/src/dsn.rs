//! RFC 3464 delivery status notifications: the `message/delivery-status`
//! part, one per-message block then one block per recipient
//! (`Final-Recipient`, `Action`, `Status`, `Remote-MTA`, `Diagnostic-Code`).
//!
//! Real reports bend the rules: blocks without blank lines between them,
//! `Original-Recipient` only, `X-Actual-Recipient`, a Diagnostic-Code folded
//! over many lines, a status only in the diagnostic. A new recipient field
//! while the current block already has one starts a new block.

use crate::classify::{Fact, command_in};
use crate::util::{
    fields, find_reply_code, find_status, first_address, leading_reply_code, one_line, prefer_status, said_status,
    valid_status,
};

/// What the per-message block says.
#[derive(Debug, Default)]
pub(crate) struct PerMessage {
    pub reporting_mta: Option<String>,
    /// `X-Postfix-Sender` and the like: the original envelope sender.
    pub sender: Option<String>,
}

/// Reads one delivery-status part.
pub(crate) fn read(text: &str) -> (PerMessage, Vec<Fact>) {
    let mut per = PerMessage::default();
    let mut facts: Vec<Fact> = Vec::new();
    // Blocks are separated by blank lines. A block naming one recipient
    // holds that recipient's fields, in any order; blocks that run several
    // recipients together are read field by field.
    let mut fields_in_order: Vec<(String, String)> = Vec::new();
    for block in blocks(text) {
        let f = fields(block);
        let rcpts = f.iter().filter(|(n, _)| n == "final-recipient").count();
        let has_rcpt = f
            .iter()
            .any(|(n, _)| n == "final-recipient" || n == "original-recipient");
        if rcpts <= 1 && has_rcpt {
            // Recipient fields first so that the others attach to it.
            let (mut r, o): (Vec<_>, Vec<_>) = f.into_iter().partition(|(n, _)| n.ends_with("-recipient"));
            r.sort_by_key(|(n, _)| n != "final-recipient");
            fields_in_order.extend(r);
            fields_in_order.extend(o);
        } else {
            fields_in_order.extend(f);
        }
        // A blank line ends a recipient block.
        fields_in_order.push((String::new(), String::new()));
    }
    let mut cur: Option<Fact> = None;
    let mut cur_has_final = false;
    for (name, value) in fields_in_order {
        if name.is_empty() {
            if let Some(f) = cur.take() {
                facts.push(f);
            }
            cur_has_final = false;
            continue;
        }
        match name.as_str() {
            "reporting-mta" => per.reporting_mta = Some(after_type(&value).to_ascii_lowercase()),
            "x-postfix-sender" | "x-original-sender" => per.sender = first_address(&value),
            "final-recipient" | "original-recipient" | "x-actual-recipient" => {
                let addr = first_address(after_type(&value)).or_else(|| first_address(&value));
                let Some(addr) = addr else { continue };
                let is_final = name == "final-recipient";
                let starts_new = match &cur {
                    None => true,
                    Some(_) if is_final => cur_has_final,
                    Some(f) => name == "original-recipient" && cur_has_final && f.action.is_some(),
                };
                if starts_new {
                    if let Some(f) = cur.take() {
                        facts.push(f);
                    }
                    cur = Some(Fact {
                        recipient: addr,
                        ..Fact::default()
                    });
                    cur_has_final = is_final;
                } else if let Some(f) = cur.as_mut() {
                    // Final-Recipient wins over Original-Recipient; an
                    // X-Actual-Recipient does not replace either.
                    if is_final {
                        if !cur_has_final {
                            f.recipient = addr;
                        }
                        cur_has_final = true;
                    }
                }
            }
            _ => {
                let Some(f) = cur.as_mut() else { continue };
                match name.as_str() {
                    "action" => f.action = Some(value.split_whitespace().next().unwrap_or("").to_ascii_lowercase()),
                    "status" => {
                        let s = find_status(&value);
                        if s.is_some() {
                            f.status = s;
                        }
                    }
                    "remote-mta" => f.remote_mta = Some(after_type(&value).to_ascii_lowercase()),
                    // PowerMTA's own verdict (`rfc3464/powermta.go`).
                    "x-powermta-bouncecategory" => {
                        f.hint = crate::decoders::message_reason("powermta", &value.trim().to_ascii_lowercase());
                    }
                    "diagnostic-code" => {
                        let (ty, rest) = match value.split_once(';') {
                            Some((t, r)) if t.len() < 20 && !t.contains(' ') => {
                                (Some(t.trim().to_ascii_lowercase()), r)
                            }
                            _ => (None, value.as_str()),
                        };
                        f.diag_type = ty;
                        f.diagnostic = one_line(rest);
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(f) = cur.take() {
        facts.push(f);
    }
    for f in &mut facts {
        f.reporter = per.reporting_mta.clone();
        finish(f);
    }
    (per, facts)
}

/// The blank-line separated blocks of a delivery-status part.
fn blocks(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let t = rest.trim_start_matches(['\r', '\n']);
        if t.is_empty() {
            return None;
        }
        let end = t.find("\n\n").or_else(|| t.find("\n\r\n")).unwrap_or(t.len());
        let (block, tail) = t.split_at(end);
        rest = tail;
        Some(block)
    })
}

/// Fills the reply code, status and command from the diagnostic.
pub(crate) fn finish(f: &mut Fact) {
    if f.finished {
        return;
    }
    f.finished = true;
    if f.diagnostic.contains('-') {
        f.diagnostic = crate::util::strip_continuations(&f.diagnostic);
    }
    if f.reply_code.is_none() {
        f.reply_code = leading_reply_code(&f.diagnostic).or_else(|| find_reply_code(&f.diagnostic));
    }
    if let Some(t) = said_status(&f.diagnostic) {
        f.status = Some(match f.status.take() {
            None => t,
            Some(s) => prefer_status(&s, &t, f.reply_code).to_string(),
        });
    }
    if f.status.as_deref().is_some_and(|s| !valid_status(s)) {
        f.status = None;
    }
    if f.command.is_none() {
        f.command = command_in(&f.diagnostic);
    }
}

/// `rfc822; a@b` → `a@b`; `dns; mx.example` → `mx.example`.
fn after_type(v: &str) -> &str {
    match v.split_once(';') {
        Some((_, r)) => r.trim(),
        None => v.trim(),
    }
}

/// The delivery-status fields of a text part that carries them without the
/// `message/delivery-status` label (inline, or forwarded as text/plain).
pub(crate) fn inline(text: &str) -> Option<&str> {
    let starts = |l: &str, needle: &str| l.get(..needle.len()).is_some_and(|p| p.eq_ignore_ascii_case(needle));
    let mut offset = 0;
    let mut start = None;
    let mut rcpt = false;
    let mut status = false;
    for line in text.split_inclusive('\n') {
        if starts(line, "reporting-mta:") && start.is_none() {
            start = Some(offset);
        }
        if starts(line, "final-recipient:") || starts(line, "original-recipient:") {
            start = start.or(Some(offset));
            rcpt = true;
        }
        status |= rcpt && starts(line, "status:");
        offset += line.len();
    }
    if rcpt && status { text.get(start?..) } else { None }
}
