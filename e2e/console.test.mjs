// End to end, the operator console beyond one chat: two operators sharing
// one queue (a chat one accepts leaves the other's queue; a transfer hands
// the chat over with its history, once), the admin pages (operators,
// settings, consent texts, API keys) saving what they say they save, and a
// disabled operator's console ending its session. Visitors are driven through
// the public RPCs here; chat.test.mjs covers the widget.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startLethe, launchBrowser, shot, operatorLogin, rpc } from "./harness.mjs";

let lethe;
let browser;

before(async () => {
  lethe = await startLethe();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
});

/** A visitor who starts a chat and writes in it through the ChatService RPCs. */
async function visitor(name, first) {
  const r = await rpc(lethe.base, "lethe.chat.v1.ChatService/StartChat", { accountId: "demo", visitorName: name, firstMessage: first, locale: "en" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const auth = { authorization: `Bearer ${r.body.visitorToken}` };
  return {
    chatId: r.body.chatId,
    async say(text) {
      const s = await rpc(lethe.base, "lethe.chat.v1.ChatService/SendMessage", { chatId: r.body.chatId, text }, auth);
      assert.equal(s.status, 200, JSON.stringify(s.body));
    },
    async end() {
      await rpc(lethe.base, "lethe.chat.v1.ChatService/EndChat", { chatId: r.body.chatId }, auth);
    },
  };
}

async function newPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { ctx, page, errors };
}

/** Adds an operator from the console's Operators page. */
async function addOperator(page, email, name, password) {
  await page.getByTestId("admin").click();
  await page.getByTestId("op-create-email").fill(email);
  await page.getByTestId("op-create-name").fill(name);
  await page.getByTestId("op-create-password").fill(password);
  await page.getByTestId("op-create-submit").click();
  await page.getByTestId("op-row").filter({ hasText: email }).waitFor();
}

test("two operators share the queue; a transfer hands the chat over with its history, once", { timeout: 120_000 }, async () => {
  const a = await newPage();
  await operatorLogin(a.page, lethe.base);
  await addOperator(a.page, "bo@demo.example", "Bo Second", "bo-password-123");
  await shot(a.page, "40-console-operators");
  await a.page.getByRole("button", { name: "Chats", exact: true }).click();

  const b = await newPage();
  await operatorLogin(b.page, lethe.base, "bo@demo.example", "bo-password-123");

  const vera = await visitor("Vera Queue", "Is anyone there?");
  const itemA = a.page.getByTestId("queue-item").filter({ hasText: "Vera Queue" });
  const itemB = b.page.getByTestId("queue-item").filter({ hasText: "Vera Queue" });
  await itemA.waitFor();
  await itemB.waitFor();
  assert.match(await b.page.title(), /^\(1\)/);

  // A accepts: the chat leaves B's queue, and B's title count.
  await itemA.getByTestId("accept").click();
  const viewA = a.page.getByTestId("chat-view");
  await viewA.getByText("Is anyone there?").waitFor();
  await itemB.waitFor({ state: "detached" });
  assert.doesNotMatch(await b.page.title(), /^\(/, "B's title has no queue count");
  assert.equal(await b.page.getByTestId("mychat").count(), 0, "the chat is not B's");

  await vera.say("I have a question about billing");
  await viewA.getByText("I have a question about billing").waitFor();
  await viewA.getByTestId("composer").fill("Let me get my colleague");
  await viewA.getByTestId("composer").press("Enter");
  await viewA.getByText("Let me get my colleague").waitFor();

  // A transfers to B, who is online and so is offered.
  const select = viewA.getByTestId("transfer-select");
  await select.locator("option", { hasText: "Bo Second" }).waitFor({ state: "attached" });
  await select.selectOption({ label: "Bo Second" });
  await viewA.getByTestId("transfer").click();
  await viewA.getByText("Transferred to Bo Second.").waitFor();
  assert.equal(await viewA.getByTestId("composer").isDisabled(), true, "A can no longer write");
  assert.equal(await a.page.getByTestId("mychat").count(), 0, "the chat left A's list");
  await shot(a.page, "41-console-transferred-away");

  // B has the chat, with an unread badge for the visitor's messages, and
  // opening it shows the whole history exactly once.
  const mineB = b.page.getByTestId("mychat").filter({ hasText: "Vera Queue" });
  await mineB.waitFor();
  await mineB.locator(".badge").waitFor();
  await mineB.getByRole("button").click();
  const viewB = b.page.getByTestId("chat-view");
  await viewB.getByText("Let me get my colleague").waitFor();
  for (const text of ["Is anyone there?", "I have a question about billing", "Let me get my colleague"]) {
    assert.equal(await viewB.getByTestId("msg").filter({ hasText: text }).count(), 1, `"${text}" once`);
  }
  assert.equal(await mineB.locator(".badge").count(), 0, "opening the chat reads it");
  await vera.say("Thanks, Bo");
  await viewB.getByText("Thanks, Bo").waitFor();
  await shot(b.page, "42-console-transferred-in");

  // A dismisses the old view; B sees the visitor end the chat.
  await viewA.getByRole("button", { name: "Dismiss" }).click();
  await a.page.getByText("No chat selected").waitFor();
  await vera.end();
  await viewB.getByText("This chat has ended.").waitFor();
  assert.equal(await viewB.getByTestId("composer").isDisabled(), true);

  assert.deepEqual([...a.errors, ...b.errors], [], "no uncaught page errors");
  await a.ctx.close();
  await b.ctx.close();
});

test("an admin's settings, consent texts and API keys are saved and shown again", { timeout: 120_000 }, async () => {
  const { ctx, page, errors } = await newPage();
  await operatorLogin(page, lethe.base);
  await page.getByTestId("settings-tab").click();

  // Settings: the form opens with the server's values and saves new ones.
  const idle = page.getByTestId("set-idle");
  await page.locator("fieldset.set-fields:not([disabled])").waitFor();
  await page.getByTestId("set-recipients").fill("support@demo.example\n\n  sales@demo.example  ");
  await page.getByTestId("set-hide-ip").check();
  await page.getByTestId("set-idle-unit").selectOption("min");
  await idle.fill("15");
  await page.getByTestId("set-save").click();
  await page.getByTestId("set-ok").waitFor();

  // Consent: each save is a new version.
  await page.getByTestId("consent-text").fill("I agree that what I write is kept until the chat ends.");
  await page.getByTestId("consent-required").check();
  await page.getByTestId("consent-save").click();
  await page.getByTestId("consent-ok").getByText("Saved as version 1.").waitFor();
  await page.getByTestId("consent-text").fill("I agree that what I write is kept until the chat ends, then deleted.");
  await page.getByTestId("consent-save").click();
  await page.getByTestId("consent-ok").getByText("Saved as version 2.").waitFor();
  const row = page.locator('[data-testid="consent-row"][data-form="prechat"][data-locale="en"]');
  await row.getByText("then deleted.").waitFor();

  // API keys: the key is shown once, listed by name, and can be revoked.
  await page.getByTestId("apikey-name").fill("Shop back end");
  await page.getByTestId("apikey-create").click();
  // The box with the key appears once the server answered (value first).
  await page.getByTestId("apikey-secret").waitFor();
  const secret = await page.getByTestId("apikey-secret").inputValue();
  assert.ok(secret.length > 20, "a key is shown");
  const keyRow = page.getByTestId("apikey-row").filter({ hasText: "Shop back end" });
  await keyRow.waitFor();
  assert.ok(!(await keyRow.textContent()).includes(secret), "the list shows a prefix, never the key");
  await shot(page, "43-console-settings");

  // A fresh page shows what was saved.
  await page.reload();
  await page.getByTestId("settings-tab").click();
  await page.locator("fieldset.set-fields:not([disabled])").waitFor();
  assert.equal(await page.getByTestId("set-recipients").inputValue(), "support@demo.example\nsales@demo.example");
  assert.equal(await page.getByTestId("set-hide-ip").isChecked(), true);
  assert.equal(await idle.inputValue(), "15");
  assert.equal(await page.getByTestId("set-idle-unit").inputValue(), "min");
  await row.getByText("then deleted.").waitFor();
  assert.equal(await row.locator("td").nth(2).textContent(), "2", "version 2 is current");

  await page.getByTestId("apikey-row").filter({ hasText: "Shop back end" }).getByTestId("apikey-revoke").click();
  await page.getByTestId("apikey-row").filter({ hasText: "Shop back end" }).waitFor({ state: "detached" });
  await page.reload();
  await page.getByTestId("settings-tab").click();
  await page.getByText("No API keys yet.").waitFor();

  assert.deepEqual(errors, [], "no uncaught page errors");
  await ctx.close();
});

test("an operator disabled by an admin is signed out of the console at once", { timeout: 120_000 }, async () => {
  const admin = await newPage();
  await operatorLogin(admin.page, lethe.base);
  await addOperator(admin.page, "cy@demo.example", "Cy Third", "cy-password-123");

  const cy = await newPage();
  await operatorLogin(cy.page, lethe.base, "cy@demo.example", "cy-password-123");
  assert.equal(await cy.page.getByTestId("admin").count(), 0, "an operator has no Operators tab");
  assert.equal(await cy.page.getByTestId("settings-tab").count(), 0, "nor Settings");

  await admin.page.getByTestId("op-row").filter({ hasText: "cy@demo.example" }).getByTestId("op-toggle").click();
  await admin.page.getByTestId("op-row").filter({ hasText: "cy@demo.example" }).getByText("Disabled").waitFor();

  await cy.page.getByTestId("login").waitFor();
  await cy.page.getByText("Your session has ended. Please sign in again.").waitFor();
  await shot(cy.page, "44-console-signed-out");
  assert.deepEqual([...admin.errors, ...cy.errors], [], "no uncaught page errors");
  await admin.ctx.close();
  await cy.ctx.close();
});
