//! DKIM interoperability (issue 4): 100 varied messages signed by Herald are
//! verified by dkimpy, an independent implementation, against a real DNS
//! server; Herald's verifier accepts them too, and accepts the signed
//! messages of dkimpy's own test data.

#![allow(clippy::unwrap_used)] // Tests fail by panicking, helpers included.

use std::path::Path;
use std::process::Command;

use herald_auth::{Algorithm, DkimVerifier, DomainSigner, SigningKey, generate};
use herald_testkit::{DnsServer, Zones};

const DOMAIN: &str = "herald.test";

/// A base64 attachment of `n` bytes, in 76-character lines.
fn attachment(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    b64.as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
        .collect()
}

/// Message `i` of 100, each mixing a different set of the things that break
/// canonicalisation: 8-bit and encoded headers, folding, long lines,
/// trailing whitespace and blank lines, attachments, dots, bare LF.
fn message(i: usize) -> Vec<u8> {
    let mut h = Vec::new();
    let from = if i.is_multiple_of(4) {
        "=?UTF-8?B?SMOpcmFsZCBOZXdz?="
    } else {
        "Herald News"
    };
    h.push(format!("From: {from} <news{i}@{DOMAIN}>"));
    h.push(format!("To: \"Reader {i}\" <reader{i}@example.net>"));
    if i.is_multiple_of(3) {
        h.push("Cc: copy@example.net,\r\n\tsecond@example.net".to_owned());
    }
    h.push(match i % 5 {
        0 => format!("Subject: Grüße aus Köln – 日本語 {i}"),
        1 => format!("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= number {i}"),
        2 => format!(
            "Subject: a subject long enough to be folded over\r\n  several lines\r\n\tof  irregular   spacing {i}"
        ),
        3 => format!("subject:    spaced    out    {i}   "),
        _ => format!("Subject: plain {i}"),
    });
    h.push(format!("Date: Mon, 23 Nov 2026 08:{:02}:00 +0000", i % 60));
    h.push(format!("Message-ID: <msg{i}@{DOMAIN}>"));
    if i.is_multiple_of(2) {
        h.push(format!("Reply-To: help@{DOMAIN}"));
    }
    if i.is_multiple_of(7) {
        h.push(format!(
            "List-Unsubscribe: <https://{DOMAIN}/u/tok{i}>, <mailto:unsub@{DOMAIN}?subject={i}>"
        ));
        h.push("List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_owned());
    }
    h.push("X-Mailer:\tsomething   with\ttabs".to_owned());
    let mut body = String::new();
    if i.is_multiple_of(6) {
        h.push("MIME-Version: 1.0".to_owned());
        h.push("Content-Type: multipart/mixed; boundary=\"b0und\"".to_owned());
        body.push_str("--b0und\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
        body.push_str(&format!("Hallo Welt, ça va? {i}\r\n\r\n"));
        body.push_str("--b0und\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        body.push_str(&attachment(300 + i * 40));
        body.push_str("--b0und--\r\n");
    } else {
        h.push("MIME-Version: 1.0".to_owned());
        h.push("Content-Type: text/plain; charset=utf-8".to_owned());
        body.push_str(&format!("Line one of message {i}.  Two  spaces\tand a tab.   \r\n"));
        if i % 2 == 1 {
            body.push_str(&format!("{}\r\n", "long line ".repeat(95)));
        }
        body.push_str(".a line starting with a dot\r\nFrom the start of a line\r\n");
        body.push_str("8-bit: ü ß é 漢字\r\n");
    }
    if i % 3 == 1 {
        // Trailing whitespace-only and blank lines: the case mail-auth
        // 0.13.3 hashes wrongly unless the signer strips them.
        body.push_str(" \r\n\t\r\n\r\n\r\n");
    }
    if i % 10 == 9 {
        body.push_str("\r\n\r\n");
    }
    let mut out = h.join("\r\n");
    out.push_str("\r\n\r\n");
    out.push_str(&body);
    if i % 11 == 5 {
        // Bare LF line ends, as some applications hand them over.
        out = out.replace("\r\n", "\n");
    }
    out.into_bytes()
}

const DKIMPY: &str = r#"
import sys, json, dkim, dns.resolver, dns.rdatatype
host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
res = dns.resolver.Resolver(configure=False)
res.nameservers = [host]; res.port = port
def dnsfunc(name, timeout=5):
    try:
        ans = res.resolve(name.decode("ascii"), dns.rdatatype.TXT, lifetime=timeout, raise_on_no_answer=False, search=False)
    except Exception:
        return None
    for rr in ans.rrset or []:
        return b"".join(rr.strings)
    return None
failures = []
for p in paths:
    data = open(p, "rb").read()
    d = dkim.DKIM(data)
    for idx in (0, 1):
        if not d.verify(idx=idx, dnsfunc=dnsfunc):
            failures.append("%s #%d" % (p, idx))
print(json.dumps({"checked": len(paths), "failures": failures}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkimpy_verifies_100_varied_messages_signed_by_herald() {
    let rsa = generate(Algorithm::Rsa).unwrap();
    let ed = generate(Algorithm::Ed25519).unwrap();
    let zones = Zones::new()
        .txt(&format!("hrldr._domainkey.{DOMAIN}"), &rsa.dns_record())
        .txt(&format!("hrlde._domainkey.{DOMAIN}"), &ed.dns_record());
    let dns = DnsServer::start(&zones).await.unwrap();
    let signer = DomainSigner::new(
        DOMAIN,
        &[
            SigningKey {
                selector: "hrldr".into(),
                algorithm: Algorithm::Rsa,
                private_der: rsa.private_der.clone(),
            },
            SigningKey {
                selector: "hrlde".into(),
                algorithm: Algorithm::Ed25519,
                private_der: ed.private_der.clone(),
            },
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let verifier = DkimVerifier::with_servers(&[dns.addr()]).unwrap();
    let mut paths = Vec::new();
    for i in 0..100 {
        let signed = signer.sign(&message(i)).unwrap();
        let verdicts = verifier.verify(&signed).await;
        assert_eq!(verdicts.len(), 2, "message {i}: {verdicts:?}");
        assert!(
            verdicts.iter().all(|v| v.pass),
            "Herald's own verifier, message {i}: {verdicts:?}"
        );
        let path = dir.path().join(format!("m{i:03}.eml"));
        std::fs::write(&path, &signed).unwrap();
        paths.push(path.to_string_lossy().into_owned());
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(DKIMPY)
        .arg("127.0.0.1")
        .arg(dns.addr().port().to_string())
        .args(&paths)
        .output()
        .expect("python3 with dkimpy, dnspython and pynacl (pip install dkimpy dnspython pynacl)");
    assert!(out.status.success(), "dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 100);
    assert_eq!(report["failures"], serde_json::json!([]), "dkimpy refused: {report}");
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpora/dkimpy-testdata")
            .join(name),
    )
    .unwrap()
}

fn record(name: &str) -> String {
    String::from_utf8(corpus(name)).unwrap().trim().to_owned()
}

#[tokio::test]
async fn herald_verifies_the_signed_messages_of_dkimpys_test_data() {
    let records = [
        (
            "brisbane._domainkey.football.example.com",
            record("dns-brisbane._domainkey.football.example.com.txt"),
        ),
        ("test._domainkey.football.example.com", record("test.txt")),
        (
            "20120113._domainkey.gmail.com",
            record("dns-20120113._domainkey.gmail.com.txt"),
        ),
        ("sed._domainkey.test.ex", record("eximtest.dns")),
    ];
    let table: Vec<(&str, &str)> = records.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let verifier = DkimVerifier::with_records(&table).unwrap();
    for (file, signatures) in [("rfc6376.signed.msg", 2), ("test2.message", 1), ("ed25519test2.msg", 1)] {
        let verdicts = verifier.verify(&corpus(file)).await;
        assert_eq!(verdicts.len(), signatures, "{file}: {verdicts:?}");
        assert!(verdicts.iter().all(|v| v.pass), "{file}: {verdicts:?}");
    }
    // And a signature over an altered message fails.
    let mut altered = corpus("test2.message");
    let at = altered.len() - 5;
    altered[at] = b'#';
    let verdicts = verifier.verify(&altered).await;
    assert!(!verdicts.is_empty() && verdicts.iter().all(|v| !v.pass), "{verdicts:?}");
}
