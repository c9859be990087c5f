/**
 * The "My account" page (every operator, lethe.privacy.v1): export my data
 * as JSON, correct my name and sign-in address (password re-entered), my
 * signed-in sessions with the current one marked (revoke any), and deleting
 * my account (password re-entered; the server's reason shown when it
 * refuses, such as being the last admin).
 */
import { toJsonString } from "@bufbuild/protobuf";
import { errorMessage, type Operator } from "@lethe/sdk";
import { OperatorExportSchema, type Session } from "../../gen/ts/lethe/privacy/v1/privacy_pb";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";
import { downloadText, whenText } from "./download";
import { label } from "./fields";

export interface MyAccountOptions {
  me: Operator;
  /** onRenamed shows the corrected name in the header. */
  onRenamed(op: Operator): void;
  /** onGone signs out after the account was deleted (or the current session revoked). */
  onGone(message: string): void;
}

export function myAccountPage(ctx: PageContext, o: MyAccountOptions): HTMLElement {
  const api = ctx.api.privacy;
  return h(
    "div",
    { class: "settings-page", "data-testid": "my-account" },
    exportCard(ctx),
    profileCard(ctx, o),
    sessionsCard(ctx, o),
    deleteCard(o, api),
  );
}

function exportCard(ctx: PageContext): HTMLElement {
  const btn = h("button", { type: "button", class: "btn ghost", "data-testid": "me-export" }, "Download my data (JSON)");
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      const res = await ctx.api.privacy.exportMyAccount({});
      ctx.clearError();
      if (res.export) downloadText("my-lethe-account.json", toJsonString(OperatorExportSchema, res.export, { prettySpaces: 2 }));
    } catch (err) {
      ctx.fail(err);
    } finally {
      btn.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "me-export-title" },
    h("h2", { id: "me-export-title" }, "Your data"),
    h("p", { class: "card-intro" }, "Your profile, your sessions and the audit entries about you, as one JSON file."),
    btn,
  );
}

function profileCard(ctx: PageContext, o: MyAccountOptions): HTMLElement {
  const name = h("input", { "data-testid": "me-name", required: true, maxlength: 100, autocomplete: "name", value: o.me.name });
  const email = h("input", { type: "email", "data-testid": "me-email", required: true, maxlength: 254, autocomplete: "username", value: o.me.email });
  const password = h("input", { type: "password", "data-testid": "me-password", required: true, autocomplete: "current-password" });
  const save = h("button", { type: "submit", class: "btn primary", "data-testid": "me-save" }, "Save");
  const ok = h("span", { class: "ok", role: "status", "data-testid": "me-ok", hidden: true }, "Saved.");
  const form = h(
    "form",
    { class: "set-form", "aria-labelledby": "me-profile-title" },
    h("h2", { id: "me-profile-title" }, "Name and e-mail"),
    h("div", { class: "two" }, label("Name", name), label("E-mail (you sign in with it)", email)),
    label("Your current password", password),
    h("div", { class: "form-actions" }, save, ok),
  );
  form.addEventListener("input", () => show(ok, false));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    save.disabled = true;
    try {
      const res = await ctx.api.privacy.updateMyProfile({ name: name.value.trim(), email: email.value.trim(), currentPassword: password.value });
      ctx.clearError();
      password.value = "";
      if (res.operator) o.onRenamed(res.operator);
      show(ok, true);
    } catch (err) {
      ctx.fail(err);
    } finally {
      save.disabled = false;
    }
  });
  return h("section", { class: "card" }, form);
}

function sessionsCard(ctx: PageContext, o: MyAccountOptions): HTMLElement {
  const rows = h("tbody");
  const row = (s: Session): HTMLElement => {
    const revoke = h("button", { type: "button", class: "btn danger-ghost small", "data-testid": "session-revoke" }, s.current ? "Sign out" : "Revoke");
    const tr = h(
      "tr",
      { "data-testid": "session-row", "data-current": s.current ? "true" : "false" },
      h("td", null, s.client || "Unknown browser", s.current ? h("span", { class: "you" }, " (this session)") : null),
      h("td", null, s.network),
      h("td", null, whenText(s.signedInAt)),
      h("td", null, whenText(s.expiresAt)),
      h("td", { class: "right" }, revoke),
    );
    revoke.addEventListener("click", async () => {
      revoke.disabled = true;
      try {
        await ctx.api.privacy.revokeSession({ sessionId: s.id });
        ctx.clearError();
        if (s.current) o.onGone("You signed this session out.");
        else tr.remove();
      } catch (err) {
        revoke.disabled = false;
        ctx.fail(err);
      }
    });
    return tr;
  };
  void (async () => {
    try {
      const res = await ctx.api.privacy.listMySessions({});
      rows.replaceChildren(...res.sessions.map(row));
    } catch (err) {
      ctx.fail(err);
    }
  })();
  return h(
    "section",
    { class: "card", "aria-labelledby": "me-sessions-title" },
    h("h2", { id: "me-sessions-title" }, "Where you are signed in"),
    h(
      "table",
      { class: "ops", "data-testid": "sessions" },
      h("caption", { class: "sr-only" }, "Your sessions"),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ...["Browser", "Network", "Signed in", "Expires"].map((c) => h("th", { scope: "col" }, c)),
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
        ),
      ),
      rows,
    ),
  );
}

function deleteCard(o: MyAccountOptions, api: PageContext["api"]["privacy"]): HTMLElement {
  const password = h("input", { type: "password", id: "me-del-password", "data-testid": "me-delete-password", required: true, autocomplete: "current-password" });
  const btn = h("button", { type: "submit", class: "btn danger", "data-testid": "me-delete" }, "Delete my account");
  const refused = h("p", { class: "warning", role: "alert", "data-testid": "me-delete-refused", hidden: true });
  const form = h(
    "form",
    { class: "set-form", "aria-labelledby": "me-del-title" },
    h("h2", { id: "me-del-title" }, "Delete your account"),
    h("p", { class: "card-intro" }, "Your sessions end, your chats go back to the queue and your profile is deleted. This cannot be undone."),
    label("Your current password", password),
    refused,
    h("div", { class: "form-actions" }, btn),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    if (!confirm("Delete your account now? This cannot be undone.")) return;
    btn.disabled = true;
    show(refused, false);
    try {
      await api.deleteMyAccount({ currentPassword: password.value });
      o.onGone("Your account was deleted.");
    } catch (err) {
      refused.textContent = errorMessage(err);
      show(refused, true);
    } finally {
      btn.disabled = false;
    }
  });
  return h("section", { class: "card danger-card" }, form);
}
