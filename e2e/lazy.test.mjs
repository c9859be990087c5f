// End to end, issue 8: the widget weighs nothing until it is clicked. Before
// any click the host page loads the loader, its config and the first page
// view (with the WatchVisit stream for invitations), and no panel; with the
// account's "no monitoring" setting it sends nothing but the config until the
// click; the loader's page token cannot read anything; static files are
// served pre-compressed with long-lived caching. A chat without files loads
// nothing of the files UI or the protobuf runtime; the paper clip's first click does.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startShop, launchBrowser, shot, adminApi, operatorLogin, until } from "./harness.mjs";

let lethe;
let shop;
let browser;
let admin;

before(async () => {
  ({ shop, lethe } = await startShop());
  browser = await launchBrowser();
  admin = await adminApi(lethe.base);
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
  await shop?.close();
});

/** What the page asked of the Lethe server, and the bytes it received for it (CDP). */
async function watchLethe(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const reqs = new Map();
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.url.startsWith(lethe.base)) reqs.set(e.requestId, { method: e.request.method, url: e.request.url.slice(lethe.base.length), bytes: 0, done: false });
  });
  cdp.on("Network.responseReceived", (e) => {
    const r = reqs.get(e.requestId);
    if (r) r.bytes += e.response.encodedDataLength || 0;
  });
  cdp.on("Network.dataReceived", (e) => {
    const r = reqs.get(e.requestId);
    if (r && !r.done) r.bytes += e.encodedDataLength || 0;
  });
  cdp.on("Network.loadingFinished", (e) => {
    const r = reqs.get(e.requestId);
    if (r) {
      r.bytes = Math.max(r.bytes, e.encodedDataLength);
      r.done = true;
    }
  });
  return () => [...reqs.values()];
}

const path = (r) => r.url.replace(/\?.*$/, "");

async function setMonitoringDisabled(on) {
  const settings = (await admin("lethe.account.v1.AccountService/GetSettings", {})).settings;
  await admin("lethe.account.v1.AccountService/UpdateSettings", { settings: { ...settings, monitoringDisabled: on } });
}

test("before any click the page loads only the loader, its config and the first page view, under 10 KB", { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const seen = await watchLethe(page);
  // Playwright sees the panel's requests too (the panel is another site's frame, which CDP's page session does not).
  const urls = [];
  page.on("request", (r) => urls.push(r.url()));
  const stream = page.waitForRequest((r) => r.url().includes("MonitorService/WatchVisit"));
  await page.goto(shop.origin + "/");
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await stream;
  await page.waitForTimeout(1500);
  await shot(page, "80-lazy-before-click");
  assert.equal(await page.locator("#lethe-frame").count(), 0, "no panel iframe before the click");
  assert.ok(!urls.some((u) => u.includes("/widget/panel") || u.includes("/static/")), "nothing of the panel before the click");
  const reqs = seen();
  const paths = reqs.filter((r) => r.method !== "OPTIONS").map(path).sort();
  assert.deepEqual(paths, [
    "/lethe.chat.v1.ChatService/GetWidgetConfig",
    "/lethe.monitor.v1.MonitorService/Track",
    "/lethe.monitor.v1.MonitorService/WatchVisit",
    "/widget.js",
  ]);
  const bytes = reqs.reduce((n, r) => n + r.bytes, 0);
  console.log(`first visit before the click: ${bytes} B on the wire in ${reqs.length} requests (${reqs.filter((r) => r.method === "OPTIONS").length} preflights), the stream open:`);
  for (const r of reqs) console.log(`  ${r.method} ${path(r)} ${r.bytes} B${r.done ? "" : " (open)"}`);
  assert.ok(bytes > 0 && bytes <= 10 * 1024, `first visit ${bytes} B, at most 10 KB`);

  // The click loads the panel and hands it the visit.
  const claim = page.waitForResponse((r) => r.url().includes("MonitorService/ClaimVisit"));
  await page.locator("#lethe-launcher").click();
  await page.frameLocator("#lethe-frame").getByTestId("prechat").waitFor();
  assert.equal((await claim).status(), 200, "the panel claims the visit from its own origin");
  assert.ok(urls.some((u) => u.includes("/widget/panel?")) && urls.some((u) => u.includes("/static/panel.js")), "the panel loads at the click");
  assert.ok(!urls.some((u) => u.includes("/chunks/data-") || u.includes("/chunks/files-")), "\"Your data\" and the files UI wait for their first use");
  await shot(page, "81-lazy-after-click");
  await ctx.close();
});

test("with no monitoring, nothing but the loader and its config before the click; the visit starts at the click", { timeout: 120_000 }, async () => {
  await setMonitoringDisabled(true);
  try {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const seen = await watchLethe(page);
    await page.goto(shop.origin + "/");
    await page.locator("#lethe-launcher").waitFor({ state: "visible" });
    await page.waitForTimeout(2000);
    assert.deepEqual(seen().filter((r) => r.method !== "OPTIONS").map(path).sort(), ["/lethe.chat.v1.ChatService/GetWidgetConfig", "/widget.js"]);
    assert.equal(await page.locator("#lethe-frame").count(), 0);
    const track = page.waitForResponse((r) => r.url().includes("MonitorService/Track"));
    await page.locator("#lethe-launcher").click();
    const res = await track;
    assert.equal(res.status(), 200, "the visit starts at the click");
    assert.ok((await res.json()).pageToken, "a page token for the loader");
    await page.frameLocator("#lethe-frame").getByTestId("prechat").waitFor();
    await ctx.close();
  } finally {
    await setMonitoringDisabled(false);
  }
});

test("the page token cannot read: GetMyData and ClaimVisit refuse it from the page", { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const track = page.waitForResponse((r) => r.url().includes("MonitorService/Track"));
  await page.goto(shop.origin + "/");
  await track;
  const pageToken = await page.evaluate(() => sessionStorage.getItem("lethe.page"));
  assert.ok(pageToken, "the loader keeps its page token in the host page's sessionStorage");
  // Scripts of the host page can see the token; the browser does not even let them ask.
  const inPage = await page.evaluate(
    async ({ base, token }) => {
      try {
        const r = await fetch(`${base}/lethe.privacy.v1.PrivacyService/GetMyData`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1", Authorization: `Bearer ${token}` },
          body: JSON.stringify({ visitToken: token }),
        });
        return `status ${r.status}`;
      } catch (e) {
        return "refused";
      }
    },
    { base: lethe.base, token: pageToken },
  );
  assert.notEqual(inPage, "status 200", "GetMyData with the page token from the page");
  // And a client that sends what it likes gets no data either: with the
  // host page's Origin the server refuses outright; without one (a server
  // of the site's own), the page token is refused as visit token and as bearer.
  const call = async (what, method, body, headers) => {
    const res = await fetch(`${lethe.base}/lethe.${method}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1", ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, 403, `${what}: ${text}`);
    assert.ok(!text.includes("visitToken") && !text.includes("pages"), `${what}: no data`);
    return text;
  };
  const bearer = { Authorization: `Bearer ${pageToken}` };
  await call("GetMyData from the page's origin", "privacy.v1.PrivacyService/GetMyData", { visitToken: pageToken }, { Origin: shop.origin, ...bearer });
  assert.match(await call("GetMyData, page token as visit_token", "privacy.v1.PrivacyService/GetMyData", { visitToken: pageToken }, {}), /permission_denied/);
  assert.match(await call("GetMyData, page token as bearer", "privacy.v1.PrivacyService/GetMyData", {}, bearer), /permission_denied/);
  await call("ClaimVisit from the page's origin", "monitor.v1.MonitorService/ClaimVisit", {}, { Origin: shop.origin, ...bearer });
  await call("ClaimVisit with no origin", "monitor.v1.MonitorService/ClaimVisit", {}, bearer);
  await ctx.close();
});

test("a chat in progress loads the panel on the next page at once, with its live stream and unread badge", { timeout: 120_000 }, async () => {
  const opCtx = await browser.newContext();
  const op = await opCtx.newPage();
  await operatorLogin(op, lethe.base);
  // On the demo page (the Lethe origin): this headless Chromium denies a
  // cross-site frame its sessionStorage, where the panel keeps the chat.
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${lethe.base}/demo`);
  await page.locator("#lethe-launcher").click();
  let panel = page.frameLocator("#lethe-frame");
  await panel.getByTestId("prechat").waitFor();
  await panel.getByTestId("name").fill("Lazy Lou");
  await panel.getByTestId("message").fill("Hello from the first page");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  const item = op.getByTestId("queue-item").filter({ hasText: "Lazy Lou" });
  await item.getByTestId("accept").click();
  const view = op.getByTestId("chat-view");
  await view.getByText("Hello from the first page").waitFor();

  // The next page: the panel loads without a click, closed, and follows the chat.
  await page.goto(`${lethe.base}/demo`);
  await page.locator("#lethe-frame").waitFor({ state: "attached" });
  assert.equal(await page.locator("#lethe-frame").isVisible(), false, "the panel stays closed");
  panel = page.frameLocator("#lethe-frame");
  await panel.getByText("Hello from the first page").waitFor({ state: "attached" });
  await view.getByTestId("composer").fill("Still there?");
  await view.getByTestId("composer").press("Enter");
  await page.locator('#lethe-launcher[aria-label*="unread"]').waitFor();
  await shot(page, "82-lazy-chat-in-progress-badge");
  // Ended, the chat no longer loads the panel on the next page.
  await page.locator("#lethe-launcher").click();
  await panel.getByTestId("end").click();
  await panel.getByTestId("end-confirm").click();
  await panel.getByTestId("closed").waitFor();
  await page.goto(`${lethe.base}/demo`);
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await page.waitForTimeout(1000);
  assert.equal(await page.locator("#lethe-frame").count(), 0, "no panel before the click once the chat ended");
  await ctx.close();
  await opCtx.close();
});

test("a chat without files loads no chunk but the first load's; the paper clip's first click loads the files UI and an upload works", { timeout: 180_000 }, async () => {
  // The chunks panel.js imports statically: its first load. Every other chunk is loaded on first use.
  const html = await (await fetch(`${lethe.base}/widget/panel?account=demo&host=${encodeURIComponent(shop.origin)}`)).text();
  const js = await (await fetch(`${lethe.base}${/src="(\/static\/panel\.js\?v=[^"]+)"/.exec(html)[1]}`)).text();
  const firstLoad = new Set([...js.matchAll(/(?:from|import)\s*"\.\/(chunks\/[^"]+\.js)"/g)].map((m) => `/static/${m[1]}`));
  assert.ok(firstLoad.size >= 1, "panel.js imports its shared chunk statically");
  assert.ok(![...firstLoad].some((c) => c.includes("/chunks/files-") || c.includes("/chunks/data-")), `first load: ${[...firstLoad]}`);

  const opCtx = await browser.newContext();
  const op = await opCtx.newPage();
  await operatorLogin(op, lethe.base);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const failures = [];
  page.on("pageerror", (e) => failures.push(String(e)));
  const chunks = [];
  const limits = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith("/static/chunks/")) chunks.push(u.pathname);
    if (u.pathname.endsWith(".FileService/GetFileLimits")) limits.push(r.headers()["content-type"]);
  });
  await page.goto(shop.origin + "/");
  await page.locator("#lethe-launcher").click();
  const panel = page.frameLocator("#lethe-frame");
  await panel.getByTestId("name").fill("Paper Clip Pat");
  await panel.getByTestId("message").fill("Just a question, no files");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  await op.getByTestId("queue-item").filter({ hasText: "Paper Clip Pat" }).getByTestId("accept").click();
  const view = op.getByTestId("chat-view").filter({ hasText: "Just a question, no files" });
  await view.getByText("Just a question, no files").waitFor();
  await view.getByTestId("composer").fill("Ask away");
  await view.getByTestId("composer").press("Enter");
  await panel.getByText("Ask away").waitFor();
  await panel.getByTestId("composer").fill("Thanks, that was all");
  await panel.getByTestId("send").click();
  await view.getByText("Thanks, that was all").waitFor();
  // The paper clip shows (the chat's file limits, read over Connect JSON), drawn without the files chunk.
  const attach = panel.getByTestId("attach");
  await attach.waitFor();
  assert.equal(await attach.getAttribute("aria-label"), "Attach a file");
  assert.ok(limits.length >= 1 && limits.every((t) => t?.startsWith("application/json")), `GetFileLimits over JSON: ${limits}`);
  await page.waitForTimeout(1000);
  assert.ok(chunks.some((c) => firstLoad.has(c)), `the panel's own chunk requests are seen: ${chunks}`);
  const extra = chunks.filter((c) => !firstLoad.has(c.replace(/\?.*$/, "")));
  assert.deepEqual(extra, [], "a chat without files loads no chunk but the first load's (no files UI, no protobuf runtime)");
  await shot(page, "83-lazy-chat-without-files");

  // The first click of the paper clip opens the file chooser and loads the files UI meanwhile.
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), attach.click()]);
  await until("the files chunk", () => chunks.some((c) => c.includes("/chunks/files-")), 30_000);
  await chooser.setFiles({ name: "first-click.txt", mimeType: "text/plain", buffer: Buffer.from("sent after the paper clip's first click\n") });
  await panel.getByTestId("file-row").filter({ hasText: "first-click.txt" }).waitFor();
  await view.getByTestId("file-row").filter({ hasText: "first-click.txt" }).waitFor();
  assert.equal(await panel.getByTestId("upload-row").count(), 0, "the finished upload's row is gone");
  assert.ok(chunks.filter((c) => !firstLoad.has(c.replace(/\?.*$/, ""))).some((c) => !c.includes("/chunks/files-")), "the runtime chunk came with the files UI");
  assert.deepEqual(failures, []);
  await ctx.close();
  await opCtx.close();
});

test("static files come back brotli-compressed with long-lived caching", { timeout: 60_000 }, async () => {
  const html = await (await fetch(`${lethe.base}/widget/panel?account=demo&host=${encodeURIComponent(shop.origin)}`)).text();
  const panelJs = /src="(\/static\/panel\.js\?v=[^"]+)"/.exec(html)?.[1];
  assert.ok(panelJs, "the panel page loads a versioned panel.js as a module");
  assert.match(html, /<script type="module"/);
  const js = await (await fetch(`${lethe.base}${panelJs}`)).text();
  const chunk = /"\.\/(chunks\/[^"]+\.js)"/.exec(js)?.[1];
  assert.ok(chunk, "panel.js imports a hashed chunk");
  for (const [url, cache] of [
    [panelJs, /max-age=31536000.*immutable|immutable.*max-age=31536000/],
    [`/static/${chunk}`, /max-age=31536000.*immutable|immutable.*max-age=31536000/],
    ["/widget.js", /max-age=\d+/],
  ]) {
    const res = await fetch(`${lethe.base}${url}`, { headers: { "Accept-Encoding": "br" } });
    assert.equal(res.status, 200, url);
    assert.equal(res.headers.get("content-encoding"), "br", `${url} is sent brotli-compressed`);
    assert.match(res.headers.get("cache-control") || "", cache, `${url} cache: ${res.headers.get("cache-control")}`);
    assert.ok(res.headers.get("etag"), `${url} has an ETag`);
    await res.arrayBuffer();
  }
});
