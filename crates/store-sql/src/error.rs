//! sqlx errors turned into the decision the caller must make.

use herald_store::StoreError;

/// What a constraint violation means for the call at hand.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Said when a unique constraint fails, e.g. "account name already taken".
    pub unique: &'static str,
    pub foreign_key: ForeignKey,
}

/// What a failed foreign key means.
#[derive(Debug, Clone, Copy)]
pub enum ForeignKey {
    /// An insert named a row that does not exist: `NotFound(what)`.
    Missing(&'static str),
    /// A delete would orphan rows that still point here: `Conflict(what)`.
    StillReferenced(&'static str),
}

pub const PLAIN: Context = Context {
    unique: "already exists",
    foreign_key: ForeignKey::Missing("referenced row"),
};

pub fn map(err: sqlx::Error, ctx: Context) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::conflict(ctx.unique),
        sqlx::Error::Database(db) if is_foreign_key(db.as_ref()) => match ctx.foreign_key {
            ForeignKey::Missing(what) => StoreError::not_found(what),
            ForeignKey::StillReferenced(what) => StoreError::conflict(what),
        },
        // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes: another
        // writer held the database past busy_timeout.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.parse::<u32>().is_ok_and(|n| n & 0xff == 5 || n & 0xff == 6)) =>
        {
            StoreError::Unavailable(err.to_string())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Backend(err.to_string()),
    }
}

/// sqlx knows SQLite's SQLITE_CONSTRAINT_FOREIGNKEY (787), but SQLite
/// reports an `ON DELETE RESTRICT` as SQLITE_CONSTRAINT_TRIGGER (1811) with a
/// "FOREIGN KEY constraint failed" message.
fn is_foreign_key(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.is_foreign_key_violation() || (db.code().as_deref() == Some("1811") && db.message().contains("FOREIGN KEY"))
}

pub fn plain(err: sqlx::Error) -> StoreError {
    map(err, PLAIN)
}

pub fn migrate(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Backend(format!("migration failed: {err}"))
}

/// A row whose column does not parse as its type: the database was written by
/// something else or is corrupt.
pub fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt value in column {column}: {detail}"))
}
