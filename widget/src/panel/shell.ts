/**
 * The panel's frame: the header with the account's name and a status line,
 * the error line, and the body slot where the start view or the chat view
 * goes. The views put their own controls in it (the chat's "End chat" button
 * and its confirmation bar, the invitation) when it is mounted.
 */
import { h, show } from "../../../ui/dom";

export interface Shell {
  setTitle(text: string): void;
  /** setStatus sets the line under the title ("In the queue", "Offline", …). */
  setStatus(text: string): void;
  showError(msg: string): void;
  clearError(): void;
  /** setBody puts a view in the body slot, in place of the one there. */
  setBody(view: HTMLElement): void;
  /** showBody hides the body while an invitation stands in for it. */
  showBody(on: boolean): void;
  /** mount builds the panel into root with the views' extra parts. */
  mount(root: HTMLElement, parts: { actions: Node[]; bars: Node[]; overlays: Node[] }): void;
}

export function createShell(onMinimize: () => void, onData: () => void): Shell {
  const title = h("h1", { class: "title", id: "lethe-title" }, "Chat");
  const subtitle = h("p", { class: "subtitle" });
  const minBtn = h(
    "button",
    { type: "button", class: "btn-icon", "aria-label": "Minimize chat", title: "Minimize", onclick: onMinimize },
    h("span", { class: "i-min", "aria-hidden": "true" }),
  );
  const dataBtn = h(
    "button",
    { type: "button", class: "btn-head", "data-testid": "my-data", title: "What we hold about you", onclick: onData },
    "Your data",
  );
  const errorBox = h("div", { class: "error", role: "alert", "data-testid": "error" });
  const body = h("div", { class: "body" });
  return {
    setTitle: (text) => (title.textContent = text),
    setStatus: (text) => (subtitle.textContent = text),
    showError: (msg) => (errorBox.textContent = msg),
    clearError: () => (errorBox.textContent = ""),
    setBody(view) {
      if (body.firstChild !== view) body.replaceChildren(view);
    },
    showBody: (on) => show(body, on),
    mount(root, parts) {
      root.append(
        h(
          "div",
          { class: "panel", role: "region", "aria-labelledby": "lethe-title" },
          h("header", { class: "head" }, h("div", { class: "head-text" }, title, subtitle), ...parts.actions, dataBtn, minBtn),
          ...parts.bars,
          errorBox,
          ...parts.overlays,
          body,
        ),
      );
    },
  };
}
