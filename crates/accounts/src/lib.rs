//! Account rules over the store: authentication, who may see and change
//! which account, and the issuing of secrets.
//!
//! Both faces of Herald that manage accounts — the HTTP API and the CLI — go
//! through [`Accounts`], so a rule is written once. Every operation takes a
//! [`Caller`]: the account it acts on and whether it has operator (admin)
//! power. The CLI is the operator; an API request is whatever its key allows.
//!
//! Main design decision: anything a caller may not see answers `NotFound`,
//! exactly as if it did not exist, so ids and names cannot be probed; only an
//! action on something the caller *can* see may answer `Forbidden`.

mod auth;
mod error;
mod ops;
pub mod ownership;
pub mod secret;
mod standing;
pub mod suppressions;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use herald_store::{Account, Store};

pub use auth::{Principal, VerifyCache};
pub use error::{AccountsError, AccountsResult};
pub use ops::{IssuedCredential, IssuedKey};
pub use ownership::{Owner, QuestionableSender, SenderProblem};
pub use standing::{Standing, TTL as STANDING_TTL};
pub use suppressions::Imported;

/// The account rules, over a store. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    cache: Arc<VerifyCache>,
    /// Which addresses tenants' URLs (webhooks, reply URLs) may reach.
    outbound: Arc<herald_outbound::Policy>,
    /// The key API keys are hashed with (from the platform secret).
    key_pepper: Arc<[u8; 32]>,
    /// Accounts' standings, remembered until a change is announced.
    standings: Arc<standing::Standings>,
    /// Dashboard sign-ins checking a password now (argon2 takes memory
    /// and CPU: a flood waits here, bounded, instead of piling up threads).
    sign_ins: Arc<tokio::sync::Semaphore>,
    /// Sign-ins waiting for (or holding) a permit.
    sign_in_queue: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: Arc::new(VerifyCache::default()),
            outbound: Arc::new(herald_outbound::Policy::default()),
            key_pepper: Arc::new(secret::key_pepper(b"")),
            standings: Arc::default(),
            sign_ins: Arc::new(tokio::sync::Semaphore::new(users::SIGN_INS_AT_ONCE)),
            sign_in_queue: Arc::default(),
        }
    }

    /// The same rules, with changes of status announced in (and read from)
    /// `signal`, a file in the data folder the server and the CLI share: a
    /// running server then remembers standings between changes
    /// ([`Accounts::standing`]).
    pub fn with_change_signal(mut self, signal: std::path::PathBuf) -> Self {
        self.standings = Arc::new(standing::Standings::with_signal(signal));
        self
    }

    /// Whether the account (and its brand's master) may act now. A change
    /// of status made through any `Accounts` with the same signal counts
    /// from the next call on.
    pub async fn standing(&self, id: &herald_types::AccountId) -> AccountsResult<Standing> {
        self.standings.get(self.store.as_ref(), id).await
    }

    /// The same rules, with API keys hashed under a key derived from the
    /// platform secret. The server and the CLI must use the same secret
    /// (`[server] secret_file`), or keys made by one fail in the other.
    pub fn with_platform_secret(mut self, platform_secret: &[u8]) -> Self {
        self.key_pepper = Arc::new(secret::key_pepper(platform_secret));
        self
    }

    /// The same rules, with tenants' URLs held to `policy` (public
    /// addresses, plus the networks the operator allows).
    pub fn with_outbound(mut self, policy: Arc<herald_outbound::Policy>) -> Self {
        self.outbound = policy;
        self
    }

    /// Checks a URL a tenant gives Herald to call (422 when refused).
    pub async fn check_tenant_url(&self, field: &str, url: &str) -> AccountsResult<String> {
        self.outbound
            .check_url(url)
            .await
            .map_err(|refusal| AccountsError::Unprocessable(format!("{field}: {refusal}")))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// A change of account settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsPatch {
    pub track_opens: Option<bool>,
    pub track_clicks: Option<bool>,
    pub hard_bounce_threshold: Option<u32>,
    pub soft_bounce_threshold: Option<u32>,
    /// `Some("")` stops forwarding replies.
    pub reply_forward_to: Option<String>,
    /// `Some("")` stops posting replies.
    pub reply_url: Option<String>,
    /// Percentages (0.01 to 100).
    pub bounce_alert_percent: Option<f64>,
    pub complaint_alert_percent: Option<f64>,
    /// Recipients a day; `Some(0)` removes the quota. Operator or master only.
    pub daily_quota: Option<u32>,
    /// Recipients a minute; `Some(0)` removes the limit. Operator or master only.
    pub rate_per_minute: Option<u32>,
    /// The spam score over which mail is held (1 to 1000). Operator or
    /// master only: an account cannot raise its own.
    pub spam_threshold: Option<f64>,
    /// Where alerts are mailed; `Some("")` stops mailing them.
    pub alert_email: Option<String>,
    /// Streams' sending domains, merged into the current ones: a stream
    /// named with `""` loses its own domain.
    pub stream_domains: Option<std::collections::BTreeMap<String, String>>,
}

/// Who is asking, and on which account's behalf.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account whose objects the request reads and changes: the key's own
    /// account, or one of its subs chosen with `Herald-Account`.
    pub account: Account,
    /// Operator power: the CLI, or an admin-scoped API key.
    pub admin: bool,
    /// The account the key belongs to (the same as `account` unless the
    /// request acts on a sub). `None` for the CLI.
    pub key_account: Option<Account>,
}

impl Caller {
    /// The operator at the command line, acting on `account`.
    pub fn operator(account: Account) -> Self {
        Self {
            account,
            admin: true,
            key_account: None,
        }
    }
}
