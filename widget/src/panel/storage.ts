/**
 * What the panel keeps in its sessionStorage (the Lethe origin, partitioned
 * per website by the browser): the chat the visitor is in, the visit token,
 * and the last invitation the panel opened itself for. Storage may be blocked
 * or full; then everything still works for the current page view.
 */

/** The chat the visitor is in. Cleared when the chat ends. */
export interface ChatSession {
  /** The chat's visitor token (bearer for ChatService and ConsentService). */
  token: string;
  chatId: string;
  /** Highest seq the visitor has had in front of them (for unread counts). */
  lastSeq?: string;
  /** The pre-chat consent version accepted for this chat (0: none). */
  consent?: number;
}

/** The holder of the current chat session; set writes it through to storage. */
export interface SessionBox {
  readonly current: ChatSession | undefined;
  set(s: ChatSession | undefined): void;
}

export const SESSION_KEY = "lethe.visitor";
export const VISIT_KEY = "lethe.visit";
/** The last invitation the panel opened itself for, so it does not pop up on every page. */
export const INVITED_KEY = "lethe.invited";

/** parseSession reads a stored chat session; anything malformed is no session. */
export function parseSession(raw: string | null): ChatSession | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw ?? "null");
  } catch {
    return undefined;
  }
  if (!v || typeof v !== "object") return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.token !== "string" || typeof o.chatId !== "string") return undefined;
  return {
    token: o.token,
    chatId: o.chatId,
    lastSeq: typeof o.lastSeq === "string" ? o.lastSeq : undefined,
    consent: typeof o.consent === "number" ? o.consent : 0,
  };
}

export function getItem(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

/** setItem stores value under key; an empty value removes the key. */
export function setItem(key: string, value: string): void {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage blocked: it lasts for this page view.
  }
}

/** sessionBox loads the stored chat session and keeps storage in step with it. */
export function sessionBox(): SessionBox {
  let current = parseSession(getItem(SESSION_KEY) || null);
  return {
    get current() {
      return current;
    },
    set(s) {
      current = s;
      setItem(SESSION_KEY, s ? JSON.stringify(s) : "");
    },
  };
}

/** The offline messages' tokens (a JSON list), to see and erase them while they wait for the mail server. */
export const OFFLINE_KEY = "lethe.offline";
/** Set when the visitor asked not to be tracked (or the server honoured GPC): no visit calls for the session. */
export const NOTRACK_KEY = "lethe.notrack";

/** parseTokens reads a stored token list; anything malformed is an empty list. */
export function parseTokens(raw: string): string[] {
  try {
    const v: unknown = JSON.parse(raw || "[]");
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === "string" && t !== "") : [];
  } catch {
    return [];
  }
}

export const offlineTokens = (): string[] => parseTokens(getItem(OFFLINE_KEY));

/** setOfflineTokens stores the list (at most the 20 newest); an empty list removes the key. */
export function setOfflineTokens(tokens: string[]): void {
  const list = [...new Set(tokens.filter(Boolean))].slice(-20);
  setItem(OFFLINE_KEY, list.length ? JSON.stringify(list) : "");
}
