//! What comes back from the world, read and classified: delivery status
//! notifications (RFC 3464 and the non-standard formats of real servers),
//! feedback-loop complaints (ARF, RFC 5965) and auto-replies (RFC 3834).
//! One [`Failure`] per failed recipient, with a reason from Sisimai's
//! taxonomy, so bounces from any server mean the same thing. The same
//! classifier names the reason of a synchronous SMTP answer during delivery
//! ([`classify_reply`]).
//!
//! L0: bytes in, values out; no I/O.
//!
//! How a message is read ([`parse`]):
//! - `mime`: the MIME tree (mail-parser) flattened into the parts that
//!   matter: the human-readable notice, `message/delivery-status`,
//!   `message/feedback-report`, the returned message's headers.
//! - `ses`: Amazon SES notifications relayed as JSON mail.
//! - `arf`: complaints (RFC 5965 and the older non-ARF formats).
//! - `dsn`: RFC 3464 per-recipient fields, also when not labelled as such.
//! - `text`: the human-readable notices of Postfix, Exim, Sendmail, qmail,
//!   Exchange, Gmail, …: which recipients failed and the server's words.
//! - `autoreply`: RFC 3834 automatic replies.
//! - `decoders`: which MTA or ESP wrote the report (Sisimai's `lhost`
//!   modules), and that decoder's own messages.
//! - `classify` and `rhost`: the reason, from status, reply code, SMTP
//!   command and words, in Sisimai's order, with its tables per reason and
//!   per remote host (`tables`).
//!
//! Every step is linear in the input, which is read up to 512 KiB.
//!
//! Reports about mail sent in a domain's name (DMARC aggregate and failure
//! reports, SMTP TLS reports) are another crate's job, `herald-reports`.

mod arf;
mod autoreply;
mod classify;
mod decoders;
mod dsn;
mod mime;
mod reason;
mod reply;
mod rhost;
mod ses;
mod tables;
mod text;
mod util;

pub use reason::Reason;
pub use reply::{ReplyKind, sort_reply};

/// What a message that came back is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A delivery status notification: some recipients failed (or were
    /// delayed).
    Bounce,
    /// A feedback-loop report (ARF): a recipient complained.
    Feedback,
    /// An automatic reply (vacation, out of office).
    AutoReply,
}

/// One recipient's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The address that failed (lower-case), as the report names it.
    pub recipient: String,
    /// RFC 3463 enhanced status (`5.1.1`), when the report gives or implies one.
    pub status: Option<String>,
    /// The SMTP reply code (`550`), when the report gives one.
    pub reply_code: Option<u16>,
    pub reason: Reason,
    /// A permanent failure that should suppress the address at once.
    pub hard: bool,
    /// `failed`, `delayed`, `delivered`, … (RFC 3464 Action), when given.
    pub action: Option<String>,
    /// The remote server's own words, on one line.
    pub diagnostic: String,
    /// The host that answered, when named.
    pub remote_mta: Option<String>,
    /// For complaints: `abuse`, `opt-out`, `auth-failure`, …
    pub feedback_type: Option<String>,
}

/// A message that came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: Kind,
    pub failures: Vec<Failure>,
    /// The Message-ID of the message this is about, from the returned
    /// message or its headers, without angle brackets.
    pub original_message_id: Option<String>,
    /// The returned message's envelope sender or Return-Path, when shown.
    pub original_return_path: Option<String>,
    /// What recognised the message: a Sisimai decoder's name (`postfix`,
    /// `exim`, `office365`, …), else the generic reader that did:
    /// `rfc3464` (a delivery-status part), `arf` (a complaint), `rfc3834`
    /// (an auto-reply), `amazonses` (an SES notification) or `text` (a
    /// human-readable notice of no known MTA).
    pub decoder: &'static str,
}

/// How [`parse_with`] reads a message.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// Decoders (their Sisimai names, as in [`Report::decoder`]) not to use:
    /// what the generic rules achieve without them.
    pub disabled: &'a [&'a str],
}

/// The names of the MTA and ESP decoders, in the order they are tried.
pub fn decoder_names() -> impl Iterator<Item = &'static str> {
    decoders::DECODERS.iter().map(|d| d.name)
}

/// Reads a message that came back. `None` when it is neither a bounce, a
/// complaint nor an auto-reply (ordinary mail).
pub fn parse(raw: &[u8]) -> Option<Report> {
    parse_with(raw, &Options::default())
}

/// [`parse`], with some decoders switched off.
pub fn parse_with(raw: &[u8], options: &Options) -> Option<Report> {
    let mut doc = mime::read(raw)?;
    // A bounce forwarded by hand: its quoting is taken off, as Sisimai does
    // for a "Fwd:" subject (`message/rise.go`).
    let forwarded = doc.header("subject").is_some_and(|s| {
        let s = s.trim_start().as_bytes();
        s.len() >= 3 && (s[..3].eq_ignore_ascii_case(b"fw:") || s.len() >= 4 && s[..4].eq_ignore_ascii_case(b"fwd:"))
    });
    if forwarded && let Some(t) = doc.texts.first_mut() {
        *t = unquote(t);
    }
    // Where the notice ends and a quoted copy of the returned message starts.
    let cut = doc.texts.first().map(|b| text::notice(b).len()).unwrap_or(0);
    if doc.original.is_none() {
        doc.original = doc.texts.first().and_then(|b| inline_original(b, cut));
    }
    let original_message_id = original_message_id(&doc);
    let body = doc.texts.first().map(String::as_str).unwrap_or("");

    // Amazon SES notifications relayed as mail.
    if let Some(ses) = ses::read(body) {
        let (kind, failures) = match ses {
            ses::Ses::Bounce(facts) => (Kind::Bounce, facts.into_iter().map(finish).collect()),
            ses::Ses::Complaint(who, ty) => (
                Kind::Feedback,
                who.into_iter().map(|r| complaint(r, ty.clone())).collect(),
            ),
        };
        return Some(Report {
            kind,
            failures,
            original_message_id,
            original_return_path: None,
            decoder: "amazonses",
        });
    }

    // A complaint (ARF or its older cousins).
    let complaints = arf::read(&doc);
    if !complaints.is_empty() {
        return Some(Report {
            kind: Kind::Feedback,
            failures: complaints,
            original_message_id,
            original_return_path: original_sender(&doc, None),
            decoder: "arf",
        });
    }

    let notice = &body[..cut];
    let failed_hdr: Vec<String> = doc
        .header("x-failed-recipients")
        .map(|v| util::addresses(v).into_iter().map(|(_, a)| a).collect())
        .unwrap_or_default();
    let original_to: Vec<String> = doc
        .original_header("to")
        .map(|v| util::addresses(v).into_iter().map(|(_, a)| a).collect())
        .unwrap_or_default();

    // The machine-readable part, or a text part that is one in all but name.
    let mut reports: Vec<&str> = doc.delivery_status.iter().map(String::as_str).collect();
    if reports.is_empty() {
        reports.extend(doc.texts.iter().filter_map(|t| dsn::inline(t)));
    }

    let mut sender = None;
    let is_dsn = !reports.is_empty();
    let looks_like_bounce = !is_dsn && text::looks_like_bounce(&doc, body);
    let mut facts = if is_dsn {
        let mut facts = Vec::new();
        for part in &reports {
            let (per, f) = dsn::read(part);
            sender = sender.or(per.sender);
            facts.extend(f);
        }
        // One recipient whose report has words: the notice serves only as
        // context, and reading it recipient by recipient is not needed.
        if let [f] = facts.as_mut_slice()
            && !f.diagnostic.trim().is_empty()
        {
            f.notice = util::clip(notice, 4096).to_string();
            if f.command.is_none() {
                // What the notice says right after naming the recipient.
                let at = notice.to_ascii_lowercase().find(&f.recipient).unwrap_or(0);
                f.command = classify::command_in(&notice[at..]);
            }
        }
        let words = if facts.len() == 1 && !facts[0].notice.is_empty() {
            Vec::new()
        } else {
            let exclude = senders(&doc, sender.as_deref());
            text::read(notice, &exclude, &failed_hdr, &original_to)
        };
        if facts.is_empty() {
            facts = words;
        } else {
            let single = facts.len() == 1;
            for f in &mut facts {
                let w = words
                    .iter()
                    .find(|w| w.recipient == f.recipient)
                    .or(if words.len() == 1 { words.first() } else { None });
                if let Some(w) = w {
                    let words = if w.diagnostic.trim().is_empty() {
                        &w.notice
                    } else {
                        &w.diagnostic
                    };
                    f.notice = util::clip(if single { notice } else { words }, 4096).to_string();
                    if f.diagnostic.trim().is_empty() && !w.diagnostic.trim().is_empty() {
                        f.diagnostic = util::one_line(&w.diagnostic);
                        f.finished = false;
                    }
                    if f.command.is_none() {
                        f.command = w.command;
                    }
                }
            }
        }
        facts
    } else if !looks_like_bounce && let Some(who) = autoreply::read(&doc) {
        return Some(Report {
            kind: Kind::AutoReply,
            failures: vec![Failure {
                recipient: who,
                status: None,
                reply_code: None,
                reason: Reason::Vacation,
                hard: false,
                action: None,
                diagnostic: util::one_line(util::clip(body, 512)),
                remote_mta: None,
                feedback_type: None,
            }],
            original_message_id,
            original_return_path: None,
            decoder: "rfc3834",
        });
    } else if looks_like_bounce {
        let exclude = senders(&doc, None);
        text::read(notice, &exclude, &failed_hdr, &original_to)
    } else {
        return None;
    };

    // Google Groups refuses a post with a notice in the poster's language.
    let from = doc.header("from").unwrap_or("").to_ascii_lowercase();
    for f in &mut facts {
        if f.status.is_none() && f.recipient.ends_with("@googlegroups.com") && from.contains("googlemail.com") {
            f.hint = Some(Reason::Rejected);
        }
    }

    // The MTA that wrote the report, and what its own messages mean.
    let decoder = decoders::recognise(&doc, body, options.disabled);
    if let Some(d) = decoder {
        decoders::read_more(d.name, &mut facts);
        for f in facts.iter_mut().filter(|f| f.hint.is_none()) {
            if let Some(r) = decoders::direct_reason(d.name, &doc, f) {
                f.hint = Some(r);
                continue;
            }
            let said = decoders::message_reason(d.name, &f.diagnostic.to_ascii_lowercase())
                .or_else(|| f.status.as_deref().and_then(|s| decoders::status_reason(d.name, s)));
            f.hint = said.or_else(|| {
                (!f.notice.is_empty())
                    .then(|| decoders::message_reason(d.name, &f.notice.to_ascii_lowercase()))
                    .flatten()
            });
        }
    }
    let decoder = decoder.map_or(if is_dsn { "rfc3464" } else { "text" }, |d| d.name);

    let failures: Vec<Failure> = facts
        .into_iter()
        .filter(|f| !f.recipient.is_empty())
        .map(finish)
        .collect();
    if failures.is_empty() && !is_dsn {
        return None;
    }
    Some(Report {
        kind: Kind::Bounce,
        failures,
        original_message_id,
        original_return_path: original_sender(&doc, sender.as_deref()),
        decoder,
    })
}

/// A text with one level of `> ` quoting taken off the lines that have it
/// (and quoted empty lines emptied); a transcript's `>>> ` is not quoting.
fn unquote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let empty_quote = line.trim_end() == ">";
        out.push_str(match line.strip_prefix("> ") {
            Some(rest) => rest,
            None if empty_quote => &line[1..],
            None => line,
        });
    }
    out
}

/// A complaint from a source without ARF.
fn complaint(recipient: String, feedback_type: Option<String>) -> Failure {
    Failure {
        recipient,
        status: None,
        reply_code: None,
        reason: Reason::Feedback,
        hard: false,
        action: None,
        diagnostic: String::new(),
        remote_mta: None,
        feedback_type: feedback_type.or(Some("abuse".into())),
    }
}

/// The `To:` of a returned message quoted inline after the notice.
fn inline_original(body: &str, cut: usize) -> Option<Vec<(String, String)>> {
    // Skip the marker and anything before the first header line, then read
    // the header block up to its blank line.
    let rest = body.get(cut..)?;
    let mut lines = rest.split_inclusive('\n').take(400).peekable();
    let mut offset = 0;
    while let Some(l) = lines.peek() {
        let looks_like_header = l.split_once(':').is_some_and(|(n, _)| {
            !n.is_empty() && n.len() < 40 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if looks_like_header {
            break;
        }
        offset += l.len();
        lines.next();
    }
    let block = &rest[offset..];
    let end = block
        .find("\n\n")
        .or_else(|| block.find("\n\r\n"))
        .unwrap_or(block.len());
    let f = util::fields_named(&block[..end], Some(mime::WANTED));
    (!f.is_empty()).then_some(f)
}

/// Classifies one recipient's fact into a [`Failure`].
fn finish(mut f: classify::Fact) -> Failure {
    dsn::finish(&mut f);
    let reason = classify::reason_of(&f);
    let temporary = match (f.status.as_deref(), f.reply_code) {
        (Some(s), _) => s.starts_with('4'),
        (None, Some(c)) => c / 100 == 4,
        (None, None) => f.action.as_deref() == Some("delayed"),
    };
    let status = f.status.clone().or_else(|| classify::pseudo_status(reason, temporary));
    let permanent = match (f.reply_code, status.as_deref()) {
        (Some(c), _) => c / 100 == 5,
        (None, Some(s)) => s.starts_with('5'),
        _ => !temporary,
    };
    let hard = is_hard(reason, permanent);
    Failure {
        recipient: f.recipient,
        status,
        reply_code: f.reply_code,
        reason,
        hard,
        action: f.action,
        diagnostic: util::one_line(util::clip(
            if f.diagnostic.trim().is_empty() {
                &f.notice
            } else {
                &f.diagnostic
            },
            2048,
        )),
        remote_mta: f.remote_mta,
        feedback_type: None,
    }
}

/// Addresses that are the sender's, not a failed recipient's.
fn senders(doc: &mime::Doc, extra: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in [
        doc.header("to"),
        doc.original_header("from"),
        doc.original_header("return-path"),
        doc.original_header("sender"),
        extra,
    ]
    .into_iter()
    .flatten()
    {
        out.extend(util::addresses(v).into_iter().map(|(_, a)| a));
    }
    out
}

fn original_message_id(doc: &mime::Doc) -> Option<String> {
    let v = doc.original_header("message-id")?;
    let v = v.trim().trim_start_matches('<');
    let v = v.split('>').next().unwrap_or("").trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn original_sender(doc: &mime::Doc, dsn_sender: Option<&str>) -> Option<String> {
    dsn_sender
        .map(str::to_string)
        .or_else(|| doc.original_header("return-path").and_then(util::first_address))
        .or_else(|| doc.original_header("from").and_then(util::first_address))
}

/// The reason of an SMTP answer given during delivery.
pub fn classify_reply(code: u16, enhanced: Option<&str>, text: &str) -> Reason {
    classify::classify_reply(code, enhanced, text)
}

/// Whether a reason, with the answer's code, is a hard bounce (Sisimai 5:
/// userunknown, hostunknown and hasmoved; notaccept with a 5xx code).
pub fn is_hard(reason: Reason, permanent: bool) -> bool {
    match reason {
        Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved => true,
        Reason::NotAccept => permanent,
        _ => false,
    }
}
