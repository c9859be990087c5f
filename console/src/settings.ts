/**
 * The Settings page (admins): the account's settings (transcripts, privacy,
 * mail encryption, idle timeout, allowed websites, files in chats), then the consent texts
 * (consent.ts) and the API keys (apikeys.ts).
 */
import { FileCategory, MailTlsPolicy, type Settings } from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import { apiKeysCard } from "./apikeys";
import { consentCard } from "./consent";
import type { PageContext } from "./context";
import { checkField, hinted, lines, onSave } from "./fields";
import { mibBytes, mibText } from "./format";

/** The kinds of files an account may allow, and what the server allows when none is set. */
const CATEGORIES: [FileCategory, string, string][] = [
  [FileCategory.IMAGE, "image", "Images"],
  [FileCategory.PDF, "pdf", "PDF"],
  [FileCategory.TEXT, "text", "Plain text and CSV"],
  [FileCategory.OFFICE, "office", "Office documents"],
  [FileCategory.ARCHIVE, "archive", "Archives (ZIP, 7z, gzip, tar)"],
];
const DEFAULT_CATEGORIES = [FileCategory.IMAGE, FileCategory.PDF, FileCategory.TEXT, FileCategory.OFFICE];

/** settingsPage builds the page; each card loads its own data. */
export function settingsPage(ctx: PageContext): HTMLElement {
  return h("div", { class: "settings-page" }, settingsCard(ctx), consentCard(ctx), apiKeysCard(ctx));
}

function settingsCard(ctx: PageContext): HTMLElement {
  const api = ctx.api.account;
  const warning = h(
    "div",
    { class: "warning", role: "status", "data-testid": "mail-warning", hidden: true },
    "No mail server is configured: transcripts and offline messages cannot be sent.",
  );
  const transcripts = h("input", { type: "checkbox", id: "set-transcripts", class: "check", "data-testid": "set-transcripts" });
  const recipients = h("textarea", { id: "set-recipients", "data-testid": "set-recipients", rows: 3, spellcheck: "false", autocomplete: "off" });
  const hideIp = h("input", { type: "checkbox", id: "set-hide-ip", class: "check", "data-testid": "set-hide-ip" });
  const noMonitoring = h("input", { type: "checkbox", id: "set-no-monitoring", class: "check", "data-testid": "set-no-monitoring" });
  const tls = h(
    "select",
    { id: "set-mail-tls", "data-testid": "set-mail-tls" },
    h("option", { value: "opportunistic" }, "Opportunistic: encrypted when the mail server offers it"),
    h("option", { value: "mandatory" }, "Mandatory: encrypted or not sent"),
  );
  const idle = h("input", { type: "number", id: "set-idle", class: "num", "data-testid": "set-idle", required: true, step: 1, inputmode: "numeric" });
  const idleUnit = h(
    "select",
    { "data-testid": "set-idle-unit", "aria-label": "Idle timeout unit" },
    h("option", { value: "min" }, "minutes"),
    h("option", { value: "s" }, "seconds"),
  );
  const origins = h("textarea", { id: "set-origins", "data-testid": "set-origins", rows: 3, spellcheck: "false", autocomplete: "off" });
  const filesOn = h("input", { type: "checkbox", id: "set-files", class: "check", "data-testid": "set-files" });
  const mib = (id: string) => h("input", { type: "number", id, class: "num", "data-testid": id, min: 0, step: "any", inputmode: "decimal", placeholder: "server's limit" });
  const maxFile = mib("set-max-file");
  const maxChat = mib("set-max-chat");
  const cats = CATEGORIES.map(([c, key, text]) => ({ c, box: h("input", { type: "checkbox", class: "check", "data-testid": `set-cat-${key}` }), text }));
  const catsHint = h("span", { class: "hint", id: "set-cats-hint" }, "What the file's bytes are, whatever its name says. HTML, SVG, scripts and programs are never accepted.");
  const catsField = h(
    "div",
    { class: "field", role: "group", "aria-labelledby": "set-cats-label", "aria-describedby": "set-cats-hint" },
    h("span", { class: "label", id: "set-cats-label" }, "Kinds of files allowed"),
    h("div", { class: "cats" }, ...cats.map(({ box, text }) => h("label", null, box, text))),
    catsHint,
  );
  const gpcIgnored = h("input", { type: "checkbox", id: "set-gpc-ignored", class: "check", "data-testid": "set-gpc-ignored" });
  const gpcReason = h("input", { id: "set-gpc-reason", "data-testid": "set-gpc-reason", maxlength: 500, autocomplete: "off" });
  const gpcReasonField = hinted("Why Global Privacy Control is ignored", "Required. Shown on the public privacy page and in the data inventory.", gpcReason);
  const auditDays = h("input", { type: "number", id: "set-audit-days", class: "num", "data-testid": "set-audit-days", min: 1, max: 3650, step: 1, inputmode: "numeric", placeholder: "default" });
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
    checkField(
      noMonitoring,
      "No monitoring before the click",
      "The widget sends nothing until a visitor opens the chat: you see only visitors who did, and cannot invite the others.",
    ),
    hinted("Mail encryption (TLS)", "Mandatory holds mail that cannot travel encrypted (and drops it after the maximum hold).", tls),
    hinted("Close a chat when the visitor has been gone for", "Between 10 seconds and 24 hours.", idle, idleUnit),
    hinted("Websites allowed to embed the chat", "One origin per line, such as https://www.example.com; “self” is this server. At most 20.", origins),
    checkField(filesOn, "Files in chats", "Visitors and operators may send files in an open chat. Files are encrypted and destroyed when the chat ends."),
    hinted("Largest file (MiB)", "Empty: the server's limit (10 MiB unless the server says otherwise). More than the server's limit is refused.", maxFile),
    hinted("Largest total of a chat's files (MiB)", "Empty: the server's limit (50 MiB unless the server says otherwise).", maxChat),
    catsField,
    checkField(
      gpcIgnored,
      "Ignore Global Privacy Control",
      "Browsers that send GPC are not monitored unless you tick this. Ignoring it needs a reason you can defend.",
    ),
    gpcReasonField,
    hinted("Keep the audit trail for (days)", "Empty: the server's default.", auditDays),
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
    noMonitoring.checked = st.monitoringDisabled;
    tls.value = st.mailTlsPolicy === MailTlsPolicy.MANDATORY ? "mandatory" : "opportunistic";
    const secs = st.idleTimeoutSeconds;
    idleUnit.value = secs > 0 && secs % 60 === 0 ? "min" : "s";
    idle.value = secs > 0 ? String(idleUnit.value === "min" ? secs / 60 : secs) : "";
    setUnitLimits();
    origins.value = st.allowedOrigins.join("\n");
    filesOn.checked = !st.filesDisabled;
    maxFile.value = mibText(st.maxFileBytes);
    maxChat.value = mibText(st.maxChatFileBytes);
    gpcIgnored.checked = st.gpcIgnored;
    gpcReason.value = st.gpcIgnoredReason;
    auditDays.value = st.auditRetentionDays > 0 ? String(st.auditRetentionDays) : "";
    checkGpc();
    const allowed = st.fileCategories.length ? st.fileCategories : DEFAULT_CATEGORIES;
    for (const { c, box } of cats) box.checked = allowed.includes(c);
    checkCats();
  };
  /** With files on, at least one kind must be allowed (none would read as "the default"). */
  const checkCats = () => {
    const none = filesOn.checked && !cats.some(({ box }) => box.checked);
    cats[0]!.box.setCustomValidity(none ? "Allow at least one kind of file, or turn files off." : "");
  };
  /** Ignoring GPC needs a reason; the reason field shows only then. */
  const checkGpc = () => {
    gpcReason.required = gpcIgnored.checked;
    show(gpcReasonField, gpcIgnored.checked);
  };
  gpcIgnored.addEventListener("change", checkGpc);
  for (const el of [filesOn, ...cats.map(({ box }) => box)]) el.addEventListener("change", checkCats);

  idleUnit.addEventListener("change", setUnitLimits);
  onSave(form, save, ok, ctx, async () => {
    const res = await api.updateSettings({
      settings: {
        transcriptsEnabled: transcripts.checked,
        recipients: lines(recipients.value),
        hideVisitorIp: hideIp.checked,
        monitoringDisabled: noMonitoring.checked,
        mailTlsPolicy: tls.value === "mandatory" ? MailTlsPolicy.MANDATORY : MailTlsPolicy.OPPORTUNISTIC,
        idleTimeoutSeconds: Math.round(Number(idle.value) * (idleUnit.value === "min" ? 60 : 1)),
        allowedOrigins: lines(origins.value),
        filesDisabled: !filesOn.checked,
        maxFileBytes: mibBytes(maxFile.value),
        maxChatFileBytes: mibBytes(maxChat.value),
        fileCategories: cats.filter(({ box }) => box.checked).map(({ c }) => c),
        gpcIgnored: gpcIgnored.checked,
        gpcIgnoredReason: gpcIgnored.checked ? gpcReason.value.trim() : "",
        auditRetentionDays: auditDays.value ? Math.round(Number(auditDays.value)) : 0,
      },
    });
    if (res.settings) fill(res.settings);
  });

  void (async () => {
    try {
      const res = await api.getSettings({});
      if (res.settings) fill(res.settings);
      show(warning, !res.mailConfigured);
      fields.disabled = false;
    } catch (err) {
      ctx.fail(err);
    }
  })();
  return h("section", { class: "card" }, form);
}
