import assert from "node:assert/strict";
import { test } from "node:test";
import { chatEvent, chatState, fileLimits } from "./api";

test("chatEvent reads the JSON of each kind, defaults filled in", () => {
  assert.deepEqual(chatEvent({ seq: "7", time: "2026-01-02T03:04:05Z", message: { authorKind: "AUTHOR_KIND_OPERATOR", authorName: "Ann", text: "Hi" } }), {
    seq: 7n,
    time: "2026-01-02T03:04:05Z",
    kind: { case: "message", value: { author: "operator", authorName: "Ann", text: "Hi" } },
  });
  // Protobuf JSON leaves out default values: an empty message is a visitor's, with no name.
  assert.deepEqual(chatEvent({ seq: "1", message: { text: "x" } }).kind, { case: "message", value: { author: "visitor", authorName: "", text: "x" } });
  assert.deepEqual(chatEvent({ typing: { authorKind: "AUTHOR_KIND_OPERATOR", typing: true } }), {
    seq: 0n,
    time: "",
    kind: { case: "typing", value: { author: "operator", authorName: "", typing: true } },
  });
  assert.deepEqual(chatEvent({ seq: "3", closed: {} }).kind, { case: "closed", value: { reason: "" } });
  assert.deepEqual(chatEvent({ seq: "4", operatorJoined: { operatorName: "Bo" } }).kind, { case: "operatorJoined", value: { operatorName: "Bo" } });
  const file = { fileId: "f1", authorKind: "AUTHOR_KIND_OPERATOR", name: "a.pdf", size: "12" };
  assert.deepEqual(chatEvent({ seq: "5", file }).kind, { case: "file", value: { author: "operator", authorName: "", json: file } });
  assert.deepEqual(chatEvent({ seq: "6", visitorUpdated: { visitorName: "C" } }).kind, { case: undefined });
});

test("chatEvent refuses a malformed seq rather than throwing", () => {
  assert.equal(chatEvent({ seq: "x1", started: {} }).seq, 0n);
  assert.equal(chatEvent({ seq: 5, started: {} }).seq, 0n);
});

test("chatState reads the enum names", () => {
  assert.equal(chatState("CHAT_STATE_WAITING"), "waiting");
  assert.equal(chatState("CHAT_STATE_ACTIVE"), "active");
  assert.equal(chatState("CHAT_STATE_CLOSED"), "closed");
  assert.equal(chatState(undefined), "");
  assert.equal(chatState(2), "");
});

test("fileLimits reads GetFileLimits' JSON: int64 as strings, defaults filled in", () => {
  assert.deepEqual(
    fileLimits({ enabled: true, maxFileBytes: "10485760", maxChatBytes: "52428800", usedChatBytes: "1024", chunkSize: 262144, categories: ["FILE_CATEGORY_IMAGE"], accept: "image/*,.pdf" }),
    { enabled: true, accept: "image/*,.pdf", maxFileBytes: 10485760n, maxChatBytes: 52428800n, usedChatBytes: 1024n },
  );
  // Files turned off: protobuf JSON leaves every default out.
  assert.deepEqual(fileLimits({}), { enabled: false, accept: "", maxFileBytes: 0n, maxChatBytes: 0n, usedChatBytes: 0n });
  assert.equal(fileLimits({ enabled: "true", maxFileBytes: "1e9" }).enabled, false);
  assert.equal(fileLimits({ maxFileBytes: "1e9" }).maxFileBytes, 0n);
});
