import assert from "node:assert/strict";
import { test } from "node:test";
import { parseHostMessage } from "./host";

test("parseHostMessage accepts the loader's messages", () => {
  assert.deepEqual(parseHostMessage({ type: "lethe:open" }), { type: "open" });
  assert.deepEqual(parseHostMessage({ type: "lethe:close" }), { type: "close" });
  assert.deepEqual(parseHostMessage({ type: "lethe:visit", pageToken: "pt_x" }), { type: "visit", pageToken: "pt_x" });
  assert.deepEqual(parseHostMessage({ type: "lethe:visit", pageToken: "" }), { type: "visit", pageToken: "" });
  assert.deepEqual(
    parseHostMessage({ type: "lethe:invitation", invitation: { invitationId: "i1", operatorName: "Ann", message: "Hi", extra: 1 } }),
    { type: "invitation", invitation: { invitationId: "i1", operatorName: "Ann", message: "Hi" } },
  );
});

test("parseHostMessage refuses anything malformed", () => {
  for (const m of [
    null,
    "lethe:open",
    [],
    { type: "lethe:unread", count: 3 },
    { type: "lethe:visit" },
    { type: "lethe:visit", pageToken: 7 },
    { type: "lethe:invitation" },
    { type: "lethe:invitation", invitation: { invitationId: "" } },
    { type: "lethe:invitation", invitation: "i1" },
    // The panel no longer reports the visit: page views go from the loader.
    { type: "lethe:context", url: "https://shop.example/" },
    { type: "lethe:identify", ticket: "lt_x" },
  ]) {
    assert.equal(parseHostMessage(m), undefined, JSON.stringify(m));
  }
});

test("parseHostMessage cuts an invitation's fields to their limits", () => {
  const c = parseHostMessage({ type: "lethe:invitation", invitation: { invitationId: "i", operatorName: 7, message: "m".repeat(900) } });
  assert.ok(c && c.type === "invitation");
  assert.equal(c.invitation.operatorName, "");
  assert.equal(c.invitation.message.length, 500);
});
