//! A whole Herald for an end-to-end test: a store, a scripted remote MX
//! (the sink on 127.0.0.2, found through a test DNS server that serves
//! `example.test`), and the real binary started with a config made of the
//! common sections and the test's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::{Api, DnsServer, HeraldProcess, Rule, SmtpSink, TempStore, Zones, wait_for};

/// How long a harness waits for what a test expects.
pub const WAIT: Duration = Duration::from_secs(30);

/// What differs between tests.
#[derive(Debug)]
pub struct Options {
    pub store: TempStore,
    /// The remote MX's scripted answers.
    pub sink_rules: Vec<Rule>,
    /// The DNS data; [`Harness::zones`] is `example.test` pointing at the sink.
    pub zones: Zones,
    /// The `[smtp]` section's listeners (no listener by default).
    pub smtp: String,
    /// More sections, as TOML.
    pub extra: String,
    /// More keys of `[delivery]`.
    pub delivery: String,
}

impl Options {
    pub fn new(store: TempStore) -> anyhow::Result<Self> {
        Ok(Self {
            store,
            sink_rules: Vec::new(),
            zones: Harness::zones()?,
            smtp: "submission = []\nsubmission_tls = []\ninbound = []\n".to_owned(),
            extra: String::new(),
            delivery: String::new(),
        })
    }
}

#[derive(Debug)]
pub struct Harness {
    pub store: TempStore,
    pub dir: tempfile::TempDir,
    pub config: String,
    pub server: HeraldProcess,
    pub api: Api,
    /// The API key the helpers use; a test sets it.
    pub key: String,
    pub sink: SmtpSink,
    pub dns: DnsServer,
    bin: PathBuf,
}

impl Harness {
    /// `example.test` with its MX on the sink's address.
    pub fn zones() -> anyhow::Result<Zones> {
        Ok(Zones::new()
            .mx("example.test", 10, "mx.example.test")
            .ip("mx.example.test", "127.0.0.2".parse()?))
    }

    pub async fn start(bin: &Path, o: Options) -> anyhow::Result<Self> {
        let sink = SmtpSink::start("127.0.0.2:0", o.sink_rules).await?;
        let dns = DnsServer::start(&o.zones).await?;
        let dir = tempfile::tempdir()?;
        let config = format!(
            r#"[server]
hostname = "mta.test"
data_dir = "{data}"
shutdown_timeout = "5s"

[storage]
url = "{url}"

[http]
listen = "127.0.0.1:0"
public_url = "https://links.mta.test"
# The webhook and reply receivers of the tests listen on loopback.
outbound_allow = ["127.0.0.0/8"]

[smtp]
{smtp}
[dns]
nameservers = ["{dns}"]

[delivery]
port = {port}
retry_schedule = ["1s"]
{delivery}

{extra}"#,
            data = dir.path().join("data").display(),
            url = o.store.url,
            smtp = o.smtp,
            dns = dns.addr(),
            port = sink.addr().port(),
            extra = o.extra,
            delivery = o.delivery,
        );
        let mut server = HeraldProcess::start(bin, dir.path(), &config, &[])?;
        let http = server.listening("http").await?;
        Ok(Self {
            store: o.store,
            dir,
            config,
            server,
            api: Api::http(http)?,
            key: String::new(),
            sink,
            dns,
            bin: bin.to_owned(),
        })
    }

    /// The admin API key the server made on its first start (saved in its
    /// data folder).
    pub fn admin_key(&self) -> anyhow::Result<String> {
        let path = self.dir.path().join("data/bootstrap-admin-key");
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    /// Stops Herald (Ctrl-C) and starts it again on the same data.
    pub async fn restart(mut self) -> anyhow::Result<Self> {
        ensure!(self.server.interrupt().await?.success());
        self.server = HeraldProcess::start(&self.bin, self.dir.path(), &self.config, &[])?;
        let http = self.server.listening("http").await?;
        self.api = Api::http(http)?;
        Ok(self)
    }

    /// Creates a master account (or a sub of `parent`) that may send from
    /// `@acme.test`; returns a new API key of it.
    pub fn account(&self, name: &str, parent: Option<&str>) -> anyhow::Result<String> {
        match parent {
            Some(p) => self.server.run(&["account", "create", name, "--parent", p])?,
            None => self.server.run(&["account", "create", name])?,
        };
        self.server
            .run(&["sender", "add", "--account", name, "@acme.test", "--override"])?;
        Ok(self
            .server
            .run(&["api-key", "create", "--account", name])?
            .trim()
            .to_owned())
    }

    /// Sends a message through the API with the harness key; its id.
    pub async fn send(&self, message: Value) -> anyhow::Result<String> {
        let a = self
            .api
            .call("POST", "/api/v1/messages")
            .key(&self.key)
            .json(message)
            .send()
            .await?;
        ensure!(a.status == 202, "{}", a.body);
        Ok(a.body["id"].as_str().context("message id")?.to_owned())
    }

    /// A GET that must answer 200; its body.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let a = self.api.call("GET", path).key(&self.key).send().await?;
        ensure!(a.status == 200, "{path}: {}", a.body);
        Ok(a.body)
    }

    /// The events a query of `/api/v1/events` finds.
    pub async fn events(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self.get(&format!("/api/v1/events?{query}")).await?["data"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits until `recipient` has `n` events of `kind`; returns them.
    pub async fn wait_events(&self, kind: &str, recipient: &str, n: usize) -> anyhow::Result<Vec<Value>> {
        let query = format!("type={kind}&recipient={recipient}");
        wait_for(&format!("{n} {kind} events for {recipient}"), WAIT, || {
            let q = query.clone();
            async move { self.events(&q).await.ok().filter(|e| e.len() >= n) }
        })
        .await
    }
}
