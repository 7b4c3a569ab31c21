//! DKIM (RFC 6376): the key record at `<selector>._domainkey.<domain>` for
//! each selector asked about, and the key inside it.
//!
//! DKIM keys cannot be listed, only asked for by selector, so the caller
//! names them. Key lengths are read from the DER structure itself (the
//! RSA modulus), not by building a usable key: a linter must report the
//! length of a 512-bit or 8192-bit key that a verifier would refuse to load.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use herald_dns::{DnsError, Resolver};
use rsa::pkcs1::der::Decode;
use rsa::pkcs8::SubjectPublicKeyInfoRef;

use crate::tags::{self, TagError};
use crate::{CheckKind, DkimCheck, DkimSelectorCheck, Finding, Findings, Severity, valid_label};

/// RFC 8301 §3.2: verifiers must not accept RSA keys under 1024 bits.
const MIN_RSA_BITS: u32 = 1024;
/// RFC 8301 §3.2: signers SHOULD use at least 2048 bits.
const RECOMMENDED_RSA_BITS: u32 = 2048;
/// RFC 8301 §3.2: verifiers must handle keys up to 4096 bits; longer ones
/// some cannot verify.
const MAX_VERIFIED_RSA_BITS: u32 = 4096;
/// RFC 8463 §2: an Ed25519 `p=` is the bare 32-byte public key.
const ED25519_KEY_LEN: usize = 32;
const ED25519_BITS: u32 = 256;

/// How an RSA key is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RsaForm {
    /// SubjectPublicKeyInfo, as RFC 6376 §3.6.1 requires.
    Spki,
    /// A bare PKCS#1 RSAPublicKey, which some tools publish and some
    /// verifiers refuse.
    Pkcs1,
}

/// The modulus length of a DER RSA public key, in either form.
fn rsa_bits(der: &[u8]) -> Option<(u32, RsaForm)> {
    let (pkcs1, form) = match SubjectPublicKeyInfoRef::from_der(der) {
        Ok(spki) if spki.algorithm.oid == rsa::pkcs1::ALGORITHM_OID => {
            (spki.subject_public_key.raw_bytes(), RsaForm::Spki)
        }
        Ok(_) => return None,
        Err(_) => (der, RsaForm::Pkcs1),
    };
    let key = rsa::pkcs1::RsaPublicKey::from_der(pkcs1).ok()?;
    // The modulus without leading zero octets: whole octets, minus the
    // first octet's leading zero bits.
    let modulus = key.modulus.as_bytes();
    let first = *modulus.first()?;
    let bits = modulus.len() * 8 - first.leading_zeros() as usize;
    Some((u32::try_from(bits).ok()?, form))
}

/// Selectors checked at most: each is a DNS question, and a domain signs
/// with a handful.
pub const MAX_SELECTORS: usize = 20;

pub(crate) async fn check(resolver: &dyn Resolver, domain: &str, selectors: &[String]) -> (DkimCheck, Vec<Finding>) {
    let mut findings = Findings::new(CheckKind::Dkim);
    let mut unique: Vec<String> = Vec::new();
    for selector in selectors {
        let selector = selector.trim().trim_end_matches('.').to_ascii_lowercase();
        if !unique.contains(&selector) {
            unique.push(selector);
        }
    }
    if unique.len() > MAX_SELECTORS {
        findings.add(
            Severity::Info,
            "dkim.too_many_selectors",
            format!(
                "{} selectors were given; only the first {MAX_SELECTORS} were checked.",
                unique.len()
            ),
        );
        unique.truncate(MAX_SELECTORS);
    }
    if unique.is_empty() {
        findings.add(
            Severity::Info,
            "dkim.no_selectors",
            format!(
                "No DKIM selectors were given, so no keys of {domain} were checked (keys can only be found by \
                 selector). Give the selectors your senders sign with: the s= of their DKIM-Signature headers."
            ),
        );
    }
    let mut checked = Vec::new();
    for selector in unique {
        checked.push(one(resolver, domain, selector, &mut findings).await);
    }
    // Usable keys only: a key whose length was read.
    let usable = |kind: &str| {
        checked
            .iter()
            .any(|s| s.key_type.as_deref() == Some(kind) && s.bits.is_some())
    };
    let (rsa, ed25519) = (usable("rsa"), usable("ed25519"));
    if ed25519 && !rsa {
        findings.add(
            Severity::Warning,
            "dkim.ed25519_only",
            "Every key checked is Ed25519, which many receivers do not verify yet (RFC 8463): to them the mail is \
             unsigned. Sign with an RSA-2048 key as well.",
        );
    }
    let summary = match checked.as_slice() {
        [] => "no selectors checked".to_owned(),
        list => format!(
            "{} selector{}: {}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            list.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
    };
    let report = DkimCheck {
        ok: findings.ok(),
        summary,
        selectors: checked,
    };
    (report, findings.into_vec())
}

fn describe(s: &DkimSelectorCheck) -> String {
    let what = match (&s.record, &s.key_type, s.bits) {
        (None, _, _) => "missing".to_owned(),
        _ if s.revoked => "revoked".to_owned(),
        (_, Some(k), Some(bits)) if k == "rsa" => format!("{bits}-bit rsa"),
        (_, Some(k), _) => k.clone(),
        _ => "unusable".to_owned(),
    };
    format!("{} ({what}{})", s.selector, if s.testing { ", testing" } else { "" })
}

/// Checks one selector's record.
async fn one(resolver: &dyn Resolver, domain: &str, selector: String, findings: &mut Findings) -> DkimSelectorCheck {
    let name = format!("{selector}._domainkey.{domain}");
    let mut report = DkimSelectorCheck {
        selector,
        name: name.clone(),
        record: None,
        key_type: None,
        bits: None,
        testing: false,
        revoked: false,
    };
    let selector = report.selector.clone();
    if !selector.split('.').all(valid_label) {
        findings.add(
            Severity::Error,
            "dkim.bad_selector",
            format!("{selector:?} is not a valid DKIM selector (RFC 6376 §3.1: DNS labels separated by dots)."),
        );
        return report;
    }
    let records = match resolver.txt(&name).await {
        Ok(records) => records,
        Err(DnsError::NoSuchName(_) | DnsError::NoRecords(..)) => Vec::new(),
        Err(e) => {
            findings.dns_error(&name, &e);
            return report;
        }
    };
    let Some(text) = records.first() else {
        findings.add(
            Severity::Error,
            "dkim.missing",
            format!(
                "There is no DKIM key at {name}: mail signed with selector {selector} fails DKIM. Publish the key \
                 your signer uses there, or stop signing with {selector}."
            ),
        );
        return report;
    };
    if records.len() > 1 {
        findings.add(
            Severity::Warning,
            "dkim.multiple_records",
            format!(
                "{name} holds {} TXT records; verifiers may use any of them (RFC 6376 §3.6.2.2), so signatures fail \
                 at random. Keep only the key.",
                records.len()
            ),
        );
    }
    report.record = Some(text.clone());
    let list = match tags::parse(text, false) {
        Ok(list) => list,
        Err(TagError(problem)) => {
            findings.add(
                Severity::Error,
                "dkim.syntax",
                format!("The DKIM key record at {name} cannot be read ({problem}); verifiers ignore it."),
            );
            return report;
        }
    };
    let get = |tag: &str| list.iter().find(|(n, _)| *n == tag).map(|(_, v)| *v);
    let bad = |findings: &mut Findings, problem: &str| {
        findings.add(
            Severity::Error,
            "dkim.syntax",
            format!(
                "The DKIM key record at {name} {problem}; verifiers ignore it, so mail signed with {selector} fails."
            ),
        );
    };
    // RFC 6376 §3.6.1: v=, if present, is first and exactly DKIM1.
    if let Some(position) = list.iter().position(|(n, _)| *n == "v")
        && (position != 0 || list[position].1 != "DKIM1")
    {
        bad(findings, "has a v= tag that is not v=DKIM1 at the start");
        return report;
    }
    let flags: Vec<&str> = get("t")
        .map(|t| t.split(':').map(str::trim).collect())
        .unwrap_or_default();
    report.testing = flags.contains(&"y");
    if report.testing {
        findings.add(
            Severity::Warning,
            "dkim.testing",
            format!(
                "The key at {name} says t=y (testing): verifiers are asked to treat failed signatures as unsigned \
                 mail, and some give passing ones less weight. Remove t=y once signing works."
            ),
        );
    }
    if flags.contains(&"s") {
        findings.add(
            Severity::Info,
            "dkim.strict",
            format!(
                "The key at {name} says t=s: it signs only for {domain} itself, never for its subdomains (the i= \
                 of a signature must be exactly @{domain})."
            ),
        );
    }
    if let Some(services) = get("s")
        && !services.split(':').map(str::trim).any(|s| s == "*" || s == "email")
    {
        findings.add(
            Severity::Error,
            "dkim.not_for_email",
            format!(
                "The key at {name} says s={services}: it may not verify email, so mail signed with {selector} \
                 fails. Remove s= or set s=email."
            ),
        );
        return report;
    }
    if let Some(hashes) = get("h")
        && !hashes.split(':').any(|h| h.trim() == "sha256")
    {
        findings.add(
            Severity::Error,
            "dkim.sha1_only",
            format!(
                "The key at {name} allows only h={hashes}; verifiers reject rsa-sha1 signatures (RFC 8301 §3.1). \
                 Remove h= or set h=sha256."
            ),
        );
    }
    let key_type = get("k").unwrap_or("rsa");
    if !matches!(key_type, "rsa" | "ed25519") {
        findings.add(
            Severity::Error,
            "dkim.unknown_key_type",
            format!(
                "The key at {name} has k={key_type}; verifiers know only rsa and ed25519 and ignore it, so mail signed \
                 with {selector} fails."
            ),
        );
        return report;
    }
    report.key_type = Some(key_type.to_owned());
    let Some(p) = get("p") else {
        bad(findings, "has no p= tag (the public key)");
        return report;
    };
    // FWS may fold a long key over several lines inside the value.
    let p: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if p.is_empty() {
        report.revoked = true;
        findings.add(
            Severity::Warning,
            "dkim.revoked",
            format!(
                "The key at {name} is revoked (empty p=): mail signed with {selector} fails DKIM. Stop signing with \
                 {selector}, and remove the record once no mail signed with it is in transit."
            ),
        );
        return report;
    }
    let Ok(der) = STANDARD_PAD_INDIFFERENT.decode(&p) else {
        bad_key(findings, &name, &selector, "p= is not valid base64");
        return report;
    };
    if key_type == "ed25519" {
        if der.len() == ED25519_KEY_LEN {
            report.bits = Some(ED25519_BITS);
        } else {
            let problem = format!(
                "p= holds {} bytes, not the {ED25519_KEY_LEN} of an Ed25519 key",
                der.len()
            );
            bad_key(findings, &name, &selector, &problem);
        }
        return report;
    }
    let Some((bits, form)) = rsa_bits(&der) else {
        bad_key(findings, &name, &selector, "p= is not an RSA public key");
        return report;
    };
    report.bits = Some(bits);
    rsa_findings(findings, &name, bits, form);
    report
}

fn bad_key(findings: &mut Findings, name: &str, selector: &str, problem: &str) {
    findings.add(
        Severity::Error,
        "dkim.bad_key",
        format!(
            "The key at {name} cannot be used ({problem}): mail signed with {selector} fails DKIM. Publish the \
             public key again, copied whole."
        ),
    );
}

fn rsa_findings(findings: &mut Findings, name: &str, bits: u32, form: RsaForm) {
    if bits < MIN_RSA_BITS {
        findings.add(
            Severity::Error,
            "dkim.weak_key",
            format!(
                "The RSA key at {name} has {bits} bits; verifiers must reject keys under {MIN_RSA_BITS} bits (RFC \
                 8301 §3.2), so signatures with it fail. Generate a {RECOMMENDED_RSA_BITS}-bit key."
            ),
        );
    } else if bits < RECOMMENDED_RSA_BITS {
        findings.add(
            Severity::Warning,
            "dkim.short_key",
            format!(
                "The RSA key at {name} has {bits} bits; RFC 8301 §3.2 asks for at least {RECOMMENDED_RSA_BITS}, and \
                 {bits}-bit keys can be factored by a determined attacker. Rotate to a {RECOMMENDED_RSA_BITS}-bit key."
            ),
        );
    } else if bits > MAX_VERIFIED_RSA_BITS {
        findings.add(
            Severity::Warning,
            "dkim.long_key",
            format!(
                "The RSA key at {name} has {bits} bits; verifiers need only handle up to {MAX_VERIFIED_RSA_BITS} (RFC \
                 8301 §3.2) and some fail longer keys. {RECOMMENDED_RSA_BITS} bits is enough."
            ),
        );
    }
    if form == RsaForm::Pkcs1 {
        findings.add(
            Severity::Warning,
            "dkim.pkcs1_key",
            format!(
                "The key at {name} is a bare PKCS#1 RSAPublicKey; RFC 6376 §3.6.1 requires a SubjectPublicKeyInfo \
                 (what `openssl rsa -pubout` writes), and some verifiers reject the other form. Publish it as \
                 SubjectPublicKeyInfo."
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use herald_dns::StaticResolver;
    use rsa::BigUint;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;

    use super::*;
    use crate::test_support::{codes, find};

    const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpora/dkimpy-testdata");

    /// A published test key record from dkimpy's test data.
    fn corpus(file: &str) -> String {
        std::fs::read_to_string(format!("{CORPUS}/{file}"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// An RSA public key with a modulus of exactly `bits` bits. Only its
    /// length matters to the linter, so it is not a product of primes:
    /// keys of any size are instant.
    fn key(bits: usize) -> rsa::RsaPublicKey {
        // 0x9d has its top bit set; a first octet of 1 << (k - 1) has k bits.
        let mut n = vec![0x9d_u8; bits.div_ceil(8)];
        if !bits.is_multiple_of(8) {
            n[0] = 1 << (bits % 8 - 1);
        }
        let last = n.len() - 1;
        n[last] |= 1;
        rsa::RsaPublicKey::new_with_max_size(BigUint::from_bytes_be(&n), BigUint::from(65_537_u32), 16_384).unwrap()
    }

    fn spki(bits: usize) -> String {
        STANDARD.encode(key(bits).to_public_key_der().unwrap().as_bytes())
    }

    async fn lint(r: &StaticResolver, selectors: &[&str]) -> (DkimCheck, Vec<Finding>) {
        let selectors: Vec<String> = selectors.iter().map(|s| (*s).to_owned()).collect();
        check(r, "acme.test", &selectors).await
    }

    #[test]
    fn key_lengths_come_from_the_modulus() {
        for bits in [512, 1023, 1024, 2048, 3072, 4096, 8192] {
            let der = key(bits).to_public_key_der().unwrap();
            assert_eq!(rsa_bits(der.as_bytes()), Some((bits as u32, RsaForm::Spki)), "{bits}");
        }
        let der = key(2048).to_pkcs1_der().unwrap();
        assert_eq!(rsa_bits(der.as_bytes()), Some((2048, RsaForm::Pkcs1)));
        assert_eq!(rsa_bits(b"not der"), None);
    }

    /// dkimpy's published keys: `test.txt` is RSA-1024, gmail.com's
    /// 20120113 key RSA-2048, `brisbane` the RFC 8463 Ed25519 example.
    #[tokio::test]
    async fn published_test_keys() {
        let r = StaticResolver::new()
            .txt("test._domainkey.acme.test", &corpus("test.txt"))
            .txt(
                "gmail._domainkey.acme.test",
                &corpus("dns-20120113._domainkey.gmail.com.txt"),
            )
            .txt(
                "brisbane._domainkey.acme.test",
                &corpus("dns-brisbane._domainkey.football.example.com.txt"),
            );
        let (report, findings) = lint(&r, &["test", "gmail", "brisbane"]).await;
        assert_eq!(codes(&findings), vec![("dkim.short_key", Severity::Warning)]);
        assert!(
            find(&findings, "dkim.short_key")
                .message
                .contains("test._domainkey.acme.test")
        );
        let bits: Vec<Option<u32>> = report.selectors.iter().map(|s| s.bits).collect();
        assert_eq!(bits, vec![Some(1024), Some(2048), Some(256)]);
        assert_eq!(report.selectors[2].key_type.as_deref(), Some("ed25519"));
        assert_eq!(
            report.summary,
            "3 selectors: test (1024-bit rsa), gmail (2048-bit rsa), brisbane (ed25519)"
        );
        assert!(report.ok);
    }

    #[tokio::test]
    async fn broken_published_records() {
        let r = StaticResolver::new()
            .txt("badversion._domainkey.acme.test", &corpus("badversion.txt"))
            .txt("badk._domainkey.acme.test", &corpus("badk.txt"))
            .txt("bad._domainkey.acme.test", &corpus("test_bad.txt"))
            .txt("tlsrpt._domainkey.acme.test", &corpus("test_tlsrpt.txt"));
        for (selector, code) in [
            ("badversion", "dkim.syntax"),
            ("badk", "dkim.unknown_key_type"),
            ("bad", "dkim.bad_key"),
            ("tlsrpt", "dkim.not_for_email"),
        ] {
            let (report, findings) = lint(&r, &[selector]).await;
            assert_eq!(codes(&findings), vec![(code, Severity::Error)], "{selector}");
            assert!(!report.ok);
        }
    }

    #[tokio::test]
    async fn key_lengths_and_forms() {
        let pkcs1 = STANDARD.encode(key(2048).to_pkcs1_der().unwrap().as_bytes());
        let r = StaticResolver::new()
            .txt("weak._domainkey.acme.test", &format!("v=DKIM1; k=rsa; p={}", spki(512)))
            .txt(
                "long._domainkey.acme.test",
                &format!("v=DKIM1; k=rsa; p={}", spki(8192)),
            )
            .txt("pkcs1._domainkey.acme.test", &format!("v=DKIM1; p={pkcs1}"))
            .txt(
                "folded._domainkey.acme.test",
                &format!("v=DKIM1; p={}", spki(2048).replace('A', "A ")),
            );
        let (report, findings) = lint(&r, &["weak"]).await;
        assert_eq!(codes(&findings), vec![("dkim.weak_key", Severity::Error)]);
        assert_eq!(report.selectors[0].bits, Some(512));
        let (_, findings) = lint(&r, &["long"]).await;
        assert_eq!(codes(&findings), vec![("dkim.long_key", Severity::Warning)]);
        let (report, findings) = lint(&r, &["pkcs1"]).await;
        assert_eq!(codes(&findings), vec![("dkim.pkcs1_key", Severity::Warning)]);
        assert_eq!(report.selectors[0].bits, Some(2048));
        let (report, findings) = lint(&r, &["folded"]).await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(report.selectors[0].bits, Some(2048));
    }

    #[tokio::test]
    async fn flags_revocation_and_absence() {
        let r = StaticResolver::new()
            .txt("t._domainkey.acme.test", &format!("v=DKIM1; t=y:s; p={}", spki(2048)))
            .txt("gone._domainkey.acme.test", "v=DKIM1; k=rsa; p=")
            .txt(
                "sha1._domainkey.acme.test",
                &format!("v=DKIM1; h=sha1; p={}", spki(2048)),
            )
            .txt("two._domainkey.acme.test", &format!("v=DKIM1; p={}", spki(2048)))
            .txt("two._domainkey.acme.test", "v=DKIM1; p=")
            .fail("down._domainkey.acme.test");
        let (report, findings) = lint(&r, &["t"]).await;
        assert_eq!(
            codes(&findings),
            vec![("dkim.testing", Severity::Warning), ("dkim.strict", Severity::Info)]
        );
        assert!(report.selectors[0].testing);
        assert_eq!(report.summary, "1 selector: t (2048-bit rsa, testing)");
        let (report, findings) = lint(&r, &["gone"]).await;
        assert_eq!(codes(&findings), vec![("dkim.revoked", Severity::Warning)]);
        assert!(report.selectors[0].revoked);
        let (_, findings) = lint(&r, &["sha1"]).await;
        assert_eq!(codes(&findings), vec![("dkim.sha1_only", Severity::Error)]);
        let (_, findings) = lint(&r, &["two"]).await;
        assert_eq!(codes(&findings), vec![("dkim.multiple_records", Severity::Warning)]);
        let (report, findings) = lint(&r, &["missing", "down", "bad selector"]).await;
        assert_eq!(
            codes(&findings),
            vec![
                ("dkim.missing", Severity::Error),
                ("dkim.dns_error", Severity::Error),
                ("dkim.bad_selector", Severity::Error)
            ]
        );
        assert!(
            find(&findings, "dkim.missing")
                .message
                .contains("missing._domainkey.acme.test")
        );
        assert_eq!(report.selectors.len(), 3);
    }

    #[tokio::test]
    async fn selectors_are_deduplicated_and_none_is_said() {
        let r = StaticResolver::new().txt("s1._domainkey.acme.test", &format!("v=DKIM1; p={}", spki(2048)));
        let (report, findings) = lint(&r, &["s1", "S1", " s1."]).await;
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(report.selectors.len(), 1);
        let (report, findings) = lint(&r, &[]).await;
        assert_eq!(codes(&findings), vec![("dkim.no_selectors", Severity::Info)]);
        assert!(report.ok);
        // A caller's thousand selectors are not a thousand questions.
        let many: Vec<String> = (0..1000).map(|i| format!("s{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (report, findings) = lint(&r, &many).await;
        assert_eq!(report.selectors.len(), MAX_SELECTORS);
        assert!(codes(&findings).contains(&("dkim.too_many_selectors", Severity::Info)));
        let (report, _) = lint(&r, &[]).await;
        assert!(report.ok);
        assert_eq!(report.summary, "no selectors checked");
    }

    #[tokio::test]
    async fn ed25519_alone_is_not_enough() {
        let r = StaticResolver::new()
            .txt("ed._domainkey.acme.test", &corpus("ed25519test.dns"))
            .txt("short._domainkey.acme.test", "v=DKIM1; k=ed25519; p=AAAA");
        let (_, findings) = lint(&r, &["ed"]).await;
        assert_eq!(codes(&findings), vec![("dkim.ed25519_only", Severity::Warning)]);
        let (_, findings) = lint(&r, &["short"]).await;
        assert_eq!(codes(&findings), vec![("dkim.bad_key", Severity::Error)]);
    }
}
