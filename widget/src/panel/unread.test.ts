import assert from "node:assert/strict";
import { test } from "node:test";
import { attentionFrom, chatStarted, closed, eventShown, invitationPending, opened, viewRebuilt } from "./unread";

test("operator messages count as unread while the panel is closed; others do not", () => {
  let a = attentionFrom(undefined);
  a = eventShown(a, 1n, false); // started
  a = eventShown(a, 2n, false); // the visitor's first message
  a = eventShown(a, 3n, true);
  a = eventShown(a, 0n, false); // a typing notice
  a = eventShown(a, 4n, true);
  assert.equal(a.unread, 2);
  assert.equal(a.shown, 4n);
  assert.equal(a.seen, 0n);
});

test("opening the panel clears the count and marks everything shown as seen", () => {
  let a = eventShown(eventShown(attentionFrom("2"), 3n, true), 4n, true);
  a = opened(a);
  assert.deepEqual(a, { open: true, seen: 4n, shown: 4n, unread: 0 });
});

test("while the panel is open, every stored event is seen as it arrives", () => {
  let a = opened(attentionFrom(undefined));
  a = eventShown(a, 5n, true);
  assert.deepEqual(a, { open: true, seen: 5n, shown: 5n, unread: 0 });
  assert.equal(eventShown(a, 0n, false), a, "a typing notice changes nothing");
  a = eventShown(closed(a), 6n, true);
  assert.equal(a.unread, 1, "closing again counts the next message");
});

test("after a page load the replayed history is not counted again, only what came after", () => {
  // The previous page had seen up to seq 7; the chat view replays 1..8.
  let a = viewRebuilt(attentionFrom("7"));
  for (let seq = 1n; seq <= 8n; seq++) a = eventShown(a, seq, true);
  assert.equal(a.unread, 1);
  assert.equal(a.seen, 7n, "seen moves only when the visitor looks");
});

test("a corrupt stored seq counts as nothing seen", () => {
  for (const bad of ["", "abc", "-1", "1e3", "1".repeat(40)]) assert.equal(attentionFrom(bad).seen, 0n, bad);
});

test("a new chat has nothing seen; rebuilding the view keeps what was seen", () => {
  const a = eventShown(opened(attentionFrom("9")), 12n, false);
  assert.deepEqual(chatStarted(a), { open: true, seen: 0n, shown: 0n, unread: 0 });
  assert.deepEqual(viewRebuilt(a), { open: true, seen: 12n, shown: 0n, unread: 0 });
});

test("a pending invitation shows one unread on the launcher, unless the panel is open", () => {
  assert.equal(invitationPending(attentionFrom(undefined)).unread, 1);
  const open = opened(attentionFrom(undefined));
  assert.equal(invitationPending(open), open);
});
