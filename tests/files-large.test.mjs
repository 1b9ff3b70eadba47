// A version of 300 MB downloads as tar.gz through workerd while the worker's memory stays
// bounded (issue 13): the archive is streamed, never built in memory. The isolate's memory is
// measured through the V8 inspector: the JS heap and ArrayBuffers polled during the download,
// and every WebAssembly memory (the Rust heap, which only grows) before and after.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createGunzip } from "node:zlib";
import { startWorker } from "./helpers/worker.mjs";
import { ok, json } from "./helpers/files.mjs";
import { Inspector } from "./helpers/inspector.mjs";

const MB = 1 << 20;
const FILES = 6;
const FILE_BYTES = 50 * MB;
const APP = "huge";

let w;
let inspector;
before(async () => {
  w = await startWorker({ inspector: true });
  await w.api("/api/health");
  inspector = await Inspector.attach(w.inspectorPort);
});
after(async () => {
  inspector?.close();
  await w?.dispose();
});

/**
 * Seeds the app as the store would have written it: each file an R2 object in the object
 * convention at its content address, the D1 rows naming it. (Through PUT each file would have
 * to fit MAX_BODY_BYTES; the subject here is the download.)
 */
async function seed() {
  const now = Date.now();
  const files = [];
  for (let i = 0; i < FILES; i++) {
    // Incompressible: the worst case for the archive's buffers. (A Uint8Array of its own: the
    // binding's proxy refuses views into a shared Buffer pool.)
    const bytes = new Uint8Array(randomBytes(FILE_BYTES));
    const sha = createHash("sha256").update(bytes).digest("hex");
    const key = `apps/${APP}/blobs/${sha}`;
    await w.bucket.put(key, bytes, {
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: { "r2d1-kind": "app_blob", "r2d1-writer": "r2d1", "r2d1-sha256": sha, "r2d1-encoding": "identity" },
    });
    files.push({ path: `data/part-${i}.bin`, sha, key, size: FILE_BYTES });
  }
  const stmts = [w.db.prepare("INSERT INTO apps (id, created_at, updated_at, revision) VALUES (?1, ?2, ?2, 1)").bind(APP, now)];
  for (const f of files) {
    stmts.push(
      w.db
        .prepare(
          `INSERT INTO app_files (app_id, path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, content, created_at, updated_at)
           VALUES (?1, ?2, 'binary', 'application/octet-stream', ?3, ?4, 0, 'r2', ?5, NULL, ?6, ?6)`,
        )
        .bind(APP, f.path, f.size, f.sha, f.key, now),
      w.db
        .prepare("INSERT INTO blobs (r2_key, app_id, sha256, size_bytes, stored_bytes, content_encoding, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4, NULL, ?5, ?5)")
        .bind(f.key, APP, f.sha, f.size, now),
    );
  }
  await w.db.batch(stmts);
  return files;
}

/** Reads a tar stream entry by entry, hashing each file as it passes (nothing is kept). */
function tarHasher() {
  const entries = [];
  let buf = Buffer.alloc(0);
  let current = null; // { path, left, pad, hash }
  return {
    entries,
    push(chunk) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        if (current) {
          const take = Math.min(current.left, buf.length);
          current.hash.update(buf.subarray(0, take));
          current.left -= take;
          buf = buf.subarray(take);
          if (current.left > 0) return;
          if (buf.length < current.pad) return;
          buf = buf.subarray(current.pad);
          entries.push({ path: current.path, size: current.size, sha: current.hash.digest("hex") });
          current = null;
        }
        if (buf.length < 512) return;
        const header = buf.subarray(0, 512);
        buf = buf.subarray(512);
        if (header.every((b) => b === 0)) continue;
        const size = parseInt(header.subarray(124, 136).toString().replace(/\0.*$/s, "").trim(), 8);
        const path = header.subarray(0, 100).toString().replace(/\0.*$/s, "");
        current = { path, size, left: size, pad: (512 - (size % 512)) % 512, hash: createHash("sha256") };
      }
    },
  };
}

test("a 300 MB version downloads as tar.gz through workerd with the isolate's memory bounded", { timeout: 600_000 }, async () => {
  const files = await seed();
  await ok(await w.api(`/api/apps/${APP}/versions`, json("POST", { changelog: "300 MB" })), 201);
  const wasmBefore = await inspector.wasmMemoryBytes();
  const heapBefore = await inspector.send("Runtime.getHeapUsage");
  const poll = inspector.pollJsMemory();

  const started = performance.now();
  const res = await w.api(`/api/apps/${APP}/versions/1/archive`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/gzip");
  assert.equal(res.headers.get("x-r2d1-export-bytes"), String(FILES * FILE_BYTES));
  const gunzip = createGunzip();
  const tar = tarHasher();
  gunzip.on("data", (c) => tar.push(c));
  const done = new Promise((resolve, reject) => (gunzip.on("end", resolve), gunzip.on("error", reject)));
  let compressed = 0;
  let nextPause = 8 * MB;
  for await (const chunk of res.body) {
    compressed += chunk.length;
    if (!gunzip.write(chunk)) await new Promise((r) => gunzip.once("drain", r));
    // A client that stops reading now and then, as a slow one does: the stream's backpressure
    // leaves the isolate idle, which is when workerd answers the inspector's polls (a download
    // read flat out keeps the isolate busy and may see only a couple of them).
    if (compressed >= nextPause) {
      nextPause += 8 * MB;
      await new Promise((r) => setTimeout(r, 40));
    }
  }
  gunzip.end();
  await done;
  const seconds = (performance.now() - started) / 1000;

  const js = await poll.stop();
  const wasmAfter = await inspector.wasmMemoryBytes();
  const jsPeak = js.peak - (heapBefore.usedSize + (heapBefore.backingStorageSize || 0));
  const wasmGrowth = wasmAfter - wasmBefore;
  console.log(
    `300 MB archive: ${(compressed / MB).toFixed(1)} MB tar.gz in ${seconds.toFixed(1)} s; isolate JS peak +${(jsPeak / MB).toFixed(1)} MB over ${js.polls} polls; wasm memory ${(wasmBefore / MB).toFixed(1)} → ${(wasmAfter / MB).toFixed(1)} MB`,
  );

  assert.deepEqual(
    tar.entries.slice(0, -1).map((e) => [e.path, e.size, e.sha]),
    files.map((f) => [`${APP}-v1/${f.path}`, f.size, f.sha]),
    "every file, whole and intact",
  );
  assert.equal(tar.entries.at(-1).path, `${APP}-v1.sha256`, "then the checksum list");
  assert.ok(compressed > FILES * FILE_BYTES, "incompressible bytes cannot shrink");
  // The inspector answers only while the isolate is idle, so a fast download may be sampled just
  // once or twice (2 in a loaded CI run, hundreds alone); the wasm figure below is exact.
  assert.ok(js.polls >= 1, `the heap was polled during the download (${js.polls} polls)`);
  // Bounded: the whole archive is 300 MB; the isolate never held more than a few MB of it.
  assert.ok(jsPeak < 48 * MB, `JS heap and buffers peaked ${(jsPeak / MB).toFixed(1)} MB above the start`);
  assert.ok(wasmGrowth < 32 * MB, `wasm memory grew ${(wasmGrowth / MB).toFixed(1)} MB`);
  assert.ok(wasmAfter + Math.max(jsPeak, 0) < 128 * MB, "within the isolate's 128 MB");
});
