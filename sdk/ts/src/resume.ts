import type { ConnectError } from "@connectrpc/connect";
import { Backoff, isFinal, sleep, toConnectError } from "./retry";

/** How a resuming watch ended. */
export type WatchEnd =
  | { reason: "closed" }
  | { reason: "aborted" }
  | { reason: "final"; error: ConnectError };

/** What {@link resume} needs of a backoff policy ({@link Backoff} is one). */
export interface BackoffPolicy {
  delay(): number;
  reset(): void;
}

/** Options for {@link resume}. */
export interface ResumeOptions<T> {
  /**
   * open starts one stream. It is called again for every reconnect, so it
   * sends the caller's resume point as it is then; aborting `signal` ends the
   * stream.
   */
  open(signal: AbortSignal): AsyncIterable<T>;
  /** Called for every response, in order. Returning true ends the watch with "closed". */
  onMessage(res: T): boolean | void;
  /** Called when a (re)connected stream delivers its first response. */
  onLive?(): void;
  /**
   * Called when a stream breaks (with the error) or ends without the watch
   * being over (without one); a reconnect follows after the backoff.
   */
  onBreak?(err?: ConnectError): void;
  /** Called on an error with a final code ({@link FINAL_CODES}); the watch ends right after. */
  onFinalError?(err: ConnectError): void;
  /** Aborting ends the watch with "aborted", without onFinalError. */
  signal?: AbortSignal;
  /** The waits between reconnects (default: a new {@link Backoff}). */
  backoff?: BackoffPolicy;
}

/** A running resuming watch. */
export interface Resuming {
  /** Settles when the watch ends. */
  readonly done: Promise<WatchEnd>;
  /**
   * reconnect drops the current stream (or cuts the wait short) and opens a
   * new one at once.
   */
  reconnect(): void;
}

/**
 * resume keeps a server stream open until the watch is over: the one
 * reconnect loop of this SDK, under watchChatResuming, watchInboxResuming,
 * watchVisitResuming and watchVisitorsResuming. A stream that breaks with a
 * code that is not final, or ends without onMessage saying the watch is over,
 * is reopened after the backoff, which starts over once a stream delivers a
 * response. An exception thrown by onMessage counts as a broken stream.
 */
export function resume<T>(opts: ResumeOptions<T>): Resuming {
  const outer = opts.signal;
  const backoff = opts.backoff ?? new Backoff();
  let current: AbortController | undefined;
  let wake: (() => void) | undefined;

  const run = async (): Promise<WatchEnd> => {
    while (!outer?.aborted) {
      const ctl = new AbortController();
      current = ctl;
      const onAbort = () => ctl.abort();
      outer?.addEventListener("abort", onAbort, { once: true });
      let live = false;
      let now = false; // reconnect() asked for a new stream: no wait
      try {
        for await (const res of opts.open(ctl.signal)) {
          if (!live) {
            live = true;
            backoff.reset();
            opts.onLive?.();
          }
          if (opts.onMessage(res) === true) return { reason: "closed" };
        }
        if (outer?.aborted) break;
        if (ctl.signal.aborted) now = true;
        else opts.onBreak?.();
      } catch (e) {
        if (outer?.aborted) break;
        if (ctl.signal.aborted) {
          now = true;
        } else {
          const err = toConnectError(e);
          if (isFinal(err)) {
            opts.onFinalError?.(err);
            return { reason: "final", error: err };
          }
          opts.onBreak?.(err);
        }
      } finally {
        current = undefined;
        outer?.removeEventListener("abort", onAbort);
        ctl.abort(); // a stream left early (closed, final) must not linger
      }
      if (!now) {
        const wait = new AbortController();
        wake = () => wait.abort();
        const onOuter = () => wait.abort();
        outer?.addEventListener("abort", onOuter, { once: true });
        await sleep(backoff.delay(), wait.signal);
        outer?.removeEventListener("abort", onOuter);
        wake = undefined;
      }
    }
    return { reason: "aborted" };
  };

  return {
    done: run(),
    reconnect() {
      if (wake) wake();
      else current?.abort();
    },
  };
}
