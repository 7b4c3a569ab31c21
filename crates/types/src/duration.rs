//! Durations as people write them in config files: `"30s"`, `"20m"`,
//! `"72h"`, `"1h30m"`, `"500ms"`, `"7d"`.

use std::time::Duration;

use crate::InvalidValue;

const EXPECTED: &str = "a duration such as \"30s\", \"20m\", \"72h\", \"1h30m\", \"500ms\" or \"7d\"";

/// Parses a duration: one or more `<integer><unit>` with units ms, s, m, h, d.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidValue> {
    let invalid = || InvalidValue::new("duration", s, EXPECTED);
    let text = s.trim();
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        let part = u32::try_from(n)
            .ok()
            .and_then(|n| unit.checked_mul(n))
            .ok_or_else(invalid)?;
        total = total.checked_add(part).ok_or_else(invalid)?;
    }
    Ok(total)
}

/// Writes a duration back in hours, minutes, seconds and milliseconds — the
/// units mail configs speak (`"72h"`, not `"3d"`) — so that
/// `format_duration(parse_duration(x))` is stable (`"90m"` → `"1h30m"`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut ms = d.as_millis();
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_forms_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bare_numbers_unknown_units_and_junk_are_refused() {
        for bad in ["", "30", "m", "30x", "1.5h", "-5s", "3 h", "h1", "99999999999s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.to_string().contains("\"72h\""), "{err}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["30s", "20m", "72h", "1h30m", "500ms", "25h", "1h2m3s4ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(parse_duration("7d").unwrap()), "168h");
    }
}
