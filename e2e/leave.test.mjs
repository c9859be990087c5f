// End to end, the "visitor left" promise (P4): a visitor who closes the page
// is reported by the panel (MonitorService.Leave on pagehide, sent with
// keepalive so it outlives the page), shown as gone in the console within
// seconds rather than when the 60 s heartbeat window runs out, and their
// monitoring data is destroyed the retention time after they left, not later.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startLethe, launchBrowser, shot, allBytes, until, consoleVisitors } from "./harness.mjs";

const RETENTION_MS = 4000;
/** The monitor janitor's default interval: destruction happens at its next pass. */
const JANITOR_MS = 5000;

let lethe;
let browser;



before(async () => {
  lethe = await startLethe(["--visitor-retention", `${RETENTION_MS / 1000}s`]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
});

test("a visitor who closes the page is shown as gone within 5 s and destroyed the retention time later", { timeout: 120_000 }, async (t) => {
  const { ctx: opCtx, page: op } = await consoleVisitors(browser, lethe.base);

  const visCtx = await browser.newContext();
  const vis = await visCtx.newPage();
  const canary = "leavecanary" + Date.now();
  await vis.goto(`${lethe.base}/demo?ref=${canary}`);
  await vis.locator("#lethe-launcher").waitFor({ state: "visible" });
  // The panel is the same whether open or not; open it to show it in the screenshot.
  await vis.locator("#lethe-launcher").click();
  await vis.frameLocator("#lethe-frame").getByTestId("prechat").waitFor();

  const row = op.getByTestId("visitor-row");
  await row.first().waitFor();
  assert.equal(await row.count(), 1, "one visitor on the site");
  await row.first().click();
  await op.getByTestId("visitor-detail").getByTestId("visitor-page").first().waitFor();
  await shot(vis, "40-visitor-on-site");
  await shot(op, "41-console-visitor-on-site");
  assert.ok(allBytes(lethe.dataDir).includes(canary), "the page URL is on disk while the visitor is on site (the check can fail)");
  assert.ok(!lethe.logs().includes("visits destroyed"), "nothing destroyed yet");

  // Moving to another page of the site fires pagehide too: the server waits
  // for the next page view, so the visitor never drops out of the list.
  await vis.goto(`${lethe.base}/demo?ref=${canary}&page=2`);
  await vis.locator("#lethe-launcher").waitFor({ state: "visible" });
  const end = Date.now() + 4500; // past the server's 3 s grace
  while (Date.now() < end) {
    assert.equal(await row.count(), 1, "the visitor stays listed while moving between pages");
    await op.waitForTimeout(100);
  }
  await op.getByTestId("visitor-detail").getByTestId("visitor-page").nth(1).waitFor();
  assert.equal(await op.getByTestId("visitor-left").count(), 0);

  // The visitor closes the tab: the browser runs the page's unload steps.
  const closedAt = Date.now();
  await vis.close({ runBeforeUnload: true });

  const leftAt = await until("the console to show the visitor gone", async () => (await row.count()) === 0, 15_000);
  await op.getByTestId("visitor-left").waitFor();
  await shot(op, "42-console-visitor-left");
  assert.ok(leftAt - closedAt < 5000, `the visitor was shown as gone ${leftAt - closedAt} ms after closing the page (want < 5000)`);

  const destroyedAt = await until(
    "the visit to be destroyed",
    () => lethe.logs().includes("visits destroyed") && !allBytes(lethe.dataDir).includes(canary),
    RETENTION_MS + JANITOR_MS + 10_000,
  );
  const after = destroyedAt - closedAt;
  t.diagnostic(`shown as gone after ${leftAt - closedAt} ms, destroyed after ${after} ms`);
  // Left as of the Leave call (about closedAt); destroyed at the first
  // janitor pass once the retention time has passed since then.
  assert.ok(after >= RETENTION_MS - 500, `destroyed ${after} ms after leaving: not before the retention time (${RETENTION_MS} ms)`);
  assert.ok(after <= RETENTION_MS + JANITOR_MS + 2000, `destroyed ${after} ms after leaving: within retention + one janitor pass`);
  assert.match(lethe.logs(), /visits destroyed.*visits=1\b/, "exactly this one visit was destroyed");
  assert.ok(!lethe.logs().includes(canary), "logs never carry page URLs");
  await opCtx.close();
  await visCtx.close();
});
