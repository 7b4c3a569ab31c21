//! Test support for Herald's own tests; never a dependency of the product.
//!
//! - [`TempStore`]: a throw-away store on SQLite (always) or PostgreSQL (when
//!   `HERALD_TEST_POSTGRES_URL` is set), each in its own file or schema so
//!   tests and CI runs never see each other's rows.
//! - [`DnsServer`]: a real authoritative DNS server on loopback serving
//!   zones from a table ([`Zones`]), for `[dns] nameservers` in tests.
//! - [`SmtpSink`]: a scripted SMTP server that answers per recipient and
//!   phase (accept, 4xx, 5xx, disconnect, hang) and records what it accepts.
//! - [`store_suite`]: the one behaviour suite every store backend must pass.
//! - [`HeraldProcess`]: the real `herald` binary started on port 0, with its
//!   log captured and the bound addresses read from it; [`Api`] to talk to it.

mod api;
mod dashboard;
mod dns_server;
mod harness;
mod pki;
mod process;
mod python_csv;
mod receiver;
mod smtp_sink;
mod spamd;
pub mod store_suite;
pub mod synthetic;
mod temp_store;

pub use api::{Answer, Api, Call};
pub use dashboard::{Dashboard, PageAnswer};
pub use dns_server::{DnsServer, Zones};
pub use harness::{Harness, Options, WAIT};
pub use pki::{HttpsServer, Identity, Page, TestCa};
pub use process::{HeraldProcess, wait_for};
pub use python_csv::python_csv;
pub use receiver::{Mode, Post, Receiver};
pub use smtp_sink::{Behaviour, Phase, Rule, SinkMessage, SinkOptions, SmtpSink};
pub use spamd::Spamd;
pub use temp_store::{DEFAULT_POSTGRES_URL, POSTGRES_ENV, TempStore, postgres_url};
