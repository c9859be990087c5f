import { test } from "node:test";
import assert from "node:assert/strict";
import { ago, duration, mibBytes, mibText, millis, startedText, waitingText } from "./format";

const S = 1000;
const M = 60 * S;
const H = 60 * M;

test("ago is coarse: minutes, then hours and minutes", () => {
  assert.equal(ago(59 * S), "just now");
  assert.equal(ago(-5 * S), "just now", "a clock slightly ahead is not negative");
  assert.equal(ago(M), "1 min");
  assert.equal(ago(59 * M + 59 * S), "59 min");
  assert.equal(ago(2 * H + 5 * M), "2 h 5 min");
});

test("duration counts seconds, then minutes and seconds, then hours and minutes", () => {
  assert.equal(duration(12 * S + 999), "12s");
  assert.equal(duration(3 * M + 12 * S), "3m 12s");
  assert.equal(duration(H + 4 * M + 30 * S), "1h 4m");
  assert.equal(duration(-1), "0s");
});

test("millis reads a timestamp and makes a missing one 0", () => {
  assert.equal(millis({ $typeName: "google.protobuf.Timestamp", seconds: 2n, nanos: 500_000_000 }), 2500);
  assert.equal(millis(undefined), 0);
});

test("list lines read as sentences in the first minute too", () => {
  assert.equal(waitingText(10 * S), "Just arrived");
  assert.equal(waitingText(4 * M), "Waiting 4 min");
  assert.equal(startedText(10 * S), "Started just now");
  assert.equal(startedText(H + M), "Started 1 h 1 min ago");
});

test("mibText and mibBytes: limits in MiB, empty for the server's own", () => {
  assert.equal(mibText(0n), "");
  assert.equal(mibText(10n * 1048576n), "10");
  assert.equal(mibText(524288n), "0.5");
  assert.equal(mibText(1000000n), "0.95");
  assert.equal(mibBytes(""), 0n);
  assert.equal(mibBytes("  "), 0n);
  assert.equal(mibBytes("0"), 0n);
  assert.equal(mibBytes("10"), 10n * 1048576n);
  assert.equal(mibBytes("0.5"), 524288n);
  assert.equal(mibBytes("x"), 0n);
  for (const n of [1n, 10n, 50n]) assert.equal(mibBytes(mibText(n * 1048576n)), n * 1048576n);
});
