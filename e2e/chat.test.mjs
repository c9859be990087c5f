// End to end: the real binary, Debian's Chromium, two browser contexts — an
// operator in the console and a visitor on the demo page — through a whole
// chat, plus the widget's refusal to load on a website the account does not
// list and its deafness to messages from foreign origins.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startShop, launchBrowser, shot, startSite, operatorLogin, waitNoOperatorOnline } from "./harness.mjs";

let lethe;
let browser;
// A customer's website on another origin, listed for the demo account.
let shop;

before(async () => {
  ({ shop, lethe } = await startShop());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
  await shop?.close();
});

async function openWidget(page, base) {
  await page.goto(`${base}/demo`);
  const launcher = page.locator("#lethe-launcher");
  await launcher.waitFor({ state: "visible" });
  await launcher.click();
  const frame = page.frameLocator("#lethe-frame");
  return frame;
}

test("a visitor and an operator chat from the demo page to the console", { timeout: 120_000 }, async () => {
  const opCtx = await browser.newContext();
  const visCtx = await browser.newContext();
  const op = await opCtx.newPage();
  const vis = await visCtx.newPage();
  const failures = [];
  for (const p of [op, vis]) p.on("pageerror", (e) => failures.push(String(e)));

  await operatorLogin(op, lethe.base);
  await shot(op, "01-console-signed-in");

  const panel = await openWidget(vis, lethe.base);
  await panel.getByTestId("prechat").waitFor();
  await panel.getByTestId("name").fill("Ada Visitor");
  await panel.getByTestId("email").fill("ada@example.com");
  await panel.getByTestId("message").fill("Hello, I need help with my order");
  await shot(vis, "02-prechat");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  await panel.getByText("Hello, I need help with my order").waitFor();

  // The operator sees the chat in the queue and accepts it.
  const item = op.getByTestId("queue-item").filter({ hasText: "Ada Visitor" });
  await item.waitFor();
  assert.match(await op.title(), /^\(1\)/, "the title shows the queue count");
  await shot(op, "03-console-queue");
  await item.getByTestId("accept").click();
  const view = op.getByTestId("chat-view");
  await view.getByText("Hello, I need help with my order").waitFor();

  // The visitor sees the operator join.
  await panel.getByText(/Admin joined/).waitFor();

  // Typing shows both ways.
  await panel.getByTestId("composer").pressSequentially("I ordered", { delay: 20 });
  await view.getByTestId("typing").waitFor({ state: "visible" });
  await view.getByTestId("composer").pressSequentially("Let me", { delay: 20 });
  await panel.getByTestId("typing").waitFor({ state: "visible" });

  // Messages both ways.
  await panel.getByTestId("composer").fill("Order 1234 has not arrived");
  await panel.getByTestId("send").click();
  await view.getByText("Order 1234 has not arrived").waitFor();
  await view.getByTestId("composer").fill("I am checking order 1234 now");
  await view.getByTestId("composer").press("Enter");
  await panel.getByText("I am checking order 1234 now").waitFor();
  // Text is shown as text, never as HTML.
  await panel.getByTestId("composer").fill("<b>bold?</b>");
  await panel.getByTestId("send").click();
  await view.getByText("<b>bold?</b>").waitFor();
  await shot(vis, "04-visitor-chat");
  await shot(op, "05-operator-chat");

  // The visitor reloads the page: same chat, same history.
  await vis.reload();
  const panel2 = await openWidget(vis, lethe.base);
  await panel2.getByText("Order 1234 has not arrived").waitFor();
  await panel2.getByText("I am checking order 1234 now").waitFor();
  const texts = await panel2.getByTestId("msg").allTextContents();
  assert.equal(texts.filter((t) => t.includes("Order 1234 has not arrived")).length, 1, "no duplicate after reload");
  await shot(vis, "06-visitor-after-reload");

  // The chat still works after the reload.
  await panel2.getByTestId("composer").fill("Still here after reload");
  await panel2.getByTestId("send").click();
  await view.getByText("Still here after reload").waitFor();

  // The operator closes; the visitor sees it closed.
  await view.getByTestId("close-chat").click();
  await panel2.getByTestId("closed").waitFor();
  await shot(vis, "07-visitor-closed");
  await shot(op, "08-operator-after-close");

  assert.deepEqual(failures, [], "no uncaught page errors");
  // P9: the server's log never carries message text or the e-mail address.
  assert.ok(!lethe.logs().includes("Order 1234"), "log has no message text");
  assert.ok(!lethe.logs().includes("ada@example.com"), "log has no e-mail address");
  await opCtx.close();
  await visCtx.close();
});

test("the visitor sees that no operator is online", { timeout: 120_000 }, async () => {
  await waitNoOperatorOnline(lethe.base);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const panel = await openWidget(page, lethe.base);
  await panel.getByTestId("offline").waitFor();
  await shot(page, "09-no-operator-online");
  await ctx.close();
});

test("the widget refuses to load on a website the account does not list", { timeout: 120_000 }, async () => {
  const site = await startSite(`<!doctype html><html><body><h1>Not a customer</h1>
<script async src="${lethe.base}/widget.js" data-account="demo"></script></body></html>`);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  // The server refuses the page view of an unlisted website, and the loader
  // then shows no launcher.
  const track = page.waitForResponse((r) => r.url().includes("MonitorService/Track"));
  await page.goto(site.origin);
  assert.equal((await track).status(), 403, "the server refuses a page view from an unlisted website");
  await page.waitForTimeout(1000);
  assert.equal(await page.locator("#lethe-launcher").isVisible(), false, "no launcher on an unlisted site");
  // Opened anyway (Lethe.open()), the panel is refused.
  const panelResponse = page.waitForResponse((r) => r.url().includes("/widget/panel"));
  await page.evaluate(() => window.Lethe.open());
  const res = await panelResponse;
  assert.equal(res.status(), 403, "the server refuses the panel for an unlisted host");
  const csp = res.headers()["content-security-policy"] || "";
  assert.match(csp, /frame-ancestors 'self'/, "CSP names the listed sites");
  assert.ok(!csp.includes(site.origin), "CSP does not let the unlisted site frame the panel");
  await page.waitForTimeout(1000);
  // And the panel's content is not reachable from the host page.
  const panelFrame = page.frames().find((f) => f.url().includes("/widget/panel"));
  if (panelFrame) {
    const hasForm = await panelFrame.locator("[data-testid=prechat]").count().catch(() => 0);
    assert.equal(hasForm, 0, "no chat form rendered on an unlisted site");
  }
  await shot(page, "10-unlisted-site");
  await ctx.close();
  await site.close();
});

test("on a listed customer site the widget loads cross-origin and ignores foreign postMessage", { timeout: 120_000 }, async () => {
  // A foreign iframe on the customer's page posts well-formed messages to
  // the host window; the loader must ignore them (origin and source checked).
  const evil = await startSite(`<!doctype html><script>
    parent.postMessage({ type: "lethe:open" }, "*");
    parent.postMessage({ type: "lethe:ready" }, "*");
    parent.postMessage({ type: "lethe:unread", count: 7 }, "*");
  </script>`);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(shop.origin + "/");
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  const frameBox = page.locator("#lethe-frame");
  assert.equal(await frameBox.count(), 0, "the panel is not loaded before the click");
  await page.evaluate((src) => {
    const f = document.createElement("iframe");
    f.src = src;
    f.id = "evil";
    document.body.appendChild(f);
  }, evil.origin + "/");
  await page.frameLocator("#evil").locator("script").count();
  await page.waitForTimeout(1000);
  assert.equal(await frameBox.isVisible(), false, "a foreign message did not open the panel");
  assert.doesNotMatch((await page.locator("#lethe-launcher").getAttribute("aria-label")) || "", /unread/,
    "a foreign message did not set an unread count");
  // The real launcher still works, and the chat form renders cross-origin.
  const panelResponse = page.waitForResponse((r) => r.url().includes("/widget/panel"));
  await page.locator("#lethe-launcher").click();
  assert.equal((await panelResponse).status(), 200, "the panel loads on a listed site");
  await frameBox.waitFor({ state: "visible" });
  await page.frameLocator("#lethe-frame").getByTestId("prechat").waitFor();
  await shot(page, "11-customer-site");
  await ctx.close();
  await evil.close();
});
