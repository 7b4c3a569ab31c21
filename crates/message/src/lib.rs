//! A message as Herald edits it: the header block as raw fields (so every
//! byte it does not change stays exactly as the sender wrote it, which DKIM
//! signatures depend on), plus the edits the sending path makes — trace and
//! identity headers added when missing, Herald's own `X-Herald-*` control
//! headers read and removed, headers prepended — and the building of a MIME
//! message from the parts an API caller gives.
//!
//! L0: bytes in, bytes out.

mod authors;
mod build;
mod headers;
pub mod lint;
pub mod mbox;
mod parts;
pub mod personal;
pub mod scan;
mod template;
mod text;

pub use authors::{AUTHOR_FIELDS, Authors, authors, mailbox};
pub use build::{Attachment, Draft, Mailbox, build};
pub use headers::{Controls, HeaderBlock, ensure_identity};
pub use parts::rewrite_html_parts;
pub use template::{Context as TemplateContext, escape_html, has_placeholders, substitute};
pub use text::html_to_text;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message has no header block")]
    NoHeaders,
    #[error("invalid message: {0}")]
    Invalid(String),
}
