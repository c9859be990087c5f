// Files in a chat, for the widget panel and the console alike (the attach
// button with its hidden file input, drag-and-drop and paste are in
// ./attach.ts, which the widget panel draws without this module, and
// ./files-attach.ts puts the two together for the console): one row per upload
// (progress, cancel, retry after a dropped connection, the limit's
// message), and the card of a shared file (name and size as text, a
// thumbnail drawn on a canvas from the bytes for images, a download button
// that follows a single-use link). Nothing a participant sent ever becomes
// markup: names are text nodes, images are pixels.
import {
  type FileClient,
  type FileShared,
  ConnectError,
  Code,
  downloadFile,
  downloadLink,
  errorMessage,
  retryable,
  uploadFile,
} from "@lethe/sdk";
import type { FileLimits, PaperClip } from "./attach";
import { h, show } from "./dom";

/** formatBytes writes a size in binary units as the server does ("10 MiB", "1.5 KiB", "12 bytes"). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  let v = n;
  let i = -1;
  while (v >= 1024 && i < 4) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1).replace(/\.0$/, "")} ${["KiB", "MiB", "GiB", "TiB", "PiB"][i]}`;
}

/** sentence capitalizes a server message for display ("a file may be…" → "A file may be…"). */
export function sentence(msg: string): string {
  return msg.charAt(0).toUpperCase() + msg.slice(1);
}

/**
 * tooLarge is the message for a file over the limits the server gave, in the
 * server's own words; "" when the file fits.
 */
export function tooLarge(size: number, l: Pick<FileLimits, "maxFileBytes" | "maxChatBytes" | "usedChatBytes">): string {
  const max = Number(l.maxFileBytes);
  if (max > 0 && size > max) return `A file may be at most ${formatBytes(max)}`;
  const chat = Number(l.maxChatBytes);
  const used = Number(l.usedChatBytes);
  if (chat > 0 && used + size > chat) return `The files of a chat may total at most ${formatBytes(chat)} (${formatBytes(used)} used)`;
  return "";
}

/** progressPercent is the share sent, as a whole percentage. */
export function progressPercent(sent: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
}

export interface UploadsDeps {
  files: FileClient;
  /** The open chat, or undefined. */
  chatId(): string | undefined;
  /** The paper clip the files come from: its limits, its list of uploads, and where focus returns. */
  clip: PaperClip;
}

export interface Uploads {
  /** add sends files into the open chat, one row each in the clip's list of uploads. */
  add(files: Iterable<File>): void;
  /** clear cancels every upload. */
  clear(): void;
}

/** createUploads sends files, one row per upload: progress, cancel, retry after a dropped connection, the limit's message. */
export function createUploads(d: UploadsDeps): Uploads {
  const rows = new Set<() => void>();
  const { clip } = d;

  function uploadRow(file: File): void {
    const ctl: { abort?: AbortController; uploadId: string } = { uploadId: "" };
    const name = file.name || "file";
    const fill = h("div", { class: "bar-fill" });
    const bar = h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0, "aria-label": `Sending ${name}`, "data-testid": "upload-progress" }, fill);
    const err = h("p", { class: "file-error", role: "alert", "data-testid": "file-error", hidden: true });
    const retry = h("button", { type: "button", class: "link", "data-testid": "upload-retry", hidden: true, onclick: () => start() }, "Retry");
    const cancel = h("button", { type: "button", class: "link", "data-testid": "upload-cancel", onclick: () => stop() }, "Cancel");
    const row = h(
      "div",
      { class: "upload", role: "listitem", "data-testid": "upload-row" },
      h("div", { class: "upload-top" }, h("span", { class: "file-name" }, name), h("span", { class: "file-size" }, formatBytes(file.size))),
      bar,
      err,
      h("div", { class: "upload-actions" }, retry, cancel),
    );
    clip.uploads.append(row);

    const setProgress = (sent: number) => {
      const p = progressPercent(sent, file.size);
      bar.setAttribute("aria-valuenow", String(p));
      fill.style.width = `${p}%`;
    };
    const fail = (msg: string, canRetry: boolean) => {
      err.textContent = msg;
      show(err, true);
      show(bar, false);
      show(retry, canRetry);
      cancel.textContent = "Dismiss";
      cancel.setAttribute("aria-label", `Dismiss ${name}`);
      (canRetry ? retry : cancel).focus();
    };
    const remove = () => {
      const hadFocus = row.contains(document.activeElement);
      rows.delete(stop);
      row.remove();
      if (hadFocus && !clip.button.hidden) clip.button.focus();
    };

    async function start(): Promise<void> {
      const chatId = d.chatId();
      if (!chatId || ctl.abort) return;
      show(err, false);
      show(retry, false);
      show(bar, true);
      cancel.textContent = "Cancel";
      cancel.setAttribute("aria-label", `Cancel sending ${name}`);
      const abort = (ctl.abort = new AbortController());
      try {
        await uploadFile(d.files, chatId, file, {
          uploadId: ctl.uploadId || undefined,
          signal: abort.signal,
          onStarted: (id) => (ctl.uploadId = id),
          onProgress: setProgress,
        });
        // The chat's FileShared event shows the file; this row is done.
        remove();
        void clip.load();
      } catch (e) {
        if (abort.signal.aborted) return;
        const ce = ConnectError.from(e);
        if (retryable(ce)) fail("The connection dropped. Retry to go on where it stopped.", true);
        else fail(ce.code === Code.Canceled ? "Cancelled." : sentence(errorMessage(ce)), false);
      } finally {
        ctl.abort = undefined;
      }
    }

    /** stop cancels a running upload, or abandons a failed one. */
    function stop(): void {
      if (ctl.abort) ctl.abort.abort();
      else if (ctl.uploadId) void d.files.cancelUpload({ uploadId: ctl.uploadId }).catch(() => undefined);
      remove();
    }

    rows.add(stop);
    const limits = clip.limits();
    const tooBig = limits ? tooLarge(file.size, limits) : "";
    if (tooBig) fail(tooBig, false);
    else void start();
  }

  return {
    add(files) {
      for (const f of files) uploadRow(f);
    },
    clear() {
      for (const stop of [...rows]) stop();
    },
  };
}

const THUMB_W = 220;
const THUMB_H = 160;

/**
 * fileCard shows a shared file: its name and size as text, a thumbnail for
 * images (the bytes fetched over DownloadFile, decoded by createImageBitmap
 * and drawn on a canvas: pixels, never markup), and a download button that
 * mints a single-use link and follows it with a hidden <a download>.
 */
export function fileCard(f: FileShared, files: FileClient, onError: (err: unknown) => void): HTMLElement {
  const dl = h("button", { type: "button", class: "btn-dl", "data-testid": "file-download", "aria-label": `Download ${f.name}` }, "Download");
  const kind = f.contentType.split("/")[1]?.split(/[;+]/)[0]?.toUpperCase() ?? "";
  const card = h(
    "div",
    { class: "file", "data-testid": "file-row", "data-file-id": f.fileId },
    h("div", { class: "file-info" }, h("span", { class: "file-name" }, f.name), h("span", { class: "file-size" }, [formatBytes(Number(f.size)), kind].filter(Boolean).join(" · "))),
    dl,
  );
  dl.addEventListener("click", async () => {
    dl.disabled = true;
    try {
      const url = await downloadLink(files, f.fileId);
      const a = h("a", { href: url, download: f.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      onError(err);
    } finally {
      dl.disabled = false;
    }
  });
  if (f.contentType.startsWith("image/") && typeof createImageBitmap === "function") void thumbnail(card, f, files);
  return card;
}

async function thumbnail(card: HTMLElement, f: FileShared, files: FileClient): Promise<void> {
  try {
    const bmp = await createImageBitmap(await downloadFile(files, f.fileId));
    const k = Math.min(1, THUMB_W / bmp.width, THUMB_H / bmp.height);
    const canvas = h("canvas", { class: "file-thumb", "data-testid": "file-thumb", role: "img", "aria-label": `Preview of ${f.name}` });
    canvas.width = Math.max(1, Math.round(bmp.width * k));
    canvas.height = Math.max(1, Math.round(bmp.height * k));
    canvas.getContext("2d")?.drawImage(bmp, 0, 0, canvas.width, canvas.height);
    bmp.close();
    card.prepend(h("div", { class: "thumb-wrap" }, canvas));
    card.classList.add("has-thumb");
  } catch {
    // No preview (a type the browser cannot decode, or the chat ended): the card stays.
  }
}

/** disableDownloads turns off the download buttons under root (the chat ended: its files are gone). */
export function disableDownloads(root: HTMLElement): void {
  for (const b of root.querySelectorAll<HTMLButtonElement>("[data-testid=file-download]")) {
    b.disabled = true;
    b.title = "The file was deleted with the chat";
  }
}
