// The JS peer's app-file store (bench/baselines/peer-files.mjs) keeps the guarantees the files
// figure credits it with: r2d1's tiers, content-addressed R2 objects before the D1 rows, hash
// checks on every read and restore, versions with r2d1's actions. Real R2 and D1 in Miniflare.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startTarget, API_TOKEN } from "../lib/workers.mjs";
import { appFiles } from "../lib/files.mjs";
import { fileBody } from "../lib/data.mjs";
import { listKeys } from "../../tests/helpers/worker.mjs";

let peer;
const sha = (s) => createHash("sha256").update(s).digest("hex");
async function api(path, init = {}) {
  const res = await fetch(peer.origin + path, { ...init, headers: { authorization: `Bearer ${API_TOKEN}`, ...(init.headers || {}) } });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, text, body };
}

before(async () => {
  peer = await startTarget("peer");
});
after(async () => {
  await peer?.dispose();
});

test("files land in r2d1's tiers, R2 objects at their content address, and read back intact", async () => {
  const cases = [
    [512, "database", false],
    [1536, "hybrid", true], // between INLINE_MAX_BYTES (1 KiB) and HYBRID_MAX_BYTES (2 KiB), as wrangler.toml sets them
    [51200, "r2", true],
    [1048576, "r2", true],
  ];
  for (const [size, location, inR2] of cases) {
    const content = fileBody(size, `t-${size}`);
    const put = await api(`/api/apps/t1/files/d/f${size}.txt`, { method: "PUT", body: content });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.body.storage_location, location);
    assert.equal(put.body.sha256, sha(content));
    assert.equal((await api(`/api/apps/t1/files/d/f${size}.txt`, { method: "PUT", body: content })).status, 200);
    const row = await peer.db.prepare("SELECT storage_location, r2_key, length(content) AS inline FROM app_files WHERE app_id = 't1' AND path = ?1").bind(`d/f${size}.txt`).first();
    assert.equal(row.storage_location, location);
    assert.equal(row.inline, location === "r2" ? null : size);
    assert.equal(row.r2_key, inR2 ? `apps/t1/blobs/${sha(content)}` : null);
    if (inR2) {
      const obj = await peer.bucket.head(row.r2_key);
      assert.equal(obj.customMetadata["r2d1-sha256"], sha(content));
      assert.equal(obj.customMetadata["r2d1-encoding"], "gzip");
      assert.ok(obj.size < size / 4);
      const blob = await peer.db.prepare("SELECT size_bytes, stored_bytes FROM blobs WHERE r2_key = ?1").bind(row.r2_key).first();
      assert.deepEqual(blob, { size_bytes: size, stored_bytes: obj.size });
    }
    const get = await api(`/api/apps/t1/files/d/f${size}.txt`);
    assert.equal(get.status, 200);
    assert.equal(get.text, content);
  }
});

test("a damaged R2 object is never served", async () => {
  const content = fileBody(20_000, "damaged");
  await api("/api/apps/t2/files/big.txt", { method: "PUT", body: content });
  await peer.bucket.put(`apps/t2/blobs/${sha(content)}`, "not the bytes");
  const get = await api("/api/apps/t2/files/big.txt");
  assert.equal(get.status, 500);
  assert.equal(get.body.error.code, "integrity");
});

test("snapshots record r2d1's actions and a restore brings a version back", async () => {
  const files = appFiles(fileBody, 0);
  assert.equal((await api("/api/apps/t3/files:batch", { method: "POST", body: JSON.stringify({ files }) })).status, 200);
  const v1 = await api("/api/apps/t3/versions", { method: "POST", body: "{}" });
  assert.equal(v1.status, 201, v1.text);
  assert.equal(v1.body.version_number, 1);
  assert.equal(v1.body.file_count, 85);
  const changed = appFiles(fileBody, 1).filter((_, i) => i % 17 === 1);
  for (const f of changed) await api(`/api/apps/t3/files/${f.path}`, { method: "PUT", body: f.content });
  const v2 = await api("/api/apps/t3/versions", { method: "POST", body: JSON.stringify({ changelog: "five edits" }) });
  assert.equal(v2.status, 201, v2.text);
  const actions = (doc) => doc.files.reduce((m, f) => ((m[f.action] = (m[f.action] || 0) + 1), m), {});
  assert.deepEqual(actions(v2.body), { unchanged: 80, updated: 5 });
  const restored = await api("/api/apps/t3/versions/1/restore", { method: "POST", body: "{}" });
  assert.equal(restored.status, 201, restored.text);
  assert.equal(restored.body.restored_from, 1);
  assert.deepEqual(actions(restored.body), { unchanged: 80, restored: 5 });
  const current = await peer.db.prepare("SELECT path, sha256 FROM app_files WHERE app_id = 't3' ORDER BY path").all();
  assert.deepEqual(
    current.results.map((r) => [r.path, r.sha256]),
    [...files].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => [f.path, sha(f.content)]),
  );
  const lines = await peer.db.prepare("SELECT version_number AS v, action, COUNT(*) AS n FROM app_version_files WHERE app_id = 't3' GROUP BY 1, 2 ORDER BY 1, 2").all();
  assert.deepEqual(lines.results, [
    { v: 1, action: "created", n: 85 },
    { v: 2, action: "unchanged", n: 80 },
    { v: 2, action: "updated", n: 5 },
    { v: 3, action: "restored", n: 5 },
    { v: 3, action: "unchanged", n: 80 },
  ]);
  // The manifest of a version this size lives in R2, under its own key.
  assert.ok((await listKeys(peer.bucket, "apps/t3/snapshots/")).includes("apps/t3/snapshots/3.json"));
});
