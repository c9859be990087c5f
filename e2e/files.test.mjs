// End to end, files in a chat: the real binary, Debian's Chromium, a visitor
// in the widget on a customer's website (a cross-origin, sandboxed iframe)
// and the operator in the console. The visitor sends a PNG (thumbnails drawn
// from the bytes on both sides), the operator downloads the very same bytes
// and sends a PDF the visitor downloads; a dropped connection shows Retry and
// resumes; a file over the account's limit gets the server's message; after
// the chat closes a link minted before is dead and no file of the data
// directory holds the files' canaries.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { startShop, launchBrowser, shot, operatorLogin, allBytes, until } from "./harness.mjs";

let lethe;
let browser;
let shop;

before(async () => {
  ({ shop, lethe } = await startShop());
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await lethe?.stop();
  await shop?.close();
});

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** crc32 as PNG chunks need it. */
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * png makes a w×h RGB PNG: the top-left quarter solid red (so a thumbnail's
 * pixels can be checked), the rest noise (so it does not compress and spans
 * several upload chunks), and the canary in a tEXt chunk.
 */
function png(w, h, canary) {
  const noise = randomBytes(w * h * 3);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const red = x < w / 2 && y < h / 2;
      raw[o] = red ? 255 : noise[(y * w + x) * 3];
      raw[o + 1] = red ? 0 : noise[(y * w + x) * 3 + 1];
      raw[o + 2] = red ? 0 : noise[(y * w + x) * 3 + 2];
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("tEXt", Buffer.from(`Comment\0${canary}`, "latin1")),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** pdf is a small one-page PDF holding the canary as its text. */
function pdf(canary) {
  const stream = `BT /F1 18 Tf 40 100 Td (${canary}) Tj ET`;
  const objs = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let out = "%PDF-1.4\n";
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, "latin1");
}

/** The canaries must not be in the data directory, as plaintext, ever. */
function assertNoCanary(dir, canaries, when) {
  const all = allBytes(dir);
  for (const c of canaries) assert.ok(!all.includes(c), `canary ${c} found in the data directory ${when}`);
}

test("files: a PNG and a PDF both ways, identical bytes, limits, retry, and nothing left after close", { timeout: 240_000 }, async () => {
  const opCtx = await browser.newContext();
  const visCtx = await browser.newContext();
  const op = await opCtx.newPage();
  const vis = await visCtx.newPage();
  const failures = [];
  for (const p of [op, vis]) p.on("pageerror", (e) => failures.push(String(e)));

  const pngCanary = `lethe-canary-png-${randomBytes(8).toString("hex")}`;
  const pdfCanary = `lethe-canary-pdf-${randomBytes(8).toString("hex")}`;
  const image = png(400, 400, pngCanary); // ~350 KiB: two upload chunks
  const doc = pdf(pdfCanary);

  await operatorLogin(op, lethe.base);
  await vis.goto(shop.origin);
  await vis.locator("#lethe-launcher").click();
  const panel = vis.frameLocator("#lethe-frame");
  assert.match(await vis.locator("#lethe-frame").getAttribute("sandbox"), /allow-downloads/, "the sandboxed panel may download");
  await panel.getByTestId("name").fill("Fay Files");
  await panel.getByTestId("email").fill("fay@example.com");
  await panel.getByTestId("message").fill("I have a screenshot of the problem");
  await panel.getByTestId("start").click();
  await panel.getByTestId("chat").waitFor();
  await op.getByTestId("queue-item").filter({ hasText: "Fay Files" }).getByTestId("accept").click();
  const view = op.getByTestId("chat-view");
  await view.getByText("I have a screenshot of the problem").waitFor();

  // The visitor attaches the PNG with the paper clip's file input.
  const attach = panel.getByTestId("attach");
  await attach.waitFor();
  assert.equal(await attach.getAttribute("aria-label"), "Attach a file");
  await panel.getByTestId("file-input").setInputFiles({ name: "screen shot.png", mimeType: "image/png", buffer: image });

  // Both sides show the file with a thumbnail drawn from the bytes.
  assert.ok(image.length > 256 * 1024 && image.length < 512 * 1024, `the PNG spans two chunks (${image.length} bytes)`);
  const visRow = panel.getByTestId("file-row").filter({ hasText: "screen shot.png" });
  const opRow = view.getByTestId("file-row").filter({ hasText: "screen shot.png" });
  for (const row of [visRow, opRow]) {
    await row.getByTestId("file-thumb").waitFor();
    const px = await row.getByTestId("file-thumb").evaluate((c) => [c.tagName, c.width, c.height, ...c.getContext("2d").getImageData(3, 3, 1, 1).data]);
    assert.deepEqual(px.slice(0, 3), ["CANVAS", 160, 160], "a canvas scaled to fit");
    assert.deepEqual(px.slice(3), [255, 0, 0, 255], "its top-left pixels are the image's red");
  }
  assert.equal(await panel.getByTestId("upload-progress").count(), 0, "the finished upload's row is gone");
  assertNoCanary(lethe.dataDir, [pngCanary], "while the chat is open (ciphertext only)");
  await shot(vis, "files-01-panel-png");

  // A link minted now (and not used) must be dead after the close.
  const fileId = await opRow.getAttribute("data-file-id");
  const minted = await op.evaluate(async (id) => {
    const r = await fetch("/lethe.files.v1.FileService/CreateDownloadLink", {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify({ fileId: id }),
    });
    return { status: r.status, body: await r.json() };
  }, fileId);
  assert.equal(minted.status, 200, JSON.stringify(minted.body));
  const deadLater = new URL(minted.body.url, lethe.base).toString();

  // The operator downloads it: the bytes are the visitor's.
  const [opDownload] = await Promise.all([op.waitForEvent("download"), opRow.getByTestId("file-download").click()]);
  assert.equal(opDownload.suggestedFilename(), "screen shot.png");
  assert.equal(sha256(readFileSync(await opDownload.path())), sha256(image), "the operator got the PNG's bytes");

  // The operator sends a PDF; the visitor downloads it from the sandboxed panel.
  await view.getByTestId("file-input").setInputFiles({ name: "invoice.pdf", mimeType: "application/pdf", buffer: doc });
  const pdfRow = panel.getByTestId("file-row").filter({ hasText: "invoice.pdf" });
  await pdfRow.waitFor();
  assert.match(await pdfRow.textContent(), /PDF/);
  assert.equal(await pdfRow.getByTestId("file-thumb").count(), 0, "no thumbnail for a PDF");
  const [visDownload] = await Promise.all([vis.waitForEvent("download"), pdfRow.getByTestId("file-download").click()]);
  assert.equal(sha256(readFileSync(await visDownload.path())), sha256(doc), "the visitor got the PDF's bytes");
  await view.getByTestId("file-row").filter({ hasText: "invoice.pdf" }).waitFor();
  await shot(op, "files-02-console");

  // A dropped connection: every chunk fails until the SDK gives up, Retry
  // shows, and after the network is back Retry finishes the same upload.
  let dropping = true;
  const seen = [];
  await visCtx.route("**/lethe.files.v1.FileService/UploadChunk", (route) => {
    seen.push(dropping);
    return dropping ? route.abort("connectionreset") : route.continue();
  });
  const retryImage = png(200, 200, pngCanary);
  await panel.getByTestId("file-input").setInputFiles({ name: "again.png", mimeType: "image/png", buffer: retryImage });
  const retry = panel.getByTestId("upload-retry");
  await retry.waitFor({ timeout: 60_000 });
  assert.match(await panel.getByTestId("file-error").textContent(), /connection dropped/i);
  await shot(vis, "files-03-panel-retry");
  dropping = false;
  await retry.click();
  await panel.getByTestId("file-row").filter({ hasText: "again.png" }).getByTestId("file-thumb").waitFor();
  assert.ok(seen.filter((d) => d).length >= 2, "chunks were dropped and retried");
  await visCtx.unroute("**/lethe.files.v1.FileService/UploadChunk");

  // The admin lowers the largest file to 0.25 MiB in Settings (another tab
  // of the same console session); the panel still holds the old limits, so
  // the server's own refusal is what the visitor reads.
  const admin = await opCtx.newPage();
  admin.on("pageerror", (e) => failures.push(String(e)));
  await admin.goto(`${lethe.base}/console/`);
  await admin.getByTestId("settings-tab").click();
  await admin.locator("fieldset.set-fields:not([disabled])").waitFor();
  assert.equal(await admin.getByTestId("set-files").isChecked(), true, "files are on by default");
  for (const k of ["image", "pdf", "text", "office"]) assert.equal(await admin.getByTestId(`set-cat-${k}`).isChecked(), true, k);
  assert.equal(await admin.getByTestId("set-cat-archive").isChecked(), false);
  await admin.getByTestId("set-max-file").fill("0.25");
  await admin.getByTestId("set-save").click();
  await admin.getByTestId("set-ok").waitFor();
  await admin.reload();
  await admin.getByTestId("settings-tab").click();
  await admin.locator("fieldset.set-fields:not([disabled])").waitFor();
  assert.equal(await admin.getByTestId("set-max-file").inputValue(), "0.25", "the limit was saved");
  await admin.close();

  await panel.getByTestId("file-input").setInputFiles({ name: "big.png", mimeType: "image/png", buffer: image });
  const err = panel.getByTestId("file-error");
  await err.waitFor();
  assert.equal(await err.textContent(), "A file may be at most 256 KiB");
  assert.equal(await panel.getByTestId("upload-retry").isVisible(), false, "no retry for a limit");
  await shot(vis, "files-04-panel-limit");
  await panel.getByTestId("upload-cancel").click();
  assert.equal(await err.count(), 0, "dismissed");

  // Paste into the panel's message box and drop onto the console's chat both send files.
  const txtCanary = `lethe-canary-txt-${randomBytes(8).toString("hex")}`;
  await panel.getByTestId("composer").evaluate((el, text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], "pasted.txt", { type: "text/plain" }));
    el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  }, `pasted ${txtCanary}\n`);
  await view.getByTestId("file-row").filter({ hasText: "pasted.txt" }).waitFor();
  await view.evaluate((el, text) => {
    const dt = new DataTransfer();
    dt.items.add(new File([text], "dropped.txt", { type: "text/plain" }));
    el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, `dropped ${txtCanary}\n`);
  await panel.getByTestId("file-row").filter({ hasText: "dropped.txt" }).waitFor();

  // Close: downloads are off, the link minted before is dead, and nothing
  // of the files is left in the data directory.
  await view.getByTestId("close-chat").click();
  await panel.getByTestId("closed").waitFor();
  assert.equal(await pdfRow.getByTestId("file-download").isDisabled(), true, "the visitor's download button is off");
  const res = await fetch(deadLater);
  assert.equal(res.status, 404, "a link minted before the close answers 404");
  const filesDir = join(lethe.dataDir, "files");
  await until("the chat's ciphertext is gone", () => !existsSync(filesDir) || readdirSync(filesDir).length === 0, 10_000);
  assertNoCanary(lethe.dataDir, [pngCanary, pdfCanary, txtCanary], "after the close");
  await shot(vis, "files-05-panel-closed");

  assert.deepEqual(failures, [], "no page errors");
  await opCtx.close();
  await visCtx.close();
});
