//! Inputs the fuzzers found (`fuzz/regressions/`), replayed on every test
//! run so that the failure they showed stays fixed.

use herald_dmarc::{Origin, Prepared, prepare_all};

/// The mail-parser assertion on a nested message/rfc822 (see the feedback
/// crate's test of the same name) is reached from report unpacking too:
/// the bytes come back as a broken report, not a panic.
#[test]
fn a_nested_rfc822_report_is_read_without_a_panic() {
    let raw = include_bytes!("../../../fuzz/regressions/feedback/mail-parser-nested-rfc822-debug-assert");
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let out = prepare_all(raw, Origin::Mx, None, now);
    match &out[..] {
        [Prepared::Broken(b)] => assert_eq!(b.raw, raw),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_mbox_of_only_separators_is_kept() {
    let raw = include_bytes!("../../../fuzz/regressions/dmarc_unpack/mbox-separator-only-dropped");
    let out = prepare_all(
        raw,
        Origin::Import,
        Some("x.mbox".into()),
        time::OffsetDateTime::UNIX_EPOCH,
    );
    assert!(matches!(&out[..], [Prepared::Broken(b)] if b.raw == raw), "{out:?}");
}

/// A date range whose end is a 68-digit number was read as a float,
/// saturated, and stored as 1970: a report that ended before it began. A
/// time no calendar date can hold is refused; the bytes are kept as a
/// broken report naming the field.
#[test]
fn a_date_range_past_any_calendar_is_refused() {
    let raw = include_bytes!("../../../fuzz/regressions/dmarc_unpack/date-range-end-past-year-9999");
    let out = prepare_all(raw, Origin::Import, None, time::OffsetDateTime::UNIX_EPOCH);
    match &out[..] {
        [Prepared::Broken(b)] => {
            assert_eq!(b.raw, raw);
            assert!(b.error.contains("date_range end"), "{}", b.error);
        }
        other => panic!("{other:?}"),
    }
}
