// Randomised interleavings against ONE worker: seeded schedules of writers (memory webhook,
// transcript, day summary, file PUT and batch, snapshot, restore, migrate), deletes (mentor,
// file), GC, retention and reconciliation, with random pause points released in random order,
// random injected faults and a test clock that moves hours ahead. After every schedule no row
// may name a missing or different object; at the end, once reconciliation and GC have run,
// the byte-level consistency report must be clean: nothing referenced was deleted and no
// orphan is left. A failure prints the seed and schedule to replay
// (R2D1_SEED=… R2D1_SCHEDULES=… R2D1_TEST_FILES=tests/interleavings.test.mjs npm test).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok as expectOk, at, HOUR, consistency, paused, release } from "./helpers/worker.mjs";
import { big, postJson } from "./helpers/files.mjs";
import { makeMemory, postMemory, fixture } from "./helpers/omi.mjs";

const SEED = Number(process.env.R2D1_SEED || 20261130);
const SCHEDULES = Number(process.env.R2D1_SCHEDULES || 200);
const DAY = 86_400_000;

let w;
before(async () => {
  w = await startWorker({ bindings: { GC_GRACE_HOURS: "1", RETENTION_DAYS: "30" } });
});
after(() => w?.dispose());

/** mulberry32: a small seeded generator, so a failing schedule can be replayed. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const UIDS = ["mentor-a", "mentor-b", "mentor-c"];
const APPS = ["app-a", "app-b"];
const PATHS = ["index.html", "src/main.js", "assets/big.txt", "assets/other.txt"];
const CONTENTS = [big(20_000, "c0"), big(20_000, "c1"), big(30_000, "c2"), big(12_000, "c3"), "small file"];
const TRANSCRIPT = JSON.parse(fixture("realtime_transcript.docs.json"));
const SUMMARY = JSON.parse(fixture("day_summary.docs.json"));
const FAULTS = ["omi.after_put", "files.after_put", "d1.batch", "r2.delete"];

/** The operations a schedule draws from: each returns a request (headers are the op's clock, faults and pauses). */
function operations(r, clock) {
  const pick = (list) => list[Math.floor(r() * list.length)];
  const uid = () => pick(UIDS);
  const app = () => pick(APPS);
  return [
    ["memory", "writer", (h) => {
      const id = `m${Math.floor(r() * 6)}`;
      const created = new Date(clock - Math.floor(r() * 40) * DAY).toISOString();
      return postMemory(w, uid(), { ...makeMemory({ id, created_at: created, title: `v${Math.floor(r() * 2)}` }) }, { headers: h });
    }],
    ["transcript", "writer", (h) => {
      const segments = TRANSCRIPT.segments ?? TRANSCRIPT;
      const body = { session_id: `s${Math.floor(r() * 2)}`, segments: segments.slice(0, 1 + Math.floor(r() * 2)) };
      return postMemory(w, uid(), body, { path: "/api/omi/transcript", headers: h });
    }],
    ["day-summary", "writer", (h) => {
      const date = new Date(clock - pick([0, 1, 45]) * DAY).toISOString().slice(0, 10);
      return postMemory(w, uid(), { ...SUMMARY, summary_json: { ...SUMMARY.summary_json, date, note: r() } }, { path: "/api/omi/day-summary", headers: h });
    }],
    ["file-put", "writer", (h) => w.api(`/api/apps/${app()}/files/${pick(PATHS)}`, { method: "PUT", body: pick(CONTENTS), headers: h })],
    ["file-batch", "writer", (h) =>
      postJson(w, `/api/apps/${app()}/files:batch`, { files: [{ path: pick(PATHS), content: pick(CONTENTS) }, { path: `extra/${Math.floor(r() * 3)}.txt`, content: pick(CONTENTS) }] }, h)],
    ["file-delete", "delete", (h) => w.api(`/api/apps/${app()}/files/${pick(PATHS)}`, { method: "DELETE", headers: h })],
    ["snapshot", "writer", (h) => postJson(w, `/api/apps/${app()}/versions`, { changelog: "s" }, h)],
    ["restore", "writer", (h) => w.api(`/api/apps/${app()}/versions/${1 + Math.floor(r() * 3)}/restore`, { method: "POST", headers: h })],
    ["migrate", "writer", async (h) => {
      // app-m writes inline (database mode), then follows the global policy and migrates
      await w.api("/api/apps/app-m", { method: "PUT", body: JSON.stringify({ storage_mode: "database" }), headers: { "content-type": "application/json" } });
      await w.api(`/api/apps/app-m/files/${pick(PATHS)}`, { method: "PUT", body: pick(CONTENTS) });
      await w.api("/api/apps/app-m", { method: "PUT", body: JSON.stringify({ storage_mode: null }), headers: { "content-type": "application/json" } });
      return w.api("/api/admin/storage/migrate?app=app-m&batch=10", { method: "POST", headers: h });
    }],
    ["mentor-delete", "delete", (h) => w.api(`/api/omi/users/${uid()}`, { method: "DELETE", headers: h })],
    ["gc", "gc", (h) => w.api("/api/admin/jobs/gc/run", { method: "POST", headers: h })],
    ["retention", "job", (h) => w.api("/api/admin/jobs/omi.retention/run", { method: "POST", headers: h })],
    ["reconcile", "job", (h) => w.api("/api/omi/reconcile?grace_seconds=0&limit=50", { method: "POST", headers: h })],
  ];
}

/** Statuses a request may answer in a schedule; a 500 (integrity or internal error) never. */
const ACCEPTED = new Set([200, 201, 204, 404, 409, 412, 502, 503]);

async function runSchedule(n, r, clock) {
  const ops = operations(r, clock);
  const count = 2 + Math.floor(r() * 4);
  const running = [];
  for (let i = 0; i < count; i++) {
    const [name, role, send] = ops[Math.floor(r() * ops.length)];
    const tag = `s${n}o${i}`;
    const headers = { ...at(clock + Math.floor(r() * 60_000)) };
    let point = null;
    if (role === "writer" && r() < 0.5) point = "store.before_commit";
    if (role === "gc" && r() < 0.6) point = "gc.after_claim";
    if (role === "delete" && r() < 0.3) point = "gc.after_claim";
    if (point) headers["x-r2d1-pause"] = `${point}@${tag}`;
    if (r() < 0.08) headers["x-r2d1-fault"] = FAULTS[Math.floor(r() * FAULTS.length)];
    const op = { name, tag: point ? `${point}@${tag}` : null, rank: r(), settled: false, headers };
    op.promise = Promise.resolve()
      .then(() => send(headers))
      .then(async (res) => ({ status: res.status, text: await res.text() }))
      .finally(() => (op.settled = true));
    running.push(op);
    if (r() < 0.5) await sleep(Math.floor(r() * 5));
  }
  // Release parked requests one at a time in a random order, until every request settled.
  const order = running.filter((o) => o.tag).sort((a, b) => a.rank - b.rank);
  const deadline = Date.now() + 60_000;
  while (running.some((o) => !o.settled)) {
    if (Date.now() > deadline) throw new Error(`schedule ${n} did not settle: ${JSON.stringify(running.map((o) => [o.name, o.settled]))}`);
    const parked = await paused(w);
    const next = order.find((o) => !o.settled && parked[o.tag]);
    if (next) {
      await sleep(Math.floor(r() * 8));
      await release(w, next.tag);
    } else {
      await sleep(3);
    }
  }
  const results = await Promise.all(running.map((o) => o.promise));
  running.forEach((o, i) => {
    const { status, text } = results[i];
    assert.ok(ACCEPTED.has(status), `seed ${SEED} schedule ${n}: ${o.name} ${JSON.stringify(o.headers)} answered ${status}: ${text.slice(0, 300)}`);
  });
  return running.map((o, i) => `${o.name}:${results[i].status}`);
}

test(`${SCHEDULES} seeded schedules of writers, deletes, GC, retention and reconciliation keep every row's object`, { timeout: 300_000 }, async () => {
  const r = rng(SEED);
  let clock = Date.now();
  const log = [];
  for (let n = 0; n < SCHEDULES; n++) {
    clock += 20 * 60_000; // twenty minutes a schedule: marks become eligible, grace periods pass
    const outcome = await runSchedule(n, r, clock);
    log.push(outcome.join(" "));
    if (n % 5 === 4 || n === SCHEDULES - 1) {
      const report = await consistency(w);
      const t = report.totals;
      assert.deepEqual(
        [t.rowsWithoutObjects, t.shaMismatches, t.indexRowsWithoutVersion],
        [0, 0, 0],
        `seed ${SEED} after schedule ${n} (${log.slice(-5).join(" | ")}): ${JSON.stringify(report.sections.filter((s) => s.examples.length))}`,
      );
    }
  }
  // The jobs finish what the schedules left: reconciliation adopts or condemns every unindexed
  // object, the GC condemns unreferenced app objects and, a grace later, deletes what is condemned.
  let cursor;
  do {
    const rec = await expectOk(await w.api("/api/omi/reconcile?grace_seconds=0&limit=500", { method: "POST", headers: at(clock + HOUR) }));
    assert.deepEqual(rec.errors, [], `seed ${SEED}: reconciliation errors`);
    cursor = rec.nextCursor;
  } while (cursor);
  for (const ahead of [3 * HOUR, 6 * HOUR]) await expectOk(await w.api("/api/admin/jobs/gc/run", { method: "POST", headers: at(clock + ahead) }));
  const report = await consistency(w, { mode: "bytes" });
  const t = report.totals;
  assert.equal(report.clean, true, `seed ${SEED}: ${JSON.stringify(t)} ${JSON.stringify(report.sections.filter((s) => s.examples.length))}`);
  assert.ok(t.rows > 0 && t.bytesChecked > 0, "the schedules stored something to check");
});
