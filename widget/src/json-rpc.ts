/**
 * Connect over JSON by hand, for the loader and the chat panel's first load:
 * a few hundred bytes where the generated clients (connect-web and
 * protobuf-es) weigh tens of kilobytes. Requests carry the token as bearer
 * when there is one, and no cookies.
 */
import { envelope, readFrames } from "./visit";

/** RpcError is a failed call: code is the Connect code ("unavailable" when the server could not be reached), message the server's own text. */
export class RpcError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const headers = (contentType: string, token: string): Record<string, string> => ({
  "Content-Type": contentType,
  "Connect-Protocol-Version": "1",
  ...(token ? { Authorization: `Bearer ${token}` } : {}),
});

const unreachable = () => {
  throw new RpcError("unavailable", "");
};

/** errorOf reads a Connect error body ({code, message}). */
const errorOf = (j: { code?: unknown; message?: unknown } | undefined, fallback: string) =>
  new RpcError(typeof j?.code === "string" ? j.code : fallback, typeof j?.message === "string" ? j.message : "");

/**
 * jsonRpc calls a unary Connect method (`lethe.<method>`, such as
 * "chat.v1.ChatService/StartChat") with JSON and resolves to the response's
 * JSON, where fields with default values are left out. It rejects with an RpcError.
 */
export function jsonRpc<T = Record<string, unknown>>(base: string, method: string, body: object, token = "", keepalive = false): Promise<T> {
  return fetch(`${base}/lethe.${method}`, {
    method: "POST",
    headers: headers("application/json", token),
    body: JSON.stringify(body),
    credentials: "omit",
    keepalive,
  }).then(async (r) => {
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw errorOf(j, "unknown");
    return j as T;
  }, unreachable);
}

/**
 * jsonStream calls a server-streaming Connect method with JSON envelopes and
 * hands each response to onMessage (onMessage returning true stops reading).
 * It resolves when the stream ends without an error and rejects with an
 * RpcError otherwise (an AbortError when signal aborts).
 */
export async function jsonStream(
  base: string,
  method: string,
  body: object,
  token: string,
  signal: AbortSignal,
  onMessage: (m: Record<string, unknown>) => boolean | void,
): Promise<void> {
  const r = await fetch(`${base}/lethe.${method}`, {
    method: "POST",
    headers: headers("application/connect+json", token),
    body: envelope(body),
    credentials: "omit",
    signal,
  }).catch((e: unknown) => {
    if (signal.aborted) throw e;
    return unreachable();
  });
  if (!r.ok || !r.body) throw errorOf(await r.json().catch(() => undefined), "unavailable");
  const reader = r.body.getReader();
  let buf: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((e: unknown) => {
        if (signal.aborted) throw e;
        return unreachable();
      });
      if (done) throw new RpcError("unavailable", "");
      const all = new Uint8Array(buf.length + value.length);
      all.set(buf);
      all.set(value, buf.length);
      const got = readFrames(all);
      buf = got.rest;
      for (const f of got.frames) {
        const m = (f.data || {}) as Record<string, unknown>;
        if (f.flags & 2) {
          if (m.error) throw errorOf(m.error as object, "unknown");
          return;
        }
        if (onMessage(m) === true) return;
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** rpcCode is the Connect error code of a failed call ("unavailable" for anything else). */
export const rpcCode = (e: unknown): string => (e instanceof RpcError ? e.code : "unavailable");
