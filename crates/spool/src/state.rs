//! The state of each recipient of a queued message.

use time::OffsetDateTime;

/// Where a recipient stands. Everything but `Pending` and `Held` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RcptStatus {
    /// Not yet delivered; try at `next_attempt_ms`.
    Pending = 0,
    Delivered = 1,
    Bounced = 2,
    /// Retried until the maximum age ran out.
    Expired = 3,
    /// Removed by an operator (`herald queue purge`).
    Purged = 4,
    /// Kept from delivery (its content scored as spam) until an operator
    /// releases it (back to `Pending`) or drops it (`Purged`). Not final.
    Held = 5,
}

impl RcptStatus {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Pending,
            1 => Self::Delivered,
            2 => Self::Bounced,
            3 => Self::Expired,
            4 => Self::Purged,
            5 => Self::Held,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Held)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Bounced => "bounced",
            Self::Expired => "expired",
            Self::Purged => "purged",
            Self::Held => "held",
        }
    }
}

/// One recipient's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RcptState {
    pub status: RcptStatus,
    /// Attempts made so far.
    pub attempts: u16,
    /// When to try next (unix milliseconds); meaningful while pending.
    pub next_attempt_ms: i64,
}

impl RcptState {
    /// A new recipient, due at once.
    pub fn new(now_ms: i64) -> Self {
        Self {
            status: RcptStatus::Pending,
            attempts: 0,
            next_attempt_ms: now_ms,
        }
    }

    /// A new recipient kept from delivery until released.
    pub fn held(now_ms: i64) -> Self {
        Self {
            status: RcptStatus::Held,
            ..Self::new(now_ms)
        }
    }
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
