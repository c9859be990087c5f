import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/** Options for {@link createLetheTransport}. */
export interface LetheTransportOptions {
  /**
   * Returns the visitor token to send as `Authorization: Bearer <token>`, or
   * undefined to send none. It is called on every request, so a token obtained
   * later (after StartChat) is picked up without a new transport.
   */
  token?: () => string | undefined;
}

/**
 * createLetheTransport returns a Connect transport for a Lethe server at
 * baseUrl (for example `location.origin`). Operator calls need nothing more:
 * they ride on the same-origin session cookie that fetch sends by default.
 */
export function createLetheTransport(baseUrl: string, opts: LetheTransportOptions = {}): Transport {
  const interceptors: Interceptor[] = [];
  const token = opts.token;
  if (token) {
    interceptors.push((next) => (req) => {
      const t = token();
      if (t) req.header.set("Authorization", `Bearer ${t}`);
      return next(req);
    });
  }
  return createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors });
}
