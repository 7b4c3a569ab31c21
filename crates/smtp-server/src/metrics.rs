//! The SMTP listeners' metrics. Every label value comes from a fixed set
//! written here (the listener's kind, a command's name, a reason derived
//! from Herald's own reply codes); nothing a client sends becomes a label.
//!
//! - `herald_smtp_sessions_total{listener}` and `herald_smtp_sessions_active{listener}`
//! - `herald_smtp_commands_total{listener,command,outcome}`: each answer,
//!   `outcome` one of `accepted` (2xx/3xx), `deferred` (4xx), `refused` (5xx)
//! - `herald_smtp_refusals_total{listener,command,reason}`: each 4xx/5xx by
//!   why, read from its enhanced status code
//! - `herald_smtp_auth_failures_total{listener,reason}`
//! - `herald_smtp_closed_total{listener,reason}`: sessions ended or refused by
//!   the server (too many connections or errors, time-out, TLS failure)
//! - `herald_smtp_messages_accepted_total{listener}`,
//!   `herald_smtp_recipients_accepted_total{listener}`,
//!   `herald_smtp_message_bytes_total{listener}`: what was taken (`250`
//!   after the message was durable)

use smtp_proto::Request;

use crate::{ListenerKind, Reply};

/// A command's label.
pub fn command_name(req: &Request<String>) -> &'static str {
    match req {
        Request::Ehlo { .. } => "ehlo",
        Request::Helo { .. } | Request::Lhlo { .. } => "helo",
        Request::Mail { .. } => "mail",
        Request::Rcpt { .. } => "rcpt",
        Request::Data => "data",
        Request::Bdat { .. } => "bdat",
        Request::Auth { .. } => "auth",
        Request::StartTls => "starttls",
        Request::Rset => "rset",
        Request::Noop { .. } => "noop",
        Request::Quit => "quit",
        Request::Vrfy { .. } => "vrfy",
        Request::Expn { .. } => "expn",
        Request::Help { .. } => "help",
        _ => "other",
    }
}

/// Why a reply refused, from its enhanced status code (RFC 3463).
pub fn refusal_reason(reply: &Reply) -> &'static str {
    let [_, subject, detail] = reply.enhanced;
    match (subject, detail) {
        (1, 1) => "unknown_recipient",
        (1, 3 | 7) => "bad_address",
        (1, _) => "address",
        (2, _) => "mailbox",
        (3, 4) => "too_big",
        (4, 2) => "timeout",
        (3 | 4, _) => "unavailable",
        (5, 3) => "too_many_recipients",
        (5, _) => "protocol",
        (6, _) => "content",
        (7, 1) => "policy",
        (7, 8) => "auth_failed",
        (7, 11) => "tls_required",
        (7, 0) => "throttled",
        (7, _) => "security",
        _ => "other",
    }
}

fn outcome(code: u16) -> &'static str {
    match code {
        ..400 => "accepted",
        400..500 => "deferred",
        _ => "refused",
    }
}

/// One answer to `command`.
pub fn answered(kind: ListenerKind, command: &'static str, reply: &Reply) {
    let listener = kind.as_str();
    metrics::counter!("herald_smtp_commands_total", "listener" => listener, "command" => command, "outcome" => outcome(reply.code))
        .increment(1);
    if reply.code >= 400 {
        metrics::counter!("herald_smtp_refusals_total", "listener" => listener, "command" => command, "reason" => refusal_reason(reply))
            .increment(1);
    }
}

/// A session the server ended (or a connection it refused), and why.
pub fn closed(kind: ListenerKind, reason: &'static str) {
    metrics::counter!("herald_smtp_closed_total", "listener" => kind.as_str(), "reason" => reason).increment(1);
}

pub fn auth_failed(kind: ListenerKind, reason: &'static str) {
    metrics::counter!("herald_smtp_auth_failures_total", "listener" => kind.as_str(), "reason" => reason).increment(1);
}

/// A message taken: its size without the Received field Herald added.
pub fn accepted(kind: ListenerKind, bytes: usize, recipients: usize) {
    let listener = kind.as_str();
    metrics::counter!("herald_smtp_messages_accepted_total", "listener" => listener).increment(1);
    metrics::counter!("herald_smtp_recipients_accepted_total", "listener" => listener).increment(recipients as u64);
    metrics::counter!("herald_smtp_message_bytes_total", "listener" => listener).increment(bytes as u64);
}

/// Counts a session while it lives.
pub struct Open(ListenerKind);

impl Open {
    pub fn session(kind: ListenerKind) -> Self {
        metrics::counter!("herald_smtp_sessions_total", "listener" => kind.as_str()).increment(1);
        metrics::gauge!("herald_smtp_sessions_active", "listener" => kind.as_str()).increment(1.0);
        Self(kind)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!("herald_smtp_sessions_active", "listener" => self.0.as_str()).decrement(1.0);
    }
}
