//! Conformance: the OpenSPF RFC 7208 test suite
//! (`../shared/corpora/openspf-rfc7208/rfc7208-tests.yml`, and the older RFC
//! 4408 one beside it), every scenario
//! against `check_host()` through a resolver that serves the scenario's
//! zone data the way the suite's reference driver (pyspf's `testspf.py`)
//! does.
//!
//! The bar is every test: a test listed in [`EXCEPTIONS`] must fail (so the
//! list cannot go stale), and every other test must pass, explanation
//! included where the suite gives one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // A test reports by panicking and printing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use async_trait::async_trait;
use herald_dns::{DnsError, MailRoute, Mx, Resolver, reverse_name, route_from};
use herald_spf::{Checker, SpfResult};
use serde::Deserialize;
use serde_yaml::Value;

/// Tests we knowingly fail, with the reason. Empty: the whole suite passes.
const EXCEPTIONS: &[(&str, &str)] = &[];

/// How many CNAMEs the zone resolver follows before it calls it a loop, as
/// a recursive resolver answers SERVFAIL for one.
const MAX_CNAME_HOPS: usize = 8;

fn corpus(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/openspf-rfc7208")
        .join(file)
}

/// The records of one name in a scenario's zone.
#[derive(Debug, Default)]
struct Node {
    txt: Vec<String>,
    /// A `TXT` entry appeared (`TXT: NONE` included): SPF entries are then
    /// not served as TXT, as in the reference driver.
    has_txt: bool,
    spf: Vec<String>,
    a: Vec<Ipv4Addr>,
    aaaa: Vec<Ipv6Addr>,
    mx: Vec<Mx>,
    ptr: Vec<String>,
    cname: Option<String>,
    /// Queries for a type the name has no records of time out.
    timeout: bool,
}

impl Node {
    fn txt(&self) -> Vec<String> {
        if self.has_txt {
            self.txt.clone()
        } else {
            self.spf.clone()
        }
    }
}

#[derive(Debug, Default)]
struct Zone {
    nodes: HashMap<String, Node>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A TXT/SPF value: a string, or a list of strings joined with nothing
/// between them (RFC 7208 §3.3).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts.iter().map(text).collect(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected text value {other:?}"),
    }
}

fn string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("unexpected value {other:?}"),
    }
}

impl Zone {
    fn from_yaml(data: &Value) -> Self {
        let mut zone = Zone::default();
        let Some(map) = data.as_mapping() else {
            return zone;
        };
        for (name, records) in map {
            let node = zone.nodes.entry(key(&string(name))).or_default();
            for record in records.as_sequence().into_iter().flatten() {
                if record.as_str() == Some("TIMEOUT") {
                    node.timeout = true;
                    continue;
                }
                let (kind, value) = record
                    .as_mapping()
                    .and_then(|m| m.iter().next())
                    .expect("one-key record");
                match kind.as_str().expect("record type") {
                    "TXT" => {
                        node.has_txt = true;
                        let t = text(value);
                        if t != "NONE" {
                            node.txt.push(t);
                        }
                    }
                    "SPF" => {
                        let t = text(value);
                        if t != "NONE" {
                            node.spf.push(t);
                        }
                    }
                    "A" => node.a.push(string(value).parse().unwrap()),
                    "AAAA" => node.aaaa.push(string(value).parse().unwrap()),
                    "MX" => {
                        let pair = value.as_sequence().expect("MX [pref, host]");
                        node.mx.push(Mx {
                            preference: pair[0].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap(),
                            exchange: key(&string(&pair[1])),
                        });
                    }
                    "PTR" => node.ptr.push(string(value).trim_end_matches('.').to_owned()),
                    "CNAME" => node.cname = Some(key(&string(value))),
                    other => panic!("unknown record type {other}"),
                }
            }
        }
        zone
    }

    /// Answers one question the way a recursive resolver would: CNAMEs
    /// followed, NXDOMAIN for absent names, NODATA for present ones,
    /// SERVFAIL (temporary) for `TIMEOUT` names and CNAME loops.
    fn lookup<T>(&self, name: &str, kind: &'static str, get: impl Fn(&Node) -> Vec<T>) -> Result<Vec<T>, DnsError> {
        let mut name = key(name);
        for _ in 0..=MAX_CNAME_HOPS {
            let Some(node) = self.nodes.get(&name) else {
                return Err(DnsError::NoSuchName(name));
            };
            let records = get(node);
            if !records.is_empty() {
                return Ok(records);
            }
            match &node.cname {
                Some(target) if kind != "CNAME" => name = target.clone(),
                _ if node.timeout => return Err(DnsError::Temporary(name, "timeout".into())),
                _ => return Err(DnsError::NoRecords(name, kind)),
            }
        }
        Err(DnsError::Temporary(name, "CNAME loop".into()))
    }
}

#[derive(Debug)]
struct ZoneResolver(Zone);

#[async_trait]
impl Resolver for ZoneResolver {
    async fn mail_route(&self, domain: &str) -> Result<MailRoute, DnsError> {
        match self.0.lookup(domain, "MX", |n| n.mx.clone()) {
            Ok(records) => Ok(route_from(records)),
            Err(DnsError::NoRecords(..)) => Ok(MailRoute::Implicit),
            Err(e) => Err(e),
        }
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        self.0.lookup(host, "A/AAAA", |n| {
            let v4 = n.a.iter().copied().map(IpAddr::V4);
            v4.chain(n.aaaa.iter().copied().map(IpAddr::V6)).collect()
        })
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        self.0.lookup(name, "TXT", Node::txt)
    }

    async fn cname(&self, name: &str) -> Result<String, DnsError> {
        self.0
            .lookup(name, "CNAME", |n| n.cname.iter().cloned().collect())
            .map(|mut v| v.remove(0))
    }

    async fn ipv4(&self, host: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        self.0.lookup(host, "A", |n| n.a.clone())
    }

    async fn ipv6(&self, host: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        self.0.lookup(host, "AAAA", |n| n.aaaa.clone())
    }

    async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        self.0.lookup(domain, "MX", |n| n.mx.clone())
    }

    async fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, DnsError> {
        self.0.lookup(&reverse_name(ip), "PTR", |n| n.ptr.clone())
    }
}

#[derive(Debug, Deserialize)]
struct Case {
    helo: String,
    host: String,
    mailfrom: String,
    result: Expected,
    #[serde(default)]
    explanation: Option<String>,
    #[serde(default)]
    spec: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expected {
    One(String),
    AnyOf(Vec<String>),
}

impl Expected {
    fn accepts(&self, got: SpfResult) -> bool {
        match self {
            Self::One(r) => r.parse() == Ok(got),
            Self::AnyOf(rs) => rs.iter().any(|r| r.parse() == Ok(got)),
        }
    }
}

/// The default explanation the reference driver sets, so a test can tell
/// "no usable exp=" from an expanded one.
const DEFAULT_EXPLANATION: &str = "DEFAULT";

/// What one suite file came to.
#[derive(Debug)]
struct Report {
    scenarios: usize,
    total: usize,
    passed: usize,
    /// Unlisted failures, and listed exceptions that pass.
    unexpected: Vec<String>,
}

async fn run_suite(file: &str, exceptions: &[(&str, &str)]) -> Report {
    let yaml = std::fs::read_to_string(corpus(file)).expect("the OpenSPF corpus");
    let mut report = Report {
        scenarios: 0,
        total: 0,
        passed: 0,
        unexpected: Vec::new(),
    };
    for document in serde_yaml::Deserializer::from_str(&yaml) {
        let scenario = Value::deserialize(document).expect("a YAML scenario");
        report.scenarios += 1;
        let description = scenario["description"].as_str().unwrap_or_default().to_owned();
        let resolver = ZoneResolver(Zone::from_yaml(&scenario["zonedata"]));
        let tests = scenario["tests"].as_mapping().expect("tests");
        for (name, case) in tests {
            let name = name.as_str().expect("test name").to_owned();
            let case: Case = serde_yaml::from_value(case.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            report.total += 1;
            let ip: IpAddr = case
                .host
                .parse()
                .unwrap_or_else(|e| panic!("{name}: host {}: {e}", case.host));
            let verdict = Checker::new(&resolver)
                .check_mail_from(ip, &case.mailfrom, &case.helo)
                .await;
            let explanation = verdict.explanation.as_deref().unwrap_or(DEFAULT_EXPLANATION);
            let result_ok = case.result.accepts(verdict.result);
            let explanation_ok = case.explanation.as_deref().is_none_or(|want| want == explanation);
            let excepted = exceptions.iter().find(|(n, _)| *n == name);
            match (result_ok && explanation_ok, excepted) {
                (true, None) => report.passed += 1,
                (false, Some(_)) => {}
                (true, Some((_, why))) => report
                    .unexpected
                    .push(format!("{name}: listed as an exception ({why}) but passes")),
                (false, None) => report.unexpected.push(format!(
                    "{name} ({description}, spec {:?}): expected {:?}{}, got {} ({:?}){}",
                    case.spec,
                    case.result,
                    case.explanation
                        .as_ref()
                        .map(|e| format!(" explaining {e:?}"))
                        .unwrap_or_default(),
                    verdict.result,
                    verdict.reason,
                    if case.explanation.is_some() {
                        format!(" explaining {explanation:?}")
                    } else {
                        String::new()
                    },
                )),
            }
        }
    }
    report
}

#[tokio::test]
async fn rfc7208_suite() {
    let report = run_suite("rfc7208-tests.yml", EXCEPTIONS).await;
    println!(
        "OpenSPF RFC 7208 suite: {} of {} tests pass in {} scenarios ({} listed exceptions)",
        report.passed,
        report.total,
        report.scenarios,
        EXCEPTIONS.len()
    );
    assert_eq!(report.scenarios, 16, "the suite's 16 scenarios were all read");
    assert_eq!(report.total, 203, "the suite's 203 tests were all read");
    assert!(report.unexpected.is_empty(), "{}", report.unexpected.join("\n"));
}

/// The older RFC 4408 suite, kept for regression history: where it and RFC
/// 7208 disagree its results are lists that admit both, and it passes whole.
#[tokio::test]
async fn rfc4408_suite() {
    let report = run_suite("rfc4408-tests.yml", &[]).await;
    println!(
        "OpenSPF RFC 4408 suite: {} of {} tests pass in {} scenarios",
        report.passed, report.total, report.scenarios
    );
    assert_eq!(report.total, 191, "the suite's 191 tests were all read");
    assert!(report.unexpected.is_empty(), "{}", report.unexpected.join("\n"));
}
