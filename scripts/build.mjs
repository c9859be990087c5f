// Builds the web clients into server/web/static, where the Go server embeds
// them, and the TypeScript SDK's integrator API for Node into
// sdk/ts/dist/integrator.mjs (one self-contained ES module, so the example in
// sdk/ts/examples runs with plain `node`). Output is deterministic (no timestamps, no absolute paths, no legal
// comments), so rebuilding an unchanged tree yields the same bytes and the
// committed bundles can be checked with `git diff --exit-code`.
//
// The chat panel is an ES module with code splitting: panel.js (the entry,
// loaded by `<script type="module">`) and content-hashed chunks under
// static/chunks/, which the server may cache forever. What the panel imports
// statically is its first load; what it imports with import() ("Your data",
// the files UI: uploads and file cards, while the paper clip is drawn at
// once) is loaded on first use and shares the runtime chunks. Every
// file in static/ gets a brotli (quality 11) and a gzip (-9, no name, no
// mtime) twin, `<name>.br` and `<name>.gz`, for the server to send as is.
import { build } from "esbuild";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "server/web/static");
const sdkDist = join(root, "sdk/ts/dist");
await mkdir(out, { recursive: true });
await mkdir(sdkDist, { recursive: true });
// Stale chunks and compressed twins go: what remains is exactly this build's.
await rm(join(out, "chunks"), { recursive: true, force: true });
for (const f of await readdir(out)) if (f.endsWith(".br") || f.endsWith(".gz")) await rm(join(out, f));

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

// Budgets in bytes on the wire: the loader gzipped (what every page of the
// site pays), the panel's first load brotli (entry, the chunks it imports
// statically, and its CSS).
const budgets = {
  loaderGzip: 5 * 1024,
  panelFirstLoadBr: 30 * 1024,
};

const [, panelBuild] = await Promise.all([
  build({
    ...common,
    entryPoints: ["widget/src/loader.ts"],
    outfile: join(out, "widget.js"),
    format: "iife",
    target: "es2019",
  }),
  build({
    ...common,
    entryPoints: { panel: "widget/src/panel.ts" },
    outdir: out,
    format: "esm",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
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

// Pre-compressed twins of every file in static/.
const sizes = new Map();
async function compressAll(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      await compressAll(p);
      continue;
    }
    if (e.name.endsWith(".br") || e.name.endsWith(".gz")) continue;
    const buf = await readFile(p);
    const gz = gzipSync(buf, { level: 9 });
    const br = brotliCompressSync(buf, {
      params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: buf.length },
    });
    await writeFile(p + ".gz", gz);
    await writeFile(p + ".br", br);
    sizes.set(relative(out, p), { raw: buf.length, gz: gz.length, br: br.length });
  }
}
await compressAll(out);

// The panel's first load: the entry and the chunks it imports statically,
// transitively; every other chunk is loaded lazily (import()).
const outputs = panelBuild.metafile.outputs;
const name = (p) => relative(out, join(root, p));
const entry = Object.keys(outputs).find((p) => outputs[p].entryPoint === "widget/src/panel.ts");
const first = new Set();
(function walk(p) {
  if (first.has(p)) return;
  first.add(p);
  for (const i of outputs[p].imports) if (i.kind === "import-statement" && outputs[i.path]) walk(i.path);
})(entry);
const lazy = Object.keys(outputs).filter((p) => p.endsWith(".js") && !first.has(p));
/** what names a chunk by the sources that weigh most in it. */
const what = (p) => {
  const ins = Object.entries(outputs[p].inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput);
  const src = ins.map(([f]) => f);
  if (src.some((f) => f.includes("panel/data.ts"))) return "\"Your data\" view";
  if (src.some((f) => f.includes("ui/files.ts"))) return "files UI (uploads, file cards): at the paper clip's first click or a chat's first file";
  if (src.some((f) => f.includes("@bufbuild/protobuf"))) return "connect + protobuf runtime, shared";
  return "shared helpers: " + src.slice(0, 2).map((f) => f.replace(/^.*\//, "")).join(", ");
};

// Sizes: raw, gzip -9 and brotli (quality 11), as the server sends them.
// The table in BENCHMARKS.md is written from these figures, so it cannot
// drift from the committed bundles. Chunk names carry a hash; the table
// shows them without it, so it changes only when sizes do.
const fmt = (n) => n.toLocaleString("en-US") + " B";
const rows = [];
const row = (label, z, budget = "") => rows.push(`| ${label} | ${fmt(z.raw)} | ${fmt(z.gz)} | ${fmt(z.br)} | ${budget} |`);
const sum = (files) => files.reduce((a, f) => { const z = sizes.get(f); return { raw: a.raw + z.raw, gz: a.gz + z.gz, br: a.br + z.br }; }, { raw: 0, gz: 0, br: 0 });
const unhash = (f) => f.replace(/-[A-Z0-9]{8}\.js$/, ".js");
let over = false;

const loader = sizes.get("widget.js");
if (loader.gz > budgets.loaderGzip) over = true;
row("`widget.js` (loader on the host page, every page)", loader, `${budgets.loaderGzip / 1024} KB gzip${loader.gz > budgets.loaderGzip ? ", OVER" : ""}`);
const firstFiles = [...[...first].map(name), "panel.css"];
for (const f of firstFiles) row(`\`${unhash(f)}\` (panel, first load${f.startsWith("chunks/") ? ": " + what(join(relative(root, out), f)) : ""})`, sizes.get(f));
const firstLoad = sum(firstFiles);
if (firstLoad.br > budgets.panelFirstLoadBr) over = true;
row("**panel first load** (the rows above but the loader; the panel HTML is about 0.4 KB more)", firstLoad, `${budgets.panelFirstLoadBr / 1024} KB br${firstLoad.br > budgets.panelFirstLoadBr ? ", OVER" : ""}`);
for (const p of lazy) row(`\`${unhash(name(p))}\` (panel, loaded on first use: ${what(p)})`, sizes.get(name(p)));
row("`console.js` (operator console)", sizes.get("console.js"));
row("`console.css` (operator console styles)", sizes.get("console.css"));
for (const r of rows) console.log(r);

const begin = "<!-- bundle-sizes:begin (written by scripts/build.mjs from the built bundles; do not edit) -->";
const end = "<!-- bundle-sizes:end -->";
const table = ["| file | raw | gzip -9 | brotli 11 | budget |", "|---|---|---|---|---|", ...rows].join("\n");
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
