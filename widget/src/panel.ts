/**
 * The chat panel runs inside the loader's iframe on the Lethe origin. It owns
 * the visitor's side of a chat. The loader creates it only when the visitor
 * opens the chat, an invitation arrives, or a chat is in progress: the visit
 * (page views, heartbeat, invitations' stream) is the loader's. This file
 * only boots it: it reads the page's meta tags, builds the clients and views
 * and wires them together. Where things are:
 *
 *   panel/visit.ts       the visit token, claimed with the loader's page token; invitation answers
 *   panel/host.ts        postMessage with the host page
 *   panel/start.ts       the start view: the pre-chat form and the offline form
 *   panel/start-state.ts which of them shows (pure)
 *   panel/consent.ts     the consent checkbox on both forms
 *   panel/chat.ts        the chat view; panel/composer.ts and panel/tools.ts belong to it
 *   panel/invitation.ts  an operator's invitation
 *   panel/shell.ts       header, error line and body slot
 *   panel/unread.ts      open state and the launcher's unread count (pure)
 *   panel/storage.ts     what is kept in sessionStorage
 *   panel/data.ts        "Your data" (GetMyData, download, correct, stop tracking, forget me),
 *                        a chunk of its own, imported on first use
 *
 * It talks to the host page only through postMessage with the host origin
 * from the page's meta tag, and never sends chat content there.
 */
import { panelApi } from "./panel/api";
import { createChatView } from "./panel/chat";
import { configLoader } from "./panel/config";
import { type Invitation, type PanelMessage, connectHost } from "./panel/host";
import { createInvitationView } from "./panel/invitation";
import { createShell } from "./panel/shell";
import { createStart } from "./panel/start";
import type { DataView } from "./panel/data";
import { INVITED_KEY, type ChatSession, type SessionBox, getItem, offlineTokens, sessionBox, setItem, setOfflineTokens } from "./panel/storage";
import { type Attention, attentionFrom, chatStarted, closed, eventShown, invitationPending, opened, viewRebuilt } from "./panel/unread";
import { panelVisit } from "./panel/visit";

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
const accountId = meta("lethe-account");

const box = sessionBox();
/** The chat session; the loader hears whether there is one, to load the panel on every page while there is. */
const session: SessionBox = {
  get current() {
    return box.current;
  },
  set(s) {
    const was = !!box.current;
    box.set(s);
    if (was !== !!s) post({ type: "lethe:chat", active: !!s });
  },
};
const api = panelApi(() => session.current?.token);

/** The panel's own state: which view is shown, and what the host page should know. */
const panel: { screen: "start" | "chat"; attention: Attention; keepFocus: boolean; data: DataView | undefined; dataShown: boolean } = {
  screen: "start",
  /** "Your data", once loaded, and whether it stands in for the screen. */
  data: undefined,
  dataShown: false,
  attention: attentionFrom(session.current?.lastSeq),
  /** Set when the panel opened itself for an invitation: leave focus in the page. */
  keepFocus: false,
};

const shell = createShell(minimize, () => void showData());
const reloadConfig = configLoader(accountId, api, shell, (cfg) => {
  start.configure(cfg);
  chat.configure(cfg);
});
const start = createStart({
  accountId,
  shell,
  api,
  reloadConfig,
  onStarted,
  onOfflineToken: (t) => setOfflineTokens([...offlineTokens(), t]),
});
const chat = createChatView({
  shell,
  api,
  session,
  onEvent: (seq, byOperator) => attend(eventShown(panel.attention, seq, byOperator)),
  onGone: showStart,
  onNewChat: showStart,
  prefillEmail: () => start.email(),
});
const invitation = createInvitationView(shell, onAnswer);
const visit = panelVisit();
const post: (msg: PanelMessage) => void = connectHost(meta("lethe-host"), (c) => {
  switch (c.type) {
    case "open":
      return setOpen();
    case "close":
      return attend(closed(panel.attention));
    case "visit":
      return visit.setPageToken(c.pageToken);
    case "invitation":
      return onInvitation(c.invitation);
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
  if (panel.dataShown && panel.data) panel.data.focus();
  else if (invitation.showing()) invitation.focus();
  else if (panel.screen === "chat") chat.focus();
  else start.focus();
}

/** setBody shows a screen's view, unless "Your data" stands in for it (then it shows on the way back). */
function setBody(view: HTMLElement): void {
  if (!panel.dataShown) shell.setBody(view);
}

function showStart(): void {
  panel.screen = "start";
  chat.stop();
  setBody(start.root);
  start.show();
}

function showChat(s: ChatSession): void {
  panel.screen = "chat";
  start.hide();
  attend(viewRebuilt(panel.attention));
  setBody(chat.root);
  chat.show(s);
}

/** showData opens "Your data" over the current screen, loading its chunk the first time. */
async function showData(): Promise<void> {
  if (!panel.data) {
    try {
      const { createDataView } = await import("./panel/data");
      await visit.claimed();
      panel.data ??= createDataView({
        chatToken: () => session.current?.token,
        visitToken: () => visit.token(),
        offlineTokens,
        setOfflineTokens,
        showError: (msg) => shell.showError(msg),
        clearError: () => shell.clearError(),
        onBack: hideData,
        onStoppedTracking: () => {
          visit.forget();
          post({ type: "lethe:notrack" });
        },
        onForgotten: forgotten,
      });
    } catch {
      shell.showError("Your data could not be shown. Please try again.");
      return;
    }
  }
  panel.dataShown = true;
  shell.clearError();
  shell.setBody(panel.data.root);
  panel.data.open();
  panel.data.focus();
}

function hideData(): void {
  panel.dataShown = false;
  shell.clearError();
  shell.setBody(panel.screen === "chat" ? chat.root : start.root);
  focusFirst();
}

/** forgotten starts afresh once everything was erased: no chat, no visit, no offline messages. */
function forgotten(): void {
  chat.stop();
  session.set(undefined);
  visit.forget();
  post({ type: "lethe:forgotten" });
  setOfflineTokens([]);
  panel.screen = "start";
  start.show();
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
  if (e.key !== "Escape") return;
  if (panel.dataShown && panel.data?.escape()) return;
  if (!chat.escape()) minimize();
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
post({ type: "lethe:chat", active: !!session.current });
