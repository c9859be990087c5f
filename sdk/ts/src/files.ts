import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ChatEvent } from "../../../gen/ts/lethe/chat/v1/chat_pb";
import type { File as LetheFile, FileService } from "../../../gen/ts/lethe/files/v1/files_pb";
import { Backoff, sleep } from "./retry";

/** A client of the generated FileService. */
export type FileClient = Client<typeof FileService>;

/**
 * The calls the helpers below make; a FileClient has them all. (Narrow on
 * purpose, so a test can stand in for the network with a few functions.)
 */
export type FileCalls = Pick<FileClient, "startUpload" | "uploadChunk" | "getUpload" | "finishUpload" | "cancelUpload" | "downloadFile" | "createDownloadLink">;

/** How many failed attempts in a row an upload or download survives before it gives up. */
const MAX_RETRIES = 6;

/** Options for {@link uploadFile}. */
export interface UploadOptions {
  /** The name to show; a File's own name by default. The server sanitizes it. */
  name?: string;
  /** Called after every chunk the server stored, with bytes received and the total. */
  onProgress?(sent: number, total: number): void;
  /** Called once the server gave the upload its id (to resume or cancel it later). */
  onStarted?(uploadId: string): void;
  /**
   * Resume this upload (from an earlier call that failed) instead of starting
   * a new one. If the server no longer knows it, a new upload starts.
   */
  uploadId?: string;
  /** Aborting cancels the upload on the server (CancelUpload) and rejects with CANCELED. */
  signal?: AbortSignal;
  /** Failed attempts in a row before giving up (6 by default, about 12 s of backoff). */
  maxRetries?: number;
}

/** What a finished upload produced. Both are absent only if the server finished it but its answer was lost. */
export interface UploadResult {
  file?: LetheFile;
  event?: ChatEvent;
}

/**
 * retryable tells whether a failed call may succeed if sent again: the
 * network dropped (connect-web reports a failed fetch as UNKNOWN), the server
 * was unavailable, or a deadline passed. Everything else, limits included
 * (RESOURCE_EXHAUSTED: a file too large, a full disk), is the answer.
 */
export function retryable(err: unknown): boolean {
  const c = ConnectError.from(err).code;
  return c === Code.Unavailable || c === Code.Unknown || c === Code.DeadlineExceeded || c === Code.Aborted;
}

/**
 * resumeOffset is where an upload continues after the server said
 * nextOffset: on a chunk boundary (the protocol requires it), within the file.
 */
export function resumeOffset(nextOffset: number, size: number, chunkSize: number): number {
  if (!(nextOffset > 0)) return 0;
  if (nextOffset >= size) return size;
  const aligned = nextOffset - (nextOffset % chunkSize);
  return aligned;
}

/** chunkAt is the chunk starting at offset: [offset, end), the last one shorter. */
export function chunkAt(offset: number, size: number, chunkSize: number): { offset: number; end: number } {
  return { offset, end: Math.min(offset + chunkSize, size) };
}

/** chunkPlan lists every chunk of a file of size bytes from offset on. */
export function chunkPlan(size: number, chunkSize: number, from = 0): { offset: number; end: number }[] {
  if (chunkSize <= 0) throw new RangeError("chunk size must be positive");
  const out: { offset: number; end: number }[] = [];
  for (let o = resumeOffset(from, size, chunkSize); o < size; o += chunkSize) out.push(chunkAt(o, size, chunkSize));
  return out;
}

/** sha256Hex is the SHA-256 of blob in lowercase hex, or "" where WebCrypto is missing (an insecure origin). */
export async function sha256Hex(blob: Blob): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return "";
  const d = new Uint8Array(await subtle.digest("SHA-256", await blob.arrayBuffer()));
  let s = "";
  for (const b of d) s += b.toString(16).padStart(2, "0");
  return s;
}

const canceled = () => new ConnectError("upload cancelled", Code.Canceled);

/**
 * Retrier runs calls again on {@link retryable} errors after a backoff (the
 * SDK's policy: 250 ms doubling to 5 s, with jitter), giving up after max
 * failures in a row, at once on any other error, and when the signal aborts.
 */
class Retrier {
  private failures = 0;
  private readonly backoff = new Backoff();
  constructor(
    private readonly max: number,
    private readonly signal?: AbortSignal,
  ) {}

  ok(): void {
    this.failures = 0;
    this.backoff.reset();
  }

  /** failed waits before the next attempt, or rethrows when there should be none. */
  async failed(err: unknown): Promise<void> {
    if (this.signal?.aborted) throw canceled();
    if (!retryable(err) || ++this.failures > this.max) throw err;
    await sleep(this.backoff.delay(), this.signal);
    if (this.signal?.aborted) throw canceled();
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const v = await call();
        this.ok();
        return v;
      } catch (err) {
        await this.failed(err);
      }
    }
  }
}

/**
 * uploadFile sends file into an open chat: StartUpload, then one UploadChunk
 * per chunk of the size the server asks for, then FinishUpload with the
 * file's SHA-256, which posts the FileShared event to the chat. A dropped
 * connection is resumed where the server says it stopped (GetUpload); the
 * answers that cannot change (a limit, a refused type, a closed chat) reject
 * at once with the server's error, whose message is safe to show. Aborting
 * the signal cancels the upload on the server.
 */
export async function uploadFile(client: FileCalls, chatId: string, file: Blob, opts: UploadOptions = {}): Promise<UploadResult> {
  const { signal } = opts;
  const total = file.size;
  const name = opts.name ?? ((file as { name?: string }).name || "file");
  const retry = new Retrier(opts.maxRetries ?? MAX_RETRIES, signal);
  let uploadId = opts.uploadId ?? "";
  let chunkSize = 0;
  let next = 0;
  const hash = sha256Hex(file).catch(() => "");
  try {
    if (signal?.aborted) throw canceled();
    if (uploadId) {
      try {
        const u = await retry.run(() => client.getUpload({ uploadId }, { signal }));
        chunkSize = u.chunkSize;
        next = resumeOffset(Number(u.nextOffset), total, chunkSize);
      } catch (err) {
        if (ConnectError.from(err).code !== Code.NotFound) throw err;
        uploadId = "";
      }
    }
    if (!uploadId) {
      // Not retried: a second StartUpload would hold a second reservation.
      const s = await client.startUpload({ chatId, name, size: BigInt(total), declaredType: file.type }, { signal });
      uploadId = s.uploadId;
      chunkSize = s.chunkSize;
      next = 0;
      opts.onStarted?.(uploadId);
    }
    if (!(chunkSize > 0)) throw new ConnectError("the server gave no chunk size", Code.Internal);
    opts.onProgress?.(next, total);
    while (next < total) {
      if (signal?.aborted) throw canceled();
      const c = chunkAt(next, total, chunkSize);
      const data = new Uint8Array(await file.slice(c.offset, c.end).arrayBuffer());
      try {
        const r = await client.uploadChunk({ uploadId, offset: BigInt(c.offset), data }, { signal });
        retry.ok();
        next = resumeOffset(Number(r.nextOffset), total, chunkSize);
        opts.onProgress?.(Number(r.receivedBytes), total);
      } catch (err) {
        await retry.failed(err);
        // Ask where the server is; if that fails too, send the same chunk again.
        try {
          const u = await client.getUpload({ uploadId }, { signal });
          next = resumeOffset(Number(u.nextOffset), total, chunkSize);
        } catch (e) {
          if (!retryable(e)) throw e;
        }
      }
    }
    const sha256 = await hash;
    let first = true;
    const fin = await retry.run(async () => {
      try {
        return await client.finishUpload({ uploadId, sha256 }, { signal });
      } catch (err) {
        // A retried finish that finds nothing: the first one did it, but its answer was lost.
        if (!first && ConnectError.from(err).code === Code.NotFound) return undefined;
        first = false;
        throw err;
      }
    });
    return { file: fin?.file, event: fin?.event };
  } catch (err) {
    if (signal?.aborted) {
      if (uploadId) await cancelQuietly(client, uploadId);
      throw canceled();
    }
    throw err;
  }
}

/** cancelQuietly abandons an upload; a failure is ignored (the chat's close destroys it anyway). */
async function cancelQuietly(client: FileCalls, uploadId: string): Promise<void> {
  try {
    await client.cancelUpload({ uploadId });
  } catch {
    // Best effort.
  }
}

/** Options for {@link downloadFile}. */
export interface DownloadOptions {
  /** Called after every chunk with the bytes received and the file's size. */
  onProgress?(received: number, total: number): void;
  signal?: AbortSignal;
  /** Failed attempts in a row before giving up (6 by default). */
  maxRetries?: number;
}

/**
 * downloadFile fetches a file's bytes over the DownloadFile stream, resuming
 * from the last byte received after a dropped connection, and checks them
 * against the file's SHA-256 (DATA_LOSS if they differ). The Blob carries the
 * type the server read from the bytes.
 */
export async function downloadFile(client: FileCalls, fileId: string, opts: DownloadOptions = {}): Promise<Blob> {
  const { signal } = opts;
  const retry = new Retrier(opts.maxRetries ?? MAX_RETRIES, signal);
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let got = 0;
  let meta: LetheFile | undefined;
  for (;;) {
    try {
      for await (const m of client.downloadFile({ fileId, offset: BigInt(got) }, { signal })) {
        if (m.file) meta = m.file;
        if (Number(m.offset) !== got) throw new ConnectError("download: chunk out of place", Code.DataLoss);
        if (m.data.length === 0) continue;
        parts.push(new Uint8Array(m.data));
        got += m.data.length;
        retry.ok();
        opts.onProgress?.(got, Number(meta?.size ?? 0));
      }
      if (!meta || got >= Number(meta.size)) break;
      // The stream ended early (a proxy cut it): go on from here.
      throw new ConnectError("download ended early", Code.Unavailable);
    } catch (err) {
      await retry.failed(err);
    }
  }
  const blob = new Blob(parts, { type: meta?.contentType ?? "" });
  if (meta?.sha256) {
    const sum = await sha256Hex(blob);
    if (sum && sum !== meta.sha256) throw new ConnectError("download: the bytes do not match the file's SHA-256", Code.DataLoss);
  }
  return blob;
}

/**
 * downloadLink mints a single-use link (valid for a minute) that downloads
 * the file in a browser, as an absolute URL against baseUrl (the page's
 * address by default).
 */
export async function downloadLink(client: FileCalls, fileId: string, baseUrl?: string): Promise<string> {
  const r = await client.createDownloadLink({ fileId });
  return new URL(r.url, baseUrl ?? globalThis.location?.href).toString();
}
