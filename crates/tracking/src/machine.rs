//! Was it a person? Opens and clicks made by machines — mail privacy
//! proxies that fetch every image, link scanners that follow every link —
//! are recorded but flagged, so engagement figures count people.

use std::net::IpAddr;

use ipnet::IpNet;

/// What marks a request as a machine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRules {
    /// Lower-case fragments of user agents of proxies and scanners.
    pub agents: Vec<String>,
    /// Networks of proxies and scanners.
    pub networks: Vec<IpNet>,
    /// A click this soon after the message was sent comes from a scanner
    /// that followed it on arrival.
    pub click_window_secs: u32,
}

impl Default for MachineRules {
    fn default() -> Self {
        let agents = [
            "googleimageproxy", // Gmail's image proxy
            "yahoomailproxy",
            "proofpoint",
            "mimecast",
            "barracuda",
            "symantec",
            "trendmicro",
            "forcepoint",
            "safelinks",
            "bot",
            "crawler",
            "spider",
            "python-requests",
            "go-http-client",
            "curl/",
            "wget/",
            "headlesschrome",
        ];
        Self {
            agents: agents.iter().map(|a| (*a).to_owned()).collect(),
            // Apple's Mail Privacy Protection fetches from Apple's network.
            networks: ["17.0.0.0/8"].iter().filter_map(|n| n.parse().ok()).collect(),
            click_window_secs: 10,
        }
    }
}

/// One request to a tracking endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub head: bool,
    pub user_agent: &'a str,
    pub ip: Option<IpAddr>,
    pub click: bool,
    /// Seconds between sending and this request.
    pub since_sent: u32,
}

/// Whether the request was made by a machine.
pub fn is_machine(rules: &MachineRules, r: &Request<'_>) -> bool {
    let agent = r.user_agent.trim().to_ascii_lowercase();
    // A HEAD request fetches no content: a scanner checking the link.
    r.head
        || agent.is_empty()
        // Apple's proxy identifies as the bare "Mozilla/5.0".
        || agent == "mozilla/5.0"
        || rules.agents.iter().any(|a| agent.contains(a.as_str()))
        || r.ip.is_some_and(|ip| rules.networks.iter().any(|n| n.contains(&ip)))
        || (r.click && r.since_sent < rules.click_window_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(agent: &str, ip: &str, click: bool, since: u32, head: bool) -> bool {
        is_machine(
            &MachineRules::default(),
            &Request {
                head,
                user_agent: agent,
                ip: ip.parse().ok(),
                click,
                since_sent: since,
            },
        )
    }

    const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";

    #[test]
    fn people_and_machines_are_told_apart() {
        assert!(!req(BROWSER, "198.51.100.7", false, 3600, false), "a person opening");
        assert!(!req(BROWSER, "198.51.100.7", true, 3600, false), "a person clicking");
        assert!(req(
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
            "66.249.84.1",
            false,
            3600,
            false
        ));
        assert!(
            req("Mozilla/5.0", "17.58.0.1", false, 5, false),
            "Apple Mail Privacy Protection"
        );
        assert!(req(BROWSER, "17.58.0.1", false, 3600, false), "Apple's network");
        assert!(req(BROWSER, "198.51.100.7", true, 3, false), "a click on arrival");
        assert!(req(BROWSER, "198.51.100.7", true, 3600, true), "HEAD");
        assert!(req("Mimecast-Link-Scanner/2.0", "198.51.100.7", true, 3600, false));
        assert!(req("", "198.51.100.7", false, 3600, false));
    }
}
