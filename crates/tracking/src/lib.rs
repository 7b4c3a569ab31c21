//! Everything Herald puts into a message so it can learn what happened to
//! it later: the signed tokens of tracking links, the open pixel and the
//! unsubscribe links, the VERP return path that maps a bounce back to its
//! message and recipient, and the judgement of whether an open or a click
//! came from a person or a machine.
//!
//! Main design decision: tokens carry their own data and are signed, not
//! stored. The tracking endpoints answer from the token alone (no database
//! read on the hot path), and a token nobody signed — or one changed by a
//! single bit — decodes to nothing, so no one can forge an event or turn a
//! click link into an open redirect.
//!
//! L0: pure functions over bytes and strings, no I/O.

mod keys;
mod machine;
mod rewrite;
mod token;
mod verp;

pub use keys::Keyring;
pub use machine::{MachineRules, Request, is_machine};
pub use rewrite::{ClickUrl, Rewritten, TrackingLinks, rewrite_html};
pub use token::{Purpose, TrackToken};
pub use verp::{VERP_PREFIX, VerpToken};
