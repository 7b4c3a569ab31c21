//! Human-readable bounces: the notices of Postfix, Exim, Sendmail, qmail,
//! Exchange, Gmail, Yahoo, Domino, Courier, … that carry no (or a poor)
//! `message/delivery-status` part.
//!
//! They share a shape, so one reader handles them: a preamble, then for each
//! failed recipient a line naming the address (`<a@b>:`, `  a@b`,
//! `a@b on <date>`, `Recipient address: a@b`, …) followed by the remote
//! server's words, then a marker after which the returned message is quoted
//! ([`ORIGINAL_MARKERS`]). Whether a message is a bounce at all comes from
//! its sender, subject and a few per-MTA phrases ([`BOUNCE_SUBJECTS`],
//! [`BODY_MARKERS`]).

use crate::classify::{Fact, command_in};
use crate::mime::Doc;
use crate::util::{addresses, fold, matches_any};

/// Subjects of delivery failure notices (lower-case fragments).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery problem",
    "failure notice",
    "failure delivery",
    "returned mail",
    "return mail",
    "mail delivery",
    "mail could not be delivered",
    "mail system error",
    "message not delivered",
    "non remis",
    "not delivered",
    "nondeliverable",
    "non-deliverable",
    "non delivery",
    "non-delivery",
    "permanent failure",
    "delivery notification",
    "warning: could not send message",
    "could not send message",
    "delayed mail",
    "delivery delayed",
    "message delayed",
    "bounce",
    "error sending",
    "mail failure",
    "rejected:",
    "rejected mail",
    "unzustellbar",
    "nicht zustellbar",
    "no se puede entregar",
    "problem delivering",
    "message you sent",
    "notification de l'etat",
    "unable to deliver",
    "delivery report",
    "mensaje no entregado",
    "mail failed",
    "are not member",
    "returning message to sender",
    "returned to sender",
];

/// Phrases that only delivery failure notices contain: enough on their own.
const STRONG_BODY_MARKERS: &[&str] = &[
    "this is the mail system at host",
    "this is the qmail-send program",
    "the following address(es) failed",
    "could not be delivered to one or more of its",
    "delivery to the following recipient",
    "the original message was received at",
    "----- transcript of session follows -----",
    "the following addresses had permanent fatal errors",
    "the following addresses had delivery problems",
    "i'm sorry to have to inform you that your message could not",
    "your message did not reach some or all of the intended recipients",
    "did not reach the following recipient",
    "delivery has failed to these recipients",
    "this message was created automatically by mail delivery software",
    "this is an automatically generated delivery status notification",
    "could not be delivered to:",
    "unable to deliver message to",
    "there was an error delivering your mail to",
    "an error has occurred while attempting to deliver",
    "message could not be delivered to mobile",
];

/// Phrases frequent in delivery failure notices, but not only there: they
/// count with a system sender or a failure subject.
const BODY_MARKERS: &[&str] = &[
    "your message couldn't be delivered",
    "your message wasn't delivered",
    "message delivery has failed",
    "sorry, we were unable to deliver your message",
    "message could not be delivered",
    "couldn't be delivered to",
    "permanent error",
    "was not delivered to",
    "could not be delivered",
    "unable to deliver",
    "delivery failed",
    "undeliverable",
    "delivery to the following recipients failed",
    "an error occurred while trying to deliver",
    "failed to deliver",
    "your message has been rejected",
    "returned mail",
    "the following recipients",
    "delivery attempts will continue",
    "will be retried",
    "delivery failure",
    "<<< 5",
    ">>> 5",
    "<<< 4",
    ">>> 4",
    "invalid user",
    "user unknown",
    "no such user",
    "not a member",
];

/// Phrases which, on a line of their own (decorated with `---`, `===`, …,
/// or starting the line), announce the quoted returned message.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message",
    "message follows",
    "copy of the original message",
    "content-type: message/rfc822",
    "content-type: text/rfc822-headers",
    "undelivered message attached",
    "headers of your message",
    "returned message",
    "message text follows",
    "header of the original message",
    "original mail follows",
    "your message reads",
    "the header and top",
    "below is a copy",
    "message headers follow",
    "unsent message",
    "the text you sent follows",
    "end of message",
];

/// Whether a message with no report part looks like a bounce.
pub(crate) fn looks_like_bounce(doc: &Doc, body: &str) -> bool {
    if doc.header("x-failed-recipients").is_some() {
        return true;
    }
    let from = fold(doc.header("from").unwrap_or(""));
    let subject = fold(doc.header("subject").unwrap_or(""));
    let system_from = from.contains("mailer-daemon")
        || from.contains("postmaster")
        || from.contains("mail delivery")
        || from.contains("mail-daemon")
        || from.contains("mailerdaemon")
        || from.contains("mail administrator")
        || from.contains("system administrator")
        || from.contains("<>")
        || from.contains("mailer daemon")
        || from.contains("post_master")
        || from.contains("ndr administrator")
        || from.trim().is_empty();
    let subject_says = matches_any(&subject, BOUNCE_SUBJECTS);
    if system_from && subject_says {
        return true;
    }
    static MARKERS: std::sync::OnceLock<[aho_corasick::AhoCorasick; 2]> = std::sync::OnceLock::new();
    let [strong, weak] = MARKERS.get_or_init(|| [STRONG_BODY_MARKERS, BODY_MARKERS].map(automaton));
    let text = fold(crate::util::clip(body, 4096));
    strong.is_match(&text) || ((system_from || subject_says) && weak.is_match(&text))
}

/// An automaton telling whether any of the phrases occurs.
fn automaton(phrases: &[&str]) -> aho_corasick::AhoCorasick {
    aho_corasick::AhoCorasick::new(phrases).expect("the marker phrases build an automaton")
}

/// [`ORIGINAL_MARKERS`] anywhere in a line, in any case.
fn original_markers() -> &'static aho_corasick::AhoCorasick {
    static MARKERS: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    MARKERS.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(ORIGINAL_MARKERS)
            .expect("the marker phrases build an automaton")
    })
}

/// The part of the notice before the returned message.
pub(crate) fn notice(text: &str) -> &str {
    let mut offset = 0;
    let mut seen_text = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        let first = l.bytes().next().unwrap_or(b' ').to_ascii_lowercase();
        let decorated = matches!(first, b'-' | b'=' | b'*' | b'[' | b'_' | b'#' | b'|');
        let starts = |m: &&str| m.as_bytes()[0] == first && l.get(..m.len()).is_some_and(|p| p.eq_ignore_ascii_case(m));
        let is_marker = (first.is_ascii_alphabetic() && ORIGINAL_MARKERS.iter().any(starts))
            || (decorated && l.len() < 200 && original_markers().is_match(l));
        let is_header = seen_text
            && (line.starts_with("Received: ")
                || line.starts_with("Return-Path: ")
                || line.starts_with("Return-path: ")
                || line.starts_with("DKIM-Signature: ")
                || line.starts_with("Message-ID: ")
                || line.starts_with("Message-Id: "));
        if (is_marker && seen_text) || is_header {
            return &text[..offset];
        }
        if !l.is_empty() {
            seen_text = true;
        }
        offset += line.len();
    }
    text
}

/// Whether a line names a recipient at its start: `<a@b>:`, `a@b`,
/// `"a@b"`, `a@b on …`, `Recipient: a@b`, `RCPT TO:<a@b>`.
fn recipient_on_line(line: &str) -> Option<(String, usize, bool)> {
    if !line.contains('@') {
        return None;
    }
    let t = line.trim_start();
    let lead = line.len() - t.len();
    let mut rest = t;
    let mut prefixed = false;
    // Transcript decorations and reply codes before the address:
    // `Sent <<< RCPT TO:<a@b>`, `554 <a@b>... Remote protocol error`.
    loop {
        let prefix = RECIPIENT_PREFIXES
            .iter()
            .find(|p| rest.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)));
        if let Some(p) = prefix {
            rest = rest[p.len()..].trim_start();
            prefixed = true;
            continue;
        }
        if crate::util::leading_reply_code(rest).is_some() && rest.len() > 4 {
            rest = rest[4..].trim_start();
            prefixed = true;
            continue;
        }
        break;
    }
    let r = rest.trim_start_matches([' ', '\t', '<', '"', '\'', '(', '[']);
    let (pos, addr) = addresses(r).into_iter().next()?;
    if pos != 0 {
        return None;
    }
    let end = lead + (t.len() - r.len()) + addr.len();
    Some((addr, end, prefixed))
}

/// Labels that may precede a recipient's address at the start of a line.
const RECIPIENT_PREFIXES: &[&str] = &[
    "recipient address:",
    "recipient:",
    "original-recipient:",
    "final-recipient:",
    "failed recipient:",
    "address:",
    "rcpt to:",
    "mailbox:",
    "user:",
    "destinataire :",
    "destinataire:",
    "sent",
    "received",
    "<<<",
    ">>>",
    "*",
    "-",
    "rfc822;",
];

/// Addresses named in passing taken as recipients, at most: a notice that
/// names thousands is not a bounce of that many messages, and each costs a
/// classification.
const MAX_PASSING: usize = 100;

/// Finds the failed recipients of a human-readable notice and the words
/// about each. `exclude` holds the sender's own addresses.
///
/// `fallback` holds addresses to use when the notice names nobody (the
/// returned message's recipients).
pub(crate) fn read(notice: &str, exclude: &[String], failed_hdr: &[String], fallback: &[String]) -> Vec<Fact> {
    let lines: Vec<&str> = notice.lines().take(2000).collect();
    let mut hits: Vec<(usize, String, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((addr, end, prefixed)) = recipient_on_line(line)
            && !(prefixed && exclude.contains(&addr))
            && !addr.starts_with("mailer-daemon@")
            && (failed_hdr.is_empty() || failed_hdr.contains(&addr))
        {
            hits.push((i, addr, end));
        }
    }
    let mut facts: Vec<Fact> = Vec::new();
    for (k, (i, addr, end)) in hits.iter().enumerate() {
        // The same address again right below (a wrapped line, a transcript)
        // belongs to this account.
        let stop = hits[k + 1..]
            .iter()
            .find(|h| h.1 != *addr)
            .map(|h| h.0)
            .unwrap_or(lines.len())
            .min(i + 40);
        if k > 0 && hits[k - 1].1 == *addr && hits[k - 1].0 + 40 > *i {
            continue;
        }
        let mut diag = String::new();
        let rest_of_line = lines[*i].get(*end..).unwrap_or("");
        diag.push_str(rest_of_line);
        // `554 <a@b>... Remote protocol error` says it all on one line: what
        // follows belongs to it only when indented.
        let says_it_all = rest_of_line.bytes().filter(u8::is_ascii_alphanumeric).count() >= 10
            && crate::util::leading_reply_code(lines[*i]).is_some();
        for l in &lines[i + 1..stop] {
            if says_it_all && !l.starts_with([' ', '\t']) {
                break;
            }
            diag.push('\n');
            diag.push_str(l);
        }
        let diag = diag
            .trim_matches(|c: char| c.is_whitespace() || c == '>' || c == ':')
            .to_string();
        if let Some(f) = facts.iter_mut().find(|f| f.recipient == *addr) {
            // The same address again (a transcript after the summary): keep
            // the longer account.
            if f.diagnostic.trim().is_empty() {
                f.diagnostic = diag;
            }
            continue;
        }
        // The label before the address may name the command (`>>> RCPT TO:`).
        let command = command_in(&format!("{}\n{diag}", lines[*i]));
        facts.push(Fact {
            recipient: addr.clone(),
            diagnostic: diag,
            command,
            ..Fact::default()
        });
    }
    if facts.is_empty() {
        let mut seen: Vec<String> = Vec::new();
        let candidates: Vec<String> = if failed_hdr.is_empty() {
            let mut c: Vec<String> = addresses(notice).into_iter().map(|(_, a)| a).collect();
            c.extend(fallback.iter().cloned());
            c
        } else {
            failed_hdr.to_vec()
        };
        for a in candidates {
            if !exclude.contains(&a) && !a.starts_with("mailer-daemon@") && !seen.contains(&a) {
                seen.push(a);
            }
        }
        // Named only in passing: the notice as a whole is their account
        // (its start: the rest is read no further anywhere).
        let whole = crate::util::clip(notice.trim(), 4096);
        for a in seen.into_iter().take(MAX_PASSING) {
            facts.push(Fact {
                recipient: a,
                diagnostic: whole.to_string(),
                ..Fact::default()
            });
        }
        for f in &mut facts {
            f.human = true;
            f.command = command_in(&f.diagnostic);
        }
        return facts;
    }
    // A recipient whose lines say nothing: the notice's words apply.
    let whole = crate::util::clip(notice.trim(), 4096);
    let single = facts.len() == 1;
    for f in &mut facts {
        if f.diagnostic.chars().filter(|c| !c.is_whitespace()).take(8).count() < 8 {
            f.diagnostic = whole.to_string();
            if f.command.is_none() {
                f.command = command_in(&f.diagnostic);
            }
        } else if single {
            f.notice = whole.to_string();
        }
        f.diagnostic = crate::util::clip(&f.diagnostic, 4096).to_string();
        f.human = true;
    }
    facts
}
