/**
 * An operator's invitation to chat, shown in place of the panel's body until
 * the visitor answers. The operator's words are shown here only, never passed
 * to the host page.
 */
import type { Invitation } from "./host";
import { h, show } from "../../../ui/dom";
import type { Shell } from "./shell";

export interface InvitationView {
  readonly root: HTMLElement;
  /**
   * offer shows an invitation and reports whether it is new: the stream
   * repeats a pending one after a reconnect, and an answered one stays answered.
   */
  offer(inv: Invitation): boolean;
  /** showing tells whether an invitation is on screen. */
  showing(): boolean;
  focus(): void;
}

export function createInvitationView(shell: Shell, onAnswer: (inv: Invitation, accepted: boolean) => void): InvitationView {
  const state: { current: Invitation | undefined; answered: Set<string> } = { current: undefined, answered: new Set() };
  const text = h("div", { class: "invite-bubble", "data-testid": "invitation-text" });
  const yes = h("button", { type: "button", class: "btn primary", "data-testid": "invitation-accept", onclick: () => answer(true) }, "Chat now");
  const no = h("button", { type: "button", class: "btn ghost", "data-testid": "invitation-decline", onclick: () => answer(false) }, "No, thanks");
  const root = h(
    "section",
    { class: "invite", "data-testid": "invitation", "aria-label": "Invitation to chat", "aria-live": "polite", hidden: true },
    text,
    h("div", { class: "invite-actions" }, no, yes),
  );

  function render(): void {
    const inv = state.current;
    shell.showBody(!inv);
    show(root, !!inv);
    // Filled once shown, so that screen readers announce it (a live region).
    text.replaceChildren(
      ...(inv
        ? [
            h("strong", { class: "invite-name" }, inv.operatorName || "An operator"),
            h("span", { class: "sr-only" }, ": "),
            h("p", { class: "invite-msg" }, inv.message),
          ]
        : []),
    );
  }

  function answer(accepted: boolean): void {
    const inv = state.current;
    if (!inv) return;
    state.answered.add(inv.invitationId);
    state.current = undefined;
    render();
    onAnswer(inv, accepted);
  }

  return {
    root,
    offer(inv) {
      if (state.answered.has(inv.invitationId) || state.current?.invitationId === inv.invitationId) return false;
      state.current = inv;
      render();
      return true;
    },
    showing: () => !!state.current,
    focus: () => yes.focus(),
  };
}
