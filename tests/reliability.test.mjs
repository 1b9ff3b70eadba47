// Losing nothing, duplicating nothing: a delivery storm with re-sends in flight, and the
// consistency check that compares D1 with R2.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, listKeys, expectError, consistency as fullReport } from "./helpers/worker.mjs";
import { makeMemory, postMemory, sha256, dbCount, assertTotalsExact } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

const consistency = (worker = w) => fullReport(worker, { mode: "bytes" });

/** Runs `tasks` with at most `limit` in flight. */
async function pool(tasks, limit) {
  const results = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}

test("delivery storm: 1,000 deliveries of 700 memories, 30 % re-sent, 32 in flight", { timeout: 300_000 }, async () => {
  const uids = Array.from({ length: 20 }, (_, i) => `storm-${i}`);
  const memories = Array.from({ length: 700 }, (_, i) => {
    const uid = uids[i % uids.length];
    const raw = JSON.stringify(makeMemory({ id: `storm-${i}`, created_at: new Date(Date.UTC(2025, 8, 1) + i * 60_000).toISOString() }));
    return { uid, raw, delivery: `dlv-${i}` };
  });
  const deliveries = memories.map((m) => ({ ...m, withDelivery: true }));
  for (let i = 0; i < 300; i++) {
    const m = memories[(i * 7) % 700];
    // a third are retries carrying the same X-Omi-Delivery, the rest plain re-sends
    deliveries.push({ ...m, withDelivery: i % 3 === 0 });
  }
  // deterministic shuffle so re-sends race their originals
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = deliveries.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [deliveries[i], deliveries[j]] = [deliveries[j], deliveries[i]];
  }
  assert.equal(deliveries.length, 1000);

  const results = await pool(
    deliveries.map((d) => async () => {
      const headers = d.withDelivery ? { "X-Omi-Delivery": d.delivery } : {};
      const res = await postMemory(w, d.uid, d.raw, { headers });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      return JSON.parse(text);
    }),
    32,
  );
  assert.equal(results.filter((r) => !r.duplicate).length, 700);
  assert.equal(results.filter((r) => r.duplicate).length, 300);

  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id LIKE 'storm-%'"), 700);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_versions WHERE user_id LIKE 'storm-%'"), 700);
  const byUser = await listKeys(w.bucket, "mobil3-mentorships/by-user/storm-");
  assert.equal(byUser.length, 700);
  const daily = (await listKeys(w.bucket, "mobil3-mentorships/all/")).filter((k) => /\/storm-\d+-storm-/.test(k));
  assert.equal(daily.length, 700);

  // every object holds exactly the bytes that were sent for it
  const sent = new Map(memories.map((m) => [JSON.parse(m.raw).id, sha256(m.raw)]));
  for (const key of byUser) {
    const obj = await w.bucket.get(key);
    const body = Buffer.from(await obj.arrayBuffer());
    assert.equal(sha256(body), sent.get(JSON.parse(body).id), key);
  }

  // and every query agrees
  const logs = await (await w.api("/api/omi/logs?userId=storm-3&limit=100")).json();
  assert.equal(logs.total, 35);
  assert.equal(logs.logs.length, 35);
  const users = (await (await w.api("/api/omi/users")).json()).users.filter((u) => u.userId.startsWith("storm-"));
  assert.equal(users.reduce((n, u) => n + u.memories, 0), 700);
  const lines = (await (await w.api("/api/omi/export?format=ndjson")).text()).trim().split("\n").filter((l) => l.includes('"storm-'));
  assert.equal(lines.length, 700);

  const check = await consistency();
  assert.equal(check.clean, true, JSON.stringify(check));
  await assertTotalsExact(w);
});

test("the consistency check finds rows without objects, objects without rows and hash mismatches", async () => {
  const c = await startWorker();
  try {
    const keys = [];
    for (let i = 0; i < 3; i++) {
      const res = await (await postMemory(c, "cc-user", makeMemory({ id: `cc-${i}` }))).json();
      keys.push(res.storage.r2Key);
    }
    assert.equal((await consistency(c)).clean, true);
    await c.bucket.delete(keys[0]);
    await c.bucket.put("mobil3-mentorships/by-user/cc-user/2025/01/stray-1.json", "{}");
    await c.bucket.put(keys[1], "{}", { customMetadata: { sha256: sha256("{}") } });
    const report = await consistency(c);
    assert.equal(report.clean, false);
    const memories = report.sections.find((s) => s.name === "memory");
    assert.equal(memories.rowsWithoutObjects, 1);
    assert.equal(memories.objectsWithoutRows, 1);
    // the metadata still names the right hash: only reading the bytes finds the damage
    assert.equal(memories.shaMismatches, 1);
    const t = report.totals;
    assert.deepEqual([t.rowsWithoutObjects, t.objectsWithoutRows, t.shaMismatches, t.orphansOlderThanGrace, t.indexRowsWithoutVersion], [1, 1, 1, 0, 0]);
    const byMetadata = await fullReport(c);
    assert.equal(byMetadata.totals.shaMismatches, 1, "the metadata check sees the legacy hash entry disagree");
    await expectError(await c.fetch("/api/admin/consistency"), 401, "unauthorized");
  } finally {
    await c.dispose();
  }
});
