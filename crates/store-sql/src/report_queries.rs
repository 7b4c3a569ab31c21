//! The deliverability center's reports (`herald_store::ReportStore`), as a
//! macro instantiated per backend beside `impl_sql_store!`, whose helpers
//! (`col`, `error`, `time_ms`) it uses.

macro_rules! report_select {
    () => {
        "SELECT id, kind, org_name, report_id, domain, begin_at, end_at, received_at, origin, source_name, \
         record_count, message_count"
    };
}

macro_rules! impl_report_store {
    ($store:ty, $row:ty) => {
        use herald_store::{
            BrokenReport, NewBrokenReport, NewReport, ReportFilter, ReportKind, ReportStore, Stored, StoredReport,
        };

        fn count(row: &$row, name: &str) -> StoreResult<u64> {
            let n: i64 = col(row, name)?;
            u64::try_from(n).map_err(|e| error::corrupt(name, e))
        }

        fn stored_report_from(row: &$row, with_body: bool) -> StoreResult<StoredReport> {
            Ok(StoredReport {
                id: col(row, "id")?,
                kind: parsed(row, "kind", ReportKind::parse)?,
                org_name: col(row, "org_name")?,
                report_id: col(row, "report_id")?,
                domain: col(row, "domain")?,
                begin: time_ms::from_ms(col(row, "begin_at")?),
                end: time_ms::from_ms(col(row, "end_at")?),
                received_at: time_ms::from_ms(col(row, "received_at")?),
                origin: col(row, "origin")?,
                source_name: col(row, "source_name")?,
                record_count: count(row, "record_count")?,
                message_count: count(row, "message_count")?,
                body: if with_body {
                    Some(col::<Vec<u8>>(row, "body")?)
                } else {
                    None
                },
            })
        }

        fn broken_report_from(row: &$row) -> StoreResult<BrokenReport> {
            Ok(BrokenReport {
                id: col(row, "id")?,
                digest: col(row, "digest")?,
                received_at: time_ms::from_ms(col(row, "received_at")?),
                origin: col(row, "origin")?,
                source_name: col(row, "source_name")?,
                error: col(row, "error")?,
                size: count(row, "size")?,
            })
        }

        fn as_count(n: u64) -> i64 {
            i64::try_from(n).unwrap_or(i64::MAX)
        }

        #[async_trait]
        impl ReportStore for $store {
            async fn insert_reports(&self, reports: &[NewReport]) -> StoreResult<Vec<Stored>> {
                // One statement a report: a report's body can be megabytes,
                // and a batch is rarely more than a few hundred reports.
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let mut outcomes = Vec::with_capacity(reports.len());
                for r in reports {
                    let row = sqlx::query(
                        "INSERT INTO dmarc_reports (kind, org_name, report_id, domain, begin_at, end_at, received_at, \
                         origin, source_name, record_count, message_count, body) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (kind, org_name, report_id, domain) DO NOTHING RETURNING id",
                    )
                    .bind(r.kind.as_str())
                    .bind(&r.org_name)
                    .bind(&r.report_id)
                    .bind(&r.domain)
                    .bind(time_ms::to_ms(r.begin))
                    .bind(time_ms::to_ms(r.end))
                    .bind(time_ms::to_ms(r.received_at))
                    .bind(&r.origin)
                    .bind(&r.source_name)
                    .bind(as_count(r.record_count))
                    .bind(as_count(r.message_count))
                    .bind(&r.body)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                    let outcome = match row {
                        Some(row) => Stored::New(col(&row, "id")?),
                        None => {
                            let row = sqlx::query(
                                "SELECT id FROM dmarc_reports \
                                 WHERE kind = $1 AND org_name = $2 AND report_id = $3 AND domain = $4",
                            )
                            .bind(r.kind.as_str())
                            .bind(&r.org_name)
                            .bind(&r.report_id)
                            .bind(&r.domain)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(error::plain)?;
                            Stored::Duplicate(col(&row, "id")?)
                        }
                    };
                    outcomes.push(outcome);
                }
                tx.commit().await.map_err(error::plain)?;
                Ok(outcomes)
            }

            async fn insert_broken_report(&self, r: &NewBrokenReport) -> StoreResult<Stored> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let row = sqlx::query(
                    "INSERT INTO dmarc_broken_reports (digest, received_at, origin, source_name, error, size, raw) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO NOTHING RETURNING id",
                )
                .bind(&r.digest)
                .bind(time_ms::to_ms(r.received_at))
                .bind(&r.origin)
                .bind(&r.source_name)
                .bind(&r.error)
                .bind(as_count(r.raw.len() as u64))
                .bind(&r.raw)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::plain)?;
                let outcome = match row {
                    Some(row) => Stored::New(col(&row, "id")?),
                    None => {
                        let row = sqlx::query("SELECT id FROM dmarc_broken_reports WHERE digest = $1")
                            .bind(&r.digest)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(error::plain)?;
                        Stored::Duplicate(col(&row, "id")?)
                    }
                };
                tx.commit().await.map_err(error::plain)?;
                Ok(outcome)
            }

            async fn list_reports(&self, f: &ReportFilter, limit: u32) -> StoreResult<Vec<StoredReport>> {
                let mut q = sqlx::QueryBuilder::new(report_select!());
                q.push(if f.with_body { ", body" } else { "" });
                q.push(" FROM dmarc_reports WHERE id > ")
                    .push_bind(f.after.unwrap_or(0));
                if let Some(kind) = f.kind {
                    q.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(domain) = &f.domain {
                    q.push(" AND domain = ").push_bind(domain.clone());
                }
                if let Some(since) = f.since {
                    q.push(" AND end_at >= ").push_bind(time_ms::to_ms(since));
                }
                if let Some(until) = f.until {
                    q.push(" AND begin_at < ").push_bind(time_ms::to_ms(until));
                }
                q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows = q.build().fetch_all(&self.pool).await.map_err(error::plain)?;
                rows.iter().map(|r| stored_report_from(r, f.with_body)).collect()
            }

            async fn list_broken_reports(&self, after: i64, limit: u32) -> StoreResult<Vec<BrokenReport>> {
                let rows = sqlx::query(
                    "SELECT id, digest, received_at, origin, source_name, error, size FROM dmarc_broken_reports \
                     WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::plain)?;
                rows.iter().map(broken_report_from).collect()
            }

            async fn broken_report_bytes(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
                let row = sqlx::query("SELECT raw FROM dmarc_broken_reports WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.map(|r| col::<Vec<u8>>(&r, "raw")).transpose()
            }
        }
    };
}
