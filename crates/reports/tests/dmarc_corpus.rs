//! Conformance of `herald_reports` against real reports: every
//! aggregate, failure and TLS report in parsedmarc's samples and Stalwart's
//! mail-auth resources (`../shared/corpora/*/README.md` say where they come
//! from and what each expects), compared with their golden files field by
//! field, and with independent counts where there is no golden file.
//!
//! Every disagreement is listed, then the test fails. Run with
//! `-- --nocapture` to see the tally line:
//! `cargo test -p herald-reports --test dmarc_corpus -- --nocapture`.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use herald_reports::{AggregateReport, FailureReport, Report, ReportError, TlsReport, parse_report};
use serde_json::Value;

const CORPORA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpora");

fn parsedmarc(rel: &str) -> PathBuf {
    Path::new(CORPORA).join("parsedmarc-samples").join(rel)
}

fn stalwart(rel: &str) -> PathBuf {
    Path::new(CORPORA).join("stalwart-mail-auth").join(rel)
}

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

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn golden(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON string as an owned option, the form most fields compare in.
fn js(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// What was read, for the closing line, and every disagreement found.
/// Files count once however many checks read them.
#[derive(Default)]
struct Run {
    seen: HashSet<PathBuf>,
    files: usize,
    reports: usize,
    records: usize,
    messages: u64,
    checks: usize,
    misses: Vec<String>,
}

impl Run {
    /// Parses a file, counts it, and checks that the report survives the
    /// store's JSON round trip unchanged.
    fn parse(&mut self, path: &Path) -> Result<Report, ReportError> {
        let first = self.seen.insert(path.to_path_buf());
        let result = parse_report(&read(path));
        if first {
            self.files += 1;
            if let Ok(report) = &result {
                self.reports += 1;
                if let Report::Aggregate(a) = report {
                    self.records += a.records.len();
                    self.messages += a.message_count();
                }
                let json = serde_json::to_string(report).expect("serialise");
                let back: Result<Report, _> = serde_json::from_str(&json);
                self.check(
                    &name(path),
                    "survives a JSON round trip",
                    back.as_ref().ok() == Some(report),
                );
            }
        }
        result
    }

    fn aggregate(&mut self, path: &Path) -> AggregateReport {
        match self.parse(path) {
            Ok(Report::Aggregate(a)) => a,
            other => self.miss(path, "an aggregate report", &other),
        }
    }

    fn failure(&mut self, path: &Path) -> FailureReport {
        match self.parse(path) {
            Ok(Report::Failure(f)) => f,
            other => self.miss(path, "a failure report", &other),
        }
    }

    fn tls(&mut self, path: &Path) -> TlsReport {
        match self.parse(path) {
            Ok(Report::TlsRpt(t)) => t,
            other => self.miss(path, "a TLS report", &other),
        }
    }

    /// Records a file that is not what it should be; the empty report
    /// returned lets the field checks go on (and list what differs).
    fn miss<T: Default>(&mut self, path: &Path, wanted: &str, got: &Result<Report, ReportError>) -> T {
        self.checks += 1;
        self.misses.push(format!("{}: not {wanted}: {got:?}", name(path)));
        T::default()
    }

    fn check(&mut self, file: &str, what: &str, ok: bool) {
        self.checks += 1;
        if !ok {
            self.misses.push(format!("{file}: {what}"));
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, file: &str, what: &str, ours: T, expected: T) {
        self.checks += 1;
        if ours != expected {
            self.misses
                .push(format!("{file}: {what}: ours {ours:?}, expected {expected:?}"));
        }
    }
}

/// Field comparisons, one a line: `"what": ours => expected;`.
macro_rules! same {
    ($run:expr, $file:expr, { $($what:expr => $ours:expr, $expected:expr;)+ }) => {{
        $( $run.eq(&$file, &$what, $ours, $expected); )+
    }};
}

// ---------------------------------------------------------------------------
// Independent counts: for reports without a golden file, the records and the
// message total are counted from the raw XML by plain substring search
// (`<record>` start tags; the integers between `<count>` and `</count>`),
// after unpacking with flate2, zip and mail-parser directly. No XML parser
// is involved, so the parser under test is not checking itself.

fn scan_xml(xml: &[u8]) -> (usize, u64) {
    let text = String::from_utf8_lossy(xml);
    let records = text.matches("<record>").count();
    let mut total = 0u64;
    let mut rest: &str = &text;
    while let Some(at) = rest.find("<count>") {
        rest = &rest[at + "<count>".len()..];
        let end = rest.find("</count>").expect("</count>");
        total += rest[..end].trim().parse::<u64>().expect("a count");
        rest = &rest[end..];
    }
    (records, total)
}

fn unpack_raw(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gunzip");
    } else if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        zip.by_index(0).expect("entry").read_to_end(&mut out).expect("unzip");
    } else {
        out = bytes.to_vec();
    }
    out
}

/// The report XML inside a file, found without the code under test.
fn raw_xml(path: &Path) -> Vec<u8> {
    let bytes = read(path);
    if !name(path).ends_with(".eml") {
        return unpack_raw(&bytes);
    }
    let msg = mail_parser::MessageParser::default().parse(&bytes).expect("a message");
    msg.attachments()
        .map(|a| unpack_raw(a.contents()))
        .find(|x| String::from_utf8_lossy(x).contains("<feedback"))
        .unwrap_or_else(|| panic!("{}: no XML attachment", path.display()))
}

/// Records and message total of a golden file in parsedmarc's or
/// mail-auth's form.
fn golden_counts(g: &Value) -> (usize, u64) {
    let records = g["records"]
        .as_array()
        .or_else(|| g["record"].as_array())
        .expect("records");
    let count = |r: &Value| {
        r["count"]
            .as_u64()
            .or_else(|| r["row"]["count"].as_u64())
            .expect("count")
    };
    (records.len(), records.iter().map(count).sum())
}

/// `2018-10-01 09:20:27` or `2024-01-09T23:59:59Z` (UTC) as Unix seconds,
/// by the days-from-civil formula, independent of the code under test.
fn utc(s: &str) -> Option<i64> {
    let n: Vec<i64> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, m, d, hh, mm, ss] = n[..6] else { return None };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

// ---------------------------------------------------------------------------
// Aggregate reports.

/// Every parsedmarc aggregate sample parses, with the record count and
/// message total of its golden file, or of the independent scan.
fn aggregate_counts(run: &mut Run) {
    for dir in ["aggregate", "aggregate_invalid", "extract_report"] {
        for path in files(&parsedmarc(dir)) {
            let file = format!("{dir}/{}", name(&path));
            let ours = run.aggregate(&path);
            let (records, total) = match name(&path).as_str() {
                "old_draft_from_wiki.xml" => {
                    golden_counts(&golden(&parsedmarc("expected/aggregate/old_draft_from_wiki.xml.json")))
                }
                "rfc9990-sample.xml" => {
                    // Byte-identical to Stalwart's 004.xml (its README), so
                    // that golden holds.
                    assert_eq!(read(&path), read(&stalwart("dmarc-feedback/004.xml")));
                    golden_counts(&golden(&stalwart("dmarc-feedback/004.json")))
                }
                _ => scan_xml(&raw_xml(&path)),
            };
            same!(run, file, {
                "record count" => ours.records.len(), records;
                "message total" => ours.message_count(), total;
            });
        }
    }
}

/// The field assertions of parsedmarc's README (transcribed from its
/// tests/test_init.py), and its golden for the draft-schema report.
fn parsedmarc_assertions(run: &mut Run) {
    let upper = run.aggregate(&parsedmarc("aggregate_invalid/report_with_upper_cased_pass.xml"));
    let r = upper.records.first().cloned().unwrap_or_default();
    let results: Vec<&str> = r.dkim_results.iter().map(|d| d.result.as_str()).collect();
    let spf: Vec<&str> = r.spf_results.iter().map(|d| d.result.as_str()).collect();
    same!(run, "upper_cased_pass", {
        "evaluated dkim, spf, disposition" => (r.dkim.as_str(), r.spf.as_str(), r.disposition.as_str()), ("pass", "pass", "none");
        "dkim auth result" => results, vec!["pass"];
        "spf auth result" => spf, vec!["pass"];
    });

    // parsedmarc reduces a domain-like org_name to its lower-case base
    // domain; we keep the reporter's spelling (as mail-auth does), so the
    // name is compared without case.
    let outlook = run.aggregate(&parsedmarc(
        "aggregate/protection.outlook.com!example.com!1711756800!1711843200.xml",
    ));
    let google = run.aggregate(&parsedmarc(
        "aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml",
    ));
    same!(run, "org names", {
        "outlook" => outlook.org_name.to_ascii_lowercase(), "outlook.com".to_string();
        "google .eml" => google.org_name, "google.com".to_string();
    });

    let s = run.aggregate(&parsedmarc("aggregate/rfc9990-sample.xml"));
    let p = &s.policy;
    let r = s.records.first().cloned().unwrap_or_default();
    let d = r.dkim_results.first().cloned().unwrap_or_default();
    let f = r.spf_results.first().cloned().unwrap_or_default();
    same!(run, "rfc9990-sample.xml", {
        "version" => s.version.clone(), some("1.0");
        "org_name" => s.org_name.clone(), "Sample Reporter".to_string();
        "email" => s.email.clone(), some("report_sender@example-reporter.com");
        "extra_contact_info" => s.extra_contact_info.clone(), some("...");
        "report_id" => s.report_id.clone(), "3v98abbp8ya9n3va8yr8oa3ya".to_string();
        "generator" => s.generator.clone(), some("Example DMARC Aggregate Reporter v1.2");
        "policy domain" => p.domain.clone(), "example.com".to_string();
        "p, sp, np" => (p.p.clone(), p.sp.clone(), p.np.clone()), (some("quarantine"), some("none"), some("none"));
        "testing, discovery_method" => (p.testing.clone(), p.discovery_method.clone()), (some("n"), some("treewalk"));
        "adkim, aspf default to r" => (p.adkim.clone(), p.aspf.clone()), (some("r"), some("r"));
        "pct, fo" => (p.pct, p.fo.clone()), (None, None);
        "records" => s.records.len(), 1;
        "source, count" => (r.source_ip.as_str(), r.count), ("192.0.2.123", 123);
        "disposition (RFC 9990 pass), dkim, spf" => (r.disposition.as_str(), r.dkim.as_str(), r.spf.as_str()), ("pass", "pass", "fail");
        "dkim auth" => (d.domain.as_str(), d.selector.as_deref(), d.result.as_str(), d.human_result.as_deref()), ("example.com", Some("abc123"), "pass", None);
        "spf auth" => (f.domain.as_str(), f.result.as_str()), ("example.com", "fail");
        "namespace" => s.namespace.clone(), some("urn:ietf:params:xml:ns:dmarc-2.0");
    });

    let e = run.aggregate(&parsedmarc(
        "aggregate/example.net!example.com!1529366400!1529452799.xml",
    ));
    let x = run.aggregate(&parsedmarc(
        "aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml",
    ));
    same!(run, "example.net (RFC 7489)", {
        "pct, fo" => (e.policy.pct, e.policy.fo.clone()), (Some(100), some("0"));
        "np, testing, discovery_method" => (e.policy.np.clone(), e.policy.testing.clone(), e.policy.discovery_method.clone()), (None, None, None);
        "generator, namespace" => (e.generator.clone(), e.namespace.clone()), (None, None);
    });
    same!(run, "rfc9990-example.net", {
        "np, testing, discovery_method" => (x.policy.np.clone(), x.policy.testing.clone(), x.policy.discovery_method.clone()), (some("reject"), some("y"), some("treewalk"));
    });

    // parsedmarc's golden for the draft-schema report, less what parsedmarc
    // adds itself: GeoIP and DNS enrichment, dates in the doc author's time
    // zone, and its defaults for an absent selector, scope, fo and
    // envelope_from.
    let g = golden(&parsedmarc("expected/aggregate/old_draft_from_wiki.xml.json"));
    let d = run.aggregate(&parsedmarc("aggregate/old_draft_from_wiki.xml"));
    let (m, gp, gr) = (&g["report_metadata"], &g["policy_published"], &g["records"][0]);
    let r = d.records.first().cloned().unwrap_or_default();
    let auth = |list: &Value| -> Vec<(Option<String>, Option<String>)> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|a| (js(&a["domain"]), js(&a["result"])))
            .collect()
    };
    let ours_dkim: Vec<_> = r
        .dkim_results
        .iter()
        .map(|a| (some(&a.domain), some(&a.result)))
        .collect();
    let ours_spf: Vec<_> = r
        .spf_results
        .iter()
        .map(|a| (some(&a.domain), some(&a.result)))
        .collect();
    same!(run, "old_draft_from_wiki.xml", {
        "version (the draft schema has none)" => d.version.clone(), None;
        "org_name" => some(&d.org_name), js(&m["org_name"]);
        "email" => d.email.clone(), js(&m["org_email"]);
        "extra_contact_info" => d.extra_contact_info.clone(), js(&m["org_extra_contact_info"]);
        "report_id" => some(&d.report_id), js(&m["report_id"]);
        "policy domain" => some(&d.policy.domain), js(&gp["domain"]);
        "adkim, aspf" => (d.policy.adkim.clone(), d.policy.aspf.clone()), (js(&gp["adkim"]), js(&gp["aspf"]));
        "p, sp" => (d.policy.p.clone(), d.policy.sp.clone()), (js(&gp["p"]), js(&gp["sp"]));
        "pct" => d.policy.pct.map(|p| p.to_string()), js(&gp["pct"]);
        "source ip" => some(&r.source_ip), js(&gr["source"]["ip_address"]);
        "count" => Some(r.count), gr["count"].as_u64();
        "disposition" => some(&r.disposition), js(&gr["policy_evaluated"]["disposition"]);
        "dkim, spf" => (some(&r.dkim), some(&r.spf)), (js(&gr["policy_evaluated"]["dkim"]), js(&gr["policy_evaluated"]["spf"]));
        "header_from" => some(&r.header_from), js(&gr["identifiers"]["header_from"]);
        "dkim auth" => ours_dkim, auth(&gr["auth_results"]["dkim"]);
        "spf auth" => ours_spf, auth(&gr["auth_results"]["spf"]);
    });
}

/// The gzip and zip of `nice-input.xml` read as it does, and not as the
/// changed copy.
fn extract_report(run: &mut Run) {
    let nice = run.aggregate(&parsedmarc("extract_report/nice-input.xml"));
    let changed = run.aggregate(&parsedmarc("extract_report/changed-input.xml"));
    run.check("changed-input.xml", "differs from nice-input.xml", nice != changed);
    for packed in ["nice-input.xml.gz", "nice-input.xml.zip"] {
        let ours = run.aggregate(&parsedmarc(&format!("extract_report/{packed}")));
        run.check(
            packed,
            "equals nice-input.xml",
            ours == nice && !ours.records.is_empty(),
        );
        run.check(packed, "differs from changed-input.xml", ours != changed);
    }
}

/// A mail-auth enum variant as our lower-case word: `Pass` → `pass`,
/// `TrustedForwarder` → `trusted_forwarder`, `Relaxed` → `r`;
/// `Unspecified` is absence.
fn word(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let w = match s {
        "Unspecified" => return None,
        "Relaxed" => "r".to_string(),
        "Strict" => "s".to_string(),
        "MailFrom" => "mfrom".to_string(),
        "SoftFail" | "TempError" | "PermError" | "BodyHash" => s.to_ascii_lowercase(),
        "AuthFailure" => "auth-failure".to_string(),
        _ => s.chars().enumerate().fold(String::new(), |mut out, (i, c)| {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            out
        }),
    };
    Some(w)
}

/// A Stalwart `dmarc-feedback` report against its golden JSON (mail-auth's
/// serde names, mapped by [`word`]).
fn compare_stalwart_aggregate(run: &mut Run, file: &str, ours: &AggregateReport, g: &Value) {
    let (meta, p) = (&g["report_metadata"], &g["policy_published"]);
    let ourp = &ours.policy;
    let errors: Vec<String> = meta["error"].as_array().into_iter().flatten().filter_map(js).collect();
    // mail-auth leaves an absent adkim/aspf Unspecified; ours is RFC 7489's
    // default, `r`, as parsedmarc has it.
    let or_r = |v: &Value| word(v).or(some("r"));
    same!(run, file, {
        // mail-auth writes 0.0 for an absent <version>.
        "version" => ours.version.as_deref().and_then(|v| v.parse::<f64>().ok()), g["version"].as_f64().filter(|v| *v != 0.0);
        "org_name" => some(&ours.org_name), js(&meta["org_name"]);
        "email" => ours.email.clone(), js(&meta["email"]);
        "extra_contact_info" => ours.extra_contact_info.clone(), js(&meta["extra_contact_info"]);
        "report_id" => some(&ours.report_id), js(&meta["report_id"]);
        "begin" => Some(ours.begin), meta["date_range"]["begin"].as_i64();
        "end" => Some(ours.end), meta["date_range"]["end"].as_i64();
        "errors" => ours.errors.clone(), errors;
        "generator" => ours.generator.clone(), js(&meta["generator"]);
        "policy domain" => some(&ourp.domain), js(&p["domain"]);
        "adkim" => ourp.adkim.clone(), or_r(&p["adkim"]);
        "aspf" => ourp.aspf.clone(), or_r(&p["aspf"]);
        "p" => ourp.p.clone(), word(&p["p"]);
        "sp" => ourp.sp.clone(), word(&p["sp"]);
        "np" => ourp.np.clone(), word(&p["np"]);
        "discovery_method" => ourp.discovery_method.clone(), word(&p["discovery_method"]);
        "fo" => ourp.fo.clone(), js(&p["fo"]);
        // mail-auth's `testing` is a bool (absent = false).
        "testing" => ourp.testing.as_deref() == Some("y"), p["testing"].as_bool().unwrap_or(false);
    });
    let records = g["record"].as_array().cloned().unwrap_or_default();
    run.eq(file, "records", ours.records.len(), records.len());
    for (i, (r, gr)) in ours.records.iter().zip(&records).enumerate() {
        let (row, id) = (&gr["row"], &gr["identifiers"]);
        let pe = &row["policy_evaluated"];
        let reasons: Vec<_> = pe["reason"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| (word(&x["type_"]), js(&x["comment"])))
            .collect();
        // mail-auth reads RFC 7489's `sampled_out` (removed by RFC 9990) as
        // Other; we keep the reporter's word.
        let ours_reasons: Vec<_> = r
            .reasons
            .iter()
            .map(|x| {
                (
                    some(if x.kind == "sampled_out" { "other" } else { &x.kind }),
                    x.comment.clone(),
                )
            })
            .collect();
        let auth = |list: &Value, key: &str| -> Vec<_> {
            let list = list.as_array().into_iter().flatten();
            list.map(|a| {
                let extra = if key == "selector" {
                    js(&a[key]).filter(|s| !s.is_empty())
                } else {
                    word(&a[key])
                };
                (
                    js(&a["domain"]).unwrap_or_default(),
                    extra,
                    word(&a["result"]).unwrap_or_default(),
                    js(&a["human_result"]),
                )
            })
            .collect()
        };
        let ours_dkim: Vec<_> = r
            .dkim_results
            .iter()
            .map(|a| {
                (
                    a.domain.clone(),
                    a.selector.clone(),
                    a.result.clone(),
                    a.human_result.clone(),
                )
            })
            .collect();
        let ours_spf: Vec<_> = r
            .spf_results
            .iter()
            .map(|a| {
                (
                    a.domain.clone(),
                    a.scope.clone(),
                    a.result.clone(),
                    a.human_result.clone(),
                )
            })
            .collect();
        let at = |what: &str| format!("record {} {what}", i + 1);
        same!(run, file, {
            at("source_ip") => some(&r.source_ip), js(&row["source_ip"]);
            at("count") => Some(r.count), row["count"].as_u64();
            at("disposition") => some(&r.disposition), word(&pe["disposition"]);
            at("dkim") => some(&r.dkim), word(&pe["dkim"]);
            at("spf") => some(&r.spf), word(&pe["spf"]);
            at("reasons") => ours_reasons, reasons;
            at("envelope_to") => r.envelope_to.clone(), js(&id["envelope_to"]);
            // mail-auth writes "" for an absent envelope_from.
            at("envelope_from") => r.envelope_from.clone().unwrap_or_default(), js(&id["envelope_from"]).unwrap_or_default();
            at("header_from") => some(&r.header_from), js(&id["header_from"]);
            at("dkim auth results") => ours_dkim, auth(&gr["auth_results"]["dkim"], "selector");
            at("spf auth results") => ours_spf, auth(&gr["auth_results"]["spf"], "scope");
        });
    }
}

/// Stalwart's `dmarc-feedback/*.xml` and real report emails `*.eml`, each
/// against its same-stem golden, and the extra asserts of mail-auth's tests.
fn stalwart_aggregates(run: &mut Run) {
    for path in files(&stalwart("dmarc-feedback")) {
        let n = name(&path);
        if n.ends_with(".xml") || n.ends_with(".eml") {
            let ours = run.aggregate(&path);
            compare_stalwart_aggregate(
                run,
                &format!("stalwart {n}"),
                &ours,
                &golden(&path.with_extension("json")),
            );
        }
    }
    let r004 = run.aggregate(&stalwart("dmarc-feedback/004.xml"));
    let r005 = run.aggregate(&stalwart("dmarc-feedback/005.xml"));
    let scope = r005
        .records
        .first()
        .and_then(|r| r.spf_results.first())
        .and_then(|s| s.scope.clone());
    same!(run, "stalwart 004, 005", {
        "004 domain, np, discovery_method, testing" => (r004.policy.domain.as_str(), r004.policy.np.as_deref(), r004.policy.discovery_method.as_deref(), r004.policy.testing.as_deref()), ("example.com", Some("none"), Some("treewalk"), Some("n"));
        "005 p, np" => (r005.policy.p.clone(), r005.policy.np.clone()), (some("reject"), None);
        "005 first spf scope" => scope, some("helo");
    });
}

// ---------------------------------------------------------------------------
// Failure reports.

fn failures(run: &mut Run) {
    for path in files(&parsedmarc("failure")) {
        let file = format!("failure/{}", name(&path));
        let f = run.failure(&path);
        run.eq(&file, "feedback_type", f.feedback_type.as_str(), "auth-failure");
        run.check(
            &file,
            "has a source ip and a reported domain",
            f.source_ip.is_some() && f.reported_domain.is_some(),
        );
    }
    let exim = run.failure(&parsedmarc("failure/exim_plain_text_only_no_arf_part.eml"));
    run.check(
        "exim",
        "authentication results present",
        !exim.authentication_results.is_empty(),
    );
    same!(run, "exim", {
        "feedback_type" => exim.feedback_type.as_str(), "auth-failure";
        "source ip" => exim.source_ip.as_deref(), Some("203.0.113.68");
        "reported domain" => exim.reported_domain.as_deref(), Some("example.com");
        "subject" => exim.subject.as_deref(), Some("Payment from your account.");
    });

    // Issue 18: the report's own Date (Fri, 28 Sep 2018 16:48:43 +0800),
    // which dates a report that gives no Arrival-Date instead of the import.
    let netease = run.failure(&parsedmarc("failure/[Netease DMARC Failure Report] Rent Reminder.eml"));
    same!(run, "netease", {
        "report_date" => netease.report_date, Some(1_538_124_523);
    });

    // parsedmarc's golden, less enrichment (GeoIP, reverse DNS) and the
    // parsed-sample details it adds. Its Message-ID is the report's; the
    // returned message carries the same one.
    let stem = "DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml";
    let g = golden(&parsedmarc(&format!("expected/failure/{stem}.json")));
    let ours = run.failure(&parsedmarc(&format!("failure/{stem}")));
    let sample = &g["parsed_sample"];
    same!(run, "domain.de failure", {
        "feedback_type" => some(&ours.feedback_type), js(&g["feedback_type"]);
        "user_agent" => ours.user_agent.clone(), js(&g["user_agent"]);
        "version" => ours.version.clone(), js(&g["version"]);
        "original_mail_from" => ours.original_mail_from.clone(), js(&g["original_mail_from"]);
        "original_rcpt_to" => some(&ours.original_rcpt_to.join(", ")), js(&g["original_rcpt_to"]);
        "arrival_date" => ours.arrival_date, g["arrival_date_utc"].as_str().and_then(utc);
        "authentication_results" => ours.authentication_results.clone(), js(&g["authentication_results"]).into_iter().collect::<Vec<_>>();
        "delivery_result" => ours.delivery_result.clone(), js(&g["delivery_result"]);
        "auth_failure" => ours.auth_failure.clone(), js(&g["auth_failure"][0]);
        "reported_domain" => ours.reported_domain.clone(), js(&g["reported_domain"]);
        "source ip" => ours.source_ip.clone(), js(&g["source"]["ip_address"]);
        "dkim_domain" => ours.dkim_domain.clone(), js(&g["dkim_domain"]);
        "original_envelope_id" => ours.original_envelope_id.clone(), js(&g["original_envelope_id"]);
        "sample subject" => ours.subject.clone(), js(&sample["subject"]);
        "sample from" => ours.from.clone(), js(&sample["from"]["address"]);
        "sample to" => ours.to.clone(), js(&sample["to"][0]["address"]);
        "message id" => ours.message_id.clone(), js(&g["message_id"]).map(|m| m.trim_matches(['<', '>']).to_string());
    });

    // Stalwart's ARF samples: the auth-failure ones are failure reports,
    // field by field against the golden; the abuse ones are complaints.
    for path in files(&stalwart("arf"))
        .into_iter()
        .filter(|p| name(p).ends_with(".eml"))
    {
        let file = format!("stalwart arf/{}", name(&path));
        let g = golden(&path.with_extension("json"));
        if g["feedback_type"] == "AuthFailure" {
            let ours = run.failure(&path);
            compare_stalwart_arf(run, &file, &ours, &g);
        } else {
            let result = run.parse(&path);
            let refused = matches!(&result, Err(ReportError::NotAReport(m)) if m.contains("abuse"));
            run.check(
                &file,
                &format!("an abuse report is not a failure report: {result:?}"),
                refused,
            );
        }
    }
}

fn compare_stalwart_arf(run: &mut Run, file: &str, ours: &FailureReport, g: &Value) {
    // Stalwart keeps addresses as written, with angle brackets, and
    // Authentication-Results folded; ours are without brackets, unfolded.
    let addr = |v: &Value| js(v).map(|s| s.trim_matches(['<', '>']).to_string());
    let auth: Vec<String> = g["authentication_results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    same!(run, file, {
        "feedback_type" => some(&ours.feedback_type), word(&g["feedback_type"]);
        "arrival_date" => ours.arrival_date, g["arrival_date"].as_i64();
        "authentication_results" => ours.authentication_results.clone(), auth;
        "original_envelope_id" => ours.original_envelope_id.clone(), js(&g["original_envelope_id"]);
        "original_mail_from" => ours.original_mail_from.clone(), addr(&g["original_mail_from"]);
        "original_rcpt_to" => ours.original_rcpt_to.first().cloned(), addr(&g["original_rcpt_to"]);
        "reported_domain" => ours.reported_domain.clone(), js(&g["reported_domain"][0]);
        "reporting_mta" => ours.reporting_mta.clone(), js(&g["reporting_mta"]);
        "source_ip" => ours.source_ip.clone(), js(&g["source_ip"]);
        "user_agent" => ours.user_agent.clone(), js(&g["user_agent"]);
        "version" => ours.version.as_deref().and_then(|v| v.parse::<f64>().ok()), g["version"].as_f64();
        "auth_failure" => ours.auth_failure.clone(), word(&g["auth_failure"]);
        "delivery_result" => ours.delivery_result.clone(), word(&g["delivery_result"]);
        "identity_alignment" => ours.identity_alignment.clone(), word(&g["identity_alignment"]);
        "dkim_domain" => ours.dkim_domain.clone(), js(&g["dkim_domain"]);
        "dkim_selector" => ours.dkim_selector.clone(), js(&g["dkim_selector"]);
        "spf_dns" => ours.spf_dns.clone(), js(&g["spf_dns"]);
    });
}

// ---------------------------------------------------------------------------
// SMTP TLS reports.

/// A TLS report against RFC 8460 JSON: a golden in the RFC's own names, or
/// the input itself read directly with serde_json.
fn compare_rfc8460(run: &mut Run, file: &str, ours: &TlsReport, g: &Value) {
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::Array(a) => a.iter().filter_map(js).collect(),
            Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let policies = g["policies"].as_array().cloned().unwrap_or_default();
    same!(run, file, {
        "organization_name" => some(&ours.organization_name), js(&g["organization-name"]);
        "report_id" => some(&ours.report_id), js(&g["report-id"]);
        "contact_info" => ours.contact_info.clone(), js(&g["contact-info"]);
        "begin" => Some(ours.begin), g["date-range"]["start-datetime"].as_str().and_then(utc);
        "end" => Some(ours.end), g["date-range"]["end-datetime"].as_str().and_then(utc);
        "policies" => ours.policies.len(), policies.len();
    });
    for (i, (p, gp)) in ours.policies.iter().zip(&policies).enumerate() {
        let (pol, sum) = (&gp["policy"], &gp["summary"]);
        let details = gp["failure-details"].as_array().cloned().unwrap_or_default();
        let at = |what: &str| format!("policy {} {what}", i + 1);
        same!(run, file, {
            at("type") => some(&p.policy_type), js(&pol["policy-type"]);
            at("domain") => p.policy_domain.clone(), js(&pol["policy-domain"]).unwrap_or_default();
            at("strings") => p.policy_strings.clone(), list(&pol["policy-string"]);
            at("mx-host") => p.mx_host.clone(), list(&pol["mx-host"]);
            at("successful") => p.successful, sum["total-successful-session-count"].as_u64().unwrap_or(0);
            at("failed") => p.failed, sum["total-failure-session-count"].as_u64().unwrap_or(0);
            at("failure details") => p.failures.len(), details.len();
        });
        for (d, gd) in p.failures.iter().zip(&details) {
            same!(run, file, {
                at("result-type") => some(&d.result_type), js(&gd["result-type"]);
                at("sending-mta-ip") => d.sending_mta_ip.clone(), js(&gd["sending-mta-ip"]);
                at("receiving-mx-hostname") => d.receiving_mx_hostname.clone(), js(&gd["receiving-mx-hostname"]);
                at("receiving-mx-helo") => d.receiving_mx_helo.clone(), js(&gd["receiving-mx-helo"]);
                at("receiving-ip") => d.receiving_ip.clone(), js(&gd["receiving-ip"]);
                at("failed-session-count") => Some(d.failed_session_count), gd["failed-session-count"].as_u64();
                at("additional-information") => d.additional_information.clone(), js(&gd["additional-information"]).map(|s| s.trim().to_string());
                at("failure-reason-code") => d.failure_reason_code.clone(), js(&gd["failure-reason-code"]);
            });
        }
    }
}

fn tls_reports(run: &mut Run) {
    for path in files(&parsedmarc("smtp_tls")) {
        let ours = run.tls(&path);
        if name(&path).ends_with(".json") {
            compare_rfc8460(run, &format!("smtp_tls/{}", name(&path)), &ours, &golden(&path));
        }
    }
    // parsedmarc's normalised golden for smtp_tls.json (its own names).
    let g = &golden(&parsedmarc("expected/smtp_tls/smtp_tls.json.json"))[0];
    let ours = run.tls(&parsedmarc("smtp_tls/smtp_tls.json"));
    let f = "smtp_tls.json golden";
    let policies = g["policies"].as_array().cloned().unwrap_or_default();
    same!(run, f, {
        "organization_name" => some(&ours.organization_name), js(&g["organization_name"]);
        "report_id" => some(&ours.report_id), js(&g["report_id"]);
        "begin" => Some(ours.begin), g["begin_date"].as_str().and_then(utc);
        "end" => Some(ours.end), g["end_date"].as_str().and_then(utc);
        "policies" => ours.policies.len(), policies.len();
    });
    for (p, gp) in ours.policies.iter().zip(&policies) {
        let strings: Vec<String> = gp["policy_strings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(js)
            .collect();
        let details = gp["failure_details"].as_array().cloned().unwrap_or_default();
        same!(run, f, {
            "policy domain" => some(&p.policy_domain), js(&gp["policy_domain"]);
            "policy type" => some(&p.policy_type), js(&gp["policy_type"]);
            "policy strings" => p.policy_strings.clone(), strings;
            "successful" => Some(p.successful), gp["successful_session_count"].as_u64();
            "failed" => Some(p.failed), gp["failed_session_count"].as_u64();
            "failure details" => p.failures.len(), details.len();
        });
        for (d, gd) in p.failures.iter().zip(&details) {
            same!(run, f, {
                "result type" => some(&d.result_type), js(&gd["result_type"]);
                "failed sessions" => Some(d.failed_session_count), gd["failed_session_count"].as_u64();
                "sending mta ip" => d.sending_mta_ip.clone(), js(&gd["sending_mta_ip"]);
                "receiving ip" => d.receiving_ip.clone(), js(&gd["receiving_ip"]);
                "receiving mx" => d.receiving_mx_hostname.clone(), js(&gd["receiving_mx_hostname"]);
            });
        }
    }
    // Stalwart: each .json against itself read directly; each .eml equal to
    // the parse of its same-stem .json, and so to that JSON.
    for path in files(&stalwart("tlsrpt")) {
        let file = format!("stalwart tlsrpt/{}", name(&path));
        let ours = run.tls(&path);
        let json = path.with_extension("json");
        if name(&path).ends_with(".eml") {
            let from_json = run.tls(&json);
            run.check(&file, "equals the parse of its .json", ours == from_json);
        }
        compare_rfc8460(run, &file, &ours, &golden(&json));
    }
}

#[test]
fn dmarc_corpus() {
    let mut run = Run::default();
    aggregate_counts(&mut run);
    parsedmarc_assertions(&mut run);
    extract_report(&mut run);
    stalwart_aggregates(&mut run);
    failures(&mut run);
    tls_reports(&mut run);
    let empty = run.parse(&parsedmarc("empty.xml"));
    run.check(
        "empty.xml",
        &format!("is an error: {empty:?}"),
        empty == Err(ReportError::Empty),
    );

    for miss in &run.misses {
        println!("MISS {miss}");
    }
    println!(
        "dmarc corpus: {} files, {} reports, {} aggregate records, {} messages; {} checks, {} misses",
        run.files,
        run.reports,
        run.records,
        run.messages,
        run.checks,
        run.misses.len()
    );
    assert!(
        run.misses.is_empty(),
        "{} disagreements with the corpora (listed above)",
        run.misses.len()
    );
}
