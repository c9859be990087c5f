/**
 * Pure helpers of the "Your data" view (data.ts): how times, durations,
 * destruction rules and receipts read. No DOM, so they are unit-tested.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** millis is a timestamp in milliseconds (0 when unset). */
export function millis(t: Timestamp | undefined): number {
  return t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0;
}

/** when is a timestamp for people ("" when unset). */
export function when(t: Timestamp | undefined, locale?: string): string {
  const ms = millis(t);
  return ms ? new Date(ms).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) : "";
}

/** duration reads a span of milliseconds: "less than a minute", "5 minutes", "2 h 5 min". */
export function duration(ms: number): string {
  const min = Math.floor(Math.max(0, ms) / 60000);
  if (min < 1) return "less than a minute";
  if (min < 60) return min === 1 ? "1 minute" : `${min} minutes`;
  const hours = Math.floor(min / 60);
  return `${hours} h ${min % 60} min`;
}

/** destruction says when something is destroyed: the rule, and the latest time when known. */
export function destruction(d: { rule: string; notAfter?: Timestamp | undefined } | undefined, locale?: string): string {
  if (!d) return "";
  const latest = when(d.notAfter, locale);
  if (!d.rule) return latest ? `at the latest ${latest}` : "";
  return latest ? `${d.rule} (at the latest ${latest})` : d.rule;
}

/** joined joins the non-empty parts with ", " ("" when all are empty). */
export function joined(...parts: string[]): string {
  return parts.filter(Boolean).join(", ");
}
