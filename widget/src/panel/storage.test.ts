import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSession, parseTokens } from "./storage";

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

test("parseTokens reads the offline tokens and drops anything else", () => {
  assert.deepEqual(parseTokens(JSON.stringify(["a", "b"])), ["a", "b"]);
  assert.deepEqual(parseTokens(JSON.stringify(["a", 1, "", null, "c"])), ["a", "c"]);
  for (const raw of ["", "{", "null", '{"a":1}', '"x"']) assert.deepEqual(parseTokens(raw), [], raw);
});
