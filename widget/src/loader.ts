/**
 * The Lethe loader runs on the customer's website. It stays tiny and imports
 * nothing but the pure functions of ./visit (inlined by esbuild). It draws the
 * launcher at once and loads the chat panel's iframe from the Lethe server
 * only when the visitor opens it (the launcher, Lethe.open()), when an
 * operator's invitation arrives, or at once when the visitor has a chat in
 * progress in this browser session (so its live stream and unread badge
 * survive navigation).
 *
 * Before that, the loader alone reports the visit, over Connect JSON with a
 * write-only page token (TrackRequest.write_only), kept in the host page's
 * sessionStorage: the page view, a heartbeat every 30 s, Leave on pagehide,
 * custom data and tickets, and one WatchVisit stream for invitations. The
 * page token can add to its own visit and read nothing; the panel claims the
 * visit token with it from its own origin (ClaimVisit). The loader sends
 * nothing but the config request when the browser sends Global Privacy
 * Control, when the visitor said "Stop tracking me" earlier in this session,
 * or, until the visitor opens the chat, when the account turned monitoring off.
 *
 * It speaks to the panel only through postMessage with an exact target origin
 * and a strict origin + source check on what it receives. No chat content
 * passes through the host page: the page sends the panel the page token and
 * an operator's invitation (which its own stream brought); the panel sends
 * back only "ready", "open", "close", an unread count, whether a chat is in
 * progress, and "stop tracking" / "forgotten".
 *
 * Styling uses CSSOM properties (el.style.x = …), which the host page's CSP
 * allows even when it forbids inline <style> and style attributes.
 */
import { jsonRpc, jsonStream, rpcCode } from "./json-rpc";
import { FINAL_CODES, type VisitState, backoffDelay, nextVisitCall, trackingAllowed } from "./visit";

/** A custom data value; numbers and booleans are sent as strings. */
type DataValue = string | number | boolean;

interface LetheApi {
  open(): void;
  close(): void;
  /**
   * setCustomData shares data about the visitor with operators, shown as
   * "from the page" (unverified). It replaces what was set before; an empty
   * object clears it. At most 20 keys of 1 to 64 characters [A-Za-z0-9_.-],
   * values at most 512 characters; anything else throws a TypeError.
   */
  setCustomData(data: Record<string, DataValue>): void;
  /** identify hands over a ticket minted by the site's back end (verified data). */
  identify(ticket: string): void;
}

declare global {
  interface Window {
    Lethe?: LetheApi;
  }
}

type PanelMessage =
  | { type: "lethe:ready" }
  | { type: "lethe:open" }
  | { type: "lethe:close" }
  | { type: "lethe:unread"; count: number }
  | { type: "lethe:chat"; active: boolean }
  | { type: "lethe:notrack" }
  | { type: "lethe:forgotten" };

/** An operator's invitation as WatchVisit brings it (Connect JSON). */
interface Invitation {
  invitationId: string;
  operatorName: string;
  message: string;
}

const ACCENT = "#4f46e5";
const HEARTBEAT_MS = 30000;
/** Most visit calls in one sync run; the rest waits for the next heartbeat. */
const SYNC_MAX_CALLS = 8;
/** The host page's sessionStorage: the page token, "stop tracking", a chat in progress, the last invitation that opened the panel. */
const TOKEN_KEY = "lethe.page";
const NOTRACK_KEY = "lethe.notrack";
const CHAT_KEY = "lethe.chat";
const INVITED_KEY = "lethe.invited";

(() => {
  const w = window;
  const d = document;
  if (w.Lethe) return; // included twice

  const script = (d.currentScript ||
    d.querySelector('script[data-account][src*="widget.js"]')) as HTMLScriptElement | null;
  const account = script?.dataset.account;
  if (!script || !account) return;
  const letheOrigin = new URL(script.src, location.href).origin;

  const css = (el: HTMLElement | SVGElement, props: Partial<CSSStyleDeclaration>) => {
    Object.assign(el.style, props);
  };
  const get = (k: string) => {
    try {
      return sessionStorage.getItem(k) || "";
    } catch {
      return "";
    }
  };
  const set = (k: string, v: string) => {
    try {
      if (v) sessionStorage.setItem(k, v);
      else sessionStorage.removeItem(k);
    } catch {
      // Storage blocked: it lasts for this page view.
    }
  };

  const rpc = (method: string, body: object, token = "", keepalive = false) => jsonRpc(letheOrigin, method, body, token, keepalive);

  // The launcher, shown once the config arrived (an unlisted website gets none).
  const btn = d.createElement("button");
  btn.id = "lethe-launcher";
  btn.type = "button";
  btn.setAttribute("aria-controls", "lethe-frame");
  btn.setAttribute("aria-expanded", "false");
  btn.setAttribute("aria-label", "Open chat");
  css(btn, {
    display: "none",
    position: "fixed",
    right: "20px",
    bottom: "20px",
    zIndex: "2147483000",
    width: "56px",
    height: "56px",
    margin: "0",
    padding: "0",
    border: "0",
    borderRadius: "50%",
    background: ACCENT,
    color: "#fff",
    cursor: "pointer",
    alignItems: "center",
    justifyContent: "center",
    boxShadow: "0 6px 20px rgba(15,23,42,.28)",
    transition: "transform .15s ease",
  });
  const svgNs = "http://www.w3.org/2000/svg";
  const icon = d.createElementNS(svgNs, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "26");
  icon.setAttribute("height", "26");
  icon.setAttribute("aria-hidden", "true");
  icon.setAttribute("focusable", "false");
  const path = d.createElementNS(svgNs, "path");
  path.setAttribute("fill", "currentColor");
  const chatIcon = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";
  const closeIcon = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z";
  path.setAttribute("d", chatIcon);
  icon.appendChild(path);
  btn.appendChild(icon);
  const badge = d.createElement("span");
  badge.setAttribute("aria-hidden", "true");
  css(badge, {
    display: "none",
    position: "absolute",
    top: "-2px",
    right: "-2px",
    minWidth: "20px",
    height: "20px",
    padding: "0 5px",
    boxSizing: "border-box",
    borderRadius: "10px",
    background: "#dc2626",
    color: "#fff",
    font: "600 12px/20px system-ui,-apple-system,Segoe UI,Roboto,sans-serif",
    textAlign: "center",
  });
  btn.appendChild(badge);

  const ui: {
    frame: HTMLIFrameElement | undefined;
    ready: boolean;
    open: boolean;
    focus: boolean;
    unread: number;
    shown: boolean;
    invitation: Invitation | undefined;
  } = { frame: undefined, ready: false, open: false, focus: false, unread: 0, shown: false, invitation: undefined };

  // The visit. cfg is undefined until the config arrived: nothing is sent before.
  const s: VisitState = { token: get(TOKEN_KEY), page: undefined, pageDirty: false, pageData: undefined, pendingData: undefined, pendingTicket: "" };
  const v: { cfg: { monitoringDisabled?: boolean } | undefined; clicked: boolean; syncing: boolean; watch: AbortController | undefined; fails: number } = {
    cfg: undefined,
    clicked: false,
    syncing: false,
    watch: undefined,
    fails: 0,
  };
  const allowed = () =>
    !!v.cfg &&
    trackingAllowed((navigator as { globalPrivacyControl?: unknown }).globalPrivacyControl, get(NOTRACK_KEY), !!v.cfg.monitoringDisabled, !!s.token || v.clicked);

  const post = (msg: object) => {
    if (ui.ready) ui.frame?.contentWindow?.postMessage(msg, letheOrigin);
  };
  const setToken = (t: string) => {
    s.token = t;
    set(TOKEN_KEY, t);
    post({ type: "lethe:visit", pageToken: t });
  };
  /** gone forgets a visit the server no longer knows; the next Track starts a new one. */
  const gone = () => {
    setToken("");
    s.pageDirty = true;
  };
  const stopWatch = () => {
    v.watch?.abort();
    v.watch = undefined;
  };
  /** stop ends the visit calls for the session (Stop tracking, GPC honoured). */
  const stop = () => {
    set(NOTRACK_KEY, "1");
    stopWatch();
    setToken("");
  };

  /** startWatch holds the WatchVisit stream (Connect streaming over fetch, JSON envelopes) for invitations. */
  const startWatch = () => {
    const ctl = new AbortController();
    v.watch = ctl;
    jsonStream(letheOrigin, "monitor.v1.MonitorService/WatchVisit", {}, s.token, ctl.signal, (m) => {
      if (m.started) v.fails = 0;
      else if (m.invitation) invited(m.invitation as Invitation);
    }).then(
      () => "",
      (e: unknown) => rpcCode(e),
    ).then((code) => {
      if (v.watch !== ctl || ctl.signal.aborted) return;
      v.watch = undefined;
      // Final: the page token is unknown (the visit ended), a new visit starts with Track.
      const final = FINAL_CODES.includes(code);
      if (final) gone();
      setTimeout(() => {
        if (final) void sync();
        else if (!v.watch && s.token && allowed()) startWatch();
      }, backoffDelay(v.fails++));
    });
  };

  const track = async (): Promise<boolean> => {
    const ticket = s.pendingTicket;
    s.pendingTicket = "";
    s.pageDirty = false;
    try {
      const res = await rpc("monitor.v1.MonitorService/Track", { accountId: account, page: s.page, ticket, writeOnly: true }, s.token);
      if (res.gpcHonoured) {
        stop();
        return false;
      }
      const t = res.pageToken;
      if (typeof t === "string" && t && t !== s.token) {
        // A new visit knows nothing of the page's data yet.
        stopWatch();
        setToken(t);
        if (s.pageData && Object.keys(s.pageData).length) s.pendingData ??= s.pageData;
      }
      if (!v.watch) startWatch();
      return true;
    } catch (e) {
      s.pageDirty = true;
      const code = rpcCode(e);
      // A bad ticket refuses the whole page view: count the page without it.
      if (ticket && ["not_found", "failed_precondition", "permission_denied", "invalid_argument"].includes(code)) return true;
      // A website the account does not list: no launcher (its panel would be refused too).
      if (code === "permission_denied" && !ui.ready) {
        ui.shown = false;
        render();
      }
      s.pendingTicket ||= ticket;
      return false; // tried again on the next heartbeat
    }
  };

  /** call sends custom data or a ticket; an unknown page token starts a new visit (the ticket kept for it). */
  const call = async (method: string, body: object, ticket = "") => {
    try {
      await rpc(`monitor.v1.MonitorService/${method}`, body, s.token);
    } catch (e) {
      if (rpcCode(e) !== "unauthenticated") return;
      gone();
      s.pendingTicket ||= ticket;
    }
  };

  /** sync tells the server what it has yet to hear, one call at a time, in order. */
  const sync = async () => {
    if (v.syncing || !allowed()) return;
    v.syncing = true;
    try {
      for (let n = 0; n < SYNC_MAX_CALLS; n++) {
        const next = nextVisitCall(s);
        if (next === "track") {
          if (!(await track())) return;
        } else if (next === "data") {
          const data = s.pendingData || {};
          s.pendingData = undefined;
          await call("SetCustomData", { data });
        } else if (next === "identify") {
          const ticket = s.pendingTicket;
          s.pendingTicket = "";
          await call("Identify", { ticket }, ticket);
        } else {
          return;
        }
      }
    } finally {
      v.syncing = false;
    }
  };

  const setPage = () => {
    s.page = { url: location.href.slice(0, 2048), title: d.title.slice(0, 300), referrer: d.referrer.slice(0, 2048) };
    s.pageDirty = true;
    void sync();
  };

  const identify = (ticket: unknown) => {
    if (typeof ticket !== "string" || !ticket) throw new TypeError("Lethe.identify: the ticket must be a non-empty string");
    s.pendingTicket = ticket;
    void sync();
  };
  const setCustomData = (obj: unknown) => {
    const fail = (why: string) => {
      throw new TypeError(`Lethe.setCustomData: ${why}`);
    };
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) fail("expects an object");
    const data: Record<string, string> = {};
    const keys = Object.keys(obj as object);
    if (keys.length > 20) fail("at most 20 keys");
    for (const k of keys) {
      const val: unknown = (obj as Record<string, unknown>)[k];
      if (!/^[\w.-]{1,64}$/.test(k)) fail(`bad key "${k}" (1 to 64 of A-Z a-z 0-9 _ . -)`);
      if (typeof val === "number" ? !isFinite(val) : typeof val !== "string" && typeof val !== "boolean") {
        fail(`"${k}" must be a string, number or boolean`);
      }
      const str = String(val);
      if ([...str].length > 512) fail(`"${k}" is over 512 characters`);
      data[k] = str;
    }
    s.pageData = s.pendingData = data;
    void sync();
  };
  if (script.dataset.ticket) identify(script.dataset.ticket);

  const small = w.matchMedia("(max-width: 480px)");
  const layout = () => {
    const f = ui.frame;
    if (!f) return;
    if (small.matches) {
      css(f, { inset: "0", width: "100%", height: "100%", maxHeight: "none", borderRadius: "0" });
    } else {
      css(f, {
        inset: "auto",
        right: "20px",
        bottom: "88px",
        width: "380px",
        height: "560px",
        maxHeight: "calc(100vh - 108px)",
        borderRadius: "16px",
      });
    }
  };
  small.addEventListener?.("change", layout);

  const render = () => {
    const { open, unread } = ui;
    btn.setAttribute("aria-expanded", String(open));
    btn.setAttribute("aria-label", open ? "Close chat" : unread ? `Open chat (${unread} unread)` : "Open chat");
    path.setAttribute("d", open ? closeIcon : chatIcon);
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.style.display = unread && !open ? "block" : "none";
    if (ui.frame) ui.frame.style.display = open ? "block" : "none";
    // On small screens the panel covers the page, the launcher included.
    btn.style.display = (ui.shown || ui.ready) && !(open && small.matches) ? "flex" : "none";
  };

  /** loadPanel creates the panel's iframe (hidden until opened) the first time it is needed. */
  const loadPanel = () => {
    if (ui.frame || !d.body) return;
    const frame = (ui.frame = d.createElement("iframe"));
    frame.id = "lethe-frame";
    frame.title = "Chat";
    frame.src = `${letheOrigin}/widget/panel?account=${encodeURIComponent(account)}&host=${encodeURIComponent(location.origin)}`;
    // On a foreign site the sandbox keeps the panel from navigating the page or
    // opening pop-ups; it may download (a file shared in the chat, from a
    // single-use link on the Lethe origin). Same-origin (the demo page) it
    // would be meaningless, and browsers warn about it, so it is left off there.
    if (letheOrigin !== location.origin) frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms allow-downloads");
    frame.setAttribute("referrerpolicy", "origin");
    css(frame, {
      display: "none",
      position: "fixed",
      zIndex: "2147483000",
      border: "0",
      margin: "0",
      padding: "0",
      background: "#fff",
      colorScheme: "light",
      boxShadow: "0 12px 48px rgba(15,23,42,.24), 0 2px 8px rgba(15,23,42,.12)",
    });
    layout();
    d.body.insertBefore(frame, btn.parentNode ? btn : null);
    render();
  };

  // focus is false when the panel opens itself (an invitation): the visitor
  // may be typing in the page, so keyboard focus stays where it is.
  const setOpen = (next: boolean, focus = true) => {
    if (next === ui.open) return;
    ui.open = next;
    if (next) {
      ui.unread = 0;
      ui.focus = focus;
      if (focus && !v.clicked) {
        // The visitor opens the chat: with monitoring off, the visit starts now.
        v.clicked = true;
        void sync();
      }
      loadPanel();
      render();
      if (ui.ready) {
        post({ type: "lethe:open" });
        if (focus) ui.frame?.focus();
      }
    } else {
      render();
      post({ type: "lethe:close" });
      btn.focus();
    }
  };

  /**
   * invited hands an operator's invitation to the panel, loading it the
   * first time the invitation arrives; the panel decides whether to open
   * itself. Repeated on a later page (the stream sends the pending one
   * again), it only shows a badge until the visitor opens the panel.
   */
  const invited = (inv: Invitation) => {
    if (!inv || typeof inv.invitationId !== "string") return;
    const i = { invitationId: inv.invitationId, operatorName: String(inv.operatorName || ""), message: String(inv.message || "") };
    ui.invitation = i;
    if (ui.ready) return post({ type: "lethe:invitation", invitation: i });
    if (ui.frame) return;
    if (get(INVITED_KEY) === i.invitationId) {
      ui.unread = ui.unread || 1;
      return render();
    }
    set(INVITED_KEY, i.invitationId);
    loadPanel();
  };

  w.addEventListener("message", (e: MessageEvent) => {
    if (!ui.frame || e.origin !== letheOrigin || e.source !== ui.frame.contentWindow) return;
    const msg = e.data as PanelMessage | null;
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "lethe:ready":
        ui.ready = true;
        btn.setAttribute("data-lethe-state", "ready");
        render();
        post({ type: "lethe:visit", pageToken: s.token });
        if (ui.invitation) post({ type: "lethe:invitation", invitation: ui.invitation });
        if (ui.open) {
          post({ type: "lethe:open" });
          if (ui.focus) ui.frame.focus();
        }
        break;
      case "lethe:open":
        setOpen(true, false);
        break;
      case "lethe:close":
        if (ui.open) {
          ui.open = false;
          render();
          btn.focus();
        }
        break;
      case "lethe:unread":
        if (typeof msg.count === "number" && msg.count >= 0) {
          ui.unread = ui.open ? 0 : Math.floor(msg.count);
          render();
        }
        break;
      case "lethe:chat":
        set(CHAT_KEY, msg.active === true ? "1" : "");
        break;
      case "lethe:notrack":
        stop();
        break;
      case "lethe:forgotten":
        stopWatch();
        gone();
        break;
    }
  });

  btn.addEventListener("click", () => setOpen(!ui.open));
  btn.addEventListener("mouseenter", () => (btn.style.transform = "scale(1.06)"));
  btn.addEventListener("mouseleave", () => (btn.style.transform = ""));
  d.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.open && d.activeElement === ui.frame) setOpen(false);
  });
  w.addEventListener("popstate", setPage);
  w.addEventListener("hashchange", setPage);

  setInterval(() => {
    if (!allowed()) return;
    if (!s.token || s.pageDirty) return void sync();
    rpc("monitor.v1.MonitorService/Heartbeat", {}, s.token).catch((e: unknown) => {
      if (rpcCode(e) !== "unauthenticated") return;
      stopWatch();
      gone();
      void sync();
    });
  }, HEARTBEAT_MS);
  // The host page goes away (closed, or navigating, even to another page of
  // the site: the server waits a few seconds for the next page view before
  // it counts the visitor as gone). The stream is closed too, so that a page
  // kept in the back/forward cache does not hold the visit open.
  w.addEventListener("pagehide", () => {
    if (s.token && allowed()) rpc("monitor.v1.MonitorService/Leave", {}, s.token, true).catch(() => undefined);
    stopWatch();
  });
  // Back from the back/forward cache: the page is viewed again.
  w.addEventListener("pageshow", (e) => {
    if (e.persisted) setPage();
  });

  w.Lethe = { open: () => setOpen(true), close: () => setOpen(false), setCustomData, identify };

  const mount = () => {
    d.body.appendChild(btn);
    // A chat in progress keeps its live stream and unread badge on every page
    // (and Lethe.open() or an invitation may have come before the body).
    if (get(CHAT_KEY) || ui.open || ui.invitation) loadPanel();
    render();
  };
  if (d.body) mount();
  else d.addEventListener("DOMContentLoaded", mount);

  rpc("chat.v1.ChatService/GetWidgetConfig", { accountId: account }).then(
    (cfg) => {
      v.cfg = cfg;
      ui.shown = true;
      render();
      setPage();
    },
    () => undefined,
  );
})();

export {};
