// Drives Debian's chromium through Playwright against a running Herald,
// set up by crates/herald/tests/dashboard.rs, which passes what it made in
// the environment. Every step checks what a user would see; the first that
// fails ends the run with a non-zero exit and the step's name. A
// screenshot of every page goes to SCREENSHOTS.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env("HERALD_URL");
const SHOTS = env("SCREENSHOTS");
const OWNER = env("OWNER_EMAIL");
const SUB_USER = env("SUB_EMAIL");
const PASSWORD = env("PASSWORD");
const MESSAGE = env("MESSAGE_ID");
const RECIPIENT = env("RECIPIENT");
const SIBLING_MESSAGE = env("SIBLING_MESSAGE_ID");
const DOMAIN = env("DOMAIN");
const DNS_DOMAIN = env("DNS_DOMAIN");
const SUPPRESS = "blocked.person@example.org";

mkdirSync(SHOTS, { recursive: true });

let step = "start";
const check = (ok, what) => {
  if (!ok) throw new Error(`${step}: ${what}`);
};
const shot = async (page, name) => {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

async function signIn(context, email) {
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  check(page.url().startsWith(`${BASE}/login`), `an anonymous visit lands on the sign-in page, not ${page.url()}`);
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/`);
  check((await page.getByRole("heading", { level: 1 }).textContent()) === "Overview", "the overview after signing in");
  return page;
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });

  step = "sign in";
  {
    const page = await context.newPage();
    await page.goto(`${BASE}/login`);
    await shot(page, "login");
    // A wrong password is refused with a message, and no session.
    await page.getByLabel("E-mail address").fill(OWNER);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    check(await page.getByRole("alert").isVisible(), "a wrong password says so");
    check(page.url().startsWith(`${BASE}/login`), "a wrong password stays on the sign-in page");
    await page.close();
  }
  const page = await signIn(context, OWNER);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.includes("herald_session"));
  check(session && session.httpOnly && session.sameSite === "Lax", `the session cookie is HttpOnly and SameSite: ${JSON.stringify(session)}`);

  step = "overview";
  check((await page.locator(".card dd").first().textContent()).trim() !== "", "the totals are shown");
  check(await page.locator("svg.chart").count() >= 2, "the charts are drawn");
  check(await page.getByText("Reputation").count() > 0, "the reputation is shown");
  const sent = await page.locator(".card", { hasText: "Sent" }).locator("dd").textContent();
  check(Number(sent.replace(/,/g, "")) >= 1, `the message sent is counted: ${sent}`);
  await shot(page, "overview");
  await page.getByRole("link", { name: "Last 30 days" }).click();
  check(page.url().endsWith("range=30d"), "the period switches");

  step = "keyboard";
  {
    // The skip link is the first thing a keyboard reaches, and leads to
    // the content.
    await page.goto(`${BASE}/`);
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement.textContent);
    check(focused.includes("Skip to content"), `the first tab stop is the skip link, not ${focused}`);
    await page.keyboard.press("Enter");
    check(page.url().endsWith("#main"), "the skip link leads to the content");
  }

  step = "message timeline";
  await page.getByRole("link", { name: "Messages", exact: true }).click();
  await page.getByLabel("Recipient").fill(RECIPIENT);
  await page.getByRole("button", { name: "Search" }).click();
  check(await page.getByRole("link", { name: MESSAGE }).count() > 0, "the search finds the message");
  await shot(page, "messages");
  await page.getByRole("link", { name: MESSAGE }).first().click();
  await page.waitForURL(`${BASE}/messages/${MESSAGE}`);
  const timeline = await page.locator(".recipient").first().textContent();
  check(timeline.includes(RECIPIENT), "the timeline names the recipient");
  check(timeline.includes("accepted") && timeline.includes("delivered"), `the timeline has every step: ${timeline}`);
  check(/250\b/.test(timeline), "the timeline shows the SMTP answer");
  check(timeline.includes("MX "), "the timeline shows the MX host");
  await shot(page, "message");

  step = "suppressions";
  await page.getByRole("link", { name: "Suppressions" }).click();
  await page.getByLabel("Address", { exact: true }).fill(SUPPRESS);
  await page.getByLabel("Reason", { exact: true }).fill("by-phone");
  await page.getByRole("button", { name: "Suppress" }).click();
  check(await page.getByRole("status").first().textContent().then((t) => t.includes("added")), "adding confirms");
  check(await page.getByRole("rowheader", { name: SUPPRESS }).count() === 1, "the address is listed");
  await shot(page, "suppressions");
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: `Remove ${SUPPRESS}` }).click();
  await page.waitForURL(/done=suppression-removed/);
  check(await page.getByRole("rowheader", { name: SUPPRESS }).count() === 0, "the address is gone");

  step = "domain DNS status";
  await page.getByRole("link", { name: "Domains" }).click();
  await page.getByRole("link", { name: DNS_DOMAIN }).click();
  const statuses = await page.locator("table.records tbody tr td:first-child .badge").allTextContents();
  check(statuses.includes("ok") && statuses.includes("missing"), `published records are ok, the missing one is missing: ${statuses}`);
  check(await page.locator("button.copy").count() >= 2, "every record has copy buttons");
  await shot(page, "domain");

  step = "DMARC chart";
  await page.getByRole("link", { name: "Deliverability" }).click();
  await page.getByLabel("Domain").selectOption(DOMAIN);
  await page.getByRole("button", { name: "Show" }).click();
  const chartTitle = await page.locator("svg.chart title").first().textContent();
  check(chartTitle.includes(`DMARC volume of ${DOMAIN}`), `the DMARC chart is drawn: ${chartTitle}`);
  const points = await page.locator("svg.chart polyline").first().getAttribute("points");
  check(points && points.split(" ").length >= 2, "the chart has a point per day");
  check((await page.locator(".card", { hasText: "Messages" }).locator("dd").textContent()).trim() !== "0", "the report's messages are counted");
  await shot(page, "deliverability");

  step = "webhooks";
  await page.getByRole("link", { name: "Webhooks" }).click();
  check(await page.locator("table tbody tr", { hasText: "delivered" }).count() >= 1, "the delivery log shows the post");
  await shot(page, "webhooks");
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: /^Re-send from/ }).first().click();
  await page.waitForURL(/done=resent/);
  check((await page.getByRole("status").first().textContent()).includes("posted again"), "the re-send is confirmed");

  step = "other pages";
  for (const [name, path] of [["delivery", "/delivery"], ["settings", "/settings"], ["domains", "/domains"]]) {
    const r = await page.goto(`${BASE}${path}`);
    check(r.status() === 200, `${path} answers ${r.status()}`);
    await shot(page, name);
  }

  step = "accessibility";
  {
    // axe-core's WCAG 2 A and AA rules on every page. Its script is
    // injected, which the pages' CSP forbids: this audit context bypasses
    // the CSP (and only this one).
    const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
    const audit = await browser.newContext({ bypassCSP: true, storageState: await context.storageState() });
    const p = await audit.newPage();
    const pages = ["/", "/?range=30d", "/messages", `/messages/${MESSAGE}`, "/delivery", "/domains", `/domains/${DNS_DOMAIN}`,
      "/suppressions", "/webhooks", `/deliverability?domain=${DOMAIN}`, "/settings"];
    const problems = [];
    for (const path of pages) {
      await p.goto(`${BASE}${path}`);
      await p.addScriptTag({ path: axePath });
      const result = await p.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }));
      check(result.passes.length > 10, `axe checked ${path} (${result.passes.length} rules passed)`);
      for (const v of result.violations) {
        problems.push(`${path}: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
      }
    }
    await audit.close();
    check(problems.length === 0, `accessibility violations:\n${problems.join("\n")}`);
  }

  step = "phone";
  {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await context.storageState() });
    const p = await phone.newPage();
    await p.goto(`${BASE}/`);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `the overview fits a phone's width (${overflow}px too wide)`);
    await shot(p, "overview-phone");
    await phone.close();
  }

  step = "CSRF";
  {
    // The session's cookie rides along, but without the form's token the
    // post is refused, and nothing changes.
    const r = await page.request.post(`${BASE}/suppressions`, { form: { address: "csrf@example.org" }, maxRedirects: 0 });
    check(r.status() === 403, `a post without its token is refused: ${r.status()}`);
    const wrong = await page.request.post(`${BASE}/suppressions`, { form: { address: "csrf@example.org", csrf: "0".repeat(64) }, maxRedirects: 0 });
    check(wrong.status() === 403, `a post with a wrong token is refused: ${wrong.status()}`);
    await page.goto(`${BASE}/suppressions?search=csrf%40example.org`);
    check(await page.getByRole("rowheader", { name: "csrf@example.org" }).count() === 0, "nothing was added");
    // A form on another site posting here is refused by the browser's own
    // Sec-Fetch-Site too: build one on a data: URL.
    const token = await page.locator("input[name=csrf]").first().inputValue();
    const evil = await context.newPage();
    await evil.setContent(`<form method="post" action="${BASE}/suppressions"><input name="address" value="evil@example.org"><input name="csrf" value="${token}"></form>`);
    const [resp] = await Promise.all([evil.waitForNavigation(), evil.evaluate(() => document.forms[0].submit())]);
    check(resp.status() === 403, `a cross-site form is refused: ${resp.status()}`);
    await evil.close();
  }

  step = "switch to a sub";
  await page.goto(`${BASE}/`);
  await page.getByLabel("Account").selectOption("sub-a");
  await page.waitForURL(/done=switched/);
  check((await page.locator(".who select option[selected]").textContent()).trim() === "sub-a", "the master's user now sees sub-a");
  await context.close();

  step = "sibling";
  {
    const sub = await browser.newContext();
    const p = await signIn(sub, SUB_USER);
    check(await p.locator("#account-switch").count() === 0, "a sub's user has no account to switch to");
    const r = await p.goto(`${BASE}/messages/${SIBLING_MESSAGE}`);
    check(r.status() === 404, `a sibling's message is 404: ${r.status()}`);
    await shot(p, "sibling-404");
    const own = await p.goto(`${BASE}/messages/${MESSAGE}`);
    check(own.status() === 404, `the master's message is 404 to a sub: ${own.status()}`);
    await p.goto(`${BASE}/`);
    const token = await p.locator("input[name=csrf]").first().inputValue();
    const sw = await p.request.post(`${BASE}/switch`, { form: { account: "sub-b", csrf: token }, maxRedirects: 0 });
    check(sw.status() === 404, `switching to a sibling is 404: ${sw.status()}`);
    const up = await p.request.post(`${BASE}/switch`, { form: { account: "brand", csrf: token }, maxRedirects: 0 });
    check(up.status() === 404, `switching to the master is 404: ${up.status()}`);
    await sub.close();
  }

  step = "sign out";
  {
    const c = await browser.newContext();
    const p = await signIn(c, OWNER);
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.waitForURL(/\/login/);
    await p.goto(`${BASE}/settings`);
    check(p.url().startsWith(`${BASE}/login?next=`), "after signing out, pages ask to sign in again");
    await c.close();
  }

  console.log(JSON.stringify({ ok: true }));
  await browser.close();
} catch (e) {
  console.error(`FAILED at ${step}: ${e.stack || e}`);
  // What the browser showed when it failed.
  for (const [i, c] of browser.contexts().entries()) {
    for (const [j, p] of c.pages().entries()) {
      await p.screenshot({ path: join(SHOTS, `failure-${i}-${j}.png`), fullPage: true }).catch(() => {});
      console.error(`page ${i}-${j}: ${p.url()}`);
    }
  }
  await browser.close();
  process.exit(1);
}
