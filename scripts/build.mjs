// Builds the web clients into server/web/static, where the Go server embeds
// them, and the TypeScript SDK's integrator API for Node into
// sdk/ts/dist/integrator.mjs (one self-contained ES module, so the example in
// sdk/ts/examples runs with plain `node`). Output is deterministic (no timestamps, no absolute paths, no legal
// comments), so rebuilding an unchanged tree yields the same bytes and the
// committed bundles can be checked with `git diff --exit-code`.
import { build } from "esbuild";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "server/web/static");
const sdkDist = join(root, "sdk/ts/dist");
await mkdir(out, { recursive: true });
await mkdir(sdkDist, { recursive: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  legalComments: "none",
  sourcemap: false,
  charset: "utf8",
  logLevel: "warning",
  define: { "process.env.NODE_ENV": '"production"' },
};

const budgets = {
  "widget.js": 5 * 1024,
  // 45 KB until files in chats (issue 10) added ~4 KB gz: its contract, the
  // SDK's transfers and the upload/file UI. Issue 8 moves them out of the
  // first load (lazy), which should bring this back down.
  "panel.js": 50 * 1024,
};

await Promise.all([
  build({
    ...common,
    entryPoints: ["widget/src/loader.ts"],
    outfile: join(out, "widget.js"),
    format: "iife",
    target: "es2019",
  }),
  build({
    ...common,
    entryPoints: ["widget/src/panel.ts"],
    outfile: join(out, "panel.js"),
    format: "iife",
    target: "es2020",
  }),
  // "Your data" (lethe.privacy.v1) is its own bundle, loaded by the panel on
  // first use: the privacy client stays out of the panel's first load.
  build({
    ...common,
    entryPoints: ["widget/src/panel-data.ts"],
    outfile: join(out, "panel-data.js"),
    format: "iife",
    target: "es2020",
  }),
  build({ ...common, entryPoints: ["widget/src/panel.css"], outfile: join(out, "panel.css"), target: ["chrome90", "firefox90", "safari14"] }),
  build({
    ...common,
    entryPoints: ["console/src/console.ts"],
    outfile: join(out, "console.js"),
    format: "iife",
    target: "es2020",
  }),
  build({ ...common, entryPoints: ["console/src/console.css"], outfile: join(out, "console.css"), target: ["chrome90", "firefox90", "safari14"] }),
  build({
    ...common,
    entryPoints: ["sdk/ts/src/integrator.ts"],
    outfile: join(sdkDist, "integrator.mjs"),
    format: "esm",
    platform: "node",
    target: "node20",
    banner: { js: "// @lethe/sdk integrator API for Node 20+. Built by scripts/build.mjs from sdk/ts/src/integrator.ts: do not edit." },
  }),
]);

// Sizes: raw, gzip -9 and brotli (quality 11), as a server or CDN would
// pre-compress them. The table in BENCHMARKS.md is written from these
// figures, so it cannot drift from the committed bundles.
const what = {
  "widget.js": "loader on the host page",
  "panel.js": "chat panel in the iframe",
  "panel-data.js": "\"Your data\" in the panel, loaded on first use",
  "panel.css": "chat panel styles",
  "console.js": "operator console",
  "console.css": "operator console styles",
};
const fmt = (n) => n.toLocaleString("en-US") + " B";
let over = false;
const rows = [];
for (const name of Object.keys(what)) {
  const buf = await readFile(join(out, name));
  const gz = gzipSync(buf, { level: 9 }).length;
  const br = brotliCompressSync(buf, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }).length;
  const budget = budgets[name];
  const note = budget ? ` (budget ${(budget / 1024).toFixed(0)} KB gz${gz > budget ? ", OVER" : ""})` : "";
  if (budget && gz > budget) over = true;
  console.log(`${name.padEnd(12)} ${String(buf.length).padStart(7)} B raw  ${String(gz).padStart(6)} B gzip  ${String(br).padStart(6)} B br${note}`);
  rows.push(`| \`${name}\` (${what[name]}) | ${fmt(buf.length)} | ${fmt(gz)} | ${fmt(br)} | ${budget ? (budget / 1024).toFixed(0) + " KB gzip" : ""} |`);
}
const begin = "<!-- bundle-sizes:begin (written by scripts/build.mjs from the built bundles; do not edit) -->";
const end = "<!-- bundle-sizes:end -->";
const table = ["| bundle | raw | gzip -9 | brotli 11 | budget |", "|---|---|---|---|---|", ...rows].join("\n");
const benchPath = join(root, "BENCHMARKS.md");
const bench = await readFile(benchPath, "utf8");
const i = bench.indexOf(begin);
const j = bench.indexOf(end);
if (i < 0 || j < i) {
  console.error(`BENCHMARKS.md lacks the markers ${begin} … ${end}`);
  process.exit(1);
}
const next = bench.slice(0, i + begin.length) + "\n" + table + "\n" + bench.slice(j);
if (next !== bench) await writeFile(benchPath, next);
if (over) {
  console.error("bundle over budget");
  process.exit(1);
}
