// Storage administration: import, migrate (dry run, bounded, idempotent), rollback, GC, report,
// and the CLI in scripts/storage.mjs driving a real listening worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startWorker, expectError, listKeys, ROOT, API_TOKEN, at, HOUR, consistency } from "./helpers/worker.mjs";
import { sha256, ok, json, text, tick } from "./helpers/files.mjs";

let w;
before(async () => {
  // The legacy app's sizes straddle the thresholds these tests were written against; the
  // default tiers are checked in files.test.mjs and measured in files-savings.test.mjs.
  w = await startWorker({ bindings: { HYBRID_MAX_BYTES: "10240" } });
});
after(() => w?.dispose());


/** Every content-bearing row of an app, as D1 holds it. */
async function rows(app) {
  const { results: files } = await w.db
    .prepare("SELECT path, storage_location, r2_key, length(content) AS inline_len FROM app_files WHERE app_id = ?1 ORDER BY path")
    .bind(app)
    .all();
  const { results: lines } = await w.db
    .prepare(
      "SELECT version_number, path, storage_location, r2_key, length(content) AS inline_len FROM app_version_files WHERE app_id = ?1 ORDER BY version_number, path",
    )
    .bind(app)
    .all();
  return { files, lines };
}

const SIZES = [100, 1024, 1025, 4000, 10240, 10241, 30000, 60000];
function legacyApp(app) {
  const files = SIZES.map((n, i) => ({ path: `f/${i}-${n}.txt`, content: text(n, `${app}-${n}`) }));
  files.push({ path: "bin/blob.bin", content: randomBytes(20000).toString("base64"), encoding: "base64", is_entry_point: 0 });
  return {
    app,
    app_files: files,
    app_versions: [
      { version_number: 1, changelog: "old one", environment: "production", created_at: "2024-01-02T03:04:05Z", files: files.slice(0, 3) },
      { version_number: 2, changelog: "old two", created_at: 1704200000000, files: [...files.slice(1, 3), { path: "f/extra.txt", content: text(15000, "extra") }] },
    ],
  };
}

test("import brings an old-schema app in inline; a re-run changes nothing", async () => {
  const data = legacyApp("legacy");
  const r = await ok(await w.api("/api/admin/storage/import", json("POST", data)));
  assert.equal(r.files_written, 9);
  assert.deepEqual(r.versions_created, [1, 2]);
  const { files, lines } = await rows("legacy");
  assert.equal(files.length, 9);
  assert.ok(files.every((f) => f.storage_location === "database" && f.r2_key === null));
  assert.ok(lines.filter((l) => l.storage_location).every((l) => l.storage_location === "database"));
  const v2 = await ok(await w.api("/api/apps/legacy/versions/2"));
  assert.deepEqual(
    v2.files.map((f) => [f.path, f.action]),
    [["f/0-100.txt", "deleted"], ["f/1-1024.txt", "unchanged"], ["f/2-1025.txt", "unchanged"], ["f/extra.txt", "created"]],
  );
  assert.equal(v2.created_at, "2024-01-02T12:53:20.000Z");
  const bin = await w.api("/api/apps/legacy/files/bin/blob.bin");
  assert.equal(sha256(Buffer.from(await bin.arrayBuffer())), sha256(Buffer.from(data.app_files[8].content, "base64")));

  const again = await ok(await w.api("/api/admin/storage/import", json("POST", data)));
  assert.equal(again.files_written, 0);
  assert.equal(again.files_unchanged, 9);
  assert.deepEqual(again.versions_skipped, [1, 2]);
  await expectError(await w.api("/api/admin/storage/import", json("POST", { app: "x", app_files: [{ path: "../x", content: "" }] })), 400, "invalid_path");
});

test("migrate: a dry run changes nothing, real runs move content in bounded steps, a further run is a no-op, rollback returns it", async () => {
  const app = "legacy";
  const before = await rows(app);
  const report0 = await ok(await w.api(`/api/admin/storage/report?app=${app}`));
  // Above 1024 bytes: 1025, 4000, 10240, 10241, 30000, 60000, blob.bin = 7 files, plus the
  // version lines above the threshold (v1: 1025; v2: 1025, extra).
  assert.equal(report0.migration.pending_files, 10);

  const dry = await ok(await w.api(`/api/admin/storage/migrate?app=${app}&dry_run=true&batch=100`, { method: "POST" }));
  assert.equal(dry.dry_run, true);
  assert.equal(dry.moved.length, 10);
  assert.equal(dry.remaining, 10);
  assert.deepEqual(await rows(app), before);
  assert.deepEqual(await listKeys(w.bucket, `apps/${app}/`), []);

  // Bounded and resumable: three rows per call until done.
  let calls = 0;
  let moved = 0;
  for (;;) {
    const r = await ok(await w.api(`/api/admin/storage/migrate?app=${app}&batch=3`, { method: "POST" }));
    assert.ok(r.processed <= 3);
    assert.deepEqual(r.problems, []);
    moved += r.moved.length;
    calls++;
    if (r.done) break;
    assert.ok(calls < 10, "migration makes progress");
  }
  assert.equal(moved, 10);
  assert.equal(calls, 4);

  const after = await rows(app);
  const where = Object.fromEntries(after.files.map((f) => [f.path, [f.storage_location, f.inline_len !== null]]));
  assert.deepEqual(where, {
    "f/0-100.txt": ["database", true],
    "f/1-1024.txt": ["database", true],
    "f/2-1025.txt": ["hybrid", true],
    "f/3-4000.txt": ["hybrid", true],
    "f/4-10240.txt": ["hybrid", true],
    "f/5-10241.txt": ["r2", false],
    "f/6-30000.txt": ["r2", false],
    "f/7-60000.txt": ["r2", false],
    "bin/blob.bin": ["r2", false],
  });
  const extra = after.lines.find((l) => l.path === "f/extra.txt");
  assert.equal(extra.storage_location, "r2");
  assert.equal(extra.inline_len, null);
  // Every R2 copy exists and hashes right (they are gzip or plain; read through the API).
  for (const f of after.files.filter((f) => f.r2_key)) {
    assert.ok(await w.bucket.head(f.r2_key), f.r2_key);
    const res = await w.api(`/api/apps/${app}/files/${f.path}`);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), f.r2_key.split("/").pop());
  }
  const v2extra = await w.api(`/api/apps/${app}/versions/2/files/f/extra.txt`);
  assert.equal(await v2extra.text(), text(15000, "extra"));

  const noop = await ok(await w.api(`/api/admin/storage/migrate?app=${app}&batch=100`, { method: "POST" }));
  assert.equal(noop.processed, 0);
  assert.deepEqual(noop.moved, []);
  assert.equal(noop.done, true);
  assert.deepEqual(await rows(app), after);

  const report1 = await ok(await w.api(`/api/admin/storage/report?app=${app}`));
  assert.equal(report1.migration.pending_files, 0);
  assert.equal(report1.migration.progress_percent, 100);
  assert.equal(report1.files.r2.files, 4);
  assert.equal(report1.files.hybrid.files, 3);
  assert.equal(report1.files.database.files, 2);
  assert.equal(report1.savings.d1_bytes_avoided, 10241 + 30000 + 60000 + 20000 + 15000);
  assert.ok(report1.savings.compression_bytes > 0);
  assert.ok(Math.abs(report1.cost.estimated_usd_per_month - (report1.r2.stored_bytes / 1e9) * 0.015) < 1e-12);

  // Rollback: everything inline again, same bytes.
  let rb;
  do {
    rb = await ok(await w.api(`/api/admin/storage/rollback?app=${app}&batch=4`, { method: "POST" }));
    assert.deepEqual(rb.problems, []);
  } while (!rb.done);
  const back = await rows(app);
  assert.ok(back.files.every((f) => f.storage_location === "database" && f.r2_key === null && f.inline_len !== null));
  assert.ok(back.lines.filter((l) => l.storage_location).every((l) => l.storage_location === "database"));
  for (const f of back.files) {
    const res = await w.api(`/api/apps/${app}/files/${f.path}`);
    assert.equal(res.headers.get("x-r2d1-source"), "database");
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), (await w.db.prepare("SELECT sha256 FROM app_files WHERE app_id = ?1 AND path = ?2").bind(app, f.path).first()).sha256);
  }
});

test("GC removes only unreferenced objects past the grace period and reports missing ones", async () => {
  const put = (path, body) => w.api(`/api/apps/gcapp/files/${path}`, { method: "PUT", body });
  const kept = text(20000, "kept");
  const versioned = text(20000, "versioned");
  const replaced = text(20000, "replaced");
  await ok(await put("kept.txt", kept), 201);
  await ok(await put("v.txt", versioned), 201);
  await ok(await w.api("/api/apps/gcapp/versions", json("POST", {})), 201);
  await ok(await put("v.txt", text(20000, "versioned-2")), 200); // old bytes live on in version 1
  await ok(await put("r.txt", replaced), 201);
  await ok(await put("r.txt", text(20000, "replaced-2")), 200); // old bytes referenced by nothing
  const orphanBytes = text(20000, "orphan");
  const orphan = `apps/gcapp/blobs/${sha256(orphanBytes)}`;
  await w.bucket.put(orphan, orphanBytes); // an upload whose D1 write never happened
  await w.bucket.put("apps/gcapp/notes/readme", "not ours to collect");
  await tick();

  const gc = (hoursAhead, q = "grace_hours=1") =>
    w.api(`/api/admin/storage/gc?${q}`, { method: "POST", headers: at(Date.now() + hoursAhead * HOUR) });
  // Within the grace nothing is condemned, let alone deleted.
  const fresh = await ok(await gc(0));
  assert.deepEqual(fresh.deleted, []);
  assert.equal(fresh.condemned, 0);
  assert.ok(fresh.kept_in_grace >= 5);
  assert.ok(await w.bucket.head(orphan));

  // Two hours on: the listing pass condemns the unreferenced ones; nothing is deleted yet.
  const first = await ok(await gc(2));
  assert.equal(first.complete, true);
  assert.ok(first.condemned >= 2);
  assert.deepEqual(first.deleted, []);
  assert.ok(await w.bucket.head(orphan));
  const marks = (await w.db.prepare("SELECT key, state FROM gc_marks WHERE key LIKE 'apps/gcapp/%' ORDER BY key").all()).results;
  assert.deepEqual(marks.map((m) => [m.key, m.state]), [orphan, `apps/gcapp/blobs/${sha256(replaced)}`].sort().map((k) => [k, "condemned"]));

  // A later run, past the marks' grace: claimed while still unreferenced, deleted, tombstoned.
  const r = await ok(await gc(4));
  assert.deepEqual(r.deleted.filter((k) => k.startsWith("apps/gcapp/")).sort(), [orphan, `apps/gcapp/blobs/${sha256(replaced)}`].sort());
  assert.equal(await w.bucket.head(orphan), null);
  assert.ok(await w.bucket.head(`apps/gcapp/blobs/${sha256(kept)}`));
  assert.ok(await w.bucket.head(`apps/gcapp/blobs/${sha256(versioned)}`), "kept alive by version 1");
  assert.ok(await w.bucket.head("apps/gcapp/notes/readme"), "not ours: never touched");
  const gone = await w.db.prepare("SELECT COUNT(*) AS n FROM blobs WHERE r2_key = ?1").bind(`apps/gcapp/blobs/${sha256(replaced)}`).first();
  assert.equal(gone.n, 0);
  const tomb = await w.db.prepare("SELECT state, deleted_at FROM gc_marks WHERE key = ?1").bind(orphan).first();
  assert.equal(tomb.state, "deleted");
  assert.equal(await (await w.api("/api/apps/gcapp/versions/1/files/v.txt")).text(), versioned);

  // An object D1 points at disappears: the consistency check reports it; GC deletes nothing referenced.
  await w.bucket.delete(`apps/gcapp/blobs/${sha256(kept)}`);
  const m = await ok(await gc(6));
  assert.ok(!m.deleted.some((k) => k.startsWith("apps/gcapp/")));
  const report = await consistency(w);
  assert.equal(report.totals.rowsWithoutObjects, 1);
  assert.ok(report.sections.find((s) => s.name === "app_blob").examples.includes(`row without object: apps/gcapp/blobs/${sha256(kept)}`));
  // A grace shorter than the floor is refused: it could collect an upload whose commit is in flight.
  await expectError(await gc(0, "grace_hours=-1"), 400, "invalid_field");
  await expectError(await gc(0, "grace_hours=0"), 400, "invalid_field");
  await expectError(await gc(0, "grace_hours=0.5"), 400, "invalid_field");
});

test("a failed write never leaves a D1 row without its R2 object; the orphan object is GC'd", async () => {
  const body = text(20000, "fault-d1");
  const key = `apps/fault/blobs/${sha256(body)}`;
  const count = async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM app_files WHERE app_id = 'fault'").first()).n;
  // D1 fails after R2 was written: no row, an orphan object.
  await expectError(await w.api("/api/apps/fault/files/x.txt", { method: "PUT", body, headers: { "x-r2d1-fault": "d1.batch" } }), 502, "storage_error");
  assert.ok(await w.bucket.head(key));
  assert.equal(await count(), 0);
  // R2 fails: nothing is written anywhere.
  const other = text(20000, "fault-r2");
  await expectError(await w.api("/api/apps/fault/files/y.txt", { method: "PUT", body: other, headers: { "x-r2d1-fault": "r2.put" } }), 502, "storage_error");
  assert.equal(await w.bucket.head(`apps/fault/blobs/${sha256(other)}`), null);
  assert.equal(await count(), 0);
  await tick();
  await ok(await w.api("/api/admin/storage/gc?grace_hours=1", { method: "POST", headers: at(Date.now() + 2 * HOUR) }));
  const r = await ok(await w.api("/api/admin/storage/gc?grace_hours=1", { method: "POST", headers: at(Date.now() + 4 * HOUR) }));
  assert.ok(r.deleted.includes(key));
  // A retry writes both again.
  await ok(await w.api("/api/apps/fault/files/x.txt", { method: "PUT", body }), 201);
  assert.ok(await w.bucket.head(key));
  assert.equal(await (await w.api("/api/apps/fault/files/x.txt")).text(), body);
});

test("GC_GRACE_HOURS below an hour is refused; the cron trigger runs the gc job with the configured grace", async () => {
  const bad = await startWorker({ bindings: { GC_GRACE_HOURS: "0" } });
  try {
    const res = await expectError(await bad.api("/api/apps"), 503, "not_configured");
    assert.match(res.error.message, /GC_GRACE_HOURS/);
  } finally {
    await bad.dispose();
  }
  const cron = await startWorker({ bindings: { GC_GRACE_HOURS: "1" } });
  try {
    const body = text(20000, "cron-kept");
    await ok(await cron.api("/api/apps/cron/files/k.txt", { method: "PUT", body }), 201);
    const orphan = `apps/cron/blobs/${sha256("cron-orphan")}`;
    await cron.bucket.put(orphan, "cron-orphan");
    const worker = await cron.mf.getWorker();
    const result = await worker.scheduled({ cron: "*/15 * * * *" });
    assert.equal(result.outcome, "ok");
    // The cron runs on the wall clock: the orphan is within the grace, so it stays.
    assert.ok(await cron.bucket.head(orphan));
    const jobs = (await ok(await cron.api("/api/admin/jobs"))).jobs;
    const gcJob = jobs.find((j) => j.name === "gc");
    assert.equal(gcJob.runs, 1);
    assert.equal(gcJob.consecutiveFailures, 0);
    assert.equal(gcJob.lastReport.passComplete, true);
    // The same job, run through the API two and four hours on, condemns then deletes it.
    await ok(await cron.api("/api/admin/jobs/gc/run", { method: "POST", headers: at(Date.now() + 2 * HOUR) }));
    assert.ok(await cron.bucket.head(orphan));
    await ok(await cron.api("/api/admin/jobs/gc/run", { method: "POST", headers: at(Date.now() + 4 * HOUR) }));
    assert.equal(await cron.bucket.head(orphan), null);
    assert.ok(await cron.bucket.head(`apps/cron/blobs/${sha256(body)}`));
  } finally {
    await cron.dispose();
  }
});

test("the CLI imports a JSON file and drives migrate until done; re-running is safe", async () => {
  const url = (await w.mf.ready).toString().replace(/\/$/, "");
  const dir = mkdtempSync(join(tmpdir(), "r2d1-cli-"));
  try {
    const file = join(dir, "app.json");
    writeFileSync(file, JSON.stringify(legacyApp("clidemo")));
    const run = (...args) =>
      promisify(execFile)("node", [join(ROOT, "scripts", "storage.mjs"), ...args], { env: { ...process.env, R2D1: url, API_TOKEN } });
    const imported = JSON.parse((await run("import", file, "--chunk", "4")).stdout);
    assert.equal(imported.files_written, 9);
    assert.deepEqual(imported.versions_created, [1, 2]);
    const migrated = await run("migrate", "--app", "clidemo", "--batch", "4");
    const out = JSON.parse(migrated.stdout);
    assert.equal(out.done, true);
    assert.equal(out.moved, 10);
    assert.match(migrated.stderr, /\[#+\] 100% 10\/10 moved/);
    const again = JSON.parse((await run("migrate", "--app", "clidemo")).stdout);
    assert.equal(again.moved, 0);
    assert.equal(again.done, true);
    const reimport = JSON.parse((await run("import", file)).stdout);
    assert.equal(reimport.files_written, 0);
    const report = JSON.parse((await run("report", "--app", "clidemo")).stdout);
    assert.equal(report.migration.pending_files, 0);
    await assert.rejects(run("bogus"), /usage/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
