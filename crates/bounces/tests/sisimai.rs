//! Conformance against public corpora: Sisimai's set-of-emails (with the
//! answers go-sisimai and rb-sisimai expect) and KumoMTA's RFC 3464/5965
//! samples. Prints an agreement table and the misses, so a reader can see
//! what to improve; fails below the ratchet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald_bounces::{Kind, Report, parse};

const SISIMAI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sisimai-set-of-emails"
);
const KUMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpora/kumomta-dsn-arf");

/// Reason agreement required on the unambiguous rows (ratchet: raise it
/// when the classifier improves, never lower it).
const MIN_REASON: f64 = 0.97;
const MIN_STATUS: f64 = 0.95;
const MIN_HARD: f64 = 0.98;

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

struct Row {
    sample: String,
    index: usize,
    status: String,
    replycode: String,
    reason: String,
    hard: String,
    feedbacktype: String,
    agree: String,
}

fn expected() -> Vec<Row> {
    let tsv = String::from_utf8(read(&Path::new(SISIMAI).join("expected.tsv"))).expect("utf-8");
    let mut lines = tsv.lines();
    let head: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (cs, ci, cst, crc, cr, ch, cf, ca) = (
        col("sample"),
        col("index"),
        col("status"),
        col("replycode"),
        col("reason"),
        col("hardbounce"),
        col("feedbacktype"),
        col("reason_agree"),
    );
    lines
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|c| c.len() > ca)
        .map(|c| Row {
            sample: c[cs].to_string(),
            index: c[ci].parse().unwrap_or(1),
            status: c[cst].to_string(),
            replycode: c[crc].to_string(),
            reason: c[cr].to_string(),
            hard: c[ch].to_string(),
            feedbacktype: c[cf].to_string(),
            agree: c[ca].to_string(),
        })
        .filter(|r| Path::new(SISIMAI).join(&r.sample).is_file())
        .collect()
}

#[derive(Default)]
struct Tally {
    n: usize,
    ok: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.n += 1;
        self.ok += ok as usize;
    }
    fn pct(&self) -> f64 {
        if self.n == 0 {
            1.0
        } else {
            self.ok as f64 / self.n as f64
        }
    }
    fn line(&self, name: &str) -> String {
        format!(
            "| {name:<34} | {:>4} / {:<4} | {:>6.1}% |",
            self.ok,
            self.n,
            100.0 * self.pct()
        )
    }
}

#[test]
fn sisimai_expected_rows() {
    let rows = expected();
    assert!(
        rows.len() > 300,
        "the corpus is missing or truncated ({} rows)",
        rows.len()
    );
    let mut cache: BTreeMap<String, Option<Report>> = BTreeMap::new();
    let (mut status_u, mut hard_u) = (Tally::default(), Tally::default());
    let (mut reason_u, mut reason_a, mut status, mut hard, mut code, mut ftype) = (
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
        Tally::default(),
    );
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    for row in &rows {
        let report = cache
            .entry(row.sample.clone())
            .or_insert_with(|| parse(&read(&Path::new(SISIMAI).join(&row.sample))));
        let failure = report.as_ref().and_then(|r| r.failures.get(row.index - 1));
        let got_reason = failure
            .map(|f| f.reason.as_str().to_string())
            .unwrap_or_else(|| "(none)".into());
        let reason_ok = got_reason == row.reason;
        if row.agree == "no" {
            reason_a.add(reason_ok);
        } else {
            reason_u.add(reason_ok);
            if !reason_ok {
                *confusion.entry((row.reason.clone(), got_reason.clone())).or_default() += 1;
                misses.push(format!(
                    "{} #{}: expected {} got {} by {} [{}]",
                    row.sample,
                    row.index,
                    row.reason,
                    got_reason,
                    report.as_ref().map_or("-", |r| r.decoder),
                    failure
                        .map(|f| crate_clip(&format!(
                            "{} {:?} {:?} {}",
                            f.recipient, f.status, f.reply_code, f.diagnostic
                        )))
                        .unwrap_or_default()
                ));
            }
        }
        let got_status = failure.and_then(|f| f.status.clone()).unwrap_or_default();
        status.add(got_status == row.status);
        let got_hard = failure.map(|f| f.hard.to_string()).unwrap_or_default();
        hard.add(got_hard == row.hard);
        if row.agree != "no" {
            status_u.add(got_status == row.status);
            hard_u.add(got_hard == row.hard);
        }
        if std::env::var_os("FEEDBACK_VERBOSE").is_some() && got_hard != row.hard {
            println!(
                "HARD {} #{}: {} vs {} (reason {} vs {:?})",
                row.sample,
                row.index,
                got_hard,
                row.hard,
                row.reason,
                failure.map(|f| f.reason)
            );
        }
        let got_code = failure
            .and_then(|f| f.reply_code)
            .map(|c| c.to_string())
            .unwrap_or_default();
        code.add(got_code == row.replycode);
        if row.reason == "feedback" {
            ftype.add(failure.and_then(|f| f.feedback_type.clone()).unwrap_or_default() == row.feedbacktype);
        }
        if std::env::var_os("FEEDBACK_VERBOSE").is_some() && (got_status != row.status || got_code != row.replycode) {
            eprintln!(
                "STATUS/CODE {} #{}: status {} vs {}; code {} vs {}",
                row.sample, row.index, row.status, got_status, row.replycode, got_code
            );
        }
    }
    println!(
        "\nSisimai set-of-emails: {} rows in {} samples",
        rows.len(),
        cache.len()
    );
    println!("| measure                            | agree / rows | share   |");
    println!("|------------------------------------|--------------|---------|");
    println!("{}", reason_u.line("reason (unambiguous rows)"));
    println!("{}", reason_a.line("reason (ambiguous rows: go != rb)"));
    println!("{}", status_u.line("status (unambiguous rows)"));
    println!("{}", hard_u.line("hard/soft (unambiguous rows)"));
    println!("{}", status.line("status (all rows)"));
    println!("{}", hard.line("hard/soft (all rows)"));
    println!("{}", code.line("reply code"));
    println!("{}", ftype.line("feedback type"));
    let mut conf: Vec<_> = confusion.into_iter().collect();
    conf.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!("\nReason misses (expected -> got: count):");
    for ((e, g), n) in &conf {
        println!("  {e} -> {g}: {n}");
    }
    let show = if std::env::var_os("FEEDBACK_VERBOSE").is_some() {
        misses.len()
    } else {
        20
    };
    println!("\nMisses ({} in all, first {}):", misses.len(), show.min(misses.len()));
    for m in misses.iter().take(show) {
        println!("  {m}");
    }
    // The bar, on the rows where both Sisimai implementations
    // agree (where they differ, the status and the hard/soft verdict follow
    // whichever reason is taken).
    for (what, tally, min) in [
        ("reason", &reason_u, MIN_REASON),
        ("status", &status_u, MIN_STATUS),
        ("hard/soft", &hard_u, MIN_HARD),
    ] {
        assert!(
            tally.pct() >= min,
            "{what} agreement {:.1}% is below {:.1}%",
            100.0 * tally.pct(),
            100.0 * min
        );
    }
}

fn crate_clip(s: &str) -> String {
    s.chars().take(220).collect()
}

#[test]
fn negative_samples_give_nothing() {
    for p in files(&Path::new(SISIMAI).join("maildir/not")) {
        let r = parse(&read(&p));
        // Known deviation: this sample (Return-Path <>, From postmaster,
        // Subject "email bounce notification", "reject reason: Mailbox
        // full", the returned message attached) is a genuine mailbox-full
        // notice from a German provider. We read it as one rather than
        // special-case it away; it must at least be read correctly.
        if p.ends_with("rb-issue-368-bug.eml") {
            if let Some(r) = &r {
                assert_eq!(r.kind, Kind::Bounce);
                assert!(
                    r.failures
                        .iter()
                        .all(|f| f.reason == herald_bounces::Reason::MailboxFull),
                    "{r:?}"
                );
            }
            continue;
        }
        assert!(r.is_none(), "{} is not a bounce but gave {r:?}", p.display());
    }
}

fn assert_feedback(p: &Path) {
    let r = parse(&read(p)).unwrap_or_else(|| panic!("{}: no report", p.display()));
    assert_eq!(r.kind, Kind::Feedback, "{}", p.display());
    assert!(!r.failures.is_empty(), "{}", p.display());
    for f in &r.failures {
        assert!(
            !f.recipient.is_empty() || f.feedback_type.is_some(),
            "{}: {f:?}",
            p.display()
        );
    }
}

#[test]
fn arf_reports_are_feedback() {
    let bsd = Path::new(SISIMAI).join("maildir/bsd");
    let arf: Vec<_> = files(&bsd)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("arf-"))
        })
        .collect();
    assert!(!arf.is_empty());
    for p in arf {
        assert_feedback(&p);
    }
    for p in files(&Path::new(KUMO).join("rfc5965")) {
        assert_feedback(&p);
    }
}

/// `(recipient, "c.s.d")` pairs from a KumoMTA snapshot, in order.
fn snapshot_recipients(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    let mut i = 0;
    let num = |l: &str| {
        l.split(':')
            .nth(1)
            .unwrap_or("")
            .trim()
            .trim_end_matches(',')
            .to_string()
    };
    while i < lines.len() {
        if lines[i].starts_with("final_recipient: Recipient {") {
            let rcpt = lines[i..]
                .iter()
                .find_map(|l| l.strip_prefix("recipient: \""))
                .map(|s| s.trim_end_matches(',').trim_end_matches('"').to_ascii_lowercase())
                .unwrap_or_default();
            let st = lines[i..]
                .iter()
                .position(|l| l.starts_with("status: ReportStatus {"))
                .map(|k| i + k);
            let status = st
                .map(|k| format!("{}.{}.{}", num(lines[k + 1]), num(lines[k + 2]), num(lines[k + 3])))
                .unwrap_or_default();
            out.push((rcpt, status));
        }
        i += 1;
    }
    out
}

#[test]
fn kumomta_rfc3464_samples() {
    for p in files(&Path::new(KUMO).join("rfc3464")) {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        let snap = Path::new(KUMO)
            .join("expected")
            .join(format!("rfc3464_{stem}.snapshot.txt"));
        let want = snapshot_recipients(&String::from_utf8_lossy(&read(&snap)));
        let r = parse(&read(&p)).unwrap_or_else(|| panic!("{}: no report", p.display()));
        assert_eq!(r.kind, Kind::Bounce, "{}", p.display());
        let got: Vec<(String, String)> = r
            .failures
            .iter()
            .map(|f| (f.recipient.clone(), f.status.clone().unwrap_or_default()))
            .collect();
        let want: Vec<(String, String)> = want.into_iter().filter(|(a, _)| a.contains('@')).collect();
        // The Status field is kept unless it is the catch-all X.0.0 and the
        // diagnostic gives a precise code of the same class ("Status: 5.0.0"
        // with "550 5.4.1 …" yields 5.4.1, as Sisimai does).
        let same = |g: &(String, String), w: &(String, String)| {
            g.0 == w.0 && (g.1 == w.1 || (w.1.ends_with(".0.0") && g.1.get(..2) == w.1.get(..2)))
        };
        assert!(
            got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| same(g, w)),
            "{}: got {got:?}, want {want:?}",
            p.display()
        );
    }
}

#[test]
fn newline_variants_agree() {
    let tsv = String::from_utf8(read(&Path::new(SISIMAI).join("newline-variants.tsv"))).expect("utf-8");
    let mut checked = 0;
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 3 || c[2] != "yes" {
            continue;
        }
        let (v, b) = (Path::new(SISIMAI).join(c[0]), Path::new(SISIMAI).join(c[1]));
        if !v.is_file() || !b.is_file() {
            continue;
        }
        let reasons = |p: &Path| parse(&read(p)).map(|r| r.failures.iter().map(|f| f.reason).collect::<Vec<_>>());
        assert_eq!(reasons(&v), reasons(&b), "{} vs {}", c[0], c[1]);
        checked += 1;
    }
    assert!(checked > 0, "no newline variants were checked");
}

#[test]
fn odd_inputs_do_not_panic() {
    let mut paths: Vec<PathBuf> = ["size-0", "size-1", "size-2", "mbox-0", "mbox-1"]
        .iter()
        .map(|n| Path::new(SISIMAI).join("mailbox").join(n))
        .filter(|p| p.is_file())
        .collect();
    paths.extend(files(&Path::new(SISIMAI).join("maildir/err")));
    paths.extend(files(&Path::new(SISIMAI).join("maildir/tmp")));
    paths.extend(files(
        &Path::new(SISIMAI).join("to-be-debugged-because/something-is-wrong"),
    ));
    for p in &paths {
        let _ = parse(&read(p));
    }
    // Hostile shapes: long lines, deep nesting, binary, unterminated parts.
    let mut hostile: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\n\n\n".to_vec(),
        vec![b'@'; 100_000],
        (0..=255u8).cycle().take(200_000).collect(),
        format!(
            "From: MAILER-DAEMON\nSubject: Undelivered\n\n{}",
            "a@b.c ".repeat(50_000)
        )
        .into_bytes(),
        format!(
            "From: MAILER-DAEMON\nSubject: failure notice\n\n<{}@x.y>:\n{}",
            "a".repeat(100_000),
            "5.".repeat(50_000)
        )
        .into_bytes(),
    ];
    let mut nested = String::from("Content-Type: multipart/report; report-type=delivery-status; boundary=b0\n\n");
    for i in 0..200 {
        nested.push_str(&format!(
            "--b{i}\nContent-Type: multipart/mixed; boundary=b{}\n\n",
            i + 1
        ));
    }
    nested.push_str("--b200\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; x@y.z\nStatus: 5.1.1\n");
    hostile.push(nested.into_bytes());
    hostile.push(
        "Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\nContent-Type: message/delivery-status\n\n"
            .bytes()
            .chain("Final-Recipient: rfc822; a@b.c\nDiagnostic-Code: smtp; 550 ".bytes())
            .chain(std::iter::repeat_n(b'x', 300_000))
            .collect(),
    );
    // A phrase's first words over and over without its last ones.
    hostile.push(
        format!(
            "From: MAILER-DAEMON\nSubject: Undelivered\n\n<a@b.c>: host x said: 550 {}\n",
            "mailbox over recipient address account user ".repeat(20_000)
        )
        .into_bytes(),
    );
    // Every sample cut short at a few places, and with its bytes disturbed.
    for p in files(&Path::new(SISIMAI).join("maildir/bsd")) {
        let m = read(&p);
        for k in 1..8 {
            let _ = parse(&m[..m.len() * k / 8]);
        }
        let flipped: Vec<u8> = m
            .iter()
            .enumerate()
            .map(|(i, &b)| if i % 61 == 7 { b ^ 0x80 } else { b })
            .collect();
        let _ = parse(&flipped);
    }
    for h in &hostile {
        let t = std::time::Instant::now();
        let _ = parse(h);
        assert!(t.elapsed().as_secs() < 5, "too slow on hostile input");
    }
}

/// `FEEDBACK_DUMP=path[,path…] cargo test dump -- --nocapture` prints what
/// the parser makes of a message (a tool for whoever improves it).
#[test]
fn dump() {
    let Some(paths) = std::env::var_os("FEEDBACK_DUMP") else {
        return;
    };
    for p in paths.to_string_lossy().split(',') {
        let p = if Path::new(p).is_file() {
            PathBuf::from(p)
        } else {
            Path::new(SISIMAI).join("maildir/bsd").join(p)
        };
        println!("{}: {:#?}", p.display(), parse(&read(&p)));
    }
}

/// `cargo test --release --test sisimai throughput -- --ignored --nocapture`:
/// a rough messages-per-second figure without criterion (run it under
/// `perf stat` to see CPU time on a busy machine).
#[test]
#[ignore]
fn throughput() {
    let msgs: Vec<Vec<u8>> = files(&Path::new(SISIMAI).join("maildir/bsd"))
        .iter()
        .map(|p| read(p))
        .collect();
    let rounds: usize = std::env::var("FEEDBACK_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        n += msgs.iter().filter(|m| parse(m).is_some()).count();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} messages in {secs:.3}s: {:.0} messages/s ({n} reports)",
        msgs.len() * rounds,
        (msgs.len() * rounds) as f64 / secs
    );
}

/// The 37 messages of `maildir/err`, against what Debian's Sisimai 4.25
/// (libsisimai-perl 4.25.15, `research/sisimai/sisimai425.pl`) says of
/// them, per reason.
#[test]
fn maildir_err_against_sisimai_4_25() {
    let tsv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../research/sisimai/sisimai-4.25-maildir-err.tsv"
    ))
    .expect("research/sisimai/sisimai-4.25-maildir-err.tsv");
    let mut per_reason: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (file, index, reason) = (c[0], c[1].parse::<usize>().unwrap_or(1), c[3]);
        let got = parse(&read(&Path::new(SISIMAI).join("maildir/err").join(file)))
            .and_then(|r| r.failures.get(index - 1).map(|f| f.reason.as_str().to_string()))
            .unwrap_or_else(|| "(none)".into());
        if got != reason {
            println!("  {file} #{index}: Sisimai 4.25 says {reason}, we say {got}");
        }
        per_reason.entry(reason.to_string()).or_default().add(got == reason);
        all.add(got == reason);
    }
    println!("\nmaildir/err against Sisimai 4.25:");
    for (r, t) in &per_reason {
        println!("  {r:<16} {:>2} / {:<2}", t.ok, t.n);
    }
    println!("  {:<16} {:>2} / {:<2}", "all", all.ok, all.n);
    assert_eq!(all.n, 37, "the answers cover every message");
    // One known difference: a "user unknown" refusal after DATA, which 4.25
    // calls filtered and we read the way Sisimai 5 does.
    assert!(all.ok >= 36, "{} of 37 agree", all.ok);
}

/// What the generic rules achieve on one MTA family's bounces when that
/// family's own decoder is switched off (its messages, banners and status
/// tables unused), against the same rows with it.
#[test]
fn leave_one_family_out() {
    let rows: Vec<Row> = expected().into_iter().filter(|r| r.agree != "no").collect();
    println!("\n| family       | with decoder | without | rows |");
    println!("|--------------|--------------|---------|------|");
    let (mut with_all, mut without_all) = (Tally::default(), Tally::default());
    for family in [
        "postfix",
        "sendmail",
        "exim",
        "qmail",
        "exchange2007",
        "gmail",
        "opensmtpd",
        "courier",
    ] {
        let prefix = format!("maildir/bsd/lhost-{family}-");
        let mine: Vec<&Row> = rows.iter().filter(|r| r.sample.starts_with(&prefix)).collect();
        assert!(mine.len() >= 3, "{family}: too few rows ({})", mine.len());
        let off = herald_bounces::Options { disabled: &[family] };
        let (mut with, mut without) = (Tally::default(), Tally::default());
        for row in mine {
            let raw = read(&Path::new(SISIMAI).join(&row.sample));
            let reason = |r: Option<Report>| {
                r.and_then(|r| r.failures.get(row.index - 1).map(|f| f.reason.as_str().to_string()))
                    .unwrap_or_default()
            };
            let disabled = herald_bounces::parse_with(&raw, &off);
            assert_ne!(
                disabled.as_ref().map(|r| r.decoder),
                Some(family),
                "{} still decoded by {family}",
                row.sample
            );
            with.add(reason(parse(&raw)) == row.reason);
            without.add(reason(disabled) == row.reason);
        }
        println!(
            "| {family:<12} | {:>5} / {:<4} | {:>3} / {:<3} | {:>4} |",
            with.ok, with.n, without.ok, without.n, with.n
        );
        with_all.n += with.n;
        with_all.ok += with.ok;
        without_all.n += without.n;
        without_all.ok += without.ok;
    }
    println!(
        "| all          | {:>5} / {:<4} | {:>3} / {:<3} | {:>4} |",
        with_all.ok, with_all.n, without_all.ok, without_all.n, with_all.n
    );
    // The generic rules carry most of the weight: without its decoder, a
    // family still gets nine answers in ten right.
    assert!(
        without_all.pct() >= 0.90,
        "generic rules alone: {:.1}%",
        100.0 * without_all.pct()
    );
}

/// `cargo test --release --test sisimai slowest -- --ignored --nocapture`:
/// the samples that take longest to read, for whoever makes it faster.
#[test]
#[ignore]
fn slowest() {
    // FEEDBACK_ONLY=part-of-a-name narrows it to some samples, read more
    // often (to profile them).
    let only = std::env::var("FEEDBACK_ONLY").ok();
    let rounds = if only.is_some() { 5000 } else { 50 };
    let mut times: Vec<(std::time::Duration, usize, PathBuf)> = files(&Path::new(SISIMAI).join("maildir/bsd"))
        .into_iter()
        .filter(|p| only.as_deref().is_none_or(|o| p.to_string_lossy().contains(o)))
        .map(|p| {
            let raw = read(&p);
            let t = std::time::Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(parse(std::hint::black_box(&raw)));
            }
            (t.elapsed() / rounds, raw.len(), p)
        })
        .collect();
    let total: std::time::Duration = times.iter().map(|t| t.0).sum();
    times.sort_by_key(|t| std::cmp::Reverse(t.0));
    println!("total {total:?} for {} samples", times.len());
    for (t, len, p) in times.iter().take(25) {
        println!(
            "{t:>10.1?} {len:>7} {}",
            p.file_name().unwrap_or_default().to_string_lossy()
        );
    }
}

/// A bounce forwarded by hand ("Fwd: Returned mail: ...", every line
/// quoted with `> `) is read through its quoting: the failed recipient is
/// the one in the forwarded report, not the people who forwarded it.
#[test]
fn forwarded_bounce_is_read_through_its_quoting() {
    let r = parse(&read(&Path::new(SISIMAI).join("maildir/bsd/lhost-sendmail-14.eml"))).expect("a report");
    let who: Vec<&str> = r.failures.iter().map(|f| f.recipient.as_str()).collect();
    assert_eq!(who, ["kijitora@example.com"]);
    assert_eq!(r.failures[0].reason.as_str(), "userunknown");
    assert_eq!(r.decoder, "sendmail");
}
