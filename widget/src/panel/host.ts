/**
 * Messaging with the host page (the loader). The host origin comes from the
 * panel page's meta tag, which the server fills only for a listed website:
 * every message goes to exactly that origin, and only messages from that
 * origin and from the parent window are heard. Nothing of a chat ever goes to
 * the page: the panel says "ready", "open", "close" and an unread count.
 */

/** An operator's invitation, as the loader's WatchVisit stream brought it. */
export interface Invitation {
  invitationId: string;
  operatorName: string;
  message: string;
}

/** What the host page can tell the panel. */
export type HostCommand =
  | { type: "open" }
  | { type: "close" }
  /** The loader's page token ("" when the visit is not reported): the panel claims the visit with it. */
  | { type: "visit"; pageToken: string }
  | { type: "invitation"; invitation: Invitation };

/** What the panel tells the host page. */
export type PanelMessage =
  | { type: "lethe:ready" }
  | { type: "lethe:open" }
  | { type: "lethe:close" }
  | { type: "lethe:unread"; count: number }
  /** Whether the visitor is in a chat: the loader then loads the panel on every page. */
  | { type: "lethe:chat"; active: boolean }
  /** The visitor asked to stop tracking (the visit is already forgotten): the loader stops for the session. */
  | { type: "lethe:notrack" }
  /** "Forget me now" erased the visit: the loader drops its page token. */
  | { type: "lethe:forgotten" };

const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : "");

/** parseHostMessage turns a message from the host page into a command, or undefined for anything malformed. */
export function parseHostMessage(m: unknown): HostCommand | undefined {
  if (!m || typeof m !== "object") return undefined;
  const msg = m as Record<string, unknown>;
  switch (msg.type) {
    case "lethe:open":
      return { type: "open" };
    case "lethe:close":
      return { type: "close" };
    case "lethe:visit":
      return typeof msg.pageToken === "string" ? { type: "visit", pageToken: msg.pageToken.slice(0, 200) } : undefined;
    case "lethe:invitation": {
      const i = msg.invitation as Record<string, unknown> | null;
      if (!i || typeof i !== "object" || typeof i.invitationId !== "string" || !i.invitationId) return undefined;
      return {
        type: "invitation",
        invitation: { invitationId: str(i.invitationId, 100), operatorName: str(i.operatorName, 200), message: str(i.message, 500) },
      };
    }
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
