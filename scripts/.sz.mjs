import { build } from "esbuild";
import { brotliCompressSync, constants as z, gzipSync } from "node:zlib";
const src = process.argv[2];
const r = await build({ stdin: { contents: src, resolveDir: process.cwd() + "/widget/src", loader: "ts" }, bundle: true, minify: true, write: false, format: "esm", target: "es2020", absWorkingDir: process.cwd(), logLevel: "error" });
const b = r.outputFiles[0].contents;
console.log(b.length, "raw", brotliCompressSync(b, { params: { [z.BROTLI_PARAM_QUALITY]: 11 } }).length, "br", gzipSync(b,{level:9}).length, "gz");
