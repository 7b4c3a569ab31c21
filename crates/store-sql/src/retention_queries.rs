//! `herald_store::RetentionStore`, as a macro instantiated per backend
//! beside `impl_sql_store!`.

macro_rules! impl_retention_store {
    ($store:ty) => {
        /// Events deleted per statement.
        const PRUNE_BATCH: i64 = 5000;

        #[async_trait]
        impl herald_store::RetentionStore for $store {
            async fn prune(&self, what: herald_store::Prunable, before: time::OffsetDateTime) -> StoreResult<u64> {
                use herald_store::Prunable;
                let ms = time_ms::to_ms(before);
                let one = |sql: &'static str| async move {
                    sqlx::query(sql)
                        .bind(ms)
                        .execute(&self.pool)
                        .await
                        .map(|d| d.rows_affected())
                        .map_err(error::plain)
                };
                match what {
                    Prunable::Events => {
                        // Event ids are `evt_` and a uuid v7, whose first 12
                        // hex digits are its creation's Unix milliseconds:
                        // the primary key orders events by time.
                        let cutoff = format!("evt_{:012x}{}", ms.max(0), "0".repeat(20));
                        let mut total = 0;
                        loop {
                            let done = sqlx::query(
                                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT $2)",
                            )
                            .bind(&cutoff)
                            .bind(PRUNE_BATCH)
                            .execute(&self.pool)
                            .await
                            .map_err(error::plain)?
                            .rows_affected();
                            total += done;
                            if done < PRUNE_BATCH as u64 {
                                return Ok(total);
                            }
                        }
                    }
                    Prunable::MessageIndex => one("DELETE FROM message_ids WHERE created_at < $1").await,
                    Prunable::Reports => one("DELETE FROM dmarc_reports WHERE end_at < $1").await,
                    Prunable::BrokenReports => one("DELETE FROM dmarc_broken_reports WHERE received_at < $1").await,
                }
            }
        }
    };
}
