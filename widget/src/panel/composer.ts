/**
 * The chat's composer: the message box with its character counter, the send
 * button, and the typing notices it sends while the visitor writes (at most
 * one every 3 s, and "stopped" after 4 s without a key).
 */
import { h } from "../../../ui/dom";
import { MAX_CHARS } from "./config";

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

export interface Composer {
  readonly root: HTMLFormElement;
  /** enable turns the composer on for an open chat, off for a closed one. */
  enable(on: boolean): void;
  enabled(): boolean;
  focus(): void;
  setMaxChars(n: number): void;
}

export interface ComposerDeps {
  /** lead goes before the message box (the paper clip). */
  lead?: Node;
  /** send sends a message and reports whether it went. */
  send(text: string): Promise<boolean>;
  /** typing tells the operator the visitor is typing or stopped (best effort). */
  typing(on: boolean): void;
}

export function createComposer(d: ComposerDeps): Composer {
  const st: { on: boolean; max: number; typingOn: boolean; lastTypingSent: number; idle?: ReturnType<typeof setTimeout>; sending: boolean } = {
    on: true,
    max: MAX_CHARS,
    typingOn: false,
    lastTypingSent: 0,
    sending: false,
  };
  const input = h("textarea", {
    id: "lethe-composer",
    class: "composer-input",
    "data-testid": "composer",
    rows: 1,
    maxlength: MAX_CHARS,
    placeholder: "Write a message…",
    "aria-describedby": "lethe-counter",
  });
  const counter = h("span", { class: "counter", id: "lethe-counter", "aria-live": "polite" });
  const sendBtn = h(
    "button",
    { type: "submit", class: "btn-send", "data-testid": "send", "aria-label": "Send" },
    h("span", { class: "i-send", "aria-hidden": "true" }),
  );
  const root = h(
    "form",
    {
      class: "composer",
      onsubmit: (e) => {
        e.preventDefault();
        void send();
      },
    },
    d.lead,
    h("label", { for: "lethe-composer", class: "sr-only" }, "Message"),
    input,
    counter,
    sendBtn,
  );

  function setTyping(on: boolean): void {
    if (!st.on) return;
    st.typingOn = on;
    st.lastTypingSent = on ? Date.now() : 0;
    d.typing(on);
  }

  function stopTyping(): void {
    if (st.idle) clearTimeout(st.idle);
    st.idle = undefined;
    if (st.typingOn) setTyping(false);
  }

  /** The counter shows from 90% of the limit on. */
  function updateCounter(): void {
    const n = input.value.length;
    counter.textContent = n >= st.max * 0.9 ? `${n} / ${st.max}` : "";
    counter.classList.toggle("full", n >= st.max);
  }

  function autosize(): void {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  }

  async function send(): Promise<void> {
    const text = input.value.trim();
    if (!text || st.sending || !st.on) return;
    st.sending = true;
    sendBtn.disabled = true;
    stopTyping();
    try {
      if (!(await d.send(text))) return;
      if (input.value.trim() === text) input.value = "";
      updateCounter();
      autosize();
    } finally {
      st.sending = false;
      sendBtn.disabled = !st.on;
      if (st.on) input.focus();
    }
  }

  input.addEventListener("input", () => {
    updateCounter();
    autosize();
    if (!input.value.trim()) return stopTyping();
    if (Date.now() - st.lastTypingSent >= TYPING_EVERY_MS) setTyping(true);
    if (st.idle) clearTimeout(st.idle);
    st.idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  });

  return {
    root,
    enable(on) {
      if (!on) {
        // A closed chat takes no typing notices.
        if (st.idle) clearTimeout(st.idle);
        st.idle = undefined;
        st.typingOn = false;
      }
      st.on = on;
      input.disabled = sendBtn.disabled = !on;
      root.classList.toggle("off", !on);
    },
    enabled: () => st.on,
    focus: () => input.focus(),
    setMaxChars(n) {
      st.max = input.maxLength = n;
      updateCounter();
    },
  };
}
