// End to end, issue 3: consent on the pre-chat and offline forms, the
// offline form when no operator is online (its mail reaches a real SMTP
// server), and withdrawal of consent from the widget, which ends the chat
// and destroys it at once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startLethe, launchBrowser, shot, operatorLogin, waitNoOperatorOnline, startSmtpSink, rpc, adminApi, allBytes } from "./harness.mjs";

let lethe;
let browser;
let smtp;
let admin;



before(async () => {
  smtp = await startSmtpSink();
  lethe = await startLethe(["--smtp-host", "127.0.0.1", "--smtp-port", String(smtp.port)]);
  browser = await launchBrowser();
  admin = await adminApi(lethe.base);
  await admin("lethe.account.v1.AccountService/UpdateSettings", {
    settings: { transcriptsEnabled: false, recipients: ["support@demo.example"], idleTimeoutSeconds: 600, allowedOrigins: ["self"],
      mailTlsPolicy: "MAIL_TLS_POLICY_OPPORTUNISTIC" },
  });
  for (const form of ["CONSENT_FORM_PRECHAT", "CONSENT_FORM_OFFLINE"]) {
    await admin("lethe.consent.v1.ConsentService/SetConsentText", {
      form, locale: "en", required: true,
      text: "I agree that Demo Company processes what I write here to answer me. It is deleted when the chat ends.",
    });
  }
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
  await smtp?.close();
});

async function openPanel(page) {
  await page.goto(`${lethe.base}/demo`);
  await page.locator("#lethe-launcher").waitFor({ state: "visible" });
  await page.locator("#lethe-launcher").click();
  return page.frameLocator("#lethe-frame");
}

test("offline form with consent when no operator is online; the mail reaches the SMTP server", { timeout: 120_000 }, async () => {
  await waitNoOperatorOnline(lethe.base);
  const ctx = await browser.newContext({ locale: "en-US" });
  const page = await ctx.newPage();
  const panel = await openPanel(page);
  await panel.getByTestId("offline").waitFor();
  await panel.getByTestId("offline-form").waitFor();
  const canary = "offline-canary-" + Date.now();
  await panel.getByTestId("offline-name").fill("Olga Offline");
  await panel.getByTestId("offline-email").fill("olga@example.com");
  await panel.getByTestId("offline-message").fill(`Please call me back about ${canary}`);
  // The consent is required: sending stays impossible until it is ticked.
  assert.equal(await panel.getByTestId("offline-send").isDisabled(), true, "send disabled before consent");
  await panel.getByTestId("offline-consent").check();
  await shot(page, "20-offline-form");
  await panel.getByTestId("offline-send").click();
  await panel.getByTestId("offline-sent").waitFor();
  await shot(page, "21-offline-sent");
  const mail = await smtp.waitFor(new RegExp(canary));
  assert.match(mail, /Olga Offline/);
  assert.match(mail, /olga@example\.com/);
  // Held only until the mail server accepted it: gone from the data files.
  const end = Date.now() + 10000;
  while (allBytes(lethe.dataDir).includes(canary) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!allBytes(lethe.dataDir).includes(canary), "offline message destroyed after dispatch");
  await ctx.close();
});

test("the server refuses a chat without the pre-chat consent, whatever the client sends", { timeout: 30_000 }, async () => {
  const r = await rpc(lethe.base, "lethe.chat.v1.ChatService/StartChat", {
    accountId: "demo", visitorName: "Sneaky", firstMessage: "hi", locale: "en", consentVersion: 0,
  });
  assert.equal(r.status, 400);
  assert.equal(r.body.code, "failed_precondition");
});

test("pre-chat consent checkbox, then withdrawal from the widget destroys the chat at once", { timeout: 120_000 }, async () => {
  const opCtx = await browser.newContext();
  const op = await opCtx.newPage();
  await operatorLogin(op, lethe.base);
  const ctx = await browser.newContext({ locale: "en-US" });
  const page = await ctx.newPage();
  const panel = await openPanel(page);
  await panel.getByTestId("prechat").waitFor();
  const canary = "withdraw-canary-" + Date.now();
  await panel.getByTestId("name").fill("Wanda");
  await panel.getByTestId("message").fill(`Question about ${canary}`);
  assert.equal(await panel.getByTestId("start").isDisabled(), true, "start disabled before consent");
  await panel.getByTestId("consent").check();
  await shot(page, "22-prechat-consent");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  const item = op.getByTestId("queue-item").filter({ hasText: "Wanda" });
  await item.waitFor();
  await item.getByTestId("accept").click();
  await op.getByTestId("chat-view").getByText(canary).waitFor();
  assert.ok(allBytes(lethe.dataDir).includes(canary), "the chat is on disk while open (the check can fail)");

  await panel.getByTestId("withdraw").click();
  await panel.getByTestId("withdraw-confirm").click();
  await panel.getByTestId("closed").waitFor();
  await shot(page, "23-withdrawn");
  // Destroyed before the call returned: no waiting.
  assert.ok(!allBytes(lethe.dataDir).includes(canary), "withdrawn chat gone from every data file");
  await op.getByTestId("chat-view").getByText(/consent withdrawn/i).waitFor();
  await opCtx.close();
  await ctx.close();
});
