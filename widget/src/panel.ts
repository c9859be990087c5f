/**
 * The chat panel runs inside the loader's iframe on the Lethe origin. It owns
 * the visitor's side of a chat: pre-chat form with its consent text, the
 * offline-message form, live log, composer, transcript request and consent
 * withdrawal. It also reports the visit (page views, heartbeat, the page's
 * custom data and tickets) to MonitorService on every page, before any chat,
 * and shows operators' invitations. It talks to the host page only through
 * postMessage with the host origin from the page's meta tag, and never sends
 * chat content there: an invitation's text is shown here, never in the page.
 */
import {
  AuthorKind,
  Backoff,
  ChatService,
  ChatState,
  Code,
  ConnectError,
  ConsentService,
  type ChatEvent,
  type ConsentText,
  type GetConsentResponse,
  type GetWidgetConfigResponse,
  type Invitation,
  MonitorService,
  createClient,
  createLetheTransport,
  errorMessage,
  timestampDate,
  watchChatResuming,
  watchVisitResuming,
} from "@lethe/sdk";
import { h, show } from "../../ui/dom";

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
  /** The pre-chat consent version accepted for this chat (0: none). */
  consent?: number;
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
        return {
          token: o.token,
          chatId: o.chatId,
          lastSeq: typeof o.lastSeq === "string" ? o.lastSeq : undefined,
          consent: typeof o.consent === "number" ? o.consent : 0,
        };
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
const transport = createLetheTransport(location.origin, { token: () => session?.token });
const client = createClient(ChatService, transport);
const consentApi = createClient(ConsentService, transport);

// ---- visit (monitoring) ----------------------------------------------------------
//
// On every page of the site, chat or not, the panel reports the page view
// (Track), keeps one WatchVisit stream open while the page is, and calls
// Heartbeat every 30 s in case the stream is cut by a proxy. The visit token
// is a bearer token of its own (not the chat's visitor token), kept in
// sessionStorage so that the visit survives navigation between pages.

const VISIT_KEY = "lethe.visit";
/** The last invitation the panel opened itself for, so it does not pop up on every page. */
const INVITED_KEY = "lethe.invited";
const HEARTBEAT_MS = 30000;
/** Most visit calls in one sync run; the rest waits for the next heartbeat. */
const SYNC_MAX_CALLS = 8;

function getItem(key: string): string {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function setItem(key: string, value: string): void {
  try {
    if (value) sessionStorage.setItem(key, value);
    else sessionStorage.removeItem(key);
  } catch {
    // Storage blocked: the visit lasts for this page view.
  }
}

let visitToken = getItem(VISIT_KEY);
const monitor = createClient(MonitorService, createLetheTransport(location.origin, { token: () => visitToken || undefined }));

/** The page the host last reported, and whether the server has yet to hear of it. */
let visitPage: { url: string; title: string; referrer: string } | undefined;
let pageDirty = false;
/** The page's custom data: pendingData is unsent, pageData is sent again to a new visit. */
let pageData: Record<string, string> | undefined;
let pendingData: Record<string, string> | undefined;
let pendingTicket = "";
let syncing = false;
let visitCtl: AbortController | undefined;
const visitBackoff = new Backoff();

const debug = (what: string, err: unknown) => console.debug(`lethe: ${what}:`, ConnectError.from(err).message);

function setVisitToken(t: string): void {
  visitToken = t;
  setItem(VISIT_KEY, t);
}

/** visitGone forgets a visit the server no longer knows; the next Track starts a new one. */
function visitGone(): void {
  setVisitToken("");
  pageDirty = true;
}

/**
 * syncVisit tells the server, one call at a time and in order, what the host
 * page reported: the page view (Track, carrying a pending ticket), then the
 * custom data, then a ticket. Nothing is sent before the first page view.
 */
async function syncVisit(): Promise<void> {
  if (syncing || !accountId) return;
  syncing = true;
  try {
    for (let calls = 0; calls < SYNC_MAX_CALLS && visitPage; calls++) {
      if (!visitToken || pageDirty) {
        const ticket = pendingTicket;
        pendingTicket = "";
        pageDirty = false;
        try {
          const res = await monitor.track({ accountId, page: visitPage, ticket });
          if (res.visitToken && res.visitToken !== visitToken) {
            // A new visit knows nothing of the page's data yet.
            setVisitToken(res.visitToken);
            if (pageData && Object.keys(pageData).length) pendingData ??= pageData;
            stopVisitWatch();
          }
          if (!visitCtl) startVisitWatch();
        } catch (err) {
          const code = ConnectError.from(err).code;
          // A bad ticket refuses the whole page view: count the page without it.
          if (ticket && [Code.NotFound, Code.FailedPrecondition, Code.PermissionDenied, Code.InvalidArgument].includes(code)) {
            debug("ticket refused", err);
            pageDirty = true;
            continue;
          }
          debug("track", err);
          pendingTicket ||= ticket;
          pageDirty = true;
          return; // tried again on the next heartbeat
        }
      } else if (pendingData) {
        const data = pendingData;
        pendingData = undefined;
        try {
          await monitor.setCustomData({ data });
        } catch (err) {
          if (ConnectError.from(err).code === Code.Unauthenticated) visitGone();
          else debug("custom data", err);
        }
      } else if (pendingTicket) {
        const ticket = pendingTicket;
        pendingTicket = "";
        try {
          await monitor.identify({ ticket });
        } catch (err) {
          if (ConnectError.from(err).code === Code.Unauthenticated) {
            visitGone();
            pendingTicket = ticket;
          } else debug("identify", err);
        }
      } else {
        return;
      }
    }
  } finally {
    syncing = false;
  }
}

function stopVisitWatch(): void {
  visitCtl?.abort();
  visitCtl = undefined;
}

function startVisitWatch(): void {
  const ctl = new AbortController();
  visitCtl = ctl;
  void watchVisitResuming(monitor, {
    signal: ctl.signal,
    onStarted: () => visitBackoff.reset(),
    onInvitation: (inv) => onInvitation(inv),
  }).then((end) => {
    if (visitCtl !== ctl || end.reason === "aborted") return;
    visitCtl = undefined;
    // "final": the visit token is unknown, so a new visit starts with Track.
    // "closed": the server marked the visit as left; a new stream brings it back.
    if (end.reason === "final") visitGone();
    setTimeout(() => {
      if (end.reason === "final") void syncVisit();
      else if (!visitCtl && visitToken) startVisitWatch();
    }, visitBackoff.delay());
  });
}

setInterval(() => {
  if (!visitToken || pageDirty) {
    void syncVisit();
    return;
  }
  monitor.heartbeat({}).catch((err: unknown) => {
    if (ConnectError.from(err).code !== Code.Unauthenticated) return debug("heartbeat", err);
    stopVisitWatch();
    visitGone();
    void syncVisit();
  });
}, HEARTBEAT_MS);

// ---- host page ----------------------------------------------------------------

type HostMessage =
  | { type: "lethe:open" }
  | { type: "lethe:close" }
  | { type: "lethe:context"; url: unknown; title: unknown; referrer: unknown }
  | { type: "lethe:data"; data: unknown }
  | { type: "lethe:identify"; ticket: unknown };

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

/** Set when the panel opened itself for an invitation: leave focus in the page. */
let keepFocus = false;

function setOpen(open: boolean): void {
  isOpen = open;
  if (open) {
    markSeen();
    if (!keepFocus) focusFirst();
    keepFocus = false;
  }
}

const str = (v: unknown, max: number) => (typeof v === "string" ? v.slice(0, max) : "");

window.addEventListener("message", (e: MessageEvent) => {
  if (!hostOrigin || e.origin !== hostOrigin || e.source !== window.parent) return;
  const msg = e.data as HostMessage | null;
  if (!msg || typeof msg !== "object") return;
  switch (msg.type) {
    case "lethe:open":
      setOpen(true);
      break;
    case "lethe:close":
      isOpen = false;
      break;
    case "lethe:context": {
      // Cut to the server's limits: a long URL is better cut than not counted.
      const url = str(msg.url, 2048);
      if (!url) break;
      visitPage = { url, title: str(msg.title, 300), referrer: str(msg.referrer, 2048) };
      pageDirty = true;
      void syncVisit();
      break;
    }
    case "lethe:data": {
      const d = msg.data;
      if (!d || typeof d !== "object" || Array.isArray(d)) break;
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(d as Record<string, unknown>)) if (typeof v === "string") data[k] = v;
      pageData = pendingData = data;
      void syncVisit();
      break;
    }
    case "lethe:identify":
      if (typeof msg.ticket === "string" && msg.ticket) {
        pendingTicket = msg.ticket;
        void syncVisit();
      }
      break;
  }
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

// An operator's invitation, shown in place of the body until answered.
const inviteText = h("div", { class: "invite-bubble", "data-testid": "invitation-text" });
const inviteYes = h(
  "button",
  { type: "button", class: "btn primary", "data-testid": "invitation-accept", onclick: () => void answerInvitation(true) },
  "Chat now",
);
const inviteNo = h(
  "button",
  { type: "button", class: "btn ghost", "data-testid": "invitation-decline", onclick: () => void answerInvitation(false) },
  "No, thanks",
);
const inviteView = h(
  "section",
  { class: "invite", "data-testid": "invitation", "aria-label": "Invitation to chat", "aria-live": "polite", hidden: true },
  inviteText,
  h("div", { class: "invite-actions" }, inviteNo, inviteYes),
);

document.getElementById("app")?.append(
  h(
    "div",
    { class: "panel", role: "region", "aria-labelledby": "lethe-title" },
    h("header", { class: "head" }, h("div", { class: "head-text" }, title, subtitle), endBtn, minBtn),
    confirmBar,
    errorBox,
    inviteView,
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
  else if (!wdConfirm.hidden) askWithdraw(false);
  else minimize();
});

// ---- invitations -------------------------------------------------------------

/** The invitation on screen, if any. */
let invitation: Invitation | undefined;
/** Invitations answered on this page: the stream repeats a pending one after a reconnect. */
const answered = new Set<string>();

/**
 * onInvitation shows an operator's invitation, unless the visitor is already
 * in a chat. The first time an invitation arrives the panel opens itself (the
 * page only learns "open"; the operator's words stay in here); when it is
 * still pending on a later page, the launcher shows a badge instead.
 */
function onInvitation(inv: Invitation): void {
  if (session || starting || answered.has(inv.invitationId) || invitation?.invitationId === inv.invitationId) return;
  invitation = inv;
  show(body, false);
  show(inviteView, true);
  // Filled once shown, so that screen readers announce it (a live region).
  inviteText.replaceChildren(
    h("strong", { class: "invite-name" }, inv.operatorName || "An operator"),
    h("span", { class: "sr-only" }, ": "),
    h("p", { class: "invite-msg" }, inv.message),
  );
  clearError();
  if (isOpen) return;
  if (getItem(INVITED_KEY) !== inv.invitationId) {
    setItem(INVITED_KEY, inv.invitationId);
    keepFocus = true;
    postHost({ type: "lethe:open" });
  } else {
    unread = 1;
    postHost({ type: "lethe:unread", count: 1 });
  }
}

function hideInvitation(): void {
  invitation = undefined;
  show(inviteView, false);
  show(body, true);
}

/**
 * answerInvitation reports the answer (errors, such as an invitation that
 * timed out meanwhile, only to the console: the visitor chose already).
 * Accepting shows the pre-chat form, where the consent rules apply as ever.
 */
async function answerInvitation(accepted: boolean): Promise<void> {
  const inv = invitation;
  if (!inv) return;
  answered.add(inv.invitationId);
  hideInvitation();
  if (accepted) {
    if (body.firstChild !== start) showPrechat();
    focusFirst();
  } else {
    minimize();
  }
  try {
    await monitor.respondToInvitation({ invitationId: inv.invitationId, accepted });
  } catch (err) {
    debug("invitation answer", err);
  }
}

// ---- consent -----------------------------------------------------------------

const locale = navigator.language || "en";

/** A consent checkbox: the account's text for one form, in one version. */
interface Consent {
  row: HTMLElement;
  box: HTMLInputElement;
  text: HTMLElement;
  hint: HTMLElement;
  version: number;
  required: boolean;
}

function consentBox(testId: string, hintId: string, action: string): Consent {
  const box = h("input", { type: "checkbox", class: "check", "aria-describedby": hintId, onchange: () => updateButtons() });
  const text = h("span", { class: "consent-text" });
  const hint = h("p", { class: "consent-hint", id: hintId }, `Please tick the box to ${action}.`);
  const row = h("div", { class: "consent", hidden: true }, h("label", { class: "consent-label", "data-testid": testId }, box, text), hint);
  return { row, box, text, hint, version: 0, required: false };
}

/**
 * setConsent shows a text. The box is unticked whenever the text or version
 * changes (an acceptance is for the words the visitor read) or when reset.
 */
function setConsent(c: Consent, t: ConsentText | undefined, reset: boolean): void {
  const version = t?.version ?? 0;
  const text = t?.text ?? "";
  if (reset || version !== c.version || text !== c.text.textContent) c.box.checked = false;
  c.version = version;
  c.required = version > 0 && !!t?.required;
  c.box.required = c.required;
  c.text.textContent = text;
  show(c.row, version > 0);
}

/** accepted is the version to send: 0 unless a text is shown and ticked. */
function accepted(c: Consent): number {
  return c.version > 0 && c.box.checked ? c.version : 0;
}

function applyConsent(res: GetConsentResponse, reset: boolean): void {
  setConsent(preConsent, res.prechat, reset);
  setConsent(offConsent, res.offline, reset);
  updateButtons();
}

async function fetchConsent(): Promise<GetConsentResponse | undefined> {
  try {
    return await consentApi.getConsent({ accountId, locale });
  } catch {
    // Without the texts nothing is shown; a server that requires one refuses
    // the start with FAILED_PRECONDITION, and then the texts are fetched again.
    return undefined;
  }
}

/**
 * refused shows why the server turned a form down. FAILED_PRECONDITION may
 * mean the consent text changed meanwhile: show the current one, unticked.
 */
async function refused(err: unknown): Promise<void> {
  showError(errorMessage(err));
  if (ConnectError.from(err).code !== Code.FailedPrecondition) return;
  const [res] = await Promise.all([fetchConsent(), loadConfig(false)]);
  if (res) applyConsent(res, true);
}

// ---- pre-chat and offline forms ---------------------------------------------------

let pollTimer: ReturnType<typeof setInterval> | undefined;
let maxChars = MAX_CHARS;
let visitorName = "";
let cfg: GetWidgetConfigResponse | undefined;
/** The offline form is shown instead of the pre-chat form. */
let offlineMode = false;
/** The visitor asked for the offline form while operators were online. */
let offlineChosen = false;
let offlineDone = false;
let starting = false;
let leaving = false;

function field(label: string, input: HTMLInputElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label, hint ? h("span", { class: "hint" }, hint) : null), input);
}

const nameIn = h("input", { name: "name", "data-testid": "name", required: true, maxlength: 100, autocomplete: "name" });
const emailIn = h("input", { name: "email", type: "email", "data-testid": "email", maxlength: 254, autocomplete: "email" });
const messageIn = h("textarea", { name: "message", "data-testid": "message", required: true, maxlength: MAX_CHARS, rows: 4 });
const preConsent = consentBox("consent", "lethe-consent-hint", "start the chat");
const startBtn = h("button", { type: "submit", class: "btn primary wide", "data-testid": "start" }, "Start chat");
const chooseOffline = h(
  "button",
  { type: "button", class: "link", "data-testid": "choose-offline", hidden: true, onclick: () => pickOffline(true) },
  "Leave a message instead",
);
const fields = h(
  "fieldset",
  { class: "fields" },
  h("legend", { class: "sr-only" }, "Your details"),
  field("Name", nameIn),
  field("E-mail", emailIn, "optional"),
  field("Message", messageIn),
  preConsent.row,
  startBtn,
);
const offlineHead = h("strong", null, "No operator is online right now.");
const checkAgain = h("button", { type: "button", class: "btn ghost small", onclick: () => void loadConfig(false) }, "Check again");
const offline = h("div", { class: "notice", "data-testid": "offline", hidden: true });
const prechat = h("form", { class: "form", "data-testid": "prechat", onsubmit: (e) => void startChat(e) }, fields, chooseOffline);

const offNameIn = h("input", { name: "name", "data-testid": "offline-name", required: true, maxlength: 100, autocomplete: "name" });
const offEmailIn = h("input", { name: "email", type: "email", "data-testid": "offline-email", required: true, maxlength: 254, autocomplete: "email" });
const offMessageIn = h("textarea", { name: "message", "data-testid": "offline-message", required: true, maxlength: MAX_CHARS, rows: 5 });
const offConsent = consentBox("offline-consent", "lethe-offline-consent-hint", "send your message");
const offSendBtn = h("button", { type: "submit", class: "btn primary wide", "data-testid": "offline-send" }, "Send message");
const offlineForm = h(
  "form",
  { class: "form", "data-testid": "offline-form", "aria-label": "Leave a message", hidden: true, onsubmit: (e) => void leaveMessage(e) },
  h(
    "fieldset",
    { class: "fields" },
    h("legend", { class: "sr-only" }, "Leave a message"),
    field("Name", offNameIn),
    field("E-mail", offEmailIn, "we answer here"),
    field("Message", offMessageIn),
    offConsent.row,
    offSendBtn,
  ),
);
const offlineSent = h(
  "p",
  { class: "notice sent", role: "status", tabindex: -1, "data-testid": "offline-sent", hidden: true },
  "Thanks — your message was sent. It is deleted from our chat server as soon as it has been e-mailed.",
);
const chooseChat = h(
  "button",
  { type: "button", class: "link", "data-testid": "choose-chat", hidden: true, onclick: () => pickOffline(false) },
  "Start a live chat instead",
);
const start = h(
  "div",
  { class: "start" },
  h("p", { class: "intro" }, "Hi! Send us a message and we will answer right here."),
  offline,
  prechat,
  offlineForm,
  offlineSent,
  chooseChat,
);

async function loadConfig(withConsent: boolean): Promise<void> {
  if (!accountId) {
    showError("This chat is not set up correctly.");
    return;
  }
  const [c, t] = await Promise.allSettled([
    client.getWidgetConfig({ accountId }),
    withConsent ? fetchConsent() : Promise.resolve(undefined),
  ]);
  if (t.status === "fulfilled" && t.value) applyConsent(t.value, false);
  if (c.status === "rejected") {
    showError(errorMessage(c.reason));
    return;
  }
  cfg = c.value;
  if (cfg.accountName) title.textContent = cfg.accountName;
  if (cfg.maxMessageChars > 0) maxChars = cfg.maxMessageChars;
  messageIn.maxLength = maxChars;
  offMessageIn.maxLength = maxChars;
  composer.maxLength = maxChars;
  if (body.firstChild === start) renderStart();
  else renderTools();
}

function offlineTouched(): boolean {
  return !!(offNameIn.value || offEmailIn.value || offMessageIn.value);
}

/** renderStart shows the pre-chat form, the offline form or the notice, as the config says. */
function renderStart(): void {
  const online = cfg?.operatorsOnline ?? true;
  const offOk = !!cfg?.offlineMessagesEnabled;
  if (!offOk) offlineMode = false;
  else if (!online) offlineMode = true;
  // Back to the live chat when an operator comes online, unless the visitor
  // chose the offline form or has started writing in it.
  else if (!offlineChosen && !offlineDone && !offlineTouched()) offlineMode = false;
  show(offline, !online);
  // Rebuilt only when it changes, so focus on "Check again" survives a poll.
  // The space keeps the two sentences apart in the text (and for screen readers).
  const kind = offOk ? "form" : "wait";
  if (offline.dataset.kind !== kind) {
    offline.dataset.kind = kind;
    offline.replaceChildren(
      ...(offOk
        ? [offlineHead, " ", h("span", null, "Leave a message and we will answer by e-mail.")]
        : [offlineHead, " ", h("span", null, "Please check back a little later. This page checks again on its own."), checkAgain]),
    );
  }
  show(prechat, !offlineMode);
  fields.disabled = !online;
  show(chooseOffline, offOk);
  show(offlineForm, offlineMode && !offlineDone);
  show(offlineSent, offlineMode && offlineDone);
  show(chooseChat, offlineMode && online);
  subtitle.textContent = online ? "We typically reply in a few minutes" : "Offline";
  updateButtons();
  // Poll while nobody is online, so the page notices an operator coming back.
  if (online) {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
  } else {
    pollTimer ??= setInterval(() => void loadConfig(false), CONFIG_POLL_MS);
  }
}

function updateButtons(): void {
  const preWait = preConsent.required && !preConsent.box.checked;
  const offWait = offConsent.required && !offConsent.box.checked;
  startBtn.disabled = starting || preWait;
  offSendBtn.disabled = leaving || offWait;
  show(preConsent.hint, preWait);
  show(offConsent.hint, offWait);
}

function pickOffline(on: boolean): void {
  clearError();
  offlineChosen = on;
  offlineMode = on;
  if (on) {
    // Carry over what the visitor already typed.
    if (!offNameIn.value) offNameIn.value = nameIn.value;
    if (!offEmailIn.value) offEmailIn.value = emailIn.value;
    if (!offMessageIn.value) offMessageIn.value = messageIn.value;
  }
  renderStart();
  focusFirst();
}

function showPrechat(): void {
  stopWatch();
  body.replaceChildren(start);
  show(endBtn, false);
  askEnd(false);
  messageIn.value = "";
  offlineMode = offlineChosen = offlineDone = false;
  // Every chat is a new acceptance.
  preConsent.box.checked = offConsent.box.checked = false;
  renderStart();
  void loadConfig(true);
}

async function startChat(e: Event): Promise<void> {
  e.preventDefault();
  if (!prechat.reportValidity()) return;
  clearError();
  starting = true;
  updateButtons();
  const consent = accepted(preConsent);
  try {
    const res = await client.startChat({
      accountId,
      visitorName: nameIn.value.trim(),
      visitorEmail: emailIn.value.trim(),
      firstMessage: messageIn.value.trim(),
      locale,
      consentVersion: consent,
    });
    visitorName = nameIn.value.trim();
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
    session = { token: res.visitorToken, chatId: res.chatId, lastSeq: "0", consent };
    seenSeq = 0n;
    saveSession(session);
    showChat();
    composer.focus();
  } catch (err) {
    await refused(err);
  } finally {
    starting = false;
    updateButtons();
  }
}

async function leaveMessage(e: Event): Promise<void> {
  e.preventDefault();
  if (!offlineForm.reportValidity()) return;
  clearError();
  leaving = true;
  updateButtons();
  try {
    await client.leaveOfflineMessage({
      accountId,
      visitorName: offNameIn.value.trim(),
      visitorEmail: offEmailIn.value.trim(),
      message: offMessageIn.value.trim(),
      locale,
      consentVersion: accepted(offConsent),
    });
    offlineDone = true;
    offMessageIn.value = "";
    offConsent.box.checked = false;
    renderStart();
    offlineSent.focus();
  } catch (err) {
    await refused(err);
  } finally {
    leaving = false;
    updateButtons();
  }
}

// ---- chat view ----------------------------------------------------------------

const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages", "data-testid": "log" });
const waiting = h("p", { class: "sys waiting", "data-testid": "waiting" }, "Waiting for an operator…");
const typing = h("p", { class: "typing", "data-testid": "typing", "aria-live": "polite", hidden: true });
const newChatBtn = h("button", { type: "button", class: "btn primary", onclick: () => showPrechat() }, "Start a new chat");
const closedText = h("p", { class: "closed-text" });
const closedBox = h("div", { class: "closed", "data-testid": "closed", role: "status", hidden: true }, closedText, newChatBtn);

const transcriptBtn = h(
  "button",
  { type: "button", class: "link", "data-testid": "transcript", "aria-expanded": "false", "aria-controls": "lethe-transcript", onclick: () => askTranscript(trForm.hidden) },
  "Email me a transcript",
);
const withdrawBtn = h(
  "button",
  { type: "button", class: "link danger", "data-testid": "withdraw", onclick: () => askWithdraw(true) },
  "Withdraw consent and delete this chat",
);
const trEmail = h("input", { id: "lethe-tr-email", type: "email", required: true, maxlength: 254, autocomplete: "email", "data-testid": "transcript-email" });
const trSend = h("button", { type: "submit", class: "btn primary small", "data-testid": "transcript-send" }, "Send");
const trForm = h(
  "form",
  { id: "lethe-transcript", class: "inline-form", hidden: true, onsubmit: (e) => void requestTranscript(e) },
  h("label", { for: "lethe-tr-email", class: "label" }, "Send a copy of this chat, when it ends, to"),
  h("div", { class: "inline-row" }, trEmail, trSend),
);
const trOk = h("p", { class: "ok", role: "status", "data-testid": "transcript-ok", hidden: true });
const wdYes = h("button", { type: "button", class: "btn danger", "data-testid": "withdraw-confirm", onclick: () => void withdraw() }, "Withdraw and delete");
const wdNo = h("button", { type: "button", class: "btn ghost", onclick: () => askWithdraw(false) }, "Cancel");
const wdConfirm = h(
  "div",
  { class: "confirm inline", role: "group", "aria-label": "Confirm withdrawing consent", hidden: true },
  h("span", null, "Withdraw your consent? The chat ends now and everything in it is deleted at once, with no transcript."),
  h("div", { class: "confirm-actions" }, wdNo, wdYes),
);
const tools = h("div", { class: "tools" }, transcriptBtn, withdrawBtn);
const extras = h("div", { class: "extras" }, tools, trForm, trOk, wdConfirm);

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
const chatView = h("section", { class: "chat", "data-testid": "chat", "aria-label": "Conversation" }, log, typing, closedBox, extras, composerForm);

let watchCtl: AbortController | undefined;
let chatState = ChatState.UNSPECIFIED;
let operatorName = "";
let typingTimer: ReturnType<typeof setTimeout> | undefined;
let chatClosed = false;
let withdrawing = false;

function stopWatch(): void {
  watchCtl?.abort();
  watchCtl = undefined;
}

function showChat(): void {
  stopWatch();
  const s = session;
  if (!s) return showPrechat();
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = undefined;
  chatClosed = false;
  chatState = ChatState.UNSPECIFIED;
  operatorName = "";
  shownSeq = 0n;
  log.replaceChildren();
  show(typing, false);
  show(closedBox, false);
  show(endBtn, true);
  show(trForm, false);
  show(trOk, false);
  show(wdConfirm, false);
  transcriptBtn.setAttribute("aria-expanded", "false");
  renderTools();
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
      // Withdrawing destroys the chat; withdraw() shows the outcome.
      if (withdrawing) return;
      // The chat is gone (deleted, or the token no longer valid): start over.
      session = undefined;
      saveSession(undefined);
      showPrechat();
    },
  });
}

/** renderTools shows the transcript and withdrawal links an open chat offers. */
function renderTools(): void {
  const open = !!session && !chatClosed;
  show(transcriptBtn, open && !!cfg?.transcriptRequestsEnabled);
  show(withdrawBtn, open && (session?.consent ?? 0) > 0);
  show(tools, !transcriptBtn.hidden || !withdrawBtn.hidden);
  if (!open) {
    show(trForm, false);
    show(wdConfirm, false);
  }
}

function askTranscript(on: boolean): void {
  show(trForm, on);
  transcriptBtn.setAttribute("aria-expanded", String(on));
  if (on) {
    if (!trEmail.value) trEmail.value = emailIn.value.trim();
    trEmail.focus();
  }
}

async function requestTranscript(e: Event): Promise<void> {
  e.preventDefault();
  const s = session;
  if (!s || !trForm.reportValidity()) return;
  const email = trEmail.value.trim();
  trSend.disabled = true;
  try {
    await client.requestTranscript({ chatId: s.chatId, email });
    clearError();
    trOk.textContent = `A copy of this chat will be e-mailed to ${email} when it ends.`;
    show(trOk, true);
    askTranscript(false);
    transcriptBtn.focus();
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    trSend.disabled = false;
  }
}

function askWithdraw(on: boolean): void {
  const wasOpen = !wdConfirm.hidden;
  show(wdConfirm, on);
  if (on) wdYes.focus();
  else if (wasOpen && !withdrawBtn.hidden) withdrawBtn.focus();
}

async function withdraw(): Promise<void> {
  const s = session;
  if (!s || withdrawing) return;
  withdrawing = true;
  wdYes.disabled = true;
  try {
    await consentApi.withdrawConsent({ chatId: s.chatId });
    clearError();
    stopWatch();
    // The chat no longer exists anywhere; do not keep it on screen either.
    log.replaceChildren();
    endChatView("", "You withdrew your consent. The chat has ended and everything in it was deleted.");
    show(trOk, false);
  } catch (err) {
    showError(errorMessage(err));
  } finally {
    withdrawing = false;
    wdYes.disabled = false;
  }
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
      addLine("system", "Chat ended", ev);
      endChatView(k.value.reason ? `Chat closed: ${k.value.reason}` : "", "This conversation is over and has been deleted.");
      break;
  }
  if (isOpen && ev.seq !== 0n) markSeen();
}

/** endChatView turns the chat view into its closed state, with why and what became of it. */
function endChatView(why: string, text: string): void {
  const focusWasInside = chatView.contains(document.activeElement) || document.activeElement === confirmYes;
  chatClosed = true;
  hideTyping();
  stopTyping();
  onState(ChatState.CLOSED);
  setComposerEnabled(false);
  show(endBtn, false);
  askEnd(false);
  closedText.replaceChildren(...(why ? [h("strong", null, why), " ", text] : [text]));
  show(closedBox, true);
  session = undefined;
  saveSession(undefined);
  renderTools();
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
  if (invitation) {
    inviteYes.focus();
  } else if (body.firstChild === chatView) {
    if (!composer.disabled) composer.focus();
    else newChatBtn.focus();
  } else if (offlineMode) {
    if (offlineDone) offlineSent.focus();
    else (offNameIn.value ? (offEmailIn.value ? offMessageIn : offEmailIn) : offNameIn).focus();
  } else if (!fields.disabled) {
    (nameIn.value ? messageIn : nameIn).focus();
  }
}

// ---- start -----------------------------------------------------------------------

if (session) {
  showChat();
  void loadConfig(true);
} else {
  showPrechat();
}
postHost({ type: "lethe:ready" });
