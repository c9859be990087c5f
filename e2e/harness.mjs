// Shared pieces of the end-to-end tests: start the real lethe binary on a
// random port with a temp data directory, launch Debian's Chromium through
// playwright-core, and save screenshots (not committed) for a human to look at.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:http";
import { chromium } from "playwright-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const shotsDir = join(root, "e2e", "screenshots");
export const ADMIN_EMAIL = "admin@lethe.local";
export const ADMIN_PASSWORD = "e2e-admin-password";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/** Starts the lethe binary; resolves with {base, proc, dataDir, logs()}. */
export async function startLethe(extraArgs = [], extraEnv = {}) {
  const bin = process.env.LETHE_BIN || join(root, "bin", "lethe");
  if (!existsSync(bin)) throw new Error(`lethe binary not found at ${bin}; run 'make bin' (or make e2e)`);
  const dataDir = mkdtempSync(join(tmpdir(), "lethe-e2e-"));
  // --metrics-addr= : no metrics listener, whose fixed port another server could hold.
  const proc = spawn(bin, ["--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "debug", "--metrics-addr=", ...extraArgs], {
    env: { ...process.env, LETHE_ADMIN_PASSWORD: ADMIN_PASSWORD, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lethe did not start:\n${out}\n${err}`)), 30000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        // The server listens on 127.0.0.1; use that literally in the browser.
        resolve(m[1].replace("localhost", "127.0.0.1"));
      }
    });
    proc.on("exit", (code) => reject(new Error(`lethe exited with ${code}:\n${out}\n${err}`)));
  });
  return {
    base,
    proc,
    dataDir,
    logs: () => err,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.on("exit", r));
      proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** Launches headless Chromium (Debian's package; never a downloaded build). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}; run scripts/ensure-chromium.sh`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** Saves a screenshot under e2e/screenshots (git-ignored). */
export async function shot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  await page.screenshot({ path: join(shotsDir, `${name}.png`) });
}

/** Serves one HTML page from another origin (a foreign or customer website). */
export async function startSite(html) {
  const srv = createServer((req, res) => {
    const body = typeof html === "function" ? html(req) : html;
    if (body === null) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(body);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  return { origin: `http://localhost:${port}`, close: () => new Promise((r) => srv.close(r)) };
}

/**
 * Starts a customer's website (its "/" embeds the widget of the demo account)
 * on another origin, and Lethe with that origin listed for the demo account.
 */
export async function startShop(extraArgs = []) {
  let lethe;
  const shop = await startSite((req) =>
    req.url === "/" ? `<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1>
<script async src="${lethe.base}/widget.js" data-account="demo"></script></body></html>` : null,
  );
  lethe = await startLethe(["--demo-origins", shop.origin, ...extraArgs]);
  return { shop, lethe };
}

/** Signs an operator in to the console in page. */
export async function operatorLogin(page, base, email = ADMIN_EMAIL, password = ADMIN_PASSWORD) {
  await page.goto(`${base}/console/`);
  await page.getByTestId("login-email").fill(email);
  await page.getByTestId("login-password").fill(password);
  await page.getByTestId("login-submit").click();
  await page.getByTestId("queue").waitFor();
}

/** Calls a unary Connect RPC with JSON (as any HTTP client could). */
export async function rpc(base, path, body, headers = {}) {
  const res = await fetch(`${base}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/**
 * Signs the first-run admin in over the API and returns a caller of RPCs
 * with that session: admin(path, body) answers the response body and fails
 * the test unless the status is 200.
 */
export async function adminApi(base) {
  const login = await fetch(`${base}/lethe.account.v1.AccountService/Login`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1" },
    body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
  });
  if (login.status !== 200) throw new Error(`admin sign-in: HTTP ${login.status}`);
  const cookie = login.headers.get("set-cookie").split(";")[0];
  return async (path, body) => {
    const r = await rpc(base, path, body, { cookie });
    if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
}

/** Waits until the account has no operator online (presence has a grace period). */
export async function waitNoOperatorOnline(base, account = "demo", timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await rpc(base, "lethe.chat.v1.ChatService/GetWidgetConfig", { accountId: account });
    if (!r.body.operatorsOnline) return;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error("an operator stayed online");
}

/**
 * A real SMTP server (plain SMTP, no STARTTLS offered) that keeps every
 * message it accepts. Enough of RFC 5321 for Lethe's mail client.
 */
export async function startSmtpSink() {
  const { createServer: createTcp } = await import("node:net");
  const messages = [];
  // While true, every MAIL FROM is answered 451 (a mail outage): nothing is accepted.
  const state = { failing: false };
  const server = createTcp((sock) => {
    sock.setEncoding("utf8");
    let buf = "";
    let inData = false;
    let data = "";
    let rcpt = [];
    const reply = (s) => sock.write(s + "\r\n");
    reply("220 sink ESMTP");
    sock.on("data", (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === ".") {
            inData = false;
            messages.push({ rcpt, data });
            data = "";
            rcpt = [];
            reply("250 OK queued");
          } else {
            data += (line.startsWith("..") ? line.slice(1) : line) + "\n";
          }
          continue;
        }
        const cmd = line.slice(0, 4).toUpperCase();
        if (cmd === "EHLO") sock.write("250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        else if (cmd === "HELO") reply("250 sink");
        else if (cmd === "MAIL") reply(state.failing ? "451 outage, try later" : "250 OK");
        else if (cmd === "RCPT") { rcpt.push(line.slice(8)); reply("250 OK"); }
        else if (cmd === "DATA") { inData = true; reply("354 go ahead"); }
        else if (cmd === "QUIT") { reply("221 bye"); sock.end(); }
        else if (cmd === "RSET" || cmd === "NOOP") reply("250 OK");
        else reply("502 not implemented");
      }
    });
    sock.on("error", () => {});
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: server.address().port,
    messages,
    /** fail(true) starts a mail outage, fail(false) ends it. */
    fail(on) {
      state.failing = on;
    },
    /** Waits for a message whose raw data matches re. */
    async waitFor(re, timeoutMs = 20000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const m = messages.find((x) => re.test(decodeQP(x.data)));
        if (m) return decodeQP(m.data);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no mail matching ${re} (got ${messages.length})`);
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Undoes quoted-printable soft breaks and escapes, enough to search text. */
function decodeQP(s) {
  return s.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
}

/** Every byte of every file under dir, as one latin1 string (forensic checks). */
export function allBytes(dir) {
  let out = "";
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out += statSync(p).isDirectory() ? allBytes(p) : readFileSync(p).toString("latin1");
  }
  return out;
}

/** Polls cond every 50 ms until it holds; resolves with the time it did. */
export async function until(what, cond, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now();
}

/** Signs the admin in to the console in a new browser context and opens the Visitors tab. */
export async function consoleVisitors(browser, base) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await operatorLogin(page, base);
  await page.getByTestId("visitors-tab").click();
  return { ctx, page };
}
