/**
 * The integrator API: what a website's own back end calls, with an account
 * API key, to vouch for what it knows about a visitor. It runs on Node 20 or
 * later (the fetch-based Connect transport needs nothing else) and in any
 * runtime with fetch. Never call it from a browser: the API key is a secret.
 *
 * ```ts
 * // sdk/ts/dist/integrator.mjs is this file bundled for Node (ESM).
 * import { mintTicket } from "./sdk/ts/dist/integrator.mjs";
 * const { ticket } = await mintTicket({
 *   baseUrl: "https://chat.example.com",
 *   apiKey: process.env.LETHE_API_KEY!,
 *   data: { customer_id: "c-1042", plan: "pro" },
 * });
 * // Render <script src=".../widget.js" data-account="…" data-ticket="${ticket}">,
 * // or call Lethe.identify(ticket) in the page.
 * ```
 */
import { createClient } from "@connectrpc/connect";
export { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { MonitorService } from "../../../gen/ts/lethe/monitor/v1/monitor_pb";
import { createLetheTransport } from "./transport";

/** A custom data value; numbers and booleans are sent as their string form. */
export type CustomDataValue = string | number | boolean;

/** Options for {@link mintTicket}. */
export interface MintTicketOptions {
  /** The Lethe server, for example `https://chat.example.com`. */
  baseUrl: string;
  /** An account API key (`lk_…`), created by an admin in the console. */
  apiKey: string;
  /**
   * The verified data the ticket carries: at most 20 keys; a key is 1 to 64
   * characters of [A-Za-z0-9_.-]; a value at most 512 characters. Beyond:
   * the server answers INVALID_ARGUMENT.
   */
  data: Readonly<Record<string, CustomDataValue>>;
  /** How long the ticket can be redeemed, 1 to 600 seconds (default 300). */
  ttlSeconds?: number;
  /** Give up after this many milliseconds (default 10,000). */
  timeoutMs?: number;
  /** Aborting cancels the call. */
  signal?: AbortSignal;
}

/** A ticket from {@link mintTicket}. */
export interface MintedTicket {
  /** The ticket (`lt_…`): single-use, hand it to this one visitor's page only. */
  ticket: string;
  /** When the ticket can no longer be redeemed. */
  expiresAt: Date;
}

/**
 * mintTicket asks the Lethe server for a short-lived, single-use ticket
 * carrying verified data about one visitor (MonitorService.MintTicket). The
 * page hands the ticket to the widget (`data-ticket="…"` on the script tag or
 * `Lethe.identify(ticket)`), and operators then see the data as verified.
 *
 * Errors are `ConnectError`s from @connectrpc/connect: UNAUTHENTICATED for a
 * missing, unknown or revoked key; INVALID_ARGUMENT for data beyond the
 * limits or a ttlSeconds outside 1..600; DEADLINE_EXCEEDED after timeoutMs.
 */
export async function mintTicket(opts: MintTicketOptions): Promise<MintedTicket> {
  const { apiKey } = opts;
  if (!apiKey) throw new TypeError("mintTicket: apiKey is required");
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.data)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new TypeError(`mintTicket: the value of "${k}" must be a string, number or boolean`);
    }
    data[k] = String(v);
  }
  const client = createClient(MonitorService, createLetheTransport(opts.baseUrl, { token: () => apiKey }));
  const res = await client.mintTicket(
    { data, ttlSeconds: opts.ttlSeconds ?? 0 },
    { timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal },
  );
  return { ticket: res.ticket, expiresAt: res.expiresAt ? timestampDate(res.expiresAt) : new Date(NaN) };
}
