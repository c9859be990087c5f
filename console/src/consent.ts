/**
 * The "Consent texts" card of the Settings page (admins): the current text
 * per form and language with its version and how often it was accepted, and
 * a form to set one. Saving makes a new version; visitors accept the version
 * they were shown.
 */
import { ConsentForm, timestampDate, type ConsentText } from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";
import { checkField, hinted, onSave } from "./fields";

/** The forms a consent text can be shown on: value, the select's value, name. */
const FORMS: ReadonlyArray<readonly [ConsentForm, string, string]> = [
  [ConsentForm.PRECHAT, "prechat", "Pre-chat form"],
  [ConsentForm.OFFLINE, "offline", "Offline message"],
];
const formOf = (f: ConsentForm) => FORMS.find(([v]) => v === f);

export function consentCard(ctx: PageContext): HTMLElement {
  const api = ctx.api.consent;
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

  const formSel = h("select", { id: "consent-form", "data-testid": "consent-form" }, ...FORMS.map(([, value, name]) => h("option", { value }, name)));
  const locale = h("input", { id: "consent-locale", "data-testid": "consent-locale", required: true, maxlength: 35, value: "en", autocomplete: "off", spellcheck: "false" });
  const text = h("textarea", { id: "consent-text", "data-testid": "consent-text", required: true, maxlength: 5000, rows: 5 });
  const required = h("input", { type: "checkbox", id: "consent-required", class: "check", "data-testid": "consent-required" });
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
      const res = await api.listConsentTexts({});
      rows.replaceChildren(...res.texts.map(row));
      show(table, res.texts.length > 0);
      show(empty, res.texts.length === 0);
    } catch (err) {
      ctx.fail(err);
    }
  };

  onSave(form, save, ok, ctx, async () => {
    const res = await api.setConsentText({
      form: formSel.value === "offline" ? ConsentForm.OFFLINE : ConsentForm.PRECHAT,
      locale: locale.value.trim(),
      text: text.value.trim(),
      required: required.checked,
    });
    ok.textContent = `Saved as version ${res.text?.version ?? "?"}.`;
    await load();
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
