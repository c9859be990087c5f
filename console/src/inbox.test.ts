// The inbox reducer: what the console shows for each sequence of WatchInbox
// messages and operator actions. Each test names one rule; each assertion
// fails if the rule breaks.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AuthorKind,
  ChatEventSchema,
  ChatState,
  ChatSummarySchema,
  OperatorStatus,
  WatchInboxResponseSchema,
  create,
  type ChatEvent,
  type ChatSummary,
} from "@lethe/sdk";
import {
  canWrite,
  initialInbox,
  myChats,
  queue,
  reduceInbox,
  resumeSeqs,
  transferTargets,
  unreadTotal,
  type InboxAction,
  type InboxEffect,
  type InboxState,
} from "./inbox";

const ME = "op-me";
const OTHER = "op-other";

// ---- message builders -----------------------------------------------------------

function waiting(chatId: string, startedSec = 100): ChatSummary {
  return create(ChatSummarySchema, {
    chatId,
    state: ChatState.WAITING,
    visitorName: `Visitor ${chatId}`,
    startedAt: { seconds: BigInt(startedSec), nanos: 0 },
  });
}

function active(chatId: string, operatorId = ME, lastSeq = 0n, startedSec = 100): ChatSummary {
  return create(ChatSummarySchema, {
    chatId,
    state: ChatState.ACTIVE,
    visitorName: `Visitor ${chatId}`,
    operatorId,
    operatorName: operatorId === ME ? "Me" : "Other",
    lastSeq,
    startedAt: { seconds: BigInt(startedSec), nanos: 0 },
  });
}

function closedSummary(chatId: string): ChatSummary {
  return create(ChatSummarySchema, { chatId, state: ChatState.CLOSED, operatorId: ME });
}

const msg = (res: Parameters<typeof create<typeof WatchInboxResponseSchema>>[1]): InboxAction => ({
  kind: "message",
  res: create(WatchInboxResponseSchema, res),
});
const updated = (c: ChatSummary) => msg({ kind: { case: "chatUpdated", value: c } });
const removed = (chatId: string) => msg({ kind: { case: "chatRemoved", value: { chatId } } });
const done = msg({ kind: { case: "snapshotDone", value: {} } });
const connected: InboxAction = { kind: "connected" };
const presence = (operatorId: string, name: string, status: OperatorStatus) =>
  msg({ kind: { case: "presence", value: { operatorId, name, status } } });

function said(chatId: string, seq: bigint, author = AuthorKind.VISITOR, text = `text ${seq}`): ChatEvent {
  return create(ChatEventSchema, {
    chatId,
    seq,
    kind: { case: "message", value: { id: `m${seq}`, authorKind: author, authorName: "x", text } },
  });
}
const ev = (e: ChatEvent): InboxAction => msg({ kind: { case: "event", value: e } });
const typing = (chatId: string) =>
  ev(create(ChatEventSchema, { chatId, seq: 0n, kind: { case: "typing", value: { authorKind: AuthorKind.VISITOR, typing: true } } }));
const closedEvent = (chatId: string, seq: bigint) => ev(create(ChatEventSchema, { chatId, seq, kind: { case: "closed", value: {} } }));

/** run applies actions in order and collects every effect. */
function run(state: InboxState, ...actions: InboxAction[]): { state: InboxState; effects: InboxEffect[] } {
  const effects: InboxEffect[] = [];
  for (const a of actions) {
    const r = reduceInbox(state, a);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

/** A console after its first snapshot: one waiting chat "q1", one own chat "c1" with seqs 1..3. */
function ready(): InboxState {
  return run(
    initialInbox(ME),
    connected,
    updated(waiting("q1")),
    updated(active("c1", ME, 3n)),
    ev(said("c1", 1n)),
    ev(said("c1", 2n)),
    ev(said("c1", 3n)),
    done,
  ).state;
}

const shown = (effects: InboxEffect[]) =>
  effects.flatMap((e) => (e.kind === "show" ? [`${e.chatId}#${e.event.seq}`] : []));
const ids = (entries: { id: string }[]) => entries.map((e) => e.id);

// ---- snapshot -------------------------------------------------------------------

test("the first snapshot fills the queue and the operator's chats, oldest first", () => {
  const { state } = run(
    initialInbox(ME),
    connected,
    updated(waiting("late", 300)),
    updated(waiting("early", 100)),
    updated(active("mine-b", ME, 0n, 50)),
    updated(active("mine-a", ME, 0n, 20)),
    done,
  );
  assert.deepEqual(ids(queue(state)), ["early", "late"]);
  assert.deepEqual(ids(myChats(state)), ["mine-a", "mine-b"]);
  assert.equal(state.ready, true);
  assert.equal(state.snapshot, undefined);
});

test("a reconnect's snapshot replaces the queue: chats it does not mention are gone", () => {
  const before = ready();
  const { state, effects } = run(before, connected, updated(waiting("q2")), updated(active("c1", ME, 3n)), done);
  assert.deepEqual(ids(queue(state)), ["q2"], "q1 left while the stream was down");
  assert.deepEqual(ids(myChats(state)), ["c1"]);
  assert.ok(effects.some((e) => e.kind === "drop" && e.chatId === "q1"), "q1's view is freed");
  assert.equal(state.chats.get("c1")?.lastSeq, 3n, "the kept chat keeps its log position");
});

test("a chat on screen that a reconnect's snapshot does not mention stays, marked missing", () => {
  const s = run(ready(), { kind: "select", chatId: "c1" }).state;
  const { state } = run(s, connected, updated(waiting("q1")), done);
  const c1 = state.chats.get("c1");
  assert.equal(c1?.summary, undefined, "out of the lists");
  assert.deepEqual(c1?.detached, { why: "missing" });
  assert.deepEqual(ids(myChats(state)), []);
});

test("a reconnect clears presence until the new snapshot reports it again", () => {
  const s = run(ready(), presence(OTHER, "Bo", OperatorStatus.ONLINE)).state;
  assert.equal(s.presence.size, 1);
  assert.equal(run(s, connected).state.presence.size, 0);
});

// ---- events and resume ------------------------------------------------------------

test("each stored event is shown once, in order", () => {
  const { effects } = run(initialInbox(ME), connected, updated(active("c1", ME, 2n)), ev(said("c1", 1n)), ev(said("c1", 2n)), done);
  assert.deepEqual(shown(effects), ["c1#1", "c1#2"]);
});

test("a replayed event with an old seq is dropped and changes nothing", () => {
  const s = ready();
  for (const seq of [1n, 3n]) {
    const r = reduceInbox(s, ev(said("c1", seq, AuthorKind.VISITOR, "again")));
    assert.deepEqual(shown([...r.effects]), [], `seq ${seq} is not shown twice`);
    assert.equal(r.state, s, `seq ${seq} leaves the state as it was`);
  }
  const r = reduceInbox(s, ev(said("c1", 4n)));
  assert.deepEqual(shown([...r.effects]), ["c1#4"], "the next seq is shown");
});

test("the resume map holds the highest seq shown per chat", () => {
  const { state } = run(
    ready(),
    updated(active("c2", ME, 0n)),
    ev(said("c2", 1n)),
    ev(said("c2", 2n)),
    ev(said("c2", 2n)),
    ev(said("c1", 7n)),
    ev(said("c1", 5n)),
  );
  assert.deepEqual(resumeSeqs(state), new Map([["c1", 7n], ["c2", 2n]]));
  assert.equal(resumeSeqs(state).has("q1"), false, "a queued chat with no events shown is not listed");
});

test("typing events are always shown for a known chat and never move the resume point", () => {
  const s = ready();
  const r1 = reduceInbox(s, typing("c1"));
  const r2 = reduceInbox(r1.state, typing("c1"));
  assert.equal(r1.effects.length + r2.effects.length, 2, "both typing events are shown");
  assert.equal(r2.state, s, "typing is not state");
  assert.deepEqual(reduceInbox(s, typing("unknown")).effects, [], "typing for an unknown chat is ignored");
});

test("a chat transferred away while on screen and back again shows only the events it missed", () => {
  let s = run(ready(), { kind: "select", chatId: "c1" }, updated(active("c1", OTHER, 3n))).state;
  assert.equal(s.chats.get("c1")?.summary, undefined);
  // Back to me: the server replays the whole history (the SDK forgot the chat).
  const r = run(s, updated(active("c1", ME, 5n)), ...[1n, 2n, 3n, 4n, 5n].map((q) => ev(said("c1", q))));
  s = r.state;
  assert.deepEqual(shown(r.effects), ["c1#4", "c1#5"]);
  assert.deepEqual(ids(myChats(s)), ["c1"]);
  assert.equal(s.chats.get("c1")?.detached, undefined, "back in the lists: no banner");
});

// ---- leaving the lists --------------------------------------------------------------

test("a queued chat taken by another operator leaves the queue and its view is freed", () => {
  const { state, effects } = run(ready(), updated(active("q1", OTHER)));
  assert.deepEqual(ids(queue(state)), []);
  assert.equal(state.chats.has("q1"), false);
  assert.deepEqual(effects, [{ kind: "drop", chatId: "q1" }]);
});

test("a chat on screen taken by another operator stays, read-only, with the reason", () => {
  const s = run(ready(), { kind: "accepted", summary: active("q1") }).state;
  assert.equal(canWrite(s, s.chats.get("q1")!), true);
  const { state } = run(s, updated(active("q1", OTHER)));
  const q1 = state.chats.get("q1")!;
  assert.deepEqual(q1.detached, { why: "taken" });
  assert.equal(canWrite(state, q1), false, "the composer is off");
  assert.deepEqual(ids(myChats(state)), ["c1"]);
});

test("chat_removed drops a chat that is not on screen", () => {
  const { state, effects } = run(ready(), removed("c1"));
  assert.equal(state.chats.has("c1"), false);
  assert.deepEqual(effects, [{ kind: "drop", chatId: "c1" }]);
  assert.equal(resumeSeqs(state).has("c1"), false);
});

test("the operator's own transfer explains the removal that follows it", () => {
  const { state } = run(ready(), { kind: "select", chatId: "c1" }, { kind: "transferred", chatId: "c1", to: "Bo" }, removed("c1"));
  assert.deepEqual(state.chats.get("c1")?.detached, { why: "transferred", to: "Bo" });
});

test("a closed chat reads as ended, whatever removed it", () => {
  const s = run(ready(), { kind: "select", chatId: "c1" }, closedEvent("c1", 4n)).state;
  assert.equal(s.chats.get("c1")?.closed, true);
  assert.equal(canWrite(s, s.chats.get("c1")!), false);
  const r = run(s, updated(closedSummary("c1")), removed("c1"));
  assert.deepEqual(r.state.chats.get("c1")?.detached, { why: "ended" });
});

test("moving on from a chat that left the lists drops it; dismissing does too", () => {
  let r = run(ready(), updated(active("c2")), { kind: "select", chatId: "c1" }, removed("c1"));
  assert.ok(r.state.chats.has("c1"), "kept while on screen");
  r = run(r.state, { kind: "select", chatId: "c2" });
  assert.equal(r.state.chats.has("c1"), false);
  assert.deepEqual(r.effects, [{ kind: "drop", chatId: "c1" }]);
  assert.equal(r.state.selected, "c2");

  r = run(r.state, removed("c2"), { kind: "dismiss", chatId: "c2" });
  assert.equal(r.state.selected, "");
  assert.equal(r.state.chats.has("c2"), false);
});

test("dismissing the banner of a chat still listed only clears the screen", () => {
  const { state, effects } = run(ready(), { kind: "select", chatId: "c1" }, { kind: "dismiss", chatId: "c1" });
  assert.equal(state.selected, "");
  assert.ok(state.chats.has("c1"));
  assert.deepEqual(effects, []);
});

// ---- notifications and unread ------------------------------------------------------

test("a new waiting chat beeps, but not in a snapshot and not on an update", () => {
  const initial = run(initialInbox(ME), connected, updated(waiting("q1")), done);
  assert.equal(initial.effects.filter((e) => e.kind === "beep").length, 0, "not for the first snapshot");
  const s = initial.state;
  assert.deepEqual(run(s, updated(waiting("q2"))).effects, [{ kind: "beep" }]);
  assert.deepEqual(run(s, updated(waiting("q1"))).effects, [], "already waiting");
  const beeps = (effects: InboxEffect[]) => effects.filter((e) => e.kind === "beep").length;
  assert.equal(beeps(run(s, connected, updated(waiting("q1")), updated(waiting("q3")), done).effects), 0, "not for a reconnect's snapshot");
});

test("visitor messages count as unread only off screen, and selecting a chat reads them", () => {
  let s = run(ready(), updated(active("c2")), { kind: "select", chatId: "c2" }).state;
  s = run(s, ev(said("c1", 4n)), ev(said("c1", 5n, AuthorKind.OPERATOR)), ev(said("c1", 6n)), ev(said("c2", 1n))).state;
  assert.equal(s.chats.get("c1")?.unread, 2, "two visitor messages off screen; the operator's own does not count");
  assert.equal(s.chats.get("c2")?.unread, 0, "the chat on screen is read");
  assert.equal(unreadTotal(s), 2);
  s = run(s, { kind: "select", chatId: "c1" }).state;
  assert.equal(s.chats.get("c1")?.unread, 0);
  assert.equal(unreadTotal(s), 0);
});

test("history delivered in the first snapshot is not unread", () => {
  assert.equal(unreadTotal(ready()), 0);
});

// ---- gaps ------------------------------------------------------------------------------

test("a summary naming events not yet shown asks for one reconnect, only if they stay missing", () => {
  const s = ready();
  const r1 = run(s, updated(active("c1", ME, 5n)));
  assert.deepEqual(r1.effects, [{ kind: "checkGap", chatId: "c1", want: 5n }]);

  const check: InboxAction = { kind: "gapCheck", chatId: "c1", want: 5n };
  const r2 = run(r1.state, check);
  assert.deepEqual(r2.effects, [{ kind: "reconnect" }]);
  assert.deepEqual(run(r2.state, check).effects, [], "one reconnect per missing seq");
  assert.deepEqual(run(r2.state, updated(active("c1", ME, 5n))).effects, [], "no second check for the same seq");

  const filled = run(r1.state, ev(said("c1", 4n)), ev(said("c1", 5n)), check);
  assert.ok(!filled.effects.some((e) => e.kind === "reconnect"), "no reconnect once the events came");
});

test("a summary that names nothing new asks for no reconnect", () => {
  assert.deepEqual(run(ready(), updated(active("c1", ME, 3n))).effects, []);
});

// ---- presence ---------------------------------------------------------------------------

test("the server's report of the operator's own status is passed on; colleagues are transfer targets", () => {
  const r = run(
    ready(),
    presence(ME, "Me", OperatorStatus.AWAY),
    presence("op-z", "Zoe", OperatorStatus.ONLINE),
    presence("op-a", "Al", OperatorStatus.ONLINE),
    presence("op-b", "Bea", OperatorStatus.AWAY),
  );
  assert.deepEqual(r.effects, [{ kind: "status", status: OperatorStatus.AWAY }]);
  assert.deepEqual(transferTargets(r.state).map((p) => p.name), ["Al", "Zoe"], "online colleagues by name, not me");
  const later = run(r.state, presence("op-z", "Zoe", OperatorStatus.OFFLINE)).state;
  assert.deepEqual(transferTargets(later).map((p) => p.name), ["Al"]);
});

// ---- purity -------------------------------------------------------------------------------

test("the reducer never changes the state it is given", () => {
  const s = run(ready(), { kind: "select", chatId: "c1" }).state;
  const chats = new Map(s.chats);
  const c1 = s.chats.get("c1");
  run(s, removed("c1"), removed("q1"), ev(said("c1", 9n)), connected, done, { kind: "dismiss", chatId: "c1" });
  assert.deepEqual(s.chats, chats);
  assert.equal(s.chats.get("c1"), c1);
  assert.equal(s.selected, "c1");
  assert.equal(s.ready, true);
});

test("a visitor's correction renames the chat in the lists and is shown once", () => {
  const fix = create(ChatEventSchema, {
    chatId: "c1",
    seq: 4n,
    kind: { case: "visitorUpdated", value: { visitorName: "Corrected Name", visitorEmail: "new@example.com" } },
  });
  const { state, effects } = run(ready(), ev(fix), ev(fix));
  const c1 = myChats(state).find((e) => e.id === "c1");
  assert.equal(c1?.summary?.visitorName, "Corrected Name");
  assert.equal(c1?.summary?.visitorEmail, "new@example.com");
  assert.deepEqual(shown(effects), ["c1#4"]);
});
