/**
 * The Visitors page: who is on the website right now, from one
 * MonitorService.WatchVisitors stream (a snapshot, then coalesced batches of
 * changed visitors and ids of those who left), with a detail pane and the
 * "Invite to chat" form. Rows are updated in place, so a console following
 * thousands of visitors does not rebuild the list on every batch, and every
 * string from a visitor's browser or the website is set as text.
 */
import {
  Code,
  InvitationState,
  MonitorService,
  createClient,
  errorMessage,
  timestampDate,
  watchVisitorsResuming,
  type InvitationStatus,
  type Transport,
  type Visitor,
  type WatchVisitorsResponse,
} from "@lethe/sdk";
import { h, show } from "../../ui/dom";

const DEFAULT_INVITATION = "Hi! Can I help you with anything?";
const MAX_INVITATION_CHARS = 500;
/** Above this many joins in one batch the list is re-sorted at once. */
const RESORT_FROM = 20;

/** What the Visitors page needs from the console around it. */
export interface VisitorsOptions {
  transport: Transport;
  /** Ends the stream (sign-out). */
  signal: AbortSignal;
  /** Shows a failed call's error (or signs out when the session is gone). */
  fail(err: unknown): void;
  clearError(): void;
}

/** The Visitors page of a signed-in console. */
export interface VisitorsPage {
  /** The page's element, shown by the console's tab. */
  readonly root: HTMLElement;
  /** The count for the tab label ("3"), updated live. */
  readonly tabCount: HTMLElement;
  /** Tells the page whether it is on screen (times tick only then). */
  setShown(on: boolean): void;
}

interface Row {
  v: Visitor;
  firstSeen: number;
  li: HTMLLIElement;
  btn: HTMLButtonElement;
  time: HTMLElement;
}

interface Detail {
  id: string;
  root: HTMLElement;
  status: HTMLElement;
  info: HTMLElement;
  state: HTMLElement;
  form: HTMLFormElement;
  message: HTMLTextAreaElement;
  invite: HTMLButtonElement;
  sending: boolean;
  left: boolean;
}

type Timestamp = NonNullable<Visitor["firstSeen"]>;

const ms = (t: Timestamp | undefined) => (t ? timestampDate(t).getTime() : 0);

/** duration formats a time on site: "12s", "3m 12s", "1h 4m". */
export function duration(msecs: number): string {
  const s = Math.max(0, Math.floor(msecs / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

const clock = (t: Timestamp | undefined) =>
  t ? timestampDate(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";

const current = (el: HTMLElement, on: boolean) => (on ? el.setAttribute("aria-current", "true") : el.removeAttribute("aria-current"));

const join = (parts: Array<string | undefined>, sep: string) => parts.filter(Boolean).join(sep);

function browserOs(v: Visitor): string {
  return join([join([v.browser, v.browserVersion], " "), v.os], " on ") || "Unknown browser";
}

function place(v: Visitor): string {
  const l = v.location;
  return l ? join([l.city, l.country || l.countryCode], ", ") : "";
}

function hasData(v: Visitor): boolean {
  return Object.keys(v.pageData).length > 0 || Object.keys(v.verifiedData).length > 0;
}

/** invitationText says where the visitor's latest invitation is, and its data-state. */
function invitationText(inv: InvitationStatus | undefined): [string, string] {
  if (!inv || inv.state === InvitationState.UNSPECIFIED) return ["none", "Not invited yet."];
  const by = join([inv.operatorName && `by ${inv.operatorName}`, inv.sentAt && `at ${clock(inv.sentAt)}`], " ");
  switch (inv.state) {
    case InvitationState.PENDING:
      return ["sent", `Invitation sent ${by}, waiting for an answer.`];
    case InvitationState.ACCEPTED:
      return ["accepted", `Invitation accepted (sent ${by}).`];
    case InvitationState.DECLINED:
      return ["declined", `Invitation declined (sent ${by}).`];
    case InvitationState.IGNORED:
      return ["ignored", `Invitation ignored: no answer within 2 minutes (sent ${by}).`];
  }
  return ["none", "Not invited yet."];
}

export function createVisitorsPage(opts: VisitorsOptions): VisitorsPage {
  const api = createClient(MonitorService, opts.transport);
  const rows = new Map<string, Row>();
  const list = h("ul", { class: "list vlist", "data-testid": "visitors", "aria-label": "Visitors on the site", tabindex: -1 });
  const none = h("p", { class: "none" }, "Nobody is on the website right now.");
  const count = h("span", { class: "count", "data-testid": "visitors-count" }, "0 on site");
  const tabCount = h("span", { class: "tab-count" }, "0");
  const conn = h("span", { class: "conn", role: "status" }, "Connecting…");
  const pane = h("section", { class: "main vdetail-pane", "aria-label": "Selected visitor" }, emptyPane());
  const root = h(
    "div",
    { class: "visitors-page" },
    h("nav", { class: "side vside", "aria-label": "Visitors" }, h("h2", { class: "side-title" }, "On the website", count), conn, none, list),
    pane,
  );

  // Only rows on screen tick, so thousands of visitors cost no more per
  // second than the few dozen an operator can see.
  const visible = new Set<Row>();
  const byLi = new WeakMap<Element, Row>();
  const seen =
    typeof IntersectionObserver === "function"
      ? new IntersectionObserver((entries) => {
          const now = Date.now();
          for (const e of entries) {
            const r = byLi.get(e.target);
            if (!r) continue;
            if (!e.isIntersecting) visible.delete(r);
            else if (rows.get(r.v.visitorId) === r) {
              visible.add(r);
              r.time.textContent = duration(now - r.firstSeen);
            }
          }
        })
      : undefined;

  let detail: Detail | undefined;
  let shown = false;
  let tick: ReturnType<typeof setInterval> | undefined;
  let inSnapshot = false;
  let snapshotIds = new Set<string>();

  const setCount = () => {
    count.textContent = `${rows.size} on site`;
    tabCount.textContent = String(rows.size);
    show(none, rows.size === 0);
  };

  // ---- list ------------------------------------------------------------------

  const renderRow = (r: Row) => {
    const v = r.v;
    const pg = v.currentPage?.page;
    r.btn.replaceChildren(
      h(
        "span",
        { class: "item-text" },
        h("span", { class: "item-name" }, pg?.title || pg?.url || "Unknown page"),
        h("span", { class: "item-sub vurl" }, pg?.url ?? ""),
        h("span", { class: "item-sub" }, join([browserOs(v), place(v)], " · ")),
      ),
      h(
        "span",
        { class: "vrow-side" },
        r.time,
        hasData(v)
          ? h(
              "span",
              { class: "tag", "data-testid": "visitor-data-badge", title: "This visitor has custom data" },
              Object.keys(v.verifiedData).length ? "Verified data" : "Page data",
            )
          : null,
      ),
    );
    r.btn.title = pg?.url ?? "";
    current(r.btn, detail?.id === v.visitorId);
    r.time.textContent = duration(Date.now() - r.firstSeen);
  };

  /** placeRow puts a row in order: the newest visitor first. */
  const placeRow = (r: Row) => {
    let before: Element | null = null;
    for (const li of list.children) {
      const other = byLi.get(li);
      if (other && other !== r && other.firstSeen < r.firstSeen) {
        before = li;
        break;
      }
    }
    if (before !== r.li) list.insertBefore(r.li, before);
  };

  const resort = () => {
    const focused = document.activeElement;
    const sorted = [...rows.values()].sort((a, b) => b.firstSeen - a.firstSeen);
    list.replaceChildren(...sorted.map((r) => r.li));
    if (focused instanceof HTMLElement && list.contains(focused)) focused.focus();
  };

  /** upsert shows a visitor's latest state; it returns the row if it is new. */
  const upsert = (v: Visitor): Row | undefined => {
    let r = rows.get(v.visitorId);
    let fresh: Row | undefined;
    if (!r) {
      const btn = h("button", { type: "button", class: "item-btn" });
      const li = h("li", { class: "vrow", "data-testid": "visitor-row", "data-visitor-id": v.visitorId }, btn);
      const id = v.visitorId;
      btn.addEventListener("click", () => select(id));
      r = { v, firstSeen: ms(v.firstSeen) || Date.now(), li, btn, time: h("span", { class: "vtime" }) };
      byLi.set(li, r);
      seen?.observe(li);
      rows.set(v.visitorId, r);
      fresh = r;
    }
    r.v = v;
    renderRow(r);
    if (detail?.id === v.visitorId) {
      detail.left = false;
      renderDetail();
    }
    return fresh;
  };

  const remove = (id: string) => {
    const r = rows.get(id);
    if (!r) return;
    const hadFocus = r.li.contains(document.activeElement);
    const next = (r.li.nextElementSibling ?? r.li.previousElementSibling)?.querySelector("button");
    r.li.remove();
    rows.delete(id);
    seen?.unobserve(r.li);
    visible.delete(r);
    if (hadFocus) (next ?? list).focus();
    if (detail?.id === id) {
      detail.left = true;
      renderDetail();
    }
  };

  const onMessage = (res: WatchVisitorsResponse) => {
    const joined: Row[] = [];
    for (const v of res.visitors) {
      if (inSnapshot) snapshotIds.add(v.visitorId);
      const r = upsert(v);
      if (r) joined.push(r);
    }
    for (const id of res.leftVisitorIds) remove(id);
    if (inSnapshot) {
      list.append(...joined.map((r) => r.li));
      if (res.snapshotDone) {
        // Whoever the new snapshot does not mention left while we were away.
        for (const id of [...rows.keys()]) if (!snapshotIds.has(id)) remove(id);
        inSnapshot = false;
        snapshotIds = new Set();
        resort();
      }
    } else if (joined.length > RESORT_FROM) {
      resort();
    } else {
      joined.forEach(placeRow);
    }
    setCount();
  };

  // ---- detail ----------------------------------------------------------------

  function emptyPane(): HTMLElement {
    return h(
      "div",
      { class: "empty" },
      h("p", { class: "empty-title" }, "No visitor selected"),
      h("p", null, "Pick a visitor to see where they are and invite them to chat."),
    );
  }

  function select(id: string): void {
    if (detail?.id === id) return;
    const prev = detail?.id;
    const message = h("textarea", {
      id: "invite-message",
      "data-testid": "invite-message",
      rows: 3,
      maxlength: MAX_INVITATION_CHARS,
      required: true,
    });
    message.value = DEFAULT_INVITATION;
    const invite = h("button", { type: "submit", class: "btn primary", "data-testid": "invite" }, "Invite to chat");
    const state = h("p", { class: "vstate", "data-testid": "invitation-state", role: "status" });
    const form = h(
      "form",
      { class: "invite-form", "aria-labelledby": "invite-title" },
      h("h3", { id: "invite-title" }, "Invite to chat"),
      state,
      h("label", { class: "label", for: "invite-message" }, "Message shown to the visitor"),
      message,
      h("div", { class: "form-actions" }, invite),
    );
    const d: Detail = {
      id,
      root: h("article", { class: "vdetail", "data-testid": "visitor-detail", "data-visitor-id": id }),
      status: h("p", { class: "chat-meta", "data-testid": "visitor-status" }),
      info: h("div", { class: "vinfo" }),
      state,
      form,
      message,
      invite,
      sending: false,
      left: false,
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void sendInvite(d);
    });
    d.root.append(
      h("header", { class: "chat-head" }, h("div", { class: "chat-id" }, h("h2", { class: "chat-name" }, "Visitor"), d.status)),
      h("div", { class: "vbody" }, d.info, form),
    );
    detail = d;
    pane.replaceChildren(d.root);
    const p = prev ? rows.get(prev) : undefined;
    if (p) current(p.btn, false);
    const r = rows.get(id);
    if (r) current(r.btn, true);
    renderDetail();
  }

  function renderDetail(): void {
    const d = detail;
    if (!d) return;
    const r = rows.get(d.id);
    if (!r || d.left) {
      d.left = true;
      d.status.textContent = "Left the site";
      d.root.classList.add("left");
      d.info.replaceChildren(
        h(
          "p",
          { class: "banner", "data-testid": "visitor-left" },
          "Left the site. What was known of this visit is deleted from the server a few minutes after leaving.",
        ),
      );
      show(d.form, false);
      return;
    }
    const v = r.v;
    d.root.classList.remove("left");
    d.status.textContent = `On the site for ${duration(Date.now() - r.firstSeen)}`;
    const loc = v.location;
    const locText = loc ? join([join([loc.city, loc.region, loc.country], ", "), loc.postalCode], " · ") : "";
    const fields: Array<[string, string, string]> = [
      ["ip", "IP address", v.ip],
      ["host", "Host", v.host],
      ["location", "Location", locText],
      ["isp", "ISP", v.isp],
      ["browser", "Browser", join([v.browser, v.browserVersion], " ")],
      ["os", "Operating system", v.os],
      ["device", "Device", v.device],
      ["referrer", "Came from", v.pages[0]?.page?.referrer ?? ""],
    ];
    const last = v.pages.length - 1;
    d.info.replaceChildren(
      h(
        "dl",
        { class: "kv" },
        ...fields
          .filter(([, , value]) => value)
          .map(([key, name, value]) => h("div", { class: "kv-row", "data-testid": `detail-${key}` }, h("dt", null, name), h("dd", null, value))),
      ),
      h("h3", null, `Pages viewed (${v.pages.length})`),
      h(
        "ol",
        { class: "vpages" },
        ...v.pages.map((pv, i) =>
          h(
            "li",
            { "data-testid": "visitor-page", class: i === last ? "current" : undefined },
            h("time", { class: "when" }, clock(pv.viewedAt)),
            h(
              "span",
              { class: "vpage-text" },
              h("span", { class: "vpage-title" }, pv.page?.title || "Untitled", i === last ? h("span", { class: "tag" }, "now") : null),
              h("span", { class: "vurl" }, pv.page?.url ?? ""),
            ),
          ),
        ),
      ),
      ...dataSection("page-data", "From the page (unverified)", "Set by the website's page with Lethe.setCustomData: the page, or the visitor, could have changed it.", v.pageData),
      ...dataSection("verified-data", "Verified by your server", "From a ticket your back end minted with an API key.", v.verifiedData),
    );
    const [state, text] = invitationText(v.invitation);
    d.state.textContent = text;
    d.state.dataset.state = state;
    show(d.form, true);
    d.invite.disabled = d.sending || state === "sent";
  }

  function dataSection(testId: string, title: string, hint: string, data: Record<string, string>): HTMLElement[] {
    const keys = Object.keys(data).sort();
    if (!keys.length) return [];
    return [h(
      "section",
      { class: "vdata", "data-testid": testId },
      h("h3", null, title),
      h("p", { class: "hint" }, hint),
      h(
        "dl",
        { class: "kv" },
        ...keys.map((k) => h("div", { class: "kv-row", "data-testid": "data-row", "data-key": k }, h("dt", null, k), h("dd", null, data[k]))),
      ),
    )];
  }

  async function sendInvite(d: Detail): Promise<void> {
    const message = d.message.value.trim();
    if (!message || d.sending || d.left) return;
    d.sending = true;
    d.invite.disabled = true;
    try {
      await api.invite({ visitorId: d.id, message });
      opts.clearError();
      d.state.textContent = "Invitation sent, waiting for an answer.";
      d.state.dataset.state = "sent";
    } catch (err) {
      opts.fail(err);
    } finally {
      d.sending = false;
      if (detail === d) renderDetail();
    }
  }

  // ---- stream and clock --------------------------------------------------------

  const onTick = () => {
    const now = Date.now();
    for (const r of seen ? visible : rows.values()) r.time.textContent = duration(now - r.firstSeen);
    const d = detail;
    const r = d && rows.get(d.id);
    if (d && r && !d.left) d.status.textContent = `On the site for ${duration(now - r.firstSeen)}`;
  };

  void watchVisitorsResuming(api, {
    signal: opts.signal,
    onConnected: () => {
      conn.textContent = "";
      conn.classList.remove("bad");
      inSnapshot = true;
      snapshotIds = new Set();
    },
    onMessage,
    onDisconnected: () => {
      conn.textContent = "Reconnecting…";
      conn.classList.add("bad");
    },
    onFinalError: (err) => {
      if (err.code === Code.Unauthenticated) opts.fail(err);
      else conn.textContent = errorMessage(err);
    },
  });
  opts.signal.addEventListener("abort", () => clearInterval(tick), { once: true });

  setCount();
  return {
    root,
    tabCount,
    setShown(on: boolean) {
      shown = on;
      clearInterval(tick);
      tick = undefined;
      if (shown && !opts.signal.aborted) {
        onTick();
        tick = setInterval(onTick, 1000);
      }
    },
  };
}
