// What an operator sees: one structured log line per request and per job run (captured from
// workerd's log output), exactly one Analytics Engine data point per request and per job run
// with the documented columns (the METRICS binding wrapped by a recorder in this Miniflare),
// the served contract, and /api/health's alerts (jobs overdue or failing, a consistency walk
// that found problems).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startWorker, ok, json, ray, requestLine, ROOT, API_TOKEN, WEBHOOK_TOKEN, at, HOUR, consistency } from "./helpers/worker.mjs";
import { makeMemory } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker({ recordMetrics: true });
});
after(() => w?.dispose());

const withRay = (id, init = {}) => ({ ...init, headers: { ...(init.headers || {}), "cf-ray": id } });
const points = (id) => w.lines().filter((l) => l.event === "test.metrics" && l.point.blobs.at(9) === id);

/** The data point of request `id`, once it has arrived, and how many there were. */
async function pointOf(id) {
  await w.waitForLine((l) => l.event === "test.metrics" && l.point.blobs.at(9) === id);
  // A second point would arrive with the first (same request, same log stream): give it a beat.
  await new Promise((r) => setTimeout(r, 50));
  return points(id);
}

// The columns, in the order docs/operations.md documents them (src/observe/point.rs).
const BLOBS = ["kind", "method", "route", "error", "uid", "app", "keyPrefix", "access", "colo", "requestId"];
const DOUBLES = ["status", "durationMs", "d1Statements", "d1RowsRead", "d1RowsWritten", "r2Operations", "r2BytesRead", "r2BytesWritten", "otherOperations", "operations", "requestBytes", "d1Calls"];
const named = (p) => ({
  index: p.indexes[0],
  ...Object.fromEntries(BLOBS.map((n, i) => [n, p.blobs[i]])),
  ...Object.fromEntries(DOUBLES.map((n, i) => [n, p.doubles[i]])),
});

test("every request logs one JSON line with its route, status, timing and storage operations, and never a secret", async () => {
  const memory = makeMemory({ id: "obs-1", text: "a confidential transcript sentence" });
  const body = JSON.stringify(memory);
  const hook = ray("hook");
  const res = await w.fetch(`/api/omi/memory?uid=obs-mentor&token=${WEBHOOK_TOKEN}`, withRay(hook, json("POST", memory, { "content-length": String(Buffer.byteLength(body)) })));
  await ok(res);
  const line = await requestLine(w, hook);
  assert.equal(line.method, "POST");
  assert.equal(line.route, "/api/omi/memory");
  assert.equal(line.status, 200);
  assert.equal(line.access, "webhook");
  assert.equal(line.uid, "obs-mentor");
  assert.equal(line.memoryId, "obs-1");
  assert.equal(line.requestBytes, Buffer.byteLength(body));
  assert.ok(Number.isInteger(line.durationMs) && line.durationMs >= 0);
  // A new memory: two R2 writes (the object and its daily copy), D1 reads and one batch.
  assert.equal(line.r2.operations, 2);
  assert.equal(line.r2.bytesWritten, 2 * Buffer.byteLength(body));
  assert.ok(line.d1.statements >= 3 && line.d1.calls >= 2 && line.d1.rowsWritten > 0, JSON.stringify(line.d1));
  assert.equal(line.operations, line.r2.operations + line.d1.statements + line.otherOperations);
  assert.equal(line.budget, 1000);

  const read = ray("read");
  await ok(await w.api("/api/omi/logs/obs-mentor/obs-1", withRay(read)), 200);
  const readLine = await requestLine(w, read);
  assert.deepEqual([readLine.route, readLine.access, readLine.uid, readLine.memoryId], ["/api/omi/logs/{uid}/{memoryId}", "api", "obs-mentor", "obs-1"]);
  assert.equal(readLine.r2.operations, 1);
  assert.equal(readLine.r2.bytesRead, Buffer.byteLength(body));

  // An error names its code; a request that matched no route has no route.
  const missing = ray("404");
  await w.api("/api/omi/logs/obs-mentor/nope", withRay(missing)).then((r) => r.text());
  const missingLine = await requestLine(w, missing);
  assert.deepEqual([missingLine.status, missingLine.error], [404, "not_found"]);
  const nowhere = ray("noroute");
  await w.fetch("/api/no/such/route", withRay(nowhere)).then((r) => r.text());
  const nowhereLine = await requestLine(w, nowhere);
  assert.equal(nowhereLine.route, undefined);
  assert.equal(nowhereLine.status, 404);
  const denied = ray("401");
  await w.fetch("/api/omi/logs?userId=obs-mentor", withRay(denied, { headers: { authorization: "Bearer wrong" } })).then((r) => r.text());
  assert.deepEqual(await requestLine(w, denied).then((l) => [l.status, l.error, l.route]), [401, "unauthorized", "/api/omi/logs"]);

  // Nothing secret or private in any line: no token, no body, no transcript text, no query.
  const text = w.lines().map((l) => JSON.stringify(l)).join("\n");
  for (const secret of [WEBHOOK_TOKEN, API_TOKEN, "confidential transcript", "token=", "Bearer"]) {
    assert.ok(!text.includes(secret), `a log line contains ${secret}`);
  }
});

test("every request writes exactly one data point with the documented columns", async () => {
  const cases = [
    ["GET", "/api/health", {}, "open"],
    ["GET", "/api/openapi.json", {}, "open"],
    ["GET", "/api/omi/logs?userId=obs-mentor&limit=5", { api: true }, "api"],
    ["PUT", "/api/apps/obs-app/files/a.txt", { api: true, body: "hello" }, "api"],
    ["GET", "/api/apps/obs-app/files/missing.txt", { api: true }, "api"],
  ];
  for (const [method, path, opts, access] of cases) {
    const id = ray("point");
    const init = withRay(id, { method, ...(opts.body ? { body: opts.body } : {}) });
    const res = await (opts.api ? w.api(path, init) : w.fetch(path, init));
    await res.arrayBuffer();
    const got = await pointOf(id);
    assert.equal(got.length, 1, `${method} ${path}: ${got.length} data points`);
    const p = got[0].point;
    assert.equal(p.indexes.length, 1);
    assert.equal(p.blobs.length, BLOBS.length, `${method} ${path}: blobs`);
    assert.equal(p.doubles.length, DOUBLES.length, `${method} ${path}: doubles`);
    assert.ok(p.blobs.every((b) => typeof b === "string") && p.doubles.every((d) => typeof d === "number" && Number.isFinite(d)));
    const n = named(p);
    const line = await requestLine(w, id);
    assert.equal(n.kind, "request");
    assert.equal(n.method, method);
    assert.equal(n.route, line.route);
    assert.equal(n.index, `${method} ${line.route}`);
    assert.equal(n.access, access);
    assert.equal(n.status, res.status);
    assert.equal(n.error, line.error ?? "");
    // The point and the line tell the same story.
    assert.deepEqual(
      [n.d1Statements, n.d1RowsRead, n.d1RowsWritten, n.r2Operations, n.r2BytesRead, n.r2BytesWritten, n.otherOperations, n.operations, n.d1Calls],
      [line.d1.statements, line.d1.rowsRead, line.d1.rowsWritten, line.r2.operations, line.r2.bytesRead, line.r2.bytesWritten, line.otherOperations, line.operations, line.d1.calls],
    );
    if (path.startsWith("/api/apps/obs-app")) assert.equal(n.app, "obs-app");
  }
});

test("a job run logs its own line and data point, inside the request that ran it", async () => {
  const id = ray("job");
  const run = await ok(await w.api("/api/admin/jobs/gc/run", withRay(id, { method: "POST" })));
  assert.equal(run.ok, true);
  const line = await w.waitForLine((l) => l.event === "job" && l.requestId === id);
  assert.deepEqual([line.job, line.trigger, line.ok], ["gc", "api", true]);
  assert.ok(line.operations > 0 && line.operations <= line.opLimit, JSON.stringify(line));
  const req = await requestLine(w, id);
  assert.ok(req.operations >= line.operations, "the request's count includes its job's");
  await new Promise((r) => setTimeout(r, 50));
  const got = points(id).map((p) => named(p.point));
  assert.deepEqual(got.map((p) => p.kind).sort(), ["job", "request"]);
  const job = got.find((p) => p.kind === "job");
  assert.deepEqual([job.index, job.method, job.route, job.status], ["job gc", "api", "gc", 200]);
});

test("the cron logs a line per job and a summary, and writes a data point per job run", async () => {
  const before = w.lines().length;
  await (await w.mf.getWorker()).scheduled({ cron: "*/15 * * * *", scheduledTime: new Date() });
  const cron = await w.waitForLine((l) => l.event === "cron" && w.lines().indexOf(l) >= before);
  const jobs = w.lines().slice(before).filter((l) => l.event === "job" && l.requestId === cron.requestId);
  const ran = cron.jobs.filter((j) => !j.outcome.startsWith("skipped")).map((j) => j.job).sort();
  assert.deepEqual(jobs.map((j) => j.job).sort(), ran);
  assert.ok(jobs.every((j) => j.trigger === "cron" && j.ok), JSON.stringify(jobs));
  // The run's operations: its jobs', the state read, and each run's audit row (src/jobs.rs).
  assert.equal(cron.operations, jobs.reduce((n, j) => n + j.operations, 0) + 1 + jobs.length, "the run's operations");
  await new Promise((r) => setTimeout(r, 50));
  const jobPoints = w.lines().filter((l) => l.event === "test.metrics" && l.point.blobs[9] === cron.requestId);
  assert.equal(jobPoints.length, jobs.length);
});

test("GET /api/openapi.json serves the repository's contract", async () => {
  const res = await w.fetch("/api/openapi.json");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^application\/json/);
  const served = await res.json();
  assert.deepEqual(served, JSON.parse(readFileSync(join(ROOT, "openapi.json"), "utf8")));
  assert.ok(served.paths["/api/openapi.json"].get, "the contract documents itself");
});

test("/api/health reports every job and turns degraded when one is failing or overdue", async () => {
  const fresh = await startWorker();
  try {
    const first = await ok(await fresh.fetch("/api/health"));
    assert.equal(first.status, "ok");
    assert.deepEqual(first.alerts, []);
    const names = first.jobs.map((j) => j.name).sort();
    assert.deepEqual(names, ["access.audit_retention", "consistency", "files.retention", "gc", "omi.analytics", "omi.content_hashes", "omi.reconcile", "omi.retention", "omi.rollups", "storage.census"]);
    assert.ok(first.jobs.every((j) => j.status === "pending" && j.lastSuccessAt === null), "a fresh deployment's jobs wait for the cron");

    // Every job runs once: ok.
    await (await fresh.mf.getWorker()).scheduled({ cron: "*/15 * * * *", scheduledTime: new Date() });
    const ran = await ok(await fresh.fetch("/api/health"));
    assert.equal(ran.status, "ok", JSON.stringify(ran.alerts));
    assert.ok(ran.jobs.every((j) => j.status === "ok" && j.lastSuccessAt > 0), JSON.stringify(ran.jobs));

    // Seven hours without a run: the every-run and hourly jobs are overdue (the daily and
    // six-hourly ones are not yet).
    const later = await fresh.fetch("/api/health", { headers: at(Date.now() + 7 * HOUR + 60_000) });
    assert.equal(later.status, 503);
    const degraded = await later.json();
    assert.equal(degraded.status, "degraded");
    const overdue = degraded.jobs.filter((j) => j.status === "overdue").map((j) => j.name).sort();
    assert.deepEqual(overdue, ["access.audit_retention", "files.retention", "gc", "omi.analytics", "omi.content_hashes", "omi.reconcile", "omi.retention"]);
    assert.ok(degraded.alerts.some((a) => a.includes("job gc is overdue")));

    // A failing job (a storage fault in its run) turns it `failing` until a run succeeds.
    const failed = await ok(await fresh.api("/api/admin/jobs/omi.reconcile/run", { method: "POST", headers: { "x-r2d1-fault": "r2.list" } }));
    assert.equal(failed.ok, false);
    const failing = await fresh.fetch("/api/health");
    assert.equal(failing.status, 503);
    const body = await failing.json();
    assert.equal(body.jobs.find((j) => j.name === "omi.reconcile").status, "failing");
    assert.ok(body.alerts.some((a) => a.includes("omi.reconcile is failing (1 run(s) in a row)")));
    assert.ok(!JSON.stringify(body).includes("injected fault"), "health never shows an error's detail");
    await ok(await fresh.api("/api/admin/jobs/omi.reconcile/run", { method: "POST" }));
    assert.equal((await ok(await fresh.fetch("/api/health"))).status, "ok");
  } finally {
    await fresh.dispose();
  }
});

test("/api/health turns degraded when the last finished consistency walk found problems, and clears with a clean one", async () => {
  const c = await startWorker();
  try {
    await ok(await c.api("/api/apps/walk/files/big.txt", { method: "PUT", body: "x".repeat(20_000) }), 201);
    assert.equal((await consistency(c)).clean, true);
    let health = await ok(await c.fetch("/api/health"));
    assert.equal(health.consistency.problems, 0);
    assert.equal(health.status, "ok");

    // An object that vanished: the next walk (here in two calls of one key each) finds it.
    const { r2_key: key } = await c.db.prepare("SELECT r2_key FROM app_files WHERE app_id = 'walk'").first();
    await c.bucket.delete(key);
    const walked = await consistency(c, { limit: 1 });
    assert.equal(walked.totals.rowsWithoutObjects, 1);
    const walk = await c.db.prepare("SELECT * FROM consistency_walks ORDER BY id DESC LIMIT 1").first();
    assert.ok(walk.calls >= 2 && walk.finished_at > 0 && walk.rows_without_objects === 1, JSON.stringify(walk));
    const res = await c.fetch("/api/health");
    assert.equal(res.status, 503);
    health = await res.json();
    assert.deepEqual([health.status, health.consistency.problems, health.consistency.rowsWithoutObjects], ["degraded", 1, 1]);
    assert.ok(health.alerts.some((a) => a.includes("consistency check found 1 problem")));
    assert.ok(!JSON.stringify(health).includes(key), "health never names a key");

    // An unfinished walk does not replace the last finished one; a finished clean one does.
    await ok(await c.api("/api/apps/walk/files/big.txt", { method: "DELETE" }), [200, 204]);
    await ok(await c.api("/api/admin/consistency?limit=1"));
    assert.equal((await c.fetch("/api/health").then((r) => r.json())).consistency.problems, 1);
    await consistency(c);
    health = await ok(await c.fetch("/api/health"));
    assert.deepEqual([health.status, health.consistency.problems], ["ok", 0]);
  } finally {
    await c.dispose();
  }
});

test("the consistency job walks a step per cron run and its finished walk shows in health", async () => {
  const c = await startWorker();
  try {
    await ok(await c.api("/api/apps/cj/files/big.txt", { method: "PUT", body: "y".repeat(20_000) }), 201);
    await (await c.mf.getWorker()).scheduled({ cron: "*/15 * * * *", scheduledTime: new Date() });
    const walk = await c.db.prepare("SELECT * FROM consistency_walks WHERE trigger = 'job'").first();
    assert.ok(walk && walk.finished_at > 0 && walk.rows_checked >= 1, JSON.stringify(walk));
    const health = await ok(await c.fetch("/api/health"));
    assert.equal(health.consistency.problems, 0);
    assert.equal(health.jobs.find((j) => j.name === "consistency").status, "ok");
  } finally {
    await c.dispose();
  }
});
