//! DMARC aggregate and failure reports and SMTP TLS reports as they reach
//! the importer, the API and the report address of the MX: any wrapping
//! (gzip, zip, a MIME message holding either, an mbox of messages) around
//! DMARC XML, RFC 6591 failure reports or TLS-RPT JSON.
//! `herald_dmarc::prepare_all` is what `herald dmarc import` calls.
//!
//! Checked, besides "does not panic": a read report's stored body decodes
//! back; nothing stored carries a control character in its text fields;
//! a broken report keeps the input's bytes (when it is not an mbox).

#![no_main]

use herald_dmarc::{Origin, Prepared, body, prepare_all};
use libfuzzer_sys::fuzz_target;

fn no_controls(field: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\t'),
        "{field} keeps a control character: {text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let now = time::macros::datetime!(2026-11-23 08:15:26 UTC);
    let out = prepare_all(data, Origin::Import, Some("fuzz.eml".to_owned()), now);
    let mbox = herald_message::mbox::is_mbox(data);
    // "Nothing handed in is dropped" (ingest.rs): bytes come back as a
    // report or a broken report.
    assert!(!out.is_empty(), "prepare_all returned nothing for {} bytes", data.len());
    for p in &out {
        match p {
            Prepared::Report(r) => {
                body::decode(&r.body).unwrap_or_else(|e| panic!("a stored body does not decode: {e}"));
                no_controls("org_name", &r.org_name);
                no_controls("report_id", &r.report_id);
                no_controls("domain", &r.domain);
                assert!(r.begin <= r.end, "a report that ends before it begins");
            }
            Prepared::Broken(b) => {
                no_controls("error", &b.error);
                if !mbox {
                    assert_eq!(b.raw, data, "a broken report does not keep the input");
                }
            }
        }
    }
});
