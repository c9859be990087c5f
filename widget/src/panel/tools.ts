/**
 * The links under an open chat: "Email me a transcript" (where the account
 * allows it) with its small form, and "Withdraw consent and delete this chat"
 * (where the visitor accepted a consent text) with its confirmation.
 * Withdrawing ends the chat and destroys it at once, with no transcript.
 */
import { type PanelApi, errorMessage } from "./api";
import { h, show } from "../../../ui/dom";
import type { Shell } from "./shell";

export interface ToolsDeps {
  shell: Shell;
  api: PanelApi;
  /** chatId is the open chat's id, if there is one. */
  chatId(): string | undefined;
  /** prefillEmail is the address to offer for the transcript. */
  prefillEmail(): string;
  /** onWithdrawn runs once the server destroyed the chat. */
  onWithdrawn(): void;
}

export interface Tools {
  readonly root: HTMLElement;
  /** render shows the links the chat offers; a closed chat offers none. */
  render(o: { open: boolean; transcripts: boolean; consented: boolean }): void;
  /** reset closes the forms and notes of the previous chat. */
  reset(): void;
  /** escape closes the withdrawal confirmation and tells whether it was open. */
  escape(): boolean;
  withdrawing(): boolean;
}

export function createTools(d: ToolsDeps): Tools {
  const st = { withdrawing: false };
  const transcriptBtn = h(
    "button",
    {
      type: "button",
      class: "link",
      "data-testid": "transcript",
      "aria-expanded": "false",
      "aria-controls": "lethe-transcript",
      onclick: () => askTranscript(trForm.hidden),
    },
    "Email me a transcript",
  );
  const withdrawBtn = h(
    "button",
    { type: "button", class: "link danger", "data-testid": "withdraw", onclick: () => askWithdraw(true) },
    "Withdraw consent and delete this chat",
  );
  const trEmail = h("input", { id: "lethe-tr-email", type: "email", required: true, maxlength: 254, autocomplete: "email", "data-testid": "transcript-email" });
  const trSend = h("button", { type: "submit", class: "btn primary small", "data-testid": "transcript-send" }, "Send");
  const trForm = h(
    "form",
    { id: "lethe-transcript", class: "inline-form", hidden: true, onsubmit: (e) => void requestTranscript(e) },
    h("label", { for: "lethe-tr-email", class: "label" }, "Send a copy of this chat, when it ends, to"),
    h("div", { class: "inline-row" }, trEmail, trSend),
  );
  const trOk = h("p", { class: "ok", role: "status", "data-testid": "transcript-ok", hidden: true });
  const wdYes = h("button", { type: "button", class: "btn danger", "data-testid": "withdraw-confirm", onclick: () => void withdraw() }, "Withdraw and delete");
  const wdNo = h("button", { type: "button", class: "btn ghost", onclick: () => askWithdraw(false) }, "Cancel");
  const wdConfirm = h(
    "div",
    { class: "confirm inline", role: "group", "aria-label": "Confirm withdrawing consent", hidden: true },
    h("span", null, "Withdraw your consent? The chat ends now and everything in it is deleted at once, with no transcript."),
    h("div", { class: "confirm-actions" }, wdNo, wdYes),
  );
  const links = h("div", { class: "tools" }, transcriptBtn, withdrawBtn);
  const root = h("div", { class: "extras" }, links, trForm, trOk, wdConfirm);

  function askTranscript(on: boolean): void {
    show(trForm, on);
    transcriptBtn.setAttribute("aria-expanded", String(on));
    if (on) {
      trEmail.value ||= d.prefillEmail();
      trEmail.focus();
    }
  }

  async function requestTranscript(e: Event): Promise<void> {
    e.preventDefault();
    const chatId = d.chatId();
    if (!chatId || !trForm.reportValidity()) return;
    const email = trEmail.value.trim();
    trSend.disabled = true;
    try {
      await d.api.requestTranscript(chatId, email);
      d.shell.clearError();
      trOk.textContent = `A copy of this chat will be e-mailed to ${email} when it ends.`;
      show(trOk, true);
      askTranscript(false);
      transcriptBtn.focus();
    } catch (err) {
      d.shell.showError(errorMessage(err));
    } finally {
      trSend.disabled = false;
    }
  }

  function askWithdraw(on: boolean): void {
    const wasOpen = !wdConfirm.hidden;
    show(wdConfirm, on);
    if (on) wdYes.focus();
    else if (wasOpen && !withdrawBtn.hidden) withdrawBtn.focus();
  }

  async function withdraw(): Promise<void> {
    const chatId = d.chatId();
    if (!chatId || st.withdrawing) return;
    st.withdrawing = true;
    wdYes.disabled = true;
    try {
      await d.api.withdrawConsent(chatId);
      d.shell.clearError();
      show(trOk, false);
      d.onWithdrawn();
    } catch (err) {
      d.shell.showError(errorMessage(err));
    } finally {
      st.withdrawing = false;
      wdYes.disabled = false;
    }
  }

  return {
    root,
    render({ open, transcripts, consented }) {
      show(transcriptBtn, open && transcripts);
      show(withdrawBtn, open && consented);
      show(links, !transcriptBtn.hidden || !withdrawBtn.hidden);
      if (!open) {
        show(trForm, false);
        show(wdConfirm, false);
      }
    },
    reset() {
      show(trForm, false);
      show(trOk, false);
      show(wdConfirm, false);
      transcriptBtn.setAttribute("aria-expanded", "false");
    },
    escape() {
      if (wdConfirm.hidden) return false;
      askWithdraw(false);
      return true;
    },
    withdrawing: () => st.withdrawing,
  };
}
