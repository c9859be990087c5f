/// <reference types="node" />
import { test } from "node:test";
import assert from "node:assert/strict";
import { formatBytes, progressPercent, sentence, tooLarge } from "./files";

test("formatBytes: binary units written as the server writes them", () => {
  assert.equal(formatBytes(0), "0 bytes");
  assert.equal(formatBytes(1023), "1023 bytes");
  assert.equal(formatBytes(1024), "1 KiB");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(10 * 1024 * 1024), "10 MiB");
  assert.equal(formatBytes(50 * 1024 * 1024), "50 MiB");
  assert.equal(formatBytes(1.25 * 1024 * 1024 * 1024), "1.3 GiB");
});

test("tooLarge: the per-file limit, then the chat's total, in the server's words", () => {
  const MiB = 1024 * 1024;
  const l = { maxFileBytes: BigInt(10 * MiB), maxChatBytes: BigInt(50 * MiB), usedChatBytes: BigInt(45 * MiB) };
  assert.equal(tooLarge(MiB, l), "");
  assert.equal(tooLarge(10 * MiB + 1, l), "A file may be at most 10 MiB");
  assert.equal(tooLarge(6 * MiB, l), "The files of a chat may total at most 50 MiB (45 MiB used)");
  assert.equal(tooLarge(5 * MiB, l), "", "exactly at the chat's limit is allowed");
  assert.equal(tooLarge(MiB, { maxFileBytes: 0n, maxChatBytes: 0n, usedChatBytes: 0n }), "", "no limits given");
});

test("progressPercent and sentence", () => {
  assert.equal(progressPercent(0, 10), 0);
  assert.equal(progressPercent(5, 10), 50);
  assert.equal(progressPercent(9, 10), 90);
  assert.equal(progressPercent(10, 10), 100);
  assert.equal(progressPercent(3, 0), 0);
  assert.equal(sentence("a file may be at most 10 MiB"), "A file may be at most 10 MiB");
  assert.equal(sentence(""), "");
});
