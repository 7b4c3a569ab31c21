//! Dashboard users and their sessions.
//!
//! A user belongs to one account and signs in with an e-mail address
//! (unique across the platform) and a password kept as an argon2 hash.
//! Failed sign-ins are counted on the row, so a lockout holds on every
//! node of a PostgreSQL deployment. A session is kept by the SHA-256 of its
//! token only: a copy of the database gives nobody a way in.

use async_trait::async_trait;
use herald_types::{AccountId, UserId};
use time::OffsetDateTime;

use crate::StoreResult;

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub account: AccountId,
    /// Lower-cased; unique across the platform.
    pub email: String,
    /// argon2id PHC string.
    pub hash: String,
    /// Operator power (made by the operator only): may act on any account
    /// and release held mail, like an admin key.
    pub operator: bool,
    pub created_at: OffsetDateTime,
    /// Sign-in attempts counted since the last successful one (failed, or
    /// being checked).
    pub failed_logins: u32,
    /// Sign-ins are refused until then.
    pub locked_until: Option<OffsetDateTime>,
    pub last_login_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub account: AccountId,
    pub email: String,
    pub hash: String,
    pub operator: bool,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    pub user: UserId,
    /// The account the session shows: the user's own, or one it may act on.
    pub acting: AccountId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// `Conflict` when the address is taken, `NotFound` without the account.
    async fn insert_user(&self, new: NewUser) -> StoreResult<User>;

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    async fn user_by_id(&self, id: &UserId) -> StoreResult<Option<User>>;

    /// The account's users, oldest first.
    async fn list_users(&self, account: &AccountId) -> StoreResult<Vec<User>>;

    /// Deletes the user and its sessions; `NotFound` unless it belongs to
    /// `account`.
    async fn delete_user(&self, account: &AccountId, id: &UserId) -> StoreResult<()>;

    /// Counts a sign-in attempt before its password is checked, in one
    /// statement: `false` (nothing counted) while the user is locked at
    /// `now`, or while `lock_after` attempts are already counted since the
    /// last success (in flight or failed), so parallel guesses cannot pass
    /// the limit. An expired lock starts the count afresh.
    async fn login_attempt(&self, id: &UserId, lock_after: u32, now: OffsetDateTime) -> StoreResult<bool>;

    /// After a wrong password: locks the user until `until` once
    /// `lock_after` attempts are counted; whether it is locked.
    async fn login_failed(&self, id: &UserId, lock_after: u32, until: OffsetDateTime) -> StoreResult<bool>;

    /// After a right password: clears the count and records the sign-in,
    /// unless a lock set meanwhile holds at `at` (`false`: refused).
    async fn login_succeeded(&self, id: &UserId, at: OffsetDateTime) -> StoreResult<bool>;

    /// Sets the password and ends every session of the user.
    async fn set_user_password(&self, id: &UserId, hash: &str) -> StoreResult<()>;

    /// `NotFound` when the user is gone (deleted while signing in).
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;

    async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>>;

    async fn touch_session(&self, token_hash: &str, at: OffsetDateTime) -> StoreResult<()>;

    /// Switches the account a session shows (the caller checked that it may).
    async fn set_session_account(&self, token_hash: &str, account: &AccountId) -> StoreResult<()>;

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    /// Deletes sessions last seen before `before`; how many.
    async fn prune_sessions(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
