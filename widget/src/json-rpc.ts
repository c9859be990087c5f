/**
 * jsonRpc calls a unary Connect method with JSON (`Content-Type:
 * application/json`, `Connect-Protocol-Version: 1`), the token as bearer
 * when there is one, and no cookies. It resolves to the response's JSON and
 * rejects with an Error whose message is the Connect error code
 * ("unavailable" when the server could not be reached). The loader and the
 * panel's visit calls use it instead of the generated clients: it weighs a
 * few hundred bytes, they weigh tens of kilobytes.
 */
export function jsonRpc(base: string, method: string, body: object, token = "", keepalive = false): Promise<Record<string, unknown>> {
  return fetch(`${base}/lethe.${method}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Connect-Protocol-Version": "1",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
    credentials: "omit",
    keepalive,
  }).then(
    async (r) => {
      const j = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(j.code || "unknown");
      return j;
    },
    () => {
      throw new Error("unavailable");
    },
  );
}

/** rpcCode is the Connect error code of a jsonRpc rejection. */
export const rpcCode = (e: unknown): string => (e instanceof Error ? e.message : "unknown");
