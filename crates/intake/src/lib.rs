//! Intake: the policy of taking mail, whoever hands it over — an SMTP
//! session, the send API, the inbound MX, a forward — and of preparing each
//! message for the wire.
//!
//! Main design decision: one place decides who may send as which name. The
//! [`Acceptor`] is the only way into the spool; the SMTP listeners reach it
//! through [`SmtpIngress`] (the smtp-server `Ingress`), the send API through
//! the `Submit` trait, the inbound MX's forwards through
//! [`Acceptor::forward`]. Preparation ([`HeraldPreparer`]) chooses DKIM
//! keys and return paths from the same facts. The binary only wires these.
//!
//! Must never: spool a message whose authors (every address of every
//! `From:` and `Sender:`) the account may not use; sign mail with a key
//! because of a header a stranger wrote; answer `250` to the inbound MX
//! before what the message told is stored.

mod accept;
pub mod alert_mail;
mod forward;
mod inbound;
mod ingress;
mod prepare;
mod quota;
mod senders;
pub mod spamd;

pub use accept::{Acceptor, Deliver};
pub use forward::{FORWARDING_LOCAL, ForwardLimit};
pub use inbound::{
    BOUNCES_LOCAL, DEFAULT_FORWARDS_PER_HOUR, DMARC_LOCALS, FEEDBACK_LOCAL, Inbound, InboundSettings, Route,
};
pub use ingress::SmtpIngress;
pub use prepare::HeraldPreparer;
pub use senders::{AccountFacts, SenderPolicy};
