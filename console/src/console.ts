/**
 * The operator console's boot file: it makes the RPC clients and the queue
 * chime once, asks the server whether this browser is signed in, and then
 * shows either the sign-in screen (login.ts) or the signed-in console
 * (shell.ts: Chats, Visitors, and for admins Operators and Settings). What
 * is on screen is the one piece of module state; each session's streams and
 * timers end with its AbortController.
 */
import { Code, ConnectError, errorMessage, type Account, type Operator } from "@lethe/sdk";
import { createApi } from "./context";
import { renderLogin } from "./login";
import { startShell } from "./shell";
import { createChime } from "./sound";

const api = createApi(location.origin);
const chime = createChime(document);
const root = document.getElementById("app") ?? document.body;
const baseTitle = document.title || "Lethe Console";

type Screen = { kind: "login" } | { kind: "console"; session: AbortController };

let screen: Screen = { kind: "login" };

function leave(): void {
  if (screen.kind === "console") screen.session.abort();
}

function showLogin(message = ""): void {
  leave();
  screen = { kind: "login" };
  document.title = baseTitle;
  renderLogin(root, { api, message, onSignedIn: showConsole });
}

function showConsole(me: Operator, account: Account): void {
  leave();
  const session = new AbortController();
  screen = { kind: "console", session };
  startShell({ root, api, me, account, signal: session.signal, chime, baseTitle, signOut: showLogin });
}

async function boot(): Promise<void> {
  try {
    const me = await api.account.getMe({});
    if (me.operator && me.account) showConsole(me.operator, me.account);
    else showLogin();
  } catch (err) {
    const e = ConnectError.from(err);
    showLogin(e.code === Code.Unauthenticated ? "" : errorMessage(e));
  }
}

void boot();
