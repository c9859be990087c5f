/**
 * The signed-in console around the pages: the header (account, the tabs,
 * connection state, the operator's status, sign-out), the error line, and
 * which page is shown. Chats and Visitors live as long as the session,
 * since they follow streams; the admin pages are built fresh each time they
 * are opened, so they show the server's current state.
 */
import {
  Code,
  ConnectError,
  OperatorStatus,
  Role,
  errorMessage,
  type Account,
  type Operator,
} from "@lethe/sdk";
import { h } from "../../ui/dom";
import { createChatsPage } from "./chats";
import type { Api, PageContext } from "./context";
import { errorBox } from "./fields";
import { myAccountPage } from "./myaccount";
import { operatorsPage } from "./operators";
import { privacyPage } from "./privacy";
import { settingsPage } from "./settings";
import type { Chime } from "./sound";
import { createVisitorsPage } from "./visitors";

export interface ShellOptions {
  root: HTMLElement;
  api: Api;
  me: Operator;
  account: Account;
  /** Aborts when the session ends. */
  signal: AbortSignal;
  chime: Chime;
  baseTitle: string;
  /** Goes back to the sign-in screen, with a reason to show. */
  signOut(message?: string): void;
}

type PageName = "chats" | "visitors" | "admin" | "privacy" | "settings" | "me";

export function startShell(o: ShellOptions): void {
  const isAdmin = o.me.role === Role.ADMIN;
  const error = errorBox();
  const ctx: PageContext = {
    api: o.api,
    signal: o.signal,
    fail(err) {
      if (o.signal.aborted) return; // a late answer to a signed-out console
      const e = ConnectError.from(err);
      if (e.code === Code.Unauthenticated) o.signOut("Your session has ended. Please sign in again.");
      else error.textContent = errorMessage(e);
    },
    clearError() {
      error.textContent = "";
    },
  };

  const status = h(
    "select",
    { "data-testid": "status", "aria-label": "Your status", class: "status-select" },
    h("option", { value: "online" }, "Online"),
    h("option", { value: "away" }, "Away"),
  );
  const conn = h("span", { class: "conn", role: "status" }, "Connecting…");
  const logout = h("button", { type: "button", class: "btn ghost", "data-testid": "logout" }, "Log out");

  const chats = createChatsPage({
    ...ctx,
    me: o.me.id,
    chime: o.chime,
    baseTitle: o.baseTitle,
    onConnection(live) {
      conn.textContent = live ? "" : "Reconnecting…";
      conn.classList.toggle("bad", !live);
    },
    onMyStatus(s) {
      status.value = s === OperatorStatus.AWAY ? "away" : "online";
    },
  });
  const visitors = createVisitorsPage(ctx);

  const tabs: Record<PageName, HTMLButtonElement | undefined> = {
    chats: h("button", { type: "button", class: "tab" }, "Chats"),
    visitors: h(
      "button",
      { type: "button", class: "tab", "data-testid": "visitors-tab" },
      "Visitors",
      h("span", { class: "sr-only" }, " on site: "),
      visitors.tabCount,
    ),
    admin: isAdmin ? h("button", { type: "button", class: "tab", "data-testid": "admin" }, "Operators") : undefined,
    privacy: isAdmin ? h("button", { type: "button", class: "tab", "data-testid": "privacy-tab" }, "Privacy") : undefined,
    settings: isAdmin ? h("button", { type: "button", class: "tab", "data-testid": "settings-tab" }, "Settings") : undefined,
    me: h("button", { type: "button", class: "tab", "data-testid": "me-tab" }, "My account"),
  };
  const content = h("div", { class: "content" });
  const myName = h("span", { class: "me", "data-testid": "me-name-shown" }, o.me.name);
  const header = h(
    "header",
    { class: "top" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Lethe", h("span", { class: "acct" }, o.account.name)),
    h("nav", { class: "tabs", "aria-label": "Pages" }, tabs.chats, tabs.visitors, tabs.admin, tabs.privacy, tabs.settings, tabs.me),
    h("div", { class: "top-right" }, conn, myName, status, logout),
  );
  o.root.replaceChildren(h("div", { class: "shell" }, header, error, content));

  const showPage = (page: PageName) => {
    for (const [name, tab] of Object.entries(tabs)) {
      if (name === page) tab?.setAttribute("aria-current", "page");
      else tab?.removeAttribute("aria-current");
    }
    ctx.clearError();
    visitors.setShown(page === "visitors");
    switch (page) {
      case "chats":
        content.replaceChildren(chats.root);
        break;
      case "visitors":
        content.replaceChildren(visitors.root);
        break;
      case "admin":
        content.replaceChildren(operatorsPage(ctx, o.me.id));
        break;
      case "settings":
        content.replaceChildren(settingsPage(ctx));
        break;
      case "privacy":
        content.replaceChildren(privacyPage(ctx, o.account.id));
        break;
      case "me":
        content.replaceChildren(
          myAccountPage(ctx, {
            me: o.me,
            onRenamed(op) {
              o.me.name = op.name;
              o.me.email = op.email;
              myName.textContent = op.name;
            },
            onGone: (message) => o.signOut(message),
          }),
        );
        break;
    }
  };
  for (const [name, tab] of Object.entries(tabs) as Array<[PageName, HTMLButtonElement | undefined]>) {
    tab?.addEventListener("click", () => showPage(name));
  }

  status.addEventListener("change", async () => {
    const want = status.value === "away" ? OperatorStatus.AWAY : OperatorStatus.ONLINE;
    try {
      const res = await o.api.chat.setStatus({ status: want });
      ctx.clearError();
      status.value = res.status === OperatorStatus.AWAY ? "away" : "online";
    } catch (err) {
      status.value = want === OperatorStatus.AWAY ? "online" : "away";
      ctx.fail(err);
    }
  });
  logout.addEventListener("click", async () => {
    try {
      await o.api.account.logout({});
    } catch {
      // Signed out either way from this page's point of view.
    }
    o.signOut();
  });

  showPage("chats");
}
