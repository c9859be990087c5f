/**
 * One conversation on the chats page: the visitor's name and address, the
 * log, the visitor's typing indicator, the reply box (with the operator's
 * own typing signal), files (ui/files.ts: attach, drop, paste, uploads, and
 * shared files with thumbnails and downloads), transfer and close. The chats page feeds it events
 * (show) and the inbox's view of the chat (render); what it keeps itself is
 * only what belongs to the screen: timers, and whether a send is under way.
 */
import {
  AuthorKind,
  ChatState,
  type ChatEvent,
  type FileShared,
  type OperatorPresence,
} from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import { createAttach } from "../../ui/files-attach";
import { disableDownloads, fileCard } from "../../ui/files";
import type { PageContext } from "./context";
import { timeOfDay } from "./format";
import type { ChatEntry, Detached } from "./inbox";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 6000;
const MAX_CHARS = 4000;

export interface ChatViewOptions extends PageContext {
  /** The operator closed the banner of a chat that ended or left the lists. */
  onDismiss(): void;
  /** The chat was handed to the colleague named. */
  onTransferred(to: string): void;
}

/** What the inbox says about the chat, for render. */
export interface ChatViewProps {
  entry: ChatEntry;
  /** The operator may reply, transfer and close (the chat is theirs and open). */
  writable: boolean;
  /** Colleagues the chat can be transferred to. */
  targets: readonly OperatorPresence[];
}

export interface ChatView {
  readonly root: HTMLElement;
  /** show adds an event to the log (or shows typing). */
  show(ev: ChatEvent): void;
  render(p: ChatViewProps): void;
  /** focus puts the cursor in the reply box, if it is open. */
  focus(): void;
  scrollToEnd(): void;
  /** dispose stops the view's timers. */
  dispose(): void;
}

/** detachedText says why a chat on screen left the operator's lists. */
export function detachedText(d: Detached): string {
  switch (d.why) {
    case "ended":
      return "This chat has ended.";
    case "taken":
      return "Another operator took this chat.";
    case "unassigned":
      return "This chat is no longer assigned to you.";
    case "missing":
      return "This chat is no longer in your list.";
    case "transferred":
      return `Transferred to ${d.to}.`;
  }
}

/** The view's own state: timers and the operator's typing signal. */
interface Local {
  /** Hides the visitor's typing indicator when no stop arrives. */
  typingShown: ReturnType<typeof setTimeout> | undefined;
  /** The operator's typing signal as last sent, and when. */
  typingOn: boolean;
  typingSentAt: number;
  /** Sends "stopped typing" when the operator pauses. */
  typingIdle: ReturnType<typeof setTimeout> | undefined;
  /** A send, transfer or close is under way: its button stays off until it answers. */
  sending: boolean;
  transferring: boolean;
  closing: boolean;
  /** The transfer targets drawn, so an open list is not rebuilt for nothing. */
  targetsDrawn: string;
  /** The reply box was open at the last render (files follow it). */
  writable: boolean;
}

export function createChatView(chatId: string, o: ChatViewOptions): ChatView {
  const local: Local = { typingShown: undefined, typingOn: false, typingSentAt: 0, typingIdle: undefined, sending: false, transferring: false, closing: false, targetsDrawn: "", writable: false };

  const name = h("h2", { class: "chat-name", "data-testid": "chat-name" });
  const meta = h("p", { class: "chat-meta" });
  const ip = h("p", { class: "chat-ip", "data-testid": "visitor-ip", hidden: true });
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", "data-testid": "log" });
  const typing = h("p", { class: "typing", "data-testid": "typing", hidden: true });
  const banner = h("div", { class: "banner", hidden: true });
  const composerId = `composer-${chatId}`;
  const composer = h("textarea", {
    id: composerId,
    class: "composer-input",
    "data-testid": "composer",
    rows: 2,
    maxlength: MAX_CHARS,
    placeholder: "Write a reply… (Enter sends, Shift+Enter for a new line)",
  });
  const send = h("button", { type: "submit", class: "btn primary", "data-testid": "send" }, "Send");
  const transferSelect = h("select", { "data-testid": "transfer-select", "aria-label": "Transfer to operator" });
  const transfer = h("button", { type: "button", class: "btn ghost", "data-testid": "transfer", disabled: true }, "Transfer");
  const close = h("button", { type: "button", class: "btn danger-ghost", "data-testid": "close-chat" }, "Close chat");
  const dismiss = h("button", { type: "button", class: "btn ghost small" }, "Dismiss");
  const bannerText = h("span");
  banner.append(bannerText, dismiss);
  const attach = createAttach({ files: o.api.files, chatId: () => chatId });
  const form = h("form", { class: "composer" }, attach.button, h("label", { for: composerId, class: "sr-only" }, "Reply"), composer, send);
  const root = h(
    "article",
    { class: "chat-view", "data-testid": "chat-view", "data-chat-id": chatId },
    h(
      "header",
      { class: "chat-head" },
      h("div", { class: "chat-id" }, name, meta, ip),
      h("div", { class: "chat-actions" }, transferSelect, transfer, close),
    ),
    log,
    typing,
    banner,
    attach.uploads,
    form,
  );
  attach.dropOn(root);

  // ---- log -----------------------------------------------------------------------

  /** Near the end of the log: new lines keep it scrolled to the end. */
  const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  const append = (el: HTMLElement) => {
    const stick = atEnd();
    log.append(el);
    if (stick) log.scrollTop = log.scrollHeight;
  };
  const sysLine = (text: string) => append(h("p", { class: "sys", "data-testid": "msg", "data-author": "system" }, text));
  const fileLine = (f: FileShared, ev: ChatEvent) => {
    const author = f.authorKind === AuthorKind.VISITOR ? "visitor" : "operator";
    append(
      h(
        "div",
        { class: `msg ${author}`, "data-testid": "msg", "data-author": author },
        h("div", { class: "msg-head" }, h("span", { class: "who" }, f.authorName), h("time", { class: "when" }, timeOfDay(ev.time))),
        fileCard(f, o.api.files, o.fail),
      ),
    );
  };
  const hideTyping = () => {
    clearTimeout(local.typingShown);
    local.typingShown = undefined;
    show(typing, false);
  };

  const showEvent = (ev: ChatEvent) => {
    const k = ev.kind;
    switch (k.case) {
      case "started":
        sysLine(`${k.value.visitorName} started the chat`);
        break;
      case "message": {
        const m = k.value;
        const author = m.authorKind === AuthorKind.VISITOR ? "visitor" : m.authorKind === AuthorKind.OPERATOR ? "operator" : "system";
        if (author === "system") sysLine(m.text);
        else {
          append(
            h(
              "div",
              { class: `msg ${author}`, "data-testid": "msg", "data-author": author },
              h("div", { class: "msg-head" }, h("span", { class: "who" }, m.authorName), h("time", { class: "when" }, timeOfDay(ev.time))),
              h("p", { class: "bubble" }, m.text),
            ),
          );
        }
        if (author === "visitor") hideTyping();
        break;
      }
      case "file":
        fileLine(k.value, ev);
        break;
      case "typing": {
        const t = k.value;
        if (t.authorKind !== AuthorKind.VISITOR) break;
        if (!t.typing) {
          hideTyping();
          break;
        }
        typing.textContent = `${t.authorName || "The visitor"} is typing…`;
        show(typing, true);
        clearTimeout(local.typingShown);
        local.typingShown = setTimeout(hideTyping, TYPING_SHOWN_MS);
        break;
      }
      case "operatorJoined":
        sysLine(`${k.value.operatorName} joined the chat`);
        break;
      case "operatorLeft":
        sysLine(`${k.value.operatorName} left the chat`);
        break;
      case "visitorUpdated": {
        const v = k.value;
        sysLine(`The visitor corrected their details: ${v.visitorName}${v.visitorEmail ? ` <${v.visitorEmail}>` : ""}`);
        break;
      }
      case "closed":
        hideTyping();
        disableDownloads(log);
        sysLine(k.value.reason ? `Chat ended: ${k.value.reason}` : "Chat ended");
        break;
    }
  };

  // ---- the operator's side ---------------------------------------------------------

  const setTyping = (on: boolean) => {
    local.typingOn = on;
    local.typingSentAt = on ? Date.now() : 0;
    o.api.chat.setOperatorTyping({ chatId, typing: on }).catch(() => {
      // Typing is best effort.
    });
  };
  const stopTyping = () => {
    clearTimeout(local.typingIdle);
    local.typingIdle = undefined;
    if (local.typingOn) setTyping(false);
  };

  const sendReply = async () => {
    const text = composer.value.trim();
    if (!text || local.sending || composer.disabled) return;
    local.sending = true;
    send.disabled = true;
    stopTyping();
    try {
      await o.api.chat.sendOperatorMessage({ chatId, text });
      o.clearError();
      if (composer.value.trim() === text) composer.value = "";
    } catch (err) {
      o.fail(err);
    } finally {
      local.sending = false;
      send.disabled = composer.disabled;
      if (!composer.disabled) composer.focus();
    }
  };

  const doTransfer = async () => {
    const to = transferSelect.value;
    if (!to) return;
    const toName = transferSelect.selectedOptions[0]?.textContent ?? "";
    local.transferring = true;
    transfer.disabled = true;
    try {
      await o.api.chat.transferChat({ chatId, toOperatorId: to });
      o.clearError();
      o.onTransferred(toName);
    } catch (err) {
      transfer.disabled = false;
      o.fail(err);
    } finally {
      local.transferring = false;
    }
  };

  const doClose = async () => {
    local.closing = true;
    close.disabled = true;
    try {
      await o.api.chat.closeChat({ chatId });
      o.clearError();
    } catch (err) {
      close.disabled = false;
      o.fail(err);
    } finally {
      local.closing = false;
    }
  };

  transferSelect.addEventListener("change", () => {
    transfer.disabled = !transferSelect.value;
  });
  transfer.addEventListener("click", () => void doTransfer());
  close.addEventListener("click", () => void doClose());
  dismiss.addEventListener("click", () => o.onDismiss());
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void sendReply();
  });
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void sendReply();
    }
  });
  composer.addEventListener("input", () => {
    if (!composer.value.trim()) return stopTyping();
    if (Date.now() - local.typingSentAt >= TYPING_EVERY_MS) setTyping(true);
    clearTimeout(local.typingIdle);
    local.typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  // ---- render ------------------------------------------------------------------------

  const renderTargets = (targets: readonly OperatorPresence[]) => {
    const key = targets.map((p) => `${p.operatorId}\u0000${p.name}`).join("\u0001") + (targets.length ? "" : "none");
    if (key === local.targetsDrawn) return;
    local.targetsDrawn = key;
    const keep = transferSelect.value;
    transferSelect.replaceChildren(
      h("option", { value: "" }, targets.length ? "Transfer to…" : "No other operator online"),
      ...targets.map((p) => h("option", { value: p.operatorId }, p.name)),
    );
    transferSelect.value = targets.some((p) => p.operatorId === keep) ? keep : "";
  };

  const render = ({ entry, writable, targets }: ChatViewProps) => {
    const c = entry.summary;
    if (c) {
      name.textContent = c.visitorName || "Visitor";
      const parts = [c.visitorEmail, c.state === ChatState.WAITING ? "Waiting in queue" : c.operatorName ? `With ${c.operatorName}` : ""];
      meta.textContent = parts.filter(Boolean).join(" · ");
      // Empty when the account hides visitors' addresses (P5).
      const where = [c.visitorIp, c.visitorHost].filter(Boolean);
      ip.textContent = where.length ? `Visitor IP: ${where.join(" · ")}` : "";
      show(ip, where.length > 0);
    }
    renderTargets(targets);
    composer.disabled = !writable;
    send.disabled = !writable || local.sending;
    transferSelect.disabled = !writable;
    transfer.disabled = !writable || !transferSelect.value || local.transferring;
    close.disabled = !c || entry.closed || local.closing;
    const why = entry.closed ? detachedText({ why: "ended" }) : entry.detached ? detachedText(entry.detached) : "";
    bannerText.textContent = why;
    if (banner.hidden === !!why) {
      // The banner takes room from the log: keep its last line in view.
      const stick = atEnd();
      show(banner, !!why);
      if (stick) log.scrollTop = log.scrollHeight;
    }
    if (!writable) stopTyping();
    if (writable !== local.writable) {
      local.writable = writable;
      // Files go with the reply box: only the chat's own operator may send them.
      if (!writable) attach.clear();
      attach.enable(writable);
      if (writable) void attach.load();
    }
  };

  return {
    root,
    show: showEvent,
    render,
    focus() {
      if (!composer.disabled) composer.focus();
    },
    scrollToEnd() {
      log.scrollTop = log.scrollHeight;
    },
    dispose() {
      attach.clear();
      clearTimeout(local.typingShown);
      clearTimeout(local.typingIdle);
    },
  };
}
