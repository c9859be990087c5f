// The Visitors page's list as data: which rows each WatchVisitors batch adds,
// changes and removes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VisitorSchema, WatchVisitorsResponseSchema, create, type Visitor } from "@lethe/sdk";
import { applyVisitors, emptyVisitorList, newestFirst, visitorsConnected, type VisitorList } from "./visitorlist";

const visitor = (visitorId: string, firstSeenSec?: number, url = "/"): Visitor =>
  create(VisitorSchema, {
    visitorId,
    firstSeen: firstSeenSec === undefined ? undefined : { seconds: BigInt(firstSeenSec), nanos: 0 },
    currentPage: { page: { url } },
  });

function batch(l: VisitorList, visitors: Visitor[], left: string[] = [], snapshotDone = false, now = 1_000_000) {
  return applyVisitors(l, create(WatchVisitorsResponseSchema, { visitors, leftVisitorIds: left, snapshotDone }), now);
}

/** A list after its first snapshot: a (seen at 10 s), b (20 s), c (30 s). */
function listed(): VisitorList {
  return batch(visitorsConnected(emptyVisitorList()), [visitor("a", 10), visitor("b", 20), visitor("c", 30)], [], true).list;
}

test("a snapshot's visitors join, newest first", () => {
  const l = visitorsConnected(emptyVisitorList());
  const first = batch(l, [visitor("a", 10), visitor("b", 20)]);
  assert.deepEqual(first.changes.joined, ["a", "b"]);
  assert.equal(first.changes.snapshotDone, false);
  assert.ok(first.list.snapshot, "still in the snapshot");
  const done = batch(first.list, [visitor("c", 30)], [], true);
  assert.equal(done.changes.snapshotDone, true);
  assert.equal(done.list.snapshot, undefined);
  assert.deepEqual(newestFirst(done.list), ["c", "b", "a"]);
});

test("a reconnect's snapshot removes whoever it does not mention", () => {
  const l = visitorsConnected(listed());
  const r = batch(l, [visitor("a", 10), visitor("d", 40)], [], true);
  assert.deepEqual(r.changes.joined, ["d"]);
  assert.deepEqual(r.changes.updated, ["a"]);
  assert.deepEqual(r.changes.left.sort(), ["b", "c"]);
  assert.deepEqual([...r.list.visitors.keys()].sort(), ["a", "d"]);
});

test("outside a snapshot, a batch adds, updates and removes only what it names", () => {
  const r = batch(listed(), [visitor("b", 20, "/pricing"), visitor("e", 50)], ["a"]);
  assert.deepEqual(r.changes, { joined: ["e"], updated: ["b"], left: ["a"], snapshotDone: false });
  assert.equal(r.list.visitors.get("b")?.visitor.currentPage?.page?.url, "/pricing");
  assert.ok(r.list.visitors.has("c"), "c was not in the batch and stays");
});

test("a visitor who comes and goes in one batch is never drawn", () => {
  const r = batch(listed(), [visitor("x", 60)], ["x"]);
  assert.deepEqual(r.changes, { joined: [], updated: [], left: [], snapshotDone: false });
  assert.equal(r.list.visitors.has("x"), false);
});

test("a visit keeps the time it began; without one from the server, the time it was first seen here", () => {
  const r1 = batch(listed(), [visitor("n")], [], false, 5_000);
  assert.equal(r1.list.visitors.get("n")?.firstSeen, 5_000);
  const r2 = batch(r1.list, [visitor("n", 1)], [], false, 9_000);
  assert.equal(r2.list.visitors.get("n")?.firstSeen, 5_000, "an update does not move it");
  assert.equal(r2.list.visitors.get("a")?.firstSeen, 10_000);
});

test("snapshot_done outside a snapshot removes no one", () => {
  const r = batch(listed(), [], [], true);
  assert.deepEqual(r.changes.left, []);
  assert.equal(r.list.visitors.size, 3);
});

test("applying a batch never changes the list it is given", () => {
  const l = visitorsConnected(listed());
  const before = new Map(l.visitors);
  batch(l, [visitor("z", 99)], ["a"], true);
  assert.deepEqual(l.visitors, before);
  assert.equal(l.snapshot?.size, 0);
});
