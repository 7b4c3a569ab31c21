//! Dashboard users and sessions (`herald_store::UserStore`), as a macro
//! instantiated per backend beside `impl_sql_store!`, whose helpers (`col`,
//! `parsed`, `opt_time`, `error`, `time_ms`) it uses.

macro_rules! user_select {
    () => {
        "SELECT id, account_id, email, hash, operator, created_at, failed_logins, locked_until, last_login_at \
         FROM users"
    };
}

macro_rules! impl_user_store {
    ($store:ty, $row:ty) => {
        use herald_store::{NewUser, Session, User, UserStore};
        use herald_types::UserId;

        const NEW_USER: Context = Context {
            unique: "a user with this e-mail address already exists",
            foreign_key: ForeignKey::Missing("account"),
        };
        const NEW_SESSION: Context = Context {
            unique: "session already exists",
            foreign_key: ForeignKey::Missing("user"),
        };

        fn user_from(row: &$row) -> StoreResult<User> {
            Ok(User {
                id: parsed(row, "id", UserId::parse)?,
                account: parsed(row, "account_id", AccountId::parse)?,
                email: col(row, "email")?,
                hash: col(row, "hash")?,
                operator: col::<i64>(row, "operator")? != 0,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                failed_logins: u32::try_from(col::<i64>(row, "failed_logins")?).unwrap_or(u32::MAX),
                locked_until: opt_time(row, "locked_until")?,
                last_login_at: opt_time(row, "last_login_at")?,
            })
        }

        fn session_from(row: &$row) -> StoreResult<Session> {
            Ok(Session {
                token_hash: col(row, "token_hash")?,
                user: parsed(row, "user_id", UserId::parse)?,
                acting: parsed(row, "account_id", AccountId::parse)?,
                created_at: time_ms::from_ms(col(row, "created_at")?),
                last_seen_at: time_ms::from_ms(col(row, "last_seen_at")?),
            })
        }

        #[async_trait]
        impl UserStore for $store {
            async fn insert_user(&self, new: NewUser) -> StoreResult<User> {
                sqlx::query(
                    "INSERT INTO users (id, account_id, email, hash, operator, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(new.id.as_str())
                .bind(new.account.as_str())
                .bind(&new.email)
                .bind(&new.hash)
                .bind(i64::from(new.operator))
                .bind(time_ms::to_ms(time_ms::now()))
                .execute(&self.pool)
                .await
                .map_err(|e| error::map(e, NEW_USER))?;
                self.user_by_id(&new.id)
                    .await?
                    .ok_or(StoreError::not_found("user"))
            }

            async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(concat!(user_select!(), " WHERE email = $1"))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.as_ref().map(user_from).transpose()
            }

            async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>> {
                let row = sqlx::query(concat!(user_select!(), " WHERE id = $1"))
                    .bind(id.as_str())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(error::plain)?;
                row.as_ref().map(user_from).transpose()
            }

            async fn list_users(&self, account: &AccountId) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(concat!(
                    user_select!(),
                    " WHERE account_id = $1 ORDER BY created_at, id"
                ))
                .bind(account.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(error::plain)?;
                rows.iter().map(user_from).collect()
            }

            async fn delete_user(&self, account: &AccountId, id: &UserId) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                let done = sqlx::query("DELETE FROM users WHERE id = $1 AND account_id = $2")
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("user"));
                }
                tx.commit().await.map_err(error::plain)
            }

            async fn login_attempt(&self, id: &UserId, lock_after: u32, now: time::OffsetDateTime) -> StoreResult<bool> {
                let now = time_ms::to_ms(now);
                let counted = sqlx::query(
                    "UPDATE users SET \
                     failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN 1 ELSE failed_logins + 1 END, \
                     locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= $3 THEN NULL ELSE locked_until END \
                     WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $3) \
                     AND (failed_logins < $2 OR locked_until IS NOT NULL) RETURNING failed_logins",
                )
                .bind(id.as_str())
                .bind(i64::from(lock_after))
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::plain)?;
                Ok(counted.is_some())
            }

            async fn login_failed(&self, id: &UserId, lock_after: u32, until: time::OffsetDateTime) -> StoreResult<bool> {
                let row = sqlx::query(
                    "UPDATE users SET locked_until = CASE WHEN failed_logins >= $2 THEN $3 ELSE locked_until END \
                     WHERE id = $1 RETURNING locked_until",
                )
                .bind(id.as_str())
                .bind(i64::from(lock_after))
                .bind(time_ms::to_ms(until))
                .fetch_optional(&self.pool)
                .await
                .map_err(error::plain)?
                .ok_or(StoreError::not_found("user"))?;
                Ok(col::<Option<i64>>(&row, "locked_until")?.is_some())
            }

            async fn login_succeeded(&self, id: &UserId, at: time::OffsetDateTime) -> StoreResult<bool> {
                let at = time_ms::to_ms(at);
                let done = sqlx::query(
                    "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 \
                     WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2)",
                )
                .bind(id.as_str())
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(error::plain)?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_password(&self, id: &UserId, hash: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin().await.map_err(error::plain)?;
                let done =
                    sqlx::query("UPDATE users SET hash = $2, failed_logins = 0, locked_until = NULL WHERE id = $1")
                        .bind(id.as_str())
                        .bind(hash)
                        .execute(&mut *tx)
                        .await
                        .map_err(error::plain)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("user"));
                }
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(error::plain)?;
                tx.commit().await.map_err(error::plain)
            }

            async fn insert_session(&self, session: &Session) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, account_id, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&session.token_hash)
                .bind(session.user.as_str())
                .bind(session.acting.as_str())
                .bind(time_ms::to_ms(session.created_at))
                .bind(time_ms::to_ms(session.last_seen_at))
                .execute(&self.pool)
                .await
                .map_err(|e| error::map(e, NEW_SESSION))?;
                Ok(())
            }

            async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
                let row = sqlx::query(
                    "SELECT token_hash, user_id, account_id, created_at, last_seen_at FROM sessions \
                     WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::plain)?;
                row.as_ref().map(session_from).transpose()
            }

            async fn touch_session(&self, token_hash: &str, at: time::OffsetDateTime) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(time_ms::to_ms(at))
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(())
            }

            async fn set_session_account(&self, token_hash: &str, account: &AccountId) -> StoreResult<()> {
                let done = sqlx::query("UPDATE sessions SET account_id = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(account.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| error::map(e, NEW_SESSION))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::not_found("session"));
                }
                Ok(())
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(())
            }

            async fn prune_sessions(&self, before: time::OffsetDateTime) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1")
                    .bind(time_ms::to_ms(before))
                    .execute(&self.pool)
                    .await
                    .map_err(error::plain)?;
                Ok(done.rows_affected())
            }
        }
    };
}
