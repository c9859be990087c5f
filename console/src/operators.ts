/**
 * The Operators page (admins): the account's operators, enabling and
 * disabling them (never oneself), and a form to add one.
 */
import { Role, type Operator } from "@lethe/sdk";
import { h } from "../../ui/dom";
import type { PageContext } from "./context";
import { label } from "./fields";

/** operatorsPage builds the page and loads the operators into it. */
export function operatorsPage(ctx: PageContext, me: string): HTMLElement {
  const api = ctx.api.account;
  const rows = h("tbody");
  const table = h(
    "table",
    { class: "ops" },
    h("caption", { class: "sr-only" }, "Operators"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ...["Name", "E-mail", "Role", "Status"].map((c) => h("th", { scope: "col" }, c)),
        h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")),
      ),
    ),
    rows,
  );

  const opRow = (op: Operator): HTMLElement => {
    const self = op.id === me;
    const toggle = h(
      "button",
      { type: "button", class: op.disabled ? "btn ghost small" : "btn danger-ghost small", "data-testid": "op-toggle", disabled: self },
      op.disabled ? "Enable" : "Disable",
    );
    const row = h(
      "tr",
      { "data-testid": "op-row", "data-operator-id": op.id, class: op.disabled ? "off" : undefined },
      h("td", null, op.name, self ? h("span", { class: "you" }, " (you)") : null),
      h("td", null, op.email),
      h("td", null, op.role === Role.ADMIN ? "Admin" : "Operator"),
      h("td", null, h("span", { class: op.disabled ? "pill off" : "pill" }, op.disabled ? "Disabled" : "Active")),
      h("td", { class: "right" }, toggle),
    );
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      try {
        const res = await api.setOperatorDisabled({ operatorId: op.id, disabled: !op.disabled });
        ctx.clearError();
        if (res.operator) row.replaceWith(opRow(res.operator));
      } catch (err) {
        toggle.disabled = false;
        ctx.fail(err);
      }
    });
    return row;
  };

  const email = h("input", { type: "email", "data-testid": "op-create-email", required: true, maxlength: 254, autocomplete: "off" });
  const name = h("input", { "data-testid": "op-create-name", required: true, maxlength: 100, autocomplete: "off" });
  const password = h("input", { type: "password", "data-testid": "op-create-password", required: true, minlength: 10, maxlength: 200, autocomplete: "new-password" });
  const role = h(
    "select",
    { "data-testid": "op-create-role" },
    h("option", { value: "operator" }, "Operator"),
    h("option", { value: "admin" }, "Admin"),
  );
  const submit = h("button", { type: "submit", class: "btn primary", "data-testid": "op-create-submit" }, "Add operator");
  const form = h(
    "form",
    { class: "op-form", "aria-labelledby": "op-form-title" },
    h("h2", { id: "op-form-title" }, "Add an operator"),
    label("E-mail", email),
    label("Name", name),
    label("Password (at least 10 characters)", password),
    label("Role", role),
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    try {
      const res = await api.createOperator({
        email: email.value.trim(),
        name: name.value.trim(),
        password: password.value,
        role: role.value === "admin" ? Role.ADMIN : Role.OPERATOR,
      });
      ctx.clearError();
      if (res.operator) rows.append(opRow(res.operator));
      form.reset();
      email.focus();
    } catch (err) {
      ctx.fail(err);
    } finally {
      submit.disabled = false;
    }
  });

  void (async () => {
    try {
      const res = await api.listOperators({});
      rows.replaceChildren(...res.operators.map(opRow));
    } catch (err) {
      ctx.fail(err);
    }
  })();
  return h(
    "div",
    { class: "admin-page" },
    h("section", { class: "card", "aria-labelledby": "ops-title" }, h("h2", { id: "ops-title" }, "Operators"), table),
    h("section", { class: "card" }, form),
  );
}
