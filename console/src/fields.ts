/**
 * Form pieces the console's forms share: a labelled field, a field with a
 * hint the control points at (aria-describedby), a checkbox with a hint, and
 * the error box. Every text is set as text.
 */
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";

/** errorBox is where a failed call's message goes; screen readers announce it. */
export function errorBox(): HTMLElement {
  return h("div", { class: "error", role: "alert", "data-testid": "error" });
}

/** label wraps a control with its visible name. */
export function label(text: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, text), input);
}

/** hintFor makes the hint of a control (which must have an id) and points the control at it. */
function hintFor(input: HTMLElement, hint: string): HTMLElement {
  const hintId = `${input.id}-hint`;
  input.setAttribute("aria-describedby", hintId);
  return h("span", { class: "hint", id: hintId }, hint);
}

/** hinted is a field whose label stays short and whose hint explains it. `input` needs an id. */
export function hinted(text: string, hint: string, input: HTMLElement, ...more: HTMLElement[]): HTMLElement {
  const why = hintFor(input, hint);
  return h(
    "div",
    { class: "field" },
    h("label", { class: "label", for: input.id }, text),
    more.length ? h("span", { class: "inline" }, input, ...more) : input,
    why,
  );
}

/** checkField is a checkbox with its text and a hint. `input` needs an id. */
export function checkField(input: HTMLInputElement, text: string, hint: string): HTMLElement {
  const why = hintFor(input, hint);
  return h("div", { class: "check-field" }, h("label", { class: "check-title" }, input, text), why);
}

/** lines splits a one-entry-per-line textarea, dropping blank lines. */
export function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/**
 * onSave runs a settings form's save cycle: validate, disable the button,
 * hide the "saved" note, run save, then show the note (save may set its
 * text first) or the error, and enable the button again.
 */
export function onSave(
  form: HTMLFormElement,
  button: HTMLButtonElement,
  ok: HTMLElement,
  ctx: Pick<PageContext, "fail" | "clearError">,
  save: () => Promise<void>,
): void {
  form.addEventListener("input", () => show(ok, false));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    button.disabled = true;
    show(ok, false);
    try {
      await save();
      ctx.clearError();
      show(ok, true);
    } catch (err) {
      ctx.fail(err);
    } finally {
      button.disabled = false;
    }
  });
}
