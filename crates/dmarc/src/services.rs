//! Who a sending IP belongs to, from its reverse DNS name: parsedmarc's map
//! of 38,000 base domains to services (`Intuit Mailchimp`, `Marketing`),
//! shipped in `resources/` (Apache-2.0, see `resources/README.md`).
//!
//! parsedmarc folds the PTR name with its overrides list, takes the base
//! (registrable) domain with the Public Suffix List, and looks that up. We
//! carry no PSL: the map's keys are base domains, so the shortest suffix of
//! the name (two labels or more) that the map knows is the same base domain
//! a PSL would give, without shipping and updating the list.

use std::collections::HashMap;
use std::sync::OnceLock;

use herald_api_types::dmarc::KnownService;

const MAP_CSV: &str = include_str!("../resources/base_reverse_dns_map.csv");
const OVERRIDES: &str = include_str!("../resources/psl_overrides.txt");

/// The reverse-DNS map, parsed once.
#[derive(Debug)]
pub struct ServiceMap {
    by_base: HashMap<String, (String, String)>,
    /// Suffixes that fold a name to one base: (suffix as matched, base).
    overrides: Vec<(String, String)>,
}

impl ServiceMap {
    /// The map shipped with Herald.
    pub fn builtin() -> &'static ServiceMap {
        static MAP: OnceLock<ServiceMap> = OnceLock::new();
        MAP.get_or_init(|| ServiceMap::parse(MAP_CSV, OVERRIDES))
    }

    /// A map from CSV text (`base_reverse_dns,name,type`, a header line,
    /// RFC 4180 quoting) and an overrides list.
    pub fn parse(csv: &str, overrides: &str) -> ServiceMap {
        let mut by_base = HashMap::new();
        for (_, row) in herald_types::csv_file::rows(csv.as_bytes()).skip(1) {
            let Ok(fields) = row else { continue };
            if let [base, name, kind] = &fields[..]
                && !base.is_empty()
            {
                by_base.insert(base.to_ascii_lowercase(), (name.clone(), kind.clone()));
            }
        }
        let overrides = overrides
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let l = l.to_ascii_lowercase();
                let base = l.trim_start_matches(['-', '.']).to_owned();
                (l, base)
            })
            .collect();
        ServiceMap { by_base, overrides }
    }

    pub fn len(&self) -> usize {
        self.by_base.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_base.is_empty()
    }

    /// The base domain of a reverse DNS name, as the map keys it.
    pub fn base_of(&self, ptr: &str) -> Option<String> {
        let name = ptr.trim_end_matches('.').to_ascii_lowercase();
        for (suffix, base) in &self.overrides {
            if name.ends_with(suffix.as_str()) || name == *base {
                return Some(base.clone());
            }
        }
        // The shortest known suffix of two labels or more.
        let labels: Vec<&str> = name.split('.').collect();
        (2..=labels.len())
            .map(|n| labels[labels.len() - n..].join("."))
            .find(|candidate| self.by_base.contains_key(candidate))
    }

    /// The service a reverse DNS name belongs to.
    pub fn service(&self, ptr: &str) -> Option<KnownService> {
        let base = self.base_of(ptr)?;
        self.by_base.get(&base).map(|(name, kind)| KnownService {
            name: name.clone(),
            kind: kind.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_their_commas() {
        let map = ServiceMap::parse(
            "base_reverse_dns,name,type\r\n1-msp.net,\"Internet de Nuevo Laredo, S.A de C.V.\",ISP\r\na.net,\"say \"\"hi\"\"\",b\n",
            "",
        );
        let msp = map.service("x.1-msp.net").expect("the quoted line");
        assert_eq!(msp.name, "Internet de Nuevo Laredo, S.A de C.V.");
        assert_eq!(map.service("a.net").expect("a.net").name, r#"say "hi""#);
    }

    #[test]
    fn the_builtin_map_names_the_big_senders() {
        let map = ServiceMap::builtin();
        assert!(map.len() > 30_000, "{} entries", map.len());
        let mailchimp = map.service("mail137-2.atl221.mcsv.net").expect("Mailchimp's PTR");
        assert_eq!(
            (mailchimp.name.as_str(), mailchimp.kind.as_str()),
            ("Intuit Mailchimp", "Marketing")
        );
        let google = map.service("mail-sor-f41.google.com.").expect("Google's PTR");
        assert_eq!(google.kind, "Email Provider");
        assert_eq!(map.service("host.nowhere.invalid"), None);
    }

    #[test]
    fn shortest_known_suffix_and_overrides_fold_names() {
        let map = ServiceMap::parse(
            "base_reverse_dns,name,type\nexample.co.uk,Example UK,ISP\nsub.example.com,Sub,SaaS\nexample.com,Example,ISP\nveloxfiber.com.br,Velox,ISP\n",
            "-veloxfiber.com.br\n.sub.example.com\n",
        );
        // co.uk is not a base domain, example.co.uk is.
        assert_eq!(map.base_of("mx1.example.co.uk").as_deref(), Some("example.co.uk"));
        // The shortest suffix wins, as a PSL would give example.com…
        assert_eq!(map.base_of("a.b.example.com").as_deref(), Some("example.com"));
        // …unless an override folds the name first.
        assert_eq!(map.base_of("host1.sub.example.com").as_deref(), Some("sub.example.com"));
        assert_eq!(
            map.base_of("177-1-2-3-veloxfiber.com.br").as_deref(),
            Some("veloxfiber.com.br")
        );
        assert_eq!(map.service("x.sub.example.com").map(|s| s.name).as_deref(), Some("Sub"));
    }
}
