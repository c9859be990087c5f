/**
 * The start view: everything the visitor sees outside a chat. That is the
 * pre-chat form (name, e-mail, first message, consent), or the offline form
 * (the same fields, to leave a message by e-mail) when no operator is online
 * or the visitor prefers it, or the note that their message was sent. Which
 * one shows is decided in start-state.ts; both forms are built here by one
 * contactFields().
 */
import { type PanelApi, type WidgetConfig, errorMessage, rpcCode } from "./api";
import { h, show } from "../../../ui/dom";
import { MAX_CHARS, maxChars } from "./config";
import { type ConsentBox, consentBox } from "./consent";
import type { Shell } from "./shell";
import { PRECHAT, type StartConfig, type StartView, nextStartView, startLayout } from "./start-state";
import type { ChatSession } from "./storage";

const CONFIG_POLL_MS = 15000;

export interface StartDeps {
  accountId: string;
  shell: Shell;
  api: PanelApi;
  /** reloadConfig fetches the widget config and hands it to configure. */
  reloadConfig(): Promise<void>;
  /** onStarted takes over once StartChat made a chat. */
  onStarted(s: ChatSession): void;
  /** onOfflineToken keeps the token of an offline message left (for "Your data"). */
  onOfflineToken(token: string): void;
}

export interface Start {
  readonly root: HTMLElement;
  /** show starts afresh (every chat is a new acceptance) and fetches the config and consent texts. */
  show(): void;
  /** hide stops polling the config while another view is shown. */
  hide(): void;
  configure(cfg: WidgetConfig): void;
  /** busy tells whether a chat is being started or a message sent. */
  busy(): boolean;
  focus(): void;
  /** email is what the visitor gave in the pre-chat form. */
  email(): string;
}

/** The fields of a form that tells us who the visitor is and what they want. */
interface Contact {
  fields: HTMLFieldSetElement;
  name: HTMLInputElement;
  email: HTMLInputElement;
  message: HTMLTextAreaElement;
  consent: ConsentBox;
  submit: HTMLButtonElement;
}

interface ContactOptions {
  /** Prefix of the fields' data-testid: "" for the pre-chat form, "offline-" for the offline form. */
  prefix: string;
  legend: string;
  /** E-mail is required on the offline form: it is how the answer comes. */
  emailRequired: boolean;
  emailHint: string;
  rows: number;
  /** What ticking the consent box allows ("start the chat"). */
  action: string;
  submitId: string;
  submitLabel: string;
  onConsent(): void;
}

function field(label: string, input: HTMLInputElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  return h("label", { class: "field" }, h("span", { class: "label" }, label, hint ? h("span", { class: "hint" }, hint) : null), input);
}

/** contactFields builds name, e-mail, message, consent and the submit button of one form. */
function contactFields(o: ContactOptions): Contact {
  const p = o.prefix;
  const name = h("input", { name: "name", "data-testid": `${p}name`, required: true, maxlength: 100, autocomplete: "name" });
  const email = h("input", {
    name: "email",
    type: "email",
    "data-testid": `${p}email`,
    required: o.emailRequired,
    maxlength: 254,
    autocomplete: "email",
  });
  const message = h("textarea", { name: "message", "data-testid": `${p}message`, required: true, maxlength: MAX_CHARS, rows: o.rows });
  const consent = consentBox(`${p}consent`, `lethe-${p}consent-hint`, o.action, o.onConsent);
  const submit = h("button", { type: "submit", class: "btn primary wide", "data-testid": o.submitId }, o.submitLabel);
  const fields = h(
    "fieldset",
    { class: "fields" },
    h("legend", { class: "sr-only" }, o.legend),
    field("Name", name),
    field("E-mail", email, o.emailHint),
    field("Message", message),
    consent.row,
    submit,
  );
  return { fields, name, email, message, consent, submit };
}

export function createStart(d: StartDeps): Start {
  const locale = navigator.language || "en";
  const st: { view: StartView; config: StartConfig; busy: boolean; active: boolean; poll?: ReturnType<typeof setInterval> } = {
    view: PRECHAT,
    config: { online: true, offlineEnabled: false },
    busy: false,
    active: false,
  };

  const pre = contactFields({
    prefix: "",
    legend: "Your details",
    emailRequired: false,
    emailHint: "optional",
    rows: 4,
    action: "start the chat",
    submitId: "start",
    submitLabel: "Start chat",
    onConsent: () => updateButtons(),
  });
  const off = contactFields({
    prefix: "offline-",
    legend: "Leave a message",
    emailRequired: true,
    emailHint: "we answer here",
    rows: 5,
    action: "send your message",
    submitId: "offline-send",
    submitLabel: "Send message",
    onConsent: () => updateButtons(),
  });

  const chooseOffline = h(
    "button",
    { type: "button", class: "link", "data-testid": "choose-offline", hidden: true, onclick: () => pick({ kind: "offline", chosen: true }) },
    "Leave a message instead",
  );
  const prechat = h("form", { class: "form", "data-testid": "prechat", onsubmit: (e) => void startChat(e) }, pre.fields, chooseOffline);
  const offlineForm = h(
    "form",
    { class: "form", "data-testid": "offline-form", "aria-label": "Leave a message", hidden: true, onsubmit: (e) => void leaveMessage(e) },
    off.fields,
  );
  const sent = h(
    "p",
    { class: "notice sent", role: "status", tabindex: -1, "data-testid": "offline-sent", hidden: true },
    "Thanks — your message was sent. It is deleted from our chat server as soon as it has been e-mailed; until then you can see or erase it under “Your data”.",
  );
  const chooseChat = h(
    "button",
    { type: "button", class: "link", "data-testid": "choose-chat", hidden: true, onclick: () => pick(PRECHAT) },
    "Start a live chat instead",
  );
  const notice = h("div", { class: "notice", "data-testid": "offline", hidden: true });
  const noticeHead = h("strong", null, "No operator is online right now.");
  const checkAgain = h("button", { type: "button", class: "btn ghost small", onclick: () => void d.reloadConfig() }, "Check again");
  const root = h(
    "div",
    { class: "start" },
    h("p", { class: "intro" }, "Hi! Send us a message and we will answer right here."),
    notice,
    prechat,
    offlineForm,
    sent,
    chooseChat,
  );

  const touched = () => !!(off.name.value || off.email.value || off.message.value);

  function render(): void {
    st.view = nextStartView(st.view, st.config, touched());
    const l = startLayout(st.view, st.config);
    show(notice, l.notice !== "none");
    // Rebuilt only when it changes, so focus on "Check again" survives a poll.
    // The space keeps the two sentences apart in the text (and for screen readers).
    if (l.notice !== "none" && notice.dataset.kind !== l.notice) {
      notice.dataset.kind = l.notice;
      notice.replaceChildren(
        ...(l.notice === "form"
          ? [noticeHead, " ", h("span", null, "Leave a message and we will answer by e-mail.")]
          : [noticeHead, " ", h("span", null, "Please check back a little later. This page checks again on its own."), checkAgain]),
      );
    }
    show(prechat, l.prechat);
    pre.fields.disabled = l.prechatDisabled;
    show(chooseOffline, l.chooseOffline);
    show(offlineForm, l.offlineForm);
    show(sent, l.sent);
    show(chooseChat, l.chooseChat);
    d.shell.setStatus(l.subtitle);
    updateButtons();
    if (l.poll) st.poll ??= setInterval(() => void d.reloadConfig(), CONFIG_POLL_MS);
    else stopPolling();
  }

  function stopPolling(): void {
    if (st.poll) clearInterval(st.poll);
    st.poll = undefined;
  }

  function updateButtons(): void {
    pre.submit.disabled = st.busy || pre.consent.missing();
    off.submit.disabled = st.busy || off.consent.missing();
  }

  function focus(): void {
    if (st.view.kind === "offline") (off.name.value ? (off.email.value ? off.message : off.email) : off.name).focus();
    else if (st.view.kind === "sent") sent.focus();
    else if (!pre.fields.disabled) (pre.name.value ? pre.message : pre.name).focus();
  }

  function pick(v: StartView): void {
    d.shell.clearError();
    st.view = v;
    if (v.kind === "offline") {
      // Carry over what the visitor already typed.
      off.name.value ||= pre.name.value;
      off.email.value ||= pre.email.value;
      off.message.value ||= pre.message.value;
    }
    render();
    focus();
  }

  async function loadConsent(reset: boolean): Promise<void> {
    try {
      const res = await d.api.getConsent(d.accountId, locale);
      pre.consent.set(res.prechat, reset);
      off.consent.set(res.offline, reset);
      updateButtons();
    } catch {
      // Without the texts nothing is shown; a server that requires one refuses
      // the start with FAILED_PRECONDITION, and then the texts are fetched again.
    }
  }

  /**
   * refused shows why the server turned a form down. FAILED_PRECONDITION may
   * mean the consent text changed meanwhile: show the current one, unticked.
   */
  async function refused(err: unknown): Promise<void> {
    d.shell.showError(errorMessage(err));
    if (rpcCode(err) !== "failed_precondition") return;
    await Promise.all([loadConsent(true), d.reloadConfig()]);
  }

  /** submitting runs one form's call with both forms' buttons held. */
  async function submitting(e: Event, form: HTMLFormElement, call: () => Promise<void>): Promise<void> {
    e.preventDefault();
    if (!form.reportValidity()) return;
    d.shell.clearError();
    st.busy = true;
    updateButtons();
    try {
      await call();
    } catch (err) {
      await refused(err);
    } finally {
      st.busy = false;
      updateButtons();
    }
  }

  const startChat = (e: Event) =>
    submitting(e, prechat, async () => {
      const consent = pre.consent.accepted();
      const res = await d.api.startChat({
        accountId: d.accountId,
        visitorName: pre.name.value.trim(),
        visitorEmail: pre.email.value.trim(),
        firstMessage: pre.message.value.trim(),
        locale,
        consentVersion: consent,
      });
      d.onStarted({ token: res.visitorToken, chatId: res.chatId, lastSeq: "0", consent });
    });

  const leaveMessage = (e: Event) =>
    submitting(e, offlineForm, async () => {
      const res = await d.api.leaveOfflineMessage({
        accountId: d.accountId,
        visitorName: off.name.value.trim(),
        visitorEmail: off.email.value.trim(),
        message: off.message.value.trim(),
        locale,
        consentVersion: off.consent.accepted(),
      });
      if (res.offlineToken) d.onOfflineToken(res.offlineToken);
      st.view = { kind: "sent" };
      off.message.value = "";
      off.consent.uncheck();
      render();
      sent.focus();
    });

  return {
    root,
    show() {
      st.active = true;
      st.view = PRECHAT;
      pre.message.value = "";
      pre.consent.uncheck();
      off.consent.uncheck();
      render();
      void Promise.all([d.reloadConfig(), loadConsent(false)]);
    },
    hide() {
      st.active = false;
      stopPolling();
    },
    configure(cfg) {
      st.config = { online: cfg.operatorsOnline, offlineEnabled: cfg.offlineMessagesEnabled };
      pre.message.maxLength = off.message.maxLength = maxChars(cfg);
      if (st.active) render();
    },
    busy: () => st.busy,
    focus,
    email: () => pre.email.value.trim(),
  };
}
