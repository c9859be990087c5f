/**
 * The visit: what operators see of a visitor on the site, reported on every
 * page, chat or not. The panel reports the page view (Track), keeps one
 * WatchVisit stream open while the page is (it brings invitations), calls
 * Heartbeat every 30 s in case a proxy cut the stream, and calls Leave when
 * the page goes away, so that the departure is noticed within seconds and the
 * visit destroyed the retention time after it (the heartbeat stopping is only
 * the fallback). The visit token is a bearer token of its own (not the chat's
 * visitor token), kept in sessionStorage so that the visit survives navigation
 * between pages of the site.
 */
import {
  Backoff,
  Code,
  ConnectError,
  type Invitation,
  MonitorService,
  createClient,
  createLetheTransport,
  watchVisitResuming,
} from "@lethe/sdk";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { PageView } from "./host";
import { NOTRACK_KEY, VISIT_KEY, getItem, setItem } from "./storage";

const HEARTBEAT_MS = 30000;
/** Most visit calls in one sync run; the rest waits for the next heartbeat. */
const SYNC_MAX_CALLS = 8;

/** What the host page reported, and what of it the server has yet to hear. */
export interface VisitState {
  /** The visit token; empty before the first page view and after the visit ended. */
  token: string;
  /** The page the host last reported. */
  page: PageView | undefined;
  /** The server has yet to hear of page (or of any page of a new visit). */
  pageDirty: boolean;
  /** The page's custom data, sent again to a new visit. */
  pageData: Record<string, string> | undefined;
  /** Custom data not yet sent. */
  pendingData: Record<string, string> | undefined;
  /** A ticket not yet sent; it rides on the next page view if there is one. */
  pendingTicket: string;
  syncing: boolean;
  /** Aborts the open WatchVisit stream. */
  watch: AbortController | undefined;
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
 * trackingAllowed tells whether the panel may report the visit at all: not
 * when the browser sends Global Privacy Control, and not for the rest of the
 * session once the visitor asked to stop (or the server honoured GPC).
 */
export function trackingAllowed(gpc: unknown, noTrack: string): boolean {
  return gpc !== true && !noTrack;
}

export interface Visit {
  /** token is the visit token ("" when there is no visit). */
  token(): string;
  /** stop ends every visit call for the rest of the browser session (Stop tracking, GPC). */
  stop(): void;
  /** forget drops the visit (it was erased): the next page view starts a new one. */
  forget(): void;
  setPage(page: PageView): void;
  setData(data: Record<string, string>): void;
  identify(ticket: string): void;
  /** answerInvitation reports the visitor's answer (errors only to the console: the visitor chose already). */
  answerInvitation(invitationId: string, accepted: boolean): Promise<void>;
}

const debug = (what: string, err: unknown) => console.debug(`lethe: ${what}:`, ConnectError.from(err).message);

/** startVisit starts reporting the visit for accountId; invitations go to onInvitation. */
export function startVisit(accountId: string, onInvitation: (inv: Invitation) => void): Visit {
  const s: VisitState = {
    token: getItem(VISIT_KEY),
    page: undefined,
    pageDirty: false,
    pageData: undefined,
    pendingData: undefined,
    pendingTicket: "",
    syncing: false,
    watch: undefined,
  };
  const monitor = createClient(MonitorService, createLetheTransport(location.origin, { token: () => s.token || undefined }));
  // Leave is sent as the page goes away: keepalive lets the request outlive it.
  const leaving = createClient(
    MonitorService,
    createConnectTransport({
      baseUrl: location.origin,
      useBinaryFormat: true,
      fetch: (input, init) => fetch(input, { ...init, keepalive: true }),
    }),
  );
  const backoff = new Backoff();
  const allowed = () => trackingAllowed((navigator as { globalPrivacyControl?: unknown }).globalPrivacyControl, getItem(NOTRACK_KEY));
  if (!allowed()) setToken("");

  function setToken(t: string): void {
    s.token = t;
    setItem(VISIT_KEY, t);
  }

  /** gone forgets a visit the server no longer knows; the next Track starts a new one. */
  function gone(): void {
    setToken("");
    s.pageDirty = true;
  }

  function stopWatch(): void {
    s.watch?.abort();
    s.watch = undefined;
  }

  function startWatch(): void {
    const ctl = new AbortController();
    s.watch = ctl;
    void watchVisitResuming(monitor, {
      signal: ctl.signal,
      onStarted: () => backoff.reset(),
      onInvitation,
    }).then((end) => {
      if (s.watch !== ctl || end.reason === "aborted") return;
      s.watch = undefined;
      // "final": the visit token is unknown, so a new visit starts with Track.
      // "closed": the server marked the visit as left; a new stream brings it back.
      if (end.reason === "final") gone();
      setTimeout(() => {
        if (end.reason === "final") void sync();
        else if (!s.watch && s.token) startWatch();
      }, backoff.delay());
    });
  }

  /** stop ends the visit calls for the session; the server forgets the visit (StopTracking) or never had one (GPC). */
  function stop(): void {
    setItem(NOTRACK_KEY, "1");
    stopWatch();
    setToken("");
  }

  async function track(): Promise<"next" | "stop"> {
    const ticket = s.pendingTicket;
    s.pendingTicket = "";
    s.pageDirty = false;
    try {
      const res = await monitor.track({ accountId, page: s.page, ticket });
      if (res.gpcHonoured) {
        stop();
        return "stop";
      }
      if (res.visitToken && res.visitToken !== s.token) {
        // A new visit knows nothing of the page's data yet.
        setToken(res.visitToken);
        if (s.pageData && Object.keys(s.pageData).length) s.pendingData ??= s.pageData;
        stopWatch();
      }
      if (!s.watch) startWatch();
      return "next";
    } catch (err) {
      const code = ConnectError.from(err).code;
      s.pageDirty = true;
      // A bad ticket refuses the whole page view: count the page without it.
      if (ticket && [Code.NotFound, Code.FailedPrecondition, Code.PermissionDenied, Code.InvalidArgument].includes(code)) {
        debug("ticket refused", err);
        return "next";
      }
      debug("track", err);
      s.pendingTicket ||= ticket;
      return "stop"; // tried again on the next heartbeat
    }
  }

  async function sendData(data: Record<string, string>): Promise<void> {
    try {
      await monitor.setCustomData({ data });
    } catch (err) {
      if (ConnectError.from(err).code === Code.Unauthenticated) gone();
      else debug("custom data", err);
    }
  }

  async function sendTicket(ticket: string): Promise<void> {
    try {
      await monitor.identify({ ticket });
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unauthenticated) return debug("identify", err);
      gone();
      s.pendingTicket = ticket;
    }
  }

  /** sync tells the server what it has yet to hear, one call at a time, in order. */
  async function sync(): Promise<void> {
    if (s.syncing || !accountId || !allowed()) return;
    s.syncing = true;
    try {
      for (let calls = 0; calls < SYNC_MAX_CALLS; calls++) {
        const next = nextVisitCall(s);
        if (next === "track") {
          if ((await track()) === "stop") return;
        } else if (next === "data") {
          const data = s.pendingData ?? {};
          s.pendingData = undefined;
          await sendData(data);
        } else if (next === "identify") {
          const ticket = s.pendingTicket;
          s.pendingTicket = "";
          await sendTicket(ticket);
        } else {
          return;
        }
      }
    } finally {
      s.syncing = false;
    }
  }

  setInterval(() => {
    if (!allowed()) return;
    if (!s.token || s.pageDirty) return void sync();
    monitor.heartbeat({}).catch((err: unknown) => {
      if (ConnectError.from(err).code !== Code.Unauthenticated) return debug("heartbeat", err);
      stopWatch();
      gone();
      void sync();
    });
  }, HEARTBEAT_MS);

  // The host page goes away (closed, or navigating, even to another page of
  // the site: the server waits a few seconds for the next page view before
  // it counts the visitor as gone). The stream is closed too, so that a page
  // kept in the back/forward cache does not hold the visit open.
  window.addEventListener("pagehide", () => {
    if (s.token) leaving.leave({}, { headers: { Authorization: `Bearer ${s.token}` } }).catch((err: unknown) => debug("leave", err));
    stopWatch();
  });
  // Back from the back/forward cache: the page is viewed again.
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted || !s.page) return;
    s.pageDirty = true;
    void sync();
  });

  return {
    token: () => s.token,
    stop,
    forget() {
      stopWatch();
      gone();
    },
    setPage(page) {
      s.page = page;
      s.pageDirty = true;
      void sync();
    },
    setData(data) {
      s.pageData = s.pendingData = data;
      void sync();
    },
    identify(ticket) {
      s.pendingTicket = ticket;
      void sync();
    },
    async answerInvitation(invitationId, accepted) {
      try {
        await monitor.respondToInvitation({ invitationId, accepted });
      } catch (err) {
        debug("invitation answer", err);
      }
    },
  };
}
