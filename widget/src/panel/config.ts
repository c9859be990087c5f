/**
 * The account's widget config (name, whether operators are online, whether
 * offline messages and transcript requests are on, the message limit). It is
 * fetched when the panel starts, for every new chat, when the visitor asks
 * whether an operator is back, and by the start view's poll.
 */
import { type PanelApi, type WidgetConfig, errorMessage } from "./api";
import type { Shell } from "./shell";

/** The message limit until the account's config says otherwise. */
export const MAX_CHARS = 4000;

/**
 * configLoader returns the function that fetches the config, shows the
 * account's name and hands the config to apply. Failures are shown as errors.
 */
export function configLoader(
  accountId: string,
  api: PanelApi,
  shell: Shell,
  apply: (cfg: WidgetConfig) => void,
): () => Promise<void> {
  return async () => {
    if (!accountId) {
      shell.showError("This chat is not set up correctly.");
      return;
    }
    let cfg: WidgetConfig;
    try {
      cfg = await api.getWidgetConfig(accountId);
    } catch (err) {
      shell.showError(errorMessage(err));
      return;
    }
    if (cfg.accountName) shell.setTitle(cfg.accountName);
    apply(cfg);
  };
}

/** maxChars is the account's message limit. */
export const maxChars = (cfg: WidgetConfig) => (cfg.maxMessageChars > 0 ? cfg.maxMessageChars : MAX_CHARS);
