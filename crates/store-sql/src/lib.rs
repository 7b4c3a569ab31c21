//! The SQL backends of `herald-store`: SQLite (the embedded default) and
//! PostgreSQL (several nodes sharing one database), both on sqlx.
//!
//! Main design decision: one body of SQL for both. Queries use `$n`
//! placeholders, which both drivers bind by number, and portable types only
//! (TEXT, 64-bit integers; times as unix milliseconds), so the trait impls are
//! written once in [`queries`] as a macro and instantiated per backend. Each
//! backend keeps its own migrations (`migrations/sqlite`, `migrations/postgres`)
//! because DDL differs and will differ more; a migration is never edited once
//! landed. Where a backend needs its own SQL later (bulk event inserts, LISTEN),
//! it goes in that backend's module.
//!
//! Must never: log or store a secret in clear (the rows hold argon2 hashes), or
//! hold a transaction open across an await on anything but the database.

#[macro_use]
mod queries;
#[macro_use]
mod monitor_queries;
#[macro_use]
mod report_queries;
#[macro_use]
mod retention_queries;
#[macro_use]
mod user_queries;
mod error;
mod postgres;
mod sqlite;
mod time_ms;

use std::sync::Arc;

use herald_store::{Store, StoreError, StoreResult};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The backend a storage URL names, or `None` if it is neither.
pub fn backend_of(url: &str) -> Option<&'static str> {
    if url.starts_with("sqlite:") {
        Some("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some("postgres")
    } else {
        None
    }
}

/// Opens (creating if needed) and migrates the store a URL names.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    match backend_of(url) {
        Some("sqlite") => Ok(Arc::new(SqliteStore::open(url).await?)),
        Some(_) => Ok(Arc::new(PostgresStore::open(url).await?)),
        None => Err(StoreError::Backend(format!(
            "unsupported storage URL {url:?}: expected sqlite://PATH or postgres://…"
        ))),
    }
}
