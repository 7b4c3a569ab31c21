//! A small client for Herald's HTTP API, for end-to-end tests.

use std::net::SocketAddr;

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

/// The API of one running server.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

/// An answer: status and JSON body (`Value::Null` when the body is empty).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The first value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The `error.code` of an error answer.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("error")?.get("code")?.as_str()
    }
}

impl Api {
    /// Plain HTTP on `addr`.
    pub fn http(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            base: format!("http://{addr}"),
            client: client(false)?,
        })
    }

    /// HTTPS on `addr`, trusting any certificate (the server's is self-signed).
    pub fn https(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            base: format!("https://localhost:{}", addr.port()),
            client: client(true)?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Starts a request: `api.call("GET", "/api/v1/accounts").key(k).send()`.
    pub fn call(&self, method: &str, path: &str) -> Call {
        Call {
            api: self.clone(),
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
            path: path.to_owned(),
            key: None,
            account: None,
            headers: Vec::new(),
            body: None,
            raw: None,
        }
    }
}

fn client(insecure: bool) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a TLS provider of its own; ours is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure)
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// A request being built.
#[derive(Debug)]
pub struct Call {
    api: Api,
    method: Method,
    path: String,
    key: Option<String>,
    account: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    raw: Option<(Vec<u8>, String)>,
}

impl Call {
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// Sends `Herald-Account: name`.
    pub fn on_behalf_of(mut self, name: &str) -> Self {
        self.account = Some(name.to_owned());
        self
    }

    /// Sends another request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends `bytes` as the body, with this content type.
    pub fn bytes(mut self, bytes: Vec<u8>, content_type: &str) -> Self {
        self.raw = Some((bytes, content_type.to_owned()));
        self
    }

    pub async fn send(self) -> anyhow::Result<Answer> {
        let url = format!("{}{}", self.api.base, self.path);
        let mut req = self.api.client.request(self.method.clone(), &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(a) = &self.account {
            req = req.header("Herald-Account", a);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some(b) = &self.body {
            req = req.json(b);
        }
        if let Some((bytes, content_type)) = self.raw.clone() {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.with_context(|| format!("{} {url}", self.method))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body, headers })
    }
}
