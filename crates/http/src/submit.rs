//! Handing a message to the mail path: the vocabulary lives in
//! `herald-types` (shared with the SMTP side); acceptance itself is
//! `herald-intake`'s, reached through the [`Submit`] trait.

pub use herald_types::{Accepted, Outcome, Submit, SubmitError};
