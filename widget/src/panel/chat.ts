/**
 * The chat view: the conversation as the server streams it (history first,
 * then live), the operator's typing notice, the queue and closed states, the
 * "End chat" button with its confirmation, the transcript and withdrawal
 * links (tools.ts), the composer (composer.ts) and files: the paper clip
 * with drop and paste (ui/attach.ts, drawn at once, its limits read over the
 * JSON api), and the uploads and shared files' cards (ui/files.ts), whose
 * chunk (files.ts, with the generated clients) loads on the first use of
 * files: the paper clip's first click, the first file given, or the first
 * shared file to draw. A chat without files never loads it.
 */
import { type ChatEvent, type ChatState, type PanelApi, type RpcError, type WidgetConfig, errorMessage } from "./api";
import { createPaperClip } from "../../../ui/attach";
import { h, show } from "../../../ui/dom";
import { createComposer } from "./composer";
import { maxChars } from "./config";
import type { Shell } from "./shell";
import type { ChatSession, SessionBox } from "./storage";
import type { FilesUi } from "./files";
import { createTools } from "./tools";

const TYPING_SHOWN_MS = 6000;

export interface ChatDeps {
  shell: Shell;
  api: PanelApi;
  session: SessionBox;
  /** onEvent reports each event shown, for the unread count. */
  onEvent(seq: bigint, byOperator: boolean): void;
  /** onGone runs when the chat no longer exists (deleted, or the token is no longer valid). */
  onGone(): void;
  /** onNewChat runs when the visitor asks for a new chat after this one closed. */
  onNewChat(): void;
  /** prefillEmail is the address to offer for the transcript. */
  prefillEmail(): string;
}

export interface ChatView {
  readonly root: HTMLElement;
  /** The header's "End chat" button and the confirmation bar under the header. */
  readonly endButton: HTMLElement;
  readonly endConfirm: HTMLElement;
  /** show follows a chat from its first event. */
  show(s: ChatSession): void;
  /** stop stops following the chat, for another view. */
  stop(): void;
  configure(cfg: WidgetConfig): void;
  focus(): void;
  /** escape closes an open confirmation and tells whether there was one. */
  escape(): boolean;
}

interface ChatViewState {
  watch: AbortController | undefined;
  state: ChatState;
  operatorName: string;
  visitorName: string;
  closed: boolean;
  transcripts: boolean;
  typingTimer: ReturnType<typeof setTimeout> | undefined;
  /** The files UI once its chunk is in, and its loading. */
  files: FilesUi | undefined;
  filesLoading: Promise<FilesUi | undefined> | undefined;
}

export function createChatView(d: ChatDeps): ChatView {
  const st: ChatViewState = {
    watch: undefined,
    state: "",
    operatorName: "",
    visitorName: "",
    closed: false,
    transcripts: false,
    typingTimer: undefined,
    files: undefined,
    filesLoading: undefined,
  };
  const chatId = () => d.session.current?.chatId;

  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages", "data-testid": "log" });
  const waiting = h("p", { class: "sys waiting", "data-testid": "waiting" }, "Waiting for an operator…");
  const typing = h("p", { class: "typing", "data-testid": "typing", "aria-live": "polite", hidden: true });
  const newChatBtn = h("button", { type: "button", class: "btn primary", onclick: () => d.onNewChat() }, "Start a new chat");
  const closedText = h("p", { class: "closed-text" });
  const closedBox = h("div", { class: "closed", "data-testid": "closed", role: "status", hidden: true }, closedText, newChatBtn);
  const tools = createTools({
    shell: d.shell,
    api: d.api,
    chatId,
    prefillEmail: d.prefillEmail,
    onWithdrawn() {
      stopWatch();
      // The chat no longer exists anywhere; do not keep it on screen either.
      log.replaceChildren();
      endChatView("", "You withdrew your consent. The chat has ended and everything in it was deleted.");
    },
  });
  // The paper clip, drawn now; what it is given is sent by the files chunk,
  // loaded as the file chooser opens or when a file is dropped or pasted.
  const clip = createPaperClip({
    chatId,
    getLimits: (id) => d.api.getFileLimits(id),
    onOpen: () => void loadFiles(),
    onFiles(files) {
      void loadFiles().then((ui) => {
        // The chat may have ended while the chunk loaded.
        if (ui && clip.usable()) ui.upload(files);
        else if (!ui) d.shell.showError("The files could not be sent. Please try again.");
      });
    },
  });
  const composer = createComposer({
    lead: clip.button,
    async send(text) {
      const id = chatId();
      if (!id || st.closed) return false;
      try {
        await d.api.sendMessage(id, text);
        d.shell.clearError();
        return true;
      } catch (err) {
        d.shell.showError(errorMessage(err));
        return false;
      }
    },
    typing(on) {
      const id = chatId();
      if (!id || st.closed) return;
      d.api.setTyping(id, on).catch(() => {
        // Typing is best effort; a lost notice is harmless.
      });
    },
  });
  const root = h("section", { class: "chat", "data-testid": "chat", "aria-label": "Conversation" }, log, typing, closedBox, tools.root, clip.uploads, composer.root);
  clip.dropOn(root);

  /** loadFiles loads the files chunk once (a failed load may be tried again by the next chat). */
  function loadFiles(): Promise<FilesUi | undefined> {
    st.filesLoading ??= import("./files").then(
      ({ filesUi }) => {
        const ui = filesUi(() => d.session.current?.token, chatId, clip);
        st.files = ui;
        return ui;
      },
      () => {
        st.filesLoading = undefined;
        return undefined;
      },
    );
    return st.filesLoading;
  }

  const endButton = h("button", { type: "button", class: "btn-head", "data-testid": "end", hidden: true, onclick: () => askEnd(true) }, "End chat");
  const confirmYes = h("button", { type: "button", class: "btn danger", "data-testid": "end-confirm", onclick: () => void endChat() }, "End chat");
  const confirmNo = h("button", { type: "button", class: "btn ghost", onclick: () => askEnd(false) }, "Cancel");
  const endConfirm = h(
    "div",
    { class: "confirm", role: "group", "aria-label": "Confirm ending the chat", hidden: true },
    h("span", null, "End this chat? The conversation will be deleted."),
    h("div", { class: "confirm-actions" }, confirmNo, confirmYes),
  );

  function stopWatch(): void {
    st.watch?.abort();
    st.watch = undefined;
  }

  function renderTools(): void {
    const s = d.session.current;
    tools.render({ open: !!s && !st.closed, transcripts: st.transcripts, consented: (s?.consent ?? 0) > 0 });
  }

  function askEnd(on: boolean): void {
    const wasOpen = !endConfirm.hidden;
    show(endConfirm, on);
    if (on) confirmYes.focus();
    else if (wasOpen && !endButton.hidden) endButton.focus();
  }

  async function endChat(): Promise<void> {
    const id = chatId();
    if (!id) return;
    confirmYes.disabled = true;
    try {
      await d.api.endChat(id);
      d.shell.clearError();
      show(endConfirm, false);
    } catch (err) {
      d.shell.showError(errorMessage(err));
    } finally {
      confirmYes.disabled = false;
    }
  }

  function onState(state: ChatState): void {
    st.state = state;
    show(waiting, state === "waiting");
    if (state === "waiting") {
      if (waiting.parentNode !== log || log.lastChild !== waiting) log.append(waiting);
      d.shell.setStatus("In the queue");
    } else if (state === "active") {
      waiting.remove();
      d.shell.setStatus(st.operatorName ? `Chatting with ${st.operatorName}` : "An operator is here");
    } else if (state === "closed") {
      waiting.remove();
      d.shell.setStatus("Chat ended");
    }
  }

  function addLine(author: "visitor" | "operator" | "system", text: string | Node, ev: ChatEvent, name?: string): void {
    const when = ev.time ? new Date(ev.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
    const el =
      author === "system"
        ? h("p", { class: "sys", "data-testid": "msg", "data-author": "system" }, text)
        : h(
            "div",
            { class: `msg ${author}`, "data-testid": "msg", "data-author": author },
            h("span", { class: "who" }, name ?? ""),
            typeof text === "string" ? h("p", { class: "bubble" }, text) : text,
            h("time", { class: "when" }, when),
          );
    const stick = atBottom();
    // Keep the waiting line last while it is shown.
    if (waiting.parentNode === log) log.insertBefore(el, waiting);
    else log.append(el);
    if (stick || author === "visitor") log.scrollTop = log.scrollHeight;
  }

  /** atBottom tells whether the log shows its last line, so it should stay there as it grows or shrinks. */
  function atBottom(): boolean {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function hideTyping(): void {
    if (st.typingTimer) clearTimeout(st.typingTimer);
    st.typingTimer = undefined;
    show(typing, false);
  }

  function onEvent(ev: ChatEvent): void {
    const k = ev.kind;
    let byOperator = false;
    switch (k.case) {
      case "started":
        st.visitorName = k.value.visitorName;
        break;
      case "message": {
        const m = k.value;
        if (m.author === "operator") {
          byOperator = true;
          hideTyping();
          addLine("operator", m.text, ev, m.authorName);
        } else if (m.author === "system") {
          addLine("system", m.text, ev);
        } else {
          addLine("visitor", m.text, ev, m.authorName || st.visitorName || "You");
        }
        break;
      }
      case "file":
        byOperator = k.value.author === "operator";
        addFile(k.value, ev);
        break;
      case "typing": {
        const t = k.value;
        if (t.author !== "operator") break;
        if (!t.typing) {
          hideTyping();
          break;
        }
        typing.textContent = `${t.authorName || "The operator"} is typing…`;
        show(typing, true);
        if (st.typingTimer) clearTimeout(st.typingTimer);
        st.typingTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
        break;
      }
      case "operatorJoined":
        st.operatorName = k.value.operatorName;
        addLine("system", `${st.operatorName} joined the chat`, ev);
        if (st.state === "active") onState(st.state);
        break;
      case "operatorLeft":
        addLine("system", `${k.value.operatorName} left the chat`, ev);
        break;
      case "closed":
        addLine("system", "Chat ended", ev);
        endChatView(k.value.reason ? `Chat closed: ${k.value.reason}` : "", "This conversation is over and has been deleted.");
        break;
    }
    d.onEvent(ev.seq, byOperator);
  }

  /** addFile shows a shared file: a placeholder until the files chunk draws its card. */
  function addFile(f: Extract<ChatEvent["kind"], { case: "file" }>["value"], ev: ChatEvent): void {
    const card = h("div", { class: "file-card" });
    const draw = (ui: FilesUi | undefined) => {
      if (!ui) return;
      const real = ui.card(f.json, (msg) => d.shell.showError(msg));
      card.replaceWith(real);
      if (st.closed) ui.disableDownloads(real);
    };
    if (f.author === "operator") addLine("operator", card, ev, f.authorName);
    else addLine("visitor", card, ev, f.authorName || st.visitorName || "You");
    // Once the placeholder is in the log, so that the card can take its place.
    if (st.files) draw(st.files);
    else void loadFiles().then(draw);
  }

  /** endChatView turns the view into its closed state, with why and what became of the chat. */
  function endChatView(why: string, text: string): void {
    const focusWasInside = root.contains(document.activeElement) || document.activeElement === confirmYes;
    const stick = atBottom();
    st.closed = true;
    hideTyping();
    onState("closed");
    composer.enable(false);
    st.files?.clear();
    clip.reset();
    clip.enable(false);
    st.files?.disableDownloads(log);
    show(endButton, false);
    askEnd(false);
    closedText.replaceChildren(...(why ? [h("strong", null, why), " ", text] : [text]));
    show(closedBox, true);
    // The note takes room from the log: keep its last lines in view.
    if (stick) log.scrollTop = log.scrollHeight;
    d.session.set(undefined);
    renderTools();
    if (focusWasInside) newChatBtn.focus();
  }

  return {
    root,
    endButton,
    endConfirm,
    show(s) {
      stopWatch();
      st.closed = false;
      st.state = "";
      st.operatorName = "";
      log.replaceChildren();
      hideTyping();
      show(closedBox, false);
      show(endButton, true);
      tools.reset();
      renderTools();
      composer.enable(true);
      st.files?.clear();
      clip.reset();
      clip.enable(true);
      void clip.load();
      d.shell.setStatus("Connecting…");
      const ctl = new AbortController();
      st.watch = ctl;
      void d.api.watchChat(s.chatId, {
        afterSeq: 0n,
        signal: ctl.signal,
        onEvent,
        onState,
        onConnection: (live) => {
          if (!live) d.shell.setStatus("Reconnecting…");
          else onState(st.state);
        },
        onFinalError: (err) => {
          // Withdrawing destroys the chat; the withdrawal shows the outcome.
          if (tools.withdrawing()) return;
          if (chatGone(err)) {
            d.session.set(undefined);
            d.onGone();
            return;
          }
          // Anything else (a proxy answering 404 for the API) is not the
          // chat's end: keep the token so that a reload resumes it.
          d.shell.setStatus("Disconnected");
          d.shell.showError(`${errorMessage(err)} Reload the page to reconnect.`);
        },
      });
    },
    stop() {
      stopWatch();
      st.files?.clear();
      clip.reset();
      show(endButton, false);
      askEnd(false);
    },
    configure(cfg) {
      st.transcripts = cfg.transcriptRequestsEnabled;
      composer.setMaxChars(maxChars(cfg));
      renderTools();
    },
    focus() {
      if (composer.enabled()) composer.focus();
      else newChatBtn.focus();
    },
    escape() {
      if (!endConfirm.hidden) {
        askEnd(false);
        return true;
      }
      return tools.escape();
    },
  };
}

/** chatGone tells whether the server says the visitor's chat no longer exists for them. */
function chatGone(err: RpcError): boolean {
  return err.code === "unauthenticated" || err.code === "not_found" || err.code === "permission_denied";
}
