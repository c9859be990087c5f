/// <reference types="node" />
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { chunkPlan, downloadFile, resumeOffset, retryable, sha256Hex, uploadFile, type FileCalls } from "./files";

test("chunkPlan: whole chunks, a shorter last one, from a chunk boundary", () => {
  assert.deepEqual(chunkPlan(10, 4), [
    { offset: 0, end: 4 },
    { offset: 4, end: 8 },
    { offset: 8, end: 10 },
  ]);
  assert.deepEqual(chunkPlan(8, 4), [
    { offset: 0, end: 4 },
    { offset: 4, end: 8 },
  ]);
  assert.deepEqual(chunkPlan(3, 4), [{ offset: 0, end: 3 }]);
  assert.deepEqual(chunkPlan(0, 4), []);
  assert.deepEqual(chunkPlan(10, 4, 4), [
    { offset: 4, end: 8 },
    { offset: 8, end: 10 },
  ]);
  // A resume point inside a chunk starts that chunk again.
  assert.deepEqual(chunkPlan(10, 4, 6), [
    { offset: 4, end: 8 },
    { offset: 8, end: 10 },
  ]);
  assert.deepEqual(chunkPlan(10, 4, 10), []);
  assert.throws(() => chunkPlan(10, 0));
});

test("resumeOffset: on a chunk boundary, within the file", () => {
  const K = 262144;
  assert.equal(resumeOffset(0, 10 * K, K), 0);
  assert.equal(resumeOffset(-1, 10 * K, K), 0);
  assert.equal(resumeOffset(Number.NaN, 10 * K, K), 0);
  assert.equal(resumeOffset(3 * K, 10 * K, K), 3 * K);
  assert.equal(resumeOffset(3 * K + 17, 10 * K, K), 3 * K);
  assert.equal(resumeOffset(10 * K, 10 * K, K), 10 * K, "complete");
  assert.equal(resumeOffset(9 * K + 5, 9 * K + 5, K), 9 * K + 5, "complete with a short last chunk");
  assert.equal(resumeOffset(20 * K, 10 * K, K), 10 * K);
});

test("retryable: network drops and unavailability, not answers", () => {
  for (const c of [Code.Unavailable, Code.Unknown, Code.DeadlineExceeded, Code.Aborted]) {
    assert.equal(retryable(new ConnectError("x", c)), true, Code[c]);
  }
  for (const c of [Code.ResourceExhausted, Code.InvalidArgument, Code.FailedPrecondition, Code.NotFound, Code.PermissionDenied, Code.Unauthenticated, Code.DataLoss, Code.Canceled]) {
    assert.equal(retryable(new ConnectError("x", c)), false, Code[c]);
  }
  assert.equal(retryable(new TypeError("Failed to fetch")), true, "a failed fetch");
});

test("sha256Hex: the file's SHA-256 in lowercase hex", async () => {
  const bytes = new TextEncoder().encode("lethe forgets");
  assert.equal(await sha256Hex(new Blob([bytes])), createHash("sha256").update(bytes).digest("hex"));
});

/**
 * fakeServer keeps one upload's chunks the way the protocol says (idempotent
 * by offset, next_offset = first gap) and drops the calls listed in drops
 * (by call number) as a network failure would, after or before storing.
 */
function fakeServer(opts: { chunkSize: number; dropChunkCalls?: Map<number, "before" | "after">; refuseStart?: ConnectError }) {
  const chunks = new Map<number, Uint8Array>();
  let size = 0;
  let chunkCalls = 0;
  const log: string[] = [];
  let finished: Uint8Array | undefined;
  const nextOffset = () => {
    let o = 0;
    while (o < size && chunks.has(o)) o += chunks.get(o)!.length;
    return o;
  };
  const received = () => [...chunks.values()].reduce((n, c) => n + c.length, 0);
  const assemble = () => {
    const out = new Uint8Array(size);
    for (const [o, c] of chunks) out.set(c, o);
    return out;
  };
  const client = {
    async startUpload(req: { size: bigint }) {
      log.push("start");
      if (opts.refuseStart) throw opts.refuseStart;
      size = Number(req.size);
      return { uploadId: "u1", chunkSize: opts.chunkSize, name: "x" };
    },
    async uploadChunk(req: { offset: bigint; data: Uint8Array }, o?: { signal?: AbortSignal }) {
      if (o?.signal?.aborted) throw new ConnectError("aborted", Code.Canceled);
      const n = ++chunkCalls;
      const drop = opts.dropChunkCalls?.get(n);
      log.push(`chunk ${req.offset}${drop ? ` dropped ${drop}` : ""}`);
      if (drop === "before") throw new ConnectError("network", Code.Unknown);
      const at = Number(req.offset);
      assert.equal(at % opts.chunkSize, 0, "offset on a chunk boundary");
      const had = chunks.get(at);
      if (had) assert.deepEqual(had, req.data, "a replayed chunk has the same bytes");
      chunks.set(at, new Uint8Array(req.data));
      if (drop === "after") throw new ConnectError("network", Code.Unavailable);
      return { receivedBytes: BigInt(received()), nextOffset: BigInt(nextOffset()) };
    },
    async getUpload() {
      log.push("get");
      return { chunkSize: opts.chunkSize, size: BigInt(size), receivedBytes: BigInt(received()), nextOffset: BigInt(nextOffset()) };
    },
    async finishUpload(req: { sha256: string }) {
      log.push("finish");
      finished = assemble();
      assert.equal(req.sha256, createHash("sha256").update(finished).digest("hex"), "the SHA-256 sent is the file's");
      return { file: { fileId: "f1", size: BigInt(size), sha256: req.sha256 } };
    },
    async cancelUpload() {
      log.push("cancel");
      return {};
    },
  };
  return { client: client as unknown as FileCalls, log, finished: () => finished };
}

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + 7) % 251;
  return b;
}

test("uploadFile: every chunk once, progress to the end, the SHA-256 to FinishUpload", async () => {
  const bytes = randomBytes(10);
  const srv = fakeServer({ chunkSize: 4 });
  const progress: number[] = [];
  const res = await uploadFile(srv.client, "c1", new Blob([bytes]), { name: "a.bin", onProgress: (s, t) => (assert.equal(t, 10), progress.push(s)) });
  assert.equal(res.file?.fileId, "f1");
  assert.deepEqual(srv.log, ["start", "chunk 0", "chunk 4", "chunk 8", "finish"]);
  assert.deepEqual(progress, [0, 4, 8, 10]);
  assert.deepEqual(srv.finished(), bytes);
});

test("uploadFile: a dropped chunk call resumes where the server says it stopped", async () => {
  const bytes = randomBytes(10);
  // Call 2 (offset 4) is lost before it arrives; call 4 (offset 8) arrives but its answer is lost.
  const srv = fakeServer({ chunkSize: 4, dropChunkCalls: new Map([[2, "before"], [4, "after"]]) });
  const res = await uploadFile(srv.client, "c1", new Blob([bytes]));
  assert.equal(res.file?.fileId, "f1");
  assert.deepEqual(srv.log, ["start", "chunk 0", "chunk 4 dropped before", "get", "chunk 4", "chunk 8 dropped after", "get", "finish"]);
  assert.deepEqual(srv.finished(), bytes);
});

test("uploadFile: a resumed upload (uploadId) asks GetUpload and sends only what is missing", async () => {
  const bytes = randomBytes(10);
  const srv = fakeServer({ chunkSize: 4, dropChunkCalls: new Map([[2, "before"]]) });
  await assert.rejects(uploadFile(srv.client, "c1", new Blob([bytes]), { maxRetries: 0 }), (e: ConnectError) => e.code === Code.Unknown);
  const res = await uploadFile(srv.client, "c1", new Blob([bytes]), { uploadId: "u1" });
  assert.equal(res.file?.fileId, "f1");
  assert.deepEqual(srv.log, ["start", "chunk 0", "chunk 4 dropped before", "get", "chunk 4", "chunk 8", "finish"]);
});

test("uploadFile: a limit is the answer, not retried", async () => {
  const srv = fakeServer({ chunkSize: 4, refuseStart: new ConnectError("File is larger than 10 MiB", Code.ResourceExhausted) });
  await assert.rejects(uploadFile(srv.client, "c1", new Blob([randomBytes(10)])), (e: ConnectError) => e.code === Code.ResourceExhausted && e.rawMessage === "File is larger than 10 MiB");
  assert.deepEqual(srv.log, ["start"]);
});

test("uploadFile: aborting cancels the upload on the server", async () => {
  const srv = fakeServer({ chunkSize: 4 });
  const ctl = new AbortController();
  const p = uploadFile(srv.client, "c1", new Blob([randomBytes(10)]), { signal: ctl.signal, onProgress: (s) => s >= 4 && ctl.abort() });
  await assert.rejects(p, (e: ConnectError) => e.code === Code.Canceled);
  assert.equal(srv.log.at(-1), "cancel");
  assert.ok(!srv.log.includes("finish"));
});

test("downloadFile: resumes after a cut stream from the last byte and checks the SHA-256", async () => {
  const bytes = randomBytes(10);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const opened: number[] = [];
  const client = {
    async *downloadFile(req: { offset: bigint }) {
      const from = Number(req.offset);
      opened.push(from);
      const file = { fileId: "f1", size: 10n, contentType: "application/octet-stream", sha256 };
      for (let o = from, first = true; o < 10; o += 4, first = false) {
        if (opened.length === 1 && o === 8) throw new ConnectError("cut", Code.Unavailable);
        yield { file: first ? file : undefined, offset: BigInt(o), data: bytes.slice(o, Math.min(o + 4, 10)) };
      }
    },
  } as unknown as FileCalls;
  const blob = await downloadFile(client, "f1");
  assert.deepEqual(opened, [0, 8]);
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), bytes);
});

test("downloadFile: bytes that do not match the SHA-256 are DATA_LOSS", async () => {
  const client = {
    async *downloadFile() {
      yield { file: { fileId: "f1", size: 3n, contentType: "", sha256: "00".repeat(32) }, offset: 0n, data: new Uint8Array([1, 2, 3]) };
    },
  } as unknown as FileCalls;
  await assert.rejects(downloadFile(client, "f1"), (e: ConnectError) => e.code === Code.DataLoss);
});
