import { Code, ConnectError } from "@connectrpc/connect";

/** Codes after which reconnecting cannot help: the chat or session is gone. */
const finalCodes: ReadonlySet<Code> = new Set([Code.NotFound, Code.PermissionDenied, Code.Unauthenticated]);

/** isFinal reports whether a stream error should end a resuming watch. */
export function isFinal(err: ConnectError): boolean {
  return finalCodes.has(err.code);
}

/**
 * Backoff yields reconnect delays: 250 ms doubling up to 5 s, each with up to
 * ±20% jitter so that many clients cut off at once do not return in step.
 */
export class Backoff {
  private next = 250;

  /** delay returns the next wait in milliseconds and doubles the one after. */
  delay(): number {
    const d = this.next;
    this.next = Math.min(this.next * 2, 5000);
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }

  /** reset starts over from 250 ms; call it once a stream delivered data. */
  reset(): void {
    this.next = 250;
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
