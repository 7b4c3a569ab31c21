//! Dashboard users: who may create them, signing in with lockout, and
//! sessions.
//!
//! A user acts exactly as an account-scoped API key of its account would
//! (and an operator user as an admin key): its session resolves to the same
//! [`Caller`] every API operation takes, so the dashboard obeys the API's
//! rules without a copy of them. A master's user may switch its session to
//! one of its subs; a sub's user sees only its own account.
//!
//! Sign-in costs one argon2 check (tens of milliseconds, 19 MiB), so at
//! most [`SIGN_INS_AT_ONCE`] run at once and the rest wait, bounded. An
//! unknown address is checked against a decoy hash, so timing does not
//! tell which addresses have users. After [`LOCK_AFTER`] attempts without
//! a success (counted before the check, so parallel guesses cannot pass
//! the limit) the user is locked for [`LOCK_FOR`]; a correct password does
//! not open a locked user, and a locked user's attempt is answered like a
//! wrong password, after the same work.

use std::time::Duration;

use herald_store::{NewUser, Session, User};
use herald_types::{AccountName, EmailAddress, UserId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ops::hash_off_thread;
use crate::{Accounts, AccountsError, AccountsResult, Caller, secret};

/// Password checks for sign-ins running at once.
pub const SIGN_INS_AT_ONCE: usize = 4;
/// Sign-ins waiting for a check, at most; more are refused as busy at once.
pub const SIGN_INS_WAITING: usize = 64;
/// A sign-in waiting longer than this for its turn is refused as busy.
const SIGN_IN_WAIT: Duration = Duration::from_secs(10);
/// Failed sign-ins in a row that lock a user.
pub const LOCK_AFTER: u32 = 5;
/// How long a lock holds.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after its sign-in, used or not.
pub const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// A session's last use is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Password lengths accepted, in characters.
pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 256;

/// Why a sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// Unknown address or wrong password (never said which).
    #[error("wrong e-mail address or password")]
    Wrong,
    /// Too many failures: refused for now (said like `Wrong`, so the
    /// answer does not tell which addresses have users).
    #[error("wrong e-mail address or password")]
    Locked(OffsetDateTime),
    /// Too many sign-ins are being checked right now.
    #[error("too many sign-ins at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Other(#[from] AccountsError),
}

impl From<herald_store::StoreError> for SignInError {
    fn from(e: herald_store::StoreError) -> Self {
        Self::Other(e.into())
    }
}

/// A new user and, when Herald chose it, its password (shown once).
#[derive(Debug, Clone)]
pub struct CreatedUser {
    pub user: User,
    pub password: Option<String>,
}

/// A session's token (the cookie's value) and its user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub user: User,
}

/// A live session: who, acting on which account, with the API's rules.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub user: User,
    pub caller: Caller,
    /// The user's own account (the one it switches back to).
    pub home: herald_store::Account,
    /// The SHA-256 of the token, the session's key.
    pub key: String,
}

/// The stored key of a session token.
pub fn token_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn normalise_email(email: &str) -> AccountsResult<String> {
    let email = email.trim();
    EmailAddress::parse(email)?;
    Ok(email.to_ascii_lowercase())
}

fn check_password(password: &str) -> AccountsResult<()> {
    let chars = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&chars) {
        return Err(AccountsError::Unprocessable(format!(
            "password: between {PASSWORD_MIN} and {PASSWORD_MAX} characters"
        )));
    }
    Ok(())
}

fn after(at: OffsetDateTime, d: Duration) -> OffsetDateTime {
    at + time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl Accounts {
    /// Creates a dashboard user of the acting account. Only the operator
    /// (or an admin key) makes operator users. Without a password one is
    /// chosen and returned once.
    pub async fn create_user(
        &self,
        caller: &Caller,
        email: &str,
        password: Option<String>,
        operator: bool,
    ) -> AccountsResult<CreatedUser> {
        if operator && !caller.admin {
            return Err(AccountsError::Forbidden(
                "only the operator may create operator users".to_owned(),
            ));
        }
        let email = normalise_email(email)?;
        let chosen = password.is_none();
        let password = password.unwrap_or_else(secret::new_password);
        check_password(&password)?;
        let hash = hash_off_thread(password.clone()).await?;
        let user = self
            .store
            .insert_user(NewUser {
                id: UserId::generate(),
                account: caller.account.id.clone(),
                email,
                hash,
                operator,
            })
            .await?;
        tracing::info!(account = %caller.account.name, user = %user.id, operator, "dashboard user created");
        Ok(CreatedUser {
            user,
            password: chosen.then_some(password),
        })
    }

    /// The acting account's users; operator users only to the operator
    /// (a tenant neither sees nor removes them).
    pub async fn list_users(&self, caller: &Caller) -> AccountsResult<Vec<User>> {
        let all = self.store.list_users(&caller.account.id).await?;
        Ok(all.into_iter().filter(|u| caller.admin || !u.operator).collect())
    }

    /// Deletes one of the acting account's users, by id or address, and
    /// ends its sessions.
    pub async fn delete_user(&self, caller: &Caller, id_or_email: &str) -> AccountsResult<User> {
        let user = match UserId::parse(id_or_email) {
            Ok(id) => self.store.user_by_id(&id).await?,
            Err(_) => {
                self.store
                    .user_by_email(&id_or_email.trim().to_ascii_lowercase())
                    .await?
            }
        };
        let user = user
            .filter(|u| u.account == caller.account.id && (caller.admin || !u.operator))
            .ok_or(AccountsError::NotFound("user"))?;
        self.store.delete_user(&caller.account.id, &user.id).await?;
        tracing::info!(account = %caller.account.name, user = %user.id, "dashboard user deleted");
        Ok(user)
    }

    /// Changes a user's password (its current one checked) and ends its
    /// sessions.
    pub async fn change_password(&self, user: &User, current: &str, new: &str) -> AccountsResult<()> {
        check_password(new)?;
        let ok = self
            .verify_password(Some(&user.hash), current)
            .await
            .map_err(|e| match e {
                SignInError::Other(e) => e,
                other => AccountsError::Conflict(other.to_string()),
            })?;
        if !ok {
            return Err(AccountsError::Forbidden("the current password is wrong".to_owned()));
        }
        let hash = hash_off_thread(new.to_owned()).await?;
        self.store.set_user_password(&user.id, &hash).await?;
        Ok(())
    }

    /// argon2 off the async workers, at most [`SIGN_INS_AT_ONCE`] at once
    /// and [`SIGN_INS_WAITING`] waiting (then `Busy` at once); without a
    /// stored hash the decoy is checked (and fails).
    async fn verify_password(&self, stored: Option<&str>, presented: &str) -> Result<bool, SignInError> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let before = self.sign_in_queue.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(&self.sign_in_queue);
        if before >= SIGN_INS_WAITING {
            return Err(SignInError::Busy);
        }
        let permit = tokio::time::timeout(SIGN_IN_WAIT, self.sign_ins.clone().acquire_owned())
            .await
            .map_err(|_| SignInError::Busy)?
            .map_err(|_| SignInError::Busy)?;
        let hash = stored.unwrap_or_else(|| crate::auth::decoy_hash()).to_owned();
        let presented = presented.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let ok = secret::verify(&presented, &hash);
            drop(permit);
            ok
        })
        .await
        .map_err(|e| AccountsError::Internal(format!("argon2 task: {e}")))?;
        Ok(ok && stored.is_some())
    }

    /// Signs a user in: a new session on its own account.
    ///
    /// The attempt is counted before the password is checked (so parallel
    /// guesses cannot pass [`LOCK_AFTER`]); a locked user's attempt costs
    /// the same check as any other and fails like a wrong password, so
    /// neither timing nor the answer's kind tells a stranger which
    /// addresses have users.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<SignedIn, SignInError> {
        let email = email.trim().to_ascii_lowercase();
        // Beyond any real address or password: refused without work.
        if email.len() > 254 || password.len() > PASSWORD_MAX * 4 {
            return Err(SignInError::Wrong);
        }
        let now = OffsetDateTime::now_utc();
        let user = self.store.user_by_email(&email).await?;
        let counted = match &user {
            Some(u) => self.store.login_attempt(&u.id, LOCK_AFTER, now).await?,
            None => true,
        };
        let stored = user.as_ref().filter(|_| counted).map(|u| u.hash.as_str());
        let ok = self.verify_password(stored, password).await?;
        let Some(user) = user else {
            return Err(SignInError::Wrong);
        };
        if !counted {
            tracing::info!(user = %user.id, "dashboard sign-in refused: locked");
            return Err(SignInError::Locked(now));
        }
        if !ok {
            let locked = self
                .store
                .login_failed(&user.id, LOCK_AFTER, after(now, LOCK_FOR))
                .await?;
            tracing::info!(user = %user.id, locked, "dashboard sign-in failed");
            return Err(if locked {
                SignInError::Locked(after(now, LOCK_FOR))
            } else {
                SignInError::Wrong
            });
        }
        let account = self
            .store
            .account_by_id(&user.account)
            .await?
            .ok_or(SignInError::Wrong)?;
        self.ensure_active(&account).await?;
        if !self.store.login_succeeded(&user.id, now).await? {
            // A parallel wrong guess locked it meanwhile.
            return Err(SignInError::Locked(now));
        }
        let token = secret::new_session_token();
        self.store
            .insert_session(&Session {
                token_hash: token_key(&token),
                user: user.id.clone(),
                acting: user.account.clone(),
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        tracing::info!(user = %user.id, account = %account.name, "dashboard sign-in");
        Ok(SignedIn { token, user })
    }

    /// The live session of `token`, or `None` when it is unknown, expired,
    /// or its user or account is gone. A suspended account's session ends
    /// with `Suspended`.
    pub async fn session(&self, token: &str) -> AccountsResult<Option<SessionView>> {
        // The shape is public; anything else is no session.
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let key = token_key(token);
        let Some(session) = self.store.session(&key).await? else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if after(session.last_seen_at, SESSION_IDLE) < now || after(session.created_at, SESSION_MAX) < now {
            self.store.delete_session(&key).await?;
            return Ok(None);
        }
        let Some(user) = self.store.user_by_id(&session.user).await? else {
            return Ok(None);
        };
        let Some(home) = self.store.account_by_id(&user.account).await? else {
            return Ok(None);
        };
        self.ensure_active(&home).await?;
        let account = if session.acting == home.id {
            home.clone()
        } else {
            match self.store.account_by_id(&session.acting).await? {
                // Still one it may act on (a sub may have been moved).
                Some(a) if user.operator || a.parent_id() == Some(&home.id) => a,
                _ => {
                    self.store.set_session_account(&key, &home.id).await?;
                    home.clone()
                }
            }
        };
        if after(session.last_seen_at, TOUCH_EVERY) < now {
            self.store.touch_session(&key, now).await?;
        }
        Ok(Some(SessionView {
            caller: Caller {
                account,
                admin: user.operator,
                key_account: Some(home.clone()),
            },
            home,
            user,
            key,
        }))
    }

    /// Switches a session to `name`: the user's own account, one of its
    /// subs, or (an operator user) any account; anything else is
    /// `NotFound`, as for `Herald-Account`.
    pub async fn switch_account(&self, view: &SessionView, name: &str) -> AccountsResult<herald_store::Account> {
        let name = AccountName::parse(name).map_err(|_| AccountsError::NotFound("account"))?;
        let target = if name == view.home.name {
            view.home.clone()
        } else {
            match self.store.account_by_name(&name).await? {
                Some(t) if view.user.operator || t.parent_id() == Some(&view.home.id) => t,
                _ => return Err(AccountsError::NotFound("account")),
            }
        };
        self.store.set_session_account(&view.key, &target.id).await?;
        Ok(target)
    }

    /// The accounts a session may pick from a list: its own and its subs
    /// (an operator user names any account instead).
    pub async fn switchable(&self, view: &SessionView) -> AccountsResult<Vec<herald_store::Account>> {
        let mut out = vec![view.home.clone()];
        if view.home.parent.is_none() {
            out.extend(
                self.store
                    .list_accounts(herald_store::AccountFilter::SubsOf(view.home.id.clone()))
                    .await?,
            );
        }
        Ok(out)
    }

    pub async fn sign_out(&self, token: &str) -> AccountsResult<()> {
        Ok(self.store.delete_session(&token_key(token)).await?)
    }
}
