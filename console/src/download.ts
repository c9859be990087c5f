/**
 * downloadText hands text to the browser as a file download (an export the
 * operator keeps or gives to a data subject).
 */
import { h } from "../../ui/dom";

export function downloadText(name: string, text: string, type = "application/json"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** when is a timestamp for people ("" when unset). */
export function whenText(t: { seconds: bigint; nanos: number } | undefined): string {
  if (!t) return "";
  return new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
