/**
 * The Chats page: the queue, the operator's chats, and the conversation on
 * screen, all from the operator's one WatchInbox stream. The rules live in
 * the inbox reducer (inbox.ts); this page keeps its state, runs the effects
 * the reducer asks for (show an event, chime, reconnect, free a view) and
 * draws the result.
 */
import { watchInboxResuming, type InboxWatch, type OperatorStatus } from "@lethe/sdk";
import { h } from "../../ui/dom";
import { createChatView, type ChatView } from "./chatview";
import type { PageContext } from "./context";
import { millis, startedText, waitingText } from "./format";
import {
  canWrite,
  initialInbox,
  myChats,
  queue,
  reduceInbox,
  resumeSeqs,
  transferTargets,
  type ChatEntry,
  type InboxAction,
  type InboxEffect,
  type InboxState,
} from "./inbox";
import type { Chime } from "./sound";

/** How long a summary may name events the stream has not brought before it reconnects. */
const GAP_WAIT_MS = 1500;
/** The lists' "waiting 3 min" texts are this fresh. */
const TICK_MS = 15000;

export interface ChatsOptions extends PageContext {
  /** The signed-in operator's id. */
  me: string;
  chime: Chime;
  /** The page title without the queue count. */
  baseTitle: string;
  /** The stream is live (true) or reconnecting (false). */
  onConnection(live: boolean): void;
  /** The server reports the operator's own status. */
  onMyStatus(status: OperatorStatus): void;
}

export interface ChatsPage {
  readonly root: HTMLElement;
}

/** The page's state: the inbox and one view per chat that has shown anything. */
interface Page {
  inbox: InboxState;
  views: Map<string, ChatView>;
  watch: InboxWatch | undefined;
  /** What the lists were last drawn from, so an unchanged list is not rebuilt under the pointer. */
  listsDrawn: string;
  /** The chat whose view is in the main pane ("" for none). */
  onScreen: string;
}

export function createChatsPage(o: ChatsOptions): ChatsPage {
  const page: Page = { inbox: initialInbox(o.me), views: new Map(), watch: undefined, listsDrawn: "", onScreen: "" };

  const queueCount = h("span", { class: "count" }, "0");
  const mineCount = h("span", { class: "count" }, "0");
  const queueList = h("ul", { class: "list", "data-testid": "queue", "aria-label": "Queue" });
  const mineList = h("ul", { class: "list", "data-testid": "mychats", "aria-label": "My chats" });
  const main = h("section", { class: "main", "aria-label": "Selected chat" }, emptyMain());
  const side = h(
    "nav",
    { class: "side", "aria-label": "Chats" },
    h("h2", { class: "side-title" }, "Queue", queueCount),
    queueList,
    h("h2", { class: "side-title" }, "My chats", mineCount),
    mineList,
  );
  const root = h("div", { class: "chats-page" }, side, main);

  const viewFor = (id: string): ChatView => {
    let v = page.views.get(id);
    if (!v) {
      v = createChatView(id, {
        ...o,
        onDismiss: () => dispatch({ kind: "dismiss", chatId: id }),
        onTransferred: (to) => dispatch({ kind: "transferred", chatId: id, to }),
      });
      page.views.set(id, v);
    }
    return v;
  };

  const run = (fx: InboxEffect) => {
    switch (fx.kind) {
      case "show":
        viewFor(fx.chatId).show(fx.event);
        break;
      case "beep":
        o.chime.beep();
        break;
      case "checkGap":
        setTimeout(() => dispatch({ kind: "gapCheck", chatId: fx.chatId, want: fx.want }), GAP_WAIT_MS);
        break;
      case "reconnect":
        page.watch?.reconnect();
        break;
      case "drop":
        page.views.get(fx.chatId)?.dispose();
        page.views.delete(fx.chatId);
        break;
      case "status":
        o.onMyStatus(fx.status);
        break;
    }
  };

  function dispatch(a: InboxAction): void {
    if (o.signal.aborted) return;
    const r = reduceInbox(page.inbox, a);
    page.inbox = r.state;
    r.effects.forEach(run);
    render(false);
  }

  // ---- render ---------------------------------------------------------------------

  function render(forceLists: boolean): void {
    const s = page.inbox;
    // Lists are drawn only after the snapshot, so a reconnect does not empty them for a moment.
    if (!s.snapshot) renderLists(s, forceLists);
    const e = s.chats.get(s.selected);
    if (!e) {
      if (page.onScreen) {
        page.onScreen = "";
        main.replaceChildren(emptyMain());
      }
      return;
    }
    const v = viewFor(e.id);
    v.render({ entry: e, writable: canWrite(s, e), targets: transferTargets(s) });
    if (page.onScreen !== e.id) {
      page.onScreen = e.id;
      main.replaceChildren(v.root);
      v.scrollToEnd();
    }
  }

  function renderLists(s: InboxState, force: boolean): void {
    const queued = queue(s);
    const mine = myChats(s);
    const key = (es: ChatEntry[]) =>
      es.map((e) => [e.id, e.summary?.visitorName, e.summary?.visitorEmail, e.unread, s.selected === e.id].join("\u0000")).join("\u0001");
    const drawn = `${key(queued)}\u0002${key(mine)}`;
    if (!force && drawn === page.listsDrawn) return;
    page.listsDrawn = drawn;

    const now = Date.now();
    const since = (e: ChatEntry) => now - (millis(e.summary?.startedAt) || now);
    // The lists are rebuilt; keep keyboard focus on the same control.
    const active = document.activeElement;
    const focusChat = active instanceof HTMLElement && side.contains(active) ? active.closest("[data-chat-id]")?.getAttribute("data-chat-id") : null;
    const focusTestId = active instanceof HTMLElement ? active.getAttribute("data-testid") : null;

    queueList.replaceChildren(
      ...queued.map((e) => {
        const accept = h("button", { type: "button", class: "btn primary small", "data-testid": "accept" }, "Accept");
        accept.addEventListener("click", () => void acceptChat(e.id, accept));
        return h(
          "li",
          { class: "item", "data-testid": "queue-item", "data-chat-id": e.id },
          h(
            "div",
            { class: "item-text" },
            h("span", { class: "item-name" }, e.summary?.visitorName || "Visitor"),
            h("span", { class: "item-sub" }, waitingText(since(e))),
          ),
          accept,
        );
      }),
    );
    if (!queued.length) queueList.append(h("li", { class: "none" }, "Nobody is waiting."));

    mineList.replaceChildren(
      ...mine.map((e) => {
        const btn = h(
          "button",
          { type: "button", class: "item-btn", "aria-current": s.selected === e.id ? "true" : undefined },
          h(
            "span",
            { class: "item-text" },
            h("span", { class: "item-name" }, e.summary?.visitorName || "Visitor"),
            h("span", { class: "item-sub" }, e.summary?.visitorEmail || startedText(since(e))),
          ),
          e.unread ? h("span", { class: "badge", "aria-label": `${e.unread} unread` }, String(e.unread)) : null,
        );
        btn.addEventListener("click", () => {
          dispatch({ kind: "select", chatId: e.id });
          page.views.get(e.id)?.focus();
        });
        return h("li", { class: "item mine", "data-testid": "mychat", "data-chat-id": e.id }, btn);
      }),
    );
    if (!mine.length) mineList.append(h("li", { class: "none" }, "No open chats."));

    if (focusChat) {
      const item = side.querySelector(`[data-chat-id="${CSS.escape(focusChat)}"]`);
      const target = focusTestId ? item?.querySelector<HTMLElement>(`[data-testid="${focusTestId}"]`) : item?.querySelector<HTMLElement>("button");
      target?.focus();
    }
    queueCount.textContent = String(queued.length);
    mineCount.textContent = String(mine.length);
    document.title = queued.length ? `(${queued.length}) ${o.baseTitle}` : o.baseTitle;
  }

  async function acceptChat(id: string, btn: HTMLButtonElement): Promise<void> {
    btn.disabled = true;
    try {
      const res = await o.api.chat.acceptChat({ chatId: id });
      o.clearError();
      if (res.chat) dispatch({ kind: "accepted", summary: res.chat });
      page.views.get(id)?.focus();
    } catch (err) {
      btn.disabled = false;
      o.fail(err);
    }
  }

  // ---- stream and clock -----------------------------------------------------------

  const tick = setInterval(() => render(true), TICK_MS);
  o.signal.addEventListener(
    "abort",
    () => {
      clearInterval(tick);
      for (const v of page.views.values()) v.dispose();
      page.views.clear();
    },
    { once: true },
  );

  page.watch = watchInboxResuming(o.api.chat, {
    signal: o.signal,
    afterSeq: resumeSeqs(page.inbox),
    onConnected: () => {
      if (o.signal.aborted) return;
      o.onConnection(true);
      dispatch({ kind: "connected" });
    },
    onDisconnected: () => {
      if (!o.signal.aborted) o.onConnection(false);
    },
    onFinalError: (err) => {
      if (!o.signal.aborted) o.fail(err);
    },
    onMessage: (res) => dispatch({ kind: "message", res }),
  });
  renderLists(page.inbox, true);
  return { root };
}

function emptyMain(): HTMLElement {
  return h(
    "div",
    { class: "empty" },
    h("p", { class: "empty-title" }, "No chat selected"),
    h("p", null, "Accept a chat from the queue or pick one of your chats."),
  );
}
