/**
 * The visit as the loader reports it, in pure functions (unit-tested, and
 * inlined into widget.js by esbuild): what to tell the server next, whether
 * tracking is allowed at all, and the Connect envelopes of the WatchVisit
 * stream, which the loader speaks by hand over fetch.
 */

/** A page view as the host reports it, cut to the server's limits. */
export interface PageView {
  url: string;
  title: string;
  referrer: string;
}

/** What the host page reported, and what of it the server has yet to hear. */
export interface VisitState {
  /** The page token; empty before the first page view and after the visit ended. */
  token: string;
  /** The page being viewed. */
  page: PageView | undefined;
  /** The server has yet to hear of page (or of any page of a new visit). */
  pageDirty: boolean;
  /** The page's custom data, sent again to a new visit. */
  pageData: Record<string, string> | undefined;
  /** Custom data not yet sent. */
  pendingData: Record<string, string> | undefined;
  /** A ticket not yet sent; it rides on the next page view if there is one. */
  pendingTicket: string;
}

export type VisitCall = "track" | "data" | "identify";

/**
 * nextVisitCall says what to tell the server next, one call at a time and in
 * order: the page view (which starts a visit and carries a pending ticket),
 * then the custom data, then a ticket. Nothing is sent before the first page view.
 */
export function nextVisitCall(s: VisitState): VisitCall | undefined {
  if (!s.page) return undefined;
  if (!s.token || s.pageDirty) return "track";
  if (s.pendingData) return "data";
  if (s.pendingTicket) return "identify";
  return undefined;
}

/**
 * trackingAllowed tells whether the loader may report the visit before the
 * visitor opens the chat: not when the browser sends Global Privacy Control,
 * not for the rest of the session once the visitor asked to stop (or the
 * server honoured GPC), and not when the account turned monitoring off,
 * unless the visit already started in this session (the visitor opened the
 * chat on an earlier page) or the visitor is opening it now.
 */
export function trackingAllowed(gpc: unknown, noTrack: string, monitoringDisabled = false, started = false): boolean {
  return gpc !== true && !noTrack && (!monitoringDisabled || started);
}

/** The Connect codes after which reconnecting cannot help: the visit is unknown, start a new one. */
export const FINAL_CODES = ["unauthenticated", "permission_denied", "not_found", "invalid_argument", "failed_precondition", "unimplemented"];

/** envelope frames one JSON message for a Connect streaming request: [flags 0][uint32 BE length][JSON]. */
export function envelope(msg: unknown): Uint8Array<ArrayBuffer> {
  const body = new TextEncoder().encode(JSON.stringify(msg));
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

/** A Connect stream frame: flags (0x02 = end of stream) and its JSON. */
export interface Frame {
  flags: number;
  data: unknown;
}

/**
 * readFrames takes the complete frames off the front of buf and returns them
 * with the bytes left over (a frame still arriving). A frame that is not JSON
 * is given as data undefined.
 */
export function readFrames(buf: Uint8Array): { frames: Frame[]; rest: Uint8Array<ArrayBuffer> } {
  const frames: Frame[] = [];
  let at = 0;
  while (buf.length - at >= 5) {
    const len = new DataView(buf.buffer, buf.byteOffset + at + 1, 4).getUint32(0);
    if (buf.length - at - 5 < len) break;
    let data: unknown;
    try {
      data = JSON.parse(new TextDecoder().decode(buf.subarray(at + 5, at + 5 + len)));
    } catch {
      data = undefined;
    }
    frames.push({ flags: buf[at], data });
    at += 5 + len;
  }
  return { frames, rest: buf.slice(at) };
}

/** backoffDelay is the wait before reconnect attempt n (0-based): 250 ms doubling to 5 s, with jitter. */
export function backoffDelay(n: number, rnd = Math.random()): number {
  const base = Math.min(5000, 250 * 2 ** Math.min(n, 5));
  return Math.round(base * (0.5 + rnd / 2));
}
