// Run: npx esbuild --bundle --platform=node --format=esm sdk/ts/src/retry.test.ts --outfile=/tmp/retry.test.mjs && node --test /tmp/retry.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { Backoff, FINAL_CODES, isFinal } from "./retry";

test("Backoff: 250 ms doubling up to 5 s, each wait within the upper half of its base", () => {
  const bases = [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000];
  for (let round = 0; round < 200; round++) {
    const b = new Backoff();
    for (const base of bases) {
      const d = b.delay();
      assert.ok(d >= base / 2 && d <= base, `delay ${d} outside [${base / 2}, ${base}]`);
    }
  }
});

test("Backoff: reset starts over from 250 ms", () => {
  const b = new Backoff();
  for (let i = 0; i < 8; i++) b.delay();
  b.reset();
  const d = b.delay();
  assert.ok(d >= 125 && d <= 250, `first delay after reset ${d}, want within [125, 250]`);
});

test("Backoff: waits are jittered, so clients cut off together do not return together", () => {
  for (const step of [0, 2, 9]) {
    const seen = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const b = new Backoff();
      for (let j = 0; j < step; j++) b.delay();
      seen.add(b.delay());
    }
    assert.ok(seen.size >= 10, `step ${step}: ${seen.size} distinct delays in 50 draws`);
  }
});

test("isFinal: exactly the documented codes end a watch", () => {
  assert.deepEqual(
    [...FINAL_CODES].sort(),
    [Code.Unauthenticated, Code.PermissionDenied, Code.NotFound, Code.InvalidArgument, Code.FailedPrecondition, Code.Unimplemented].sort(),
  );
  for (let code = Code.Canceled; code <= Code.Unauthenticated; code++) {
    assert.equal(isFinal(new ConnectError("x", code)), FINAL_CODES.includes(code), Code[code]);
  }
  assert.equal(isFinal(ConnectError.from(new TypeError("Failed to fetch"))), false, "a network error is retried");
});
