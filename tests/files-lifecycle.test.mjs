// App files, issue 13: the rollout by percentage and its rollback switch, deleting versions and
// apps through the GC, retention, tags, quotas, changes since a revision, streamed exports,
// signed URLs and the bounded diff. Everything through HTTP, checked against what R2 and D1 hold.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { startWorker, expectError, listKeys, consistency, collectGarbage, at, HOUR } from "./helpers/worker.mjs";
import { sha256, ok, json, text, rolloutBucket, counters, untar, parseExport, treeSha256 } from "./helpers/files.mjs";
import { Inspector, isolateBusyMs } from "./helpers/inspector.mjs";

const DAY = 86_400_000;

let w;
/** The worker's isolate, for the diff's CPU (helpers/inspector.mjs). */
let inspector;
before(async () => {
  w = await startWorker({ inspector: true });
  inspector = await Inspector.attach(w.inspectorPort);
});
after(async () => {
  inspector?.close();
  await w?.dispose();
});

const put = (app, path, body, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { method: "PUT", body, headers });
const get = (app, path, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { headers });
const version = (app, changelog = "", headers = {}) => w.api(`/api/apps/${app}/versions`, json("POST", { changelog }, headers));
const settings = (app, body, method = "PATCH") => w.api(`/api/apps/${app}`, json(method, body));
const rollout = (body) => w.api("/api/admin/storage/rollout", json("PUT", body));
/** Incompressible bytes: one R2 object each, stored as they are. */
const noise = (n) => randomBytes(n);
const blobKey = (app, body) => `apps/${app}/blobs/${sha256(body)}`;
const rows = async (sql, ...binds) => (await w.db.prepare(sql).bind(...binds).all()).results;

test("rollout: the percentage reaches apps stably as it grows, an override wins, writes follow the cohort, the report counts each state", async () => {
  const apps = Array.from({ length: 40 }, (_, i) => `ro-${i}`);
  for (const a of apps) await ok(await put(a, "seed.txt", "tiny"), 201);
  let reached = new Set();
  for (const percent of [0, 10, 50, 100]) {
    const doc = await ok(await rollout({ r2_percent: percent }));
    assert.equal(doc.r2_percent, percent);
    const now = new Set();
    for (const a of apps) {
      const app = await ok(await w.api(`/api/apps/${a}`));
      const inside = rolloutBucket(a) < percent * 100;
      assert.equal(app.cohort, inside ? "rollout" : "held_back", `${a} at ${percent} %`);
      assert.equal(app.effective_storage_mode, inside ? "hybrid" : "database", `${a} at ${percent} %`);
      assert.equal(app.rollout_bucket, rolloutBucket(a));
      if (inside) now.add(a);
    }
    for (const a of reached) assert.ok(now.has(a), `${a} left the rollout at ${percent} %`);
    reached = now;
  }
  assert.equal(reached.size, apps.length);

  // Writes follow the cohort: held back, a 20 KB file stays inline; reached, it goes to R2.
  await ok(await rollout({ r2_percent: 0 }));
  const big = noise(20_000);
  assert.equal((await ok(await put("ro-0", "big.bin", big), 201)).storage_location, "database");
  assert.equal(await w.bucket.head(blobKey("ro-0", big)), null);
  // An app's own mode wins over the percentage.
  const overridden = await ok(await settings("ro-1", { storage_mode: "r2" }));
  assert.deepEqual([overridden.cohort, overridden.effective_storage_mode], ["override", "r2"]);
  assert.equal((await ok(await put("ro-1", "big.bin", big), 201)).storage_location, "r2");
  await ok(await rollout({ r2_percent: 100 }));
  assert.equal((await ok(await put("ro-2", "big.bin", big), 201)).storage_location, "r2");

  // The report: apps and bytes in each state, as the rows say.
  const { report } = await ok(await w.api("/api/admin/storage/rollout"));
  assert.equal(report.r2_percent, 100);
  const ro = await rows("SELECT a.id, a.storage_mode, COUNT(f.path) AS n, COALESCE(SUM(f.size_bytes), 0) AS b FROM apps a LEFT JOIN app_files f ON f.app_id = a.id GROUP BY a.id");
  const overrides = ro.filter((r) => r.storage_mode);
  assert.equal(report.by_cohort.overridden.apps, overrides.length);
  assert.equal(report.by_cohort.rollout.apps, ro.length - overrides.length);
  assert.equal(report.by_cohort.held_back.apps, 0);
  const bytes = ro.reduce((s, r) => s + r.b, 0);
  assert.equal(report.by_cohort.overridden.bytes + report.by_cohort.rollout.bytes, bytes);
  assert.equal(report.by_location.database.bytes + report.by_location.hybrid.bytes + report.by_location.r2.bytes, bytes);
  assert.equal(report.r2_only_bytes, (await rows("SELECT COALESCE(SUM(size_bytes), 0) AS b FROM app_files WHERE storage_location = 'r2'"))[0].b);

  // Settings are checked; null hands the choice back to the variable.
  await expectError(await rollout({ r2_percent: 101 }), 400, "invalid_field");
  await expectError(await rollout({ rollback: "yes" }), 400, "invalid_field");
  const reset = await ok(await rollout({ r2_percent: null, rollback: null }));
  assert.deepEqual([reset.r2_percent, reset.rollback, reset.settings.length], [100, false, 0]);
  for (const a of apps) await ok(await w.api(`/api/apps/${a}`, { method: "DELETE" }));
});

test("rollback switch: a hybrid file is read from D1 at once (its R2 object deleted), new writes stay inline, the migrator pauses", async () => {
  const body = text(1_500, "hybrid-copy");
  assert.equal((await ok(await put("rb", "h.txt", body), 201)).storage_location, "hybrid");
  const key = blobKey("rb", body);
  await w.bucket.delete(key);

  const on = await ok(await rollout({ rollback: true }));
  assert.equal(on.rollback, true);
  const res = await get("rb", "h.txt");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-r2d1-source"), "database");
  assert.equal(counters(res).r2_operations, 0, "no R2 call at all");
  assert.equal(await res.text(), body);

  // New content that fits a D1 row is written inline only; too big for a row, it still goes to R2.
  const mid = noise(20_000);
  assert.equal((await ok(await put("rb", "mid.bin", mid), 201)).storage_location, "database");
  assert.equal(await w.bucket.head(blobKey("rb", mid)), null);
  assert.equal((await ok(await put("rb", "huge.bin", noise(600_000)), 201)).storage_location, "r2");
  const paused = await ok(await w.api("/api/admin/storage/migrate?app=rb&batch=10", { method: "POST" }));
  assert.equal(paused.paused_by_rollback, true);
  assert.equal(paused.moved.length, 0);
  assert.ok(paused.remaining >= 1);

  // Off again: the migrator takes the inline rows written meanwhile like any others.
  await ok(await rollout({ rollback: null }));
  const moved = await ok(await w.api("/api/admin/storage/migrate?app=rb&batch=10", { method: "POST" }));
  assert.equal(moved.paused_by_rollback, false);
  assert.ok(moved.moved.some((m) => m.path === "mid.bin" && m.to === "r2"), JSON.stringify(moved.moved));
  await ok(await w.api("/api/apps/rb", { method: "DELETE" }));
});

test("deleting a version frees exactly its unshared objects, keeps a clean byte-level report, and never reuses its number", async () => {
  const [a1, a2, a3, s, b] = [noise(9_000), noise(9_100), noise(9_200), noise(9_300), noise(9_400)];
  await ok(await put("dv", "a.bin", a1), 201);
  await ok(await put("dv", "shared.bin", s), 201);
  await ok(await put("dv", "small.txt", "inline"), 201);
  await ok(await version("dv", "v1"), 201);
  await ok(await put("dv", "a.bin", a2), 200);
  await ok(await put("dv", "b.bin", b), 201);
  await ok(await version("dv", "v2"), 201);
  await ok(await put("dv", "a.bin", a3), 200);
  await ok(await w.api("/api/apps/dv/files/b.bin", { method: "DELETE" }), 204);
  await ok(await version("dv", "v3"), 201);

  const stored = async (k) => (await w.bucket.head(k))?.size ?? null;
  const onlyV2 = [blobKey("dv", a2), blobKey("dv", b)];
  const kept = [blobKey("dv", a1), blobKey("dv", a3), blobKey("dv", s)];
  const freedBytes = (await Promise.all(onlyV2.map(stored))).reduce((x, y) => x + y, 0);

  const removed = await ok(await w.api("/api/apps/dv/versions/2", { method: "DELETE" }));
  assert.deepEqual(removed.versions, [2]);
  assert.equal(removed.objects_deleted, 2);
  assert.equal(removed.bytes_freed, freedBytes);
  assert.equal(removed.objects_pending, 0);
  for (const k of onlyV2) assert.equal(await w.bucket.head(k), null, `${k} is gone`);
  for (const k of kept) assert.ok(await w.bucket.head(k), `${k} stays`);
  assert.deepEqual(await rows("SELECT r2_key FROM blobs WHERE r2_key IN (?1, ?2)", ...onlyV2), []);
  assert.deepEqual((await rows("SELECT version_number FROM app_version_files WHERE app_id = 'dv' AND version_number = 2")).length, 0);
  await expectError(await w.api("/api/apps/dv/versions/2"), 404, "not_found");
  await expectError(await w.api("/api/apps/dv/versions/2/restore", { method: "POST" }), 404, "not_found");
  const report = await consistency(w, { mode: "bytes" });
  assert.equal(report.clean, true, JSON.stringify(report.totals));
  // GC has nothing more of this app to free: exactly the unshared bytes went.
  const collected = await collectGarbage(w);
  assert.deepEqual(collected.filter((k) => k.startsWith("apps/dv/")), []);

  // Deleting the newest version: the next one does not take its number.
  await ok(await w.api("/api/apps/dv/versions/3", { method: "DELETE" }));
  assert.equal((await ok(await version("dv", "after"), 201)).version_number, 4);
  assert.deepEqual((await ok(await w.api("/api/apps/dv/versions"))).versions.map((v) => v.version_number), [1, 4]);

  // A tagged version is refused until the tag goes.
  assert.equal((await ok(await w.api("/api/apps/dv/tags/production", json("PUT", { version: 1 })), 201)).change.outcome, "created");
  const refused = await expectError(await w.api("/api/apps/dv/versions/1", { method: "DELETE" }), 409, "conflict");
  assert.match(refused.error.message, /tagged production/);
  await ok(await w.api("/api/apps/dv/tags/production", { method: "DELETE" }), 204);
  await ok(await w.api("/api/apps/dv/versions/1", { method: "DELETE" }));
  await expectError(await w.api("/api/apps/dv/versions/9", { method: "DELETE" }), 404, "not_found");
});

test("version numbers stay exact in D1: an import may name up to 2^53 - 2, then the counter refuses a snapshot with 409 and the app still reads (found by schemathesis)", async () => {
  const top = 2 ** 53 - 2;
  await expectError(
    await w.api("/api/admin/storage/import", json("POST", { app: "vmax", app_files: [{ path: "a.txt", content: "a" }], app_versions: [{ version_number: top + 1, files: [] }] })),
    400,
    "invalid_field",
  );
  await ok(await w.api("/api/admin/storage/import", json("POST", { app: "vmax", app_files: [{ path: "a.txt", content: "a" }], app_versions: [{ version_number: top, files: [] }] })));
  // The counter holds the number after the newest, 2^53 - 1: still an integer D1 hands back.
  const [row] = await rows("SELECT next_version FROM apps WHERE id = 'vmax'");
  assert.equal(row.next_version, top + 1);
  assert.equal((await ok(await w.api("/api/apps/vmax"))).next_version, top + 1);
  await ok(await w.api("/api/apps"));
  await expectError(await version("vmax", "one too many"), 409, "conflict");
  await expectError(await w.api(`/api/apps/vmax/versions/${top}/restore`, { method: "POST" }), 409, "conflict");
  assert.deepEqual((await rows("SELECT version_number FROM app_versions WHERE app_id = 'vmax'")).map((r) => r.version_number), [top]);
  await ok(await w.api("/api/apps/vmax/versions"));
});

test("deleting an app removes every row and object it owns (orphans under its prefix too) and nothing of another app's", async () => {
  // Enough files for a manifest over 4 KiB, which lives in R2 as a snapshot object.
  const files = Array.from({ length: 60 }, (_, i) => ({ path: `src/module-${String(i).padStart(3, "0")}.js`, content: text(300 + i, `m${i}`) }));
  files.push({ path: "assets/big.bin", content: noise(30_000).toString("base64"), encoding: "base64" });
  await ok(await w.api("/api/apps/gone/files:batch", json("POST", { files })));
  await ok(await version("gone", "one"), 201);
  await ok(await w.api("/api/apps/gone/tags/production", json("PUT", { version: 1 })), 201);
  await ok(await put("gone", "assets/big.bin", noise(31_000)), 200);
  await ok(await version("gone", "two"), 201);
  // The same bytes in another app: its own object, untouched by the deletion.
  await ok(await w.api("/api/apps/keep/files:batch", json("POST", { files })));
  // An orphan of ours under the prefix (a write whose D1 batch never happened).
  const orphan = "orphan bytes that no row names";
  await w.bucket.put(blobKey("gone", orphan), orphan, {
    customMetadata: { "r2d1-kind": "app_blob", "r2d1-writer": "r2d1", "r2d1-sha256": sha256(orphan), "r2d1-encoding": "identity" },
  });
  const snapshots = await listKeys(w.bucket, "apps/gone/snapshots/");
  assert.ok(snapshots.length >= 1, "a manifest lives in R2");
  const keepKeys = await listKeys(w.bucket, "apps/keep/");
  assert.ok(keepKeys.length >= 1);

  const removed = await ok(await w.api("/api/apps/gone", { method: "DELETE" }));
  assert.deepEqual(removed.versions, [1, 2]);
  assert.equal(removed.objects_pending, 0);
  assert.equal(removed.objects_deleted, removed.objects_condemned);
  assert.deepEqual(await listKeys(w.bucket, "apps/gone/"), []);
  for (const table of ["app_files", "app_versions", "app_version_files", "app_version_tags", "app_file_changes"]) {
    assert.deepEqual(await rows(`SELECT * FROM ${table} WHERE app_id = 'gone'`), [], table);
  }
  assert.deepEqual(await rows("SELECT * FROM apps WHERE id = 'gone'"), []);
  assert.deepEqual(await rows("SELECT * FROM blobs WHERE app_id = 'gone'"), []);
  assert.deepEqual((await listKeys(w.bucket, "apps/keep/")).sort(), keepKeys.sort());
  const report = await consistency(w, { mode: "bytes" });
  assert.equal(report.clean, true, JSON.stringify(report.totals));
  const collected = await collectGarbage(w);
  assert.deepEqual(collected.filter((k) => k.startsWith("apps/keep/")), []);
  await expectError(await w.api("/api/apps/gone"), 404, "not_found");
  await expectError(await w.api("/api/apps/gone", { method: "DELETE" }), 404, "not_found");
});

test("retention keeps the newest, tagged and recent versions; on demand and as the files.retention job", async () => {
  const t0 = Date.now();
  // Six versions, two days apart, each with a file of its own (an object only it names).
  const own = [];
  for (let i = 0; i < 6; i++) {
    const clock = at(t0 - (10 - 2 * i) * DAY);
    own.push(noise(8_000 + i));
    await ok(await w.api("/api/apps/ret/files/own.bin", { method: "PUT", body: own[i], headers: clock }), [200, 201]);
    await ok(await version("ret", `v${i + 1}`, clock), 201);
  }
  await ok(await w.api("/api/apps/ret/tags/production", json("PUT", { version: 2 })), 201);
  const policy = await ok(await settings("ret", { retention: { keep_last: 2 } }));
  assert.deepEqual(policy.retention, { keep_last: 2, keep_days: null });

  const dry = await ok(await w.api("/api/apps/ret/retention/run?dry_run=true", { method: "POST" }));
  assert.deepEqual(dry.delete, [1, 3, 4]);
  assert.deepEqual(dry.keep, [6, 5, 2]);
  assert.equal((await ok(await w.api("/api/apps/ret/versions"))).versions.length, 6, "a dry run deletes nothing");
  const run = await ok(await w.api("/api/apps/ret/retention/run", { method: "POST" }));
  assert.deepEqual(run.delete, [1, 3, 4]);
  assert.equal(run.removed.objects_deleted, 3);
  assert.deepEqual((await ok(await w.api("/api/apps/ret/versions"))).versions.map((v) => [v.version_number, v.tags]), [
    [2, ["production"]],
    [5, []],
    [6, []],
  ]);
  for (const i of [0, 2, 3]) assert.equal(await w.bucket.head(blobKey("ret", own[i])), null, `v${i + 1}'s object went`);
  for (const i of [1, 4, 5]) assert.ok(await w.bucket.head(blobKey("ret", own[i])), `v${i + 1}'s object stays`);
  assert.equal((await consistency(w, { mode: "bytes" })).clean, true);

  // By age, through the job: three days later, only the newest and the tagged one are left.
  await ok(await settings("ret", { retention: { keep_last: null, keep_days: 1 } }));
  const job = await ok(await w.api("/api/admin/jobs/files.retention/run", { method: "POST", headers: at(t0 + 3 * DAY) }));
  assert.equal(job.ok, true, JSON.stringify(job));
  assert.ok(job.report.versionsDeleted >= 1);
  assert.deepEqual((await ok(await w.api("/api/apps/ret/versions"))).versions.map((v) => v.version_number), [2, 6]);
  await expectError(await settings("ret", { retention: { keep_last: 0 } }), 400, "invalid_field");
});

test("quotas refuse with 413 for bytes and 409 for files and versions, in a JSON error naming the quota", async () => {
  await ok(await put("q", "a.txt", "a".repeat(400)), 201);
  const doc = await ok(await settings("q", { quota: { max_bytes: 1_000, max_files: 2, max_versions: 1 } }));
  assert.deepEqual(doc.quota, { max_bytes: 1_000, max_files: 2, max_versions: 1 });
  assert.deepEqual(doc.usage, { bytes: 400, files: 1, versions: 0 });
  await ok(await put("q", "b.txt", "b".repeat(400)), 201);

  const files = await expectError(await put("q", "c.txt", "c"), 409, "quota_exceeded");
  assert.deepEqual([files.error.quota, files.error.limit, files.error.current, files.error.requested], ["files", 2, 2, 3]);
  const bytes = await expectError(await put("q", "a.txt", "a".repeat(700)), 413, "quota_exceeded");
  assert.deepEqual([bytes.error.quota, bytes.error.limit, bytes.error.current, bytes.error.requested], ["bytes", 1_000, 800, 1_100]);
  assert.match(bytes.error.message, /bytes quota/);
  const batch = await expectError(await w.api("/api/apps/q/files:batch", json("POST", { files: [{ path: "x", content: "1" }, { path: "y", content: "2" }] })), 409, "quota_exceeded");
  assert.equal(batch.error.quota, "files");
  // A batch that swaps one file for another fits.
  await ok(await w.api("/api/apps/q/files:batch", json("POST", { files: [{ path: "c.txt", content: "c" }], delete: ["b.txt"] })));
  await ok(await version("q", "one"), 201);
  const versions = await expectError(await version("q", "two"), 409, "quota_exceeded");
  assert.equal(versions.error.quota, "versions");
  assert.deepEqual(await rows("SELECT COUNT(*) AS n FROM app_versions WHERE app_id = 'q'"), [{ n: 1 }]);

  // Over a lowered quota an app can still shrink.
  await ok(await settings("q", { quota: { max_bytes: 100 } }));
  await ok(await put("q", "a.txt", "a".repeat(50)), 200);
  await expectError(await put("q", "c.txt", "c".repeat(60)), 413, "quota_exceeded");

  // Two writes that each fit alone, at once: the fence in the batch lets exactly one through.
  await ok(await settings("q", { quota: { max_bytes: null, max_files: 3 } }));
  const race = await Promise.all([put("q", "r1.txt", "1"), put("q", "r2.txt", "2")]);
  const statuses = race.map((r) => r.status).sort();
  assert.deepEqual(statuses, [201, 409], "one of the two is refused");
  const loser = race.find((r) => r.status === 409);
  assert.equal((await loser.json()).error.quota, "files");
  assert.deepEqual(await rows("SELECT COUNT(*) AS n FROM app_files WHERE app_id = 'q'"), [{ n: 3 }]);
});

test("changes since a revision: net added, changed and deleted paths, paged by cursor; stale cursors are told to resync", async () => {
  await ok(await put("chg", "a.txt", "a1"), 201);
  await ok(await put("chg", "b.txt", "b1"), 201);
  const first = (await ok(await w.api("/api/apps/chg/changes?since=0"))).result;
  assert.equal(first.status, "changes");
  assert.deepEqual(first.added.map((p) => [p.path, p.sha256]), [["a.txt", sha256("a1")], ["b.txt", sha256("b1")]]);
  const exported = parseExport(await (await w.api("/api/apps/chg/export")).text());
  assert.equal(exported.header.revision, first.revision);

  await ok(await put("chg", "a.txt", "a2"), 200);
  await ok(await w.api("/api/apps/chg/files/b.txt", { method: "DELETE" }), 204);
  await ok(await put("chg", "tmp.txt", "gone soon"), 201);
  await ok(await w.api("/api/apps/chg/files/tmp.txt", { method: "DELETE" }), 204);
  await ok(await w.api("/api/apps/chg/files:batch", json("POST", { files: [{ path: "c.txt", content: "c" }, { path: "d.txt", content: "d" }, { path: "e.txt", content: "e" }] })));
  await ok(await put("chg", "a.txt", "a2"), 200); // same bytes: no change
  const next = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(first.cursor)}`))).result;
  assert.deepEqual(next.changed.map((p) => [p.path, p.sha256]), [["a.txt", sha256("a2")]]);
  assert.deepEqual(next.deleted, ["b.txt"]);
  assert.deepEqual(next.added.map((p) => p.path), ["c.txt", "d.txt", "e.txt"]);
  assert.equal(next.has_more, false);

  // One row a page: the batch's revision is cut inside and continues after its last path.
  const seen = [];
  let cursor = first.cursor;
  for (let i = 0; i < 20; i++) {
    const page = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(cursor)}&limit=1`))).result;
    seen.push(...page.added.map((p) => `+${p.path}`), ...page.changed.map((p) => `~${p.path}`), ...page.deleted.map((p) => `-${p}`));
    cursor = page.cursor;
    if (!page.has_more) break;
  }
  for (const x of ["~a.txt", "-b.txt", "+c.txt", "+d.txt", "+e.txt"]) assert.ok(seen.includes(x), `${x} in ${seen}`);

  // A restore is logged like any change.
  await ok(await version("chg", "now"), 201);
  await ok(await put("chg", "f.txt", "f"), 201);
  const before = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(next.cursor)}`))).result.cursor;
  await ok(await w.api("/api/apps/chg/versions/1/restore", { method: "POST" }), 201);
  const restored = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(before)}`))).result;
  assert.deepEqual(restored.deleted, ["f.txt"]);

  // Stale cursors: from the future, from before a prune, from an app deleted and created again.
  assert.deepEqual((await ok(await w.api("/api/apps/chg/changes?since=999"))).result.status, "resync");
  const pruned = await ok(await w.api("/api/admin/jobs/files.retention/run", { method: "POST", headers: at(Date.now() + 31 * DAY) }));
  assert.equal(pruned.ok, true);
  const old = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(first.cursor)}`))).result;
  assert.deepEqual([old.status, old.reason], ["resync", "pruned"]);
  await ok(await w.api("/api/apps/chg", { method: "DELETE" }));
  await ok(await put("chg", "a.txt", "new life"), 201);
  const recreated = (await ok(await w.api(`/api/apps/chg/changes?since=${encodeURIComponent(restored.cursor)}`))).result;
  assert.deepEqual([recreated.status, recreated.reason], ["resync", "recreated"]);
  await expectError(await w.api("/api/apps/chg/changes?since=x"), 400, "invalid_field");
});

test("export: every file in one streamed call, as NDJSON, tar and tar.gz, of the current files, a version or a tag, with sha256 per file", async () => {
  const files = {
    "index.html": Buffer.from("<h1>hi</h1>\n"),
    "src/hybrid.js": Buffer.from(text(1_800, "hybrid")),
    "src/compressible.css": Buffer.from(text(40_000, "css")),
    "img/noise.bin": noise(50_000),
    "ünïcode/名前.txt": Buffer.from("unicode path"),
    [`deep/${"d".repeat(120)}/long.txt`]: Buffer.from("a path longer than the tar name field"),
    "empty.txt": Buffer.alloc(0),
  };
  for (const [path, body] of Object.entries(files)) {
    await ok(await w.api(`/api/apps/exp/files/${path.split("/").map(encodeURIComponent).join("/")}`, { method: "PUT", body }), 201);
  }
  const locations = new Set((await ok(await w.api("/api/apps/exp/files"))).files.map((f) => f.storage_location));
  assert.deepEqual([...locations].sort(), ["database", "hybrid", "r2"]);
  const paths = Object.keys(files).sort();

  const res = await w.api("/api/apps/exp/export");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  assert.equal(res.headers.get("x-r2d1-export-complete"), "true");
  const nd = parseExport(await res.text());
  assert.equal(nd.header.type, "header");
  assert.equal(nd.header.complete, true);
  assert.equal(nd.header.files, paths.length);
  assert.deepEqual(nd.files.map((f) => f.path), paths);
  for (const f of nd.files) {
    assert.deepEqual(f.bytes, files[f.path], f.path);
    assert.equal(f.sha256, sha256(files[f.path]));
    assert.equal(f.size, files[f.path].length);
  }
  assert.equal(nd.trailer.tree_sha256, treeSha256(nd.files));
  assert.equal(res.headers.get("x-r2d1-tree-sha256"), nd.trailer.tree_sha256);

  for (const format of ["tar", "tar.gz"]) {
    const r = await w.api(`/api/apps/exp/export?format=${format}`);
    assert.equal(r.status, 200);
    const raw = Buffer.from(await r.arrayBuffer());
    const entries = untar(format === "tar" ? raw : gunzipSync(raw));
    assert.deepEqual(entries.map((e) => e.path), [...paths.map((p) => `exp/${p}`), "exp.sha256"], format);
    for (const e of entries.slice(0, -1)) assert.equal(sha256(e.body), sha256(files[e.path.slice(4)]), e.path);
    // The archive's own checksum list, in sha256sum's format.
    assert.equal(entries.at(-1).body.toString(), paths.map((p) => `${sha256(files[p])}  exp/${p}\n`).join(""));
  }

  // A version, by number and by tag; then the files change, the version does not.
  await ok(await version("exp", "v1"), 201);
  await ok(await w.api("/api/apps/exp/tags/production", json("PUT", { version: 1 })), 201);
  await ok(await put("exp", "index.html", "<h1>changed</h1>"), 200);
  for (const v of ["1", "production"]) {
    const r = await w.api(`/api/apps/exp/export?version=${v}`);
    const x = parseExport(await r.text());
    assert.equal(x.header.version, 1);
    assert.deepEqual(x.files.find((f) => f.path === "index.html").bytes, files["index.html"]);
    assert.equal(r.headers.get("x-r2d1-version"), "1");
  }
  const archive = await w.api("/api/apps/exp/versions/1/archive");
  assert.equal(archive.headers.get("content-disposition"), 'attachment; filename="exp-v1.tar.gz"');
  assert.deepEqual(untar(gunzipSync(Buffer.from(await archive.arrayBuffer()))).map((e) => e.path), [...paths.map((p) => `exp-v1/${p}`), "exp-v1.sha256"]);
  await expectError(await w.api("/api/apps/exp/export?format=zip"), 400, "invalid_field");
  await expectError(await w.api("/api/apps/exp/export?version=nope"), 404, "not_found");

  // A missing object aborts the stream: the client never gets a complete answer with wrong bytes.
  await w.bucket.delete(blobKey("exp", files["img/noise.bin"]));
  const broken = await w.api("/api/apps/exp/export?version=1");
  const body = await broken.text().catch(() => null);
  assert.ok(body === null || !body.includes('"type":"trailer"'), "no trailer after a failed file");
  await ok(await w.api("/api/apps/exp", { method: "DELETE" }));
});

test("signed URLs fetch a file, a version's file or an archive without the API key, until they expire or the file changes", async () => {
  await ok(await put("sig", "app.js", "console.log(1)"), 201);
  await ok(await put("sig", "data.bin", noise(12_000)), 201);
  await ok(await version("sig", "v1"), 201);
  await ok(await w.api("/api/apps/sig/tags/preview", json("PUT", { version: 1 })), 201);
  const sign = (body) => w.api("/api/apps/sig/signed-urls", json("POST", body));

  const file = await ok(await sign({ target: "file", path: "app.js", expires_in: 60 }), 201);
  assert.match(file.path, /^\/api\/signed\/apps\/sig\/files\/app\.js\?/);
  const got = await w.fetch(file.path);
  assert.equal(got.status, 200);
  assert.equal(await got.text(), "console.log(1)");
  // Tampered, re-ordered or extended, expired: refused.
  await expectError(await w.fetch(file.path.replace(/sig=([0-9a-f])/, (m, c) => `sig=${c === "0" ? "1" : "0"}`)), 401, "unauthorized");
  await expectError(await w.fetch(`${file.path}&extra=1`), 401, "unauthorized");
  await expectError(await w.fetch(file.path.replace("/app.js?", "/data.bin?")), 401, "unauthorized");
  await expectError(await w.fetch(file.path, { headers: at(Date.now() + 61_000) }), 401, "unauthorized");
  // Pinned to the content: once the file changes the URL opens nothing.
  await ok(await put("sig", "app.js", "console.log(2)"), 200);
  await expectError(await w.fetch(file.path), 401, "unauthorized");

  const vf = await ok(await sign({ target: "version_file", path: "app.js", version: "preview" }), 201);
  assert.match(vf.path, /\/versions\/1\/files\/app\.js\?/);
  assert.equal(await (await w.fetch(vf.path)).text(), "console.log(1)");
  const arch = await ok(await sign({ target: "archive", version: 1, format: "tar" }), 201);
  const a = await w.fetch(arch.path);
  assert.equal(a.status, 200);
  assert.deepEqual(untar(Buffer.from(await a.arrayBuffer())).map((e) => e.path), ["sig-v1/app.js", "sig-v1/data.bin", "sig-v1.sha256"]);
  await expectError(await w.fetch(arch.path.replace("format=tar", "format=tar.gz")), 401, "unauthorized");

  await expectError(await sign({ target: "file", path: "app.js", expires_in: 8 * 86_400 }), 400, "invalid_field");
  await expectError(await sign({ target: "folder" }), 400, "invalid_field");
  await expectError(await w.fetch("/api/apps/sig/signed-urls", json("POST", { target: "file", path: "app.js" })), 401, "unauthorized");
  // An app deleted and created again under the same id: old URLs open nothing of the new one.
  await ok(await w.api("/api/apps/sig", { method: "DELETE" }));
  await ok(await put("sig", "app.js", "console.log(1)"), 201);
  await ok(await version("sig", "v1 again"), 201);
  await expectError(await w.fetch(vf.path), 401, "unauthorized");
  await ok(await w.api("/api/apps/sig", { method: "DELETE" }));
});

test("a diff of two unrelated 256 KB files answers within the CPU budget with a too-large marker", async () => {
  const lines = (seed) => {
    const out = [];
    for (let n = 0; n < 256_000; ) {
      const line = `${seed}-${randomBytes(12).toString("hex")}\n`;
      out.push(line);
      n += line.length;
    }
    return Buffer.from(out.join("")).subarray(0, 256_000);
  };
  await ok(await put("dfx", "big.txt", lines("old")), 201);
  await ok(await put("dfx", "small.txt", "one\ntwo\nthree\n"), 201);
  await ok(await version("dfx", "v1"), 201);
  await ok(await put("dfx", "big.txt", lines("new")), 200);
  await ok(await put("dfx", "small.txt", "one\n2\nthree\n"), 200);
  await ok(await version("dfx", "v2"), 201);
  // The isolate's CPU, measured by V8's sampling profiler: the first call (the diff code's first
  // run: lazy wasm compilation, R2 reads and cache puts) and a second one (cache hits). Both
  // read and hash-check 512 KB; the diff itself stops at its budget. An unbounded diff of these
  // two files (some 17,600 lines, every one different) would take seconds.
  const diff = async () => {
    const started = performance.now();
    const { result, busyMs, samples } = await isolateBusyMs(inspector, async () => ok(await w.api("/api/apps/dfx/versions/1/diff/2")), 100);
    return { d: result, busyMs, samples, ms: performance.now() - started };
  };
  const first = await diff();
  const second = await diff();
  console.log(
    `256 KB diff: isolate busy ${first.busyMs.toFixed(1)} ms first, ${second.busyMs.toFixed(1)} ms second (V8 profiler); ` +
      `${Math.round(first.ms)} / ${Math.round(second.ms)} ms wall; budget work ${first.d.budget.work}`,
  );
  for (const { d, busyMs, samples, ms } of [first, second]) {
    const big = d.files.find((f) => f.path === "big.txt");
    assert.equal(big.change, "modified");
    assert.equal(big.diff, undefined);
    assert.match(big.too_large.message, /^too large to diff/);
    assert.ok(["edits", "work", "lines"].includes(big.too_large.reason), big.too_large.reason);
    const small = d.files.find((f) => f.path === "small.txt");
    assert.match(small.diff, /-two\n\+2\n/);
    assert.ok(d.budget.work <= 500_000, `work ${d.budget.work}`);
    assert.ok(samples > 0, "the profiler saw the request");
    assert.ok(ms < 5_000, `answered in ${Math.round(ms)} ms`);
    // Generous for a loaded 2-core machine (the profiler counts time the OS takes away).
    assert.ok(busyMs < (d === first.d ? 100 : 40), `isolate busy ${busyMs.toFixed(1)} ms`);
  }
});

test("export within a subrequest budget: a prefix of the paths per response, continued with ?after= until complete; no secret, no signed URLs", async () => {
  const small = await startWorker({ bindings: { SUBREQUEST_BUDGET: "10", SIGNED_URL_SECRET: "" } });
  try {
    const bodies = {};
    for (let i = 0; i < 12; i++) {
      bodies[`r2/f${String(i).padStart(2, "0")}.bin`] = noise(6_000 + i);
      bodies[`inline/f${String(i).padStart(2, "0")}.txt`] = Buffer.from(`inline ${i}`);
    }
    const files = Object.entries(bodies).map(([path, b]) => ({ path, content: b.toString("base64"), encoding: "base64" }));
    // The upload itself is not what is measured: a paid plan's operation budget for it.
    await ok(await small.api("/api/apps/budget/files:batch", json("POST", { files }, { "x-r2d1-budget": "1000" })));
    const got = [];
    let after = "";
    let calls = 0;
    for (;;) {
      const res = await small.api(`/api/apps/budget/export${after ? `?after=${encodeURIComponent(after)}` : ""}`);
      assert.equal(res.status, 200);
      assert.ok(Number(res.headers.get("x-r2d1-subrequests")) <= 10);
      const x = parseExport(await res.text());
      assert.ok(x.trailer, "each part is complete in itself");
      got.push(...x.files);
      calls++;
      if (x.header.complete) break;
      assert.equal(res.headers.get("x-r2d1-export-complete"), "false");
      after = x.header.next_after;
      assert.equal(after, x.files[x.files.length - 1].path);
      assert.ok(calls < 10);
    }
    assert.ok(calls >= 2, "the budget split the export");
    assert.deepEqual(got.map((f) => f.path), Object.keys(bodies).sort());
    for (const f of got) assert.deepEqual(f.bytes, bodies[f.path]);
    await expectError(await small.api("/api/apps/budget/signed-urls", json("POST", { target: "file", path: "inline/f00.txt" })), 503, "not_configured");
  } finally {
    await small.dispose();
  }
});
