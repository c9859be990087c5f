/**
 * The Lethe loader runs on the customer's website. It stays tiny and imports
 * nothing: it draws a launcher button and an iframe that loads the chat panel
 * from the Lethe server, and speaks to it only through postMessage with an
 * exact target origin and a strict origin + source check on what it receives.
 * No chat content ever passes through the host page: the page sends the panel
 * only its own context (URL, title, referrer), the custom data it chooses to
 * share and tickets from its back end; the panel sends back only "ready",
 * "open", "close" and an unread count.
 *
 * Styling uses CSSOM properties (el.style.x = …), which the host page's CSP
 * allows even when it forbids inline <style> and style attributes.
 */

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
  /** identify hands the panel a ticket minted by the site's back end (verified data). */
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
  | { type: "lethe:unread"; count: number };

const ACCENT = "#4f46e5";

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

  // The panel, hidden until opened.
  const frame = d.createElement("iframe");
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

  // The launcher, hidden until the panel says it is ready.
  const btn = d.createElement("button");
  btn.id = "lethe-launcher";
  btn.type = "button";
  btn.setAttribute("aria-controls", frame.id);
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

  let ready = false;
  let open = false;
  let unread = 0;
  // Data and tickets handed over before the panel is ready, in order.
  const queue: object[] = [];

  const post = (msg: object) => {
    frame.contentWindow?.postMessage(msg, letheOrigin);
  };
  const send = (msg: object) => {
    if (ready) post(msg);
    else queue.push(msg);
  };
  const identify = (ticket: unknown) => {
    if (typeof ticket !== "string" || !ticket) throw new TypeError("Lethe.identify: the ticket must be a non-empty string");
    send({ type: "lethe:identify", ticket });
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
      const v: unknown = (obj as Record<string, unknown>)[k];
      if (!/^[\w.-]{1,64}$/.test(k)) fail(`bad key "${k}" (1 to 64 of A-Z a-z 0-9 _ . -)`);
      if (typeof v === "number" ? !isFinite(v) : typeof v !== "string" && typeof v !== "boolean") {
        fail(`"${k}" must be a string, number or boolean`);
      }
      const str = String(v);
      if ([...str].length > 512) fail(`"${k}" is over 512 characters`);
      data[k] = str;
    }
    send({ type: "lethe:data", data });
  };
  if (script.dataset.ticket) identify(script.dataset.ticket);

  const small = w.matchMedia("(max-width: 480px)");
  const layout = () => {
    if (small.matches) {
      css(frame, { inset: "0", width: "100%", height: "100%", maxHeight: "none", borderRadius: "0" });
    } else {
      css(frame, {
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
  layout();
  small.addEventListener?.("change", layout);

  const render = () => {
    btn.setAttribute("aria-expanded", String(open));
    btn.setAttribute(
      "aria-label",
      open ? "Close chat" : unread ? `Open chat (${unread} unread)` : "Open chat",
    );
    path.setAttribute("d", open ? closeIcon : chatIcon);
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.style.display = unread && !open ? "block" : "none";
    frame.style.display = open ? "block" : "none";
    // On small screens the panel covers the page, the launcher included.
    btn.style.display = ready && !(open && small.matches) ? "flex" : "none";
  };

  // focus is false when the panel opens itself (an invitation): the visitor
  // may be typing in the page, so keyboard focus stays where it is.
  const setOpen = (next: boolean, focus = true) => {
    if (!ready || next === open) return;
    open = next;
    if (open) {
      unread = 0;
      render();
      post({ type: "lethe:open" });
      if (focus) frame.focus();
    } else {
      render();
      post({ type: "lethe:close" });
      btn.focus();
    }
  };

  const sendContext = () => {
    post({ type: "lethe:context", url: location.href, title: d.title, referrer: d.referrer });
  };

  w.addEventListener("message", (e: MessageEvent) => {
    if (e.origin !== letheOrigin || e.source !== frame.contentWindow) return;
    const msg = e.data as PanelMessage | null;
    if (!msg || typeof msg !== "object") return;
    switch (msg.type) {
      case "lethe:ready":
        ready = true;
        btn.setAttribute("data-lethe-state", "ready");
        render();
        // Tickets and data first, so a ticket can ride on the first page view.
        queue.splice(0).forEach(post);
        sendContext();
        if (open) post({ type: "lethe:open" });
        break;
      case "lethe:open":
        setOpen(true, false);
        break;
      case "lethe:close":
        if (open) {
          open = false;
          render();
          btn.focus();
        }
        break;
      case "lethe:unread":
        if (typeof msg.count === "number" && msg.count >= 0) {
          unread = open ? 0 : Math.floor(msg.count);
          render();
        }
        break;
    }
  });

  btn.addEventListener("click", () => setOpen(!open));
  btn.addEventListener("mouseenter", () => (btn.style.transform = "scale(1.06)"));
  btn.addEventListener("mouseleave", () => (btn.style.transform = ""));
  d.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && open && d.activeElement === frame) setOpen(false);
  });
  w.addEventListener("popstate", sendContext);
  w.addEventListener("hashchange", sendContext);

  w.Lethe = { open: () => setOpen(true), close: () => setOpen(false), setCustomData, identify };

  const mount = () => {
    d.body.appendChild(frame);
    d.body.appendChild(btn);
  };
  if (d.body) mount();
  else d.addEventListener("DOMContentLoaded", mount);
})();

export {};
