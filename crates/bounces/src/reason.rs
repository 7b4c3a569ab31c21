//! Sisimai's reasons, by name.

/// Why a message was not delivered (Sisimai's taxonomy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    AuthFailure,
    BadReputation,
    Blocked,
    ContentError,
    Delivered,
    ExceedLimit,
    Expired,
    FailedStartTls,
    Feedback,
    Filtered,
    HasMoved,
    HostUnknown,
    MailboxFull,
    MailerError,
    MesgTooBig,
    NetworkError,
    NoRelaying,
    NotAccept,
    NotCompliantRfc,
    OnHold,
    PolicyViolation,
    Rejected,
    RequirePtr,
    SecurityError,
    SpamDetected,
    Speeding,
    Suppressed,
    Suspend,
    SyntaxError,
    SystemError,
    SystemFull,
    TooManyConn,
    Undefined,
    UserUnknown,
    Vacation,
    VirusDetected,
}

impl Reason {
    pub const ALL: [Self; 36] = [
        Self::AuthFailure,
        Self::BadReputation,
        Self::Blocked,
        Self::ContentError,
        Self::Delivered,
        Self::ExceedLimit,
        Self::Expired,
        Self::FailedStartTls,
        Self::Feedback,
        Self::Filtered,
        Self::HasMoved,
        Self::HostUnknown,
        Self::MailboxFull,
        Self::MailerError,
        Self::MesgTooBig,
        Self::NetworkError,
        Self::NoRelaying,
        Self::NotAccept,
        Self::NotCompliantRfc,
        Self::OnHold,
        Self::PolicyViolation,
        Self::Rejected,
        Self::RequirePtr,
        Self::SecurityError,
        Self::SpamDetected,
        Self::Speeding,
        Self::Suppressed,
        Self::Suspend,
        Self::SyntaxError,
        Self::SystemError,
        Self::SystemFull,
        Self::TooManyConn,
        Self::Undefined,
        Self::UserUnknown,
        Self::Vacation,
        Self::VirusDetected,
    ];

    /// Sisimai's name: `userunknown`, `mailboxfull`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthFailure => "authfailure",
            Self::BadReputation => "badreputation",
            Self::Blocked => "blocked",
            Self::ContentError => "contenterror",
            Self::Delivered => "delivered",
            Self::ExceedLimit => "exceedlimit",
            Self::Expired => "expired",
            Self::FailedStartTls => "failedstarttls",
            Self::Feedback => "feedback",
            Self::Filtered => "filtered",
            Self::HasMoved => "hasmoved",
            Self::HostUnknown => "hostunknown",
            Self::MailboxFull => "mailboxfull",
            Self::MailerError => "mailererror",
            Self::MesgTooBig => "mesgtoobig",
            Self::NetworkError => "networkerror",
            Self::NoRelaying => "norelaying",
            Self::NotAccept => "notaccept",
            Self::NotCompliantRfc => "notcompliantrfc",
            Self::OnHold => "onhold",
            Self::PolicyViolation => "policyviolation",
            Self::Rejected => "rejected",
            Self::RequirePtr => "requireptr",
            Self::SecurityError => "securityerror",
            Self::SpamDetected => "spamdetected",
            Self::Speeding => "speeding",
            Self::Suppressed => "suppressed",
            Self::Suspend => "suspend",
            Self::SyntaxError => "syntaxerror",
            Self::SystemError => "systemerror",
            Self::SystemFull => "systemfull",
            Self::TooManyConn => "toomanyconn",
            Self::Undefined => "undefined",
            Self::UserUnknown => "userunknown",
            Self::Vacation => "vacation",
            Self::VirusDetected => "virusdetected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("nosuchreason"), None);
    }
}
