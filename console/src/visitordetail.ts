/**
 * The detail pane of the Visitors page: everything known of one visitor
 * (where they are, the pages they saw, the website's custom data, verified
 * or not) and the "Invite to chat" form. When the visitor leaves, the pane
 * says so and what happens to their data.
 */
import type { Visitor } from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";
import { duration, timeOfDay } from "./format";
import type { VisitorEntry } from "./visitorlist";
import { detailFields, invitationText } from "./visitortext";

const DEFAULT_INVITATION = "Hi! Can I help you with anything?";
const MAX_INVITATION_CHARS = 500;

export interface VisitorDetail {
  readonly visitorId: string;
  readonly root: HTMLElement;
  /** render shows the visitor's latest state; undefined means they left. */
  render(entry: VisitorEntry | undefined): void;
  /** tick refreshes the time on site. */
  tick(now: number): void;
}

export function createVisitorDetail(visitorId: string, ctx: PageContext): VisitorDetail {
  const local: { entry: VisitorEntry | undefined; sending: boolean } = { entry: undefined, sending: false };

  const message = h("textarea", {
    id: "invite-message",
    "data-testid": "invite-message",
    rows: 3,
    maxlength: MAX_INVITATION_CHARS,
    required: true,
  });
  message.value = DEFAULT_INVITATION;
  const invite = h("button", { type: "submit", class: "btn primary", "data-testid": "invite" }, "Invite to chat");
  const state = h("p", { class: "vstate", "data-testid": "invitation-state", role: "status" });
  const form = h(
    "form",
    { class: "invite-form", "aria-labelledby": "invite-title" },
    h("h3", { id: "invite-title" }, "Invite to chat"),
    state,
    h("label", { class: "label", for: "invite-message" }, "Message shown to the visitor"),
    message,
    h("div", { class: "form-actions" }, invite),
  );
  const status = h("p", { class: "chat-meta", "data-testid": "visitor-status" });
  const info = h("div", { class: "vinfo" });
  const root = h(
    "article",
    { class: "vdetail", "data-testid": "visitor-detail", "data-visitor-id": visitorId },
    h("header", { class: "chat-head" }, h("div", { class: "chat-id" }, h("h2", { class: "chat-name" }, "Visitor"), status)),
    h("div", { class: "vbody" }, info, form),
  );

  const sendInvite = async () => {
    const text = message.value.trim();
    if (!text || local.sending || !local.entry) return;
    local.sending = true;
    invite.disabled = true;
    try {
      await ctx.api.monitor.invite({ visitorId, message: text });
      ctx.clearError();
      state.textContent = "Invitation sent, waiting for an answer.";
      state.dataset.state = "sent";
    } catch (err) {
      ctx.fail(err);
    } finally {
      local.sending = false;
      invite.disabled = state.dataset.state === "sent" || !local.entry;
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void sendInvite();
  });

  const renderLeft = () => {
    status.textContent = "Left the site";
    root.classList.add("left");
    info.replaceChildren(
      h(
        "p",
        { class: "banner", "data-testid": "visitor-left" },
        "Left the site. What was known of this visit is deleted from the server a few minutes after leaving.",
      ),
    );
    show(form, false);
  };

  const render = (entry: VisitorEntry | undefined) => {
    local.entry = entry;
    if (!entry) return renderLeft();
    const v = entry.visitor;
    root.classList.remove("left");
    tick(Date.now());
    const last = v.pages.length - 1;
    info.replaceChildren(
      h(
        "dl",
        { class: "kv" },
        ...detailFields(v).map(([key, name, value]) =>
          h("div", { class: "kv-row", "data-testid": `detail-${key}` }, h("dt", null, name), h("dd", null, value)),
        ),
      ),
      h("h3", null, `Pages viewed (${v.pages.length})`),
      h(
        "ol",
        { class: "vpages" },
        ...v.pages.map((pv, i) =>
          h(
            "li",
            { "data-testid": "visitor-page", class: i === last ? "current" : undefined },
            h("time", { class: "when" }, timeOfDay(pv.viewedAt, true)),
            h(
              "span",
              { class: "vpage-text" },
              h("span", { class: "vpage-title" }, pv.page?.title || "Untitled", i === last ? h("span", { class: "tag" }, "now") : null),
              h("span", { class: "vurl" }, pv.page?.url ?? ""),
            ),
          ),
        ),
      ),
      ...dataSection("page-data", "From the page (unverified)", "Set by the website's page with Lethe.setCustomData: the page, or the visitor, could have changed it.", v.pageData),
      ...dataSection("verified-data", "Verified by your server", "From a ticket your back end minted with an API key.", v.verifiedData),
    );
    renderInvitation(v);
  };

  const renderInvitation = (v: Visitor) => {
    const [shown, text] = invitationText(v.invitation);
    state.textContent = text;
    state.dataset.state = shown;
    show(form, true);
    invite.disabled = local.sending || shown === "sent";
  };

  const tick = (now: number) => {
    if (local.entry) status.textContent = `On the site for ${duration(now - local.entry.firstSeen)}`;
  };

  return { visitorId, root, render, tick };
}

function dataSection(testId: string, title: string, hint: string, data: Record<string, string>): HTMLElement[] {
  const keys = Object.keys(data).sort();
  if (!keys.length) return [];
  return [
    h(
      "section",
      { class: "vdata", "data-testid": testId },
      h("h3", null, title),
      h("p", { class: "hint" }, hint),
      h(
        "dl",
        { class: "kv" },
        ...keys.map((k) => h("div", { class: "kv-row", "data-testid": "data-row", "data-key": k }, h("dt", null, k), h("dd", null, data[k]))),
      ),
    ),
  ];
}
