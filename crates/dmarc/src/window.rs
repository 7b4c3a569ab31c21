//! The period a summary covers, and the bounds of a report list, as the API
//! (`since`, `until`, `days`) and the CLI (`--since`, `--until`, `--days`)
//! take them, so both read them alike and refuse alike.
//!
//! A time is RFC 3339 (`2025-03-01T08:00:00Z`) or a date (`2025-03-01`, its
//! midnight UTC). A window is `[since, until)`: `until` is left out, so
//! `--since 2025-01-01 --until 2025-02-01` is January. `days` is shorthand
//! for the days before `until` (or now), so it conflicts with `since`.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

use crate::{DEFAULT_DAYS, MAX_DAYS};

/// `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// A window or bound the caller gave that cannot be used, naming the
/// parameter at fault (without dashes: the API's name; the CLI adds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for WindowError {}

fn error(field: &'static str, message: impl Into<String>) -> WindowError {
    WindowError {
        field,
        message: message.into(),
    }
}

impl Window {
    /// The `days` days before `now`.
    pub fn last_days(days: u32, now: OffsetDateTime) -> Self {
        Self {
            since: now - Duration::days(i64::from(days)),
            until: now,
        }
    }

    /// A summary's window from what the caller gave: `until` defaults to
    /// `now`, `since` to `days` (default [`DEFAULT_DAYS`]) before `until`.
    /// At most [`MAX_DAYS`] long, `since` before `until`.
    pub fn summary(
        since: Option<&str>,
        until: Option<&str>,
        days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<Self, WindowError> {
        if let Some(days) = days
            && !(1..=MAX_DAYS).contains(&days)
        {
            return Err(error("days", format!("between 1 and {MAX_DAYS}")));
        }
        if days.is_some() && since.is_some() {
            return Err(error(
                "days",
                "give days or since, not both (days counts back from until, or from now)",
            ));
        }
        let until = match until {
            Some(v) => parse_time("until", v)?,
            None => now,
        };
        let since = match since {
            Some(v) => parse_time("since", v)?,
            None => until - Duration::days(i64::from(days.unwrap_or(DEFAULT_DAYS))),
        };
        let window = Self::bounded(since, until)?;
        if window.until - window.since > Duration::days(i64::from(MAX_DAYS)) {
            return Err(error(
                "since",
                format!(
                    "the window from {} to {} is longer than {MAX_DAYS} days; ask for a shorter one",
                    show(since),
                    show(until)
                ),
            ));
        }
        Ok(window)
    }

    /// Checks that `since` comes before `until`.
    fn bounded(since: OffsetDateTime, until: OffsetDateTime) -> Result<Self, WindowError> {
        if since >= until {
            return Err(error(
                "until",
                format!(
                    "{} is not after since ({}): the window is [since, until)",
                    show(until),
                    show(since)
                ),
            ));
        }
        Ok(Self { since, until })
    }

    /// The window's length in days, a part day counting as one.
    pub fn days(&self) -> u32 {
        let seconds = (self.until - self.since).whole_seconds().max(0);
        u32::try_from((seconds + 86_399) / 86_400).unwrap_or(u32::MAX)
    }
}

/// A report list's bounds, each optional; when both are given, `since`
/// must come first. Lists are paged, so their span is not bounded.
pub fn list_bounds(
    since: Option<&str>,
    until: Option<&str>,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), WindowError> {
    let since = since.map(|v| parse_time("since", v)).transpose()?;
    let until = until.map(|v| parse_time("until", v)).transpose()?;
    if let (Some(s), Some(u)) = (since, until) {
        Window::bounded(s, u)?;
    }
    Ok((since, until))
}

/// RFC 3339, or a date (`YYYY-MM-DD`) as its midnight UTC.
pub fn parse_time(field: &'static str, value: &str) -> Result<OffsetDateTime, WindowError> {
    let value = value.trim();
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t);
    }
    if let Ok(d) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    Err(error(
        field,
        format!(
            "{:?} is not a date (2025-03-01) or an RFC 3339 time (2025-03-01T08:00:00Z)",
            herald_message::scan::clip(value, 64)
        ),
    ))
}

fn show(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-23 08:15:26 UTC);

    fn window(since: Option<&str>, until: Option<&str>, days: Option<u32>) -> Result<Window, WindowError> {
        Window::summary(since, until, days, NOW)
    }

    #[test]
    fn dates_and_rfc_3339_times_are_read() {
        assert_eq!(parse_time("since", "2025-03-01"), Ok(datetime!(2025-03-01 00:00 UTC)));
        assert_eq!(
            parse_time("since", " 2025-03-01T08:00:00+02:00 "),
            Ok(datetime!(2025-03-01 06:00 UTC))
        );
        for bad in ["2025-13-01", "yesterday", "2025-03-01 08:00", "1700000000", ""] {
            let e = parse_time("until", bad).unwrap_err();
            assert_eq!(e.field, "until");
            assert!(e.message.contains("is not a date"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_is_the_last_30_days() {
        let w = window(None, None, None).unwrap();
        assert_eq!((w.since, w.until, w.days()), (NOW - Duration::days(30), NOW, 30));
        let w = window(None, None, Some(7)).unwrap();
        assert_eq!(w, Window::last_days(7, NOW));
    }

    #[test]
    fn last_years_reports_are_reachable() {
        let w = window(Some("2025-01-01"), Some("2025-02-01"), None).unwrap();
        assert_eq!(
            (w.since, w.until, w.days()),
            (datetime!(2025-01-01 00:00 UTC), datetime!(2025-02-01 00:00 UTC), 31)
        );
        // days counts back from until.
        let w = window(None, Some("2025-02-01"), Some(10)).unwrap();
        assert_eq!(w.since, datetime!(2025-01-22 00:00 UTC));
        // since alone runs to now, if that is not too long.
        let w = window(Some("2026-11-01"), None, None).unwrap();
        assert_eq!((w.until, w.days()), (NOW, 23));
    }

    #[test]
    fn conflicting_or_unbounded_windows_are_refused() {
        let e = window(Some("2025-01-01"), None, Some(30)).unwrap_err();
        assert_eq!(e.field, "days");
        assert!(e.to_string().contains("not both"), "{e}");
        let e = window(Some("2025-02-01"), Some("2025-01-01"), None).unwrap_err();
        assert_eq!(e.field, "until");
        assert!(e.message.contains("is not after since"), "{e}");
        assert_eq!(
            window(Some("2025-01-01"), Some("2025-01-01"), None).unwrap_err().field,
            "until"
        );
        let e = window(Some("2024-01-01"), Some("2025-06-01"), None).unwrap_err();
        assert_eq!(e.field, "since");
        assert!(e.message.contains("longer than 366 days"), "{e}");
        // A year since the start of a year is at most 366 days.
        assert!(window(Some("2024-01-01"), Some("2025-01-01"), None).is_ok());
        // A year ago from now is too, since alone.
        assert_eq!(window(Some("2024-01-01"), None, None).unwrap_err().field, "since");
        for days in [0, 367] {
            assert_eq!(window(None, None, Some(days)).unwrap_err().field, "days");
        }
    }

    #[test]
    fn list_bounds_are_each_optional() {
        assert_eq!(list_bounds(None, None), Ok((None, None)));
        assert_eq!(
            list_bounds(Some("2020-01-01"), None),
            Ok((Some(datetime!(2020-01-01 00:00 UTC)), None))
        );
        assert_eq!(
            list_bounds(Some("2021-01-01"), Some("2020-01-01")).unwrap_err().field,
            "until"
        );
        assert_eq!(list_bounds(None, Some("soon")).unwrap_err().field, "until");
    }
}
