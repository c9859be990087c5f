/**
 * Who is on the website, as data: the WatchVisitors stream's snapshot and
 * coalesced batches applied to a list, and what each batch changed (who
 * joined, who changed, who left), so the Visitors page can update only the
 * rows concerned. Pure, and unit-tested (visitorlist.test.ts).
 */
import type { Visitor, WatchVisitorsResponse } from "@lethe/sdk";
import { millis } from "./format";

export interface VisitorEntry {
  readonly visitor: Visitor;
  /** When the visit began, in ms (the console's clock if the server gave none). */
  readonly firstSeen: number;
}

export interface VisitorList {
  readonly visitors: ReadonlyMap<string, VisitorEntry>;
  /**
   * Between a (re)connect and the batch with snapshot_done: the visitors the
   * new snapshot mentioned. undefined outside a snapshot.
   */
  readonly snapshot: ReadonlySet<string> | undefined;
}

/** What one batch changed; every id is in at most one list. */
export interface VisitorChanges {
  /** New on the list. */
  readonly joined: string[];
  /** Already on the list, with new data. */
  readonly updated: string[];
  /** Were on the list, and are not any more. */
  readonly left: string[];
  /** This batch ended a snapshot. */
  readonly snapshotDone: boolean;
}

export function emptyVisitorList(): VisitorList {
  return { visitors: new Map(), snapshot: undefined };
}

/** visitorsConnected starts a snapshot: the stream (re)connected. */
export function visitorsConnected(l: VisitorList): VisitorList {
  return { ...l, snapshot: new Set() };
}

/** applyVisitors applies one batch received at `now` (ms). The list passed in is never changed. */
export function applyVisitors(l: VisitorList, res: WatchVisitorsResponse, now: number): { list: VisitorList; changes: VisitorChanges } {
  const visitors = new Map(l.visitors);
  const snapshot = l.snapshot && new Set(l.snapshot);
  for (const v of res.visitors) {
    snapshot?.add(v.visitorId);
    const prev = visitors.get(v.visitorId);
    visitors.set(v.visitorId, { visitor: v, firstSeen: prev?.firstSeen ?? (millis(v.firstSeen) || now) });
  }
  for (const id of res.leftVisitorIds) visitors.delete(id);
  const snapshotDone = !!snapshot && res.snapshotDone;
  if (snapshotDone) {
    // Whoever the new snapshot does not mention left while the stream was down.
    for (const id of [...visitors.keys()]) if (!snapshot.has(id)) visitors.delete(id);
  }

  const joined: string[] = [];
  const updated: string[] = [];
  const seen = new Set<string>();
  for (const v of res.visitors) {
    const id = v.visitorId;
    if (seen.has(id) || !visitors.has(id)) continue;
    seen.add(id);
    (l.visitors.has(id) ? updated : joined).push(id);
  }
  const left = [...l.visitors.keys()].filter((id) => !visitors.has(id));
  return {
    list: { visitors, snapshot: snapshotDone ? undefined : snapshot },
    changes: { joined, updated, left, snapshotDone },
  };
}

/** newestFirst orders visitor ids by when their visit began, the latest first. */
export function newestFirst(l: VisitorList): string[] {
  return [...l.visitors.values()]
    .sort((a, b) => b.firstSeen - a.firstSeen || (a.visitor.visitorId < b.visitor.visitorId ? -1 : 1))
    .map((e) => e.visitor.visitorId);
}
