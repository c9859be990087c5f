/**
 * The "Your data" view (lethe.privacy.v1, the visitor's side): what the
 * server holds about the visitor right now (the chat, the visit, mail
 * waiting to be sent), each with when it is destroyed; the JSON download;
 * correcting the name and e-mail while the chat is open; "Stop tracking me";
 * and "Forget me now" with its deletion receipt. It is a chunk of its own,
 * imported the first time the visitor opens it, so the chat panel's first
 * load stays small. Every text is set as text.
 */
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, create, createClient, createLetheTransport, errorMessage } from "@lethe/sdk";
import {
  type ChatData,
  type DeletionReceipt,
  MailKind,
  type PendingMail,
  PrivacyService,
  type VisitData,
  type VisitorData,
  VisitorDataSchema,
} from "../../../gen/ts/lethe/privacy/v1/privacy_pb";
import { h, show } from "../../../ui/dom";
import { destruction, duration, joined, millis, when } from "./data-format";

export interface DataDeps {
  /** The open chat's visitor token (the bearer of the calls), if there is a chat. */
  chatToken(): string | undefined;
  visitToken(): string;
  offlineTokens(): string[];
  setOfflineTokens(tokens: string[]): void;
  showError(msg: string): void;
  clearError(): void;
  /** onBack leaves the view. */
  onBack(): void;
  /** onStoppedTracking ends the visit calls for the session. */
  onStoppedTracking(): void;
  /** onForgotten clears the chat, visit and offline tokens: the visitor starts afresh. */
  onForgotten(): void;
}

export interface DataView {
  readonly root: HTMLElement;
  /** open reads the data afresh and shows it. */
  open(): void;
  focus(): void;
  /** escape closes an open confirmation and tells whether there was one. */
  escape(): boolean;
}

export type CreateDataView = (d: DataDeps) => DataView;

/** dl builds a definition list from [term, value] rows, leaving out empty values. */
function dl(rows: Array<[string, string | Node]>): HTMLElement {
  const kept = rows.filter(([, v]) => v !== "");
  return h("dl", { class: "kv" }, ...kept.flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function section(id: string, title: string, ...kids: Array<Node | null>): HTMLElement {
  return h("section", { class: "data-sec", "aria-labelledby": id, "data-testid": id }, h("h3", { id }, title), ...kids);
}

export function createDataView(d: DataDeps): DataView {
  const api = createClient(PrivacyService, createLetheTransport(location.origin, { token: d.chatToken }));
  const st: { data: VisitorData | undefined; busy: boolean } = { data: undefined, busy: false };
  const locale = navigator.language || undefined;

  const heading = h("h2", { class: "data-title", tabindex: -1, id: "lethe-data-title" }, "Your data");
  const back = h("button", { type: "button", class: "link", "data-testid": "data-back", onclick: () => d.onBack() }, "← Back");
  const intro = h("p", { class: "data-intro", "data-testid": "data-intro", role: "status" }, "Reading…");
  const content = h("div", { class: "data-content", "data-testid": "data-content" });
  const download = h("button", { type: "button", class: "btn ghost small", "data-testid": "data-download", onclick: downloadJson }, "Download (JSON)");
  const stopBtn = h(
    "button",
    { type: "button", class: "btn ghost small", "data-testid": "data-stop-tracking", onclick: () => void stopTracking() },
    "Stop tracking me",
  );
  const forgetBtn = h("button", { type: "button", class: "btn danger small", "data-testid": "data-forget", onclick: () => askForget(true) }, "Forget me now");
  const forgetYes = h("button", { type: "button", class: "btn danger", "data-testid": "data-forget-confirm", onclick: () => void forget() }, "Erase everything");
  const forgetNo = h("button", { type: "button", class: "btn ghost", onclick: () => askForget(false) }, "Cancel");
  const forgetConfirm = h(
    "div",
    { class: "confirm inline", role: "group", "aria-label": "Confirm erasing your data", hidden: true },
    h("span", null, "Erase everything now? Your chat ends, and the chat, its files, your visit and any message waiting to be e-mailed are destroyed at once. This cannot be undone."),
    h("div", { class: "confirm-actions" }, forgetNo, forgetYes),
  );
  const note = h("p", { class: "ok", role: "status", "data-testid": "data-note", hidden: true });
  const actions = h("div", { class: "data-actions" }, download, stopBtn, forgetBtn);
  const receiptBox = h("div", { class: "receipt", "data-testid": "receipt", hidden: true, tabindex: -1 });
  const main = h("div", { class: "data-main" }, intro, content, note, actions, forgetConfirm);
  const root = h(
    "section",
    { class: "data", "data-testid": "data-view", "aria-labelledby": "lethe-data-title" },
    h("div", { class: "data-head" }, back, heading),
    main,
    receiptBox,
  );

  const request = () => ({ visitToken: d.visitToken(), offlineTokens: d.offlineTokens() });

  async function load(): Promise<void> {
    intro.textContent = "Reading…";
    content.replaceChildren();
    show(actions, false);
    const req = request();
    // With no chat, no visit and no message waiting, there is nothing to ask for.
    if (!d.chatToken() && !req.visitToken && !req.offlineTokens.length) return nothing();
    try {
      const res = await api.getMyData(req);
      d.clearError();
      st.data = res.data;
      render();
    } catch (err) {
      // None of the visitor's secrets is known any more: nothing is held for them.
      if (ConnectError.from(err).code === Code.Unauthenticated) return nothing();
      intro.textContent = "Your data could not be read.";
      d.showError(errorMessage(err));
    }
  }

  function nothing(): void {
    d.clearError();
    st.data = create(VisitorDataSchema, {});
    render();
  }

  function render(): void {
    const data = st.data;
    if (!data) return;
    // An offline message that is no longer waiting was sent (or dropped): its token is of no more use.
    if (!data.mail.some((m) => m.kind === MailKind.OFFLINE_MESSAGE) && d.offlineTokens().length) d.setOfflineTokens([]);
    const who = data.accountName || "This website";
    const at = when(data.readAt, locale);
    const empty = !data.chat && !data.visit && data.mail.length === 0;
    intro.textContent = empty
      ? `${who} holds no data about you right now${at ? ` (read ${at})` : ""}.`
      : `This is everything ${who} holds about you right now${at ? ` (read ${at})` : ""}. Nothing else is kept.`;
    content.replaceChildren(
      ...[data.chat ? chatSection(data.chat) : null, data.visit ? visitSection(data.visit) : null, data.mail.length ? mailSection(data.mail) : null].filter(
        (x): x is HTMLElement => !!x,
      ),
    );
    show(actions, true);
    show(stopBtn, !!data.visit && !!d.visitToken());
    show(forgetBtn, !empty);
  }

  function chatSection(c: ChatData): HTMLElement {
    const open = c.state !== "closed" && !!d.chatToken();
    const consent = c.consent && c.consent.version > 0 ? `version ${c.consent.version}, accepted ${when(c.consent.acceptedAt, locale)}` : "none asked";
    const messages = c.messages.length
      ? h(
          "details",
          { class: "data-more" },
          h("summary", null, "The whole conversation"),
          h(
            "ol",
            { class: "data-list" },
            ...c.messages.map((m) => h("li", null, h("span", { class: "who" }, `${m.authorName || m.author}: `), m.text)),
          ),
        )
      : null;
    return section(
      "data-chat",
      "Your chat",
      dl([
        ["Name", c.visitorName],
        ["E-mail", c.visitorEmail || "not given"],
        ["Transcript to", c.transcriptEmail],
        ["IP address", c.ipHidden ? "not stored" : joined(c.ip, c.host)],
        ["Started", when(c.startedAt, locale)],
        ["Operator", c.operatorName],
        ["Messages", String(c.messageCount)],
        ["Files", String(c.fileCount)],
        ["Consent", consent],
        ["Destroyed", destruction(c.destruction, locale)],
      ]),
      messages,
      open ? correctForm(c) : null,
    );
  }

  function correctForm(c: ChatData): HTMLElement {
    const name = h("input", { id: "lethe-fix-name", "data-testid": "data-fix-name", required: true, maxlength: 100, autocomplete: "name", value: c.visitorName });
    const email = h("input", { id: "lethe-fix-email", type: "email", "data-testid": "data-fix-email", maxlength: 254, autocomplete: "email", value: c.visitorEmail });
    const save = h("button", { type: "submit", class: "btn primary small", "data-testid": "data-fix-save" }, "Save");
    const form = h(
      "form",
      { class: "inline-form data-fix", "aria-label": "Correct your name and e-mail" },
      h("label", { class: "field" }, h("span", { class: "label" }, "Name"), name),
      h("label", { class: "field" }, h("span", { class: "label" }, "E-mail"), email),
      save,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      save.disabled = true;
      try {
        const res = await api.correctMyData({ visitorName: name.value.trim(), visitorEmail: email.value.trim() });
        d.clearError();
        if (st.data && res.chat) st.data.chat = res.chat;
        render();
        flash("Your name and e-mail were corrected.");
      } catch (err) {
        d.showError(errorMessage(err));
      } finally {
        save.disabled = false;
      }
    });
    return h("details", { class: "data-more", "data-testid": "data-fix" }, h("summary", null, "Correct your name or e-mail"), form);
  }

  function visitSection(v: VisitData): HTMLElement {
    const pages = v.pages.length
      ? h(
          "ol",
          { class: "data-list", "data-testid": "data-pages" },
          ...v.pages.map((p) => h("li", null, p.title ? `${p.title} — ` : "", h("span", { class: "url" }, p.url), p.viewedAt ? ` (${when(p.viewedAt, locale)})` : "")),
        )
      : "";
    const custom = v.customData.length
      ? h("ul", { class: "data-list" }, ...v.customData.map((c) => h("li", null, `${c.key}: `, c.value, c.verified ? " (from the website)" : "")))
      : "";
    const first = millis(v.firstSeen);
    const last = millis(v.lastSeen);
    return section(
      "data-visit",
      "Your visit",
      dl([
        ["Pages", pages],
        ["Time on site", first ? duration(last - first) : ""],
        ["IP address", v.ipHidden ? "not stored" : joined(v.ip, v.host)],
        ["Location", joined(v.city, v.region, v.postalCode, v.country)],
        ["Network", v.isp],
        ["Browser", joined([v.browser, v.browserVersion].filter(Boolean).join(" "), v.os, v.device)],
        ["Custom data", custom],
        ["Destroyed", destruction(v.destruction, locale)],
      ]),
    );
  }

  function mailSection(mail: PendingMail[]): HTMLElement {
    return section(
      "data-mail",
      "Waiting to be e-mailed",
      ...mail.map((m) =>
        h(
          "div",
          { class: "data-mailitem" },
          dl([
            ["What", m.kind === MailKind.TRANSCRIPT ? "A chat transcript" : m.kind === MailKind.OFFLINE_MESSAGE ? "Your message" : "An e-mail"],
            ["Since", when(m.queuedAt, locale)],
            ["Subject", m.subject],
            ["Tries", m.attempts ? String(m.attempts) : ""],
            ["Destroyed", destruction(m.destruction, locale)],
          ]),
          m.text ? h("details", { class: "data-more" }, h("summary", null, "The text"), h("pre", { class: "data-text" }, m.text)) : null,
        ),
      ),
    );
  }

  function flash(text: string): void {
    note.textContent = text;
    show(note, true);
  }

  function downloadJson(): void {
    if (!st.data) return;
    const blob = new Blob([toJsonString(VisitorDataSchema, st.data, { prettySpaces: 2 })], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: "my-data.json", hidden: true });
    root.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  async function stopTracking(): Promise<void> {
    if (st.busy) return;
    st.busy = true;
    stopBtn.disabled = true;
    try {
      await api.stopTracking({ visitToken: d.visitToken() });
      d.clearError();
      d.onStoppedTracking();
      if (st.data) st.data.visit = undefined;
      render();
      flash("Tracking stopped: your visit was erased and no pages are recorded for the rest of this browser session.");
    } catch (err) {
      d.showError(errorMessage(err));
    } finally {
      st.busy = false;
      stopBtn.disabled = false;
    }
  }

  function askForget(on: boolean): void {
    const wasOpen = !forgetConfirm.hidden;
    show(forgetConfirm, on);
    if (on) forgetYes.focus();
    else if (wasOpen) forgetBtn.focus();
  }

  async function forget(): Promise<void> {
    if (st.busy) return;
    st.busy = true;
    forgetYes.disabled = true;
    try {
      const res = await api.forgetMe(request());
      d.clearError();
      d.onForgotten();
      st.data = undefined;
      showReceipt(res.receipt);
    } catch (err) {
      d.showError(errorMessage(err));
    } finally {
      st.busy = false;
      forgetYes.disabled = false;
    }
  }

  function showReceipt(r: DeletionReceipt | undefined): void {
    show(forgetConfirm, false);
    show(main, false);
    const done = h("button", { type: "button", class: "btn primary", "data-testid": "receipt-done", onclick: () => d.onBack() }, "Start afresh");
    receiptBox.replaceChildren(
      h("h3", null, "Your data was erased"),
      h("p", null, "Everything listed below was destroyed. Keep this receipt if you want proof; it holds no content."),
      dl([
        ["Receipt", h("code", { "data-testid": "receipt-id" }, r?.receiptId ?? "")],
        ["Erased", when(r?.destroyedAt, locale)],
      ]),
      r && r.destroyed.length
        ? h(
            "ul",
            { class: "data-list", "data-testid": "receipt-counts" },
            ...r.destroyed.map((c) => h("li", null, `${c.category}: ${c.count}`)),
          )
        : h("p", null, "There was nothing left to erase."),
      done,
    );
    show(receiptBox, true);
    receiptBox.focus();
  }

  return {
    root,
    open() {
      show(main, true);
      show(receiptBox, false);
      show(note, false);
      show(forgetConfirm, false);
      void load();
    },
    focus: () => heading.focus(),
    escape() {
      if (forgetConfirm.hidden) return false;
      askForget(false);
      return true;
    },
  };
}
