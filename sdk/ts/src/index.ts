/**
 * @lethe/sdk is the thin layer the Lethe web clients share: a transport that
 * carries the visitor (or visit) token, resuming streams that turn WatchChat
 * and WatchInbox into "every stored event exactly once" callbacks and keep
 * WatchVisit and WatchVisitors open, and the integrator API ({@link mintTicket})
 * for a website's back end.
 *
 * Every resuming watch reopens a broken stream after a backoff (250 ms
 * doubling up to 5 s, with jitter) and ends for good on the codes reconnecting
 * cannot help, {@link FINAL_CODES}: UNAUTHENTICATED, PERMISSION_DENIED,
 * NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, UNIMPLEMENTED. The Go SDK
 * (sdk/go) follows the same policy.
 *
 * The generated service descriptors and messages are re-exported, so clients
 * import everything from here:
 *
 * ```ts
 * const chat = createClient(ChatService, createLetheTransport(location.origin));
 * const consent = createClient(ConsentService, createLetheTransport(location.origin));
 * ```
 *
 * Files (lethe.files.v1): {@link uploadFile} sends a Blob in chunks with
 * progress, resuming after a dropped connection and cancelling on abort;
 * {@link downloadFile} streams one back (resuming too); {@link downloadLink}
 * mints a single-use URL for a browser download. Note that the generated
 * `File` message shadows the DOM's `File` when imported by that name.
 */
export { createClient, Code, ConnectError } from "@connectrpc/connect";
export type { Client, Transport } from "@connectrpc/connect";
export { create } from "@bufbuild/protobuf";
export { timestampDate } from "@bufbuild/protobuf/wkt";
export * from "../../../gen/ts/lethe/chat/v1/chat_pb";
export * from "../../../gen/ts/lethe/account/v1/account_pb";
export * from "../../../gen/ts/lethe/consent/v1/consent_pb";
export * from "../../../gen/ts/lethe/monitor/v1/monitor_pb";
export * from "../../../gen/ts/lethe/files/v1/files_pb";
export { createLetheTransport, type LetheTransportOptions } from "./transport";
export {
  watchChatResuming,
  watchInboxResuming,
  type ChatClient,
  type InboxWatch,
  type WatchChatOptions,
  type WatchEnd,
  type WatchInboxOptions,
} from "./watch";
export {
  watchVisitResuming,
  watchVisitorsResuming,
  type MonitorClient,
  type WatchVisitOptions,
  type WatchVisitorsOptions,
} from "./monitor";
export { mintTicket, type CustomDataValue, type MintTicketOptions, type MintedTicket } from "./integrator";
export {
  chunkPlan,
  downloadFile,
  downloadLink,
  resumeOffset,
  retryable,
  sha256Hex,
  uploadFile,
  type DownloadOptions,
  type FileCalls,
  type FileClient,
  type UploadOptions,
  type UploadResult,
} from "./files";
export { Backoff, FINAL_CODES, isFinal, sleep } from "./retry";

import { ConnectError as CE } from "@connectrpc/connect";

/**
 * errorMessage returns the text to show a user for a failed call: the
 * server's own message (safe by contract) without the "[code]" prefix.
 */
export function errorMessage(err: unknown): string {
  const e = CE.from(err);
  return e.rawMessage || "Something went wrong. Please try again.";
}
