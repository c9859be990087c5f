/**
 * The operator console: sign-in, the queue, the operator's chats, the
 * visitors on the website (visitors.ts), and (for admins) the operators,
 * settings, consent texts and API keys of the account. Plain DOM, one
 * WatchInbox and one WatchVisitors stream, and every visitor, operator or
 * admin string set with textContent.
 */
import {
  AccountService,
  AuthorKind,
  ChatService,
  ChatState,
  Code,
  ConnectError,
  ConsentForm,
  ConsentService,
  MailTlsPolicy,
  OperatorStatus,
  Role,
  createClient,
  createLetheTransport,
  errorMessage,
  timestampDate,
  watchInboxResuming,
  type Account,
  type ChatEvent,
  type ChatSummary,
  type ConsentText,
  type InboxWatch,
  type Operator,
  type OperatorPresence,
  type Settings,
  type WatchInboxResponse,
} from "@lethe/sdk";
import { apiKeysCard } from "./apikeys";
import { h, show } from "../../ui/dom";
import { createVisitorsPage, type VisitorsPage } from "./visitors";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 6000;
const GAP_WAIT_MS = 1500;
const MAX_CHARS = 4000;

const transport = createLetheTransport(location.origin);
const chatApi = createClient(ChatService, transport);
const accountApi = createClient(AccountService, transport);
const consentApi = createClient(ConsentService, transport);
const root = document.getElementById("app") ?? document.body;
const baseTitle = document.title || "Lethe Console";

// ---- sound -------------------------------------------------------------------

let audio: AudioContext | undefined;

/** Browsers only let audio start after a user gesture, so prepare it on one. */
function primeAudio(): void {
  try {
    audio ??= new AudioContext();
    if (audio.state === "suspended") void audio.resume();
  } catch {
    // No Web Audio: notifications stay silent.
  }
}
document.addEventListener("pointerdown", primeAudio, { once: true });
document.addEventListener("keydown", primeAudio, { once: true });

function beep(): void {
  try {
    if (!audio || audio.state !== "running") return;
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.09);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.24);
  } catch {
    // Best effort.
  }
}

// ---- helpers -----------------------------------------------------------------

function errorBox(): HTMLElement {
  return h("div", { class: "error", role: "alert", "data-testid": "error" });
}

function ago(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return "just now";
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function clock(ev: ChatEvent): string {
  return ev.time ? timestampDate(ev.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

function label(text: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, text), input);
}

// ---- sign-in -------------------------------------------------------------------

function showLogin(message = ""): void {
  stopApp();
  document.title = baseTitle;
  const err = errorBox();
  err.textContent = message;
  const email = h("input", { type: "email", name: "email", "data-testid": "login-email", autocomplete: "username", required: true, maxlength: 254 });
  const password = h("input", { type: "password", name: "password", "data-testid": "login-password", autocomplete: "current-password", required: true, maxlength: 200 });
  const submit = h("button", { type: "submit", class: "btn primary wide", "data-testid": "login-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login-card", "data-testid": "login", "aria-labelledby": "login-title" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Lethe"),
    h("h1", { id: "login-title" }, "Sign in to the console"),
    err,
    label("E-mail", email),
    label("Password", password),
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    err.textContent = "";
    try {
      const res = await accountApi.login({ email: email.value.trim(), password: password.value });
      password.value = "";
      if (res.operator && res.account) startApp(res.operator, res.account);
    } catch (ex) {
      err.textContent = errorMessage(ex);
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  root.replaceChildren(h("main", { class: "login-wrap" }, form));
  email.focus();
}

// ---- app state -------------------------------------------------------------------

interface Entry {
  id: string;
  summary: ChatSummary | undefined;
  lastSeq: bigint;
  unread: number;
  closed: boolean;
  /** Set when the chat left the lists while it was on screen: why. */
  detached: string;
  /** The summary lastSeq for which a reconnect was already tried. */
  gapTried: bigint;
  view: ChatView;
}

interface ChatView {
  root: HTMLElement;
  name: HTMLElement;
  meta: HTMLElement;
  ip: HTMLElement;
  log: HTMLElement;
  typing: HTMLElement;
  typingTimer: ReturnType<typeof setTimeout> | undefined;
  banner: HTMLElement;
  composer: HTMLTextAreaElement;
  send: HTMLButtonElement;
  transferSelect: HTMLSelectElement;
  transfer: HTMLButtonElement;
  close: HTMLButtonElement;
  typingOn: boolean;
  lastTypingSent: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  sending: boolean;
}

interface AppState {
  me: Operator;
  account: Account;
  ctl: AbortController;
  inbox: InboxWatch | undefined;
  entries: Map<string, Entry>;
  presence: Map<string, OperatorPresence>;
  selected: string;
  inSnapshot: boolean;
  snapshotIds: Set<string>;
  initialDone: boolean;
  tick: ReturnType<typeof setInterval>;
  // Elements
  error: HTMLElement;
  status: HTMLSelectElement;
  conn: HTMLElement;
  queue: HTMLElement;
  queueCount: HTMLElement;
  mine: HTMLElement;
  mineCount: HTMLElement;
  side: HTMLElement;
  main: HTMLElement;
  chatsPage: HTMLElement;
  /** Holds the page shown: chats, operators or settings. */
  content: HTMLElement;
  tabChats: HTMLButtonElement;
  tabVisitors: HTMLButtonElement;
  visitors: VisitorsPage;
  tabAdmin: HTMLButtonElement | undefined;
  tabSettings: HTMLButtonElement | undefined;
}

let app: AppState | undefined;

function stopApp(): void {
  if (!app) return;
  app.ctl.abort();
  clearInterval(app.tick);
  for (const e of app.entries.values()) clearTimers(e.view);
  app = undefined;
}

function clearTimers(v: ChatView): void {
  if (v.typingTimer) clearTimeout(v.typingTimer);
  if (v.idleTimer) clearTimeout(v.idleTimer);
}

function showError(msg: string): void {
  if (app) app.error.textContent = msg;
}

function clearError(): void {
  if (app) app.error.textContent = "";
}

/** fail shows a failed call's message, or signs out if the session is gone. */
function fail(err: unknown): void {
  const e = ConnectError.from(err);
  if (e.code === Code.Unauthenticated) showLogin("Your session has ended. Please sign in again.");
  else showError(errorMessage(e));
}

// ---- app shell ---------------------------------------------------------------------

function startApp(me: Operator, account: Account): void {
  stopApp();
  const isAdmin = me.role === Role.ADMIN;
  const status = h(
    "select",
    { "data-testid": "status", "aria-label": "Your status", class: "status-select" },
    h("option", { value: "online" }, "Online"),
    h("option", { value: "away" }, "Away"),
  );
  const conn = h("span", { class: "conn", role: "status" });
  const logout = h("button", { type: "button", class: "btn ghost", "data-testid": "logout" }, "Log out");
  const tabChats = h("button", { type: "button", class: "tab", "aria-current": "page" }, "Chats");
  const ctl = new AbortController();
  const visitors = createVisitorsPage({ transport, signal: ctl.signal, fail, clearError });
  const tabVisitors = h(
    "button",
    { type: "button", class: "tab", "data-testid": "visitors-tab" },
    "Visitors",
    h("span", { class: "sr-only" }, " on site: "),
    visitors.tabCount,
  );
  const tabAdmin = isAdmin ? h("button", { type: "button", class: "tab", "data-testid": "admin" }, "Operators") : undefined;
  const tabSettings = isAdmin ? h("button", { type: "button", class: "tab", "data-testid": "settings-tab" }, "Settings") : undefined;
  const error = errorBox();
  const queueCount = h("span", { class: "count" }, "0");
  const mineCount = h("span", { class: "count" }, "0");
  const queue = h("ul", { class: "list", "data-testid": "queue", "aria-label": "Queue" });
  const mine = h("ul", { class: "list", "data-testid": "mychats", "aria-label": "My chats" });
  const main = h("section", { class: "main", "aria-label": "Selected chat" }, emptyMain());
  const side = h(
    "nav",
    { class: "side", "aria-label": "Chats" },
    h("h2", { class: "side-title" }, "Queue", queueCount),
    queue,
    h("h2", { class: "side-title" }, "My chats", mineCount),
    mine,
  );
  const chatsPage = h("div", { class: "chats-page" }, side, main);
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Lethe", h("span", { class: "acct" }, account.name)),
    h("nav", { class: "tabs", "aria-label": "Pages" }, tabChats, tabVisitors, tabAdmin, tabSettings),
    h("div", { class: "top-right" }, conn, h("span", { class: "me" }, me.name), status, logout),
  );
  const content = h("div", { class: "content" }, chatsPage);
  root.replaceChildren(h("div", { class: "shell" }, header, error, content));

  const state: AppState = {
    me,
    account,
    ctl,
    inbox: undefined,
    entries: new Map(),
    presence: new Map(),
    selected: "",
    inSnapshot: false,
    snapshotIds: new Set(),
    initialDone: false,
    tick: setInterval(() => renderLists(), 15000),
    error,
    status,
    conn,
    queue,
    queueCount,
    mine,
    mineCount,
    side,
    main,
    chatsPage,
    content,
    tabChats,
    tabVisitors,
    visitors,
    tabAdmin,
    tabSettings,
  };
  app = state;

  status.addEventListener("change", async () => {
    const want = status.value === "away" ? OperatorStatus.AWAY : OperatorStatus.ONLINE;
    try {
      const res = await chatApi.setStatus({ status: want });
      clearError();
      status.value = res.status === OperatorStatus.AWAY ? "away" : "online";
    } catch (err) {
      status.value = want === OperatorStatus.AWAY ? "online" : "away";
      fail(err);
    }
  });
  logout.addEventListener("click", async () => {
    try {
      await accountApi.logout({});
    } catch {
      // Signed out either way from this page's point of view.
    }
    showLogin();
  });
  tabChats.addEventListener("click", () => showPage("chats"));
  tabVisitors.addEventListener("click", () => showPage("visitors"));
  tabAdmin?.addEventListener("click", () => showPage("admin"));
  tabSettings?.addEventListener("click", () => showPage("settings"));

  conn.textContent = "Connecting…";
  state.inbox = watchInboxResuming(chatApi, {
    signal: state.ctl.signal,
    onConnected: () => {
      if (app !== state) return;
      conn.textContent = "";
      conn.classList.remove("bad");
      state.inSnapshot = true;
      state.snapshotIds = new Set();
      state.presence.clear();
    },
    onDisconnected: () => {
      if (app !== state) return;
      conn.textContent = "Reconnecting…";
      conn.classList.add("bad");
    },
    onFinalError: (err) => {
      if (app !== state) return;
      if (err.code === Code.Unauthenticated) showLogin("Your session has ended. Please sign in again.");
      else showError(errorMessage(err));
    },
    onMessage: (res) => {
      if (app === state) onInbox(state, res);
    },
  });
}

function emptyMain(): HTMLElement {
  return h(
    "div",
    { class: "empty" },
    h("p", { class: "empty-title" }, "No chat selected"),
    h("p", null, "Accept a chat from the queue or pick one of your chats."),
  );
}

function showPage(page: "chats" | "visitors" | "admin" | "settings"): void {
  const s = app;
  if (!s) return;
  const tabs = { chats: s.tabChats, visitors: s.tabVisitors, admin: s.tabAdmin, settings: s.tabSettings };
  for (const [name, tab] of Object.entries(tabs)) {
    if (name === page) tab?.setAttribute("aria-current", "page");
    else tab?.removeAttribute("aria-current");
  }
  clearError();
  // Admin pages are built fresh each time, so they show the server's current state.
  s.visitors.setShown(page === "visitors");
  s.content.replaceChildren(
    page === "chats" ? s.chatsPage : page === "visitors" ? s.visitors.root : page === "admin" ? adminPage(s) : settingsPage(),
  );
}

// ---- inbox -------------------------------------------------------------------------

function isMine(s: AppState, c: ChatSummary): boolean {
  return c.state === ChatState.ACTIVE && c.operatorId === s.me.id;
}

function onInbox(s: AppState, res: WatchInboxResponse): void {
  const k = res.kind;
  switch (k.case) {
    case "snapshotDone": {
      for (const [id, e] of s.entries) {
        if (!s.snapshotIds.has(id) && e.summary) removeChat(s, id, "This chat is no longer in your list.");
      }
      s.inSnapshot = false;
      s.initialDone = true;
      renderLists();
      renderTransferOptions(s);
      break;
    }
    case "chatUpdated":
      onSummary(s, k.value);
      break;
    case "chatRemoved":
      removeChat(s, k.value.chatId, "This chat is no longer assigned to you.");
      break;
    case "event":
      onEvent(s, k.value);
      break;
    case "presence":
      s.presence.set(k.value.operatorId, k.value);
      if (k.value.operatorId === s.me.id) {
        if (k.value.status === OperatorStatus.ONLINE) s.status.value = "online";
        else if (k.value.status === OperatorStatus.AWAY) s.status.value = "away";
      }
      if (!s.inSnapshot) renderTransferOptions(s);
      break;
  }
}

function entryFor(s: AppState, id: string): Entry {
  let e = s.entries.get(id);
  if (!e) {
    e = { id, summary: undefined, lastSeq: 0n, unread: 0, closed: false, detached: "", gapTried: 0n, view: buildView(id) };
    s.entries.set(id, e);
  }
  return e;
}

function onSummary(s: AppState, c: ChatSummary): void {
  if (s.inSnapshot) s.snapshotIds.add(c.chatId);
  if (c.state !== ChatState.WAITING && !isMine(s, c)) {
    removeChat(s, c.chatId, c.state === ChatState.CLOSED ? "This chat has ended." : "Another operator took this chat.");
    return;
  }
  const existing = s.entries.get(c.chatId);
  const wasQueued = existing?.summary?.state === ChatState.WAITING;
  const e = entryFor(s, c.chatId);
  e.summary = c;
  e.detached = "";
  if (c.state === ChatState.WAITING && !wasQueued && s.initialDone && !s.inSnapshot) beep();
  renderHeader(s, e);
  renderLists();
  if (isMine(s, c)) watchGap(s, e);
}

/**
 * watchGap covers a server that does not push the history of a chat that just
 * became ours on the open stream: if the summary names events we never got,
 * reconnect once, which asks for them with after_seq.
 */
function watchGap(s: AppState, e: Entry): void {
  const want = e.summary?.lastSeq ?? 0n;
  if (want <= e.lastSeq || e.gapTried >= want) return;
  setTimeout(() => {
    if (app !== s || s.entries.get(e.id) !== e) return;
    if (e.lastSeq < want && e.gapTried < want) {
      e.gapTried = want;
      s.inbox?.reconnect();
    }
  }, GAP_WAIT_MS);
}

function removeChat(s: AppState, id: string, why: string): void {
  const e = s.entries.get(id);
  if (!e) return;
  if (s.selected === id) {
    e.summary = undefined;
    e.detached = e.closed ? "This chat has ended." : why;
    renderHeader(s, e);
  } else {
    clearTimers(e.view);
    s.entries.delete(id);
  }
  renderLists();
}

function onEvent(s: AppState, ev: ChatEvent): void {
  const e = entryFor(s, ev.chatId);
  const v = e.view;
  if (ev.seq !== 0n) {
    if (ev.seq <= e.lastSeq) return;
    e.lastSeq = ev.seq;
  }
  const k = ev.kind;
  switch (k.case) {
    case "started":
      sysLine(v, `${k.value.visitorName} started the chat`);
      break;
    case "message": {
      const m = k.value;
      const author = m.authorKind === AuthorKind.VISITOR ? "visitor" : m.authorKind === AuthorKind.OPERATOR ? "operator" : "system";
      if (author === "system") sysLine(v, m.text);
      else {
        const el = h(
          "div",
          { class: `msg ${author}`, "data-testid": "msg", "data-author": author },
          h("div", { class: "msg-head" }, h("span", { class: "who" }, m.authorName), h("time", { class: "when" }, clock(ev))),
          h("p", { class: "bubble" }, m.text),
        );
        appendLog(v, el);
      }
      if (author === "visitor") {
        hideTyping(v);
        if (s.selected !== e.id && s.initialDone) {
          e.unread++;
          renderLists();
        }
      }
      break;
    }
    case "typing": {
      const t = k.value;
      if (t.authorKind !== AuthorKind.VISITOR) break;
      if (!t.typing) {
        hideTyping(v);
        break;
      }
      v.typing.textContent = `${t.authorName || "The visitor"} is typing…`;
      show(v.typing, true);
      if (v.typingTimer) clearTimeout(v.typingTimer);
      v.typingTimer = setTimeout(() => hideTyping(v), TYPING_SHOWN_MS);
      break;
    }
    case "operatorJoined":
      sysLine(v, `${k.value.operatorName} joined the chat`);
      break;
    case "operatorLeft":
      sysLine(v, `${k.value.operatorName} left the chat`);
      break;
    case "closed":
      e.closed = true;
      hideTyping(v);
      sysLine(v, k.value.reason ? `Chat ended: ${k.value.reason}` : "Chat ended");
      if (s.selected === e.id) {
        e.detached = "This chat has ended.";
        renderHeader(s, e);
      }
      break;
  }
}

// ---- lists ---------------------------------------------------------------------------

function renderLists(): void {
  const s = app;
  if (!s) return;
  const now = Date.now();
  // The lists are rebuilt; keep keyboard focus on the same control.
  const active = document.activeElement;
  const focusChat = active instanceof HTMLElement && s.side.contains(active) ? active.closest("[data-chat-id]")?.getAttribute("data-chat-id") : null;
  const focusTestId = active instanceof HTMLElement ? active.getAttribute("data-testid") : null;
  const queued: Entry[] = [];
  const mine: Entry[] = [];
  for (const e of s.entries.values()) {
    if (!e.summary) continue;
    if (e.summary.state === ChatState.WAITING) queued.push(e);
    else if (isMine(s, e.summary)) mine.push(e);
  }
  const started = (e: Entry) => (e.summary?.startedAt ? timestampDate(e.summary.startedAt).getTime() : now);
  queued.sort((a, b) => started(a) - started(b));
  mine.sort((a, b) => started(a) - started(b));

  s.queue.replaceChildren(
    ...queued.map((e) => {
      const accept = h("button", { type: "button", class: "btn primary small", "data-testid": "accept" }, "Accept");
      accept.addEventListener("click", () => void acceptChat(s, e.id, accept));
      return h(
        "li",
        { class: "item", "data-testid": "queue-item", "data-chat-id": e.id },
        h(
          "div",
          { class: "item-text" },
          h("span", { class: "item-name" }, e.summary?.visitorName || "Visitor"),
          h("span", { class: "item-sub" }, `Waiting ${ago(now - started(e))}`),
        ),
        accept,
      );
    }),
  );
  if (!queued.length) s.queue.append(h("li", { class: "none" }, "Nobody is waiting."));

  s.mine.replaceChildren(
    ...mine.map((e) => {
      const btn = h(
        "button",
        { type: "button", class: "item-btn", "aria-current": s.selected === e.id ? "true" : undefined },
        h(
          "span",
          { class: "item-text" },
          h("span", { class: "item-name" }, e.summary?.visitorName || "Visitor"),
          h("span", { class: "item-sub" }, e.summary?.visitorEmail || `Started ${ago(now - started(e))} ago`),
        ),
        e.unread ? h("span", { class: "badge", "aria-label": `${e.unread} unread` }, String(e.unread)) : null,
      );
      btn.addEventListener("click", () => {
        select(s, e.id);
        const v = s.entries.get(e.id)?.view;
        if (v && !v.composer.disabled) v.composer.focus();
      });
      return h("li", { class: "item mine", "data-testid": "mychat", "data-chat-id": e.id }, btn);
    }),
  );
  if (!mine.length) s.mine.append(h("li", { class: "none" }, "No open chats."));

  if (focusChat) {
    const item = s.side.querySelector(`[data-chat-id="${CSS.escape(focusChat)}"]`);
    const target = focusTestId ? item?.querySelector<HTMLElement>(`[data-testid="${focusTestId}"]`) : item?.querySelector<HTMLElement>("button");
    target?.focus();
  }
  s.queueCount.textContent = String(queued.length);
  s.mineCount.textContent = String(mine.length);
  document.title = queued.length ? `(${queued.length}) ${baseTitle}` : baseTitle;
}

async function acceptChat(s: AppState, id: string, btn: HTMLButtonElement): Promise<void> {
  btn.disabled = true;
  try {
    const res = await chatApi.acceptChat({ chatId: id });
    clearError();
    if (res.chat) onSummary(s, res.chat);
    select(s, id);
    s.entries.get(id)?.view.composer.focus();
  } catch (err) {
    btn.disabled = false;
    fail(err);
  }
}

function select(s: AppState, id: string): void {
  const prev = s.entries.get(s.selected);
  if (prev && prev.id !== id && !prev.summary) {
    // A chat that left the lists is dropped once the operator moves on.
    clearTimers(prev.view);
    s.entries.delete(prev.id);
  }
  const e = s.entries.get(id);
  if (!e) return;
  s.selected = id;
  e.unread = 0;
  renderHeader(s, e);
  renderTransferOptions(s);
  s.main.replaceChildren(e.view.root);
  e.view.log.scrollTop = e.view.log.scrollHeight;
  renderLists();
}

function dismiss(s: AppState, e: Entry): void {
  if (s.selected === e.id) {
    s.selected = "";
    s.main.replaceChildren(emptyMain());
  }
  if (!e.summary) {
    clearTimers(e.view);
    s.entries.delete(e.id);
  }
  renderLists();
}

// ---- chat view ------------------------------------------------------------------------

function buildView(id: string): ChatView {
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", "data-testid": "log" });
  const composerId = `composer-${id}`;
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
  const v: ChatView = {
    root: h("div"),
    name: h("h2", { class: "chat-name" }),
    meta: h("p", { class: "chat-meta" }),
    ip: h("p", { class: "chat-ip", "data-testid": "visitor-ip", hidden: true }),
    log,
    typing: h("p", { class: "typing", "data-testid": "typing", hidden: true }),
    typingTimer: undefined,
    banner: h("div", { class: "banner", hidden: true }),
    composer,
    send,
    transferSelect,
    transfer,
    close,
    typingOn: false,
    lastTypingSent: 0,
    idleTimer: undefined,
    sending: false,
  };
  const form = h(
    "form",
    { class: "composer" },
    h("label", { for: composerId, class: "sr-only" }, "Reply"),
    composer,
    send,
  );
  v.root = h(
    "article",
    { class: "chat-view", "data-testid": "chat-view", "data-chat-id": id },
    h(
      "header",
      { class: "chat-head" },
      h("div", { class: "chat-id" }, v.name, v.meta, v.ip),
      h("div", { class: "chat-actions" }, transferSelect, transfer, close),
    ),
    log,
    v.typing,
    v.banner,
    form,
  );

  transferSelect.addEventListener("change", () => {
    transfer.disabled = !transferSelect.value;
  });
  transfer.addEventListener("click", () => void doTransfer(id, v));
  close.addEventListener("click", () => void doClose(id, v));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void sendReply(id, v);
  });
  composer.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void sendReply(id, v);
    }
  });
  composer.addEventListener("input", () => {
    if (!composer.value.trim()) return stopTyping(id, v);
    if (Date.now() - v.lastTypingSent >= TYPING_EVERY_MS) setTyping(id, v, true);
    if (v.idleTimer) clearTimeout(v.idleTimer);
    v.idleTimer = setTimeout(() => stopTyping(id, v), TYPING_IDLE_MS);
  });
  return v;
}

function renderHeader(s: AppState, e: Entry): void {
  const v = e.view;
  const c = e.summary;
  if (c) {
    v.name.textContent = c.visitorName || "Visitor";
    const parts = [c.visitorEmail, c.state === ChatState.WAITING ? "Waiting in queue" : c.operatorName ? `With ${c.operatorName}` : ""];
    v.meta.textContent = parts.filter(Boolean).join(" · ");
    // Empty when the account hides visitors' addresses (P5).
    const where = [c.visitorIp, c.visitorHost].filter(Boolean);
    v.ip.textContent = where.length ? `Visitor IP: ${where.join(" · ")}` : "";
    show(v.ip, where.length > 0);
  }
  const active = !!c && isMine(s, c) && !e.closed;
  v.composer.disabled = !active;
  v.send.disabled = !active;
  v.transferSelect.disabled = !active;
  v.transfer.disabled = !active || !v.transferSelect.value;
  v.close.disabled = !c || e.closed;
  const why = e.closed ? "This chat has ended." : e.detached;
  v.banner.replaceChildren();
  if (why) {
    const btn = h("button", { type: "button", class: "btn ghost small" }, "Dismiss");
    btn.addEventListener("click", () => dismiss(s, e));
    v.banner.append(h("span", null, why), btn);
  }
  show(v.banner, !!why);
}

function renderTransferOptions(s: AppState): void {
  const e = s.entries.get(s.selected);
  if (!e) return;
  const sel = e.view.transferSelect;
  const keep = sel.value;
  const online = [...s.presence.values()]
    .filter((p) => p.status === OperatorStatus.ONLINE && p.operatorId !== s.me.id)
    .sort((a, b) => a.name.localeCompare(b.name));
  sel.replaceChildren(
    h("option", { value: "" }, online.length ? "Transfer to…" : "No other operator online"),
    ...online.map((p) => h("option", { value: p.operatorId }, p.name)),
  );
  sel.value = online.some((p) => p.operatorId === keep) ? keep : "";
  renderHeader(s, e);
}

function appendLog(v: ChatView, el: HTMLElement): void {
  const stick = v.log.scrollHeight - v.log.scrollTop - v.log.clientHeight < 60;
  v.log.append(el);
  if (stick) v.log.scrollTop = v.log.scrollHeight;
}

function sysLine(v: ChatView, text: string): void {
  appendLog(v, h("p", { class: "sys", "data-testid": "msg", "data-author": "system" }, text));
}

function hideTyping(v: ChatView): void {
  if (v.typingTimer) clearTimeout(v.typingTimer);
  v.typingTimer = undefined;
  show(v.typing, false);
}

function setTyping(id: string, v: ChatView, on: boolean): void {
  v.typingOn = on;
  v.lastTypingSent = on ? Date.now() : 0;
  chatApi.setOperatorTyping({ chatId: id, typing: on }).catch(() => {
    // Typing is best effort.
  });
}

function stopTyping(id: string, v: ChatView): void {
  if (v.idleTimer) clearTimeout(v.idleTimer);
  v.idleTimer = undefined;
  if (v.typingOn) setTyping(id, v, false);
}

async function sendReply(id: string, v: ChatView): Promise<void> {
  const text = v.composer.value.trim();
  if (!text || v.sending || v.composer.disabled) return;
  v.sending = true;
  v.send.disabled = true;
  stopTyping(id, v);
  try {
    await chatApi.sendOperatorMessage({ chatId: id, text });
    clearError();
    if (v.composer.value.trim() === text) v.composer.value = "";
  } catch (err) {
    fail(err);
  } finally {
    v.sending = false;
    v.send.disabled = v.composer.disabled;
    if (!v.composer.disabled) v.composer.focus();
  }
}

async function doTransfer(id: string, v: ChatView): Promise<void> {
  const to = v.transferSelect.value;
  if (!to) return;
  const name = v.transferSelect.selectedOptions[0]?.textContent ?? "";
  v.transfer.disabled = true;
  try {
    await chatApi.transferChat({ chatId: id, toOperatorId: to });
    clearError();
    const s = app;
    const e = s?.entries.get(id);
    if (s && e) {
      e.detached = `Transferred to ${name}.`;
      renderHeader(s, e);
    }
  } catch (err) {
    v.transfer.disabled = false;
    fail(err);
  }
}

async function doClose(id: string, v: ChatView): Promise<void> {
  v.close.disabled = true;
  try {
    await chatApi.closeChat({ chatId: id });
    clearError();
  } catch (err) {
    v.close.disabled = false;
    fail(err);
  }
}

// ---- admin -------------------------------------------------------------------------------

function adminPage(s: AppState): HTMLElement {
  const rows = h("tbody");
  const table = h(
    "table",
    { class: "ops" },
    h("caption", { class: "sr-only" }, "Operators"),
    h(
      "thead",
      null,
      h("tr", null, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "E-mail"), h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions"))),
    ),
    rows,
  );

  const load = async () => {
    try {
      const res = await accountApi.listOperators({});
      rows.replaceChildren(...res.operators.map(opRow));
    } catch (err) {
      fail(err);
    }
  };

  const opRow = (op: Operator): HTMLElement => {
    const self = op.id === s.me.id;
    const toggle = h(
      "button",
      { type: "button", class: op.disabled ? "btn ghost small" : "btn danger-ghost small", "data-testid": "op-toggle", disabled: self },
      op.disabled ? "Enable" : "Disable",
    );
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const res = await accountApi.setOperatorDisabled({ operatorId: op.id, disabled: !op.disabled });
        clearError();
        if (res.operator) row.replaceWith(opRow(res.operator));
      } catch (err) {
        toggle.disabled = false;
        fail(err);
      }
    });
    const row = h(
      "tr",
      { "data-testid": "op-row", "data-operator-id": op.id, class: op.disabled ? "off" : undefined },
      h("td", null, op.name, self ? h("span", { class: "you" }, " (you)") : null),
      h("td", null, op.email),
      h("td", null, op.role === Role.ADMIN ? "Admin" : "Operator"),
      h("td", null, h("span", { class: op.disabled ? "pill off" : "pill" }, op.disabled ? "Disabled" : "Active")),
      h("td", { class: "right" }, toggle),
    );
    return row;
  };

  const email = h("input", { type: "email", "data-testid": "op-create-email", required: true, maxlength: 254, autocomplete: "off" });
  const name = h("input", { "data-testid": "op-create-name", required: true, maxlength: 100, autocomplete: "off" });
  const password = h("input", { type: "password", "data-testid": "op-create-password", required: true, minlength: 10, maxlength: 200, autocomplete: "new-password" });
  const role = h(
    "select",
    { "data-testid": "op-create-role" },
    h("option", { value: "operator" }, "Operator"),
    h("option", { value: "admin" }, "Admin"),
  );
  const submit = h("button", { type: "submit", class: "btn primary", "data-testid": "op-create-submit" }, "Add operator");
  const form = h(
    "form",
    { class: "op-form", "aria-labelledby": "op-form-title" },
    h("h2", { id: "op-form-title" }, "Add an operator"),
    label("E-mail", email),
    label("Name", name),
    label("Password (at least 10 characters)", password),
    label("Role", role),
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    try {
      const res = await accountApi.createOperator({
        email: email.value.trim(),
        name: name.value.trim(),
        password: password.value,
        role: role.value === "admin" ? Role.ADMIN : Role.OPERATOR,
      });
      clearError();
      if (res.operator) rows.append(opRow(res.operator));
      form.reset();
      email.focus();
    } catch (err) {
      fail(err);
    } finally {
      submit.disabled = false;
    }
  });

  void load();
  return h(
    "div",
    { class: "admin-page" },
    h("section", { class: "card", "aria-labelledby": "ops-title" }, h("h2", { id: "ops-title" }, "Operators"), table),
    h("section", { class: "card" }, form),
  );
}

// ---- settings (admin) --------------------------------------------------------------------

const FORMS: ReadonlyArray<[ConsentForm, string, string]> = [
  [ConsentForm.PRECHAT, "prechat", "Pre-chat form"],
  [ConsentForm.OFFLINE, "offline", "Offline message"],
];

/** lines splits a one-entry-per-line textarea, dropping blank lines. */
function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

let fieldIds = 0;

/** describe gives a control an id and points it at its hint, so the label stays short. */
function describe(input: HTMLElement, hint: string): HTMLElement {
  input.id ||= `f${++fieldIds}`;
  const hintId = `${input.id}-hint`;
  input.setAttribute("aria-describedby", hintId);
  return h("span", { class: "hint", id: hintId }, hint);
}

function checkField(input: HTMLInputElement, text: string, hint: string): HTMLElement {
  const why = describe(input, hint);
  return h("div", { class: "check-field" }, h("label", { class: "check-title" }, input, text), why);
}

function hinted(text: string, hint: string, input: HTMLElement, ...more: HTMLElement[]): HTMLElement {
  const why = describe(input, hint);
  return h(
    "div",
    { class: "field" },
    h("label", { class: "label", for: input.id }, text),
    more.length ? h("span", { class: "inline" }, input, ...more) : input,
    why,
  );
}

function settingsPage(): HTMLElement {
  return h("div", { class: "settings-page" }, settingsCard(), consentCard(), apiKeysCard({ transport, fail, clearError }));
}

function settingsCard(): HTMLElement {
  const warning = h(
    "div",
    { class: "warning", role: "status", "data-testid": "mail-warning", hidden: true },
    "No mail server is configured: transcripts and offline messages cannot be sent.",
  );
  const transcripts = h("input", { type: "checkbox", class: "check", "data-testid": "set-transcripts" });
  const recipients = h("textarea", { "data-testid": "set-recipients", rows: 3, spellcheck: "false", autocomplete: "off" });
  const hideIp = h("input", { type: "checkbox", class: "check", "data-testid": "set-hide-ip" });
  const tls = h(
    "select",
    { "data-testid": "set-mail-tls" },
    h("option", { value: "opportunistic" }, "Opportunistic: encrypted when the mail server offers it"),
    h("option", { value: "mandatory" }, "Mandatory: encrypted or not sent"),
  );
  const idle = h("input", { type: "number", class: "num", "data-testid": "set-idle", required: true, step: 1, inputmode: "numeric" });
  const idleUnit = h(
    "select",
    { "data-testid": "set-idle-unit", "aria-label": "Idle timeout unit" },
    h("option", { value: "min" }, "minutes"),
    h("option", { value: "s" }, "seconds"),
  );
  const origins = h("textarea", { "data-testid": "set-origins", rows: 3, spellcheck: "false", autocomplete: "off" });
  const save = h("button", { type: "submit", class: "btn primary", "data-testid": "set-save" }, "Save settings");
  const ok = h("span", { class: "ok", role: "status", "data-testid": "set-ok", hidden: true }, "Settings saved.");
  // Disabled until the current settings are in, so a save cannot blank them.
  const fields = h(
    "fieldset",
    { class: "set-fields", disabled: true },
    h("legend", { class: "sr-only" }, "Account settings"),
    checkField(transcripts, "E-mail chat transcripts", "When a chat closes, a transcript goes to the recipients below; the chat is deleted as soon as the mail server has accepted it."),
    hinted("Recipients", "One e-mail address per line, at most 20. Transcripts and offline messages go here.", recipients),
    checkField(hideIp, "Hide visitors' IP addresses and host names", "They are then never stored, shown, mailed or logged."),
    hinted("Mail encryption (TLS)", "Mandatory holds mail that cannot travel encrypted (and drops it after the maximum hold).", tls),
    hinted("Close a chat when the visitor has been gone for", "Between 10 seconds and 24 hours.", idle, idleUnit),
    hinted("Websites allowed to embed the chat", "One origin per line, such as https://www.example.com; “self” is this server. At most 20.", origins),
    h("div", { class: "form-actions" }, save, ok),
  );
  const form = h("form", { class: "set-form", "aria-labelledby": "set-title" }, h("h2", { id: "set-title" }, "Settings"), warning, fields);

  const setUnitLimits = () => {
    const min = idleUnit.value === "min";
    idle.min = min ? "1" : "10";
    idle.max = min ? "1440" : "86400";
  };
  const fill = (st: Settings) => {
    transcripts.checked = st.transcriptsEnabled;
    recipients.value = st.recipients.join("\n");
    hideIp.checked = st.hideVisitorIp;
    tls.value = st.mailTlsPolicy === MailTlsPolicy.MANDATORY ? "mandatory" : "opportunistic";
    const secs = st.idleTimeoutSeconds;
    idleUnit.value = secs > 0 && secs % 60 === 0 ? "min" : "s";
    idle.value = secs > 0 ? String(idleUnit.value === "min" ? secs / 60 : secs) : "";
    setUnitLimits();
    origins.value = st.allowedOrigins.join("\n");
  };

  idleUnit.addEventListener("change", setUnitLimits);
  form.addEventListener("input", () => show(ok, false));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    save.disabled = true;
    show(ok, false);
    try {
      const res = await accountApi.updateSettings({
        settings: {
          transcriptsEnabled: transcripts.checked,
          recipients: lines(recipients.value),
          hideVisitorIp: hideIp.checked,
          mailTlsPolicy: tls.value === "mandatory" ? MailTlsPolicy.MANDATORY : MailTlsPolicy.OPPORTUNISTIC,
          idleTimeoutSeconds: Math.round(Number(idle.value) * (idleUnit.value === "min" ? 60 : 1)),
          allowedOrigins: lines(origins.value),
        },
      });
      clearError();
      if (res.settings) fill(res.settings);
      show(ok, true);
    } catch (err) {
      fail(err);
    } finally {
      save.disabled = false;
    }
  });

  void (async () => {
    try {
      const res = await accountApi.getSettings({});
      if (res.settings) fill(res.settings);
      show(warning, !res.mailConfigured);
      fields.disabled = false;
    } catch (err) {
      fail(err);
    }
  })();
  return h("section", { class: "card" }, form);
}

function consentCard(): HTMLElement {
  const rows = h("tbody");
  const table = h(
    "table",
    { class: "ops consents", hidden: true },
    h("caption", { class: "sr-only" }, "Current consent texts"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ...["Form", "Language", "Version", "Required", "Accepted", "Text"].map((c) => h("th", { scope: "col" }, c)),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
      ),
    ),
    rows,
  );
  const empty = h("p", { class: "none" }, "No consent texts yet: visitors are not asked for consent.");

  const formSel = h("select", { "data-testid": "consent-form" }, ...FORMS.map(([, value, name]) => h("option", { value }, name)));
  const locale = h("input", { "data-testid": "consent-locale", required: true, maxlength: 35, value: "en", autocomplete: "off", spellcheck: "false" });
  const text = h("textarea", { "data-testid": "consent-text", required: true, maxlength: 5000, rows: 5 });
  const required = h("input", { type: "checkbox", class: "check", "data-testid": "consent-required" });
  const save = h("button", { type: "submit", class: "btn primary", "data-testid": "consent-save" }, "Save text");
  const ok = h("span", { class: "ok", role: "status", "data-testid": "consent-ok", hidden: true });
  const form = h(
    "form",
    { class: "set-form", "aria-labelledby": "consent-form-title" },
    h("h3", { id: "consent-form-title" }, "Set a consent text"),
    h(
      "div",
      { class: "two" },
      hinted("Form", "Where the text is shown.", formSel),
      hinted("Language", "A BCP 47 tag such as en, de or de-CH.", locale),
    ),
    hinted("Text", "Plain text, line breaks are kept. Saving makes a new version: visitors accept the text they were shown.", text),
    checkField(required, "Required", "Visitors must tick the box to start a chat or send the message."),
    h("div", { class: "form-actions" }, save, ok),
  );

  const formOf = (f: ConsentForm) => FORMS.find(([v]) => v === f);
  const row = (t: ConsentText): HTMLElement => {
    const edit = h("button", { type: "button", class: "btn ghost small" }, "Edit");
    edit.addEventListener("click", () => {
      formSel.value = formOf(t.form)?.[1] ?? "prechat";
      locale.value = t.locale;
      text.value = t.text;
      required.checked = t.required;
      show(ok, false);
      text.focus();
    });
    return h(
      "tr",
      { "data-testid": "consent-row", "data-form": formOf(t.form)?.[1] ?? "", "data-locale": t.locale },
      h("td", null, formOf(t.form)?.[2] ?? "Unknown"),
      h("td", null, t.locale),
      h("td", { title: t.updatedAt ? `Changed ${timestampDate(t.updatedAt).toLocaleString()}` : undefined }, String(t.version)),
      h("td", null, t.required ? "Yes" : "No"),
      h("td", null, String(t.acceptedCount)),
      h("td", { class: "consent-text" }, t.text),
      h("td", { class: "right" }, edit),
    );
  };
  const load = async () => {
    try {
      const res = await consentApi.listConsentTexts({});
      rows.replaceChildren(...res.texts.map(row));
      show(table, res.texts.length > 0);
      show(empty, res.texts.length === 0);
    } catch (err) {
      fail(err);
    }
  };

  form.addEventListener("input", () => show(ok, false));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    save.disabled = true;
    show(ok, false);
    try {
      const res = await consentApi.setConsentText({
        form: formSel.value === "offline" ? ConsentForm.OFFLINE : ConsentForm.PRECHAT,
        locale: locale.value.trim(),
        text: text.value.trim(),
        required: required.checked,
      });
      clearError();
      ok.textContent = `Saved as version ${res.text?.version ?? "?"}.`;
      show(ok, true);
      await load();
    } catch (err) {
      fail(err);
    } finally {
      save.disabled = false;
    }
  });

  void load();
  return h(
    "section",
    { class: "card", "aria-labelledby": "consent-title" },
    h("h2", { id: "consent-title" }, "Consent texts"),
    h("p", { class: "card-intro" }, "Shown with a checkbox on the pre-chat and offline-message forms. Counts say how many chats or messages accepted each version."),
    empty,
    table,
    form,
  );
}

// ---- start ---------------------------------------------------------------------------------

async function boot(): Promise<void> {
  try {
    const me = await accountApi.getMe({});
    if (me.operator && me.account) startApp(me.operator, me.account);
    else showLogin();
  } catch (err) {
    const e = ConnectError.from(err);
    showLogin(e.code === Code.Unauthenticated ? "" : errorMessage(e));
  }
}

void boot();
