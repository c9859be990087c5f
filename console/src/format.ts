/** How the console writes times: pure, so the rules are unit-tested (format.test.ts). */
import { timestampDate, type ChatEvent } from "@lethe/sdk";

/** A google.protobuf.Timestamp as the generated messages carry it. */
export type Timestamp = NonNullable<ChatEvent["time"]>;

/** ago says how long something has lasted, coarsely: "just now", "4 min", "2 h 5 min". */
export function ago(msecs: number): string {
  const s = Math.max(0, Math.floor(msecs / 1000));
  if (s < 60) return "just now";
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** waitingText says how long a visitor has waited in the queue. */
export function waitingText(msecs: number): string {
  return msecs < 60_000 ? "Just arrived" : `Waiting ${ago(msecs)}`;
}

/** startedText says when a chat began. */
export function startedText(msecs: number): string {
  return msecs < 60_000 ? "Started just now" : `Started ${ago(msecs)} ago`;
}

/** duration writes a time on site to the second: "12s", "3m 12s", "1h 4m". */
export function duration(msecs: number): string {
  const s = Math.max(0, Math.floor(msecs / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** millis is a timestamp in milliseconds, 0 when there is none. */
export function millis(t: Timestamp | undefined): number {
  return t ? timestampDate(t).getTime() : 0;
}

/** timeOfDay is a timestamp's local time ("14:05", with seconds "14:05:09"); "" for none. */
export function timeOfDay(t: Timestamp | undefined, seconds = false): string {
  if (!t) return "";
  return timestampDate(t).toLocaleTimeString([], seconds ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
}

const MIB = 1024 * 1024;

/** mibText writes a byte limit in MiB for a settings field ("10", "0.5"); "" for 0 (the server's limit). */
export function mibText(bytes: bigint): string {
  return bytes > 0n ? String(Number((Number(bytes) / MIB).toFixed(2))) : "";
}

/** mibBytes reads a MiB settings field back into bytes; empty is 0 (the server's limit). */
export function mibBytes(text: string): bigint {
  const v = Number(text.trim());
  return text.trim() && Number.isFinite(v) && v > 0 ? BigInt(Math.round(v * MIB)) : 0n;
}
