// Builds the web clients into server/web/static, where the Go server embeds
// them, and the TypeScript SDK's integrator API for Node into
// sdk/ts/dist/integrator.mjs (one self-contained ES module, so the example in
// sdk/ts/examples runs with plain `node`). Output is deterministic (no timestamps, no absolute paths, no legal
// comments), so rebuilding an unchanged tree yields the same bytes and the
// committed bundles can be checked with `git diff --exit-code`.
import { build } from "esbuild";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

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
  "panel.js": 45 * 1024,
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

let over = false;
for (const name of ["widget.js", "panel.js", "panel.css", "console.js", "console.css"]) {
  const buf = await readFile(join(out, name));
  const gz = gzipSync(buf, { level: 9 }).length;
  const budget = budgets[name];
  const note = budget ? ` (budget ${(budget / 1024).toFixed(0)} KB gz${gz > budget ? ", OVER" : ""})` : "";
  if (budget && gz > budget) over = true;
  console.log(`${name.padEnd(12)} ${String(buf.length).padStart(7)} B raw  ${String(gz).padStart(6)} B gzip${note}`);
}
if (over) {
  console.error("bundle over budget");
  process.exit(1);
}
