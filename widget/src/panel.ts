/**
 * The chat panel runs inside the loader's iframe on the Lethe origin. It owns
 * the visitor's side of a chat: pre-chat form, live log, composer. It talks to
 * the host page only through postMessage with the host origin from the page's
 * meta tag, and never sends chat content there.
 */
import {
  AuthorKind,
  ChatService,
  ChatState,
  type ChatEvent,
  createClient,
  createLetheTransport,
  errorMessage,
  timestampDate,
  watchChatResuming,
} from "@lethe/sdk";
import { h, show } from "./dom";

const STORE_KEY = "lethe.visitor";
const MAX_CHARS = 4000;
const COUNTER_FROM = 3600;
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 6000;
const CONFIG_POLL_MS = 15000;

interface Stored {
  token: string;
  chatId: string;
  /** Highest seq the visitor has had in front of them (for unread counts). */
  lastSeq?: string;
}

const meta = (name: string) =>
  document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
const accountId = meta("lethe-account");
const hostOrigin = meta("lethe-host");

// ---- storage ---------------------------------------------------------------

function loadSession(): Stored | undefined {
  try {
    const v: unknown = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (typeof o.token === "string" && typeof o.chatId === "string") {
        return { token: o.token, chatId: o.chatId, lastSeq: typeof o.lastSeq === "string" ? o.lastSeq : undefined };
      }
    }
  } catch {
    // Storage blocked or corrupt: start over.
  }
  return undefined;
}

function saveSession(s: Stored | undefined): void {
  try {
    if (s) sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(STORE_KEY);
  } catch {
    // Storage blocked: the chat still works for this page view.
  }
}

let session = loadSession();
const client = createClient(ChatService, createLetheTransport(location.origin, { token: () => session?.token }));

// ---- host page ----------------------------------------------------------------

type HostMessage = { type: "lethe:open" } | { type: "lethe:close" } | { type: "lethe:context"; url: string };

function postHost(msg: { type: string; count?: number }): void {
  if (!hostOrigin || window.parent === window) return;
  try {
    window.parent.postMessage(msg, hostOrigin);
  } catch {
    // An invalid host origin: there is nobody to talk to.
  }
}

let isOpen = false;
let unread = 0;
let seenSeq = BigInt(session?.lastSeq ?? "0");
let shownSeq = 0n;

function markSeen(): void {
  if (shownSeq > seenSeq) seenSeq = shownSeq;
  if (session) {
    session.lastSeq = seenSeq.toString();
    saveSession(session);
  }
  if (unread) {
    unread = 0;
    postHost({ type: "lethe:unread", count: 0 });
  }
}

function setOpen(open: boolean): void {
  isOpen = open;
  if (open) {
    markSeen();
    focusFirst();
  }
}

window.addEventListener("message", (e: MessageEvent) => {
  if (!hostOrigin || e.origin !== hostOrigin || e.source !== window.parent) return;
  const msg = e.data as HostMessage | null;
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "lethe:open") setOpen(true);
  else if (msg.type === "lethe:close") isOpen = false;
  // lethe:context (page URL and title) is accepted but not yet used.
});

function minimize(): void {
  isOpen = false;
  postHost({ type: "lethe:close" });
}

// ---- shell -------------------------------------------------------------------

const title = h("h1", { class: "title", id: "lethe-title" }, "Chat");
const subtitle = h("p", { class: "subtitle" });
const endBtn = h("button", { type: "button", class: "btn-head", "data-testid": "end", hidden: true, onclick: () => askEnd(true) }, "End chat");
const minBtn = h(
  "button",
  { type: "button", class: "btn-icon", "aria-label": "Minimize chat", title: "Minimize", onclick: minimize },
  h("span", { class: "i-min", "aria-hidden": "true" }),
);
const confirmYes = h("button", { type: "button", class: "btn danger", "data-testid": "end-confirm", onclick: () => void endChat() }, "End chat");
const confirmNo = h("button", { type: "button", class: "btn ghost", onclick: () => askEnd(false) }, "Cancel");
const confirmBar = h(
  "div",
  { class: "confirm", role: "group", "aria-label": "Confirm ending the chat", hidden: true },
  h("span", null, "End this chat? The conversation will be deleted."),
  h("div", { class: "confirm-actions" }, confirmNo, confirmYes),
);
const errorBox = h("div", { class: "error", role: "alert", "data-testid": "error" });
const body = h("div", { class: "body" });

document.getElementById("app")?.append(
  h(
    "div",
    { class: "panel", role: "region", "aria-labelledby": "lethe-title" },
    h("header", { class: "head" }, h("div", { class: "head-text" }, title, subtitle), endBtn, minBtn),
    confirmBar,
    errorBox,
    body,
  ),
);

function showError(msg: string): void {
  errorBox.textContent = msg;
}

function clearError(): void {
  errorBox.textContent = "";
}

document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (!confirmBar.hidden) askEnd(false);
  else minimize();
});

// ---- pre-chat form -----------------------------------------------------------

let pollTimer: ReturnType<typeof setInterval> | undefined;
let maxChars = MAX_CHARS;
let visitorName = "";

function field(label: string, input: HTMLInputElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label, hint ? h("span", { class: "hint" }, hint) : null), input);
}

const nameIn = h("input", { name: "name", "data-testid": "name", required: true, maxlength: 100, autocomplete: "name" });
const emailIn = h("input", { name: "email", type: "email", "data-testid": "email", maxlength: 254, autocomplete: "email" });
const messageIn = h("textarea", { name: "message", "data-testid": "message", required: true, maxlength: MAX_CHARS, rows: 4 });
const startBtn = h("button", { type: "submit", class: "btn primary wide", "data-testid": "start" }, "Start chat");
const fields = h(
  "fieldset",
  { class: "fields" },
  h("legend", { class: "sr-only" }, "Your details"),
  field("Name", nameIn),
  field("E-mail", emailIn, "optional"),
  field("Message", messageIn),
  startBtn,
);
const offline = h(
  "div",
  { class: "notice", "data-testid": "offline", hidden: true },
  h("strong", null, "No operator is online right now"),
  h("span", null, "Please check back a little later. This page checks again on its own."),
  h("button", { type: "button", class: "btn ghost small", onclick: () => void loadConfig() }, "Check again"),
);
const prechat = h(
  "form",
  { class: "prechat", "data-testid": "prechat", onsubmit: (e) => void startChat(e) },
  h("p", { class: "intro" }, "Hi! Send us a message and we will answer right here."),
  offline,
  fields,
);

async function loadConfig(): Promise<void> {
  if (!accountId) {
    showError("This chat is not set up correctly.");
    return;
  }
  try {
    const cfg = await client.getWidgetConfig({ accountId });
    if (cfg.accountName) title.textContent = cfg.accountName;
    if (cfg.maxMessageChars > 0) maxChars = cfg.maxMessageChars;
    messageIn.maxLength = maxChars;
    composer.maxLength = maxChars;
    setOnline(cfg.operatorsOnline);
  } catch (err) {
    showError(errorMessage(err));
  }
}

function setOnline(online: boolean): void {
  if (body.firstChild !== prechat) return; // the chat view keeps its own status
  show(offline, !online);
  fields.disabled = !online;
  subtitle.textContent = online ? "We typically reply in a few minutes" : "Offline";
  if (online) {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
  } else {
    pollTimer ??= setInterval(() => void loadConfig(), CONFIG_POLL_MS);
  }
}

function showPrechat(): void {
  stopWatch();
  body.replaceChildren(prechat);
  show(endBtn, false);
  askEnd(false);
  messageIn.value = "";
  startBtn.disabled = false;
  void loadConfig();
}

async function startChat(e: Event): Promise<void> {
  e.preventDefault();
  if (!prechat.reportValidity()) return;
  clearError();
  startBtn.disabled = true;
  try {
    const res = await client.startChat({
      accountId,
      visitorName: nameIn.value.trim(),
      visitorEmail: emailIn.value.trim(),
      firstMessage: messageIn.value.trim(),
    });
    visitorName = nameIn.value.trim();
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
    session = { token: res.visitorToken, chatId: res.chatId, lastSeq: "0" };
    seenSeq = 0n;
    saveSession(session);
    showChat();
    composer.focus();
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    startBtn.disabled = false;
  }
}

// ---- chat view ----------------------------------------------------------------

const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages", "data-testid": "log" });
const waiting = h("p", { class: "sys waiting", "data-testid": "waiting" }, "Waiting for an operator…");
const typing = h("p", { class: "typing", "data-testid": "typing", "aria-live": "polite", hidden: true });
const newChatBtn = h("button", { type: "button", class: "btn primary", onclick: () => showPrechat() }, "Start a new chat");
const closedBox = h(
  "div",
  { class: "closed", "data-testid": "closed", hidden: true },
  h("span", null, "This conversation is over and has been deleted."),
  newChatBtn,
);
const composer = h("textarea", {
  id: "lethe-composer",
  class: "composer-input",
  "data-testid": "composer",
  rows: 1,
  maxlength: MAX_CHARS,
  placeholder: "Write a message…",
  "aria-describedby": "lethe-counter",
});
const counter = h("span", { class: "counter", id: "lethe-counter", "aria-live": "polite" });
const sendBtn = h(
  "button",
  { type: "submit", class: "btn-send", "data-testid": "send", "aria-label": "Send" },
  h("span", { class: "i-send", "aria-hidden": "true" }),
);
const composerForm = h(
  "form",
  { class: "composer", onsubmit: (e) => { e.preventDefault(); void send(); } },
  h("label", { for: "lethe-composer", class: "sr-only" }, "Message"),
  composer,
  counter,
  sendBtn,
);
const chatView = h("section", { class: "chat", "data-testid": "chat", "aria-label": "Conversation" }, log, typing, closedBox, composerForm);

let watchCtl: AbortController | undefined;
let chatState = ChatState.UNSPECIFIED;
let operatorName = "";
let typingTimer: ReturnType<typeof setTimeout> | undefined;
let chatClosed = false;

function stopWatch(): void {
  watchCtl?.abort();
  watchCtl = undefined;
}

function showChat(): void {
  stopWatch();
  const s = session;
  if (!s) return showPrechat();
  chatClosed = false;
  chatState = ChatState.UNSPECIFIED;
  operatorName = "";
  shownSeq = 0n;
  log.replaceChildren();
  show(typing, false);
  show(closedBox, false);
  show(endBtn, true);
  setComposerEnabled(true);
  body.replaceChildren(chatView);
  subtitle.textContent = "Connecting…";
  const ctl = new AbortController();
  watchCtl = ctl;
  void watchChatResuming(client, s.chatId, {
    signal: ctl.signal,
    onEvent: (ev) => onEvent(ev),
    onState: (st) => onState(st),
    onConnection: (live) => {
      if (!live) subtitle.textContent = "Reconnecting…";
      else onState(chatState);
    },
    onFinalError: () => {
      // The chat is gone (deleted, or the token no longer valid): start over.
      session = undefined;
      saveSession(undefined);
      showPrechat();
    },
  });
}

function onState(st: ChatState): void {
  chatState = st;
  show(waiting, st === ChatState.WAITING);
  if (st === ChatState.WAITING) {
    if (waiting.parentNode !== log || log.lastChild !== waiting) log.append(waiting);
    subtitle.textContent = "In the queue";
  } else if (st === ChatState.ACTIVE) {
    waiting.remove();
    subtitle.textContent = operatorName ? `Chatting with ${operatorName}` : "An operator is here";
  } else if (st === ChatState.CLOSED) {
    waiting.remove();
    subtitle.textContent = "Chat ended";
  }
}

function fmtTime(ev: ChatEvent): string {
  if (!ev.time) return "";
  return timestampDate(ev.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function addLine(author: "visitor" | "operator" | "system", text: string, ev: ChatEvent, name?: string): void {
  const el =
    author === "system"
      ? h("p", { class: "sys", "data-testid": "msg", "data-author": "system" }, text)
      : h(
          "div",
          { class: `msg ${author}`, "data-testid": "msg", "data-author": author },
          h("span", { class: "who" }, name ?? ""),
          h("p", { class: "bubble" }, text),
          h("time", { class: "when" }, fmtTime(ev)),
        );
  const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  // Keep the waiting line last while it is shown.
  if (waiting.parentNode === log) log.insertBefore(el, waiting);
  else log.append(el);
  if (stick || author === "visitor") log.scrollTop = log.scrollHeight;
}

function hideTyping(): void {
  if (typingTimer) clearTimeout(typingTimer);
  typingTimer = undefined;
  show(typing, false);
}

function onEvent(ev: ChatEvent): void {
  if (ev.seq > shownSeq) shownSeq = ev.seq;
  const k = ev.kind;
  switch (k.case) {
    case "started":
      visitorName = k.value.visitorName;
      break;
    case "message": {
      const m = k.value;
      const mine = m.authorKind === AuthorKind.VISITOR;
      if (m.authorKind === AuthorKind.OPERATOR) {
        hideTyping();
        if (!isOpen && ev.seq > seenSeq) {
          unread++;
          postHost({ type: "lethe:unread", count: unread });
        }
      }
      if (m.authorKind === AuthorKind.SYSTEM) addLine("system", m.text, ev);
      else addLine(mine ? "visitor" : "operator", m.text, ev, mine ? m.authorName || visitorName || "You" : m.authorName);
      break;
    }
    case "typing": {
      const t = k.value;
      if (t.authorKind !== AuthorKind.OPERATOR) break;
      if (!t.typing) return hideTyping();
      typing.textContent = `${t.authorName || "The operator"} is typing…`;
      show(typing, true);
      if (typingTimer) clearTimeout(typingTimer);
      typingTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
      break;
    }
    case "operatorJoined":
      operatorName = k.value.operatorName;
      addLine("system", `${operatorName} joined the chat`, ev);
      if (chatState === ChatState.ACTIVE) onState(chatState);
      break;
    case "operatorLeft":
      addLine("system", `${k.value.operatorName} left the chat`, ev);
      break;
    case "closed":
      onClosed(ev);
      break;
  }
  if (isOpen && ev.seq !== 0n) markSeen();
}

function onClosed(ev: ChatEvent): void {
  chatClosed = true;
  hideTyping();
  stopTyping();
  onState(ChatState.CLOSED);
  addLine("system", "Chat ended", ev);
  setComposerEnabled(false);
  show(endBtn, false);
  askEnd(false);
  show(closedBox, true);
  session = undefined;
  saveSession(undefined);
  const focusWasInside = document.activeElement === composer || document.activeElement === confirmYes;
  if (focusWasInside) newChatBtn.focus();
}

function setComposerEnabled(on: boolean): void {
  composer.disabled = !on;
  sendBtn.disabled = !on;
  composerForm.classList.toggle("off", !on);
}

// ---- composing ------------------------------------------------------------------

let lastTypingSent = 0;
let typingOn = false;
let idleTimer: ReturnType<typeof setTimeout> | undefined;
let sending = false;

function setTyping(on: boolean): void {
  const s = session;
  if (!s || chatClosed) return;
  typingOn = on;
  lastTypingSent = on ? Date.now() : 0;
  client.setTyping({ chatId: s.chatId, typing: on }).catch(() => {
    // Typing is best effort; a lost notice is harmless.
  });
}

function stopTyping(): void {
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = undefined;
  if (typingOn) setTyping(false);
}

function updateCounter(): void {
  const n = composer.value.length;
  counter.textContent = n >= COUNTER_FROM ? `${n} / ${maxChars}` : "";
  counter.classList.toggle("full", n >= maxChars);
}

composer.addEventListener("input", () => {
  updateCounter();
  autosize();
  if (!composer.value.trim()) return stopTyping();
  if (Date.now() - lastTypingSent >= TYPING_EVERY_MS) setTyping(true);
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
});

composer.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});

function autosize(): void {
  composer.style.height = "auto";
  composer.style.height = `${Math.min(composer.scrollHeight, 140)}px`;
}

async function send(): Promise<void> {
  const s = session;
  const text = composer.value.trim();
  if (!s || !text || sending || chatClosed) return;
  sending = true;
  sendBtn.disabled = true;
  stopTyping();
  try {
    await client.sendMessage({ chatId: s.chatId, text });
    clearError();
    if (composer.value.trim() === text) composer.value = "";
    updateCounter();
    autosize();
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    sending = false;
    sendBtn.disabled = chatClosed;
    if (!chatClosed) composer.focus();
  }
}

function askEnd(on: boolean): void {
  const wasOpen = !confirmBar.hidden;
  show(confirmBar, on);
  if (on) confirmYes.focus();
  else if (wasOpen && !endBtn.hidden) endBtn.focus();
}

async function endChat(): Promise<void> {
  const s = session;
  if (!s) return;
  confirmYes.disabled = true;
  try {
    await client.endChat({ chatId: s.chatId });
    clearError();
    show(confirmBar, false);
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    confirmYes.disabled = false;
  }
}

function focusFirst(): void {
  if (body.firstChild === chatView) {
    if (!composer.disabled) composer.focus();
    else newChatBtn.focus();
  } else if (!fields.disabled) {
    (nameIn.value ? messageIn : nameIn).focus();
  }
}

// ---- start -----------------------------------------------------------------------

if (session) {
  showChat();
  void loadConfig();
} else {
  showPrechat();
}
postHost({ type: "lethe:ready" });
