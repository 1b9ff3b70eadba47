// The storage core (issue 10): the GC race against every writer that reuses an object (file
// PUT, batch, migrate, restore), exercised deterministically with pause points; and each
// defect of issue 10 with the test that failed before its fix.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, listKeys, at, HOUR, consistency, collectGarbage, waitPaused, release } from "./helpers/worker.mjs";
import { sha256, ok, json, big, putFile, postJson } from "./helpers/files.mjs";
import { makeMemory, postMemory, fixture, dbCount } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker({ bindings: { GC_GRACE_HOURS: "1" } });
});
after(() => w?.dispose());

const blob = (app, content) => `apps/${app}/blobs/${sha256(content)}`;
const mark = (key) => w.db.prepare("SELECT state, deleted_at FROM gc_marks WHERE key = ?1").bind(key).first();
const gcAt = (hours, pause) =>
  w.api("/api/admin/storage/gc?grace_hours=1", { method: "POST", headers: { ...at(Date.now() + hours * HOUR), ...(pause ? { "x-r2d1-pause": pause } : {}) } });

/** Leaves `content`'s blob in `app` unreferenced and condemned by a listing pass. */
async function condemnedBlob(app, content) {
  await ok(await putFile(w, app, "seed.txt", content), 201);
  await ok(await putFile(w, app, "seed.txt", big(20_000, `${app}-other`)), 200);
  await ok(await gcAt(2));
  assert.equal((await mark(blob(app, content)))?.state, "condemned", "the listing pass condemned the blob");
}

/**
 * The race, step by step: the writer has put (and found the object already there) and waits
 * before its commit; a sweep claims the object (still unreferenced) and waits before deleting;
 * the writer commits and is fenced; the sweep deletes and tombstones; the writer re-puts its
 * bytes and commits. `writer(pause)` starts the writer's request with those pause points.
 */
async function raceWriterAgainstSweep(key, writer, tag, { commits = 1 } = {}) {
  const points = `store.before_commit@${tag},store.fenced@${tag}`;
  const writing = writer(points);
  await waitPaused(w, `store.before_commit@${tag}`);
  const sweeping = gcAt(4, `gc.after_claim@${tag}`);
  await waitPaused(w, `gc.after_claim@${tag}`);
  assert.equal((await mark(key)).state, "deleting", "the sweep claimed the object the writer is about to reference");
  await release(w, `store.before_commit@${tag}`);
  await waitPaused(w, `store.fenced@${tag}`); // the writer's batch hit the fence: nothing committed
  await release(w, `gc.after_claim@${tag}`);
  const swept = await ok(await sweeping);
  assert.ok(swept.deleted.includes(key), "the sweep deleted it");
  assert.equal(await w.bucket.head(key), null);
  assert.equal((await mark(key)).state, "deleted");
  await release(w, `store.fenced@${tag}`);
  // A writer with more than one commit (migrate: database → hybrid → r2) parks again.
  for (let i = 1; i < commits; i++) {
    await waitPaused(w, `store.before_commit@${tag}`);
    await release(w, `store.before_commit@${tag}`);
  }
  const res = await writing;
  assert.ok(await w.bucket.head(key), "the writer put its bytes back");
  assert.equal(await mark(key), null, "the writer acknowledged the tombstone it repaired");
  const report = await consistency(w, { mode: "bytes" });
  assert.equal(report.totals.rowsWithoutObjects, 0, JSON.stringify(report.sections));
  assert.equal(report.totals.shaMismatches, 0, JSON.stringify(report.sections));
  return res;
}

test("GC vs file PUT reusing a blob: the writer is fenced, re-puts, and its row never names a missing object", async () => {
  const content = big(30_000, "race-put");
  await condemnedBlob("race-put", content);
  const res = await raceWriterAgainstSweep(blob("race-put", content), (pause) => putFile(w, "race-put", "again.txt", content, { "x-r2d1-pause": pause }), "put");
  await ok(res, 201);
  assert.equal(await (await w.api("/api/apps/race-put/files/again.txt")).text(), content);
});

test("GC vs files:batch reusing a blob", async () => {
  const content = big(30_000, "race-batch");
  await condemnedBlob("race-batch", content);
  const res = await raceWriterAgainstSweep(
    blob("race-batch", content),
    (pause) => postJson(w, "/api/apps/race-batch/files:batch", { files: [{ path: "a.txt", content }, { path: "b.txt", content: "small" }] }, { "x-r2d1-pause": pause }),
    "batch",
  );
  await ok(res);
  assert.equal(await (await w.api("/api/apps/race-batch/files/a.txt")).text(), content);
});

test("GC vs migrate reusing a blob", async () => {
  const content = big(12_000, "race-migrate");
  await ok(await postJson(w, "/api/admin/storage/import", { app: "race-migrate", app_files: [{ path: "legacy.txt", content }] }));
  await condemnedBlob("race-migrate", content);
  const key = blob("race-migrate", content);
  const res = await raceWriterAgainstSweep(
    key,
    (pause) => w.api("/api/admin/storage/migrate?app=race-migrate&batch=5", { method: "POST", headers: { "x-r2d1-pause": pause } }),
    "migrate",
    { commits: 2 },
  );
  const r = await ok(res);
  assert.equal(r.moved.length, 1);
  const row = await w.db.prepare("SELECT storage_location, r2_key FROM app_files WHERE app_id = 'race-migrate' AND path = 'legacy.txt'").first();
  assert.deepEqual(row, { storage_location: "r2", r2_key: key });
  assert.equal(await (await w.api("/api/apps/race-migrate/files/legacy.txt")).text(), content);
});

test("GC vs restore: a claim checks references in the same batch, and a restore is fenced while its objects are being deleted", async () => {
  const app = "race-restore";
  const content = big(30_000, app);
  await ok(await putFile(w, app, "f.txt", content), 201);
  await ok(await postJson(w, `/api/apps/${app}/versions`, { changelog: "v1" }), 201);
  await ok(await putFile(w, app, "f.txt", "changed"), 200);
  await ok(await postJson(w, `/api/apps/${app}/versions`, { changelog: "v2" }), 201);
  const key = blob(app, content);
  // Only version 1 references the blob now. Condemn it as an explicit deletion would, while a
  // restore of version 1 waits before its commit; the sweep finds the reference and lets go.
  const restoring = w.api(`/api/apps/${app}/versions/1/restore`, { method: "POST", headers: { "x-r2d1-pause": "store.before_commit@restore" } });
  await waitPaused(w, "store.before_commit@restore");
  await w.db.prepare("INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) VALUES (?1, 'app_blob', 'condemned', 'test', 0, 0)").bind(key).run();
  const swept = await ok(await gcAt(4));
  assert.ok(!swept.deleted.includes(key));
  assert.equal(await mark(key), null, "a referenced object's stale mark is dropped, not claimed");
  await release(w, "store.before_commit@restore");
  await ok(await restoring, 201);
  assert.equal(await (await w.api(`/api/apps/${app}/files/f.txt`)).text(), content);
  // If a sweep had claimed an object the restore names, the restore cannot re-put it (it holds
  // no bytes): it is fenced, changes nothing, and answers a retryable 503.
  await ok(await putFile(w, app, "f.txt", "changed again"), 200);
  await w.db.prepare("INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at, claim, claimed_at) VALUES (?1, 'app_blob', 'deleting', 'test', 0, 0, 'x', ?2)").bind(key, Date.now()).run();
  const fenced = await w.api(`/api/apps/${app}/versions/1/restore`, { method: "POST" });
  await expectError(fenced, 503, "storage_busy");
  assert.equal(fenced.headers.get("retry-after"), "1");
  assert.equal(await (await w.api(`/api/apps/${app}/files/f.txt`)).text(), "changed again", "nothing half-restored");
  await w.db.prepare("DELETE FROM gc_marks WHERE key = ?1").bind(key).run();
  await ok(await w.api(`/api/apps/${app}/versions/1/restore`, { method: "POST" }), 201);
});

test("a listing pass never condemns what is referenced, recent, or not ours; a grace below an hour is refused", async () => {
  const app = "listing";
  const content = big(30_000, app);
  await ok(await putFile(w, app, "kept.txt", content), 201);
  await w.bucket.put(`apps/${app}/blobs/not-a-hash`, "someone else's");
  await w.bucket.put(`apps/${app}/blobs/${sha256("foreign")}`, "foreign", { customMetadata: { "r2d1-writer": "someone-else" } });
  await ok(await gcAt(2));
  assert.equal(await mark(blob(app, content)), null);
  assert.equal(await mark(`apps/${app}/blobs/not-a-hash`), null);
  await ok(await gcAt(4));
  assert.equal(await mark(`apps/${app}/blobs/${sha256("foreign")}`), null, "another writer's object, whatever its key");
  assert.ok(await w.bucket.head(`apps/${app}/blobs/${sha256("foreign")}`));
  assert.ok(await w.bucket.head(`apps/${app}/blobs/not-a-hash`));
  assert.ok(await w.bucket.head(blob(app, content)));
  await expectError(await w.api("/api/admin/storage/gc?grace_hours=0", { method: "POST" }), 400, "invalid_field");
});

// --- defect 2 -------------------------------------------------------------------------------

test("defect 2: two identical transcript batches in the same millisecond: the second deletes nothing", async () => {
  const body = fixture("realtime_transcript.docs.json");
  const now = Date.now();
  const send = () => postMemory(w, "same-ms", body, { path: "/api/omi/transcript", query: "session_id=s1", headers: at(now) });
  const first = await ok(await send());
  const second = await ok(await send());
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  const keys = await listKeys(w.bucket, "mobil3-mentorships/transcripts/same-ms/");
  assert.equal(keys.length, 1, "the indexed object is still there");
  const t = await ok(await w.api("/api/omi/transcripts/same-ms/s1"));
  assert.equal(t.batches, 1);
  assert.ok(t.segments.length > 0);
});

// --- defect 3 -------------------------------------------------------------------------------

test("defect 3: a delivery id is scoped to mentor and memory", async () => {
  const headers = { "x-omi-delivery": "shared-delivery-1" };
  const a = await ok(await postMemory(w, "deliv-a", makeMemory({ id: "m-a" }), { headers }));
  const b = await ok(await postMemory(w, "deliv-b", makeMemory({ id: "m-b" }), { headers }));
  const c = await ok(await postMemory(w, "deliv-a", makeMemory({ id: "m-c" }), { headers }));
  assert.deepEqual([a.duplicate, b.duplicate, c.duplicate], [false, false, false]);
  assert.match(b.storage.r2Key, /by-user\/deliv-b\//);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id IN ('deliv-a', 'deliv-b')"), 3);
  // the same delivery of the same memory is still a duplicate, even with changed bytes
  const again = await ok(await postMemory(w, "deliv-a", { ...makeMemory({ id: "m-a" }), extra_field: 1 }, { headers }));
  assert.equal(again.duplicate, true);
  assert.equal(again.storage.r2Key, a.storage.r2Key);
});

// --- defect 4 -------------------------------------------------------------------------------

test("defect 4: deleting a mentor removes the all/ copies of reindexed memories too", async () => {
  const uid = "reindexed";
  const m = makeMemory({ id: "old-1" });
  const ts = 1706745600000;
  // written by an earlier r2d1 build (its metadata of the time), whose index was lost: both
  // copies, no rows. (The old app's objects go through the legacy migration instead.)
  const earlier = { customMetadata: { writer: "r2d1" } };
  await w.bucket.put(`mobil3-mentorships/by-user/${uid}/2024/02/old-1-${ts}.json`, JSON.stringify(m), earlier);
  await w.bucket.put(`mobil3-mentorships/all/2024-02-01/${uid}-old-1-${ts}.json`, JSON.stringify(m), earlier);
  const r = await ok(await w.api("/api/omi/reindex?grace_seconds=0&limit=500", { method: "POST" }));
  assert.ok(r.indexed >= 1);
  const v = await w.db.prepare("SELECT daily_key FROM omi_memory_versions WHERE user_id = ?1").bind(uid).first();
  assert.equal(v.daily_key, `mobil3-mentorships/all/2024-02-01/${uid}-old-1-${ts}.json`, "the derived daily key is recorded");
  const del = await ok(await w.api(`/api/omi/users/${uid}`, { method: "DELETE" }));
  assert.equal(del.deletedObjects, 2);
  assert.equal(del.objectsPending, 0);
  const left = (await listKeys(w.bucket, "mobil3-mentorships/")).filter((k) => k.includes(`/${uid}/`) || k.includes(`/${uid}-`));
  assert.deepEqual(left, []);
});

test("defect 4: a failed R2 delete is finished by the GC, and reconciliation never brings the mentor back", async () => {
  const uid = "half-deleted";
  await ok(await postMemory(w, uid, makeMemory({ id: "h1" })));
  await ok(await postMemory(w, uid, makeMemory({ id: "h2" })));
  await ok(await postMemory(w, uid, fixture("day_summary.docs.json"), { path: "/api/omi/day-summary" }));
  const del = await ok(await w.api(`/api/omi/users/${uid}`, { method: "DELETE", headers: { "x-r2d1-fault": "r2.delete" } }));
  assert.equal(del.deletedMemories, 2);
  assert.equal(del.objectsPending, 5);
  const mine = async () => (await listKeys(w.bucket, "mobil3-mentorships/")).filter((k) => k.includes(`/${uid}/`) || k.includes(`/${uid}-`));
  assert.equal((await mine()).length, 5, "the objects are still there");
  // reconciliation walks every prefix and adopts nothing of the deleted mentor
  let cursor;
  do {
    const r = await ok(await w.api("/api/omi/reconcile?grace_seconds=0&limit=500", { method: "POST" }));
    cursor = r.nextCursor;
  } while (cursor);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid), 0);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_day_summaries WHERE user_id = ?", uid), 0);
  // the GC job retries claims older than the grace
  await ok(await w.api("/api/admin/jobs/gc/run", { method: "POST", headers: at(Date.now() + 2 * HOUR) }));
  assert.deepEqual(await mine(), []);
});

test("defect 4: retention covers transcripts and day summaries and does not fall behind above 200 a day", async () => {
  const r = await startWorker({ bindings: { RETENTION_DAYS: "30", GC_GRACE_HOURS: "1" } });
  try {
    const old = Date.now() - 60 * 86_400_000;
    const lines = Array.from({ length: 260 }, (_, i) => JSON.stringify({ ...makeMemory({ id: `ret-${i}`, created_at: new Date(old + i * 1000).toISOString() }), uid: "ret" }));
    // An import stores what one request's operation budget allows and says where to go on.
    let imported = 0;
    for (let body = lines; body.length; ) {
      const res = await ok(await r.api("/api/omi/import", { method: "POST", body: body.join("\n") }));
      imported += res.imported;
      body = res.done ? [] : body.slice(res.nextLine - 1);
    }
    assert.equal(imported, 260);
    await ok(await postMemory(r, "ret", fixture("realtime_transcript.docs.json"), { path: "/api/omi/transcript", headers: at(old) }));
    const summary = JSON.parse(fixture("day_summary.docs.json"));
    summary.summary_json.date = new Date(old).toISOString().slice(0, 10);
    await ok(await postMemory(r, "ret", summary, { path: "/api/omi/day-summary" }));
    await ok(await postMemory(r, "ret", makeMemory({ id: "fresh", created_at: new Date().toISOString() }))); // kept
    const run = await ok(await r.api("/api/admin/jobs/omi.retention/run", { method: "POST" }));
    assert.equal(run.ok, true, JSON.stringify(run));
    assert.equal(run.report.deletedMemories, 260);
    assert.equal(run.report.deletedTranscriptBatches, 1);
    assert.equal(run.report.deletedDaySummaries, 1);
    assert.equal(await dbCount(r, "SELECT COUNT(*) FROM omi_memories"), 1);
    const left = await listKeys(r.bucket, "mobil3-mentorships/");
    assert.equal(left.filter((k) => k.includes("/transcripts/") || k.includes("/day-summaries/")).length, 0);
    assert.equal(left.filter((k) => k.includes("by-user/")).length, 1);
    const report = await consistency(r, { mode: "bytes" });
    assert.equal(report.clean, true, JSON.stringify(report.sections));
  } finally {
    await r.dispose();
  }
});

// --- defect 5 -------------------------------------------------------------------------------

test("defect 5: one object convention with R2 checksums, transcripts included; reads are verified; missing is integrity_error", async () => {
  await ok(await postMemory(w, "conv", fixture("realtime_transcript.docs.json"), { path: "/api/omi/transcript", query: "session_id=c1" }));
  const [tkey] = await listKeys(w.bucket, "mobil3-mentorships/transcripts/conv/");
  const head = await w.bucket.head(tkey);
  assert.ok(head.checksums.sha256, "R2 checksum on transcripts");
  assert.equal(head.customMetadata["r2d1-kind"], "transcript");
  assert.equal(head.customMetadata["r2d1-writer"], "r2d1");
  assert.equal(head.customMetadata["r2d1-encoding"], "identity");
  assert.equal(head.customMetadata["r2d1-sha256"], sha256(fixture("realtime_transcript.docs.json")));
  const mem = await ok(await postMemory(w, "conv", makeMemory({ id: "conv-1" })));
  const mhead = await w.bucket.head(mem.storage.r2Key);
  for (const k of ["userId", "memoryId", "timestamp", "type", "sha256", "r2d1-kind", "r2d1-sha256"]) assert.ok(mhead.customMetadata[k], k);
  assert.equal(mhead.customMetadata["r2d1-kind"], "memory");
  // a damaged transcript batch is never served
  await w.bucket.put(tkey, "[]", { customMetadata: head.customMetadata });
  await expectError(await w.api("/api/omi/transcripts/conv/c1"), 500, "integrity_error");
  // a missing memory is the same error as a damaged one
  await w.bucket.delete(mem.storage.r2Key);
  await expectError(await w.api("/api/omi/logs/conv/conv-1"), 500, "integrity_error");
  // a day summary is verified too
  const ds = await ok(await postMemory(w, "conv", fixture("day_summary.docs.json"), { path: "/api/omi/day-summary" }));
  await w.bucket.put(ds.storage.r2Key, "{}");
  await expectError(await w.api(`/api/omi/day-summaries/conv/${ds.date}`), 500, "integrity_error");
  // and the byte-level check finds all three
  const report = await consistency(w, { mode: "bytes" });
  assert.ok(report.totals.rowsWithoutObjects >= 1);
  assert.ok(report.totals.shaMismatches >= 2);
  // repair for the tests that follow
  await w.db.prepare("DELETE FROM omi_transcript_batches WHERE user_id = 'conv'").run();
  await ok(await w.api("/api/omi/users/conv", { method: "DELETE" }));
});

test("defect 5: imported snapshots carry the hash metadata, and the bytes check reads them", async () => {
  const files = Array.from({ length: 60 }, (_, i) => ({ path: `src/generated/components/deeply/nested/module-${String(i).padStart(3, "0")}.ts`, content: `export const x${i} = ${i};\n` }));
  await ok(await postJson(w, "/api/admin/storage/import", { app: "snapimport", app_files: files, app_versions: [{ version_number: 1, files }] }));
  const row = await w.db.prepare("SELECT snapshot_key, manifest_sha256 FROM app_versions WHERE app_id = 'snapimport'").first();
  assert.ok(row.snapshot_key, "the manifest is large enough for R2");
  const head = await w.bucket.head(row.snapshot_key);
  assert.equal(head.customMetadata["r2d1-sha256"], row.manifest_sha256);
  assert.equal(head.customMetadata["r2d1-kind"], "snapshot");
  assert.ok(head.checksums.sha256);
  const report = await consistency(w, { mode: "bytes" });
  const snapshots = report.sections.find((s) => s.name === "snapshot");
  assert.ok(snapshots.bytesChecked > 0);
  assert.equal(snapshots.shaMismatches, 0);
});

// --- the job runner ---------------------------------------------------------------------------

test("jobs: every registered job is listed with its state; a failed run is recorded; runs are resumable", async () => {
  const list = await ok(await w.api("/api/admin/jobs"));
  assert.deepEqual(list.jobs.map((j) => j.name).sort(), ["access.audit_retention", "consistency", "files.retention", "gc", "omi.analytics", "omi.content_hashes", "omi.reconcile", "omi.retention", "omi.rollups", "storage.census"]);
  const failed = await ok(await w.api("/api/admin/jobs/omi.reconcile/run", { method: "POST", headers: { "x-r2d1-fault": "r2.list" } }));
  assert.equal(failed.ok, false);
  const after = (await ok(await w.api("/api/admin/jobs"))).jobs.find((j) => j.name === "omi.reconcile");
  assert.equal(after.consecutiveFailures, 1);
  assert.match(after.lastError, /injected fault/);
  const good = await ok(await w.api("/api/admin/jobs/omi.reconcile/run", { method: "POST" }));
  assert.equal(good.ok, true);
  const healed = (await ok(await w.api("/api/admin/jobs"))).jobs.find((j) => j.name === "omi.reconcile");
  assert.equal(healed.consecutiveFailures, 0);
  assert.ok(healed.lastSuccessAt);
  await expectError(await w.api("/api/admin/jobs/nope/run", { method: "POST" }), 404, "not_found");
  // test builds show what a request cost, counted per request by the store adapters
  const counted = await w.api("/api/omi/logs?limit=5");
  const counters = Object.fromEntries(counted.headers.get("x-r2d1-counters").split(" ").map((kv) => kv.split("=")));
  assert.equal(counters.route, "/api/omi/logs");
  assert.ok(Number(counters.d1_statements) >= 2);
  assert.equal(counters.r2_operations, "0");
  // the routes table answers 405 with Allow for a known path
  const wrong = await w.api("/api/admin/jobs", { method: "POST" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET");
});

test("at the end, after reconciliation and GC, the whole store is clean byte for byte", async () => {
  // undo the deliberate damage of the tests above, then let the jobs do the rest
  for (const k of await listKeys(w.bucket, "mobil3-mentorships/")) {
    if (k.includes("/conv/") || k.includes("/conv-")) await w.bucket.delete(k);
  }
  let cursor;
  do {
    const r = await ok(await w.api("/api/omi/reconcile?grace_seconds=0&limit=500", { method: "POST" }));
    cursor = r.nextCursor;
  } while (cursor);
  await collectGarbage(w);
  const report = await consistency(w, { mode: "bytes" });
  const t = report.totals;
  assert.deepEqual([t.rowsWithoutObjects, t.shaMismatches, t.orphansOlderThanGrace], [0, 0, 0], JSON.stringify(report.sections));
});
