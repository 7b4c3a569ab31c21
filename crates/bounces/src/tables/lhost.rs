//! The MTAs' and ESPs' own messages (`lhost/*.go`): what one decoder's
//! bounces mean, applied when that decoder recognised the message.
//!
//! Written by `research/sisimai/gen_tables.py` from the facts in
//! `research/sisimai/` (read from go-sisimai and rb-sisimai, BSD-2-Clause,
//! (C) azumakuniyuki). Each entry names the Sisimai module it reflects.
//! Edit the facts and rerun the script rather than this file.

use super::Table;
use crate::Reason;

/// Decoder name, then its messages per reason (lower-case).
pub(crate) const MESSAGES: &[(&str, Table)] = &[
    // lhost/via-amazonses.go
    ("amazonses", &[(Reason::Expired, &["delivery expired"])]),
    // lhost/via-biglobe.go
    (
        "biglobe",
        &[
            (Reason::Filtered, &["mail delivery failed... user unknown"]),
            (
                Reason::MailboxFull,
                &["the number of messages in recipient's mailbox exceeded the local limit."],
            ),
        ],
    ),
    // lhost/via-courier.go
    (
        "courier",
        &[
            (Reason::HostUnknown, &["no such domain."]),
            (Reason::SystemError, &["this domain's dns violates rfc 1035."]),
            (Reason::NetworkError, &["dns lookup failed."]),
        ],
    ),
    // lhost/via-domino.go
    (
        "domino",
        &[
            (Reason::Filtered, &["cannot route mail to user"]),
            (Reason::SystemError, &["several matches found in domino directory"]),
            (
                Reason::UserUnknown,
                &[
                    "not listed in domino directory",
                    "not listed in public name & address book",
                    "no se encuentra en el directorio de domino",
                    "non répertorié dans l'annuaire domino",
                    "domino ディレクトリには見つかりません",
                ],
            ),
        ],
    ),
    // lhost/via-dragonfly.go
    (
        "dragonfly",
        &[
            (Reason::Expired, &["could not deliver for the last "]),
            (Reason::HostUnknown, &["dns lookup failure: host "]),
        ],
    ),
    // lhost/via-einsundeins.go
    ("einsundeins", &[(Reason::MesgTooBig, &["mail size limit exceeded"])]),
    // lhost/via-exchange2003.go
    (
        "exchange2003",
        &[
            (Reason::UserUnknown, &["(000c05a6)"]),
            (Reason::Filtered, &["(000c0595)"]),
            (Reason::SystemError, &["(00010256)", "(000d06b5)"]),
            (Reason::NetworkError, &["(00120270)"]),
            (Reason::ContentError, &["(00050311)", "(000502cc)"]),
            (Reason::SecurityError, &["(000b0981)"]),
            (Reason::OnHold, &["(000b099c)", "(000b09aa)", "(000b09b6)"]),
        ],
    ),
    // lhost/via-exchange2007.go
    (
        "exchange2007",
        &[
            (
                Reason::SystemError,
                &[
                    "resolver.adr.badprimary",
                    "resolver.adr.invalidinsmtp",
                    "resolver.adr.ambiguous",
                ],
            ),
            (
                Reason::UserUnknown,
                &[
                    "resolver.adr.recipnotfound",
                    "resolver.adr.recipientnotfound",
                    "resolver.adr.exrecipnotfound",
                ],
            ),
            (Reason::TooManyConn, &["resolver.adr.reciplimit"]),
            (Reason::SecurityError, &["resolver.rst.authrequired"]),
            (Reason::Rejected, &["resolver.rst.notauthorized"]),
            (Reason::ExceedLimit, &["resolver.rst.recipsizelimit"]),
            (Reason::Expired, &["queue.expired"]),
        ],
    ),
    // lhost/via-exim.go
    (
        "exim",
        &[
            (Reason::UserUnknown, &["user not found"]),
            (
                Reason::HostUnknown,
                &[
                    "all host address lookups failed permanently",
                    "all relevant mx records point to non-existent hosts",
                    "unrouteable address",
                ],
            ),
            (Reason::MailboxFull, &["mailbox is full", "error: quota exceed"]),
            (
                Reason::NotAccept,
                &[
                    "an mx or srv record indicated no smtp service",
                    "no host found for existing smtp connection",
                ],
            ),
            (
                Reason::SyntaxError,
                &[
                    "angle-brackets nested too deep",
                    "expected word or \"<\"",
                    "domain missing in source-routed address",
                    "malformed address:",
                ],
            ),
            (
                Reason::SystemError,
                &[
                    "delivery to file forbidden",
                    "delivery to pipe forbidden",
                    "local delivery failed",
                    "lmtp error after ",
                ],
            ),
            (Reason::ContentError, &["too many \"received\" headers"]),
        ],
    ),
    // lhost/via-ezweb.go
    (
        "ezweb",
        &[
            (Reason::Expired, &["your message was not delivered within "]),
            (Reason::MailboxFull, &["the user(s) account is temporarily over quota"]),
            (
                Reason::OnHold,
                &["each of the following recipients was rejected by a remote mail server"],
            ),
            (
                Reason::Suspend,
                &[
                    "the user(s) account is disabled.",
                    "the user(s) account is temporarily limited.",
                ],
            ),
        ],
    ),
    // lhost/via-fml.go
    (
        "fml",
        &[
            (
                Reason::Rejected,
                &[
                    " header may cause mail loop",
                    "not member article from ",
                    "reject mail from ",
                    "reject spammers:",
                    "you are not a member of this mailing list",
                ],
            ),
            (Reason::NotCompliantRfc, &["duplicated message-id"]),
            (Reason::SecurityError, &["security alert:"]),
            (
                Reason::SystemError,
                &[" has detected a loop condition so that", "loop back warning:"],
            ),
        ],
    ),
    // lhost/via-gmail.go
    (
        "gmail",
        &[
            (
                Reason::Expired,
                &[
                    "dns error: could not contact dns servers",
                    "delivery to the following recipient has been delayed",
                    "the recipient server did not accept our requests to connect",
                ],
            ),
            (
                Reason::HostUnknown,
                &[
                    "dns error: domain name not found",
                    "dns error: dns server returned answer with no data",
                ],
            ),
        ],
    ),
    // lhost/via-gmx.go
    ("gmx", &[(Reason::Expired, &["delivery retry timeout exceeded"])]),
    // lhost/via-googleworkspace.go
    (
        "googleworkspace",
        &[(
            Reason::UserUnknown,
            &["because the address couldn't be found. check for typos or unnecessary spaces and try again."],
        )],
    ),
    // lhost/via-imailserver.go
    (
        "imailserver",
        &[
            (Reason::HostUnknown, &["unknown host"]),
            (Reason::UserUnknown, &["unknown user", "invalid final delivery userid"]),
            (Reason::MailboxFull, &["user mailbox exceeds allowed size"]),
            (Reason::VirusDetected, &["requested action not taken: virus detected"]),
            (Reason::SpamDetected, &["blacklisted url in message"]),
            (Reason::Expired, &["delivery failed "]),
        ],
    ),
    // lhost/via-interscanmss.go
    ("interscanmss", &[(Reason::UserUnknown, &["unable to deliver"])]),
    // lhost/via-trendmicro.go
    ("trendmicro", &[(Reason::UserUnknown, &["unable to deliver"])]),
    // lhost/via-kddi.go
    (
        "kddi",
        &[
            (Reason::MailboxFull, &["as their mailbox is full"]),
            (Reason::NoRelaying, &["due to the following smtp relay error"]),
            (Reason::HostUnknown, &["as the remote domain doesnt exist"]),
        ],
    ),
    // lib/sisimai/lhost/aol.rb (rb-sisimai)
    (
        "aol",
        &[
            (Reason::HostUnknown, &["host or domain name not found"]),
            (
                Reason::NotAccept,
                &["type=mx: malformed or unexpected name server reply"],
            ),
        ],
    ),
    // lib/sisimai/lhost/google.rb (rb-sisimai)
    (
        "google",
        &[
            (
                Reason::Expired,
                &[
                    "dns error: could not contact dns servers",
                    "delivery to the following recipient has been delayed",
                    "the recipient server did not accept our requests to connect",
                ],
            ),
            (
                Reason::HostUnknown,
                &[
                    "dns error: domain name not found",
                    "dns error: dns server returned answer with no data",
                ],
            ),
        ],
    ),
    // lib/sisimai/lhost/gsuite.rb (rb-sisimai)
    (
        "gsuite",
        &[
            (
                Reason::UserUnknown,
                &["because the address couldn't be found. check for typos or unnecessary spaces and try again."],
            ),
            (Reason::NotAccept, &["null mx"]),
            (
                Reason::NetworkError,
                &[" had no relevant answers.", " responded with code nxdomain"],
            ),
        ],
    ),
    // lib/sisimai/lhost/mailru.rb (rb-sisimai)
    (
        "mailru",
        &[
            (
                Reason::Expired,
                &["retry timeout exceeded", "no action is required on your part"],
            ),
            (Reason::UserUnknown, &["user not found"]),
            (
                Reason::HostUnknown,
                &[
                    "all host address lookups failed permanently",
                    "all relevant mx records point to non-existent hosts",
                    "unrouteable address",
                ],
            ),
            (Reason::MailboxFull, &["mailbox is full", "error: quota exceed"]),
            (
                Reason::NotAccept,
                &[
                    "an mx or srv record indicated no smtp service",
                    "no host found for existing smtp connection",
                ],
            ),
            (
                Reason::SyntaxError,
                &[
                    "angle-brackets nested too deep",
                    "expected word or \"<\"",
                    "domain missing in source-routed address",
                    "malformed address:",
                ],
            ),
            (
                Reason::SystemError,
                &[
                    "delivery to file forbidden",
                    "delivery to pipe forbidden",
                    "local delivery failed",
                    "lmtp error after ",
                ],
            ),
            (Reason::ContentError, &["too many \"received\" headers"]),
        ],
    ),
    // lib/sisimai/lhost/messagelabs.rb (rb-sisimai)
    (
        "messagelabs",
        &[
            (Reason::UserUnknown, &["542 ", " rejected", "no such user"]),
            (
                Reason::SecurityError,
                &["please turn on smtp authentication in your mail client"],
            ),
        ],
    ),
    // lhost/via-messagingserver.go
    (
        "messagingserver",
        &[(Reason::HostUnknown, &["illegal host/domain name found"])],
    ),
    // lib/sisimai/lhost/mxlogic.rb (rb-sisimai)
    (
        "mxlogic",
        &[
            (Reason::UserUnknown, &["user not found"]),
            (
                Reason::HostUnknown,
                &[
                    "all host address lookups failed permanently",
                    "all relevant mx records point to non-existent hosts",
                    "unrouteable address",
                ],
            ),
            (Reason::MailboxFull, &["mailbox is full", "error: quota exceed"]),
            (
                Reason::NotAccept,
                &[
                    "an mx or srv record indicated no smtp service",
                    "no host found for existing smtp connection",
                ],
            ),
            (
                Reason::SyntaxError,
                &[
                    "angle-brackets nested too deep",
                    "expected word or \"<\"",
                    "domain missing in source-routed address",
                    "malformed address:",
                ],
            ),
            (
                Reason::SystemError,
                &[
                    "delivery to file forbidden",
                    "delivery to pipe forbidden",
                    "local delivery failed",
                    "lmtp error after ",
                ],
            ),
            (Reason::ContentError, &["too many \"received\" headers"]),
            (
                Reason::Expired,
                &[
                    "retry timeout exceeded",
                    "no action is required on your part",
                    "retry time not reached for any host after a long failure period",
                    "all hosts have been failing for a long time and were last tried",
                    "delay reason: ",
                    "has been frozen",
                    "was frozen on arrival by ",
                ],
            ),
        ],
    ),
    // lhost/via-notes.go
    (
        "notes",
        &[
            (Reason::NetworkError, &["message has exceeded maximum hop count"]),
            (
                Reason::UserUnknown,
                &[
                    "user not listed in public name & address book",
                    "ディレクトリのリストにありません",
                ],
            ),
        ],
    ),
    // lhost/via-opensmtpd.go
    (
        "opensmtpd",
        &[
            (Reason::Expired, &["envelope expired"]),
            (Reason::SecurityError, &["could not retrieve credentials"]),
            (Reason::HostUnknown, &["invalid domain name", "domain does not exist"]),
            (
                Reason::NetworkError,
                &[
                    "address family mismatch on destination mxs",
                    "all routes to destination blocked",
                    "bad dns lookup error code",
                    "could not retrieve source address",
                    "loop detected",
                    "network error on destination mxs",
                    "no valid route to remote mx",
                    "no valid route to destination",
                    "temporary failure in mx lookup",
                ],
            ),
            (
                Reason::NotAccept,
                &[
                    "destination seem to reject all mails",
                    "no mx found for domain",
                    "no mx found for destination",
                ],
            ),
        ],
    ),
    // lib/sisimai/lhost/outlook.rb (rb-sisimai)
    (
        "outlook",
        &[
            (
                Reason::HostUnknown,
                &["the mail could not be delivered to the recipient because the domain is not reachable"],
            ),
            (
                Reason::UserUnknown,
                &["requested action not taken: mailbox unavailable"],
            ),
        ],
    ),
    // lib/sisimai/lhost/powermta.rb (rb-sisimai)
    (
        "powermta",
        &[
            (Reason::HostUnknown, &["bad-domain"]),
            (Reason::UserUnknown, &["bad-mailbox"]),
            (Reason::Expired, &["message-expired"]),
            (Reason::NetworkError, &["no-answer-from-host"]),
            (Reason::PolicyViolation, &["policy-related"]),
            (Reason::MailboxFull, &["quota-issues"]),
            (Reason::SystemError, &["routing-errors"]),
            (Reason::SpamDetected, &["spam-related"]),
        ],
    ),
    // lhost/via-qmail.go
    (
        "qmail",
        &[
            (Reason::HostUnknown, &["sorry, i couldn't find any host "]),
            (Reason::MailboxFull, &["disk quota exceeded"]),
            (
                Reason::MesgTooBig,
                &["message size exceeds fixed maximum message size:"],
            ),
            (
                Reason::NetworkError,
                &[
                    "sorry, i wasn't able to establish an smtp connection",
                    "sorry. although i'm listed as a best-preference mx or a for that host",
                ],
            ),
            (
                Reason::NotAccept,
                &["sorry, i couldn't find a mail exchanger or ip address"],
            ),
            (
                Reason::SystemError,
                &[
                    "bad interpreter: no such file or directory",
                    "system error",
                    "unable to",
                ],
            ),
            (
                Reason::SystemFull,
                &["requested action not taken: mailbox unavailable (not enough free space)"],
            ),
            (Reason::UserUnknown, &["no mailbox here by that name"]),
            (
                Reason::ExceedLimit,
                &["the message exeeded the maximum size the user accepts"],
            ),
            (
                Reason::Suspend,
                &[
                    "mailaddress is administrativly disabled",
                    "mailaddress is administrativley disabled",
                    "mailaddress is administratively disabled",
                    "mailaddress is administrativeley disabled",
                ],
            ),
            (
                Reason::SystemError,
                &[
                    "automatic homedir creator crashed",
                    "illegal value in ldap attribute",
                    "ldap attribute is not given but mandatory",
                    "timeout while performing search on ldap server",
                    "too many results returned but needs to be unique",
                    "permanent error while executing qmail-forward",
                    "temporary error in automatic homedir creation",
                    "temporary error while executing qmail-forward",
                    "temporary failure in ldap lookup",
                    "unable to contact ldap server",
                    "unable to login into ldap server, bad credentials",
                ],
            ),
            (Reason::UserUnknown, &["sorry, no mailbox here by that name"]),
        ],
    ),
    // lhost/via-verizon.go
    (
        "verizon",
        &[(
            Reason::UserUnknown,
            &[
                "550 - requested action not taken: no such user here",
                "no valid recipients",
            ],
        )],
    ),
    // lib/sisimai/lhost/x4.rb (rb-sisimai)
    (
        "x4",
        &[
            (
                Reason::UserUnknown,
                &["no mailbox here by that name", "does not like recipient."],
            ),
            (Reason::MailboxFull, &["disk quota exceeded"]),
            (
                Reason::MesgTooBig,
                &["message size exceeds fixed maximum message size:"],
            ),
            (Reason::HostUnknown, &["sorry, i couldn't find any host "]),
            (
                Reason::SystemFull,
                &["requested action not taken: mailbox unavailable (not enough free space)"],
            ),
            (
                Reason::SystemError,
                &[
                    "bad interpreter: no such file or directory",
                    "system error",
                    "unable to",
                ],
            ),
            (
                Reason::NetworkError,
                &[
                    "sorry, i wasn't able to establish an smtp connection",
                    "sorry, i couldn't find a mail exchanger or ip address",
                    "sorry. although i'm listed as a best-preference mx or a for that host",
                ],
            ),
            (Reason::Suspend, &["mailaddress is administrative?le?y disabled"]),
            (Reason::UserUnknown, &["sorry, no mailbox here by that name"]),
            (
                Reason::ExceedLimit,
                &["the message exeeded the maximum size the user accepts"],
            ),
            (
                Reason::SystemError,
                &[
                    "automatic homedir creator crashed",
                    "illegal value in ldap attribute",
                    "ldap attribute is not given but mandatory",
                    "timeout while performing search on ldap server",
                    "too many results returned but needs to be unique",
                    "permanent error while executing qmail-forward",
                    "temporary error in automatic homedir creation",
                    "temporary error while executing qmail-forward",
                    "temporary failure in ldap lookup",
                    "unable to contact ldap server",
                    "unable to login into ldap server, bad credentials",
                ],
            ),
        ],
    ),
    // lhost/via-zoho.go
    ("zoho", &[(Reason::Expired, &["host not reachable"])]),
];

/// Decoder name, then the enhanced status codes (or `a.b.MIN-a.b.MAX`
/// ranges) its tables give a reason.
pub(crate) const STATUS_CODES: &[(&str, Table)] = &[
    // lib/sisimai/lhost/office365.rb (rb-sisimai)
    (
        "office365",
        &[
            (Reason::Expired, &["4.4.7", "4.4.316", "5.4.316"]),
            (Reason::NetworkError, &["4.4.312", "5.4.312", "5.4.6", "5.7.25"]),
            (Reason::SecurityError, &["4.7.26", "5.7.509", "5.7.512", "5.7.57"]),
            (Reason::Blocked, &["5.7.23", "5.7.506-5.7.507", "5.7.606-5.7.609"]),
            (Reason::ContentError, &["5.0.350", "5.6.11"]),
            (Reason::UserUnknown, &["5.1.10"]),
            (Reason::NoRelaying, &["5.4.1"]),
            (Reason::Rejected, &["5.7.1", "5.7.124", "5.7.133-5.7.136", "5.7.511"]),
            (Reason::SpamDetected, &["5.7.501-5.7.503"]),
            (Reason::Filtered, &["5.7.504-5.7.505"]),
            (Reason::TooManyConn, &["5.7.508"]),
            (Reason::NotAccept, &["5.7.510"]),
        ],
    ),
    // lhost/via-qmail.go
    (
        "qmail",
        &[
            (Reason::HostUnknown, &["4.1.2"]),
            (Reason::MesgTooBig, &["5.3.4"]),
            (Reason::UserUnknown, &["5.1.1"]),
            (Reason::ExceedLimit, &["5.2.3"]),
            (Reason::Suspend, &["5.2.1"]),
            (Reason::SystemError, &["4.3.0", "5.3.5", "4.4.3", "5.4.4", "4.4.4"]),
            (Reason::UserUnknown, &["5.1.1"]),
        ],
    ),
    // lib/sisimai/lhost/x4.rb (rb-sisimai)
    (
        "x4",
        &[
            (Reason::Suspend, &["5.2.1"]),
            (Reason::UserUnknown, &["5.1.1"]),
            (Reason::ExceedLimit, &["5.2.3"]),
        ],
    ),
];

/// Decoder name, then the banners one of which its bounces carry in the
/// body (lower-case; `start_markers` of each module).
pub(crate) const START_MARKERS: &[(&str, &[&str])] = &[
    // lhost/via-activehunter.go
    (
        "activehunter",
        &["----- the following addresses had permanent fatal errors -----"],
    ),
    // lhost/via-apachejames.go
    ("apachejames", &["message details:"]),
    // lhost/via-biglobe.go
    (
        "biglobe",
        &["----- the following addresses had delivery problems -----"],
    ),
    // lhost/via-courier.go
    ("courier", &["delays in delivering your message", "undeliverable mail"]),
    // lhost/via-domino.go
    ("domino", &["your message"]),
    // lhost/via-dragonfly.go
    ("dragonfly", &["this is the dragonfly mail agent"]),
    // lhost/via-einsundeins.go
    (
        "einsundeins",
        &["this message was created automatically by mail delivery software"],
    ),
    // lhost/via-exchange2003.go
    ("exchange2003", &["your message"]),
    // lhost/via-exchange2007.go
    (
        "exchange2007",
        &[
            "error details",
            "diagnostic information for administrators:",
            "informations de diagnostic pour les administrateurs",
            "informazioni di diagnostica per gli amministratori",
            "diagnostisk information f",
        ],
    ),
    // lhost/via-exim.go
    (
        "exim",
        &[
            "this message was created automatically by mail delivery software.",
            "a message that you sent was rejected by the local scannning code",
            "a message that you sent contained one or more recipient addresses",
            "a message that you sent could not be delivered to all of its recipients",
            "has been frozen",
            "was frozen on arrival",
            "router encountered the following error(s):",
        ],
    ),
    // lhost/via-ezweb.go
    ("ezweb", &["the user(s)", "your message", "each of the following"]),
    // lhost/via-gmail.go
    ("gmail", &["delivery to the following recipient"]),
    // lhost/via-gmx.go
    (
        "gmx",
        &["this message was created automatically by mail delivery software"],
    ),
    // lhost/via-kddi.go
    (
        "kddi",
        &["your mail sent on:", "your mail attempted to be delivered on:"],
    ),
    // lib/sisimai/lhost/amavis.rb
    ("amavis", &["the message"]),
    // lib/sisimai/lhost/amazonworkmail.rb
    ("amazonworkmail", &["technical report:"]),
    // lib/sisimai/lhost/aol.rb
    ("aol", &["content-type: message/delivery-status"]),
    // lib/sisimai/lhost/barracuda.rb
    ("barracuda", &["your message to:"]),
    // lib/sisimai/lhost/bigfoot.rb
    ("bigfoot", &["transcript of session follows"]),
    // lib/sisimai/lhost/facebook.rb
    ("facebook", &["this message was created automatically by facebook."]),
    // lib/sisimai/lhost/google.rb
    ("google", &["delivery to the following recipient"]),
    // lhost/via-mailfoundry.go
    ("mailfoundry", &["unable to deliver message to:"]),
    // lhost/via-mailmarshalsmtp.go (also lhost/via-mailmarshal.go, same InquireFor key MailMarshalSMTP)
    ("mailmarshalsmtp", &["your message:"]),
    // lhost/via-mailmarshal.go
    ("mailmarshal", &["your message:"]),
    // lib/sisimai/lhost/mailru.rb
    (
        "mailru",
        &["this message was created automatically by mail delivery software."],
    ),
    // lib/sisimai/lhost/mcafee.rb
    ("mcafee", &["--- the following addresses had delivery problems ---"]),
    // lib/sisimai/lhost/messagelabs.rb
    ("messagelabs", &["content-type: message/delivery-status"]),
    // lhost/via-messagingserver.go
    (
        "messagingserver",
        &["this report relates to a message you sent with the following header fields:"],
    ),
    // lib/sisimai/lhost/mxlogic.rb
    (
        "mxlogic",
        &["this message was created automatically by mail delivery software."],
    ),
    // lhost/via-notes.go
    ("notes", &["------- failure reasons"]),
    // lib/sisimai/lhost/office365.rb
    (
        "office365",
        &[
            "delivery has failed to these recipients or groups:",
            "original message details",
            "rejected your message to the following e-mail addresses:",
            "rejected your message to the following email addresses:",
            "falha na entrega a estes destinat",
            "uw bericht kan niet worden bezorgd bij de volgende geadresseerden of groepen:",
        ],
    ),
    // lhost/via-opensmtpd.go
    ("opensmtpd", &["this is the mailer-daemon, please do not reply to this"]),
    // lib/sisimai/lhost/outlook.rb
    (
        "outlook",
        &["this is an automatically generated delivery status notification"],
    ),
    // lib/sisimai/lhost/powermta.rb
    ("powermta", &["hello, this is the mail server on"]),
    // lhost/via-qmail.go
    (
        "qmail",
        &[
            "hi. this is the qmail",
            "he/her is not",
            "unable to deliver your message to the following addresses",
            "su mensaje no pudo ser entregado",
            "sorry, we were unable to deliver your message to the following address",
            "this is the machine generated message from mail service",
            "this is the mail delivery agent at",
            "unable to deliver message to the following address",
            "unable to deliver your message to the following addresses",
            "unfortunately, your mail was not delivered to the following address:",
            "your mail message to the following address",
            "your message to the following addresses",
            "we're sorry.",
        ],
    ),
    // lib/sisimai/lhost/receivingses.rb
    ("receivingses", &["this message could not be delivered."]),
    // lib/sisimai/lhost/sendgrid.rb
    (
        "sendgrid",
        &["this is an automatically generated message from sendgrid."],
    ),
    // lhost/via-sendmail.go
    ("sendmail", &["----- transcript of session follows -----"]),
    // lib/sisimai/lhost/surfcontrol.rb
    ("surfcontrol", &["your message could not be sent."]),
    // lib/sisimai/lhost/userdefined.rb
    ("userdefined", &["----- transcript of session follows -----"]),
    // lhost/via-v5sendmail.go
    ("v5sendmail", &["----- transcript of session follows -----"]),
    // lhost/via-x1.go
    ("x1", &["the original message was received at"]),
    // lhost/via-x2.go
    ("x2", &["unable to deliver message to the following address"]),
    // lhost/via-x3.go
    (
        "x3",
        &["this is an automatically generated delivery status notification."],
    ),
    // lib/sisimai/lhost/x4.rb
    (
        "x4",
        &[
            "su mensaje no pudo ser entregado",
            "this is the machine generated message from mail service",
            "this is the mail delivery agent at",
            "unable to deliver message to the following address",
            "unfortunately, your mail was not delivered to the following address:",
            "your mail message to the following address",
            "your message to the following addresses",
            "we're sorry.",
        ],
    ),
    // lib/sisimai/lhost/x5.rb
    ("x5", &["content-type: message/delivery-status"]),
    // lhost/via-x6.go
    ("x6", &["we had trouble delivering your message. full details follow:"]),
    // lib/sisimai/lhost/yahoo.rb
    ("yahoo", &["sorry, we were unable to deliver your message"]),
    // lib/sisimai/lhost/yandex.rb
    ("yandex", &["this is the mail system at host yandex.ru."]),
    // lhost/via-zoho.go
    ("zoho", &["this message was created automatically by mail delivery"]),
];
