// End to end, issue 4: a visitor browses two pages of a customer site (the
// Go SDK example web app, which mints a verified-data ticket per page) and
// appears in the console with browser, OS, pages, page-provided and verified
// data; the TS SDK example mints another ticket the page hands over with
// Lethe.identify; the operator invites, the visitor accepts and the chat
// opens; the visitor leaves, disappears from the console, and their data is
// gone from disk after the retention window.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { createServer } from "node:net";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { startLethe, launchBrowser, shot, rpc, root, adminApi, allBytes, consoleVisitors } from "./harness.mjs";

const run = promisify(execFile);
let lethe;
let browser;
let shop;
let shopOrigin;
let admin;
let apiKey;


async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}


before(async () => {
  lethe = await startLethe(["--visitor-retention", "4s"]);
  browser = await launchBrowser();
  admin = await adminApi(lethe.base);
  apiKey = (await admin("lethe.monitor.v1.MonitorService/CreateApiKey", { name: "example shop" })).key;
  assert.match(apiKey, /^lk_/);

  // The Go SDK example site, on the same site as Lethe (127.0.0.1), listed
  // for the demo account through the settings API.
  const port = await freePort();
  shopOrigin = `http://127.0.0.1:${port}`;
  const settings = (await admin("lethe.account.v1.AccountService/GetSettings", {})).settings;
  await admin("lethe.account.v1.AccountService/UpdateSettings", {
    settings: { ...settings, idleTimeoutSeconds: settings.idleTimeoutSeconds || 600, allowedOrigins: ["self", shopOrigin] },
  });
  const bin = process.env.WEBAPP_BIN || join(root, "bin", "webapp");
  if (!existsSync(bin)) throw new Error(`example web app not built at ${bin}; run 'make e2e'`);
  shop = spawn(bin, ["-lethe", lethe.base, "-addr", `127.0.0.1:${port}`], {
    env: { ...process.env, LETHE_API_KEY: apiKey },
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise((resolve, reject) => {
    shop.stdout.on("data", (d) => String(d).includes("Example Shop on") && resolve());
    shop.on("exit", (c) => reject(new Error(`webapp exited ${c}`)));
  });
});

after(async () => {
  shop?.kill();
  await browser?.close();
  await lethe?.stop();
});

test("a browsing visitor appears in the console with enrichment and custom data, accepts an invitation, and is forgotten after leaving", { timeout: 180_000 }, async () => {
  const { ctx: opCtx, page: op } = await consoleVisitors(browser, lethe.base);

  const visCtx = await browser.newContext();
  const vis = await visCtx.newPage();
  const canary = "visitcanary" + Date.now();
  await vis.goto(`${shopOrigin}/?ref=${canary}`);
  await vis.locator("#lethe-launcher").waitFor({ state: "visible" });
  await vis.getByRole("link", { name: "Pricing" }).click();
  await vis.waitForURL(/\/pricing$/);
  await vis.locator("#lethe-launcher").waitFor({ state: "visible" });

  const row = op.getByTestId("visitor-row").first();
  await row.waitFor();
  await row.click();
  const detail = op.getByTestId("visitor-detail");
  await detail.getByTestId("visitor-page").nth(1).waitFor();
  assert.equal(await detail.getByTestId("visitor-page").count(), 2, "both pages are listed");
  assert.match(await detail.getByTestId("detail-browser").textContent(), /Chrome/);
  assert.match(await detail.getByTestId("detail-os").textContent(), /Linux/);
  await detail.getByTestId("page-data").locator('[data-key="cart_items"]').getByText("3").waitFor();
  await detail.getByTestId("verified-data").locator('[data-key="customer_id"]').getByText("C-1042").waitFor();
  await shot(op, "30-console-visitor-detail");

  // The TS SDK example mints a ticket; the page hands it over with Lethe.identify.
  const { stdout } = await run("node", [join(root, "sdk/ts/examples/mint-ticket.mjs"), JSON.stringify({ customer_id: "N-7", source: "node" })], {
    env: { ...process.env, LETHE_URL: lethe.base, LETHE_API_KEY: apiKey },
  });
  const minted = JSON.parse(stdout);
  assert.match(minted.ticket, /^lt_/);
  await vis.evaluate((t) => window.Lethe.identify(t), minted.ticket);
  await detail.getByTestId("verified-data").locator('[data-key="customer_id"]').getByText("N-7").waitFor();

  // The operator invites; the visitor accepts; the chat opens.
  await detail.getByTestId("invite-message").fill("Hi! Questions about the Pro plan?");
  await detail.getByTestId("invite").click();
  const panel = vis.frameLocator("#lethe-frame");
  await panel.getByTestId("invitation").waitFor();
  assert.match(await panel.getByTestId("invitation-text").textContent(), /Questions about the Pro plan\?/);
  await shot(vis, "31-visitor-invitation");
  await panel.getByTestId("invitation-accept").click();
  await op.locator('[data-testid="invitation-state"][data-state="accepted"]').waitFor();
  await panel.getByTestId("prechat").waitFor();
  await panel.getByTestId("name").fill("Ivy Invited");
  await panel.getByTestId("message").fill("Yes, does Pro include phone support?");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  await shot(op, "32-console-after-invitation");
  // The operator answers from the chats view; the visitor ends the chat.
  await op.getByRole("button", { name: "Chats", exact: true }).click();
  await op.getByTestId("queue-item").filter({ hasText: "Ivy Invited" }).waitFor();
  await op.getByTestId("queue-item").filter({ hasText: "Ivy Invited" }).getByTestId("accept").click();
  await panel.getByText(/joined the chat/).waitFor();
  await panel.getByTestId("end").click();
  await panel.getByTestId("end-confirm").click();
  await panel.getByTestId("closed").waitFor();

  // While on site, the page URL (with its canary) is on disk.
  assert.ok(allBytes(lethe.dataDir).includes(canary), "visit data on disk while on site (the check can fail)");
  // The visitor leaves: gone from the console, then from every file.
  await visCtx.close();
  await op.getByTestId("visitors-tab").click();
  const end = Date.now() + 90_000;
  while ((await op.getByTestId("visitor-row").count()) > 0 && Date.now() < end) await op.waitForTimeout(250);
  assert.equal(await op.getByTestId("visitor-row").count(), 0, "the visitor left the console's list");
  while (allBytes(lethe.dataDir).includes(canary) && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
  assert.ok(!allBytes(lethe.dataDir).includes(canary), "visit data destroyed after the retention window");
  await shot(op, "33-console-visitor-gone");
  assert.ok(!lethe.logs().includes(canary), "logs never carry page URLs");
  await opCtx.close();
});
