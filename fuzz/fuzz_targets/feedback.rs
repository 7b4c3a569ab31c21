//! What comes back from the world to the inbound MX: bounces (RFC 3464
//! DSNs and the free-text notices of real servers), ARF complaints,
//! auto-replies, SES notices relayed as mail; and the sorting of mail to a
//! reply address. Also the classifier of a remote server's SMTP answer
//! (what a stranger's server says during delivery), fed the first line.
//!
//! Checked, besides "does not panic": a bounce names a recipient for each
//! failure, and every diagnostic is one line of at most 2048 bytes.

#![no_main]

use herald_bounces::{Kind, ReplyKind, classify_reply, parse, sort_reply};
use libfuzzer_sys::fuzz_target;

fn check_reply_line(data: &[u8]) {
    // `550 5.1.1 <a@b.test>: Recipient address rejected`
    let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let Some(code) = line.get(..3).and_then(|c| c.parse::<u16>().ok()) else {
        return;
    };
    let rest = line[3..].trim_start_matches([' ', '-']);
    let (enhanced, text) = match rest.split_once(' ') {
        Some((e, t)) if e.split('.').count() == 3 && e.starts_with(['2', '4', '5']) => (Some(e), t),
        _ => (None, rest),
    };
    let _ = classify_reply(code, enhanced, text);
}

fuzz_target!(|data: &[u8]| {
    let report = parse(data);
    if let Some(report) = &report {
        for f in &report.failures {
            if report.kind == Kind::Bounce {
                assert!(!f.recipient.is_empty(), "a bounce failure without a recipient: {f:?}");
            }
            assert!(
                !f.diagnostic.contains(['\r', '\n']),
                "a diagnostic on more than one line: {:?}",
                f.diagnostic
            );
            assert!(f.diagnostic.len() <= 2048, "a diagnostic of {} bytes", f.diagnostic.len());
        }
    }
    let sorted = sort_reply(data, report.as_ref());
    match report.as_ref().map(|r| &r.kind) {
        Some(Kind::AutoReply) => assert_eq!(sorted, ReplyKind::AutoReply),
        Some(Kind::Bounce | Kind::Feedback) => assert_eq!(sorted, ReplyKind::DeliveryNotice),
        None => {}
    }
    let _ = sort_reply(data, None);
    check_reply_line(data);
});
