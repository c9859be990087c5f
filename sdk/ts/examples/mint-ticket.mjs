#!/usr/bin/env node
// mint-ticket mints a single-use ticket carrying verified visitor data, as a
// website's back end would before rendering a page for a signed-in customer,
// and prints it as JSON: {"ticket":"lt_…","expiresAt":"2030-01-01T00:00:00.000Z"}.
//
//   LETHE_URL=http://127.0.0.1:8080 LETHE_API_KEY=lk_… \
//     node sdk/ts/examples/mint-ticket.mjs '{"customer_id":"c-1042","plan":"pro"}' [ttl-seconds]
//
// The page then hands the ticket to the widget:
//   <script async src="$LETHE_URL/widget.js" data-account="…" data-ticket="lt_…"></script>
// or, later, Lethe.identify("lt_…"). Runs on Node 20+ with nothing installed:
// ../dist/integrator.mjs is self-contained (built by `npm run build`).
import { mintTicket } from "../dist/integrator.mjs";

function die(msg) {
  process.stderr.write(`mint-ticket: ${msg}\n`);
  process.exit(1);
}

const baseUrl = process.env.LETHE_URL;
const apiKey = process.env.LETHE_API_KEY;
if (!baseUrl || !apiKey) die("set LETHE_URL and LETHE_API_KEY");

let data;
try {
  data = JSON.parse(process.argv[2] ?? "{}");
} catch (err) {
  die(`the data argument is not JSON: ${err.message}`);
}
if (!data || typeof data !== "object" || Array.isArray(data)) die("the data argument must be a JSON object");

const ttl = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
if (ttl !== undefined && !Number.isInteger(ttl)) die("ttl-seconds must be an integer");

try {
  const { ticket, expiresAt } = await mintTicket({ baseUrl, apiKey, data, ttlSeconds: ttl });
  process.stdout.write(JSON.stringify({ ticket, expiresAt: expiresAt.toISOString() }) + "\n");
} catch (err) {
  // A ConnectError's message carries its code, e.g. "[unauthenticated] unknown API key".
  die(err instanceof Error ? err.message : String(err));
}
