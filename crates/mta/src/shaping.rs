//! Shaping: how fast, and over how many connections, each destination
//! takes mail — and which domains count as one destination.
//!
//! A destination is a named site (a `[[destinations]]` entry or a built-in
//! preset for a large provider) or, for every other domain, the set of MX
//! hosts it routes to. Domains whose MX hosts match a site's patterns roll
//! up into it: every domain Google hosts counts toward Google's limits.
//! Limits apply per (source address, destination).

use std::time::Duration;

/// Whether the connection must be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS when offered; plain text when it is not offered or fails.
    Opportunistic,
    /// STARTTLS or nothing: a host that cannot encrypt gets no mail.
    Required,
    /// Never STARTTLS (for hosts whose TLS is known broken).
    Disabled,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "opportunistic" => Some(Self::Opportunistic),
            "required" => Some(Self::Required),
            "disabled" | "none" | "off" => Some(Self::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opportunistic => "opportunistic",
            Self::Required => "required",
            Self::Disabled => "disabled",
        }
    }
}

/// The limits of one destination (per source address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub messages_per_connection: usize,
    /// `None`: no limit.
    pub messages_per_minute: Option<u32>,
    pub messages_per_hour: Option<u32>,
    /// Recipients in one transaction (RCPT TO per MAIL FROM).
    pub recipients_per_message: usize,
    pub tls: TlsMode,
}

/// A named destination: how to recognise it, and its limits (each `None`
/// keeps the value it would otherwise have: the preset's, then the
/// `[delivery]` defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub name: String,
    /// Recipient domains, exactly or as `*.example.com`.
    pub domains: Vec<String>,
    /// MX host names, exactly or as `*.google.com` (any host below).
    pub mx: Vec<String>,
    pub max_connections: Option<usize>,
    pub messages_per_connection: Option<usize>,
    pub messages_per_minute: Option<u32>,
    pub messages_per_hour: Option<u32>,
    pub recipients_per_message: Option<usize>,
    pub tls: Option<TlsMode>,
}

impl Site {
    /// Fills what `self` leaves unset from `base` (an operator's entry
    /// over the preset of the same name).
    fn over(self, base: &Site) -> Site {
        Site {
            name: self.name,
            domains: if self.domains.is_empty() && self.mx.is_empty() {
                base.domains.clone()
            } else {
                self.domains
            },
            mx: if self.mx.is_empty() && base.mx.is_empty() {
                Vec::new()
            } else if self.mx.is_empty() {
                base.mx.clone()
            } else {
                self.mx
            },
            max_connections: self.max_connections.or(base.max_connections),
            messages_per_connection: self.messages_per_connection.or(base.messages_per_connection),
            messages_per_minute: self.messages_per_minute.or(base.messages_per_minute),
            messages_per_hour: self.messages_per_hour.or(base.messages_per_hour),
            recipients_per_message: self.recipients_per_message.or(base.recipients_per_message),
            tls: self.tls.or(base.tls),
        }
    }

    fn limits(&self, defaults: &Limits) -> Limits {
        Limits {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections).max(1),
            messages_per_connection: self
                .messages_per_connection
                .unwrap_or(defaults.messages_per_connection)
                .max(1),
            messages_per_minute: self.messages_per_minute.or(defaults.messages_per_minute),
            messages_per_hour: self.messages_per_hour.or(defaults.messages_per_hour),
            recipients_per_message: self
                .recipients_per_message
                .unwrap_or(defaults.recipients_per_message)
                .max(1),
            tls: self.tls.unwrap_or(defaults.tls),
        }
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The large providers, as their own postmaster pages and the shaping files
/// of KumoMTA (`assets/policy-extras/shaping.toml`) describe them: the MX
/// host names that identify each, its consumer domains, and the
/// connections and messages per connection it tolerates from one address.
/// Mail.ru and Yandex publish no numbers; theirs are cautious guesses.
pub fn presets() -> Vec<Site> {
    let site = |name: &str, domains: &[&str], mx: &[&str], conns: usize, per_conn: usize| Site {
        name: name.to_owned(),
        domains: names(domains),
        mx: names(mx),
        max_connections: Some(conns),
        messages_per_connection: Some(per_conn),
        ..Site::default()
    };
    vec![
        // Gmail and Google Workspace share MX hosts (aspmx.l.google.com,
        // gmail-smtp-in.l.google.com, smtp.google.com, *.smtp.goog).
        site(
            "google",
            &["gmail.com", "googlemail.com"],
            &["*.google.com", "*.googlemail.com", "*.smtp.goog", "smtp.google.com"],
            5,
            50,
        ),
        // Outlook.com / Hotmail (*.olc.protection.outlook.com) and Microsoft
        // 365 (*.mail.protection.outlook.com, *.mx.microsoft).
        site(
            "microsoft",
            &[
                "outlook.com",
                "hotmail.com",
                "live.com",
                "msn.com",
                "hotmail.co.uk",
                "hotmail.fr",
                "hotmail.de",
                "hotmail.it",
                "live.co.uk",
                "live.fr",
                "outlook.fr",
                "outlook.de",
            ],
            &["*.protection.outlook.com", "*.mx.microsoft", "*.hotmail.com"],
            5,
            50,
        ),
        // Yahoo and AOL (*.yahoodns.net; AOL's older *.mx.aol.com).
        site(
            "yahoo",
            &[
                "yahoo.com",
                "ymail.com",
                "rocketmail.com",
                "yahoo.co.uk",
                "yahoo.fr",
                "yahoo.de",
                "yahoo.co.in",
                "aol.com",
                "aim.com",
            ],
            &["*.yahoodns.net", "*.mx.aol.com", "*.mail.aol.com"],
            10,
            20,
        ),
        // iCloud: mx01/mx02.mail.icloud.com. Apple asks for few messages per
        // connection.
        site("apple", &["icloud.com", "me.com", "mac.com"], &["*.icloud.com"], 10, 5),
        // Comcast allows 25 simultaneous connections per sending address
        // and requires TLS.
        Site {
            tls: Some(TlsMode::Required),
            ..site("comcast", &["comcast.net"], &["*.comcast.net"], 25, 1000)
        },
        // GMX, web.de and mail.com (United Internet).
        site(
            "gmx",
            &["gmx.de", "gmx.net", "gmx.com", "gmx.at", "gmx.ch", "web.de", "mail.com"],
            &["*.gmx.net", "*.gmx.com", "*.web.de"],
            4,
            20,
        ),
        site(
            "mailru",
            &["mail.ru", "inbox.ru", "list.ru", "bk.ru"],
            &["*.mail.ru"],
            5,
            50,
        ),
        site(
            "yandex",
            &["yandex.ru", "yandex.com", "ya.ru", "yandex.by", "yandex.kz"],
            &["*.yandex.ru", "*.yandex.net"],
            5,
            50,
        ),
    ]
}

/// A pattern matches a name exactly, or `*.x` any name below `x`.
fn matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            name.len() > suffix.len() + 1
                && name.is_char_boundary(name.len() - suffix.len() - 1)
                && name[name.len() - suffix.len() - 1..].eq_ignore_ascii_case(&format!(".{suffix}"))
        }
        None => name.eq_ignore_ascii_case(pattern),
    }
}

/// The sites in force: the operator's entries (over presets of the same
/// name), then the presets left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shaping {
    sites: Vec<Site>,
    defaults: Limits,
}

/// The destination a domain's mail belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The site's name; `None` for a destination known only by its hosts.
    pub site: Option<String>,
    pub limits: Limits,
}

impl Shaping {
    pub fn new(configured: Vec<Site>, defaults: Limits) -> Self {
        let presets = presets();
        let mut sites: Vec<Site> = configured
            .into_iter()
            .map(
                |s| match presets.iter().find(|p| p.name.eq_ignore_ascii_case(&s.name)) {
                    Some(base) => s.over(base),
                    None => s,
                },
            )
            .collect();
        for p in presets {
            if !sites.iter().any(|s| s.name.eq_ignore_ascii_case(&p.name)) {
                sites.push(p);
            }
        }
        Self { sites, defaults }
    }

    pub fn defaults(&self) -> &Limits {
        &self.defaults
    }

    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Where mail for `domain`, routed to `hosts`, belongs: the first site
    /// naming the domain, else the first whose MX patterns match any of the
    /// hosts (the roll-up), else the hosts themselves.
    pub fn place(&self, domain: &str, hosts: &[String]) -> Placement {
        let by_domain = self.sites.iter().find(|s| s.domains.iter().any(|p| matches(p, domain)));
        let site = by_domain.or_else(|| {
            self.sites
                .iter()
                .find(|s| hosts.iter().any(|h| s.mx.iter().any(|p| matches(p, h))))
        });
        match site {
            Some(s) => Placement {
                site: Some(s.name.clone()),
                limits: s.limits(&self.defaults),
            },
            None => Placement {
                site: None,
                limits: self.defaults,
            },
        }
    }
}

/// The default limits when nothing else is said.
pub fn default_limits() -> Limits {
    Limits {
        max_connections: 20,
        messages_per_connection: 100,
        messages_per_minute: None,
        messages_per_hour: None,
        recipients_per_message: 100,
        tls: TlsMode::Opportunistic,
    }
}

/// A sliding count of sends in the last minute and the last hour.
#[derive(Debug, Default)]
pub struct RateWindow {
    sends: std::collections::VecDeque<i64>,
}

impl RateWindow {
    /// How long to wait before one more send stays under both limits
    /// (scaled by `factor`, at least one a minute/hour); zero when it may
    /// go now.
    pub fn wait(&mut self, now_ms: i64, per_minute: Option<u32>, per_hour: Option<u32>, factor: f64) -> Duration {
        while self.sends.front().is_some_and(|t| *t <= now_ms - 3_600_000) {
            self.sends.pop_front();
        }
        let mut wait_ms = 0i64;
        let scaled = |limit: u32| -> usize {
            let v = (f64::from(limit) * factor).floor();
            if v < 1.0 { 1 } else { v as usize }
        };
        if let Some(limit) = per_hour {
            let limit = scaled(limit);
            if self.sends.len() >= limit {
                let oldest = self.sends[self.sends.len() - limit];
                wait_ms = wait_ms.max(oldest + 3_600_000 - now_ms);
            }
        }
        if let Some(limit) = per_minute {
            let limit = scaled(limit);
            let recent = self.sends.iter().rev().take_while(|t| **t > now_ms - 60_000).count();
            if recent >= limit {
                let oldest = self.sends[self.sends.len() - limit];
                wait_ms = wait_ms.max(oldest + 60_000 - now_ms);
            }
        }
        Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0))
    }

    pub fn record(&mut self, now_ms: i64) {
        self.sends.push_back(now_ms);
    }

    /// Sends in the last minute.
    pub fn last_minute(&self, now_ms: i64) -> usize {
        self.sends.iter().rev().take_while(|t| **t > now_ms - 60_000).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_roll_up_into_their_provider_by_mx() {
        let s = Shaping::new(Vec::new(), default_limits());
        let hosted = s.place(
            "acme-corp.example",
            &["aspmx.l.google.com".into(), "alt1.aspmx.l.google.com".into()],
        );
        assert_eq!(hosted.site.as_deref(), Some("google"));
        assert_eq!(hosted.limits.max_connections, 5);
        assert_eq!(s.place("gmail.com", &[]).site.as_deref(), Some("google"));
        let o365 = s.place(
            "contoso.example",
            &["contoso-example.mail.protection.outlook.com".into()],
        );
        assert_eq!(o365.site.as_deref(), Some("microsoft"));
        let other = s.place("example.net", &["mx.example.net".into()]);
        assert_eq!(other.site, None);
        assert_eq!(other.limits, default_limits());
        // A look-alike is not the provider.
        assert_eq!(s.place("x.example", &["evilgoogle.com".into()]).site, None);
        assert_eq!(s.place("x.example", &["google.com.evil.example".into()]).site, None);
    }

    #[test]
    fn an_operator_entry_overrides_its_preset_field_by_field() {
        let mine = Site {
            name: "google".into(),
            max_connections: Some(2),
            messages_per_minute: Some(60),
            ..Site::default()
        };
        let s = Shaping::new(vec![mine], default_limits());
        let p = s.place("acme.example", &["aspmx.l.google.com".into()]);
        assert_eq!(p.site.as_deref(), Some("google"));
        assert_eq!(
            (
                p.limits.max_connections,
                p.limits.messages_per_connection,
                p.limits.messages_per_minute
            ),
            (2, 50, Some(60))
        );
        assert_eq!(s.sites().iter().filter(|s| s.name == "google").count(), 1);
    }

    #[test]
    fn the_rate_window_spaces_sends() {
        let mut w = RateWindow::default();
        for t in 0..3 {
            assert_eq!(w.wait(t, Some(3), None, 1.0), Duration::ZERO);
            w.record(t);
        }
        assert_eq!(w.wait(10, Some(3), None, 1.0), Duration::from_millis(59_990));
        assert_eq!(w.wait(60_001, Some(3), None, 1.0), Duration::ZERO);
        // Halved by a back-off: one a minute left of three.
        let mut w = RateWindow::default();
        w.record(0);
        assert!(w.wait(1, Some(3), None, 0.5) > Duration::ZERO);
        assert_eq!(w.wait(1, Some(3), None, 1.0), Duration::ZERO);
    }
}
