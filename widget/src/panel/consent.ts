/**
 * The consent checkbox of the pre-chat and offline forms. It shows the
 * account's text for that form in the visitor's locale; the server refuses a
 * start or a message without the current version where the account requires
 * it, so this box is a courtesy, not the guard.
 */
import type { ConsentText } from "./api";
import { h, show } from "../../../ui/dom";

export interface ConsentBox {
  /** The row to put in the form (hidden while the account has no text). */
  readonly row: HTMLElement;
  /**
   * set shows a text. The box is unticked whenever the text or version
   * changes (an acceptance is for the words the visitor read) or on reset.
   */
  set(t: ConsentText | undefined, reset: boolean): void;
  /** uncheck clears the box: every chat and every message is a new acceptance. */
  uncheck(): void;
  /** accepted is the version to send: 0 unless a text is shown and ticked. */
  accepted(): number;
  /** missing tells whether the text is required and not yet ticked. */
  missing(): boolean;
}

/**
 * consentBox builds one box. testId goes on its label, hintId on the "please
 * tick" hint; onChange runs when the visitor ticks or unticks it.
 */
export function consentBox(testId: string, hintId: string, action: string, onChange: () => void): ConsentBox {
  const box = h("input", {
    type: "checkbox",
    class: "check",
    "aria-describedby": hintId,
    onchange: () => {
      render();
      onChange();
    },
  });
  const text = h("span", { class: "consent-text" });
  const hint = h("p", { class: "consent-hint", id: hintId }, `Please tick the box to ${action}.`);
  const row = h("div", { class: "consent", hidden: true }, h("label", { class: "consent-label", "data-testid": testId }, box, text), hint);
  const state = { version: 0, required: false };
  const missing = () => state.required && !box.checked;
  function render(): void {
    show(hint, missing());
  }
  return {
    row,
    set(t, reset) {
      const version = t?.version ?? 0;
      const words = t?.text ?? "";
      if (reset || version !== state.version || words !== text.textContent) box.checked = false;
      state.version = version;
      state.required = version > 0 && !!t?.required;
      box.required = state.required;
      text.textContent = words;
      show(row, version > 0);
      render();
    },
    uncheck() {
      box.checked = false;
      render();
    },
    accepted: () => (state.version > 0 && box.checked ? state.version : 0),
    missing,
  };
}
