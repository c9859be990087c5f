// The paper clip of files in a chat, for the widget panel and the console:
// the attach button with its hidden file input, drag-and-drop and paste, and
// what the server says may be sent (the chat's file limits), which shows or
// hides the button. It carries no generated client, so that the widget
// panel's first load draws it; what sends the files (ui/files.ts, with the
// FileService client) is handed the files the participant gives it.
import { h, show } from "./dom";

/** FileLimits is what may be sent into a chat: the fields of GetFileLimitsResponse the UI reads. */
export interface FileLimits {
  enabled: boolean;
  accept: string;
  maxFileBytes: bigint;
  maxChatBytes: bigint;
  usedChatBytes: bigint;
}

export interface PaperClipDeps {
  /** The open chat, or undefined. */
  chatId(): string | undefined;
  /** getLimits asks the server what may be sent into the chat (GetFileLimits). */
  getLimits(chatId: string): Promise<FileLimits>;
  /** onFiles takes the files chosen, dropped or pasted; it is called only while sending files is usable. */
  onFiles(files: File[]): void;
  /** onOpen runs when the button opens the file chooser (to load what sends the files meanwhile). */
  onOpen?(): void;
}

export interface PaperClip {
  /** The paper clip, for the composer. */
  readonly button: HTMLButtonElement;
  /** The list of uploads (with the hidden file input), for above the composer. */
  readonly uploads: HTMLElement;
  /** The limits the server last gave for the chat, or undefined. */
  limits(): FileLimits | undefined;
  /** usable tells whether files may be sent now: the chat is open and the server allows files. */
  usable(): boolean;
  /** load asks the server what may be sent into the chat; the button shows only if files are on. */
  load(): Promise<void>;
  /** enable turns sending files on for an open chat (when the server allows them) or off. */
  enable(on: boolean): void;
  /** dropOn takes files dropped on el or pasted into it. */
  dropOn(el: HTMLElement): void;
  /** reset forgets the limits (a new chat): the button hides until the next load. */
  reset(): void;
}

/** createPaperClip builds the paper clip, its file input and the drop and paste handling. */
export function createPaperClip(d: PaperClipDeps): PaperClip {
  const st: { limits: FileLimits | undefined; on: boolean } = { limits: undefined, on: false };
  const input = h("input", { type: "file", multiple: true, hidden: true, tabindex: -1, "data-testid": "file-input", "aria-hidden": "true" });
  const button = h(
    "button",
    {
      type: "button",
      class: "btn-attach",
      "data-testid": "attach",
      "aria-label": "Attach a file",
      title: "Attach a file",
      hidden: true,
      onclick: () => {
        input.click();
        d.onOpen?.();
      },
    },
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
    if (!list?.length || !usable()) return;
    d.onFiles(Array.from(list));
  }

  async function load(): Promise<void> {
    const chatId = d.chatId();
    if (!chatId) return;
    try {
      st.limits = await d.getLimits(chatId);
    } catch {
      // An older server, or the chat is gone: no files then.
      st.limits = undefined;
    }
    render();
  }

  return {
    button,
    uploads,
    limits: () => st.limits,
    usable,
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
    reset() {
      st.limits = undefined;
      render();
    },
  };
}
