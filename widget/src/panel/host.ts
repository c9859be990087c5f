/**
 * Messaging with the host page (the loader). The host origin comes from the
 * panel page's meta tag, which the server fills only for a listed website:
 * every message goes to exactly that origin, and only messages from that
 * origin and from the parent window are heard. Nothing of a chat ever goes to
 * the page: the panel says "ready", "open", "close" and an unread count.
 */

/** A page view as the host reports it, cut to the server's limits. */
export interface PageView {
  url: string;
  title: string;
  referrer: string;
}

/** What the host page can ask of the panel. */
export type HostCommand =
  | { type: "open" }
  | { type: "close" }
  | { type: "context"; page: PageView }
  | { type: "data"; data: Record<string, string> }
  | { type: "identify"; ticket: string };

/** What the panel tells the host page. */
export type PanelMessage =
  | { type: "lethe:ready" }
  | { type: "lethe:open" }
  | { type: "lethe:close" }
  | { type: "lethe:unread"; count: number };

const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : "");

/**
 * parseHostMessage turns a message from the host page into a command, or
 * undefined for anything malformed. URLs are cut to the server's limits: a
 * long URL is better cut than not counted. Custom data keeps string values
 * only (the loader already turned numbers and booleans into strings).
 */
export function parseHostMessage(m: unknown): HostCommand | undefined {
  if (!m || typeof m !== "object") return undefined;
  const msg = m as Record<string, unknown>;
  switch (msg.type) {
    case "lethe:open":
      return { type: "open" };
    case "lethe:close":
      return { type: "close" };
    case "lethe:context": {
      const url = str(msg.url, 2048);
      if (!url) return undefined;
      return { type: "context", page: { url, title: str(msg.title, 300), referrer: str(msg.referrer, 2048) } };
    }
    case "lethe:data": {
      const d = msg.data;
      if (!d || typeof d !== "object" || Array.isArray(d)) return undefined;
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(d as Record<string, unknown>)) if (typeof v === "string") data[k] = v;
      return { type: "data", data };
    }
    case "lethe:identify":
      return typeof msg.ticket === "string" && msg.ticket ? { type: "identify", ticket: msg.ticket } : undefined;
  }
  return undefined;
}

/**
 * connectHost listens to the host page at hostOrigin and returns the function
 * that posts to it. Without a host origin, or outside a frame, there is
 * nobody to talk to: nothing is heard and nothing is sent.
 */
export function connectHost(hostOrigin: string, onCommand: (c: HostCommand) => void): (msg: PanelMessage) => void {
  window.addEventListener("message", (e: MessageEvent) => {
    if (!hostOrigin || e.origin !== hostOrigin || e.source !== window.parent) return;
    const c = parseHostMessage(e.data);
    if (c) onCommand(c);
  });
  return (msg) => {
    if (!hostOrigin || window.parent === window) return;
    try {
      window.parent.postMessage(msg, hostOrigin);
    } catch {
      // An invalid host origin: there is nobody to talk to.
    }
  };
}
