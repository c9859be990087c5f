import assert from "node:assert/strict";
import { test } from "node:test";
import { destruction, duration, joined, millis } from "./data-format";

const ts = (seconds: number) => ({ $typeName: "google.protobuf.Timestamp" as const, seconds: BigInt(seconds), nanos: 5e6 });

test("millis reads a timestamp, 0 when unset", () => {
  assert.equal(millis(ts(2)), 2005);
  assert.equal(millis(undefined), 0);
});

test("duration reads time on site for people", () => {
  assert.equal(duration(0), "less than a minute");
  assert.equal(duration(-5), "less than a minute");
  assert.equal(duration(60_000), "1 minute");
  assert.equal(duration(5 * 60_000 + 10), "5 minutes");
  assert.equal(duration(125 * 60_000), "2 h 5 min");
});

test("destruction gives the rule and the latest time when known", () => {
  assert.equal(destruction(undefined), "");
  assert.equal(destruction({ rule: "when the chat ends" }), "when the chat ends");
  const d = destruction({ rule: "3 minutes after you leave the site", notAfter: ts(1_700_000_000) }, "en-GB");
  assert.match(d, /^3 minutes after you leave the site \(at the latest .*2023.*\)$/);
  assert.match(destruction({ rule: "", notAfter: ts(1_700_000_000) }, "en-GB"), /^at the latest /);
});

test("joined leaves out empty parts", () => {
  assert.equal(joined("Berlin", "", "DE"), "Berlin, DE");
  assert.equal(joined("", ""), "");
});
