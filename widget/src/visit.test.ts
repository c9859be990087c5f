import assert from "node:assert/strict";
import { test } from "node:test";
import { type VisitState, backoffDelay, envelope, nextVisitCall, readFrames, trackingAllowed } from "./visit";

const base: VisitState = {
  token: "",
  page: undefined,
  pageDirty: false,
  pageData: undefined,
  pendingData: undefined,
  pendingTicket: "",
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

test("trackingAllowed: with monitoring off, only once the visitor opened the chat", () => {
  assert.equal(trackingAllowed(undefined, "", true), false);
  assert.equal(trackingAllowed(undefined, "", true, true), true);
  assert.equal(trackingAllowed(true, "", true, true), false, "GPC still wins");
  assert.equal(trackingAllowed(undefined, "1", true, true), false, "Stop tracking still wins");
});

test("envelopes: a request frame reads back, split frames wait for their bytes", () => {
  const a = envelope({ started: { visitorId: "v1" } });
  assert.equal(a[0], 0);
  assert.equal(new DataView(a.buffer).getUint32(1), a.length - 5);
  const end = envelope({ error: { code: "unauthenticated" } });
  end[0] = 2;
  const all = new Uint8Array([...a, ...end]);
  const half = readFrames(all.subarray(0, a.length + 3));
  assert.deepEqual(half.frames, [{ flags: 0, data: { started: { visitorId: "v1" } } }]);
  assert.equal(half.rest.length, 3);
  const rest = readFrames(new Uint8Array([...half.rest, ...all.subarray(a.length + 3)]));
  assert.deepEqual(rest.frames, [{ flags: 2, data: { error: { code: "unauthenticated" } } }]);
  assert.equal(rest.rest.length, 0);
});

test("backoff: 250 ms doubling to 5 s, jittered between half and all of it", () => {
  assert.equal(backoffDelay(0, 1), 250);
  assert.equal(backoffDelay(1, 1), 500);
  assert.equal(backoffDelay(10, 1), 5000);
  assert.equal(backoffDelay(10, 0), 2500);
});
