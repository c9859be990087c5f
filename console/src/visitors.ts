/**
 * The Visitors page: who is on the website right now, from one
 * MonitorService.WatchVisitors stream (a snapshot, then coalesced batches of
 * changed visitors and ids of those who left), with a detail pane
 * (visitordetail.ts). The list's rules are pure (visitorlist.ts); rows are
 * updated in place from what each batch changed, so a console following
 * thousands of visitors does not rebuild the list on every batch, and every
 * string from a visitor's browser or the website is set as text.
 */
import { Code, errorMessage, watchVisitorsResuming, type WatchVisitorsResponse } from "@lethe/sdk";
import { h, show } from "../../ui/dom";
import type { PageContext } from "./context";
import { duration } from "./format";
import { createVisitorDetail, type VisitorDetail } from "./visitordetail";
import {
  applyVisitors,
  emptyVisitorList,
  newestFirst,
  visitorsConnected,
  type VisitorEntry,
  type VisitorList,
} from "./visitorlist";
import { browserOs, hasData, place } from "./visitortext";

/** Above this many joins in one batch the list is re-sorted at once. */
const RESORT_FROM = 20;

/** The Visitors page of a signed-in console. */
export interface VisitorsPage {
  /** The page's element, shown by the console's tab. */
  readonly root: HTMLElement;
  /** The count for the tab label ("3"), updated live. */
  readonly tabCount: HTMLElement;
  /** Tells the page whether it is on screen (times tick only then). */
  setShown(on: boolean): void;
}

/** One visitor's row in the list. */
interface Row {
  readonly id: string;
  readonly li: HTMLLIElement;
  readonly btn: HTMLButtonElement;
  readonly time: HTMLElement;
}

/** The page's state. */
interface Page {
  list: VisitorList;
  rows: Map<string, Row>;
  /** Rows on screen: only they tick. */
  visible: Set<Row>;
  detail: VisitorDetail | undefined;
  tick: ReturnType<typeof setInterval> | undefined;
}

export function createVisitorsPage(ctx: PageContext): VisitorsPage {
  const page: Page = { list: emptyVisitorList(), rows: new Map(), visible: new Set(), detail: undefined, tick: undefined };

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

  const entry = (id: string): VisitorEntry | undefined => page.list.visitors.get(id);
  const byLi = new WeakMap<Element, Row>();
  // Only rows on screen tick, so thousands of visitors cost no more per
  // second than the few dozen an operator can see.
  const seen =
    typeof IntersectionObserver === "function"
      ? new IntersectionObserver((changes) => {
          const now = Date.now();
          for (const c of changes) {
            const r = byLi.get(c.target);
            if (!r) continue;
            if (!c.isIntersecting) page.visible.delete(r);
            else if (page.rows.get(r.id) === r) {
              page.visible.add(r);
              tickRow(r, now);
            }
          }
        })
      : undefined;

  const tickRow = (r: Row, now: number) => {
    const e = entry(r.id);
    if (e) r.time.textContent = duration(now - e.firstSeen);
  };

  const setCount = () => {
    const n = page.list.visitors.size;
    count.textContent = `${n} on site`;
    tabCount.textContent = String(n);
    show(none, n === 0);
  };

  const current = (el: HTMLElement, on: boolean) => (on ? el.setAttribute("aria-current", "true") : el.removeAttribute("aria-current"));

  // ---- rows -----------------------------------------------------------------------

  const renderRow = (r: Row) => {
    const e = entry(r.id);
    if (!e) return;
    const v = e.visitor;
    const pg = v.currentPage?.page;
    r.btn.replaceChildren(
      h(
        "span",
        { class: "item-text" },
        h("span", { class: "item-name" }, pg?.title || pg?.url || "Unknown page"),
        h("span", { class: "item-sub vurl" }, pg?.url ?? ""),
        h("span", { class: "item-sub" }, [browserOs(v), place(v)].filter(Boolean).join(" · ")),
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
    current(r.btn, page.detail?.visitorId === r.id);
    tickRow(r, Date.now());
  };

  const addRow = (id: string): Row => {
    const btn = h("button", { type: "button", class: "item-btn" });
    const li = h("li", { class: "vrow", "data-testid": "visitor-row", "data-visitor-id": id }, btn);
    const r: Row = { id, li, btn, time: h("span", { class: "vtime" }) };
    btn.addEventListener("click", () => select(id));
    byLi.set(li, r);
    seen?.observe(li);
    page.rows.set(id, r);
    return r;
  };

  const firstSeen = (r: Row) => entry(r.id)?.firstSeen ?? 0;

  /** placeRow puts a row in order: the newest visitor first. */
  const placeRow = (r: Row) => {
    const mine = firstSeen(r);
    let before: Element | null = null;
    for (const li of list.children) {
      const other = byLi.get(li);
      if (other && other !== r && firstSeen(other) < mine) {
        before = li;
        break;
      }
    }
    if (before !== r.li) list.insertBefore(r.li, before);
  };

  const resort = () => {
    const focused = document.activeElement;
    list.replaceChildren(...newestFirst(page.list).flatMap((id) => page.rows.get(id)?.li ?? []));
    if (focused instanceof HTMLElement && list.contains(focused)) focused.focus();
  };

  const removeRow = (id: string) => {
    const r = page.rows.get(id);
    if (!r) return;
    const hadFocus = r.li.contains(document.activeElement);
    const next = (r.li.nextElementSibling ?? r.li.previousElementSibling)?.querySelector("button");
    r.li.remove();
    page.rows.delete(id);
    seen?.unobserve(r.li);
    page.visible.delete(r);
    if (hadFocus) (next ?? list).focus();
  };

  const onMessage = (res: WatchVisitorsResponse) => {
    if (ctx.signal.aborted) return;
    const inSnapshot = !!page.list.snapshot;
    const { list: next, changes } = applyVisitors(page.list, res, Date.now());
    page.list = next;
    for (const id of changes.left) removeRow(id);
    for (const id of changes.updated) {
      const r = page.rows.get(id);
      if (r) renderRow(r);
    }
    const joined = changes.joined.map(addRow);
    joined.forEach(renderRow);
    if (inSnapshot) {
      list.append(...joined.map((r) => r.li));
      if (changes.snapshotDone) resort();
    } else if (joined.length > RESORT_FROM) {
      resort();
    } else {
      joined.forEach(placeRow);
    }
    const d = page.detail;
    if (d && (changes.left.includes(d.visitorId) || changes.updated.includes(d.visitorId) || changes.joined.includes(d.visitorId))) {
      d.render(entry(d.visitorId));
    }
    setCount();
  };

  // ---- detail ----------------------------------------------------------------------

  function select(id: string): void {
    const prev = page.detail;
    if (prev?.visitorId === id) return;
    const d = createVisitorDetail(id, ctx);
    page.detail = d;
    pane.replaceChildren(d.root);
    const p = prev && page.rows.get(prev.visitorId);
    if (p) current(p.btn, false);
    const r = page.rows.get(id);
    if (r) current(r.btn, true);
    d.render(entry(id));
  }

  // ---- stream and clock ----------------------------------------------------------------

  const onTick = () => {
    const now = Date.now();
    for (const r of seen ? page.visible : page.rows.values()) tickRow(r, now);
    page.detail?.tick(now);
  };

  void watchVisitorsResuming(ctx.api.monitor, {
    signal: ctx.signal,
    onConnected: () => {
      conn.textContent = "";
      conn.classList.remove("bad");
      page.list = visitorsConnected(page.list);
    },
    onMessage,
    onDisconnected: () => {
      conn.textContent = "Reconnecting…";
      conn.classList.add("bad");
    },
    onFinalError: (err) => {
      if (err.code === Code.Unauthenticated) ctx.fail(err);
      else conn.textContent = errorMessage(err);
    },
  });
  ctx.signal.addEventListener(
    "abort",
    () => {
      clearInterval(page.tick);
      seen?.disconnect();
    },
    { once: true },
  );

  setCount();
  return {
    root,
    tabCount,
    setShown(on: boolean) {
      clearInterval(page.tick);
      page.tick = undefined;
      if (on && !ctx.signal.aborted) {
        onTick();
        page.tick = setInterval(onTick, 1000);
      }
    },
  };
}

function emptyPane(): HTMLElement {
  return h(
    "div",
    { class: "empty" },
    h("p", { class: "empty-title" }, "No visitor selected"),
    h("p", null, "Pick a visitor to see where they are and invite them to chat."),
  );
}
