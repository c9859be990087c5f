/** The sign-in screen: e-mail and password, and why the operator is here (a session that ended). */
import { errorMessage, type Account, type Operator } from "@lethe/sdk";
import { h } from "../../ui/dom";
import type { Api } from "./context";
import { errorBox, label } from "./fields";

export interface LoginOptions {
  api: Api;
  /** Shown above the form, such as "Your session has ended." */
  message: string;
  onSignedIn(me: Operator, account: Account): void;
}

/** renderLogin replaces root's content with the sign-in form and focuses it. */
export function renderLogin(root: HTMLElement, o: LoginOptions): void {
  const err = errorBox();
  err.textContent = o.message;
  const email = h("input", { type: "email", name: "email", "data-testid": "login-email", autocomplete: "username", required: true, maxlength: 254 });
  const password = h("input", { type: "password", name: "password", "data-testid": "login-password", autocomplete: "current-password", required: true, maxlength: 200 });
  const submit = h("button", { type: "submit", class: "btn primary wide", "data-testid": "login-submit" }, "Sign in");
  const form = h(
    "form",
    { class: "login-card", "data-testid": "login", "aria-labelledby": "login-title" },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Lethe"),
    h("h1", { id: "login-title" }, "Sign in to the console"),
    err,
    label("E-mail", email),
    label("Password", password),
    submit,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    err.textContent = "";
    try {
      const res = await o.api.account.login({ email: email.value.trim(), password: password.value });
      password.value = "";
      if (res.operator && res.account) o.onSignedIn(res.operator, res.account);
    } catch (ex) {
      err.textContent = errorMessage(ex);
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  root.replaceChildren(h("main", { class: "login-wrap" }, form));
  email.focus();
}
