//! Herald's SMTP server: listeners and sessions for submission (STARTTLS),
//! implicit TLS and the inbound MX, on smtp-proto's parser.
//!
//! Main design decision: this crate speaks SMTP and nothing else. Every
//! question of policy — are these credentials good, may this client relay,
//! may this account send from this address, is this recipient ours, and
//! finally "take this message" — goes to the [`Ingress`] trait, which the
//! binary implements over accounts and the spool. Sessions are generic over
//! the stream, so tests drive them with bytes in memory and assert exact
//! replies.
//!
//! Must never: answer `250` to DATA before [`Ingress::accept`] returned
//! (that is the durability point); process bytes a client pipelined after
//! STARTTLS (they were sent in clear and could be an injection); let one
//! client hold more than its share of connections or guess passwords fast.

mod limits;
mod listener;
mod metrics;
mod reply;
mod sasl;
mod session;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use herald_types::{AccountId, EmailAddress, MessageId, ReversePath};

pub use limits::{AuthThrottle, ConnectionLimiter};
pub use listener::{Listener, serve};
pub use reply::Reply;
pub use session::{SessionContext, run_session};

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Port 587: clients authenticate (after STARTTLS) or relay from a
    /// trusted network.
    Submission,
    /// Port 465: submission inside TLS from the first byte.
    SubmissionTls,
    /// Port 25: mail *to* Herald (bounces, reports, replies); no AUTH.
    Inbound,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submission => "smtp-submission",
            Self::SubmissionTls => "smtp-submission-tls",
            Self::Inbound => "smtp-inbound",
        }
    }
}

/// The account a session sends for: authenticated, or bound to the trusted
/// network the client connects from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    /// For logs and the Received header.
    pub name: String,
}

/// Why AUTH failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// Unknown user, wrong password, revoked credential: `535 5.7.8`.
    Invalid,
    /// Right credentials, suspended account: `535 5.7.8` with its reason.
    Suspended,
    /// The check could not be made now: `454 4.7.0`.
    Unavailable,
}

/// A message the session has received in full.
#[derive(Debug)]
pub struct Incoming {
    pub kind: ListenerKind,
    /// `None` on the inbound listener.
    pub principal: Option<Principal>,
    pub sender: ReversePath,
    pub recipients: Vec<EmailAddress>,
    pub client_ip: IpAddr,
    pub received_at: time::OffsetDateTime,
    /// The message as received, with Herald's Received header on top.
    pub body: Vec<u8>,
}

/// The policy and storage behind the sessions. Called from many sessions at
/// once; each call may wait on storage.
#[async_trait]
pub trait Ingress: Send + Sync {
    /// SMTP AUTH: the account these credentials belong to.
    async fn authenticate(&self, username: &str, password: &str) -> Result<Principal, AuthRefusal>;

    /// The account a client at `ip` relays as without AUTH (a configured
    /// trusted network), if any.
    async fn relay_principal(&self, ip: IpAddr) -> Option<Principal>;

    /// Whether `principal` may send with this envelope sender; the refusal
    /// is the reply to give (`550 5.7.1` naming the sender).
    async fn check_sender(&self, principal: &Principal, sender: &ReversePath) -> Result<(), Reply>;

    /// Whether to take this recipient. On the inbound listener
    /// (`principal` is `None`) only addresses Herald manages are taken.
    async fn check_recipient(
        &self,
        kind: ListenerKind,
        principal: Option<&Principal>,
        rcpt: &EmailAddress,
    ) -> Result<(), Reply>;

    /// Takes the message. Returns once it is durable; only then does the
    /// client hear `250`. A refusal is the reply to give (`451 4.3.0` when
    /// storage is failing).
    async fn accept(&self, message: Incoming) -> Result<MessageId, Reply>;
}

/// How sessions behave: limits and time-outs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// EHLO name and banner.
    pub hostname: String,
    /// Largest message accepted, in bytes (advertised with SIZE).
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Errors (refused commands) before the session is closed.
    pub max_errors: u32,
    /// RFC 5321 §4.5.3.2: how long to wait for a command.
    pub command_timeout: Duration,
    /// How long to wait for each part of a message's content.
    pub data_timeout: Duration,
    /// Allow AUTH on the submission port before STARTTLS (off: passwords
    /// never cross the network in clear).
    pub allow_auth_without_tls: bool,
    /// Delay before answering a failed AUTH, slowing guessing further.
    pub auth_failure_delay: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            hostname: "localhost".to_owned(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 1000,
            max_errors: 10,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            allow_auth_without_tls: false,
            auth_failure_delay: Duration::from_millis(500),
        }
    }
}

/// Who is on the other end of a session.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}
