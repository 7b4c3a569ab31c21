//! The reason of one failure, from its enhanced status code, its SMTP reply
//! code, the SMTP command it answered and the remote server's words.
//!
//! The knowledge is Sisimai's, in [`crate::tables`]: [`status_reason`]
//! (RFC 3463 codes to reasons, `smtp/status`), the phrase lists per reason
//! (`reason/why-*.go`), the local delivery agents' messages (`lda`), the
//! remote hosts' tables (`rhost`, read by [`crate::rhost`]) and the
//! decoders' own messages (`lhost`, applied by [`crate::decoders`] before
//! this module runs). The order is Sisimai's too ([`reason_of`]), because
//! servers mix words: a "550 5.1.1 ... blocked using spamhaus" is a block,
//! not an unknown user, and the SMTP command separates an unknown user at
//! RCPT from a filter after DATA.

use crate::Reason;
use crate::util::{fold, matches_any};

/// The SMTP command a failure answered, when the report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    Conn,
    Helo,
    Starttls,
    Auth,
    Mail,
    Rcpt,
    Data,
}

impl Command {
    /// Commands sent before the message itself: a rejection there cannot be
    /// about the content.
    fn before_data(self) -> bool {
        !matches!(self, Command::Data)
    }
}

/// What a decoder found about one recipient, before classification.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fact {
    pub recipient: String,
    pub status: Option<String>,
    pub reply_code: Option<u16>,
    pub diagnostic: String,
    pub action: Option<String>,
    pub remote_mta: Option<String>,
    pub command: Option<Command>,
    /// The Diagnostic-Code type (`smtp`, `x-unix`, …), lower-case.
    pub diag_type: Option<String>,
    /// Read from a human-readable notice rather than a delivery-status
    /// part: such notices name the recipients that the server refused, so
    /// an unknown command is most likely RCPT.
    pub human: bool,
    /// The reporting MTA (the host that wrote the report).
    pub reporter: Option<String>,
    /// The human-readable notice's words about this recipient, when the
    /// report also has a machine-readable part.
    pub notice: String,
    /// Whether [`crate::dsn::finish`] has filled the codes in.
    pub finished: bool,
    /// A reason the format itself states (a per-MTA message that means one
    /// thing only).
    pub hint: Option<Reason>,
}

/// RFC 3463 codes and what they mean as a reason. Codes not listed (x.0.0,
/// 4.3.0, 4.7.0, …) say too little on their own.
pub(crate) fn status_reason(status: &str) -> Option<Reason> {
    use Reason::*;
    let r = match status {
        "2.1.5" => Delivered,
        "4.1.6" | "5.1.6" => HasMoved,
        "4.1.7" | "4.1.8" | "5.1.7" | "5.1.8" => Rejected,
        "4.1.9" | "5.1.9" => SystemError,
        "4.2.1" => Blocked,
        "4.2.2" | "5.2.2" => MailboxFull,
        "4.2.3" | "5.2.3" => ExceedLimit,
        "4.2.4" | "5.2.4" => Filtered,
        "4.3.1" | "5.3.1" => SystemFull,
        "4.3.2" | "5.3.2" => NotAccept,
        "4.3.3" | "4.3.5" | "5.3.0" | "5.3.3" | "5.3.5" => SystemError,
        "4.4.1" | "4.4.7" => Expired,
        "4.4.2" | "4.4.4" | "4.4.6" | "4.4.8" | "5.4.0" => NetworkError,
        "4.4.3" | "5.4.3" => SystemError,
        "4.4.5" => SystemFull,
        "4.5.3" | "4.5.5" | "5.5.4" | "5.5.5" => SystemError,
        "4.6.0" | "4.6.2" | "4.6.5" => ContentError,
        "4.7.1" | "4.7.2" => Blocked,
        "4.7.5" | "4.7.6" | "4.7.7" | "4.7.12" | "4.7.15" => SecurityError,
        "4.7.16" | "5.7.16" => MesgTooBig,
        "4.7.24" | "4.7.26" => AuthFailure,
        "4.7.25" | "5.7.25" => RequirePtr,
        "5.1.0" | "5.1.1" | "5.1.3" => UserUnknown,
        "5.1.2" | "5.4.4" => HostUnknown,
        "5.1.4" | "5.2.0" | "5.2.1" => Filtered,
        "5.1.10" | "5.7.27" => NotAccept,
        "5.3.4" => MesgTooBig,
        "5.5.2" | "5.5.6" => SyntaxError,
        "5.5.3" => TooManyConn,
        "5.6.0" | "5.6.1" | "5.6.2" | "5.6.3" | "5.6.5" | "5.6.6" | "5.6.7" | "5.6.8" | "5.6.9" => ContentError,
        "5.7.13" => Suspend,
        "5.7.17" | "5.7.18" => HasMoved,
        "5.7.20" | "5.7.21" | "5.7.22" | "5.7.23" | "5.7.24" | "5.7.26" | "5.7.29" => AuthFailure,
        "5.7.28" => SpamDetected,
        "5.7.30" => FailedStartTls,
        s if s.starts_with("5.7.") => {
            let detail: u16 = s[4..].parse().unwrap_or(0);
            if detail <= 19 {
                SecurityError
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(r)
}

/// Sisimai's pseudo status for a reason when the report gives none:
/// `5.0.9NN` (or `4.0.9NN` for a temporary failure).
pub(crate) fn pseudo_status(reason: Reason, temporary: bool) -> Option<String> {
    use Reason::*;
    let n = match reason {
        AuthFailure => 926,
        BadReputation => 975,
        Blocked => 971,
        ContentError => 960,
        ExceedLimit => 923,
        Expired => 947,
        FailedStartTls => 976,
        Filtered if temporary => 924,
        Filtered => 910,
        HasMoved => 916,
        HostUnknown => 912,
        MailboxFull => 922,
        MailerError => 939,
        MesgTooBig => 934,
        NetworkError => 944,
        NoRelaying => 909,
        NotAccept => 932,
        NotCompliantRfc => 974,
        OnHold => 901,
        PolicyViolation => 972,
        Rejected => 918,
        RequirePtr => 973,
        SecurityError => 970,
        SpamDetected => 980,
        Speeding => 946,
        Suppressed => 903,
        Suspend => 921,
        SystemError => 930,
        SystemFull => 931,
        SyntaxError => 902,
        TooManyConn => 945,
        UserUnknown => 911,
        Undefined => 900,
        VirusDetected => 981,
        Delivered | Feedback | Vacation => return None,
    };
    let permanent_only = matches!(reason, HasMoved | HostUnknown | UserUnknown);
    let class = if temporary && !permanent_only { 4 } else { 5 };
    Some(format!("{class}.0.{n}"))
}

use crate::tables::reasons::{LDA, PHRASES, REJECTED_NOT};

/// [`PHRASES`], indexed for one pass over a text (the table has some 700
/// patterns; trying each in turn was most of the classifier's time).
fn scan(text: &str) -> u64 {
    static INDEX: std::sync::OnceLock<crate::util::Index> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            crate::util::Index::new(
                PHRASES
                    .iter()
                    .flat_map(|(r, ps)| ps.iter().map(move |p| (*r as u8, *p))),
            )
        })
        .scan(text)
}

/// A folded diagnostic and the reasons its words mention (one [`scan`]).
pub(crate) struct Words {
    pub text: String,
    /// What [`scan`] found.
    found: u64,
}

impl Words {
    pub(crate) fn new(text: String) -> Self {
        let found = if text.is_empty() { 0 } else { scan(&text) };
        Words { text, found }
    }

    /// Whether the text says `reason`.
    pub(crate) fn says(&self, reason: Reason) -> bool {
        self.found & (1u64 << (reason as u32)) != 0 && refine(reason, &self.text)
    }
}

/// Second thoughts on a phrase match.
fn refine(reason: Reason, text: &str) -> bool {
    match reason {
        // "recipient address rejected" and friends are about the recipient
        // or the client (`reason/why-rejected.go` excludes them).
        Reason::Rejected => !matches_any(text, REJECTED_NOT),
        _ => true,
    }
}

/// What a local delivery agent said (`lda/lib.go`), when the text names
/// one: its message's reason, or `mailererror` for a message it does not
/// know.
fn lda(text: &str) -> Option<Reason> {
    let (_, _, tables) = LDA
        .iter()
        .find(|(_, marks, _)| marks.iter().any(|m| text.contains(m)))?;
    Some(
        tables
            .iter()
            .find(|(_, phrases)| phrases.iter().any(|p| text.contains(p)))
            .map_or(Reason::MailerError, |(r, _)| *r),
    )
}

/// Reasons whose status name may be refined by the text.
fn retriable(r: Option<Reason>) -> bool {
    matches!(
        r,
        None | Some(
            Reason::Undefined
                | Reason::OnHold
                | Reason::SystemError
                | Reason::SecurityError
                | Reason::Expired
                | Reason::NetworkError
                | Reason::HostUnknown
                | Reason::UserUnknown
        )
    )
}

/// The reason of one failure, in Sisimai's order (`fact/rise.go`): the
/// decoder's own reason unless it is one to retry; a local delivery
/// agent's message; the remote host's table; the generic passes
/// ([`first_pass`], then [`another_one`]); `expired` for a delayed action,
/// `vacation`; last `onhold` (there is a text but we cannot tell) or
/// `undefined` (there is nothing).
pub(crate) fn reason_of(f: &Fact) -> Reason {
    if let Some(h) = f.hint
        && !retriable(Some(h))
    {
        return h;
    }
    let status = f.status.as_deref().unwrap_or("");
    if status.starts_with("2.") || f.action.as_deref() == Some("delivered") {
        return Reason::Delivered;
    }
    let clipped = crate::util::clip(&f.diagnostic, 1536);
    let line = crate::util::one_line(clipped);
    let words = Words::new(crate::util::lower(&line));
    let text = words.text.as_str();
    if !text.is_empty()
        && matches!(f.command, None | Some(Command::Data))
        && let Some(r) = lda(text)
    {
        return r;
    }
    if !text.is_empty()
        && let Some(r) = crate::rhost::reason(f, text, &line)
    {
        return r;
    }
    let named = status_reason(status);
    let is_smtp = f.diag_type.as_deref().is_none_or(|t| t == "smtp" || t == "x-postfix");

    if is_smtp && let Some(r) = first_pass(f, &words, named) {
        return r;
    }
    if let Some(r) = f.hint.filter(|h| !matches!(h, Reason::OnHold | Reason::Undefined)) {
        return r;
    }
    if let Some(r) = another_one(f, &words, named, is_smtp) {
        return r;
    }
    if matches!(f.action.as_deref(), Some("delayed")) {
        return Reason::Expired;
    }
    if words.says(Reason::Vacation) {
        return Reason::Vacation;
    }
    // Nothing in the recipient's own lines: what the whole notice says.
    if !f.notice.is_empty() && fold(crate::util::clip(&f.notice, 1536)) != text {
        let wider = Fact {
            diagnostic: f.notice.clone(),
            notice: String::new(),
            ..f.clone()
        };
        match reason_of(&wider) {
            Reason::OnHold | Reason::Undefined => {}
            r => return r,
        }
    }
    if text.is_empty() {
        Reason::Undefined
    } else {
        Reason::OnHold
    }
}

fn first_pass(f: &Fact, text: &Words, named: Option<Reason>) -> Option<Reason> {
    use Reason::*;
    let cmd = f.command;
    let status = f.status.as_deref().unwrap_or("");
    let by_code_or_text = |r: Reason| named == Some(r) || text.says(r);
    let order = [
        MailboxFull,
        MesgTooBig,
        ExceedLimit,
        Suspend,
        HasMoved,
        NoRelaying,
        AuthFailure,
        UserUnknown,
        Filtered,
        RequirePtr,
        NotCompliantRfc,
        BadReputation,
        ContentError,
        Rejected,
        HostUnknown,
        SpamDetected,
        Speeding,
        TooManyConn,
        Blocked,
    ];
    for r in order {
        if f.hint == Some(r) {
            return Some(r);
        }
        let hit = match r {
            MailboxFull | ExceedLimit | AuthFailure | RequirePtr | TooManyConn | Blocked => by_code_or_text(r),
            MesgTooBig => {
                named == Some(MesgTooBig) || (named != Some(ExceedLimit) && status != "5.2.3" && text.says(MesgTooBig))
            }
            Suspend => f.reply_code == Some(525) || text.says(Suspend),
            HasMoved | NotCompliantRfc | BadReputation | Speeding => text.says(r),
            NoRelaying => !matches!(cmd, Some(Command::Conn | Command::Helo)) && text.says(NoRelaying),
            UserUnknown => {
                if named == Some(UserUnknown) {
                    ![NoRelaying, Blocked, MailboxFull, HasMoved, Rejected, NotAccept]
                        .iter()
                        .any(|&o| {
                            if o == Rejected {
                                says_sender_rejected(&text.text)
                            } else {
                                text.says(o)
                            }
                        })
                } else {
                    cmd == Some(Command::Rcpt) && text.says(UserUnknown)
                }
            }
            Filtered => {
                if named == Some(Filtered) {
                    text.says(UserUnknown) || text.says(Filtered)
                } else if cmd.is_some_and(Command::before_data) {
                    false
                } else {
                    // Refused after the message was sent (or at an unknown
                    // step): the recipient's own filter.
                    text.says(Filtered) || text.says(UserUnknown)
                }
            }
            ContentError => !spam_probe(f, text, named) && by_code_or_text(ContentError),
            Rejected => {
                named == Some(Rejected)
                    || match cmd {
                        Some(Command::Mail) => text.says(Rejected),
                        Some(Command::Data) if named != Some(UserUnknown) => text.says(Rejected),
                        _ => {
                            matches!(named, None | Some(OnHold | Undefined | SecurityError | SystemError))
                                && text.says(Rejected)
                        }
                    }
            }
            HostUnknown => {
                if named == Some(HostUnknown) {
                    !text.says(NetworkError)
                } else {
                    text.says(HostUnknown)
                }
            }
            SpamDetected => spam_probe(f, text, named),
            _ => false,
        };
        if hit {
            return Some(r);
        }
    }
    None
}

fn says_sender_rejected(text: &str) -> bool {
    matches_any(
        text,
        &[
            "sender address rejected",
            "sender rejected",
            "sender verify failed",
            "invalid sender",
        ],
    )
}

fn spam_probe(f: &Fact, text: &Words, named: Option<Reason>) -> bool {
    if f.status.is_none() {
        return false;
    }
    named == Some(Reason::SpamDetected)
        || (!f.command.is_some_and(Command::before_data) && text.says(Reason::SpamDetected))
}

fn another_one(f: &Fact, text: &Words, named: Option<Reason>, is_smtp: bool) -> Option<Reason> {
    use Reason::*;
    if !retriable(named) && is_smtp {
        return named;
    }
    let order = [
        MailboxFull,
        AuthFailure,
        BadReputation,
        Speeding,
        SpamDetected,
        VirusDetected,
        PolicyViolation,
        NoRelaying,
        SystemError,
        NetworkError,
        Suspend,
        ContentError,
        SystemFull,
        NotAccept,
        Expired,
        FailedStartTls,
        SecurityError,
        Suppressed,
        MailerError,
        HostUnknown,
        UserUnknown,
    ];
    for r in order {
        if text.says(r) {
            return Some(r);
        }
    }
    if named.is_some() {
        return named;
    }
    let status = f.status.as_deref().unwrap_or("");
    if status.len() > 3 {
        match &status[..3] {
            "5.6" | "4.6" => return Some(ContentError),
            "5.7" | "4.7" => return Some(SecurityError),
            _ => {}
        }
    }
    if f.diag_type.as_deref().is_some_and(|t| t.starts_with("x-unix")) {
        return Some(MailerError);
    }
    if text.says(SyntaxError) || matches!(f.reply_code, Some(500..=504)) {
        return Some(SyntaxError);
    }
    if matches!(f.action.as_deref(), Some("delayed" | "expired")) {
        return Some(Expired);
    }
    if matches!(f.command, Some(Command::Helo)) {
        return Some(Blocked);
    }
    None
}

/// Reads the SMTP command a text says the failure answered.
pub(crate) fn command_in(text: &str) -> Option<Command> {
    let head = crate::util::clip(text, 512);
    let flat = fold(head);
    const PATS: &[(&str, Command)] = &[
        ("in reply to rcpt to", Command::Rcpt),
        ("in reply to end of data", Command::Data),
        ("in reply to data", Command::Data),
        ("in reply to mail from", Command::Mail),
        ("in reply to helo", Command::Helo),
        ("in reply to ehlo", Command::Helo),
        ("in reply to starttls", Command::Starttls),
        ("after rcpt to", Command::Rcpt),
        ("after mail from", Command::Mail),
        ("after end of data", Command::Data),
        ("after data", Command::Data),
        ("after initial connection", Command::Conn),
        ("after helo", Command::Helo),
        ("after ehlo", Command::Helo),
        ("after starttls", Command::Starttls),
        ("after auth", Command::Auth),
        ("after pipelined rcpt to", Command::Rcpt),
        ("after pipelined mail from", Command::Mail),
        ("after pipelined data", Command::Data),
        ("rcpt to response", Command::Rcpt),
        ("[rcpt_to]", Command::Rcpt),
        ("[mail_from]", Command::Mail),
        ("[data]", Command::Data),
        ("smtp command data", Command::Data),
        ("does not like recipient", Command::Rcpt),
        ("smtp command rcpt", Command::Rcpt),
        ("smtp command mail", Command::Mail),
        ("did not like our final data", Command::Data),
        ("did not like our data", Command::Data),
        ("did not like our rcpt", Command::Rcpt),
        ("did not like our mail", Command::Mail),
        // qmail-remote's words (`lhost/via-qmail.go`)
        (" but greeting failed", Command::Conn),
        (" but my name was rejected", Command::Helo),
        (" but sender was rejected", Command::Mail),
        (" failed on data command", Command::Data),
        (" failed after i sent the message", Command::Data),
    ];
    // The earliest mention wins (and at one place, the first listed).
    static FIRST: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    let first = FIRST.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(PATS.iter().map(|(p, _)| p))
            .expect("the command phrases build an automaton")
    });
    if let Some(m) = first.find(&flat) {
        return Some(PATS[m.pattern().as_usize()].1);
    }
    if !head.contains(">>> ") {
        return command_word_in(head);
    }
    // A session transcript: the last command the client sent.
    let mut last = None;
    for line in head.lines() {
        let l = line.trim_start();
        if let Some(rest) = l.strip_prefix(">>> ") {
            last = command_word(&rest.to_ascii_lowercase()).or(last);
        }
    }
    last
}

/// An SMTP command named in the text as a word, as Sisimai's
/// `smtp/command.Find` reads one: upper-case, not inside a longer word
/// (`DATABASE`, `EMAIL.EXAMPLE`); the last one named is the latest phase
/// of the session.
fn command_word_in(text: &str) -> Option<Command> {
    const WORDS: &[(&str, Command)] = &[
        ("HELO", Command::Helo),
        ("EHLO", Command::Helo),
        ("STARTTLS", Command::Starttls),
        ("AUTH PLAIN", Command::Auth),
        ("AUTH LOGIN", Command::Auth),
        ("AUTH CRAM-", Command::Auth),
        ("AUTH DIGEST-", Command::Auth),
        ("MAIL F", Command::Mail),
        ("RCPT", Command::Rcpt),
        ("DATA", Command::Data),
    ];
    let b = text.as_bytes();
    let inside = |c: u8| c.is_ascii_alphanumeric() || c == b'@';
    let mut last = None;
    // One pass: a command word starts with an upper-case letter that does
    // not continue a word.
    for (at, &c) in b.iter().enumerate() {
        if !matches!(c, b'A' | b'D' | b'E' | b'H' | b'M' | b'R' | b'S') || at > 0 && inside(b[at - 1]) {
            continue;
        }
        let rest = &b[at..];
        if let Some((w, cmd)) = WORDS.iter().find(|(w, _)| rest.starts_with(w.as_bytes())) {
            let after = rest.get(w.len()).copied();
            if w.ends_with(['-', ' ', 'F']) || !after.is_some_and(inside) {
                last = Some(*cmd);
            }
        }
    }
    last
}

fn command_word(s: &str) -> Option<Command> {
    let s = s.trim_start();
    let w = |p: &str| s.starts_with(p);
    if w("rcpt") {
        Some(Command::Rcpt)
    } else if w("mail") {
        Some(Command::Mail)
    } else if w("data") || w(".") || w("bdat") {
        Some(Command::Data)
    } else if w("ehlo") || w("helo") || w("lhlo") {
        Some(Command::Helo)
    } else if w("starttls") {
        Some(Command::Starttls)
    } else if w("auth") {
        Some(Command::Auth)
    } else {
        None
    }
}

/// [`crate::classify_reply`]: a synchronous answer during delivery.
pub(crate) fn classify_reply(code: u16, enhanced: Option<&str>, text: &str) -> Reason {
    let status = enhanced
        .map(str::to_string)
        .filter(|s| crate::util::valid_status(s))
        .or_else(|| crate::util::find_status(text));
    let fact = Fact {
        status,
        reply_code: (code != 0).then_some(code),
        diagnostic: format!("{code} {text}"),
        diag_type: Some("smtp".into()),
        ..Fact::default()
    };
    let r = reason_of(&fact);
    match r {
        Reason::OnHold | Reason::Undefined => match code {
            421 | 450 | 451 | 452 => {
                if fact.status.as_deref() == Some("4.7.0") {
                    Reason::Blocked
                } else {
                    Reason::SystemError
                }
            }
            _ => r,
        },
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify_reply as cr;

    #[test]
    fn typical_answers() {
        assert_eq!(
            cr(550, Some("5.1.1"), "<a@b.example> User unknown"),
            Reason::UserUnknown
        );
        assert_eq!(
            cr(
                550,
                None,
                "5.1.1 The email account that you tried to reach does not exist"
            ),
            Reason::UserUnknown
        );
        assert_eq!(cr(452, Some("4.2.2"), "Mailbox full"), Reason::MailboxFull);
        assert_eq!(
            cr(552, None, "5.2.2 This user's mailbox is over quota"),
            Reason::MailboxFull
        );
        assert_eq!(
            cr(421, Some("4.7.0"), "Too many connections from your host"),
            Reason::TooManyConn
        );
        assert_eq!(
            cr(
                550,
                Some("5.7.1"),
                "Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org"
            ),
            Reason::Blocked
        );
        assert_eq!(
            cr(554, Some("5.7.1"), "Message rejected as spam by Content Filtering"),
            Reason::SpamDetected
        );
        assert_eq!(cr(552, Some("5.3.4"), "Message too big for system"), Reason::MesgTooBig);
        assert_eq!(
            cr(
                550,
                Some("5.7.26"),
                "Unauthenticated email from example.com is not accepted due to domain's DMARC policy"
            ),
            Reason::AuthFailure
        );
        assert_eq!(
            cr(
                550,
                Some("5.7.25"),
                "The IP address sending this message does not have a PTR record setup"
            ),
            Reason::RequirePtr
        );
        assert_eq!(
            cr(
                421,
                Some("4.7.0"),
                "Our system has detected an unusual rate; mail sent from your IP address has been temporarily rate limited"
            ),
            Reason::Speeding
        );
        assert_eq!(cr(550, Some("5.1.2"), "Host unknown"), Reason::HostUnknown);
        assert_eq!(cr(554, Some("5.7.1"), "Relay access denied"), Reason::NoRelaying);
        assert_eq!(
            cr(
                550,
                Some("5.2.1"),
                "The email account that you tried to reach is disabled"
            ),
            Reason::Suspend
        );
        assert_eq!(
            cr(553, Some("5.1.8"), "Sender address rejected: Domain not found"),
            Reason::Rejected
        );
        assert_eq!(cr(554, None, "5.7.1 Virus detected in message"), Reason::VirusDetected);
        assert_eq!(cr(451, Some("4.4.1"), "No answer from host"), Reason::Expired);
    }
}
