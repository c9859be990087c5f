// Run: npx esbuild --bundle --platform=node --format=esm sdk/ts/src/resume.test.ts --outfile=/tmp/resume.test.mjs && node --test /tmp/resume.test.mjs
//
// The streams here are plain functions producing async iterables and errors,
// standing in for the generated clients; the server's own behaviour is
// tested against the real server in Go.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  ChatState,
  WatchChatResponseSchema,
  WatchInboxResponseSchema,
  type WatchChatRequest,
  type WatchChatResponse,
  type WatchInboxRequest,
  type WatchInboxResponse,
} from "../../../gen/ts/lethe/chat/v1/chat_pb";
import {
  WatchVisitResponseSchema,
  WatchVisitorsResponseSchema,
  type WatchVisitResponse,
  type WatchVisitorsResponse,
} from "../../../gen/ts/lethe/monitor/v1/monitor_pb";
import { resume, type BackoffPolicy } from "./resume";
import { FINAL_CODES } from "./retry";
import { watchChatResuming, watchInboxResuming, type ChatClient } from "./watch";
import { watchVisitResuming, watchVisitorsResuming, type MonitorClient } from "./monitor";

/** One scripted connection: responses, then an error, a clean end, or (hang) a stream that stays open until aborted. */
type Conn<T> = { msgs: T[]; end?: unknown; hang?: boolean };

/** stream plays one connection, honouring the abort signal as a real call does. */
async function* stream<T>(c: Conn<T>, signal: AbortSignal): AsyncGenerator<T> {
  for (const m of c.msgs) {
    if (signal.aborted) throw new ConnectError("aborted", Code.Canceled);
    yield m;
  }
  if (c.hang) {
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    throw new ConnectError("aborted", Code.Canceled);
  }
  if (c.end !== undefined) throw c.end;
}

/** opener hands out the scripted connections in turn and records each open's signal. */
function opener<T>(conns: Conn<T>[]) {
  const signals: AbortSignal[] = [];
  return {
    signals,
    open(signal: AbortSignal): AsyncIterable<T> {
      signals.push(signal);
      const c = conns.shift();
      if (!c) throw new Error("no more scripted connections");
      return stream(c, signal);
    },
  };
}

/** A backoff policy that records its use and waits `ms`. */
function recordingBackoff(ms = 1) {
  const log: string[] = [];
  const policy: BackoffPolicy = {
    delay: () => (log.push("delay"), ms),
    reset: () => void log.push("reset"),
  };
  return { log, policy };
}

const unavailable = () => new ConnectError("stream fell behind", Code.Unavailable);

test("resume: the backoff grows while nothing arrives and starts over after a response", async () => {
  const o = opener<number>([
    { msgs: [], end: unavailable() }, // opens, delivers nothing
    { msgs: [], end: unavailable() },
    { msgs: [1], end: unavailable() }, // delivers, then breaks
    { msgs: [] }, // a clean end is resumed too
    { msgs: [2, 3] },
  ]);
  const b = recordingBackoff();
  const got: number[] = [];
  const breaks: (Code | undefined)[] = [];
  let live = 0;
  const end = await resume({
    open: o.open,
    backoff: b.policy,
    onLive: () => live++,
    onBreak: (err) => breaks.push(err?.code),
    onMessage: (m) => {
      got.push(m);
      return m === 3;
    },
  }).done;
  assert.deepEqual(end, { reason: "closed" });
  assert.deepEqual(got, [1, 2, 3]);
  assert.deepEqual(b.log, ["delay", "delay", "reset", "delay", "delay", "reset"]);
  assert.deepEqual(breaks, [Code.Unavailable, Code.Unavailable, Code.Unavailable, undefined]);
  assert.equal(live, 2);
  assert.ok(o.signals.every((s) => s.aborted), "every stream is ended once the watch is done with it");
});

test("resume: stops on each final code, without waiting or reopening", async () => {
  for (const code of FINAL_CODES) {
    const o = opener<number>([{ msgs: [1], end: new ConnectError("no", code) }, { msgs: [2] }]);
    const b = recordingBackoff();
    const finals: ConnectError[] = [];
    const breaks: unknown[] = [];
    const end = await resume({
      open: o.open,
      backoff: b.policy,
      onMessage: () => false,
      onBreak: (err) => breaks.push(err),
      onFinalError: (err) => finals.push(err),
    }).done;
    assert.equal(end.reason, "final", Code[code]);
    assert.equal(end.reason === "final" && end.error.code, code);
    assert.deepEqual(finals.map((e) => e.code), [code]);
    assert.equal(o.signals.length, 1, `${Code[code]} must not be retried`);
    assert.deepEqual(breaks, []);
    assert.ok(!b.log.includes("delay"));
  }
});

test("resume: retries Unavailable, Internal, network errors and every other code", async () => {
  const retried = [Code.Unavailable, Code.Internal, Code.Unknown, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted, Code.Canceled];
  const errors: unknown[] = [...retried.map((c) => new ConnectError("again", c)), new TypeError("Failed to fetch")];
  for (const err of errors) {
    const o = opener<number>([{ msgs: [], end: err }, { msgs: [7] }]);
    const end = await resume({ open: o.open, backoff: recordingBackoff().policy, onMessage: (m) => m === 7 }).done;
    assert.deepEqual(end, { reason: "closed" }, String(err));
    assert.equal(o.signals.length, 2);
  }
});

test("resume: aborting ends the watch as aborted, from a stream or from a wait, never as final", async () => {
  for (const during of ["stream", "wait"] as const) {
    const ctl = new AbortController();
    const o = opener<number>([during === "stream" ? { msgs: [1], hang: true } : { msgs: [], end: unavailable() }]);
    let finals = 0;
    const w = resume({
      open: o.open,
      signal: ctl.signal,
      backoff: recordingBackoff(60_000).policy,
      onMessage: () => false,
      onFinalError: () => finals++,
    });
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    ctl.abort();
    assert.deepEqual(await w.done, { reason: "aborted" });
    assert.ok(Date.now() - t0 < 1000, `${during}: abort took ${Date.now() - t0} ms`);
    assert.equal(finals, 0);
    assert.equal(o.signals.length, 1);
  }
});

test("resume: reconnect() opens a new stream at once, from a live stream or a wait", async () => {
  const o = opener<number>([{ msgs: [1], hang: true }, { msgs: [], end: unavailable() }, { msgs: [2] }]);
  const b = recordingBackoff(60_000);
  const got: number[] = [];
  let sawOne!: () => void;
  const one = new Promise<void>((r) => (sawOne = r));
  const w = resume({
    open: o.open,
    backoff: b.policy,
    onMessage: (m) => {
      got.push(m);
      if (m === 1) sawOne();
      return m === 2;
    },
  });
  await one;
  w.reconnect(); // drops the live stream: the next opens without a wait
  while (o.signals.length < 2 || !b.log.includes("delay")) await new Promise((r) => setTimeout(r, 5));
  w.reconnect(); // cuts the 60 s wait after the second stream broke
  assert.deepEqual(await w.done, { reason: "closed" });
  assert.deepEqual(got, [1, 2]);
  assert.equal(o.signals.length, 3);
  assert.ok(o.signals[0].aborted);
});

// ---- the four watches over resume -------------------------------------------------

const msg = (seq: bigint, state = ChatState.ACTIVE): WatchChatResponse =>
  create(WatchChatResponseSchema, { state, event: { chatId: "c1", seq, kind: { case: "message", value: { text: `m${seq}` } } } });
const typing = (): WatchChatResponse =>
  create(WatchChatResponseSchema, { state: ChatState.ACTIVE, event: { chatId: "c1", kind: { case: "typing", value: { typing: true } } } });
const closed = (seq: bigint): WatchChatResponse =>
  create(WatchChatResponseSchema, { state: ChatState.CLOSED, event: { chatId: "c1", seq, kind: { case: "closed", value: {} } } });

function chatClient(conns: Conn<WatchChatResponse>[], reqs: WatchChatRequest[]): ChatClient {
  const client = {
    watchChat(req: WatchChatRequest, opts: { signal: AbortSignal }) {
      reqs.push(req);
      const c = conns.shift();
      if (!c) throw new Error("no more scripted connections");
      return stream(c, opts.signal);
    },
  };
  return client as unknown as ChatClient;
}

test("watchChatResuming: resumes from the last seq and delivers every stored event exactly once", async () => {
  const reqs: WatchChatRequest[] = [];
  const client = chatClient(
    [
      { msgs: [msg(1n, ChatState.WAITING), msg(2n, ChatState.WAITING), msg(3n)], end: unavailable() },
      // A careless server repeats 3 and 2; a typing event has no seq.
      { msgs: [msg(2n), msg(3n), typing(), msg(4n), closed(5n)] },
    ],
    reqs,
  );
  const seqs: bigint[] = [];
  const states: ChatState[] = [];
  const conn: string[] = [];
  let typings = 0;
  const end = await watchChatResuming(client, "c1", {
    onEvent: (ev) => (ev.kind.case === "typing" ? typings++ : seqs.push(ev.seq)),
    onState: (s) => states.push(s),
    onConnection: (live, err) => conn.push(live ? "live" : `down:${err ? Code[err.code] : ""}`),
  });
  assert.deepEqual(end, { reason: "closed" });
  assert.deepEqual(seqs, [1n, 2n, 3n, 4n, 5n]);
  assert.equal(typings, 1);
  assert.deepEqual(reqs.map((r) => [r.chatId, r.afterSeq]), [["c1", 0n], ["c1", 3n]]);
  assert.deepEqual(states, [ChatState.WAITING, ChatState.ACTIVE, ChatState.CLOSED]);
  assert.deepEqual(conn, ["live", "down:Unavailable", "live"]);
});

test("watchChatResuming: starts after afterSeq and ends on a final error", async () => {
  const reqs: WatchChatRequest[] = [];
  const client = chatClient([{ msgs: [], end: new ConnectError("unknown or expired visitor token", Code.Unauthenticated) }], reqs);
  let final: ConnectError | undefined;
  const end = await watchChatResuming(client, "c1", { afterSeq: 7n, onEvent: () => {}, onFinalError: (e) => (final = e) });
  assert.equal(end.reason, "final");
  assert.equal(final?.code, Code.Unauthenticated);
  assert.equal(reqs[0].afterSeq, 7n);
});

const inboxEvent = (chatId: string, seq: bigint): WatchInboxResponse =>
  create(WatchInboxResponseSchema, { kind: { case: "event", value: { chatId, seq, kind: { case: "message", value: { text: "m" } } } } });
const removed = (chatId: string): WatchInboxResponse => create(WatchInboxResponseSchema, { kind: { case: "chatRemoved", value: { chatId } } });
const snapshotDone = (): WatchInboxResponse => create(WatchInboxResponseSchema, { kind: { case: "snapshotDone", value: {} } });

test("watchInboxResuming: resumes every chat from its own last seq; a removed chat is forgotten", async () => {
  const reqs: Record<string, bigint>[] = [];
  const conns: Conn<WatchInboxResponse>[] = [
    { msgs: [inboxEvent("c1", 1n), inboxEvent("c1", 2n), inboxEvent("c2", 1n)], end: unavailable() },
    { msgs: [inboxEvent("c1", 2n), inboxEvent("c1", 3n), removed("c2")], end: unavailable() },
    { msgs: [snapshotDone()], hang: true },
  ];
  const client = {
    watchInbox(req: WatchInboxRequest, opts: { signal: AbortSignal }) {
      reqs.push({ ...req.afterSeq });
      return stream(conns.shift()!, opts.signal);
    },
  } as unknown as ChatClient;
  const ctl = new AbortController();
  const got: string[] = [];
  let connected = 0;
  let disconnected = 0;
  const w = watchInboxResuming(client, {
    signal: ctl.signal,
    afterSeq: new Map([["c9", 4n]]),
    onConnected: () => connected++,
    onDisconnected: () => disconnected++,
    onMessage: (res) => {
      if (res.kind.case === "event") got.push(`${res.kind.value.chatId}:${res.kind.value.seq}`);
      else if (res.kind.case === "chatRemoved") got.push(`removed ${res.kind.value.chatId}`);
      else if (res.kind.case === "snapshotDone") ctl.abort();
    },
  });
  assert.deepEqual(await w.done, { reason: "aborted" });
  assert.deepEqual(got, ["c1:1", "c1:2", "c2:1", "c1:3", "removed c2"]);
  assert.deepEqual(reqs, [{ c9: 4n }, { c9: 4n, c1: 2n, c2: 1n }, { c9: 4n, c1: 3n }]);
  assert.equal(connected, 3);
  assert.equal(disconnected, 2);
  assert.equal(w.lastSeq("c1"), 3n);
  w.forget("c1");
  assert.equal(w.lastSeq("c1"), 0n);
});

test("watchVisitResuming: reconnects, reports each start, and ends when the visit ends", async () => {
  const started = (id: string): WatchVisitResponse => create(WatchVisitResponseSchema, { kind: { case: "started", value: { visitorId: id } } });
  const conns: Conn<WatchVisitResponse>[] = [
    { msgs: [started("v1"), create(WatchVisitResponseSchema, { kind: { case: "invitation", value: { invitationId: "i1" } } })], end: unavailable() },
    { msgs: [started("v1"), create(WatchVisitResponseSchema, { kind: { case: "ended", value: {} } })] },
  ];
  const client = { watchVisit: (_req: unknown, opts: { signal: AbortSignal }) => stream(conns.shift()!, opts.signal) } as unknown as MonitorClient;
  const log: string[] = [];
  const end = await watchVisitResuming(client, {
    onStarted: (id) => log.push(`started ${id}`),
    onInvitation: (inv) => log.push(`invitation ${inv.invitationId}`),
    onDisconnected: (err) => log.push(`down ${err ? Code[err.code] : ""}`),
  });
  assert.deepEqual(end, { reason: "closed" });
  assert.deepEqual(log, ["started v1", "invitation i1", "down Unavailable", "started v1"]);
});

test("watchVisitorsResuming: each connection is announced before its snapshot; a signed-out operator ends it", async () => {
  const snap = (): WatchVisitorsResponse => create(WatchVisitorsResponseSchema, { snapshotDone: true });
  const conns: Conn<WatchVisitorsResponse>[] = [
    { msgs: [snap()], end: unavailable() },
    { msgs: [snap()], end: new ConnectError("signed out", Code.Unauthenticated) },
  ];
  const client = { watchVisitors: (_req: unknown, opts: { signal: AbortSignal }) => stream(conns.shift()!, opts.signal) } as unknown as MonitorClient;
  const log: string[] = [];
  const end = await watchVisitorsResuming(client, {
    onConnected: () => log.push("connected"),
    onMessage: (res) => log.push(res.snapshotDone ? "snapshot" : "update"),
    onDisconnected: () => log.push("down"),
    onFinalError: (err) => log.push(`final ${Code[err.code]}`),
  });
  assert.equal(end.reason, "final");
  assert.deepEqual(log, ["connected", "snapshot", "down", "connected", "snapshot", "final Unauthenticated"]);
});
