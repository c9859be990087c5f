/**
 * The start view's state, and what it shows, as pure functions of that state
 * and the account's widget config. The start view is what the visitor sees
 * outside a chat: the pre-chat form, or the offline-message form when no
 * operator is online, or the note that their offline message was sent.
 */

/** What the visitor is doing on the start view. */
export type StartView =
  /** The pre-chat form (greyed out while nobody is online and offline messages are off). */
  | { kind: "prechat" }
  /** The offline-message form; chosen: the visitor asked for it while an operator was online. */
  | { kind: "offline"; chosen: boolean }
  /** The offline message was sent. */
  | { kind: "sent" };

/** The parts of the widget config the start view depends on. */
export interface StartConfig {
  /** An operator is online (assumed until the config says otherwise). */
  online: boolean;
  /** The account takes offline messages. */
  offlineEnabled: boolean;
}

export const PRECHAT: StartView = { kind: "prechat" };

/**
 * nextStartView follows the config: with offline messages off there is only
 * the pre-chat form; with nobody online, the offline form. When an operator
 * comes online the view goes back to the live chat, unless the visitor chose
 * the offline form, has started writing in it (touched) or has sent it.
 */
export function nextStartView(v: StartView, c: StartConfig, touched: boolean): StartView {
  if (!c.offlineEnabled) return PRECHAT;
  if (!c.online) return v.kind === "prechat" ? { kind: "offline", chosen: false } : v;
  if (v.kind === "offline" && !v.chosen && !touched) return PRECHAT;
  return v;
}

/** What the start view shows. */
export interface StartLayout {
  /** The "no operator online" notice: none, with "leave a message", or with "check back later". */
  notice: "none" | "form" | "wait";
  prechat: boolean;
  /** The pre-chat fields are disabled (nobody online to answer). */
  prechatDisabled: boolean;
  /** "Leave a message instead" under the pre-chat form. */
  chooseOffline: boolean;
  offlineForm: boolean;
  sent: boolean;
  /** "Start a live chat instead", back from the offline form. */
  chooseChat: boolean;
  subtitle: string;
  /** Poll the config, so the page notices an operator coming back. */
  poll: boolean;
}

export function startLayout(v: StartView, c: StartConfig): StartLayout {
  return {
    notice: c.online ? "none" : c.offlineEnabled ? "form" : "wait",
    prechat: v.kind === "prechat",
    prechatDisabled: !c.online,
    chooseOffline: c.offlineEnabled,
    offlineForm: v.kind === "offline",
    sent: v.kind === "sent",
    chooseChat: v.kind !== "prechat" && c.online,
    subtitle: c.online ? "We typically reply in a few minutes" : "Offline",
    poll: !c.online,
  };
}
