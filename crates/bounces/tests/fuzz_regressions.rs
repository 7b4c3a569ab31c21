//! Inputs the fuzzers found (`fuzz/regressions/`), replayed on every test
//! run so that the failure they showed stays fixed.

/// mail-parser 0.11.9 has a `debug_assert!(false)` on a message/rfc822
/// inside a message/rfc822 inside a multipart. The release build reads on;
/// the workspace turns the crate's debug assertions off so that tests run
/// the parser as it ships. A panic here would end the inbound session
/// reading a stranger's bounce.
#[test]
fn a_nested_rfc822_report_is_read_without_a_panic() {
    let raw = include_bytes!("../../../fuzz/regressions/feedback/mail-parser-nested-rfc822-debug-assert");
    let report = herald_bounces::parse(raw);
    if let Some(r) = &report {
        assert!(r.failures.iter().all(|f| f.recipient.contains('@')), "{r:?}");
    }
    // Sorted as something: never an auto-reply without a report saying so.
    let kind = herald_bounces::sort_reply(raw, report.as_ref());
    assert_ne!(kind, herald_bounces::ReplyKind::AutoReply, "{report:?}");
}
