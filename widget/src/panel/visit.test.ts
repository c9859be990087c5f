import assert from "node:assert/strict";
import { test } from "node:test";
import { type VisitState, nextVisitCall, trackingAllowed } from "./visit";

const base: VisitState = {
  token: "",
  page: undefined,
  pageDirty: false,
  pageData: undefined,
  pendingData: undefined,
  pendingTicket: "",
  syncing: false,
  watch: undefined,
};
const page = { url: "https://shop.example/", title: "Shop", referrer: "" };

test("nothing is sent before the host reported a page", () => {
  assert.equal(nextVisitCall({ ...base, pendingData: { a: "1" }, pendingTicket: "lt_x" }), undefined);
});

test("the page view goes first: it starts the visit and carries a pending ticket", () => {
  assert.equal(nextVisitCall({ ...base, page, pendingData: { a: "1" }, pendingTicket: "lt_x" }), "track");
  assert.equal(nextVisitCall({ ...base, page, token: "v", pageDirty: true, pendingData: { a: "1" } }), "track");
});

test("then the custom data, then a ticket, then nothing", () => {
  const s = { ...base, page, token: "v" };
  assert.equal(nextVisitCall({ ...s, pendingData: { a: "1" }, pendingTicket: "lt_x" }), "data");
  assert.equal(nextVisitCall({ ...s, pendingTicket: "lt_x" }), "identify");
  assert.equal(nextVisitCall(s), undefined);
});

test("trackingAllowed: never with Global Privacy Control, never after Stop tracking", () => {
  assert.equal(trackingAllowed(undefined, ""), true);
  assert.equal(trackingAllowed(false, ""), true);
  assert.equal(trackingAllowed(true, ""), false);
  assert.equal(trackingAllowed(undefined, "1"), false);
});
