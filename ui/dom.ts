// DOM helpers shared by the widget panel and the console: text only ever
// becomes text nodes, so visitor and operator text can never become markup.
/** Child accepted by {@link h}: strings become text nodes, never HTML. */
export type Child = Node | string | null | undefined | false;

/** Attributes for {@link h}: `on*` functions become listeners, `true` a bare attribute. */
export type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/**
 * h creates an element. Text is only ever added as text nodes, so visitor
 * and operator text can never become markup.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...kids: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, "");
      else if (v !== false && v !== undefined) el.setAttribute(k, String(v));
    }
  }
  for (const kid of kids) if (kid) el.append(kid);
  return el;
}

/** show sets an element's hidden state. */
export function show(el: HTMLElement, visible: boolean): void {
  el.hidden = !visible;
}
