// Files in a chat, for the widget panel and the console alike: the attach
// button with its hidden file input, drag-and-drop and paste, one row per
// upload (progress, cancel, retry after a dropped connection, the limit's
// message), and the card of a shared file (name and size as text, a
// thumbnail drawn on a canvas from the bytes for images, a download button
// that follows a single-use link). Nothing a participant sent ever becomes
// markup: names are text nodes, images are pixels.
import {
  type FileClient,
  type FileShared,
  type GetFileLimitsResponse,
  ConnectError,
  Code,
  downloadFile,
  downloadLink,
  errorMessage,
  retryable,
  uploadFile,
} from "@lethe/sdk";
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
export function tooLarge(size: number, l: Pick<GetFileLimitsResponse, "maxFileBytes" | "maxChatBytes" | "usedChatBytes">): string {
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

export interface AttachDeps {
  files: FileClient;
  /** The open chat, or undefined. */
  chatId(): string | undefined;
}

export interface Attach {
  /** The paper clip, for the composer. */
  readonly button: HTMLButtonElement;
  /** The uploads under way or failed (and the hidden file input), for above the composer. */
  readonly uploads: HTMLElement;
  /** load asks the server what may be sent into the chat; the button shows only if files are on. */
  load(): Promise<void>;
  /** enable turns sending files on for an open chat (when the server allows them) or off. */
  enable(on: boolean): void;
  /** dropOn takes files dropped on el or pasted into it. */
  dropOn(el: HTMLElement): void;
  /** clear cancels every upload and forgets the limits (a new chat). */
  clear(): void;
}

type Limits = GetFileLimitsResponse;

/** createAttach builds the sending side of files. */
export function createAttach(d: AttachDeps): Attach {
  const st: { limits: Limits | undefined; on: boolean; rows: Set<() => void> } = { limits: undefined, on: false, rows: new Set() };
  const input = h("input", { type: "file", multiple: true, hidden: true, tabindex: -1, "data-testid": "file-input", "aria-hidden": "true" });
  const button = h(
    "button",
    { type: "button", class: "btn-attach", "data-testid": "attach", "aria-label": "Attach a file", title: "Attach a file", hidden: true, onclick: () => input.click() },
    h("span", { class: "i-clip", "aria-hidden": "true" }),
  );
  const uploads = h("div", { class: "uploads", "aria-label": "Uploads", role: "list" }, input);
  input.addEventListener("change", () => {
    add(input.files);
    input.value = "";
  });

  const usable = () => st.on && !!st.limits?.enabled;
  function render(): void {
    show(button, usable());
    input.accept = st.limits?.accept ?? "";
  }

  function add(list: FileList | null | undefined): void {
    if (!list || !usable()) return;
    for (const f of Array.from(list)) uploadRow(f);
  }

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
    uploads.append(row);

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
      st.rows.delete(stop);
      row.remove();
      if (hadFocus && !button.hidden) button.focus();
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
        void load();
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

    st.rows.add(stop);
    const tooBig = st.limits ? tooLarge(file.size, st.limits) : "";
    if (tooBig) fail(tooBig, false);
    else void start();
  }

  async function load(): Promise<void> {
    const chatId = d.chatId();
    if (!chatId) return;
    try {
      st.limits = await d.files.getFileLimits({ chatId });
    } catch {
      // An older server, or the chat is gone: no files then.
      st.limits = undefined;
    }
    render();
  }

  return {
    button,
    uploads,
    load,
    enable(on) {
      st.on = on;
      render();
    },
    dropOn(el) {
      const hasFiles = (e: DragEvent) => usable() && !!e.dataTransfer?.types.includes("Files");
      el.addEventListener("dragover", (e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        el.classList.add("dropping");
      });
      el.addEventListener("dragleave", (e) => {
        if (e.target === el) el.classList.remove("dropping");
      });
      el.addEventListener("drop", (e) => {
        el.classList.remove("dropping");
        if (!hasFiles(e)) return;
        e.preventDefault();
        add(e.dataTransfer?.files);
      });
      el.addEventListener("paste", (e) => {
        const files = e.clipboardData?.files;
        if (!files?.length || !usable()) return;
        e.preventDefault();
        add(files);
      });
    },
    clear() {
      for (const stop of [...st.rows]) stop();
      st.limits = undefined;
      render();
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
