//! Prefixed, time-ordered ids.
//!
//! An id is `<prefix>_<uuid v7 in 32 hex digits>`: time-ordered so that
//! B-tree indexes stay append-mostly, prefixed so that an id read in a log or
//! pasted into the wrong endpoint is recognised for what it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An id string that does not have the expected prefix and shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: expected {prefix}_ followed by 32 hex digits")]
pub struct IdError {
    kind: &'static str,
    prefix: &'static str,
    value: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id's prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id, ordered after every id made earlier by this process.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Checks the shape of an id read from outside (a URL, a database row).
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = s
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
                if ok {
                    Ok(Self(s.to_ascii_lowercase()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, value: s.to_owned() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

prefixed_id!(
    /// An account, master or sub.
    AccountId, "acc", "account"
);
prefixed_id!(
    /// An API key. Not the key itself: the key's secret is never stored.
    ApiKeyId, "key", "API key"
);
prefixed_id!(
    /// An SMTP credential (username and password hash).
    SmtpCredentialId, "cred", "SMTP credential"
);

prefixed_id!(
    /// A message accepted into the spool.
    MessageId, "msg", "message"
);
prefixed_id!(
    /// One event in a message's life.
    EventId, "evt", "event"
);
prefixed_id!(
    /// A sending domain.
    DomainId, "dom", "domain"
);
prefixed_id!(
    /// A DKIM key of a domain.
    DkimKeyId, "dk", "DKIM key"
);
prefixed_id!(
    /// A postback URL of an account.
    WebhookId, "whk", "webhook"
);
prefixed_id!(
    /// A condition an account is told about (an alert).
    AlertId, "alr", "alert"
);
prefixed_id!(
    /// A person who signs in to the dashboard.
    UserId, "usr", "user"
);

impl MessageId {
    /// The 16 bytes of the UUID, for compact binary records.
    pub fn to_bytes(&self) -> [u8; 16] {
        let hex = &self.0[Self::PREFIX.len() + 1..];
        uuid::Uuid::parse_str(hex).map(|u| *u.as_bytes()).unwrap_or_default()
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(format!("{}_{}", Self::PREFIX, uuid::Uuid::from_bytes(bytes).simple()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_are_time_ordered() {
        let a = AccountId::generate();
        let b = AccountId::generate();
        assert!(a.as_str().starts_with("acc_"));
        assert_eq!(a.as_str().len(), 4 + 32);
        assert_eq!(AccountId::parse(a.as_str()), Ok(a.clone()));
        assert!(a < b, "v7 ids sort by creation: {a} !< {b}");
    }

    #[test]
    fn ids_of_the_wrong_kind_or_shape_are_refused() {
        let key = ApiKeyId::generate();
        assert!(AccountId::parse(key.as_str()).is_err());
        assert!(AccountId::parse("acc_").is_err());
        assert!(AccountId::parse("acc_0123456789abcdef0123456789abcdeg").is_err());
        let err = AccountId::parse("main").unwrap_err().to_string();
        assert!(err.contains("acc_"), "{err}");
    }

    #[test]
    fn message_ids_round_trip_through_bytes() {
        let id = MessageId::generate();
        assert_eq!(MessageId::from_bytes(id.to_bytes()), id);
    }

    #[test]
    fn ids_serialise_as_plain_strings() {
        let id = ApiKeyId::parse("key_0190f0b8a1c27d3e8f00112233445566").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"key_0190f0b8a1c27d3e8f00112233445566\"");
        let bad: Result<ApiKeyId, _> = serde_json::from_str("\"acc_0190f0b8a1c27d3e8f00112233445566\"");
        assert!(bad.is_err(), "an account id must not deserialise as a key id");
    }
}
