/**
 * The operator's inbox as data: what the one WatchInbox stream has said so
 * far (the queue, the operator's own chats, colleagues' presence) and what
 * the operator did with it (the chat on screen, unread counts). reduceInbox
 * applies one action and lists what the page must do about it (effects); it
 * touches no DOM, timer or network, so every rule here is unit-tested
 * (inbox.test.ts) and the chats page (chats.ts) only draws the result.
 *
 * The SDK's watchInboxResuming already drops events it delivered before, but
 * it forgets a chat when the chat leaves the operator's list. A chat that is
 * still on screen then (transferred away, say) keeps its log here, and if it
 * comes back the server replays its whole history: the per-chat lastSeq
 * below is what keeps that replay from doubling the log.
 */
import {
  AuthorKind,
  ChatState,
  OperatorStatus,
  timestampDate,
  type ChatEvent,
  type ChatSummary,
  type OperatorPresence,
  type WatchInboxResponse,
} from "@lethe/sdk";

/** Why a chat on screen is no longer in the operator's lists. */
export type Detached =
  | { why: "ended" }
  | { why: "taken" }
  | { why: "unassigned" }
  | { why: "missing" }
  | { why: "transferred"; to: string };

/** One chat the console knows: queued, the operator's, or on screen after it left. */
export interface ChatEntry {
  readonly id: string;
  /** The latest summary; undefined once the chat left the lists (it stays while on screen). */
  readonly summary: ChatSummary | undefined;
  /** The highest stored seq shown in the chat's log (0n: none). */
  readonly lastSeq: bigint;
  /** Visitor messages that arrived while another chat was on screen. */
  readonly unread: number;
  /** A closed event was shown. */
  readonly closed: boolean;
  /** Set while the chat is on screen but out of the lists (or handed over): why. */
  readonly detached: Detached | undefined;
  /** The summary lastSeq for which a reconnect was already asked (see "gapCheck"). */
  readonly gapTried: bigint;
}

export interface InboxState {
  /** The signed-in operator's id. */
  readonly me: string;
  readonly chats: ReadonlyMap<string, ChatEntry>;
  /** Every operator of the account whose presence the stream reported, by id. */
  readonly presence: ReadonlyMap<string, OperatorPresence>;
  /** The chat on screen ("" for none). */
  readonly selected: string;
  /**
   * Between a (re)connect and its snapshot_done: the chats the new snapshot
   * mentioned. undefined outside a snapshot.
   */
  readonly snapshot: ReadonlySet<string> | undefined;
  /** The first snapshot is complete: from then on new chats beep and messages count as unread. */
  readonly ready: boolean;
}

export type InboxAction =
  /** The stream (re)connected: a fresh snapshot follows. */
  | { kind: "connected" }
  /** One response of the stream. */
  | { kind: "message"; res: WatchInboxResponse }
  /** AcceptChat succeeded: the chat is the operator's and goes on screen. */
  | { kind: "accepted"; summary: ChatSummary }
  | { kind: "select"; chatId: string }
  /** The operator closed the banner of a chat that left the lists (or ended). */
  | { kind: "dismiss"; chatId: string }
  /** TransferChat succeeded. */
  | { kind: "transferred"; chatId: string; to: string }
  /** A "checkGap" effect's wait is over. */
  | { kind: "gapCheck"; chatId: string; want: bigint };

export type InboxEffect =
  /** Show this event in the chat's log (new stored events once each; typing always). */
  | { kind: "show"; chatId: string; event: ChatEvent }
  /** A visitor joined the queue after the first snapshot. */
  | { kind: "beep" }
  /**
   * The summary of one of the operator's chats names events the stream has
   * not delivered. Some servers push them a moment later; dispatch a
   * "gapCheck" after a short wait.
   */
  | { kind: "checkGap"; chatId: string; want: bigint }
  /** Reconnect the stream (it resumes after the seqs seen, so the gap is filled). */
  | { kind: "reconnect" }
  /** The chat is gone from the state: free its view. */
  | { kind: "drop"; chatId: string }
  /** The server reports the operator's own status (set elsewhere, say in another tab). */
  | { kind: "status"; status: OperatorStatus };

export interface InboxResult {
  readonly state: InboxState;
  readonly effects: readonly InboxEffect[];
}

export function initialInbox(me: string): InboxState {
  return { me, chats: new Map(), presence: new Map(), selected: "", snapshot: undefined, ready: false };
}

/** reduceInbox applies one action. The state passed in is never changed. */
export function reduceInbox(s: InboxState, a: InboxAction): InboxResult {
  const fx: InboxEffect[] = [];
  const state = apply(s, a, fx);
  return { state, effects: fx };
}

function apply(s: InboxState, a: InboxAction, fx: InboxEffect[]): InboxState {
  switch (a.kind) {
    case "connected":
      return { ...s, snapshot: new Set(), presence: new Map() };
    case "message":
      return onMessage(s, a.res, fx);
    case "accepted":
      return select(summary(s, a.summary, fx), a.summary.chatId, fx);
    case "select":
      return select(s, a.chatId, fx);
    case "dismiss":
      return dismiss(s, a.chatId, fx);
    case "transferred": {
      const e = s.chats.get(a.chatId);
      return e ? put(s, { ...e, detached: { why: "transferred", to: a.to } }) : s;
    }
    case "gapCheck": {
      const e = s.chats.get(a.chatId);
      if (!e || e.lastSeq >= a.want || e.gapTried >= a.want) return s;
      fx.push({ kind: "reconnect" });
      return put(s, { ...e, gapTried: a.want });
    }
  }
}

function onMessage(s: InboxState, res: WatchInboxResponse, fx: InboxEffect[]): InboxState {
  const k = res.kind;
  switch (k.case) {
    case "snapshotDone": {
      let next = s;
      if (s.snapshot) {
        // Whatever the new snapshot did not mention ended or left while the stream was down.
        for (const [id, e] of s.chats) if (e.summary && !s.snapshot.has(id)) next = remove(next, id, { why: "missing" }, fx);
      }
      return { ...next, snapshot: undefined, ready: true };
    }
    case "chatUpdated":
      return summary(s, k.value, fx);
    case "chatRemoved":
      return remove(s, k.value.chatId, { why: "unassigned" }, fx);
    case "event":
      return event(s, k.value, fx);
    case "presence": {
      const p = k.value;
      if (p.operatorId === s.me && (p.status === OperatorStatus.ONLINE || p.status === OperatorStatus.AWAY)) {
        fx.push({ kind: "status", status: p.status });
      }
      return { ...s, presence: new Map(s.presence).set(p.operatorId, p) };
    }
    case undefined:
      return s;
  }
}

function blank(id: string): ChatEntry {
  return { id, summary: undefined, lastSeq: 0n, unread: 0, closed: false, detached: undefined, gapTried: 0n };
}

function put(s: InboxState, e: ChatEntry): InboxState {
  return { ...s, chats: new Map(s.chats).set(e.id, e) };
}

function drop(s: InboxState, id: string, fx: InboxEffect[]): InboxState {
  const chats = new Map(s.chats);
  chats.delete(id);
  fx.push({ kind: "drop", chatId: id });
  return { ...s, chats };
}

function summary(s: InboxState, c: ChatSummary, fx: InboxEffect[]): InboxState {
  const seen = s.snapshot && !s.snapshot.has(c.chatId) ? { ...s, snapshot: new Set(s.snapshot).add(c.chatId) } : s;
  const mine = isMine(s, c);
  if (c.state !== ChatState.WAITING && !mine) {
    return remove(seen, c.chatId, c.state === ChatState.CLOSED ? { why: "ended" } : { why: "taken" }, fx);
  }
  const prev = s.chats.get(c.chatId) ?? blank(c.chatId);
  const e: ChatEntry = { ...prev, summary: c, detached: undefined };
  if (c.state === ChatState.WAITING && prev.summary?.state !== ChatState.WAITING && s.ready && !s.snapshot) {
    fx.push({ kind: "beep" });
  }
  if (mine && c.lastSeq > e.lastSeq && e.gapTried < c.lastSeq) fx.push({ kind: "checkGap", chatId: c.chatId, want: c.lastSeq });
  return put(seen, e);
}

/** remove takes a chat out of the lists; the one on screen stays, with the reason. */
function remove(s: InboxState, id: string, why: Detached, fx: InboxEffect[]): InboxState {
  const e = s.chats.get(id);
  if (!e) return s;
  if (s.selected !== id) return drop(s, id, fx);
  // A transfer the operator made explains the removal that follows it better.
  const detached: Detached = e.closed ? { why: "ended" } : e.detached ?? why;
  return put(s, { ...e, summary: undefined, detached });
}

function event(s: InboxState, ev: ChatEvent, fx: InboxEffect[]): InboxState {
  const known = s.chats.get(ev.chatId);
  if (ev.seq === 0n) {
    // Typing is never stored; for a chat the console does not know it means nothing.
    if (known) fx.push({ kind: "show", chatId: ev.chatId, event: ev });
    return s;
  }
  const prev = known ?? blank(ev.chatId);
  if (ev.seq <= prev.lastSeq) return s;
  let e: ChatEntry = { ...prev, lastSeq: ev.seq };
  fx.push({ kind: "show", chatId: ev.chatId, event: ev });
  const k = ev.kind;
  if (k.case === "message" && k.value.authorKind === AuthorKind.VISITOR && s.selected !== e.id && s.ready) {
    e = { ...e, unread: e.unread + 1 };
  } else if (k.case === "closed") {
    e = { ...e, closed: true };
  } else if (k.case === "visitorUpdated" && e.summary) {
    // The visitor corrected their name or e-mail (lethe.privacy.v1 CorrectMyData).
    e = { ...e, summary: { ...e.summary, visitorName: k.value.visitorName, visitorEmail: k.value.visitorEmail } };
  }
  return put(s, e);
}

function select(s: InboxState, id: string, fx: InboxEffect[]): InboxState {
  let next = s;
  const prev = s.chats.get(s.selected);
  // A chat that left the lists is dropped once the operator moves on.
  if (prev && prev.id !== id && !prev.summary) next = drop(next, prev.id, fx);
  const e = next.chats.get(id);
  if (!e) return next === s ? s : { ...next, selected: "" };
  return { ...put(next, e.unread ? { ...e, unread: 0 } : e), selected: id };
}

function dismiss(s: InboxState, id: string, fx: InboxEffect[]): InboxState {
  let next = s.selected === id ? { ...s, selected: "" } : s;
  const e = next.chats.get(id);
  if (e && !e.summary) next = drop(next, id, fx);
  return next;
}

// ---- views of the state --------------------------------------------------------

/** isMine says whether a chat is assigned to the signed-in operator. */
export function isMine(s: InboxState, c: ChatSummary): boolean {
  return c.state === ChatState.ACTIVE && c.operatorId === s.me;
}

const startedAt = (e: ChatEntry) => (e.summary?.startedAt ? timestampDate(e.summary.startedAt).getTime() : Infinity);
const byStart = (a: ChatEntry, b: ChatEntry) => startedAt(a) - startedAt(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** queue lists the waiting chats, longest waiting first. */
export function queue(s: InboxState): ChatEntry[] {
  return [...s.chats.values()].filter((e) => e.summary?.state === ChatState.WAITING).sort(byStart);
}

/** myChats lists the operator's open chats, oldest first. */
export function myChats(s: InboxState): ChatEntry[] {
  return [...s.chats.values()].filter((e) => e.summary && isMine(s, e.summary)).sort(byStart);
}

/** unreadTotal counts unread visitor messages over all chats. */
export function unreadTotal(s: InboxState): number {
  let n = 0;
  for (const e of s.chats.values()) n += e.unread;
  return n;
}

/** transferTargets lists the colleagues a chat can go to: online, by name. */
export function transferTargets(s: InboxState): OperatorPresence[] {
  return [...s.presence.values()]
    .filter((p) => p.status === OperatorStatus.ONLINE && p.operatorId !== s.me)
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** canWrite says whether the operator can reply to, transfer, and type in a chat. */
export function canWrite(s: InboxState, e: ChatEntry): boolean {
  return !!e.summary && isMine(s, e.summary) && !e.closed;
}

/**
 * resumeSeqs is the after_seq a WatchInbox request should carry for what the
 * console shows: the highest seq shown per chat, for chats with any.
 */
export function resumeSeqs(s: InboxState): Map<string, bigint> {
  const m = new Map<string, bigint>();
  for (const e of s.chats.values()) if (e.lastSeq > 0n) m.set(e.id, e.lastSeq);
  return m;
}
