//! The SMTP envelope: who a message is from and to, as the transport sees
//! it (RFC 5321 §2.3.1), apart from the headers inside the message.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AccountId, EmailAddress};

/// `MAIL FROM`: an address, or the null reverse-path `<>` of bounces and
/// other notifications that must never be answered (RFC 5321 §4.5.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReversePath {
    Null,
    Address(EmailAddress),
}

impl std::fmt::Display for ReversePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => Ok(()),
            Self::Address(a) => write!(f, "{a}"),
        }
    }
}

/// Everything Herald knows about a message besides its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub sender: ReversePath,
    /// In the order given; each recipient is tracked on its own.
    pub recipients: Vec<EmailAddress>,
    /// The account the message is sent for.
    pub account: AccountId,
    /// The client that handed the message over.
    pub client_ip: IpAddr,
    pub received_at: OffsetDateTime,
    /// The account's stream: `transactional`, or a bulk stream such as
    /// `newsletter`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Labels the sender chose; they come back in every event.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Key-value pairs the sender chose; they come back in every event.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
}

/// Every message belongs to a stream; this one unless another is named.
pub const DEFAULT_STREAM: &str = "transactional";

/// A stream name: 1–32 of a-z, 0-9, `-`, `_`.
pub fn is_stream_name(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn default_stream() -> String {
    DEFAULT_STREAM.to_owned()
}

impl Envelope {
    /// Whether the stream is bulk mail (List-Unsubscribe, engagement
    /// tracking): every stream but the transactional one.
    pub fn is_bulk(&self) -> bool {
        self.stream != DEFAULT_STREAM
    }
}
