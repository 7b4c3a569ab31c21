//! The DNS linter.
