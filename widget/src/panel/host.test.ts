import assert from "node:assert/strict";
import { test } from "node:test";
import { parseHostMessage } from "./host";

test("parseHostMessage accepts the loader's messages", () => {
  assert.deepEqual(parseHostMessage({ type: "lethe:open" }), { type: "open" });
  assert.deepEqual(parseHostMessage({ type: "lethe:close" }), { type: "close" });
  assert.deepEqual(parseHostMessage({ type: "lethe:context", url: "https://shop.example/a", title: "A", referrer: "" }), {
    type: "context",
    page: { url: "https://shop.example/a", title: "A", referrer: "" },
  });
  assert.deepEqual(parseHostMessage({ type: "lethe:data", data: { plan: "pro", n: 3 } }), { type: "data", data: { plan: "pro" } });
  assert.deepEqual(parseHostMessage({ type: "lethe:identify", ticket: "lt_x" }), { type: "identify", ticket: "lt_x" });
});

test("parseHostMessage refuses anything malformed", () => {
  for (const m of [
    null,
    "lethe:open",
    [],
    { type: "lethe:unread", count: 3 },
    { type: "lethe:context", url: 42 },
    { type: "lethe:context", url: "" },
    { type: "lethe:data", data: ["a"] },
    { type: "lethe:data", data: null },
    { type: "lethe:identify", ticket: "" },
    { type: "lethe:identify" },
  ]) {
    assert.equal(parseHostMessage(m), undefined, JSON.stringify(m));
  }
});

test("parseHostMessage cuts a page view to the server's limits rather than dropping it", () => {
  const c = parseHostMessage({ type: "lethe:context", url: "u".repeat(5000), title: "t".repeat(500), referrer: 7 });
  assert.ok(c && c.type === "context");
  assert.equal(c.page.url.length, 2048);
  assert.equal(c.page.title.length, 300);
  assert.equal(c.page.referrer, "");
});
