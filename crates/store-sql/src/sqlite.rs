//! SQLite: the embedded default, one file in the data dir.
//!
//! WAL so that readers (the API) never wait for the writer, `synchronous =
//! FULL` so a committed account or key survives power loss, `busy_timeout` so
//! the CLI can write while `herald serve` runs on the same file.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// How long a writer waits for another writer (another process included)
/// before the call fails as `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL allows many readers beside the one writer.
const MAX_CONNECTIONS: u32 = 8;

/// A store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite://PATH`, creating the file and its parent folder if
    /// needed, and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad SQLite URL {url:?}: {e}")))?;
        if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // A connection to a local file does not go stale: no ping before
        // each use (a round trip to the connection's thread per query).
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(error::plain)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(error::migrate)?;
        tracing::debug!(url, "sqlite store open");
        Ok(Self { pool })
    }

    /// Closes the pool, checkpointing the WAL into the main file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_sql_store!(SqliteStore, sqlx::sqlite::SqliteRow, "sqlite");
impl_retention_store!(SqliteStore);
impl_report_store!(SqliteStore, sqlx::sqlite::SqliteRow);
impl_monitor_store!(SqliteStore, sqlx::sqlite::SqliteRow);
impl_user_store!(SqliteStore, sqlx::sqlite::SqliteRow);
