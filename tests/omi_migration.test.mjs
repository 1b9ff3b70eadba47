// The old app's R2 objects migrated through the API (issue 12): a tree in exactly the old
// layout (mixed-case uids with `@` and `.`, a pruned by-user/, a complete all/, re-sent and
// reprocessed memories, memories that survive only in all/, an unreadable file), a dry run
// that writes nothing, a real run that stores every memory once under its mentor and hands
// the old copies to the GC, and a second run that changes nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, expectError, listKeys, consistency } from "./helpers/worker.mjs";
import { dbCount } from "./helpers/omi.mjs";
import { conversation, delivery, pyDumps } from "./helpers/sender.mjs";
import { sanitizeUid } from "../scripts/lib/omi-legacy.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

const ROOT = "mobil3-mentorships";
const ALICE = "Alice.Smith@Example.com"; // mapped to her real Omi uid
const BOB = "Bob.Jones"; // unmapped: a storable uid, kept as it is
const CAROL = "carol";
const REAL = { [ALICE]: "AliceOmiUid", [BOB]: BOB, [CAROL]: CAROL };

const iso = (ms) => new Date(ms).toISOString();
const uuid = (n) => `0b7c2a1e-3f4d-4c5b-9a8e-${String(n).padStart(12, "0")}`;

/** What the old app wrote for one delivery at `ms`: the wrapper, at its two R2 keys. */
function oldDelivery(uid, memory, ms) {
  const at = iso(ms);
  const wrapper = JSON.stringify({
    memory,
    processed: { ...memory, uid: sanitizeUid(uid), word_frequency: { plan: 2 }, speaker_stats: { SPEAKER_00: 1 } },
    analytics: { word_count: 7, segment_count: 2 },
    webhook_received_at: at,
    processing_time_ms: 9,
  });
  return {
    uid,
    memory,
    ms,
    wrapper,
    byUser: `${ROOT}/by-user/${uid}/${at.slice(0, 4)}/${at.slice(5, 7)}/${memory.id}-${ms}.json`,
    all: `${ROOT}/all/${at.slice(0, 10)}/${uid}-${memory.id}-${ms}.json`,
  };
}

const T0 = Date.UTC(2024, 6, 1, 9, 0, 0);
const H = 3_600_000;
const mem = (n, title) => JSON.parse(pyDumps(conversation({ id: uuid(n), title, created_at: iso(T0 + n * H) })));

// Alice: a1 (pruned from by-user), a2 (re-sent: same content twice), a3 (reprocessed: two
// contents), a4. Bob: b1 (Omi already delivered it to r2d1), b2. Carol: c1, only in all/.
const a3v1 = mem(3, "Primera versión");
const a3v2 = { ...a3v1, structured: { ...a3v1.structured, title: "Segunda versión" } };
const a2 = mem(2, "Reenviada");
const b1 = mem(11, "Ya entregada");
const DELIVERIES = [
  oldDelivery(ALICE, mem(1, "Solo en all"), T0 + 1 * H),
  oldDelivery(ALICE, a2, T0 + 2 * H),
  oldDelivery(ALICE, a2, T0 + 2 * H + 5_000),
  oldDelivery(ALICE, a3v1, T0 + 3 * H),
  oldDelivery(ALICE, a3v2, T0 + 30 * H),
  oldDelivery(ALICE, mem(4, "Cuarta"), T0 + 31 * H),
  oldDelivery(BOB, b1, T0 + 4 * H),
  oldDelivery(BOB, mem(12, "Segunda de Bob"), T0 + 5 * H),
  oldDelivery(CAROL, mem(21, "Sobrevive en all"), T0 + 6 * H),
];
// The old app pruned by-user/ to the newest deliveries; all/ was never pruned.
const PRUNED = new Set([DELIVERIES[0].byUser, DELIVERIES[1].byUser, DELIVERIES[8].byUser]);
const UNREADABLE = `${ROOT}/all/2024-07-02/carol-${uuid(99)}-${T0 + 24 * H}.json`;
const SKIPPED = `${ROOT}/by-user/carol/notes.json`;

const EXPECTED = {
  AliceOmiUid: { [uuid(1)]: 1, [uuid(2)]: 1, [uuid(3)]: 2, [uuid(4)]: 1 },
  [BOB]: { [uuid(11)]: 1, [uuid(12)]: 1 },
  [CAROL]: { [uuid(21)]: 1 },
};

async function plant() {
  for (const d of DELIVERIES) {
    if (!PRUNED.has(d.byUser)) await w.bucket.put(d.byUser, d.wrapper);
    await w.bucket.put(d.all, d.wrapper);
  }
  await w.bucket.put(UNREADABLE, '{"memory": {"id": "cut off');
  await w.bucket.put(SKIPPED, "{}");
}

async function migrate({ dryRun = false, limit = 4 } = {}) {
  const steps = [];
  let cursor = "";
  do {
    const q = new URLSearchParams({ limit: String(limit), ...(dryRun ? { dry_run: "1" } : {}), ...(cursor ? { cursor } : {}) });
    const step = await ok(await w.api(`/api/omi/legacy/migrate?${q}`, { method: "POST" }));
    steps.push(step);
    cursor = step.nextCursor;
    assert.ok(steps.length < 200, "the migration ends");
  } while (cursor);
  const last = steps.at(-1);
  assert.equal(last.done, true);
  const sum = (k) => steps.reduce((n, s) => n + s.step[k], 0);
  return { steps, last, sum };
}

/** Everything a run could change: every R2 key, and the index and GC tables. */
async function snapshot() {
  const rows = async (sql) => (await w.db.prepare(sql).all()).results;
  return {
    keys: (await listKeys(w.bucket)).sort(),
    versions: await rows("SELECT user_id, memory_id, version, sha256, content_sha256, r2_key, received_at FROM omi_memory_versions ORDER BY r2_key"),
    memories: await rows("SELECT user_id, memory_id, version, title, r2_key FROM omi_memories ORDER BY user_id, memory_id"),
    marks: await rows("SELECT key, state FROM gc_marks ORDER BY key"),
  };
}

test("the old app's R2 tree: a dry run reports and writes nothing; the migration stores every memory once under its mentor; a second run changes nothing", async () => {
  // Omi delivered b1 to r2d1 before the migration (wire bytes, under Bob's real uid); its row
  // predates content hashes (as rows stored before migration 0008 do).
  const hooked = await ok(await delivery(w, { configured: "/api/omi/memory?token=test-webhook-token-0123456789", uid: BOB, body: pyDumps(b1) }).send());
  await w.db.prepare("UPDATE omi_memory_versions SET content_sha256 = NULL WHERE memory_id = ?").bind(uuid(11)).run();
  await plant();
  await ok(await w.api("/api/omi/legacy/mapping", { method: "PUT", body: JSON.stringify({ [sanitizeUid(ALICE)]: "AliceOmiUid" }) }));

  // --- dry run -----------------------------------------------------------------------------
  const before = await snapshot();
  const dry = await migrate({ dryRun: true });
  assert.deepEqual(await snapshot(), before, "a dry run writes no memory, object or mark");
  const r = dry.last.report;
  const copiesOf = (uid) => DELIVERIES.filter((d) => d.uid === uid).reduce((n, d) => n + (PRUNED.has(d.byUser) ? 1 : 2), 0);
  const copies = copiesOf(ALICE) + copiesOf(BOB) + copiesOf(CAROL);
  assert.deepEqual([copiesOf(ALICE), copiesOf(BOB), copiesOf(CAROL)], [10, 4, 1]);
  assert.deepEqual(r.mentors, [
    { uid: "AliceOmiUid", mapped: true, memories: 4, versions: 5, copies: 10 },
    { uid: BOB, mapped: false, memories: 2, versions: 2, copies: 4 },
    { uid: CAROL, mapped: false, memories: 1, versions: 1, copies: 1 },
  ]);
  assert.deepEqual([r.memories, r.versions, r.copies, r.duplicates], [7, 8, copies, copies - 8]);
  assert.deepEqual(r.unmapped, [BOB, CAROL]);
  assert.deepEqual(r.unreadable.map((p) => p.source), [UNREADABLE]);
  assert.match(r.unreadable[0].reason, /JSON/);
  assert.deepEqual(r.skipped, [SKIPPED]);
  assert.equal(dry.sum("ours"), 2, "r2d1's own objects (the webhook's) are not the old app's");
  assert.equal(dry.last.progress.storedVersions, 0);

  // --- the migration -----------------------------------------------------------------------
  const run = await migrate();
  assert.deepEqual(run.steps.map((s) => s.phase).filter((p, i, a) => p !== a[i - 1]), ["hashes", "scan", "store", "cleanup"]);
  assert.equal(run.sum("hashed"), 1, "b1's old row got its content hash first");
  assert.deepEqual([run.sum("stored"), run.sum("duplicates"), run.sum("failed")], [7, 1, 0]);
  assert.equal(run.sum("condemned"), copies);
  assert.equal(run.sum("deleted"), copies);
  assert.equal(run.last.progress.storedVersions, 8);
  assert.deepEqual(run.last.report.mentors.map((m) => m.uid), ["AliceOmiUid", BOB, CAROL]);

  // every memory once, under its mentor, with its versions
  const rows = (await w.db.prepare("SELECT user_id, memory_id, COUNT(*) AS n FROM omi_memory_versions GROUP BY user_id, memory_id").all()).results;
  const found = {};
  for (const row of rows) (found[row.user_id] ??= {})[row.memory_id] = row.n;
  assert.deepEqual(found, EXPECTED);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories"), 7);
  // the reprocessed memory's current version is the one received last
  const a3 = await w.db.prepare("SELECT title, received_at FROM omi_memories WHERE memory_id = ?").bind(uuid(3)).first();
  assert.deepEqual(a3, { title: "Segunda versión", received_at: T0 + 30 * H });
  // a memory that survived only in all/ is back, as the memory itself (not the old wrapper)
  const a1 = await ok(await w.api(`/api/omi/logs/AliceOmiUid/${uuid(1)}`));
  assert.deepEqual(a1, DELIVERIES[0].memory);
  assert.deepEqual(await ok(await w.api(`/api/omi/logs/${CAROL}/${uuid(21)}`)), DELIVERIES[8].memory);
  // b1 is still the webhook's object: the old copies were recognised by content
  assert.equal((await w.db.prepare("SELECT r2_key FROM omi_memories WHERE memory_id = ?").bind(uuid(11)).first()).r2_key, hooked.storage.r2Key);

  // the old copies went through the GC; what could not be migrated stays for the operator
  const left = await listKeys(w.bucket, `${ROOT}/`);
  for (const d of DELIVERIES) {
    assert.ok(!left.includes(d.byUser) && !left.includes(d.all), `${d.all} is gone`);
  }
  assert.ok(left.includes(UNREADABLE) && left.includes(SKIPPED));
  const marks = await dbCount(w, "SELECT COUNT(*) FROM gc_marks WHERE state = 'deleted' AND reason = ?", "old app's copy, migrated");
  assert.equal(marks, copies);

  // --- a second run changes nothing ---------------------------------------------------------
  const settled = await snapshot();
  const second = await migrate({ limit: 50 });
  assert.deepEqual(await snapshot(), settled);
  assert.deepEqual([second.sum("stored"), second.sum("duplicates"), second.sum("condemned")], [0, 0, 0]);
  assert.deepEqual([second.last.report.memories, second.last.report.copies], [0, 0]);
  assert.equal(second.last.progress.migratedEarlier, copies);
  assert.deepEqual(second.last.report.unreadable.map((p) => p.source), [UNREADABLE]);

  // the operator removes what the report said could not be migrated: the stores agree
  await w.bucket.delete([UNREADABLE, SKIPPED]);
  const check = await consistency(w);
  assert.equal(check.clean, true, JSON.stringify(check.totals));
});

test("content hashes of versions stored before 0008 are filled in by the omi.content_hashes job", async () => {
  await ok(await delivery(w, { configured: "/api/omi/memory?token=test-webhook-token-0123456789", uid: "job-mentor", body: pyDumps(conversation()) }).send());
  await w.db.prepare("UPDATE omi_memory_versions SET content_sha256 = NULL WHERE user_id = 'job-mentor'").run();
  const run = await ok(await w.api("/api/admin/jobs/omi.content_hashes/run", { method: "POST" }));
  assert.equal(run.ok, true, JSON.stringify(run));
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_versions WHERE content_sha256 IS NULL"), 0);
});

test("the migration refuses cursors it did not write and mappings it cannot use", async () => {
  await expectError(await w.api("/api/omi/legacy/migrate?cursor=v1:1:nope", { method: "POST" }), 400, "invalid_cursor");
  await expectError(await w.api("/api/omi/legacy/mapping", { method: "PUT", body: '{"bob": "not a uid"}' }), 400, "invalid_field");
  // the stored mapping is untouched by a refused one
  assert.deepEqual((await ok(await w.api("/api/omi/legacy/mapping"))).mapping, { [sanitizeUid(ALICE)]: "AliceOmiUid" });
});
