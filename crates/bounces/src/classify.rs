//! The reason of one failure, from its enhanced status code, its SMTP reply
//! code, the SMTP command it answered and the remote server's words.
//!
//! Tables drive it: [`status_reason`] (RFC 3463 codes to reasons, as the
//! IANA registry describes them), [`PHRASES`] (what real servers say, per
//! reason), [`FORMAT_HINTS`] (messages particular MTAs write after their own
//! diagnosis) and the provider tables of [`crate::provider`]. The order of
//! the checks matters because servers mix words: a "550 5.1.1 ... blocked
//! using spamhaus" is a block, not an unknown user. [`reason_of`] follows
//! Sisimai's procedure so that the same bounce gets the same name:
//!
//! 1. a reason the format states, or `delivered` for a 2.x.x status;
//! 2. an MTA's own message ([`FORMAT_HINTS`]), then a known provider's
//!    conventions, then the MTA messages in the surrounding notice when the
//!    status says little (x.0.0 or none);
//! 3. the reasons whose code or words are specific ([`first_pass`]; the SMTP
//!    command separates an unknown user at RCPT from a filter after DATA);
//! 4. the status code's name, refined by generic words ([`second_pass`]),
//!    then the code's class (x.6 content, x.7 security);
//! 5. `expired` for a delayed action, `vacation`, the whole notice's words;
//! 6. last `onhold` (there is a text but we cannot tell) or `undefined`
//!    (there is nothing).

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

/// Messages of particular MTAs that mean one reason whatever the codes
/// around them say (the MTA wrote them itself, after its own diagnosis).
/// Checked first.
const FORMAT_HINTS: &[(&str, Reason)] = &[
    // Lotus Domino, Exchange 2003
    ("not listed in domino directory", Reason::UserUnknown),
    ("not listed in public name & address book", Reason::UserUnknown),
    ("recipient name is not recognized", Reason::UserUnknown),
    // DragonFly, Gmail, IMail, OpenSMTPD: given up after retrying
    ("could not deliver for the last", Reason::Expired),
    ("message will be retried for", Reason::Expired),
    ("did not accept our requests to connect", Reason::Expired),
    ("delivery failed * attempts: ", Reason::Expired),
    ("envelope expired", Reason::Expired),
    ("network error on destination mxs", Reason::NetworkError),
    // qmail
    ("but my name was rejected", Reason::Blocked),
    ("unable to contact ldap server", Reason::SystemError),
    ("wasn't able to establish an smtp connection", Reason::NetworkError),
    ("couldn't find a mail exchanger or ip address", Reason::NotAccept),
    // Exim, Courier
    ("an mx or srv record indicated no smtp service", Reason::NotAccept),
    ("malformed address: ", Reason::SyntaxError),
    // DragonFly
    ("dns lookup failure: host * not found", Reason::HostUnknown),
    // InterScan MSS
    ("please check if address is correct", Reason::UserUnknown),
    // fml and other list managers: the sender is not a member
    ("you are not a member of this mailing list", Reason::Rejected),
    // Google
    ("the address couldn't be found", Reason::UserUnknown),
    (
        "doesn't receive email according to the administrator",
        Reason::NotAccept,
    ),
    ("returned null mx", Reason::NotAccept),
    // Yahoo
    ("delivery error: dd this user doesn't have a", Reason::UserUnknown),
];

/// What servers say, per reason. Lower-case; `*` separates fragments that
/// must appear in this order. Derived from RFC texts, the wording of the
/// common MTAs and of the large mailbox providers.
pub(crate) const PHRASES: &[(Reason, &[&str])] = &[
    (
        Reason::MailboxFull,
        &[
            "insufficient disk space",
            "exceeded storage allocation",
            "boite du destinataire pleine",
            "full mailbox",
            "mailbox exceeds allowed size",
            "mailbox size limit exceeded",
            "would exceed maximum allowed storage",
            "mailfolder is full",
            "no space left on device",
            "not sufficient disk space",
            "quota violation for",
            "too much mail data",
            "user has exceeded quota",
            "has too many messages on the server",
            "space has been used up",
            "account is *quota",
            "disk *quota",
            "enough * space",
            "mailbox *exceeded * limit",
            "mailbox *full",
            "mailbox *quota",
            "maildir *quota",
            "over *quota",
            "quota *exceeded",
            "exceeds *quota",
            "exceeded *quota",
            "is over the storage",
            "inbox is full",
            "box is full",
            "mailbox is over",
            "account receiving limits",
            "exceeding receiving limits",
            "receiving limit exceeded",
        ],
    ),
    (
        Reason::MesgTooBig,
        &[
            "exceeded maximum inbound message size",
            "exceeded the maximum incoming message size",
            "line limit exceeded",
            "max message size exceeded",
            "message file too big",
            "message length exceeds administrative limit",
            "message size exceeds fixed limit",
            "message size exceeds fixed maximum message size",
            "message size exceeds maximum value",
            "message too big",
            "message too large for this ",
            "message is too large",
            "size limit",
            "taille limite du message atteinte",
            "message size exceeds",
            "exceeds the size limit",
        ],
    ),
    (
        Reason::ExceedLimit,
        &["message header size exceeds limit", "message too large"],
    ),
    (
        Reason::Suspend,
        &[
            " is currently suspended",
            " temporary locked",
            "archived recipient",
            "boite du destinataire archivee",
            "you tried to reach is disabled",
            "has been suspended",
            "inactive account",
            "invalid/inactive user",
            "is a deactivated mailbox",
            "user is terminated",
            "mailbox currently suspended",
            "mailbox disabled",
            "mailbox is frozen",
            "mailbox unavailable or access denied",
            "recipient rejected: temporarily inactive",
            "recipient suspend the service",
            "you tried to reach is inactive",
            "this account has been disabled or discontinued",
            "this account has been temporarily suspended",
            "this address no longer accepts mail",
            "this mailbox is disabled",
            "user or domain is disabled",
            "user suspended",
            "account is locked",
            "account has been disabled",
            "account is disabled",
            "account disabled",
        ],
    ),
    (Reason::HasMoved, &[" has been replaced by "]),
    (
        Reason::NoRelaying,
        &[
            "as a relay",
            "email address is not verified.",
            "insecure mail relay",
            "not permitted to relay through this server without authentication",
            "requires authentication when attempting to send to a non-local e-mail address",
            "no relaying",
            "not a gateway",
            "not allowed to relay through this machine",
            "not an open relay",
            "not local host",
            "relay access denied",
            "relay denied",
            "relay not permitted",
            "relaying denied",
            "relaying mail to ",
            "specified domain is not allowed",
            "that domain isn't in my list of allowed rcpthost",
            "not configured to relay mail",
            "unable to relay ",
            "we don't handle mail for",
            "relaying not permitted",
            "relay not allowed",
        ],
    ),
    (
        Reason::AuthFailure,
        &[
            "//spf.pobox.com",
            "bad spf records for",
            "dmarc policy",
            "doesn't meet the required authentication level",
            "inspect your spf settings",
            "sender policy framework (spf) fail",
            "sender policy framework violation",
            "spf (sender policy framework) domain authentication fail",
            "spf check: fail",
            "doesn't meet the authentication requirements",
            " is not allowed to send mail.*_401",
            "is not allowed to send from <* per it's spf record",
            "failed dmarc",
            "dmarc check failed",
            "spf validation failed",
            "spf check failed",
            "dkim validation failed",
            "unauthenticated email from",
            "is not accepted due to domain's dmarc",
            "does not have authentication information",
        ],
    ),
    (
        Reason::UserUnknown,
        &[
            "#5.1.1 bad address",
            "550 address invalid",
            "5.1.0 address rejected.",
            "address does not exist",
            "address not present in directory",
            "address unknown",
            "can't accept user",
            "does not exist.",
            "destination addresses were unknown",
            "destination server rejected recipients",
            "email address could not be found",
            "invalid address",
            "invalid mailbox",
            "invalid recipient",
            "is not a known user",
            "is not a valid mailbox",
            "is not an active address at this host",
            "mailbox does not exist",
            "mailbox invalid",
            "mailbox is inactive",
            "mailbox is unavailable",
            "mailbox not present",
            "mailbox not found",
            "mailbox unavaiable",
            "nessun utente simile in questo indirizzo",
            "no account by that name here",
            "no existe dicha persona",
            "no existe ese usuario ",
            "no mail box available for this user",
            "no mailbox by that name is currently available",
            "no mailbox found",
            "no such address here",
            "no such mailbox",
            "no such person at this address",
            "no such recipient",
            "no such user",
            "account unavailable",
            "no valid recipients, bye",
            "not a valid recipient",
            "not a valid user here",
            "not a local address",
            "not email addresses",
            "recipient address rejected. (in reply to rcpt to command)",
            "recipient address rejected: access denied",
            "recipient address rejected: invalid user",
            "recipient address rejected: invalid-recipient",
            "recipient address rejected: unknown user",
            "recipient address rejected: userunknown",
            "recipient does not exist",
            "recipient is not accepted",
            "recipient is not local",
            "recipient not exist",
            "recipient not found",
            "recipient not ok",
            "recipient refuses to accept your mail",
            "recipient unknown",
            "requested action not taken: mailbox unavailable",
            "resolver.adr.recipient notfound",
            "resolver.adr.recipnotfound",
            "sorry, user unknown",
            "sorry, badrcptto",
            "sorry, no mailbox here by that name",
            "your envelope recipient has been denied",
            "that domain or user isn't in my list of allowed rcpthosts",
            "the email account that you tried to reach does not exist",
            "the following recipients was undeliverable",
            "email name is not found",
            "there is no one at this address",
            "this email address is wrong or no longer valid",
            "is in my badrecipientto list",
            "is not in my validrcptto list",
            "this spectator does not exist",
            "unknown mailbox",
            "unknown recipient",
            "unknown user",
            "user does not exist",
            "user missing home directory",
            "user not active",
            "user not exist",
            "user not found",
            "user not known",
            "user unknown",
            "utilisateur inconnu",
            "invalid or unknown virtual user",
            "nicht gefunden wurde oder keine e-mails empfangen kann",
            "is in my badrcptto list",
            "recipient name is not recognized",
            "<*> not found",
            "<*>... blocked by ",
            "account * does not exist at the organization",
            "destinataire invalide. invalid recipient.*41",
            "bad*recipient",
            "mailbox *does not exist",
            "mailbox *unavailable or access denied",
            "no * in name directory",
            "non*existent user",
            "rcpt <* does not exist",
            "rcpt (*t exist ",
            "recipient * was not found in",
            "recipient address rejected: user * does not exist",
            "recipient address rejected: user unknown in *table",
            "this user doesn't have a * account",
            "unknown e*mail address",
            "unknown local*part",
            "user * was not found",
            "user * does not exist",
            "user (*) unknown",
            "no such local user",
            "mailbox unavailable",
            "address rejected: undeliverable address",
            "address couldn't be found",
            "recipient address rejected.",
            "no valid recipients",
        ],
    ),
    (
        Reason::Filtered,
        &[
            "account is protected by",
            "bounced address",
            "has restricted sms e-mail",
            "is not accepting any mail",
            "message filtered",
            "message rejected due to user rules",
            "not found recipient account",
            "refuse to receive mail",
            "only accepting mail from specific email addresses",
            "refused due to recipient preferences",
            "user not found",
            "user refuses to receive this mail",
            "user reject",
            "you have been blocked by the recipient",
        ],
    ),
    (
        Reason::RequirePtr,
        &[
            "ip name lookup failed",
            "must have a ptr record",
            "bad dns ptr resource record",
            "cannot find your hostname",
            "cannot resolve your address.",
            "fix reverse dns for ",
            "missing ptr record",
            "no ptr record found.",
            "custom reverse dns name from your isp",
            "ptr record setup",
            "reverse dns failed",
            "reverse dns required",
            "sender ip reverse lookup rejected",
            "does not have a ptr record",
            "forward dns entry does not point to the sending ip",
            "with no reverse dns",
            "unresolvable relay host name",
            "generic dns ptr-records",
            "domain * mismatches client ip",
            "dns lookup failure: * try again later",
            "reverse dns lookup for host * failed permanently",
            "server access * forbidden by invalid rdns record",
            "service permits * unverifyable sending ips",
            "no ptr record",
            "reverse dns entry",
            "client host rejected: cannot find your reverse hostname",
        ],
    ),
    (
        Reason::NotCompliantRfc,
        &[
            "duplicate header",
            "is not rfc 5322 compliant",
            "?p=rfcmessagenoncompliant",
            "multiple addresses in from:",
            " multiple * header",
        ],
    ),
    (
        Reason::BadReputation,
        &[
            "a poor email reputation score",
            "rate limited due to ip reputation",
            "ip/domain reputation problems",
            "due to the very low reputation",
            "none/bad reputation",
            "temporarily deferred due to unexpected volume or user complaints",
            "mta's poor reputation",
            "poor reputation",
        ],
    ),
    (
        Reason::ContentError,
        &[
            "duplicate header",
            "header size exceeds maximum permitted",
            "improper use of 8-bit data in message header",
            "message header size, or recipient list, exceeds policy limit",
            "message mime complexity exceeds the policy maximum",
            "routing loop detected -- too many received: headers",
            "contain invalid mime headers",
            "contain improperly-formatted binary content",
            "contain text that uses unnecessary base64 encoding",
        ],
    ),
    (
        Reason::Rejected,
        &[
            "access denied (in reply to mail from command)",
            "access denied (sender blacklisted)",
            "address rejected",
            "administrative prohibition",
            "batv failed to verify",
            "batv validation failure",
            "backscatter protection detected an invalid or expired email address",
            "isn't on the recipient's list of senders to accept mail from",
            "bogus mail from",
            "can't determine purported responsible address",
            "from servers without a valid sender domain",
            "denied [bouncedeny]",
            "denied by secumail valid-address-filter",
            "delivery not authorized, message refused",
            "does not exist e2110",
            "domain of sender address ",
            "email address is on senderfilterconfig list",
            "emetteur invalide",
            "empty envelope senders not allowed",
            "envelope blocked - ",
            "error: no third-party dsns",
            "from: domain is invalid. please provide a valid from:",
            "fully qualified email address required",
            "invalid domain, see <url:",
            "invalid sender",
            "is not a registered gateway user",
            "mail from not owned by user",
            "message rejected: email address is not verified",
            "mx records for ",
            "null sender is not allowed",
            "recipient addresses rejected : access denied",
            "recipient not accepted. (batv: no tag",
            "returned mail not accepted here",
            "rfc 1035 violation: recursive cname records for",
            "rule imposed mailbox access for",
            "from a different address or alias using the ",
            "sender address has been blacklisted",
            "sender email address rejected",
            "sender is in my black list",
            "sender is spammer",
            "sender not pre-approved",
            "sender rejected",
            "sender domain is empty",
            "sender verify failed",
            "sender was rejected",
            "spam reporting address",
            "syntax error: empty email address",
            "rejected by batv defense",
            "this server does not accept mail from",
            "transaction failed unsigned dsn for",
            "unroutable sender address",
            "you are not allowed to post to this mailing list",
            "to/from an address that has been blacklisted",
            "your email address has been blacklisted",
            "sender address rejected",
            "sender denied",
        ],
    ),
    (
        Reason::HostUnknown,
        &[
            "domain does not exist",
            "domain is not reachable",
            "domain must exist",
            "host or domain name not found",
            "host unknown",
            "host unreachable",
            "mail domain mentioned in email address is unknown",
            "name or service not known",
            "no such domain",
            "unknown domain name",
            "the account or domain may not exist",
            "unknown host",
            "unroutable address",
            "unrouteable address",
            "553 * does not exist",
            "domain not found",
            "no mx record for",
            "all relevant mx records point to non-existent hosts",
            "no host by that name",
            "unknown domain",
        ],
    ),
    (
        Reason::SpamDetected,
        &[
            " - spam",
            "/help_spam_16.htm",
            "554 5.7.0 reject, id=",
            "appears to be unsolicited",
            "blacklisted url in message",
            "block for spam",
            "no spam please",
            "blocked by spamassassin",
            "blocked for abuse. see http://att.net/blocks",
            "detected as spam",
            "considered unsolicited bulk e-mail",
            "content filter rejection",
            "identified this email as a bulk email",
            "denied due to spam list",
            "high probability of spam",
            "is classified as spam",
            "listed in work.drbl.imedia.ru",
            "mail content denied",
            "may consider spam",
            "considered as spam or virus",
            "contains spam or virus",
            "message content rejected",
            "message filtered",
            "message looks like spam",
            "seems to be a spam",
            "spamprofiler",
            "message rejected as spam",
            "message rejected because of unacceptable content",
            "suspected spam content",
            "message rejected for policy reasons",
            "possible spam/virus content",
            "thinks this email is spam",
            "our system has detected that this message is ",
            "probable spam",
            "reject bulk.advertising",
            "rejected: spamassassin score ",
            "rejected - bulk email",
            "rejecting banned content",
            "rejecting mail content",
            "content with spam-like characteristics",
            "sender domain listed at ",
            "not accepted due to spam filter",
            "spam blocked",
            "spam check",
            "spam content matched",
            "spam detected",
            "spam email",
            "spam message rejected",
            "spam not accepted",
            "spam refused",
            "spam rejection",
            "spam score ",
            "spambouncer identified spam",
            "spamming not allowed",
            "too many spam complaints",
            "too much spam.",
            "rejected by spam filtering engine",
            "classification as bulk mail",
            "looked like spam",
            "appears to be spam",
            "identified as spam",
            "scored as spam",
            "was classified as spam",
            "recurrent pattern detection system",
            "spam message not queued",
            "we dont accept spam",
            "similar to spam we have received before",
            "breaches local uribl policy",
            "had spam-like ",
            "is considered spam",
            "is probably spam",
            "temporarily blocked by our filter",
            "it appears to be spam",
            "triggered a spam block",
            "may contain the spam contents",
            "failed several antispam checks",
            "greylisted* please try again in",
            "mail score (* over ",
            "mail rejete. mail rejected. *506",
            "percent probability of being spam",
            "rejected by * (spam)",
            "rejected due to spam *classification",
            "rejected due to spam *content",
            "rule imposed as * is blacklisted on",
            "spam * exceeded",
            "this message scored * spam points",
            "unsolicited mail",
            "spam-like",
        ],
    ),
    (
        Reason::Speeding,
        &[
            "has been temporarily rate limited",
            "please try again slower",
            "receiving mail at a rate that prevents additional messages",
            "rate limit exceeded",
            "sending rate exceeded",
            "too fast",
        ],
    ),
    (
        Reason::TooManyConn,
        &[
            "at maximum connection limit",
            "connection rate limit exceeded",
            "exceeds per-domain connection limit for",
            "has exceeded the max emails per hour ",
            "daily message quota exceeded",
            "maximum sending rate exceeded",
            "too many connections",
            "too many concurrent smtp connections",
            "too many errors from your ip",
            "too many recipients",
            "too many smtp sessions for this host",
            "trop de connexions, ",
            "made numerous attempts to deliver this message",
            "too many simultaneous connections",
        ],
    ),
    (
        Reason::Blocked,
        &[
            " said: 550 blocked",
            "//www.spamcop.net/bl.",
            "bad sender ip address",
            "banned sending ip",
            "blacklisted by",
            "blocked using ",
            "blocked - see http",
            "dnsbl:attrbl",
            "client host rejected: abus detecte gu_eib_0",
            "client host rejected: may not be mail exchanger",
            "client host rejected: was not authenticated",
            "confirm this mail server",
            "connection dropped",
            "connection refused by",
            "connection reset by peer",
            "connection was dropped by remote host",
            "on spamhaus xbl",
            "currently sending spam see: ",
            "domain does not exist:",
            "dynamic/zombied/spam ips blocked",
            "error: no valid recipients from ",
            "esmtp not accepting connections",
            "extreme bad ip profile",
            "go away",
            "helo command rejected:",
            "host network not allowed",
            "hosts with dynamic ip",
            "invalid ip for sending mail of domain",
            "is in a black list",
            "is not allowed to send mail from",
            "mailfrom domain is listed in spamhaus",
            "no access from mail server",
            "no matches to nameserver query",
            "not currently accepting mail from your ip",
            "part of their network is on our block list",
            "please use the smtp server of your isp",
            "refused - see http",
            "rejected - multi-blacklist",
            "sender has not passed validation",
            "rejecting open proxy",
            "sender ip address rejected",
            "server access forbidden by your ip ",
            "service not available, closing transmission channel",
            "smtp error from remote mail server after initial connection:",
            "sorry, that domain isn't in my list of allowed rcpthosts",
            "looks suspiciously like spammer",
            "to submit messages to this e-mail system has been rejected",
            "too many spams from your ip",
            "too many unwanted messages have been sent from the following ip address",
            "was blocked by ",
            "mail from dynamic ips",
            "you are not allowed to connect",
            "you are sending spam",
            "your ip address is listed in the rbl",
            "your network is temporary blacklisted",
            "your server requires confirmation",
            "(*@*:blocked)",
            "access from ip address * blocked",
            "client host * blocked using",
            "because the ip is in spamhaus's list",
            "dnsbl:rbl *>_is_blocked",
            "email blocked by *.barracudacentral.org",
            "email blocked by *spamhaus",
            "host * refused to talk to me: * blocked",
            "ip * is blocked by earthlink",
            "is in an *rbl on ",
            "mail server at * is blocked",
            "mail from * refused:",
            "mail from * refused, see *orbs",
            "message from * rejected based on blacklist",
            "messages from * temporarily deferred due to user complaints",
            "server ip * listed as abusive",
            "sorry! your ip address* is blocked by rbl",
            "the domain * is blacklisted",
            "the email * is blacklisted",
            "the ip* is blacklisted",
            "service refused, please try later. *103",
            "service refused, please try later. *510",
            "your access ip* has been rejected",
            "your sender's ip address is listed at *.abuseat.org",
            "listed at spamhaus",
            "listed in spamhaus",
            "spamhaus.org",
            "ip blocked",
            "blocklisted",
            "ip address is blacklisted",
            "client host rejected",
            "on our block list",
            "your ip has been",
        ],
    ),
    (
        Reason::VirusDetected,
        &[
            "potentially executable attachment",
            "contains prohibited virus or spam content",
            "used by recent viruses or other malware",
            "virus detected",
            "virus phishing/malicious_url detected",
            "infected with a virus",
            "contains a virus",
            "virus found",
        ],
    ),
    (
        Reason::PolicyViolation,
        &[
            "an illegal attachment on your message",
            "not accepting mail with ",
            "by non-member to a members-only list",
            "closed mailing list",
            "denied by policy",
            "email not accepted for policy reasons",
            "email rejected due to security policies",
            "header are not accepted",
            "header error",
            "local policy violation",
            "message bounced due to organizational settings",
            "message given low priority",
            "message not accepted for policy reasons",
            "message rejected due to local policy",
            "messages with multiple addresses",
            "rejected for policy reasons",
            "protocol violation",
            "is not subscribed to this group",
            "rejected by organization policy",
            "its content presents a potential",
            "messages containing images or other attachments",
            "you're using a mass mailer",
            "you have exceeded the*allowable number of posts without solving a captcha",
        ],
    ),
    (
        Reason::SystemError,
        &[
            "aliasing/forwarding loop broken",
            "can't create user output file",
            "could not load drd for domain",
            "internal error reading data",
            "internal server error: operation now in progress",
            "interrupted system call",
            "encountered an error while being processed",
            "it would create a mail loop",
            "local configuration error",
            "local error in processing",
            "loop was found in the mail exchanger",
            "loops back to myself",
            "mail system configuration error",
            "queue file write error",
            "there is no mdb",
            "remote server is misconfigured",
            "server configuration error",
            "service currently unavailable",
            "system config error",
            "temporary local problem",
            "timeout waiting for input",
            "transaction failed ",
            "unable to connect *daemon",
        ],
    ),
    (
        Reason::NetworkError,
        &[
            "could not connect and send the mail to",
            "dns records for the destination computer could not be found",
            "hop count exceeded",
            "host is unreachable",
            "host name lookup failure",
            "host not found, try again",
            "mail forwarding loop for ",
            "malformed name server reply",
            "malformed or unexpected name server reply",
            "maximum forwarding loop count exceeded",
            "message looping",
            "routing loop",
            "no route to host",
            "too many hops",
            "unable to resolve route ",
            "unrouteable mail domain",
            "temporary failure in name resolution",
            "dns error",
        ],
    ),
    (
        Reason::SystemFull,
        &[
            "mail system full",
            "requested mail action aborted: exceeded storage allocation",
        ],
    ),
    (
        Reason::NotAccept,
        &[
            "does not accept mail (nullmx)",
            "host/domain does not accept mail",
            "host does not accept mail",
            "mail receiving disabled",
            "name server: .: host not found",
            "no mx record found for domain=",
            "no route for current request",
            "smtp protocol returned a permanent error",
            "null mx",
        ],
    ),
    (
        Reason::Expired,
        &[
            "connection timed out",
            "could not find a gateway for",
            "delivery attempts will continue to be",
            "delivery expired",
            "delivery time expired",
            "failed to deliver to domain ",
            "giving up on",
            "have been failing for a long time",
            "has been delayed",
            "it has not been collected after",
            "message expired",
            "message timed out",
            "retry time not reached for any host after a long failure period",
            "server did not respond",
            "in the queue too long",
            "unable to deliver message after multiple retries",
            "was not reachable within the allowed queue period",
            "could not be delivered for more than",
            "could not be delivered for* days",
            "retry timeout exceeded",
            "too long in queue",
            "queue lifetime exceeded",
        ],
    ),
    (
        Reason::FailedStartTls,
        &[
            "starttls is required",
            "must issue a starttls command first",
            "tls is required",
            "requiretls",
        ],
    ),
    (
        Reason::SecurityError,
        &[
            "account not subscribed to ses",
            "authentication credentials invalid",
            "authentication failure",
            "authentication required",
            "authentication turned on in your email client",
            "executable files are not allowed in compressed files",
            "insecure mail relay",
            "recipient address rejected: access denied",
            "you don't authenticate or the domain isn't in my list of allowed rcpthosts",
            "unauthenticated senders not allowed",
            "verification failure",
            "authentication is required",
            "turn on smtp authentication",
            "authentication failed; server * said: ",
            "authentification invalide*305",
            "authentification requise*402",
            "domain * is a dead domain",
            "is not authorized to perform ses:sendrawemail",
        ],
    ),
    (
        Reason::Suppressed,
        &["address is on the suppression list", "suppression list"],
    ),
    (
        Reason::MailerError,
        &[
            " || exit ",
            "procmail: ",
            "bin/procmail",
            "bin/maidrop",
            "command failed: ",
            "command died with status ",
            "command output:",
            "mailer error",
            "pipe to |/",
            "x-unix; ",
        ],
    ),
    (
        Reason::SyntaxError,
        &[
            "syntax error",
            "unrecognized command",
            "command unrecognized",
            "line too long",
        ],
    ),
    (
        Reason::Vacation,
        &[
            "i am away on vacation",
            "i am away until",
            "i am out of the office",
            "i will be traveling for work on",
        ],
    ),
];

/// Bit of the first [`FORMAT_HINTS`] entry in a [`scan`] result; the bits
/// below are reasons (`Reason as u32`).
const HINT_BIT: u32 = 36;

/// [`PHRASES`] and [`FORMAT_HINTS`], indexed for one pass over a text (the
/// tables have some 700 patterns; trying each in turn was most of the
/// classifier's time).
fn scan(text: &str) -> u64 {
    static INDEX: std::sync::OnceLock<crate::util::Index> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            let phrases = PHRASES
                .iter()
                .flat_map(|(r, ps)| ps.iter().map(move |p| (*r as u8, *p)));
            let hints = FORMAT_HINTS
                .iter()
                .enumerate()
                .map(|(i, (p, _))| ((HINT_BIT as usize + i) as u8, *p));
            crate::util::Index::new(phrases.chain(hints))
        })
        .scan(text)
}

/// [`FORMAT_HINTS`] alone, for the longer texts that only they are asked
/// about (a whole notice).
fn scan_hints(text: &str) -> u64 {
    static INDEX: std::sync::OnceLock<crate::util::Index> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            crate::util::Index::new(
                FORMAT_HINTS
                    .iter()
                    .enumerate()
                    .map(|(i, (p, _))| ((HINT_BIT as usize + i) as u8, *p)),
            )
        })
        .scan(text)
}

/// The first of [`FORMAT_HINTS`] in a [`scan`] result.
fn format_hint(found: u64) -> Option<Reason> {
    let hints = found >> HINT_BIT;
    (hints != 0).then(|| FORMAT_HINTS[hints.trailing_zeros() as usize].1)
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
        // "recipient address rejected" and friends are about the recipient.
        Reason::Rejected => {
            !matches_any(
                text,
                &[
                    "5.1.0 address rejected",
                    "recipient address rejected",
                    "sender ip address rejected",
                ],
            ) || matches_any(
                text,
                &["sender address rejected", "sender rejected", "sender verify failed"],
            )
        }
        _ => true,
    }
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

/// The reason of one failure.
pub(crate) fn reason_of(f: &Fact) -> Reason {
    if let Some(h) = f.hint {
        return h;
    }
    let status = f.status.as_deref().unwrap_or("");
    if status.starts_with("2.") || f.action.as_deref() == Some("delivered") {
        return Reason::Delivered;
    }
    let words = Words::new(fold(crate::util::clip(&f.diagnostic, 1536)));
    let text = words.text.as_str();
    let notice = std::cell::OnceCell::new();
    let notice = || notice.get_or_init(|| fold(&f.notice)).as_str();
    if let Some(r) = format_hint(words.found) {
        return r;
    }
    if let Some(r) = crate::provider::reason(f, text) {
        return r;
    }
    // The notice around a report speaks for the recipient only when the
    // report's own code says little.
    let vague = status.is_empty() || status.ends_with(".0.0");
    if vague
        && !f.notice.is_empty()
        && let Some(r) = format_hint(scan_hints(notice()))
    {
        return r;
    }
    let named = status_reason(status);
    let is_smtp = f.diag_type.as_deref().is_none_or(|t| t == "smtp" || t == "x-postfix");

    if is_smtp && let Some(r) = first_pass(f, &words, named) {
        return r;
    }
    if let Some(r) = second_pass(f, &words, named, is_smtp) {
        return r;
    }
    if matches!(f.action.as_deref(), Some("delayed")) {
        return Reason::Expired;
    }
    if words.says(Reason::Vacation) {
        return Reason::Vacation;
    }
    // Nothing in the recipient's own lines: what the whole notice says.
    if !f.notice.is_empty() && notice() != text {
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
                    (cmd == Some(Command::Rcpt) || (cmd.is_none() && f.human && named != Some(Filtered)))
                        && text.says(UserUnknown)
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

fn second_pass(f: &Fact, text: &Words, named: Option<Reason>, is_smtp: bool) -> Option<Reason> {
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
    ];
    debug_assert!(PATS.len() <= 64);
    static INDEX: std::sync::OnceLock<crate::util::Index> = std::sync::OnceLock::new();
    let found = INDEX
        .get_or_init(|| crate::util::Index::new(PATS.iter().enumerate().map(|(i, (p, _))| (i as u8, *p))))
        .scan(&flat);
    // The earliest mention wins.
    let best = (0..PATS.len())
        .filter(|i| found & (1u64 << i) != 0)
        .filter_map(|i| crate::util::find(flat.as_bytes(), PATS[i].0.as_bytes()).map(|at| (at, PATS[i].1)))
        .min_by_key(|(at, _)| *at);
    if let Some((_, c)) = best {
        return Some(c);
    }
    if !head.contains(">>> ") {
        return None;
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
