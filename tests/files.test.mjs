// Versioned app files: tiers, integrity, concurrency, paths, versions, diff, restore, archive.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { startWorker, expectError, listKeys } from "./helpers/worker.mjs";
import { sha256, ok, json, text as textOf } from "./helpers/files.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

/** Exactly `n` bytes of text, different for each `seed`. */
const text = (n, seed) => Buffer.from(textOf(n, seed));
const put = (app, path, body, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { method: "PUT", body, headers });
const get = (app, path, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { headers });
const row = (app, path) =>
  w.db
    .prepare("SELECT storage_location, r2_key, length(content) AS inline_len, sha256, size_bytes FROM app_files WHERE app_id = ?1 AND path = ?2")
    .bind(app, path)
    .first();

test("every route requires the API token", async () => {
  await expectError(await w.fetch("/api/apps/demo/files"), 401, "unauthorized");
  await expectError(await w.fetch("/api/apps/demo/files/a.txt", { method: "PUT", body: "x" }), 401, "unauthorized");
  await expectError(await w.fetch("/api/admin/storage/report"), 401, "unauthorized");
  await expectError(await w.fetch("/api/apps/demo/files", { headers: { authorization: "Bearer wrong" } }), 401, "unauthorized");
});

test("each tier boundary lands where the policy says (the default tiers: 1 KiB inline, 2 KiB hybrid)", async () => {
  const cases = [
    [0, "database"],
    [1023, "database"],
    [1024, "database"],
    [1025, "hybrid"],
    [2047, "hybrid"],
    [2048, "hybrid"],
    [2049, "r2"],
  ];
  for (const [size, location] of cases) {
    const body = text(size, `tier-${size}`);
    const path = `t/${size}.txt`;
    const meta = await ok(await put("tiers", path, body), 201);
    assert.equal(meta.storage_location, location, `size ${size}`);
    assert.equal(meta.size_bytes, size);
    assert.equal(meta.sha256, sha256(body));
    assert.equal(meta.path, path);
    assert.equal(meta.content_type, "text/plain; charset=utf-8");
    assert.ok(Date.parse(meta.updated_at));

    const r = await row("tiers", path);
    assert.equal(r.storage_location, location);
    const key = `apps/tiers/blobs/${sha256(body)}`;
    const object = await w.bucket.head(key);
    if (location === "database") {
      assert.equal(r.inline_len, size);
      assert.equal(r.r2_key, null);
      assert.equal(object, null, `no R2 object for ${size}`);
    } else {
      assert.equal(r.r2_key, key);
      assert.equal(r.inline_len, location === "hybrid" ? size : null);
      assert.ok(object, `R2 object for ${size}`);
      assert.ok(object.checksums.sha256, "R2 checksum is set");
    }
    const res = await get("tiers", path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("etag"), `"${sha256(body)}"`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), body);
  }
});

test("compressible content is gzipped in R2 with the encoding recorded, and served as written", async () => {
  const body = text(50_000, "compress-me");
  await ok(await put("gz", "big.txt", body), 201);
  const key = `apps/gz/blobs/${sha256(body)}`;
  const object = await w.bucket.get(key);
  const stored = Buffer.from(await object.arrayBuffer());
  assert.ok(stored.length < body.length / 10, `stored ${stored.length} bytes`);
  assert.deepEqual(gunzipSync(stored), body);
  assert.equal(object.customMetadata["r2d1-encoding"], "gzip");
  const blob = await w.db.prepare("SELECT content_encoding, stored_bytes, size_bytes FROM blobs WHERE r2_key = ?1").bind(key).first();
  assert.deepEqual(blob, { content_encoding: "gzip", stored_bytes: stored.length, size_bytes: body.length });
  assert.deepEqual(Buffer.from(await (await get("gz", "big.txt")).arrayBuffer()), body);

  const noise = randomBytes(20_000);
  const meta = await ok(await put("gz", "noise.bin", noise), 201);
  const plain = await w.bucket.get(`apps/gz/blobs/${meta.sha256}`);
  assert.equal(plain.customMetadata["r2d1-encoding"], "identity");
  assert.deepEqual(Buffer.from(await plain.arrayBuffer()), noise);
  assert.equal(meta.content_type, "application/octet-stream");
  assert.equal(meta.file_type, "binary");
});

test("identical content is stored once", async () => {
  const body = text(30_000, "shared-bytes");
  await ok(await put("dedupe", "a/one.txt", body), 201);
  await ok(await put("dedupe", "b/two.txt", body), 201);
  await ok(await w.api("/api/apps/dedupe/versions", json("POST", { changelog: "v1" })), 201);
  await ok(await put("dedupe", "c/three.txt", body), 201);
  const keys = await listKeys(w.bucket, "apps/dedupe/blobs/");
  assert.deepEqual(keys, [`apps/dedupe/blobs/${sha256(body)}`]);
  const { results } = await w.db.prepare("SELECT r2_key FROM app_files WHERE app_id = 'dedupe'").all();
  assert.equal(new Set(results.map((r) => r.r2_key)).size, 1);
  const blobs = await w.db.prepare("SELECT COUNT(*) AS n FROM blobs WHERE app_id = 'dedupe'").first();
  assert.equal(blobs.n, 1);
  const refs = await w.db.prepare("SELECT file_refs, version_refs FROM blob_references WHERE app_id = 'dedupe'").first();
  assert.deepEqual(refs, { file_refs: 3, version_refs: 2 });
});

test("create-only puts never overwrite: a second put to an existing key is AlreadyExists", async () => {
  // Something already sits at the content address (here: wrong bytes). The write must not
  // replace it, which the damaged bytes staying put proves; reads then catch the damage.
  const body = text(20_000, "pre-seeded");
  const key = `apps/createonly/blobs/${sha256(body)}`;
  await w.bucket.put(key, "squatter");
  await ok(await put("createonly", "f.txt", body), 201);
  assert.equal(await (await w.bucket.get(key)).text(), "squatter");
});

test("a corrupted R2 object is caught: hybrid serves the D1 copy, R2-only answers 500 integrity_error", async () => {
  const hybrid = text(2_000, "hybrid-victim");
  const r2only = text(15_000, "r2-victim");
  await ok(await put("corrupt", "h.txt", hybrid), 201);
  await ok(await put("corrupt", "r.txt", r2only), 201);
  // Overwrite both objects through the binding, before anything read (and cached) them.
  await w.bucket.put(`apps/corrupt/blobs/${sha256(hybrid)}`, "tampered");
  await w.bucket.put(`apps/corrupt/blobs/${sha256(r2only)}`, text(15_000, "other-bytes").toString());

  const h = await get("corrupt", "h.txt");
  assert.equal(h.status, 200);
  assert.equal(h.headers.get("x-r2d1-source"), "database-fallback");
  assert.deepEqual(Buffer.from(await h.arrayBuffer()), hybrid);

  const r = await get("corrupt", "r.txt");
  const body = await expectError(r, 500, "integrity_error");
  assert.ok(!JSON.stringify(body).includes("other-bytes"));
});

test("ETag is the sha256 and If-None-Match answers 304", async () => {
  const body = text(2000, "etag");
  const meta = await ok(await put("etag", "e.txt", body), 201);
  const res = await get("etag", "e.txt", { "if-none-match": `"${meta.sha256}"` });
  assert.equal(res.status, 304);
  assert.equal(res.headers.get("etag"), `"${meta.sha256}"`);
  const other = await get("etag", "e.txt", { "if-none-match": `"${"0".repeat(64)}"` });
  assert.equal(other.status, 200);
  assert.equal(other.headers.get("x-r2d1-source"), "r2");
  await other.arrayBuffer();
  // Verified bytes are cached under their sha256: the next read does not touch R2.
  const cached = await get("etag", "e.txt");
  assert.equal(cached.headers.get("x-r2d1-source"), "cache");
  assert.deepEqual(Buffer.from(await cached.arrayBuffer()), text(2000, "etag"));
  // A second read of R2 content is still byte-exact (from the cache or R2, never stale).
  await ok(await put("etag", "e.txt", text(2000, "etag-2")), 200);
  assert.deepEqual(Buffer.from(await (await get("etag", "e.txt")).arrayBuffer()), text(2000, "etag-2"));
});

test("path attacks are rejected with 400 and store nothing", async () => {
  const attacks = ["..%2Fescape.txt", "a%2F..%2F..%2Fb", "%2e%2e%2Fx", "a%00b", "a//b", "/etc/passwd", "a/", "dir%5C..%5Cx", "%FF%FE", "x%2"];
  for (const p of attacks) {
    await expectError(await put("attack", p, "x"), 400, "invalid_path");
  }
  await expectError(await put("attack", "a".repeat(1025), "x"), 400, "invalid_path");
  await ok(await put("attack", "a".repeat(1024), "ok"), 201);
  for (const p of ["../x", "/abs", "a/../b", "", "a\u0000b", "a\\b", "a//b"]) {
    const res = await w.api("/api/apps/attack/files:batch", json("POST", { files: [{ path: p, content: "x" }] }));
    await expectError(res, 400, "invalid_path");
  }
  await expectError(await put("bad app!", "x.txt", "x"), 400, "invalid_field");
  const { results } = await w.db.prepare("SELECT path FROM app_files WHERE app_id = 'attack'").all();
  assert.deepEqual(results.map((r) => r.path), ["a".repeat(1024)]);
});

test("paths are normalised: ./ segments vanish and encoded characters are decoded", async () => {
  const meta = await ok(await put("norm", "./dir/./a%20b.txt", "hello"), 201);
  assert.equal(meta.path, "dir/a b.txt");
  assert.equal(await (await get("norm", "dir/a%20b.txt")).text(), "hello");
});

test("concurrent writes to one file resolve with If-Match: one wins, the other gets 412", async () => {
  const first = await ok(await put("race", "f.txt", "v0"), 201);
  const [a, b] = await Promise.all([
    put("race", "f.txt", "from-a", { "if-match": `"${first.sha256}"` }),
    put("race", "f.txt", "from-b", { "if-match": `"${first.sha256}"` }),
  ]);
  const statuses = [a.status, b.status].sort();
  assert.deepEqual(statuses, [200, 412]);
  const winner = a.status === 200 ? "from-a" : "from-b";
  const loser = a.status === 200 ? b : a;
  await expectError(loser, 412, "precondition_failed");
  await (a.status === 200 ? a : b).json();
  assert.equal(await (await get("race", "f.txt")).text(), winner);
  // A stale If-Match, If-Match on a missing file, If-None-Match: * on an existing one: all 412.
  await expectError(await put("race", "f.txt", "late", { "if-match": first.sha256 }), 412, "precondition_failed");
  await expectError(await put("race", "nope.txt", "x", { "if-match": first.sha256 }), 412, "precondition_failed");
  await expectError(await put("race", "f.txt", "x", { "if-none-match": "*" }), 412, "precondition_failed");
  assert.equal(await (await get("race", "f.txt")).text(), winner);
  // DELETE honours If-Match too.
  await expectError(await w.api("/api/apps/race/files/f.txt", { method: "DELETE", headers: { "if-match": first.sha256 } }), 412);
  assert.equal((await w.api("/api/apps/race/files/f.txt", { method: "DELETE", headers: { "if-match": sha256(winner) } })).status, 204);
  await expectError(await get("race", "f.txt"), 404, "not_found");
});

test("files:batch writes atomically and lists with metadata; a bad item writes nothing", async () => {
  const bin = randomBytes(2000);
  const res = await w.api(
    "/api/apps/batch/files:batch",
    json("POST", {
      files: [
        { path: "index.html", content: "<h1>hi</h1>", entry_point: true },
        { path: "img/logo.png", content: bin.toString("base64"), encoding: "base64" },
      ],
    }),
  );
  const body = await ok(res);
  assert.equal(body.files.length, 2);
  const list = await ok(await w.api("/api/apps/batch/files"));
  assert.deepEqual(list.files.map((f) => f.path), ["img/logo.png", "index.html"]);
  const logo = list.files[0];
  assert.equal(logo.storage_location, "hybrid");
  assert.equal(logo.content_type, "image/png");
  assert.equal(list.files[1].is_entry_point, true);
  assert.deepEqual(Buffer.from(await (await get("batch", "img/logo.png")).arrayBuffer()), bin);

  await expectError(
    await w.api("/api/apps/batch/files:batch", json("POST", { files: [{ path: "ok.txt", content: "x" }, { path: "b.bin", content: "!!", encoding: "base64" }] })),
    400,
  );
  const again = await ok(await w.api("/api/apps/batch/files"));
  assert.equal(again.files.length, 2);
});

test("an app can override the storage mode", async () => {
  await ok(await w.api("/api/apps/all-r2", json("PUT", { storage_mode: "r2" })));
  const meta = await ok(await put("all-r2", "tiny.txt", "tiny"), 201);
  assert.equal(meta.storage_location, "r2");
  assert.equal((await row("all-r2", "tiny.txt")).inline_len, null);
  assert.equal(await (await get("all-r2", "tiny.txt")).text(), "tiny");
  await ok(await w.api("/api/apps/all-db", json("PUT", { storage_mode: "database" })));
  assert.equal((await ok(await put("all-db", "big.txt", text(50_000, "db")), 201)).storage_location, "database");
  await expectError(await w.api("/api/apps/all-db", json("PUT", { storage_mode: "tape" })), 400, "invalid_field");
});

// ---------------------------------------------------------------------------------------------
// Versions

/** A tiny tar reader (ustar + GNU long names) for checking archives. */
function untar(buf) {
  const files = new Map();
  let off = 0;
  let longName = null;
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const str = (a, b) => header.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(str(124, 136).trim() || "0", 8);
    const type = String.fromCharCode(header[156]);
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "L") {
      longName = body.toString("utf8").replace(/\0.*$/s, "");
      continue;
    }
    const prefix = str(345, 500);
    const name = longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    longName = null;
    files.set(name, Buffer.from(body));
  }
  return files;
}

test("an 85-file app is snapshotted, modified, diffed, restored byte for byte, and archived", async () => {
  const app = "big85";
  const original = new Map();
  for (let i = 0; i < 85; i++) {
    const size = [10, 900, 2000, 9000, 12000, 40000][i % 6];
    const path = `src/mod${String(i).padStart(2, "0")}/file${i}.${i % 10 === 0 ? "bin" : "txt"}`;
    const content = i % 10 === 0 ? randomBytes(size) : Buffer.from(Array.from({ length: Math.ceil(size / 20) }, (_, l) => `line ${l} of file ${i}\n`).join("").slice(0, size));
    original.set(path, content);
  }
  // Two batches to stay well under a request's size.
  const entries = [...original];
  for (const chunk of [entries.slice(0, 40), entries.slice(40)]) {
    await ok(await w.api(`/api/apps/${app}/files:batch`, json("POST", { files: chunk.map(([path, c]) => ({ path, content: c.toString("base64"), encoding: "base64" })) })));
  }
  const v1 = await ok(await w.api(`/api/apps/${app}/versions`, json("POST", { changelog: "first", environment: "production" })), 201);
  assert.equal(v1.version_number, 1);
  assert.equal(v1.file_count, 85);
  assert.ok(v1.files.every((f) => f.action === "created"));
  // 85 lines do not fit inline: the manifest is in R2.
  const v1row = await w.db.prepare("SELECT storage_strategy, snapshot_key, manifest FROM app_versions WHERE app_id = ?1 AND version_number = 1").bind(app).first();
  assert.equal(v1row.storage_strategy, "r2");
  assert.match(v1row.snapshot_key, new RegExp(`^apps/${app}/snapshots/1-[0-9a-f]{16}\\.json$`));
  assert.equal(v1row.manifest, null);
  const stored = JSON.parse(await (await w.bucket.get(v1row.snapshot_key)).text());
  assert.equal(stored.files.length, 85);

  // Modify: 5 updated, 3 deleted, 2 added.
  const paths = [...original.keys()];
  const updated = paths.slice(1, 6);
  const deleted = paths.slice(20, 23);
  for (const p of updated) await ok(await put(app, p, Buffer.concat([original.get(p), Buffer.from("\nappended line\n")])), 200);
  for (const p of deleted) assert.equal((await w.api(`/api/apps/${app}/files/${p}`, { method: "DELETE" })).status, 204);
  await ok(await put(app, "new/one.txt", "brand new\n"), 201);
  await ok(await put(app, "new/two.txt", text(20_000, "new-two")), 201);
  const v2 = await ok(await w.api(`/api/apps/${app}/versions`, json("POST", { changelog: "second" })), 201);
  assert.equal(v2.version_number, 2);
  const count = (m, a) => m.files.filter((f) => f.action === a).length;
  assert.deepEqual([count(v2, "updated"), count(v2, "deleted"), count(v2, "created"), count(v2, "unchanged")], [5, 3, 2, 77]);
  assert.equal(v2.file_count, 84);

  const listed = await ok(await w.api(`/api/apps/${app}/versions`));
  assert.deepEqual(listed.versions.map((v) => v.version_number), [1, 2]);
  const got = await ok(await w.api(`/api/apps/${app}/versions/2`));
  assert.deepEqual(got, v2);

  // Diff.
  const diff = await ok(await w.api(`/api/apps/${app}/versions/1/diff/2`));
  assert.deepEqual(diff.summary, { added: 2, modified: 5, deleted: 3, unchanged: 77 });
  const mod = diff.files.find((f) => f.path === updated[0]);
  assert.equal(mod.change, "modified");
  assert.match(mod.diff, /^--- a\/src\/mod01\/file1\.txt\n\+\+\+ b\/src\/mod01\/file1\.txt\n/);
  assert.match(mod.diff, /\n\+appended line\n/);
  assert.equal(diff.files.find((f) => f.path === "new/one.txt").diff, "--- /dev/null\n+++ b/new/one.txt\n@@ -0,0 +1 @@\n+brand new\n");
  assert.equal(diff.files.find((f) => f.path === paths[2]).diff === undefined, false);
  assert.equal(diff.files.find((f) => f.path === paths[10]).diff, undefined, "unchanged has no diff");

  // A version's file as it was.
  const old = await w.api(`/api/apps/${app}/versions/1/files/${updated[0]}`);
  assert.deepEqual(Buffer.from(await old.arrayBuffer()), original.get(updated[0]));
  await expectError(await w.api(`/api/apps/${app}/versions/2/files/${deleted[0]}`), 404);
  await expectError(await w.api(`/api/apps/${app}/versions/9`), 404);

  // Restore v1: current files become exactly v1's.
  const v3 = await ok(await w.api(`/api/apps/${app}/versions/1/restore`, { method: "POST" }), 201);
  assert.equal(v3.version_number, 3);
  assert.equal(v3.restored_from, 1);
  assert.deepEqual([count(v3, "restored"), count(v3, "deleted"), count(v3, "unchanged")], [8, 2, 77]);
  const now = await ok(await w.api(`/api/apps/${app}/files`));
  assert.deepEqual(now.files.map((f) => f.path).sort(), [...original.keys()].sort());
  for (const [p, c] of original) {
    const res = await get(app, p);
    assert.equal(res.status, 200, p);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), c, p);
  }
  const { results: lines } = await w.db
    .prepare("SELECT action, COUNT(*) AS n FROM app_version_files WHERE app_id = ?1 AND version_number = 3 GROUP BY action ORDER BY action")
    .bind(app)
    .all();
  assert.deepEqual(lines, [{ action: "deleted", n: 2 }, { action: "restored", n: 8 }, { action: "unchanged", n: 77 }]);
  const diff13 = await ok(await w.api(`/api/apps/${app}/versions/1/diff/3`));
  assert.deepEqual(diff13.summary, { added: 0, modified: 0, deleted: 0, unchanged: 85 });

  // Archive of v2.
  const ar = await w.api(`/api/apps/${app}/versions/2/archive`);
  assert.equal(ar.status, 200);
  assert.equal(ar.headers.get("content-type"), "application/gzip");
  const files = untar(gunzipSync(Buffer.from(await ar.arrayBuffer())));
  assert.equal(files.size, 85);
  // Beside the top directory, the SHA-256 of every file it carries, as sha256sum writes them.
  const sums = files.get(`${app}-v2.sha256`).toString().trim().split("\n");
  assert.equal(sums.length, 84);
  for (const line of sums) {
    const [sha, name] = line.split("  ");
    assert.equal(sha256(files.get(name)), sha, name);
  }
  assert.deepEqual(files.get(`${app}-v2/new/one.txt`), Buffer.from("brand new\n"));
  assert.deepEqual(files.get(`${app}-v2/${paths[0]}`), original.get(paths[0]));
  assert.ok(!files.has(`${app}-v2/${deleted[0]}`));
});

test("a small version keeps its manifest inline, and a damaged R2 manifest is rebuilt from D1", async () => {
  await ok(await put("small", "a.txt", "a"), 201);
  const v1 = await ok(await w.api("/api/apps/small/versions", json("POST", {})), 201);
  const r = await w.db.prepare("SELECT storage_strategy, manifest FROM app_versions WHERE app_id = 'small'").first();
  assert.equal(r.storage_strategy, "inline");
  assert.deepEqual(JSON.parse(r.manifest), v1);

  const { snapshot_key: key } = await w.db.prepare("SELECT snapshot_key FROM app_versions WHERE app_id = 'big85' AND version_number = 1").first();
  await w.bucket.put(key, "{}");
  const res = await w.api("/api/apps/big85/versions/1");
  assert.equal(res.headers.get("x-r2d1-manifest-source"), "rebuilt");
  const m = await ok(res);
  assert.equal(m.files.length, 85);
});

test("a restore refuses content that fails its hash check", async () => {
  const body = text(20_000, "restore-victim");
  await ok(await put("badrestore", "x.txt", body), 201);
  await ok(await w.api("/api/apps/badrestore/versions", json("POST", {})), 201);
  await ok(await put("badrestore", "x.txt", "changed"), 200);
  await w.bucket.put(`apps/badrestore/blobs/${sha256(body)}`, "rot");
  await expectError(await w.api("/api/apps/badrestore/versions/1/restore", { method: "POST" }), 500, "integrity_error");
  assert.equal(await (await get("badrestore", "x.txt")).text(), "changed");
  const n = await w.db.prepare("SELECT COUNT(*) AS n FROM app_versions WHERE app_id = 'badrestore'").first();
  assert.equal(n.n, 1);
});
