//! The store suite on every backend: SQLite always, PostgreSQL when
//! `HERALD_TEST_POSTGRES_URL` is set (`.ci/run` sets it).

use herald_testkit::{TempStore, postgres_url, store_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_on_sqlite() -> anyhow::Result<()> {
    store_suite::run("sqlite", || async {
        let t = TempStore::sqlite()?;
        let s = t.open().await?;
        Ok((t, s))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_on_postgres() -> anyhow::Result<()> {
    let base = postgres_url();
    store_suite::run("postgres", || async {
        let t = TempStore::postgres(&base).await?;
        let s = t.open().await?;
        Ok((t, s))
    })
    .await
}
