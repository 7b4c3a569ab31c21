//! How many DMARC aggregate records per second one core reads: parsedmarc's
//! 909 KB throughput sample (2,286 records), whole, from bytes to
//! `AggregateReport`, as the importer does it for every report. The
//! importer must beat parsedmarc a hundredfold end to end, so this is the
//! budget the XML reader must stay within.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_reports::{Limits, Report, parse_aggregate, parse_report};

const LARGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/parsedmarc-samples/aggregate/!large-example.com!1711897200!1711983600.xml"
);

fn aggregate(c: &mut Criterion) {
    let xml = std::fs::read(LARGE).expect("the parsedmarc corpus is missing");
    let limits = Limits::default();
    let records = parse_aggregate(&xml, &limits).expect("the sample parses").records.len() as u64;
    assert_eq!(records, 2286);

    let mut group = c.benchmark_group("dmarc");
    group.throughput(Throughput::Elements(records));
    group.bench_function("aggregate records, 909 KB report", |b| {
        b.iter(|| parse_aggregate(&xml, &limits).map(|r| r.records.len()))
    });
    // The same through the entry point the importer calls (content
    // sniffing, limits), which must cost nothing more.
    group.bench_function("parse_report, 909 KB report", |b| {
        b.iter(|| match parse_report(&xml) {
            Ok(Report::Aggregate(r)) => r.records.len(),
            _ => 0,
        })
    });
    // The floor of the XML crate this reader replaced: quick-xml's event
    // loop over the same bytes, doing nothing with the events.
    group.bench_function("quick-xml events only, 909 KB report", |b| {
        let text = std::str::from_utf8(&xml).expect("UTF-8");
        b.iter(|| {
            let mut r = quick_xml::Reader::from_str(text);
            r.config_mut().check_end_names = false;
            let mut n = 0usize;
            loop {
                match r.read_event() {
                    Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                    Ok(_) => n += 1,
                }
            }
            n
        })
    });
    group.finish();

    let mut bytes = c.benchmark_group("dmarc bytes");
    bytes.throughput(Throughput::Bytes(xml.len() as u64));
    bytes.bench_function("aggregate bytes, 909 KB report", |b| {
        b.iter(|| parse_aggregate(&xml, &limits).map(|r| r.records.len()))
    });
    bytes.finish();
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
