// Runs the TypeScript unit tests: every *.test.ts under the source folders
// below is bundled on its own by esbuild for Node (ESM, dependencies inlined,
// so workspace packages such as @lethe/sdk resolve as they do in the
// browser bundles) into a temporary folder, and the bundles are run together
// by Node's test runner. Tests use node:test and node:assert/strict and no DOM.
// The root tsconfig is the browser's (no Node types), so a test file starts
// with `/// <reference types="node" />` for `npm run typecheck` to know them.
//
//   node scripts/unit.mjs                     every test file
//   node scripts/unit.mjs inbox visitors      only files whose path contains a word
//   node scripts/unit.mjs -- --test-name-pattern=seq   flags after -- go to node --test
//
// Exits non-zero when a test fails, when a file does not build, and when no
// test file is found (a runner that finds nothing must not look green).
import { build } from "esbuild";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const sourceDirs = ["console/src", "widget/src", "sdk/ts/src", "ui"];
const skipDirs = new Set(["node_modules", "dist", ".git"]);

/** testFiles lists dir's *.test.ts files, recursively, as paths relative to root. */
async function testFiles(dir) {
  let entries;
  try {
    entries = await readdir(join(root, dir), { withFileTypes: true });
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
  const found = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (!skipDirs.has(e.name)) found.push(...(await testFiles(path)));
    } else if (e.isFile() && e.name.endsWith(".test.ts")) {
      found.push(path);
    }
  }
  return found;
}

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const filters = dash < 0 ? argv : argv.slice(0, dash);
const nodeTestArgs = dash < 0 ? [] : argv.slice(dash + 1);

const all = (await Promise.all(sourceDirs.map(testFiles))).flat().sort();
const files = filters.length ? all.filter((f) => filters.some((w) => f.split(sep).join("/").includes(w))) : all;
if (files.length === 0) {
  const where = sourceDirs.join(", ");
  console.error(filters.length ? `unit: no test file under ${where} matches ${filters.join(" ")}` : `unit: no *.test.ts file under ${where}`);
  process.exit(1);
}

const out = await mkdtemp(join(tmpdir(), "lethe-unit-"));
let code;
try {
  code = (await bundle(files, out)) ? await run(files.map((f) => join(out, relative(root, f)).replace(/\.ts$/, ".mjs"))) : 1;
} finally {
  await rm(out, { recursive: true, force: true });
}
process.exit(code);

/** bundle writes one self-contained ES module per test file into out; false if any failed. */
async function bundle(entryPoints, outdir) {
  try {
    await build({
      absWorkingDir: root,
      entryPoints,
      outdir,
      outbase: root,
      outExtension: { ".js": ".mjs" },
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      sourcemap: "inline",
      logLevel: "warning",
      // Some CommonJS dependencies call require() for Node built-ins; an ES
      // module bundle has no require of its own.
      banner: { js: 'import { createRequire as __letheRequire } from "node:module"; const require = __letheRequire(import.meta.url);' },
    });
    return true;
  } catch {
    console.error("unit: test files did not build (esbuild's errors are above)");
    return false;
  }
}

/** run runs the bundles under node --test and resolves with its exit code. */
function run(bundles) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--enable-source-maps", "--test", ...nodeTestArgs, ...bundles], { cwd: root, stdio: "inherit" });
    child.on("exit", (status, signal) => resolve(status ?? (signal ? 1 : 0)));
    child.on("error", (err) => {
      console.error(`unit: cannot run node: ${err.message}`);
      resolve(1);
    });
  });
}
