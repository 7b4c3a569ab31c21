//! The header block of a submitted message and its authors: what the SMTP
//! and API submission paths do with a stranger's message before it is
//! signed and sent.
//!
//! `HeaderBlock::parse`, `authors`, `Controls::take`, `ensure_identity`,
//! `to_bytes` and a re-parse; and `mailbox` on the input as text (the send
//! API's `from`). Checked, besides "does not panic":
//! - what `to_bytes` writes parses again, to the same authors, and writing
//!   that again gives the same bytes;
//! - taking the `X-Herald-*` controls and adding Date/Message-ID changes
//!   neither the authors nor re-parsing, and leaves no `X-Herald-*` field;
//! - an address `mailbox` accepts (the send API's `from`) is, once `build`
//!   wrote it into a message, read back by `authors` as the same author.

#![no_main]

use herald_message::{Controls, Draft, HeaderBlock, authors, build, ensure_identity, mailbox};
use libfuzzer_sys::fuzz_target;

fn check_block(data: &[u8]) {
    let Ok(mut block) = HeaderBlock::parse(data) else {
        return;
    };
    let first = authors(&block);

    let bytes = block.to_bytes();
    let again = HeaderBlock::parse(&bytes).unwrap_or_else(|e| {
        panic!(
            "to_bytes() of a parsed block does not parse again: {e}\ninput: {:?}\nwritten: {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(authors(&again), first, "the authors change when the block is written and read again");
    assert_eq!(again.to_bytes(), bytes, "writing a re-parsed block changes it");

    // The submission path: controls out, identity in.
    let controls = Controls::take(&mut block);
    assert!(controls.tags.len() <= 32 && controls.metadata.len() <= 32, "more controls than the limit");
    let now = time::macros::datetime!(2026-11-23 08:15:26 UTC);
    let id = ensure_identity(&mut block, "mta.herald.test", now);
    let _ = id;
    assert!(block.has("Date"), "no Date after ensure_identity");
    let edited = block.to_bytes();
    let mut reread = HeaderBlock::parse(&edited).unwrap_or_else(|e| {
        panic!(
            "the edited block does not parse again: {e}\ninput: {:?}\nwritten: {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&edited)
        )
    });
    assert_eq!(authors(&reread), first, "taking controls or adding identity changed the authors");
    assert!(
        reread.remove_where(|_| false).is_empty(),
        "remove_where with a false predicate removed fields"
    );
    assert!(
        Controls::take(&mut reread) == Controls::default(),
        "X-Herald-* fields survive Controls::take"
    );
}

fn check_mailbox(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok((name, address)) = mailbox(&text) else {
        return;
    };
    assert!(!text.contains(['\r', '\n']), "a mailbox with a line break was accepted");
    // The send API takes `from` with `mailbox` and builds the message with
    // `build`; acceptance then reads the built From with `authors`. Both
    // readings must name the same author.
    let draft = Draft {
        from: (name.clone(), address.to_string()),
        to: vec![(None, "rcpt@example.net".to_owned())],
        subject: "fuzz".to_owned(),
        text: Some("fuzz".to_owned()),
        id_domain: "mta.herald.test".to_owned(),
        ..Draft::default()
    };
    let Ok(built) = build(&draft) else {
        return;
    };
    let block = HeaderBlock::parse(&built).unwrap_or_else(|e| {
        panic!(
            "the message built for mailbox {text:?} does not parse: {e}\n{}",
            String::from_utf8_lossy(&built)
        )
    });
    let read = authors(&block).unwrap_or_else(|e| {
        panic!(
            "mailbox accepted {text:?} as {name:?} <{address}>, but the From built for it is refused: {e}\nbuilt: {}",
            String::from_utf8_lossy(&built)
        )
    });
    assert_eq!(
        read.from,
        vec![address.clone()],
        "mailbox read {text:?} as {address}, the built From reads as {:?}\nbuilt: {}",
        read.from,
        String::from_utf8_lossy(&built)
    );
}

fuzz_target!(|data: &[u8]| {
    check_block(data);
    check_mailbox(data);
});
