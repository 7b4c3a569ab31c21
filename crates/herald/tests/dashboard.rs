//! Issue 17, the dashboard, through the real binary: in Debian's chromium
//! driven by Playwright (tests/browser/dashboard.mjs): sign in, find a
//! message's timeline, add and remove a suppression, a domain's DNS
//! status, a DMARC chart after an import, a sub's user kept from its
//! sibling's pages, CSRF-less and cross-site posts refused, a screenshot
//! of every page (in target/dashboard-screenshots). And over plain HTTP,
//! what an attacker tries: no session, a stolen or stale cookie, password
//! guessing (lockout), forms without their token, users made by those who
//! may not.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use herald_testkit::{Dashboard, Harness, Mode, Options, Receiver, TempStore, WAIT, wait_for};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_herald");
const PASSWORD: &str = "correct horse battery";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

/// Unix seconds at the start of the day `days_ago` days before today (UTC).
fn day_start(days_ago: i64) -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (now / 86_400 - days_ago) * 86_400
}

/// An aggregate report about `domain` for a day: a passing source and a
/// failing one.
fn report(domain: &str, org: &str, days_ago: i64) -> String {
    let begin = day_start(days_ago);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata><org_name>{org}</org_name>\
         <email>noreply-dmarc@{org}</email><report_id>{org}.{begin}</report_id><date_range><begin>{begin}</begin>\
         <end>{}</end></date_range></report_metadata>\n<policy_published><domain>{domain}</domain><adkim>r</adkim>\
         <aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct></policy_published>\n",
        begin + 86_399
    );
    for (source, count, result) in [("192.0.2.10", 120, "pass"), ("198.51.100.99", 7, "fail")] {
        xml.push_str(&format!(
            "<record><row><source_ip>{source}</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{result}</dkim><spf>{result}</spf></policy_evaluated></row>\
             <identifiers><header_from>{domain}</header_from></identifiers><auth_results><dkim>\
             <domain>{domain}</domain><selector>s1</selector><result>{result}</result></dkim><spf>\
             <domain>{domain}</domain><result>{result}</result></spf></auth_results></record>\n"
        ));
    }
    xml.push_str("</feedback>\n");
    xml
}

async fn post(h: &Harness, key: &str, path: &str, body: Value) -> anyhow::Result<Value> {
    let a = h.api.call("POST", path).key(key).json(body).send().await?;
    ensure!(a.status < 300, "{path}: {} {}", a.status, a.body);
    Ok(a.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() -> anyhow::Result<()> {
    ensure!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing (.ci/test installs Debian's package)"
    );
    ensure!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `npm ci` in crates/herald/tests/browser (.ci/test does it)"
    );
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    let admin = h.admin_key()?;
    h.key = h.account("brand", None)?;
    h.account("sub-a", Some("brand"))?;
    let key_b = h.account("sub-b", Some("brand"))?;
    h.server.run(&[
        "user",
        "create",
        "--account",
        "brand",
        "--email",
        "owner@brand.test",
        "--password",
        PASSWORD,
    ])?;
    h.server.run(&[
        "user",
        "create",
        "--account",
        "sub-a",
        "--email",
        "Ops@Sub-A.test",
        "--password",
        PASSWORD,
    ])?;

    // A webhook of the brand, then a delivered message, and one of its
    // sibling sub-b.
    let receiver = Receiver::start(Mode::Ok).await?;
    post(
        &h,
        &h.key,
        "/api/v1/webhooks",
        json!({"url": receiver.url("/hook"), "events": ["delivered"]}),
    )
    .await?;
    let message = h
        .send(
            json!({"from": "news@acme.test", "to": ["jane@example.test"], "subject": "Welcome",
            "text": "Hello Jane", "tags": ["welcome"]}),
        )
        .await?;
    h.wait_events("delivered", "jane@example.test", 1).await?;
    let sibling = post(
        &h,
        &key_b,
        "/api/v1/messages",
        json!({"from": "news@acme.test", "to": ["joe@example.test"], "subject": "Hi", "text": "Hi"}),
    )
    .await?["id"]
        .as_str()
        .context("message id")?
        .to_owned();

    // A verified sending domain (every record published), and one with
    // every record published but its DKIM key.
    let verified = post(&h, &h.key, "/api/v1/domains", json!({"name": "brand-mail.test"})).await?;
    let partial = post(&h, &h.key, "/api/v1/domains", json!({"name": "brand-news.test"})).await?;
    let records: Vec<Value> = partial["records"]
        .as_array()
        .context("records")?
        .iter()
        .filter(|r| r["kind"] != "dkim")
        .cloned()
        .collect();
    ensure!(records.len() < partial["records"].as_array().map_or(0, Vec::len));
    let zones = Harness::zones()?
        .publish(&verified["records"])
        .publish(&Value::Array(records));
    h.dns.replace(&zones).await?;
    let v = post(&h, &h.key, "/api/v1/domains/brand-mail.test/verify", json!({})).await?;
    ensure!(v["verified"] == true, "{v}");

    // DMARC reports for three days, imported by the operator.
    for days_ago in [1, 2, 3] {
        let a = h
            .api
            .call("POST", "/api/v1/dmarc/reports")
            .key(&admin)
            .bytes(
                report("brand-mail.test", "google.com", days_ago).into_bytes(),
                "application/xml",
            )
            .send()
            .await?;
        ensure!(a.status == 200, "{}", a.body);
    }

    let posted_with = |n: usize| {
        let message = message.clone();
        let receiver = &receiver;
        async move {
            let posts = receiver
                .posts()
                .into_iter()
                .filter(|p| String::from_utf8_lossy(&p.body).contains(&message))
                .count();
            (posts >= n).then_some(posts)
        }
    };
    wait_for("the delivered event at the webhook", WAIT, || posted_with(1)).await?;

    // This run's screenshots only.
    let _ = std::fs::remove_dir_all(screenshots());
    let out = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .current_dir(browser_dir())
        .env("HERALD_URL", h.api.base().trim_end_matches('/'))
        .env("SCREENSHOTS", screenshots())
        .env("OWNER_EMAIL", "owner@brand.test")
        .env("SUB_EMAIL", "ops@sub-a.test")
        .env("PASSWORD", PASSWORD)
        .env("MESSAGE_ID", &message)
        .env("RECIPIENT", "jane@example.test")
        .env("SIBLING_MESSAGE_ID", &sibling)
        .env("DOMAIN", "brand-mail.test")
        .env("DNS_DOMAIN", "brand-news.test")
        .output()
        .context("running node (Debian's nodejs)")?;
    ensure!(
        out.status.success(),
        "the browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The re-send clicked in the browser posts the event again.
    wait_for("the re-sent event at the webhook", WAIT, || posted_with(2)).await?;
    for page in [
        "login",
        "overview",
        "messages",
        "message",
        "suppressions",
        "domain",
        "deliverability",
        "delivery",
        "webhooks",
        "settings",
        "domains",
        "overview-phone",
    ] {
        let shot = screenshots().join(format!("{page}.png"));
        ensure!(
            std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000),
            "no screenshot of {page}"
        );
    }
    Ok(())
}

// The harness's public URL is https (a TLS proxy in front): the cookies
// are `Secure` and `__Host-` prefixed.
const LOGIN: &str = "__Host-herald_login";
const SESSION: &str = "__Host-herald_session";

/// A form body, as a browser posts it.
trait FormBody {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            body.append_pair(k.as_ref(), v.as_ref());
        }
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish())
    }
}

/// A client that follows no redirect and keeps no cookie: each request
/// says exactly what it carries.
fn plain_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn set_cookie<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// The sign-in form's double-submit token and its cookie.
async fn login_token(c: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let r = c.get(format!("{base}/login")).send().await?;
    ensure!(r.status() == 200);
    let cookie = set_cookie(&r, LOGIN).context("the sign-in cookie")?;
    ensure!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Secure"),
        "{cookie}"
    );
    Ok(cookie_value(cookie))
}

async fn sign_in(c: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<reqwest::Response> {
    let token = login_token(c, base).await?;
    Ok(c.post(format!("{base}/login"))
        .header("cookie", format!("{LOGIN}={token}"))
        .form_pairs(&[
            ("email", email),
            ("password", password),
            ("csrf", &token),
            ("next", "/settings"),
        ])
        .send()
        .await?)
}

/// The CSRF token a signed-in page carries in its forms.
async fn page_token(c: &reqwest::Client, base: &str, session: &str) -> anyhow::Result<String> {
    let body = c
        .get(format!("{base}/suppressions"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await?
        .text()
        .await?;
    let at = body.find("name=\"csrf\" value=\"").context("a form's token")? + 19;
    Ok(body[at..at + 64].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_what_attackers_try() -> anyhow::Result<()> {
    let mut h = Harness::start(Path::new(BIN), Options::new(TempStore::sqlite()?)?).await?;
    let admin = h.admin_key()?;
    h.key = h.account("brand", None)?;
    let sub_key = h.account("sub", Some("brand"))?;
    let base = h.api.base().trim_end_matches('/').to_owned();
    let c = plain_client()?;

    // Users by API: the account's own; Herald chooses a password when
    // none is given; an operator user only by an admin key; an address is
    // taken once across the platform; short passwords refused.
    let made = post(
        &h,
        &h.key,
        "/api/v1/users",
        json!({"email": "Owner@Brand.test", "password": PASSWORD}),
    )
    .await?;
    ensure!(
        made["email"] == "owner@brand.test" && made["account"] == "brand" && made.get("password").is_none(),
        "{made}"
    );
    let chosen = post(&h, &sub_key, "/api/v1/users", json!({"email": "sub@brand.test"})).await?;
    ensure!(chosen["password"].as_str().is_some_and(|p| p.len() >= 20), "{chosen}");
    let refused = h
        .api
        .call("POST", "/api/v1/users")
        .key(&h.key)
        .json(json!({"email": "root@brand.test", "password": PASSWORD, "operator": true}))
        .send()
        .await?;
    ensure!(
        refused.status == 403,
        "a tenant makes an operator user: {}",
        refused.status
    );
    let taken = h
        .api
        .call("POST", "/api/v1/users")
        .key(&sub_key)
        .json(json!({"email": "owner@brand.test", "password": PASSWORD}))
        .send()
        .await?;
    ensure!(taken.status == 409, "{}", taken.status);
    let short = h
        .api
        .call("POST", "/api/v1/users")
        .key(&h.key)
        .json(json!({"email": "x@brand.test", "password": "short"}))
        .send()
        .await?;
    ensure!(short.status == 422, "{}", short.status);
    post(
        &h,
        &admin,
        "/api/v1/users",
        json!({"email": "root@ops.test", "password": PASSWORD, "operator": true}),
    )
    .await?;
    let listed = h.get("/api/v1/users").await?;
    ensure!(
        listed["data"]
            .as_array()
            .is_some_and(|u| u.len() == 1 && u[0]["email"] == "owner@brand.test"),
        "a master lists its own users only: {listed}"
    );

    // Strangers: every page but the sign-in page sends them there; the
    // API's 404 stays JSON.
    let r = c.get(format!("{base}/settings?tab=1")).send().await?;
    ensure!(r.status() == 303, "{}", r.status());
    ensure!(
        r.headers().get("location").and_then(|v| v.to_str().ok()) == Some("/login?next=/settings%3Ftab%3D1"),
        "{:?}",
        r.headers().get("location")
    );
    let r = c.get(format!("{base}/login")).send().await?;
    for (name, want) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
    ] {
        ensure!(
            r.headers().get(name).and_then(|v| v.to_str().ok()) == Some(want),
            "{name}"
        );
    }
    ensure!(
        r.headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("frame-ancestors 'none'") && v.contains("script-src 'self'")),
        "CSP"
    );
    let r = c.get(format!("{base}/api/v1/nothing-here")).send().await?;
    ensure!(r.status() == 404 && r.headers()["content-type"] == "application/json");
    let r = c
        .get(format!("{base}/nothing-here"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await?;
    ensure!(r.status() == 404 && r.headers()["content-type"] == "text/html; charset=utf-8");

    // The sign-in form needs its own token (login CSRF).
    let r = c
        .post(format!("{base}/login"))
        .form_pairs(&[("email", "owner@brand.test"), ("password", PASSWORD)])
        .send()
        .await?;
    ensure!(r.status() == 403, "a sign-in without its token: {}", r.status());
    let token = login_token(&c, &base).await?;
    let r = c
        .post(format!("{base}/login"))
        .header("cookie", format!("{LOGIN}={token}"))
        .form_pairs(&[
            ("email", "owner@brand.test"),
            ("password", PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await?;
    ensure!(r.status() == 403, "a sign-in with a forged token: {}", r.status());

    // Guessing: five wrong passwords lock the user, and then even the
    // right one is refused; a locked user, a wrong password and an unknown
    // address get the same answer, so a stranger learns nothing of which
    // addresses have users.
    let error_of = |page: &str| -> String {
        let start = page.find("role=\"alert\">").map_or(0, |i| i + 13);
        page[start..].split('<').next().unwrap_or_default().to_owned()
    };
    let r = sign_in(&c, &base, "nobody@brand.test", PASSWORD).await?;
    ensure!(r.status() == 401, "{}", r.status());
    let unknown = error_of(&r.text().await?);
    ensure!(unknown.starts_with("Wrong e-mail address or password"), "{unknown}");
    let sub_password = chosen["password"].as_str().context("password")?.to_owned();
    for attempt in 1..=5 {
        let r = sign_in(&c, &base, "sub@brand.test", "guess-guess-guess").await?;
        ensure!(r.status() == 401, "attempt {attempt}: {}", r.status());
        ensure!(
            error_of(&r.text().await?) == unknown,
            "attempt {attempt} is told the same"
        );
    }
    let r = sign_in(&c, &base, "sub@brand.test", &sub_password).await?;
    ensure!(
        r.status() == 401,
        "a locked user with the right password: {}",
        r.status()
    );
    ensure!(error_of(&r.text().await?) == unknown, "a locked user is told the same");
    let users = h.api.call("GET", "/api/v1/users").key(&sub_key).send().await?;
    ensure!(users.body["data"][0]["locked_until"].is_string(), "{}", users.body);

    // The owner signs in: a session cookie, HttpOnly and SameSite, and the
    // page asked for.
    let r = sign_in(&c, &base, "owner@brand.test", PASSWORD).await?;
    ensure!(r.status() == 303, "{}", r.status());
    ensure!(r.headers().get("location").and_then(|v| v.to_str().ok()) == Some("/settings"));
    let cookie = set_cookie(&r, SESSION).context("the session cookie")?.to_owned();
    ensure!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    let session = cookie_value(&cookie);
    let page = c
        .get(format!("{base}/"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await?;
    ensure!(page.status() == 200 && page.headers()["content-type"] == "text/html; charset=utf-8");
    ensure!(page.text().await?.contains("owner@brand.test"));

    // A made-up session is no session.
    let r = c
        .get(format!("{base}/"))
        .header(
            "cookie",
            format!("{SESSION}=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .send()
        .await?;
    ensure!(r.status() == 303, "{}", r.status());

    // Forms: without the page's token, with a forged one, or from another
    // site, nothing changes; with it, the change is made.
    let csrf = page_token(&c, &base, &session).await?;
    let add = |token: Option<&str>, origin: Option<&str>, address: &str| {
        let mut form = vec![("address", address.to_owned())];
        if let Some(t) = token {
            form.push(("csrf", t.to_owned()));
        }
        let mut req = c
            .post(format!("{base}/suppressions"))
            .header("cookie", format!("{SESSION}={session}"))
            .form_pairs(&form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    ensure!(add(None, None, "a@example.org").await?.status() == 403);
    ensure!(add(Some(&"f".repeat(64)), None, "b@example.org").await?.status() == 403);
    ensure!(
        add(Some(&csrf), Some("https://evil.example"), "c@example.org")
            .await?
            .status()
            == 403
    );
    let ok = add(Some(&csrf), Some(&base), "d@example.org").await?;
    ensure!(ok.status() == 303, "{}", ok.status());
    let list = h.get("/api/v1/suppressions").await?;
    let addresses: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["address"].as_str())
        .collect();
    ensure!(addresses == ["d@example.org"], "{addresses:?}");

    // Another session's token does not open this one's forms.
    let other = cookie_value(
        set_cookie(&sign_in(&c, &base, "owner@brand.test", PASSWORD).await?, SESSION).context("a second session")?,
    );
    let foreign = page_token(&c, &base, &other).await?;
    ensure!(foreign != csrf);
    ensure!(add(Some(&foreign), None, "e@example.org").await?.status() == 403);

    // A CSV file uploaded from the page is imported as the API imports it
    // (its token in the form's URL); without the token, nothing is; the
    // export downloads every entry.
    let owner = Dashboard::sign_in(&base, "owner@brand.test", PASSWORD).await?;
    let csv = b"address,reason\nimported1@example.org,manual\nImported2@Example.org\n";
    let up = owner.upload("/suppressions/import", "file", "list.csv", csv).await?;
    ensure!(
        up.status == 303 && up.location.as_deref() == Some("/suppressions?done=imported&rows=2&added=2&skipped=0&bad="),
        "{} {:?} {}",
        up.status,
        up.location,
        up.body
    );
    let shown = owner.get("/suppressions?done=imported&rows=2&added=2").await?;
    ensure!(
        shown.body.contains("2 rows read, 2 addresses added."),
        "the import's result is shown"
    );
    let bare = c
        .post(format!("{base}/suppressions/import"))
        .header("cookie", format!("{SESSION}={session}"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nzz@example.org\r\n--x--\r\n")
        .send()
        .await?;
    ensure!(bare.status() == 403, "an upload without its token: {}", bare.status());
    let export = owner.get("/suppressions/export.csv").await?;
    ensure!(
        export.status == 200
            && export.body.contains("imported1@example.org")
            && export.body.contains("d@example.org")
            && !export.body.contains("zz@example.org"),
        "{}",
        export.body
    );

    // Webhooks and users made from the pages: their secret or password
    // shown once on the answer, then listed by the API; removed from the
    // pages too.
    let made = owner
        .post(
            "/webhooks",
            &[("url", "http://127.0.0.1:9/hook"), ("events", "delivered, bounced")],
        )
        .await?;
    ensure!(
        made.status == 200 && made.body.contains("whsec_"),
        "{} {}",
        made.status,
        made.body
    );
    let hooks = h.get("/api/v1/webhooks").await?;
    let hook = hooks["data"][0].clone();
    ensure!(hook["events"] == json!(["delivered", "bounced"]), "{hooks}");
    let id = hook["id"].as_str().context("webhook id")?;
    let gone = owner.post(&format!("/webhooks/{id}/delete"), &[]).await?;
    ensure!(gone.status == 303, "{}", gone.status);
    ensure!(h.get("/api/v1/webhooks").await?["data"] == json!([]));
    let added = owner
        .post("/settings/users", &[("email", "colleague@brand.test")])
        .await?;
    ensure!(
        added.status == 200 && added.body.contains("password of colleague@brand.test"),
        "{}",
        added.status
    );
    ensure!(
        h.get("/api/v1/users")
            .await?
            .to_string()
            .contains("colleague@brand.test")
    );
    let removed = owner
        .post("/settings/users/delete", &[("email", "colleague@brand.test")])
        .await?;
    ensure!(removed.status == 303, "{}", removed.status);
    ensure!(
        !h.get("/api/v1/users")
            .await?
            .to_string()
            .contains("colleague@brand.test")
    );

    // Suspending the account ends what its sessions may do; deleting the
    // user ends its sessions.
    h.server.run(&["account", "suspend", "brand"])?;
    let r = c
        .get(format!("{base}/"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await?;
    ensure!(r.status() == 403, "a suspended account's session: {}", r.status());
    h.server.run(&["account", "reactivate", "brand"])?;
    h.server
        .run(&["user", "delete", "--account", "brand", "owner@brand.test"])?;
    let r = c
        .get(format!("{base}/"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await?;
    ensure!(r.status() == 303, "a deleted user's session: {}", r.status());

    // An operator user names any account to switch to (no list of every
    // account), and a tenant neither lists nor deletes it.
    let r = sign_in(&c, &base, "root@ops.test", PASSWORD).await?;
    let root = cookie_value(set_cookie(&r, SESSION).context("operator session")?);
    let page = c
        .get(format!("{base}/"))
        .header("cookie", format!("{SESSION}={root}"))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        page.contains("<input id=\"account-switch\" name=\"account\"") && !page.contains("<option>"),
        "the operator's switch"
    );
    let switched = Dashboard::sign_in(&base, "root@ops.test", PASSWORD)
        .await?
        .post("/switch", &[("account", "sub")])
        .await?;
    ensure!(switched.status == 303, "{}", switched.status);
    let placed = h
        .api
        .call("POST", "/api/v1/users")
        .key(&admin)
        .header("herald-account", "brand")
        .json(json!({"email": "root2@ops.test", "password": PASSWORD, "operator": true}))
        .send()
        .await?;
    ensure!(
        placed.status == 201 && placed.body["account"] == "brand",
        "{}",
        placed.body
    );
    let listed = h.get("/api/v1/users").await?;
    ensure!(!listed.to_string().contains("root2@ops.test"), "{listed}");
    let removed = h
        .api
        .call("DELETE", "/api/v1/users/root2@ops.test")
        .key(&h.key)
        .send()
        .await?;
    ensure!(
        removed.status == 404,
        "a tenant deletes an operator user: {}",
        removed.status
    );
    Ok(())
}
