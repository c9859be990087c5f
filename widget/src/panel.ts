/**
 * The chat panel runs inside the loader's iframe on the Lethe origin. It owns
 * the visitor's side of a chat and reports the visit on every page. This file
 * only boots it: it reads the page's meta tags, builds the clients and views
 * and wires them together. Where things are:
 *
 *   panel/visit.ts       the visit: page views, custom data, heartbeat, Leave on pagehide
 *   panel/host.ts        postMessage with the host page
 *   panel/start.ts       the start view: the pre-chat form and the offline form
 *   panel/start-state.ts which of them shows (pure)
 *   panel/consent.ts     the consent checkbox on both forms
 *   panel/chat.ts        the chat view; panel/composer.ts and panel/tools.ts belong to it
 *   panel/invitation.ts  an operator's invitation
 *   panel/shell.ts       header, error line and body slot
 *   panel/unread.ts      open state and the launcher's unread count (pure)
 *   panel/storage.ts     what is kept in sessionStorage
 *
 * It talks to the host page only through postMessage with the host origin
 * from the page's meta tag, and never sends chat content there: an
 * invitation's text is shown here, never in the page.
 */
import { ChatService, ConsentService, FileService, type Invitation, createClient, createLetheTransport } from "@lethe/sdk";
import { createChatView } from "./panel/chat";
import { configLoader } from "./panel/config";
import { type PanelMessage, connectHost } from "./panel/host";
import { createInvitationView } from "./panel/invitation";
import { createShell } from "./panel/shell";
import { createStart } from "./panel/start";
import { INVITED_KEY, type ChatSession, getItem, sessionBox, setItem } from "./panel/storage";
import { type Attention, attentionFrom, chatStarted, closed, eventShown, invitationPending, opened, viewRebuilt } from "./panel/unread";
import { startVisit } from "./panel/visit";

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
const accountId = meta("lethe-account");

const session = sessionBox();
const transport = createLetheTransport(location.origin, { token: () => session.current?.token });
const chatApi = createClient(ChatService, transport);
const consentApi = createClient(ConsentService, transport);
const filesApi = createClient(FileService, transport);

/** The panel's own state: which view is shown, and what the host page should know. */
const panel: { screen: "start" | "chat"; attention: Attention; keepFocus: boolean } = {
  screen: "start",
  attention: attentionFrom(session.current?.lastSeq),
  /** Set when the panel opened itself for an invitation: leave focus in the page. */
  keepFocus: false,
};

const shell = createShell(minimize);
const reloadConfig = configLoader(accountId, chatApi, shell, (cfg) => {
  start.configure(cfg);
  chat.configure(cfg);
});
const start = createStart({ accountId, shell, chat: chatApi, consent: consentApi, reloadConfig, onStarted });
const chat = createChatView({
  shell,
  chat: chatApi,
  consent: consentApi,
  files: filesApi,
  session,
  onEvent: (seq, byOperator) => attend(eventShown(panel.attention, seq, byOperator)),
  onGone: showStart,
  onNewChat: showStart,
  prefillEmail: () => start.email(),
});
const invitation = createInvitationView(shell, onAnswer);
const visit = startVisit(accountId, onInvitation);
const post: (msg: PanelMessage) => void = connectHost(meta("lethe-host"), (c) => {
  switch (c.type) {
    case "open":
      return setOpen();
    case "close":
      return attend(closed(panel.attention));
    case "context":
      return visit.setPage(c.page);
    case "data":
      return visit.setData(c.data);
    case "identify":
      return visit.identify(c.ticket);
  }
});

/** attend moves to the next attention state, telling the page and storage what changed. */
function attend(next: Attention): void {
  const prev = panel.attention;
  panel.attention = next;
  const s = session.current;
  if (s && next.seen !== prev.seen) session.set({ ...s, lastSeq: next.seen.toString() });
  if (next.unread !== prev.unread) post({ type: "lethe:unread", count: next.unread });
}

function setOpen(): void {
  attend(opened(panel.attention));
  if (!panel.keepFocus) focusFirst();
  panel.keepFocus = false;
}

function minimize(): void {
  attend(closed(panel.attention));
  post({ type: "lethe:close" });
}

function focusFirst(): void {
  if (invitation.showing()) invitation.focus();
  else if (panel.screen === "chat") chat.focus();
  else start.focus();
}

function showStart(): void {
  panel.screen = "start";
  chat.stop();
  shell.setBody(start.root);
  start.show();
}

function showChat(s: ChatSession): void {
  panel.screen = "chat";
  start.hide();
  attend(viewRebuilt(panel.attention));
  shell.setBody(chat.root);
  chat.show(s);
}

function onStarted(s: ChatSession): void {
  session.set(s);
  attend(chatStarted(panel.attention));
  showChat(s);
  chat.focus();
}

/**
 * onInvitation shows an operator's invitation, unless the visitor is already
 * in a chat. The first time an invitation arrives the panel opens itself (the
 * page only learns "open"; the operator's words stay in here); when it is
 * still pending on a later page, the launcher shows a badge instead.
 */
function onInvitation(inv: Invitation): void {
  if (session.current || start.busy() || !invitation.offer(inv)) return;
  shell.clearError();
  if (panel.attention.open) return;
  if (getItem(INVITED_KEY) !== inv.invitationId) {
    setItem(INVITED_KEY, inv.invitationId);
    panel.keepFocus = true;
    post({ type: "lethe:open" });
  } else {
    attend(invitationPending(panel.attention));
  }
}

/** Accepting shows the pre-chat form, where the consent rules apply as ever. */
function onAnswer(inv: Invitation, accepted: boolean): void {
  if (accepted) {
    if (panel.screen !== "start") showStart();
    focusFirst();
  } else {
    minimize();
  }
  void visit.answerInvitation(inv.invitationId, accepted);
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !chat.escape()) minimize();
});

shell.mount(document.getElementById("app") ?? document.body, {
  actions: [chat.endButton],
  bars: [chat.endConfirm],
  overlays: [invitation.root],
});
if (session.current) {
  showChat(session.current);
  void reloadConfig();
} else {
  showStart();
}
post({ type: "lethe:ready" });
