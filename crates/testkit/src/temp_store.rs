//! Throw-away stores.

use std::sync::Arc;

use herald_store::Store;

/// Names the PostgreSQL server (and database) that tests use.
pub const POSTGRES_ENV: &str = "HERALD_TEST_POSTGRES_URL";
/// The server every machine of this project runs (trust auth, database
/// `test`), used when the variable is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test PostgreSQL URL: the variable's, or the machine's server. A
/// PostgreSQL test whose server is missing fails; it never skips.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

/// A store that disappears with the value: a SQLite file in a temp dir, or a
/// PostgreSQL schema that is dropped on `Drop`.
#[derive(Debug)]
pub struct TempStore {
    /// The URL to hand to `herald-store-sql::open` or to `[storage] url`.
    pub url: String,
    dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TempStore {
    /// A fresh SQLite store URL in its own temp dir (the file is made on open).
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        Ok(Self {
            url,
            dir: Some(dir),
            schema: None,
        })
    }

    /// A fresh, empty schema on the server `base` names; the URL sets
    /// `search_path` to it, so migrations and queries stay inside.
    pub async fn postgres(base: &str) -> anyhow::Result<Self> {
        let schema = format!("herald_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(base).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Ok(Self {
            url,
            dir: None,
            schema: Some((base.to_owned(), schema)),
        })
    }

    /// Opens (and migrates) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(herald_store_sql::open(&self.url).await?)
    }

    /// The folder of a SQLite store (for a data dir beside it).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop may run inside a runtime, which cannot block on another
        // future; a plain thread with its own small runtime can.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
        drop(done);
    }
}
