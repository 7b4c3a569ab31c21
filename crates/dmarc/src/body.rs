//! How a report is kept in the store: its JSON, deflated.
//!
//! Why deflate: the large reporters' reports are megabytes of JSON that
//! repeat the same few strings record after record. Measured importing 100
//! copies of parsedmarc's 909 KB report (230,000 records): the JSON as it
//! is put 61 MB through SQLite in 81,000 page writes, more than half of the
//! import's 0.41 s; deflated at the fastest level it is under 1 MB and the
//! import takes 0.15 s. The compression runs on the importer's reading
//! threads, beside the parsing.

use std::io::{Read, Write};

use herald_reports::Report;

/// A stored body never inflates past this: it was written by Herald from a
/// report of at most 250,000 records, but a damaged row must not take the
/// process down.
const MAX_INFLATED: u64 = 256 * 1024 * 1024;

/// The report as stored.
pub fn encode(report: &Report) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(report).map_err(|e| format!("cannot encode the report: {e}"))?;
    let mut z = flate2::write::DeflateEncoder::new(Vec::with_capacity(json.len() / 8), flate2::Compression::fast());
    z.write_all(&json)
        .and_then(|()| z.finish())
        .map_err(|e| format!("cannot compress the report: {e}"))
}

/// A stored report read back.
pub fn decode(body: &[u8]) -> Result<Report, String> {
    let mut json = Vec::with_capacity(body.len() * 8);
    flate2::read::DeflateDecoder::new(body)
        .take(MAX_INFLATED)
        .read_to_end(&mut json)
        .map_err(|e| format!("stored report does not inflate: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("stored report does not read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_reports::{AggregateReport, Record};

    #[test]
    fn a_report_round_trips_smaller() {
        let record = Record {
            source_ip: "192.0.2.1".into(),
            count: 3,
            disposition: "none".into(),
            dkim: "pass".into(),
            spf: "fail".into(),
            header_from: "example.com".into(),
            ..Record::default()
        };
        let report = Report::Aggregate(AggregateReport {
            org_name: "google.com".into(),
            report_id: "1".into(),
            records: vec![record; 1000],
            ..AggregateReport::default()
        });
        let body = encode(&report).unwrap();
        let json = serde_json::to_vec(&report).unwrap();
        assert!(body.len() * 10 < json.len(), "{} bytes from {}", body.len(), json.len());
        assert_eq!(decode(&body).unwrap(), report);
        assert!(decode(b"not deflate").is_err());
    }
}
