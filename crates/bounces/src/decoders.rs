//! Which MTA or ESP wrote a bounce (Sisimai's `lhost` modules), and what
//! that decoder's own messages mean.
//!
//! Each decoder is recognised the way its Sisimai module recognises it:
//! from header fields, the From and Subject lines, the Received trail and
//! the banners in the body ([`DECODERS`], one entry per `lhost/*.go`, in
//! the order of `lhost/order.go`). Reading the recipients and their
//! diagnostics is shared by all (`dsn`, `text`); what a decoder adds is its
//! name (shown by `herald feedback classify`) and its message table
//! ([`crate::tables::lhost`]), which names a reason before the generic
//! tables are asked. A decoder can be switched off ([`crate::Options`]) to
//! measure what the generic rules achieve without it.

use crate::Reason;
use crate::mime::Doc;
use crate::tables::lhost::{MESSAGES, START_MARKERS, STATUS_CODES};

/// One test on a message; every text is compared lower-case.
#[derive(Debug, Clone, Copy)]
enum Cond {
    /// The header field is present.
    Header(&'static str),
    /// The header field contains the text.
    HeaderHas(&'static str, &'static str),
    /// The header field starts with the text.
    HeaderStarts(&'static str, &'static str),
    FromHas(&'static str),
    SubjectHas(&'static str),
    SubjectStarts(&'static str),
    SubjectEnds(&'static str),
    /// The header field is absent.
    NoHeader(&'static str),
    /// Some Received field contains the text.
    Received(&'static str),
    /// The human-readable part contains the text.
    Body(&'static str),
}

use Cond::*;

/// A decoder: its name (Sisimai's module name, lower-case), the tests and
/// how many of them must hold.
#[derive(Debug)]
pub(crate) struct Decoder {
    pub name: &'static str,
    tests: &'static [Cond],
    need: u8,
}

const fn any(name: &'static str, tests: &'static [Cond]) -> Decoder {
    Decoder { name, tests, need: 1 }
}

const fn all(name: &'static str, tests: &'static [Cond]) -> Decoder {
    Decoder {
        name,
        tests,
        need: tests.len() as u8,
    }
}

const fn score(name: &'static str, need: u8, tests: &'static [Cond]) -> Decoder {
    Decoder { name, tests, need }
}

/// The decoders, in the order Sisimai tries them (`lhost/order.go`: the
/// modules whose subject patterns vary first, then the rest), with the
/// modules only rb-sisimai keeps where their kin sit. Each line reflects
/// the `InquireFor` of `lhost/<name>.go`.
pub(crate) const DECODERS: &[Decoder] = &[
    // lhost/via-exim.go: two of From, Subject, X-Failed-Recipients and
    // the other Exim fields, the banner.
    score(
        "exim",
        2,
        &[
            FromHas("mail delivery system"),
            SubjectStarts("mail delivery failed"),
            SubjectStarts("mail failure"),
            SubjectStarts("message frozen"),
            SubjectStarts("warning: message "),
            SubjectHas("error(s) in forwarding or filtering"),
            Header("x-failed-recipients"),
            Header("x-mx-bounce"),
            Header("x-mxl-hash"),
            Header("x-mxl-notehash"),
            Body("this message was created automatically by mail delivery software"),
            Received("with exim "),
            Received("(exim "),
        ],
    ),
    // lhost/via-sendmail.go: a "Warning: " subject or one ending "see
    // transcript for details" (its banner is the start marker), not AOL's.
    score(
        "sendmail",
        2,
        &[
            NoHeader("x-aol-ip"),
            SubjectStarts("warning: "),
            SubjectEnds("see transcript for details"),
        ],
    ),
    // lhost/via-exchange2007.go: two of subject, Content-Language and the
    // diagnostic banner.
    score(
        "exchange2007",
        2,
        &[
            SubjectStarts("undeliverable"),
            SubjectStarts("non_remis_"),
            SubjectStarts("non remis "),
            SubjectStarts("non recapitabile"),
            SubjectStarts("olevererbart"),
            Header("content-language"),
            Body("diagnostic information for administrators:"),
            Body("informations de diagnostic pour les administrateurs"),
            Body("informazioni di diagnostica per gli amministratori"),
            Body("remote server returned '"),
        ],
    ),
    // lhost/via-exchange2003.go
    any(
        "exchange2003",
        &[
            Header("x-ms-embedded-report"),
            HeaderStarts("x-mailer", "internet mail service ("),
            HeaderStarts("x-mailer", "microsoft exchange server internet mail connector"),
            HeaderStarts("x-mimeole", "produced by microsoft exchange"),
            Received("microsoft exchange server internet mail connector"),
        ],
    ),
    // lhost/via-trendmicro.go (was interscanmss.go)
    any(
        "trendmicro",
        &[
            FromHas("\"interscan"),
            HeaderHas("content-type", "interscan"),
            Body(" interscan "),
        ],
    ),
    // lhost/via-kddi.go
    any(
        "kddi",
        &[
            FromHas(".dion.ne.jp"),
            HeaderHas("reply-to", "no-reply@app.auone-net.jp"),
            Received("ezweb.ne.jp ("),
            Received(".au.com ("),
        ],
    ),
    // lhost/via-fml.go
    all("fml", &[Header("x-mlserver"), FromHas("-admin@")]),
    // lhost/via-verizon.go
    any("verizon", &[FromHas("post_master@vtext.com"), FromHas(".vzwpix.com")]),
    // lhost/via-apachejames.go
    any(
        "apachejames",
        &[
            SubjectStarts("[bounce]"),
            HeaderHas("message-id", ".javamail."),
            Received("james smtp server"),
        ],
    ),
    // lhost/via-x2.go
    any(
        "x2",
        &[
            SubjectStarts("delivery failure"),
            SubjectStarts("failure delivery"),
            SubjectStarts("failed delivery"),
        ],
    ),
    // lhost/via-postfix.go: its subject, or its banner.
    any(
        "postfix",
        &[
            SubjectStarts("undelivered mail returned to sender"),
            SubjectStarts("smtp server: errors from "),
            Body("this is the mail system at host "),
            Body("the postfix program"),
        ],
    ),
    // lhost/via-opensmtpd.go
    any(
        "opensmtpd",
        &[
            SubjectStarts("delivery status notification"),
            FromHas("mailer daemon <"),
            Received(" (opensmtpd) with "),
            Body("this is the mailer-daemon, please do not reply to this"),
        ],
    ),
    // lhost/via-qmail.go
    any(
        "qmail",
        &[
            SubjectStarts("failure notice"),
            Received("invoked for bounce"),
            Received("invoked from network"),
            Body("hi. this is the qmail"),
        ],
    ),
    // lhost/via-courier.go
    any(
        "courier",
        &[
            FromHas("courier mail server at "),
            SubjectHas("notice: mail delivery status."),
            SubjectHas("warning: delayed mail."),
            HeaderStarts("message-id", "<courier."),
        ],
    ),
    // lhost/via-messagingserver.go
    any(
        "messagingserver",
        &[
            HeaderHas("content-type", "boundary_(id_"),
            SubjectStarts("delivery notification: "),
        ],
    ),
    // lhost/via-googleworkspace.go, via-gmail.go, via-googlegroups.go
    all(
        "googlegroups",
        &[
            FromHas("<mailer-daemon@googlemail.com>"),
            Header("x-failed-recipients"),
            Body("google groups"),
        ],
    ),
    all(
        "gmail",
        &[
            FromHas("<mailer-daemon@googlemail.com>"),
            SubjectStarts("delivery status notification"),
        ],
    ),
    // lhost/via-gmx.go
    any("gmx", &[Header("x-gmx-antispam"), Header("x-ui-out-filterresults")]),
    // lhost/via-zoho.go
    any("zoho", &[Header("x-zohomail")]),
    // lhost/via-domino.go
    any(
        "domino",
        &[SubjectStarts("delivery failure:"), SubjectHas("delivery_failure")],
    ),
    // lhost/via-notes.go
    any("notes", &[SubjectStarts("undeliverable message")]),
    // lhost/via-imailserver.go
    any(
        "imailserver",
        &[
            SubjectStarts("undeliverable mail"),
            HeaderStarts("x-mailer", "<smtp32 v"),
        ],
    ),
    // lhost/via-mfilter.go
    all(
        "mfilter",
        &[HeaderStarts("x-mailer", "m-filter"), SubjectStarts("failure notice")],
    ),
    // lhost/via-activehunter.go
    any("activehunter", &[Header("x-ahmailid")]),
    // lhost/via-mailfoundry.go
    all(
        "mailfoundry",
        &[
            SubjectStarts("message delivery has failed"),
            Received("(mailfoundry) id"),
        ],
    ),
    // lhost/via-mailmarshal.go
    any("mailmarshal", &[SubjectStarts("undeliverable mail: \"")]),
    // lhost/via-mimecast.go
    any(
        "mimecast",
        &[
            SubjectHas("email delivery failure"),
            HeaderHas("message-id", ".mimecast.lan>"),
        ],
    ),
    // lhost/via-deutschetelekom.go
    any(
        "deutschetelekom",
        &[Body(
            "|------------------------- failed addresses follow: ---------------------|",
        )],
    ),
    // lhost/via-v5sendmail.go
    any("v5sendmail", &[SubjectStarts("returned mail: ")]),
    // lhost/via-ezweb.go
    score(
        "ezweb",
        2,
        &[
            FromHas("postmaster@ezweb.ne.jp"),
            FromHas("postmaster@au.com"),
            SubjectStarts("mail system error - returned mail"),
            Received("ezweb.ne.jp (ezmx"),
            Received("au.com ("),
            Header("x-spasign"),
        ],
    ),
    // lhost/via-biglobe.go
    all(
        "biglobe",
        &[
            FromHas("postmaster@"),
            SubjectStarts("returned mail:"),
            FromHas(".ne.jp"),
            Body("----- the following addresses had delivery problems -----"),
        ],
    ),
    // lhost/via-einsundeins.go
    all(
        "einsundeins",
        &[
            FromHas("\"mail delivery system\""),
            SubjectStarts("mail delivery failed: returning message to sender"),
        ],
    ),
    // lhost/via-dragonfly.go
    score(
        "dragonfly",
        2,
        &[
            SubjectStarts("mail delivery failed"),
            Received(" (dragonfly mail agent"),
            Body("this is the dragonfly mail agent"),
        ],
    ),
    // lhost/via-x1.go, x3.go, x6.go
    all(
        "x1",
        &[SubjectStarts("returned mail: "), FromHas("\"mail deliver system\" ")],
    ),
    all(
        "x3",
        &[
            FromHas("mail delivery system"),
            SubjectStarts("delivery status notification"),
        ],
    ),
    any("x6", &[SubjectStarts("there was an error sending your mail")]),
    // rb-sisimai lib/sisimai/lhost/*.rb, modules go-sisimai dropped.
    any("aol", &[Header("x-aol-ip")]),
    any("yahoo", &[Header("x-ymailisg")]),
    all("yandex", &[Header("x-yandex-uniq"), FromHas("mailer-daemon@yandex.ru")]),
    all(
        "messagelabs",
        &[Header("x-msg-ref"), FromHas("mailer-daemon@messagelabs.com")],
    ),
    all(
        "mcafee",
        &[
            HeaderStarts("x-nai-header", "modified by mcafee "),
            SubjectStarts("delivery status"),
        ],
    ),
    any("receivingses", &[Header("x-ses-outgoing")]),
    all(
        "facebook",
        &[
            FromHas("mailer-daemon@mx.facebook.com"),
            SubjectStarts("sorry, your message could not be delivered"),
        ],
    ),
    any("amavis", &[FromHas("\"content-filter at ")]),
    score(
        "office365",
        2,
        &[
            SubjectHas("undeliverable:"),
            SubjectHas("onbestelbaar:"),
            Header("x-ms-exchange-message-is-ndr"),
            Header("x-microsoft-antispam-prvs"),
            Header("x-exchange-antispam-report-test"),
            Header("x-ms-exchange-crosstenant-originalarrivaltime"),
            Header("x-ms-exchange-crosstenant-fromentityheader"),
            Header("x-ms-exchange-transport-crosstenantheadersstamped"),
        ],
    ),
    // PowerMTA's fields sit in its delivery-status part (`X-PowerMTA-*`,
    // rfc3464/powermta.go), or in the header of rb-sisimai's samples.
    any(
        "powermta",
        &[Header("x-powermta-bouncecategory"), Body("\nx-powermta-")],
    ),
    all(
        "sendgrid",
        &[
            HeaderHas("return-path", "<apps@sendgrid.net>"),
            SubjectStarts("undelivered mail returned to sender"),
        ],
    ),
];

/// The header fields the decoders test (lower-case), besides those every
/// reader wants.
pub(crate) fn header_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        // The Received trail is read whole (`Received` tests); the other
        // names come from the tests themselves.
        let mut names: Vec<&'static str> = vec!["received"];
        for d in DECODERS {
            for c in d.tests {
                if let Header(n) | HeaderHas(n, _) | HeaderStarts(n, _) | NoHeader(n) = c
                    && !names.contains(n)
                {
                    names.push(n);
                }
            }
        }
        names
    })
}

/// The parts of a message the tests read, lower-case, made once.
struct View<'a> {
    doc: &'a Doc,
    from: String,
    subject: String,
    body: String,
    received: Vec<String>,
}

fn holds(c: Cond, v: &View) -> bool {
    let (doc, from, subject, body) = (v.doc, v.from.as_str(), v.subject.as_str(), v.body.as_str());
    let lower = |name: &str| doc.header(name).map(str::to_ascii_lowercase);
    match c {
        Header(n) => doc.header(n).is_some(),
        HeaderHas(n, t) => lower(n).is_some_and(|v| v.contains(t)),
        HeaderStarts(n, t) => lower(n).is_some_and(|v| v.trim_start().starts_with(t)),
        FromHas(t) => from.contains(t),
        SubjectHas(t) => subject.contains(t),
        SubjectStarts(t) => subject.starts_with(t),
        SubjectEnds(t) => subject.trim_end().ends_with(t),
        NoHeader(n) => doc.header(n).is_none(),
        Received(t) => v.received.iter().any(|r| r.contains(t)),
        Body(t) => body.contains(t),
    }
}

/// The modules tried first for a Subject (`lhost/order.go`,
/// `OrderBySubject`): its key is the text before the first word's `:`, or
/// its first two words joined by `-`.
const BY_SUBJECT: &[(&str, &[&str])] = &[
    ("delivery-failure", &["domino", "x2"]),
    ("delivery-notification", &["messagingserver"]),
    ("delivery-status", &["opensmtpd", "gmail", "googlegroups", "x3"]),
    ("failed-delivery", &["x2"]),
    ("failure-delivery", &["x2"]),
    ("failure-notice", &["qmail", "mfilter", "activehunter"]),
    ("mail-delivery", &["exim", "dragonfly", "gmx", "zoho", "einsundeins"]),
    ("mail-failure", &["exim"]),
    ("message-frozen", &["exim"]),
    ("mail-could", &["trendmicro"]),
    ("mail-system", &["ezweb"]),
    ("message-delivery", &["mailfoundry"]),
    ("non-recapitabile", &["exchange2007"]),
    ("non-remis", &["exchange2007"]),
    ("notice", &["courier"]),
    ("postmaster-notify", &["sendmail"]),
    ("returned-mail", &["sendmail", "biglobe", "v5sendmail", "x1"]),
    ("there-was", &["x6"]),
    ("undeliverable", &["exchange2007", "exchange2003"]),
    ("undeliverable-mail", &["mailmarshal", "imailserver"]),
    ("undeliverable-message", &["notes", "verizon"]),
    ("undelivered-mail", &["postfix", "zoho"]),
    ("warning", &["sendmail", "exim"]),
];

/// [`BY_SUBJECT`]'s key of a (lower-case) Subject.
fn subject_key(subject: &str) -> String {
    let cleaned: String = subject
        .chars()
        .map(|c| if matches!(c, '[' | ']' | '_') { ' ' } else { c })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let strip = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, ':' | ',' | '*' | '"'))
            .collect::<String>()
    };
    match words.first() {
        Some(w) if w.contains(':') => strip(w.split(':').next().unwrap_or("")),
        Some(w) => match words.get(1) {
            Some(v) => format!("{}-{}", strip(w), strip(v)),
            None => strip(w),
        },
        None => String::new(),
    }
}

/// The decoder that recognises the message, unless switched off: the
/// modules its Subject points to first, then all in order. A module with
/// banners is recognised only when the body carries one of them (Sisimai's
/// decoders return nothing without their start marker).
pub(crate) fn recognise(doc: &Doc, body: &str, disabled: &[&str]) -> Option<&'static Decoder> {
    let from = doc.header("from").unwrap_or("").to_ascii_lowercase();
    let subject = doc.header("subject").unwrap_or("").to_ascii_lowercase();
    let subject = subject
        .trim_start_matches("fwd:")
        .trim_start_matches("fw:")
        .trim_start()
        .to_string();
    // Banners open a notice: its first 4 KiB are enough.
    let body = crate::util::clip(body, 4096).to_ascii_lowercase();
    let key = subject_key(&subject);
    let first: &[&str] = BY_SUBJECT.iter().find(|(k, _)| *k == key).map_or(&[], |(_, m)| m);
    let ordered = first
        .iter()
        .filter_map(|n| DECODERS.iter().find(|d| d.name == *n))
        .chain(DECODERS.iter());
    let view = View {
        doc,
        received: doc
            .headers
            .iter()
            .filter(|(n, _)| n == "received")
            .map(|(_, v)| v.to_ascii_lowercase())
            .collect(),
        from,
        subject,
        body,
    };
    let marked = |d: &Decoder| {
        let marks = START_MARKERS
            .iter()
            .find(|(n, _)| *n == d.name)
            .map_or(&[][..], |(_, m)| m);
        let mut marks = marks.iter().filter(|m| !m.starts_with("content-type:")).peekable();
        marks.peek().is_none() || marks.any(|m| view.body.contains(m))
    };
    ordered.filter(|d| !disabled.contains(&d.name)).find(|d| {
        // Header tests first; the body is searched only when its tests can
        // still make up the count.
        let need = d.need as usize;
        let is_body = |c: &&Cond| matches!(c, Body(_));
        let mut hits = d.tests.iter().filter(|c| !is_body(c) && holds(**c, &view)).count();
        let body_tests = d.tests.iter().filter(is_body).count();
        if hits < need && hits + body_tests >= need {
            hits += d
                .tests
                .iter()
                .filter(is_body)
                .filter(|c| holds(**c, &view))
                .take(need - hits)
                .count();
        }
        hits >= need && marked(d)
    })
}

/// The message tables a decoder reads: its own, and those of the modules
/// Sisimai has merged into it or kept apart for one sender of the same
/// software (rb-sisimai's MXLogic and MailRu are Exim, X4 is qmail, its
/// Google and GSuite are Gmail, InterScanMSS was renamed TrendMicro).
fn tables_of(decoder: &str) -> &'static [&'static str] {
    match decoder {
        "exim" => &["exim", "mxlogic", "mailru"],
        "qmail" => &["qmail", "x4"],
        "gmail" => &["gmail", "google", "gsuite", "googleworkspace"],
        "trendmicro" => &["trendmicro", "interscanmss"],
        "exchange2007" => &["exchange2007", "office365"],
        _ => &[],
    }
}

/// One decoder's message tables (its own and those [`tables_of`] adds), in
/// order, indexed for one pass over a text: the id of a phrase is the
/// position of its row, so the lowest id found is the first row that says
/// something.
struct Messages {
    index: crate::util::Index,
    reasons: Vec<Reason>,
}

fn messages_of(decoder: &str) -> Option<&'static Messages> {
    static ALL: std::sync::OnceLock<Vec<(&'static str, Messages)>> = std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        DECODERS
            .iter()
            .map(|d| {
                let names = tables_of(d.name);
                let rows: Vec<_> = MESSAGES
                    .iter()
                    .filter(|(name, _)| *name == d.name || names.contains(name))
                    .flat_map(|(_, table)| table.iter())
                    .collect();
                assert!(rows.len() <= 64, "{}: more message rows than an index holds", d.name);
                let index = crate::util::Index::new(
                    rows.iter()
                        .enumerate()
                        .flat_map(|(i, (_, phrases))| phrases.iter().map(move |p| (i as u8, *p))),
                );
                let reasons = rows.iter().map(|(r, _)| *r).collect();
                (d.name, Messages { index, reasons })
            })
            .collect()
    });
    all.iter()
        .find(|(n, m)| *n == decoder && !m.reasons.is_empty())
        .map(|(_, m)| m)
}

/// The reason a decoder's own messages give to a diagnostic (lower-case).
pub(crate) fn message_reason(decoder: &str, text: &str) -> Option<Reason> {
    let m = messages_of(decoder)?;
    let found = m.index.scan(text);
    (found != 0).then(|| m.reasons[found.trailing_zeros() as usize])
}

/// What a decoder reads in its reports beyond the shared readers: Sendmail's
/// transcript (`lhost/via-sendmail.go`) holds the server's whole answer,
/// and an answer with no command of ours before it means the greeting was
/// refused.
pub(crate) fn read_more(decoder: &str, facts: &mut [crate::classify::Fact]) {
    if decoder != "sendmail" {
        return;
    }
    if let [f] = facts {
        sendmail_replies(f);
    }
    for f in facts.iter_mut().filter(|f| f.hint.is_none() && f.command.is_none()) {
        if !f.notice.contains(">>> ") && f.notice.contains("<<< ") {
            f.command = Some(crate::classify::Command::Helo);
        }
    }
}

/// Sendmail quotes the server's whole answer in its transcript (`<<< `
/// lines) but only its first line in the Diagnostic-Code: with one
/// recipient, the answer goes before the diagnostic
/// (`lhost/via-sendmail.go`), so a multi-line reply is read in full.
fn sendmail_replies(f: &mut crate::classify::Fact) {
    let mut replies: Vec<&str> = Vec::new();
    for line in f.notice.lines() {
        if let Some(r) = line.trim_start().strip_prefix("<<< ") {
            let r = r.trim();
            if !r.is_empty() && !replies.contains(&r) {
                replies.push(r);
            }
        }
    }
    if replies.is_empty() {
        return;
    }
    f.diagnostic = format!("{} {}", replies.join(" "), f.diagnostic).trim_end().to_string();
    f.finished = false;
}

/// A reason a decoder states outright, before its message tables: Exim and
/// qmail call a refusal of their greeting a block
/// (`lhost/via-exim.go`, `via-qmail.go`: command EHLO/HELO), EZweb marks
/// mail its filter refused with `X-SPASIGN: NG` (`via-ezweb.go`).
pub(crate) fn direct_reason(decoder: &str, doc: &Doc, f: &crate::classify::Fact) -> Option<Reason> {
    use crate::classify::Command;
    match decoder {
        "exim" | "qmail" if f.command == Some(Command::Helo) => Some(Reason::Blocked),
        "ezweb" if doc.header("x-spasign").is_some_and(|v| v.trim() == "NG") => Some(Reason::Filtered),
        _ => None,
    }
}

/// The reason a decoder's tables give to an enhanced status code.
pub(crate) fn status_reason(decoder: &str, status: &str) -> Option<Reason> {
    let names = tables_of(decoder);
    STATUS_CODES
        .iter()
        .filter(|(name, _)| *name == decoder || names.contains(name))
        .flat_map(|(_, table)| table.iter())
        .find(|(_, codes)| codes.iter().any(|c| crate::rhost::status_in(status, c)))
        .map(|(r, _)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_table_belongs_to_a_decoder() {
        for (name, _) in MESSAGES {
            assert!(
                DECODERS
                    .iter()
                    .any(|d| d.name == *name || tables_of(d.name).contains(name))
                    || ["amazonses", "outlook"].contains(name),
                "{name} has messages but no decoder"
            );
        }
    }
}
