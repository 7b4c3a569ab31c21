//! A signed-in dashboard session over plain HTTP, for end-to-end tests
//! that check what a page shows or what a form does without a browser
//! (tests/dashboard.rs drives a real one).

use anyhow::{Context, ensure};

/// A session of one dashboard user.
#[derive(Debug)]
pub struct Dashboard {
    client: reqwest::Client,
    base: String,
    /// `name=value` of the session cookie.
    cookie: String,
}

/// A page's answer.
#[derive(Debug)]
pub struct PageAnswer {
    pub status: u16,
    /// Where a redirect points.
    pub location: Option<String>,
    pub body: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k, v);
    }
    body.finish()
}

/// The `name=value` of a `Set-Cookie` whose name ends with `suffix`.
fn cookie_of(r: &reqwest::Response, suffix: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k.ends_with(suffix)))
        .map(str::to_owned)
}

impl Dashboard {
    /// Signs in at `base` (`http://host:port`) as a browser would: the
    /// sign-in page's token, then the form.
    pub async fn sign_in(base: &str, email: &str, password: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = base.trim_end_matches('/').to_owned();
        let page = client.get(format!("{base}/login")).send().await?;
        let login = cookie_of(&page, "herald_login").context("the sign-in cookie")?;
        let token = login.split_once('=').map(|(_, v)| v.to_owned()).unwrap_or_default();
        let r = client
            .post(format!("{base}/login"))
            .header("cookie", &login)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("email", email), ("password", password), ("csrf", &token)]))
            .send()
            .await?;
        ensure!(r.status() == 303, "signing in as {email}: {}", r.status());
        let cookie = cookie_of(&r, "herald_session").context("the session cookie")?;
        Ok(Self { client, base, cookie })
    }

    /// Sends `request` with this session's cookie; its answer.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<PageAnswer> {
        let r = request.header("cookie", &self.cookie).send().await?;
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(PageAnswer {
            status,
            location,
            body: r.text().await?,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<PageAnswer> {
        self.send(self.client.get(format!("{}{path}", self.base))).await
    }

    /// The CSRF token of this session's forms, read from a page.
    pub async fn token(&self) -> anyhow::Result<String> {
        let page = self.get("/settings").await?;
        let at = page.body.find("name=\"csrf\" value=\"").context("a form's token")? + 19;
        Ok(page.body.get(at..at + 64).context("a whole token")?.to_owned())
    }

    /// Posts a form with this session's token, as its page would.
    pub async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> anyhow::Result<PageAnswer> {
        let token = self.token().await?;
        let mut all = pairs.to_vec();
        all.push(("csrf", &token));
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&all)),
        )
        .await
    }

    /// Uploads a file as a multipart form (the token in the form's URL,
    /// as the page puts it).
    pub async fn upload(&self, path: &str, field: &str, name: &str, bytes: &[u8]) -> anyhow::Result<PageAnswer> {
        let token = self.token().await?;
        let boundary = "herald-test-boundary-7d1f";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let sep = if path.contains('?') { '&' } else { '?' };
        self.send(
            self.client
                .post(format!("{}{path}{sep}csrf={token}", self.base))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body),
        )
        .await
    }
}
