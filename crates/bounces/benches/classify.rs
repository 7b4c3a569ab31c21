//! How many returned messages per second one core reads and classifies.

/// The allocator the `herald` binary runs with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpora/sisimai-set-of-emails/maildir/bsd"
    );
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn classify(c: &mut Criterion) {
    let messages = corpus();
    assert!(!messages.is_empty(), "the sisimai corpus is missing");
    let mut group = c.benchmark_group("bounces");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("parse sisimai maildir/bsd", |b| {
        b.iter(|| messages.iter().filter(|m| herald_bounces::parse(m).is_some()).count())
    });
    // The floor: MIME parsing alone (mail-parser, as `parse` configures it).
    group.bench_function("mime parse only", |b| {
        let parser = mail_parser::MessageParser::new()
            .with_mime_headers()
            .default_header_ignore();
        b.iter(|| messages.iter().filter(|m| parser.parse(m.as_slice()).is_some()).count())
    });
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
