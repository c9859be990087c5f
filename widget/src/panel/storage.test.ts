import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSession } from "./storage";

test("parseSession reads a stored chat session", () => {
  assert.deepEqual(parseSession(JSON.stringify({ token: "t", chatId: "c", lastSeq: "4", consent: 2 })), {
    token: "t",
    chatId: "c",
    lastSeq: "4",
    consent: 2,
  });
  assert.deepEqual(parseSession(JSON.stringify({ token: "t", chatId: "c" })), { token: "t", chatId: "c", lastSeq: undefined, consent: 0 });
});

test("parseSession treats anything malformed as no session", () => {
  for (const raw of [null, "", "{", "null", "[]", '"x"', '{"token":"t"}', '{"token":1,"chatId":"c"}']) {
    assert.equal(parseSession(raw), undefined, String(raw));
  }
});
