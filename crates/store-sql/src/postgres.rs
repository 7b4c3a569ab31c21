//! PostgreSQL: shared state for several Herald nodes.
//!
//! Migrations take sqlx's advisory lock, so nodes starting together migrate
//! once. A `search_path` given in the URL (`?options=-c search_path=x`) is
//! honoured, which is how tests give each run its own schema.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

const MAX_CONNECTIONS: u32 = 16;
/// A request waits this long for a free connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://…` and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(error::plain)?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(error::migrate)?;
        tracing::debug!("postgres store open");
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_sql_store!(PostgresStore, sqlx::postgres::PgRow, "postgres");
impl_retention_store!(PostgresStore);
impl_report_store!(PostgresStore, sqlx::postgres::PgRow);
impl_monitor_store!(PostgresStore, sqlx::postgres::PgRow);
impl_user_store!(PostgresStore, sqlx::postgres::PgRow);
