//! The running server's API, for the commands that need the server itself
//! (the queue, sending): its URL and the bootstrap admin key are read from
//! the data dir unless given.

use anyhow::{Context, bail};
use reqwest::Method;

use crate::config::Config;
use crate::serve::{API_URL_FILE, BOOTSTRAP_KEY_FILE};

fn read_file(config: &Config, name: &str, what: &str) -> anyhow::Result<String> {
    let path = config.data_dir.join(name);
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .with_context(|| {
            format!(
                "no {what} given and none in {} (is `herald serve` running?)",
                path.display()
            )
        })
}

pub struct ApiClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(config: &Config, server: Option<String>, api_key: Option<String>) -> anyhow::Result<Self> {
        let base = match server {
            Some(s) => s,
            None => read_file(config, API_URL_FILE, "--server")?,
        };
        let key = match api_key {
            Some(k) => k,
            None => read_file(config, BOOTSTRAP_KEY_FILE, "--api-key")?,
        };
        // The server's own certificate is self-signed unless one was
        // configured; it is trusted only on loopback.
        let loopback = base.contains("://127.") || base.contains("://localhost") || base.contains("://[::1]");
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(loopback)
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            http,
        })
    }

    /// Sends the request; the answer's body on success, the API's error
    /// message otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<String>,
    ) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let resp = req.send().await.with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let message = serde_json::from_str::<herald_api_types::ErrorBody>(&text)
                .map(|e| e.error.message)
                .unwrap_or(text);
            bail!("{status}: {message}");
        }
        Ok(text)
    }
}
