import { Code, ConnectError } from "@connectrpc/connect";

/**
 * FINAL_CODES are the codes after which reopening a stream cannot help: the
 * same request would get the same answer. A resuming watch ends on them (with
 * onFinalError and `{ reason: "final" }`) and retries every other error. The
 * Go SDK (sdk/go/resume.go) holds the same list; a Go test keeps the two equal.
 *
 * - Unauthenticated: the token, visit or session is unknown or has ended (a
 *   destroyed chat, a forgotten visit, a signed-out operator). New
 *   credentials are needed: a new chat, a new visit (Track), a new login.
 * - PermissionDenied: the caller may not see this (another visitor's chat).
 * - NotFound: the chat or account does not exist.
 * - InvalidArgument: the request itself is malformed (no chat id, a negative
 *   sequence number).
 * - FailedPrecondition: the state must change first. (A visitor's stream of a
 *   closed chat is not this: WatchChat answers it with a closed event.)
 * - Unimplemented: no such procedure at this address (a wrong base URL or an
 *   older server; Connect reports an HTTP 404 this way).
 *
 * Retried: Unavailable (the server cut a slow stream off, is restarting, or a
 * proxy answered 502/503/504/429), Internal, Unknown (including network
 * errors), DeadlineExceeded, ResourceExhausted, Aborted, Canceled by the
 * server, and the rest.
 */
export const FINAL_CODES: readonly Code[] = [
  Code.Unauthenticated,
  Code.PermissionDenied,
  Code.NotFound,
  Code.InvalidArgument,
  Code.FailedPrecondition,
  Code.Unimplemented,
];

const finalCodes: ReadonlySet<Code> = new Set(FINAL_CODES);

/** isFinal reports whether a stream error ends a resuming watch (see {@link FINAL_CODES}). */
export function isFinal(err: ConnectError): boolean {
  return finalCodes.has(err.code);
}

/** The backoff policy, the same in the Go SDK (lethe.Backoff). */
const FIRST_MS = 250;
const MAX_MS = 5000;

/**
 * Backoff yields reconnect delays: a base of 250 ms doubling up to 5 s, and a
 * wait drawn uniformly from the upper half of it ([base/2, base]) so that many
 * clients cut off at once do not come back in step.
 */
export class Backoff {
  private base = FIRST_MS;

  /** delay returns the next wait in milliseconds and doubles the base of the one after. */
  delay(): number {
    const d = this.base;
    this.base = Math.min(d * 2, MAX_MS);
    return Math.round(d / 2 + (Math.random() * d) / 2);
  }

  /** reset starts over from 250 ms; call it once a stream delivered data. */
  reset(): void {
    this.base = FIRST_MS;
  }
}

/** sleep waits ms milliseconds, or less if signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** toConnectError turns anything thrown by a call into a ConnectError. */
export function toConnectError(err: unknown): ConnectError {
  return ConnectError.from(err);
}
