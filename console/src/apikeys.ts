/**
 * The "API keys" card of the Settings page (admins): the account's keys for
 * the integrator API (minting tickets with verified visitor data), a form to
 * create one, shown once, and revoke buttons. The server keeps only a hash
 * of each key, so a key that was not copied when created is gone for good.
 */
import { timestampDate, type ApiKey } from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";

const when = (t: ApiKey["createdAt"]) => (t ? timestampDate(t).toLocaleString() : "");

export function apiKeysCard(opts: PageContext): HTMLElement {
  const api = opts.api.monitor;
  const rows = h("tbody");
  const table = h(
    "table",
    { class: "ops apikeys", hidden: true },
    h("caption", { class: "sr-only" }, "API keys"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ...["Name", "Key", "Created", "Last used"].map((c) => h("th", { scope: "col" }, c)),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
      ),
    ),
    rows,
  );
  const empty = h("p", { class: "none" }, "No API keys yet.");
  const refresh = () => {
    show(table, rows.children.length > 0);
    show(empty, rows.children.length === 0);
  };

  const row = (k: ApiKey): HTMLElement => {
    const revoke = h("button", { type: "button", class: "btn danger-ghost small", "data-testid": "apikey-revoke" }, "Revoke");
    const tr = h(
      "tr",
      { "data-testid": "apikey-row", "data-apikey-id": k.id },
      h("td", null, k.name),
      h("td", null, h("code", null, `${k.prefix}…`)),
      h("td", null, when(k.createdAt)),
      h("td", null, k.lastUsedAt ? when(k.lastUsedAt) : "Never"),
      h("td", { class: "right" }, revoke),
    );
    revoke.setAttribute("aria-label", `Revoke ${k.name}`);
    revoke.addEventListener("click", async () => {
      revoke.disabled = true;
      try {
        await api.revokeApiKey({ id: k.id });
        opts.clearError();
        tr.remove();
        refresh();
      } catch (err) {
        revoke.disabled = false;
        opts.fail(err);
      }
    });
    return tr;
  };

  const name = h("input", { id: "apikey-name", "data-testid": "apikey-name", required: true, maxlength: 100, autocomplete: "off", placeholder: "Shop back end" });
  const create = h("button", { type: "submit", class: "btn primary", "data-testid": "apikey-create" }, "Create key");
  const secret = h("input", {
    id: "apikey-secret",
    class: "secret",
    "data-testid": "apikey-secret",
    readonly: true,
    spellcheck: "false",
    autocomplete: "off",
    "aria-describedby": "apikey-secret-note",
  });
  const copy = h("button", { type: "button", class: "btn ghost" }, "Copy");
  const copied = h("span", { class: "ok", role: "status" });
  const secretBox = h(
    "div",
    { class: "secret-box", hidden: true },
    h("label", { class: "label", for: "apikey-secret" }, "Your new API key"),
    h("span", { class: "inline" }, secret, copy),
    h(
      "p",
      { class: "warning", id: "apikey-secret-note" },
      "Copy this key now and keep it on your server: it won't be shown again (Lethe stores only a hash of it). Never put it in a web page.",
    ),
    copied,
  );
  const form = h(
    "form",
    { class: "set-form", "aria-labelledby": "apikey-form-title" },
    h("h3", { id: "apikey-form-title" }, "Create an API key"),
    h("div", { class: "field" }, h("label", { class: "label", for: "apikey-name" }, "Name"), h("span", { class: "inline" }, name, create)),
    secretBox,
  );

  secret.addEventListener("focus", () => secret.select());
  copy.addEventListener("click", async () => {
    secret.select();
    try {
      await navigator.clipboard.writeText(secret.value);
      copied.textContent = "Copied.";
    } catch {
      copied.textContent = "Press Ctrl+C (⌘C) to copy the selected key.";
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    create.disabled = true;
    try {
      const res = await api.createApiKey({ name: name.value.trim() });
      opts.clearError();
      if (res.apiKey) rows.append(row(res.apiKey));
      refresh();
      secret.value = res.key;
      copied.textContent = "";
      show(secretBox, true);
      name.value = "";
      secret.focus();
    } catch (err) {
      opts.fail(err);
    } finally {
      create.disabled = false;
    }
  });

  void (async () => {
    try {
      const res = await api.listApiKeys({});
      rows.replaceChildren(...res.apiKeys.map(row));
      refresh();
    } catch (err) {
      opts.fail(err);
    }
  })();

  return h(
    "section",
    { class: "card", "aria-labelledby": "apikeys-title", "data-testid": "apikeys" },
    h("h2", { id: "apikeys-title" }, "API keys"),
    h(
      "p",
      { class: "card-intro" },
      "Your website's back end uses an API key to mint single-use tickets that attach verified data (such as a customer number) to a visitor. Revoking a key stops it at once, and the tickets it minted.",
    ),
    empty,
    table,
    form,
  );
}
