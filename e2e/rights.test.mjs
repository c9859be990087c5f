// End to end, issue 11: the visitor's and the operator's rights, in the
// product. A visitor sees what the server holds about them in the widget
// ("Your data"), downloads it, corrects their name, stops being tracked, and
// erases everything with a receipt; a browser with Global Privacy Control is
// never monitored; an operator exports, corrects and deletes their account
// and revokes a session; an admin finds, exports and erases what a mail
// outage holds for an e-mail address, which the mail server then never gets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
  startLethe,
  launchBrowser,
  shot,
  operatorLogin,
  waitNoOperatorOnline,
  startSmtpSink,
  rpc,
  until,
  consoleVisitors,
  allBytes,
  adminApi,
  ADMIN_PASSWORD,
} from "./harness.mjs";

let lethe;
let browser;
let smtp;
let admin;


before(async () => {
  smtp = await startSmtpSink();
  lethe = await startLethe(["--smtp-host", "127.0.0.1", "--smtp-port", String(smtp.port)]);
  browser = await launchBrowser();
  admin = await adminApi(lethe.base);
  const settings = (await admin("lethe.account.v1.AccountService/GetSettings", {})).settings;
  await admin("lethe.account.v1.AccountService/UpdateSettings", {
    settings: { ...settings, recipients: ["support@demo.example"], idleTimeoutSeconds: 600, allowedOrigins: ["self"] },
  });
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
  await smtp?.close();
});

async function openPanel(page, path = "/demo") {
  await page.goto(`${lethe.base}${path}`);
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await page.locator("#lethe-launcher").click();
  return page.frameLocator("#lethe-frame");
}

/** context opens a browser context that is closed when the test ends, passed or not. */
async function context(t, opts = {}) {
  const ctx = await browser.newContext(opts);
  t.after(() => ctx.close());
  return ctx;
}

/** download clicks what starts a download and gives the downloaded file's text. */
async function download(page, click) {
  const [dl] = await Promise.all([page.waitForEvent("download"), click()]);
  return readFile(await dl.path(), "utf8");
}

test("a visitor sees their data, downloads it, corrects their name and erases everything with a receipt", { timeout: 120_000 }, async (t) => {
  const op = await (await context(t)).newPage();
  await operatorLogin(op, lethe.base);
  const ctx = await context(t, { locale: "en-US", acceptDownloads: true });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const panel = await openPanel(page);
  const canary = "rights-canary-" + Date.now();
  await panel.getByTestId("prechat").waitFor();
  await panel.getByTestId("name").fill("Rita Rights");
  await panel.getByTestId("email").fill("rita@example.com");
  await panel.getByTestId("message").fill(`My order ${canary} is late`);
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  const item = op.getByTestId("queue-item").filter({ hasText: "Rita Rights" });
  await item.waitFor();
  await item.getByTestId("accept").click();
  await op.getByTestId("chat-view").getByText(canary).waitFor();

  // See: what the visitor typed is what the server says it holds.
  await panel.getByTestId("my-data").click();
  const chat = panel.getByTestId("data-chat");
  await chat.waitFor();
  await chat.getByText("Rita Rights", { exact: true }).waitFor();
  await chat.getByText("rita@example.com", { exact: true }).waitFor();
  await shot(page, "80-your-data");

  // Download: the Connect JSON of VisitorData, with the chat in it.
  const json = JSON.parse(await download(page, () => panel.getByTestId("data-download").click()));
  assert.equal(json.chat.visitorName, "Rita Rights");
  assert.ok(JSON.stringify(json.chat.messages).includes(canary), "the download holds the messages");

  // Correct: the operator sees the new name at once.
  await panel.getByTestId("data-fix").locator("summary").click();
  await panel.getByTestId("data-fix-name").fill("Rita Corrected");
  await panel.getByTestId("data-fix-save").click();
  await panel.getByTestId("data-note").waitFor();
  await chat.getByText("Rita Corrected", { exact: true }).waitFor();
  await op.getByTestId("chat-name").getByText("Rita Corrected").waitFor();
  await shot(op, "81-console-visitor-corrected");

  // Forget me now: a receipt, the operator learns why the chat ended, and no byte of it is left.
  assert.ok(allBytes(lethe.dataDir).includes(canary), "the chat is on disk while open (the check can fail)");
  await panel.getByTestId("data-forget").click();
  await shot(page, "82-forget-confirm");
  await panel.getByTestId("data-forget-confirm").click();
  await panel.getByTestId("receipt").waitFor();
  assert.notEqual((await panel.getByTestId("receipt-id").textContent()).trim(), "");
  await panel.getByTestId("receipt-counts").waitFor();
  await shot(page, "83-forget-receipt");
  await op.getByTestId("chat-view").getByText(/erased their data/i).waitFor();
  await shot(op, "84-console-visitor-erased");
  assert.ok(!allBytes(lethe.dataDir).includes(canary), "the erased chat is gone from every data file");
  assert.ok(!lethe.logs().includes(canary) && !lethe.logs().includes("rita@example.com"), "logs carry no content");

  // A fresh start: the pre-chat form, and the server holds nothing.
  await panel.getByTestId("receipt-done").click();
  await panel.getByTestId("prechat").waitFor();
  await panel.getByTestId("my-data").click();
  await panel.getByTestId("data-intro").getByText(/holds no data about you/).waitFor();
  assert.deepEqual(errors, []);
});

test("Stop tracking me: the visitor leaves the operator's list and no new visit appears on the next page", { timeout: 120_000 }, async (t) => {
  const { ctx: opCtx, page: op } = await consoleVisitors(browser, lethe.base);
  t.after(() => opCtx.close());
  const rows = op.getByTestId("visitor-row");
  await until("the visitor list to be empty", async () => (await rows.count()) === 0, 20_000);
  const page = await (await context(t, { locale: "en-US" })).newPage();
  const panel = await openPanel(page);
  await rows.first().waitFor();
  await panel.getByTestId("my-data").click();
  await panel.getByTestId("data-visit").waitFor();
  await panel.getByTestId("data-stop-tracking").click();
  await panel.getByTestId("data-note").waitFor();
  await shot(page, "85-stopped-tracking");
  await until("the visitor to leave the operator's list", async () => (await rows.count()) === 0, 10_000);
  // The next page of the site: the loader remembers and sends nothing.
  const monitorCalls = [];
  page.on("request", (r) => r.url().includes("MonitorService") && monitorCalls.push(r.url()));
  await page.goto(`${lethe.base}/demo?page=2`);
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await op.waitForTimeout(4000);
  assert.equal(await rows.count(), 0, "no new visit after Stop tracking");
  assert.deepEqual(monitorCalls, [], "no page view, heartbeat or stream after Stop tracking");
});

test("a browser with Global Privacy Control is never in the operator's visitor list", { timeout: 120_000 }, async (t) => {
  const { ctx: opCtx, page: op } = await consoleVisitors(browser, lethe.base);
  t.after(() => opCtx.close());
  const rows = op.getByTestId("visitor-row");
  await until("the visitor list to be empty", async () => (await rows.count()) === 0, 20_000);
  const ctx = await context(t, { locale: "en-US", extraHTTPHeaders: { "Sec-GPC": "1" } });
  await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true }));
  const page = await ctx.newPage();
  const monitorCalls = [];
  page.on("request", (r) => r.url().includes("MonitorService") && monitorCalls.push(r.url()));
  const panel = await openPanel(page);
  await panel.getByTestId("prechat").waitFor();
  await page.goto(`${lethe.base}/demo?page=2`);
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await op.waitForTimeout(4000);
  assert.equal(await rows.count(), 0, "no visitor with GPC");
  assert.deepEqual(monitorCalls, [], "with GPC the widget sends no page view, heartbeat or stream");
});

test("an operator exports and corrects their account, revokes another session and deletes the account; the last admin cannot", { timeout: 120_000 }, async (t) => {
  const email = "otto@demo.example";
  const password = "otto-password-123";
  await admin("lethe.account.v1.AccountService/CreateOperator", { email, name: "Otto Operator", password, role: "ROLE_OPERATOR" });
  const a = await (await context(t, { acceptDownloads: true })).newPage();
  const b = await (await context(t)).newPage();
  await operatorLogin(b, lethe.base, email, password);
  await operatorLogin(a, lethe.base, email, password);
  await a.getByTestId("me-tab").click();

  const exported = JSON.parse(await download(a, () => a.getByTestId("me-export").click()));
  assert.equal(exported.operator.email, email);

  await a.getByTestId("me-name").fill("Otto Renamed");
  await a.getByTestId("me-password").fill(password);
  await a.getByTestId("me-save").click();
  await a.getByTestId("me-ok").waitFor();
  await a.getByTestId("me-name-shown").getByText("Otto Renamed").waitFor();

  const sessions = a.getByTestId("session-row");
  await until("two sessions", async () => (await sessions.count()) === 2, 10_000);
  await shot(a, "86-my-account");
  await a.locator('[data-testid="session-row"][data-current="false"]').getByTestId("session-revoke").click();
  await until("one session", async () => (await sessions.count()) === 1, 10_000);
  await b.reload();
  await b.getByTestId("login-email").waitFor();

  a.once("dialog", (d) => d.accept());
  await a.getByTestId("me-delete-password").fill(password);
  await a.getByTestId("me-delete").click();
  await a.getByTestId("login-email").waitFor();
  const login = await rpc(lethe.base, "lethe.account.v1.AccountService/Login", { email, password });
  assert.notEqual(login.status, 200, "the deleted operator cannot sign in");

  // The last admin is refused, with the server's reason shown.
  const ad = await (await context(t)).newPage();
  await operatorLogin(ad, lethe.base);
  await ad.getByTestId("me-tab").click();
  ad.once("dialog", (d) => d.accept());
  await ad.getByTestId("me-delete-password").fill(ADMIN_PASSWORD);
  await ad.getByTestId("me-delete").click();
  await ad.getByTestId("me-delete-refused").waitFor();
  await shot(ad, "87-last-admin-refused");
});

test("in a mail outage an admin finds an offline message by e-mail, exports and erases it; the mail server never gets it", { timeout: 180_000 }, async (t) => {
  smtp.fail(true);
  t.after(() => smtp.fail(false));
  await waitNoOperatorOnline(lethe.base);
  const page = await (await context(t, { locale: "en-US" })).newPage();
  const panel = await openPanel(page);
  const canary = "outage-canary-" + Date.now();
  await panel.getByTestId("offline-form").waitFor();
  await panel.getByTestId("offline-name").fill("Mona Mail");
  await panel.getByTestId("offline-email").fill("mona@example.com");
  await panel.getByTestId("offline-message").fill(`Please answer about ${canary}`);
  await panel.getByTestId("offline-send").click();
  await panel.getByTestId("offline-sent").waitFor();
  // The visitor sees the message waiting (their offline token).
  await panel.getByTestId("my-data").click();
  await panel.getByTestId("data-mail").waitFor();
  await shot(page, "88-your-data-waiting-mail");

  const ad = await (await context(t, { acceptDownloads: true })).newPage();
  await operatorLogin(ad, lethe.base);
  await ad.getByTestId("privacy-tab").click();
  await ad.getByTestId("inventory-table").waitFor();
  await ad.getByTestId("audit-row").first().waitFor();
  await ad.getByTestId("subject-email").fill("mona@example.com");
  await ad.getByTestId("subject-find").click();
  await ad.getByTestId("subject-mail").waitFor();
  await shot(ad, "89-privacy-subject-found");
  const exported = await download(ad, () => ad.getByTestId("subject-export").click());
  assert.ok(exported.includes(canary), "the export holds the message");
  JSON.parse(exported);
  ad.once("dialog", (d) => d.accept());
  await ad.getByTestId("subject-erase").click();
  await ad.getByTestId("receipt").waitFor();
  await shot(ad, "90-privacy-erased");
  await until("the message to be gone from the data files", () => !allBytes(lethe.dataDir).includes(canary), 5000);

  await ad.getByTestId("settings-tab").click();
  await ad.getByTestId("set-gpc-ignored").waitFor();
  await shot(ad, "91-settings-gpc");
  await ad.getByTestId("logout").click();
  await ad.getByTestId("login-email").waitFor();
  // The outage ends: the next message goes out, the erased one never does.
  smtp.fail(false);
  await waitNoOperatorOnline(lethe.base);
  const next = "after-outage-" + Date.now();
  await page.reload();
  const panel2 = page.frameLocator("#lethe-frame");
  await page.locator("#lethe-launcher").click();
  await panel2.getByTestId("offline-form").waitFor();
  await panel2.getByTestId("offline-name").fill("Nick Next");
  await panel2.getByTestId("offline-email").fill("nick@example.com");
  await panel2.getByTestId("offline-message").fill(`Hello ${next}`);
  await panel2.getByTestId("offline-send").click();
  await panel2.getByTestId("offline-sent").waitFor();
  await smtp.waitFor(new RegExp(next), 60_000);
  assert.ok(!smtp.messages.some((m) => m.data.includes(canary)), "the erased message was never sent");
});
