import type { Client } from "@connectrpc/connect";
import { ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  type Invitation,
  type MonitorService,
  type WatchVisitorsResponse,
  WatchVisitRequestSchema,
  WatchVisitorsRequestSchema,
} from "../../../gen/ts/lethe/monitor/v1/monitor_pb";
import { resume, type WatchEnd } from "./resume";

/** A client of the generated MonitorService. */
export type MonitorClient = Client<typeof MonitorService>;

/** Callbacks and options for {@link watchVisitResuming}. */
export interface WatchVisitOptions {
  /**
   * Called for every invitation the stream delivers. After a reconnect the
   * server sends the pending invitation again, so the same invitation_id can
   * arrive more than once: the caller decides whether it is new.
   */
  onInvitation(inv: Invitation): void;
  /** Called with the visitor id each time a (re)connected stream starts. */
  onStarted?(visitorId: string): void;
  /** Called when the stream breaks and a reconnect is scheduled. */
  onDisconnected?(err?: ConnectError): void;
  /**
   * Called on a code in {@link FINAL_CODES}, in practice UNAUTHENTICATED: the
   * visit token is unknown (the visit ended and was destroyed). The watch ends
   * right after; the caller starts a new visit with Track.
   */
  onFinalError?(err: ConnectError): void;
  /** Aborting ends the watch. */
  signal?: AbortSignal;
}

/**
 * watchVisitResuming keeps the visitor's MonitorService.WatchVisit stream open
 * while the page is. Broken streams are reopened after a backoff (250 ms
 * doubling to 5 s, with jitter); the transport's token getter is asked again
 * on every reconnect. It ends with "closed" when the server says the visit
 * ended (VisitEnded), "final" on an error reconnecting cannot help, or
 * "aborted".
 */
export function watchVisitResuming(client: MonitorClient, opts: WatchVisitOptions): Promise<WatchEnd> {
  return resume({
    signal: opts.signal,
    open: (signal) => client.watchVisit(create(WatchVisitRequestSchema), { signal }),
    onBreak: (err) => opts.onDisconnected?.(err),
    onFinalError: opts.onFinalError,
    onMessage: (res) => {
      const k = res.kind;
      if (k.case === "started") opts.onStarted?.(k.value.visitorId);
      else if (k.case === "invitation") opts.onInvitation(k.value);
      return k.case === "ended";
    },
  }).done;
}

/** Callbacks and options for {@link watchVisitorsResuming}. */
export interface WatchVisitorsOptions {
  /**
   * Called when a (re)connected stream delivers its first response. A fresh
   * snapshot follows, ending with snapshot_done: the caller should drop the
   * visitors it shows that the snapshot does not mention (they left while the
   * stream was down).
   */
  onConnected?(): void;
  /** Called for every response, in order. */
  onMessage(res: WatchVisitorsResponse): void;
  /** Called when the stream breaks (including UNAVAILABLE for a console that fell behind). */
  onDisconnected?(err?: ConnectError): void;
  /**
   * Called on a code in {@link FINAL_CODES} (UNAUTHENTICATED: the session
   * ended); the watch ends.
   */
  onFinalError?(err: ConnectError): void;
  /** Aborting ends the watch. */
  signal?: AbortSignal;
}

/**
 * watchVisitorsResuming keeps the operator's one MonitorService.WatchVisitors
 * stream open, reconnecting after a backoff. Each connection starts with a
 * full snapshot, so nothing needs to be remembered between connections.
 */
export function watchVisitorsResuming(client: MonitorClient, opts: WatchVisitorsOptions): Promise<WatchEnd> {
  return resume({
    signal: opts.signal,
    open: (signal) => client.watchVisitors(create(WatchVisitorsRequestSchema), { signal }),
    onLive: () => opts.onConnected?.(),
    onBreak: (err) => opts.onDisconnected?.(err),
    onFinalError: opts.onFinalError,
    onMessage: (res) => {
      opts.onMessage(res);
    },
  }).done;
}
