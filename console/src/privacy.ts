/**
 * The Privacy page (admins, lethe.privacy.v1): requests by e-mail address
 * (find what is held for a person, export it as JSON, erase it now with a
 * receipt), the account's data inventory (with the public page's link), and
 * the audit trail (paged, and as JSON Lines). Every text is set as text.
 */
import { toJsonString } from "@bufbuild/protobuf";
import {
  type AuditEntry,
  type ChatData,
  type DataInventory,
  type DeletionReceipt,
  MailKind,
  type PendingMail,
  SubjectDataSchema,
  type SubjectData,
  type VisitFound,
} from "../../gen/ts/lethe/privacy/v1/privacy_pb";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";
import { downloadText, whenText } from "./download";
import { label } from "./fields";

export function privacyPage(ctx: PageContext, accountId: string): HTMLElement {
  return h("div", { class: "settings-page", "data-testid": "privacy-page" }, subjectCard(ctx), inventoryCard(ctx, accountId), auditCard(ctx));
}

const table = (testid: string, caption: string, head: string[], rows: HTMLElement[] | HTMLTableSectionElement) =>
  h(
    "table",
    { class: "ops", "data-testid": testid },
    h("caption", { class: "sr-only" }, caption),
    h("thead", null, h("tr", null, ...head.map((c) => h("th", { scope: "col" }, c)))),
    Array.isArray(rows) ? h("tbody", null, ...rows) : rows,
  );

const mailKind = (k: MailKind) => (k === MailKind.TRANSCRIPT ? "Transcript" : k === MailKind.OFFLINE_MESSAGE ? "Offline message" : "E-mail");

function subjectCard(ctx: PageContext): HTMLElement {
  const email = h("input", { type: "email", "data-testid": "subject-email", required: true, maxlength: 254, autocomplete: "off" });
  const find = h("button", { type: "submit", class: "btn primary", "data-testid": "subject-find" }, "Find");
  const result = h("div", { class: "subject-result", "data-testid": "subject-result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "set-form", "aria-labelledby": "subject-title" },
    h("h2", { id: "subject-title" }, "Requests by e-mail address"),
    h("p", { class: "card-intro" }, "Find everything held right now for a person's e-mail address: open chats, mail waiting to be sent, visits. Export it for them, or erase it."),
    h("div", { class: "inline bottom" }, label("E-mail address", email), find),
  );
  let found: { email: string; data: SubjectData } | undefined;

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    find.disabled = true;
    try {
      const addr = email.value.trim();
      const res = await ctx.api.privacy.findDataSubject({ email: addr });
      ctx.clearError();
      found = res.data ? { email: addr, data: res.data } : undefined;
      render();
    } catch (err) {
      ctx.fail(err);
    } finally {
      find.disabled = false;
    }
  });

  const chatRow = (c: ChatData) =>
    h("tr", null, h("td", null, c.visitorName), h("td", null, c.state), h("td", null, whenText(c.startedAt)), h("td", null, `${c.messageCount} messages, ${c.fileCount} files`));
  const mailRow = (m: PendingMail) =>
    h("tr", null, h("td", null, mailKind(m.kind)), h("td", null, m.subject), h("td", null, whenText(m.queuedAt)), h("td", null, String(m.attempts)));
  const visitRow = (v: VisitFound) =>
    h("tr", null, h("td", null, v.visitorId), h("td", null, String(v.visit?.pages.length ?? 0)), h("td", null, whenText(v.visit?.lastSeen)));

  function render(): void {
    if (!found) return void result.replaceChildren();
    const { data, email: addr } = found;
    const n = data.chats.length + data.mail.length + data.visits.length;
    const exportBtn = h("button", { type: "button", class: "btn ghost", "data-testid": "subject-export" }, "Export (JSON)");
    const eraseBtn = h("button", { type: "button", class: "btn danger", "data-testid": "subject-erase" }, "Erase now");
    exportBtn.addEventListener("click", () => downloadText("data-subject.json", toJsonString(SubjectDataSchema, data, { prettySpaces: 2 })));
    eraseBtn.addEventListener("click", () => void erase(addr, eraseBtn));
    result.replaceChildren(
      h("p", { "data-testid": "subject-summary" }, n ? `Held right now for ${addr}: ${n} item${n === 1 ? "" : "s"}.` : `Nothing is held for ${addr}.`),
      data.chats.length ? h("h3", null, "Chats") : "",
      data.chats.length ? table("subject-chats", "Chats", ["Visitor", "State", "Started", "Content"], data.chats.map(chatRow)) : "",
      data.mail.length ? h("h3", null, "Mail waiting to be sent") : "",
      data.mail.length ? table("subject-mail", "Mail waiting to be sent", ["Kind", "Subject", "Queued", "Tries"], data.mail.map(mailRow)) : "",
      data.visits.length ? h("h3", null, "Visits") : "",
      data.visits.length ? table("subject-visits", "Visits", ["Visitor", "Pages", "Last seen"], data.visits.map(visitRow)) : "",
      n ? h("div", { class: "form-actions" }, exportBtn, eraseBtn) : "",
    );
  }

  async function erase(addr: string, btn: HTMLButtonElement): Promise<void> {
    if (!confirm(`Erase everything held for ${addr} now? Chats end without a transcript and waiting mail is dropped unsent. This cannot be undone.`)) return;
    btn.disabled = true;
    try {
      const res = await ctx.api.privacy.eraseDataSubject({ email: addr });
      ctx.clearError();
      found = undefined;
      result.replaceChildren(receiptView(res.receipt));
    } catch (err) {
      btn.disabled = false;
      ctx.fail(err);
    }
  }
  return h("section", { class: "card" }, form, result);
}

/** receiptView shows a deletion receipt: its id, time and counts (never content). */
export function receiptView(r: DeletionReceipt | undefined): HTMLElement {
  return h(
    "div",
    { class: "receipt", "data-testid": "receipt", role: "status" },
    h("h3", null, "Erased"),
    h("p", null, "Receipt ", h("code", { "data-testid": "receipt-id" }, r?.receiptId ?? ""), ` · ${whenText(r?.destroyedAt)}`),
    r?.destroyed.length
      ? h("ul", { "data-testid": "receipt-counts" }, ...r.destroyed.map((c) => h("li", null, `${c.category}: ${c.count}`)))
      : h("p", null, "Nothing was left to erase."),
  );
}

function inventoryCard(ctx: PageContext, accountId: string): HTMLElement {
  const body = h("div", { "data-testid": "inventory" }, "Loading…");
  const link = h("a", { href: `/privacy?account=${encodeURIComponent(accountId)}`, target: "_blank", rel: "noopener", "data-testid": "inventory-public" }, "The public privacy page");
  const render = (inv: DataInventory) => {
    const facts: Array<[string, string]> = [
      ["IP addresses and host names", inv.ipHidden ? "hidden (never stored)" : "stored with chats and visits"],
      ["Transcripts", inv.transcriptsEnabled ? "e-mailed when a chat closes" : "off"],
      ["Mail relay", inv.mailRelay || "none"],
      ["Mail goes to", inv.mailRecipients.join(", ") || "nobody"],
      ["Global Privacy Control", inv.gpcHonoured ? "honoured: no monitoring record" : `ignored: ${inv.gpcIgnoredReason}`],
      ["Visits kept after the visitor left", `${inv.visitRetentionMinutes} minutes`],
      ["Audit trail kept", `${inv.auditRetentionDays} days`],
      ["Custom data keys (last 24 hours)", inv.customDataKeys.join(", ") || "none"],
    ];
    body.replaceChildren(
      table(
        "inventory-table",
        "Data categories",
        ["Category", "What", "Where", "For how long", "Who receives it"],
        inv.categories.map((c) => h("tr", null, h("td", null, c.name), h("td", null, c.what), h("td", null, c.where), h("td", null, c.retention), h("td", null, c.recipients.join(", ")))),
      ),
      h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
      h("p", { class: "hint" }, `Generated ${whenText(inv.generatedAt)} from the live configuration.`),
    );
  };
  void (async () => {
    try {
      const res = await ctx.api.privacy.getDataInventory({});
      if (res.inventory) render(res.inventory);
    } catch (err) {
      body.textContent = "";
      ctx.fail(err);
    }
  })();
  return h(
    "section",
    { class: "card", "aria-labelledby": "inv-title" },
    h("h2", { id: "inv-title" }, "Data inventory"),
    h("p", { class: "card-intro" }, "What this account holds, where, for how long and who receives it. ", link, "."),
    body,
  );
}

function auditCard(ctx: PageContext): HTMLElement {
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "btn ghost small", "data-testid": "audit-more", hidden: true }, "Older entries");
  const st = { next: "" };
  const row = (a: AuditEntry) => {
    const what = [
      a.targetId ? `target ${a.targetId}` : "",
      a.fields.length ? `fields: ${a.fields.join(", ")}` : "",
      a.count ? `count ${a.count}` : "",
      a.receiptId ? `receipt ${a.receiptId}` : "",
      a.network ? `network ${a.network}` : "",
      a.reason,
    ]
      .filter(Boolean)
      .join(" · ");
    return h(
      "tr",
      { "data-testid": "audit-row" },
      h("td", null, whenText(a.at)),
      h("td", null, a.actorId ? `${a.actorKind} ${a.actorId}` : a.actorKind),
      h("td", null, a.action),
      h("td", null, what),
    );
  };
  const load = async () => {
    more.disabled = true;
    try {
      const res = await ctx.api.privacy.listAuditEntries({ pageToken: st.next, pageSize: 50 });
      rows.append(...res.entries.map(row));
      st.next = res.nextPageToken;
      show(more, !!st.next);
    } catch (err) {
      ctx.fail(err);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => void load());
  void load();
  return h(
    "section",
    { class: "card", "aria-labelledby": "audit-title" },
    h("h2", { id: "audit-title" }, "Audit trail"),
    h(
      "p",
      { class: "card-intro" },
      "Who did what and when, newest first; never what was said. ",
      h("a", { href: "/privacy/audit.jsonl", download: "audit.jsonl", "data-testid": "audit-download" }, "Download JSON Lines"),
      ".",
    ),
    table("audit", "Audit trail", ["When", "Who", "What", "Details"], rows),
    more,
  );
}
