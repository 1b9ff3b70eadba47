// The legacy-log migration CLI, run as a separate process against the worker on loopback, over a
// tree in exactly the old app's layout; and its rules (scripts/lib/omi-legacy.mjs) against the
// vectors src/omi/legacy.rs is tested with.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { startWorker, API_TOKEN, ROOT, listKeys } from "./helpers/worker.mjs";
import { makeMemory, dbCount, fixture } from "./helpers/omi.mjs";
import * as legacy from "../scripts/lib/omi-legacy.mjs";

const run = promisify(execFile);
const CLI = join(ROOT, "scripts", "migrate-omi-logs.mjs");
let w, url, tmp;
before(async () => {
  w = await startWorker();
  url = (await w.mf.ready).toString();
  tmp = mkdtempSync(join(tmpdir(), "omi-logs-"));
});
after(async () => {
  await w?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs the CLI; resolves with { code, stdout lines parsed, stderr } whatever the exit status. */
async function cli(args) {
  const res = await run("node", [CLI, ...args], { maxBuffer: 64 * 1024 * 1024 }).catch((e) => e);
  const lines = (res.stdout || "").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return { code: res.code ?? 0, out: lines, stderr: res.stderr };
}

test("the JavaScript rules give the answers the Rust module is tested with", () => {
  const v = JSON.parse(fixture("legacy_vectors.json"));
  for (const [input, expected] of v.sanitize) assert.equal(legacy.sanitizeUid(input), expected, `sanitizeUid(${JSON.stringify(input)})`);
  for (const c of v.names) {
    const got = "id" in c ? legacy.parseNameWithId(c.path, c.id) : legacy.parseName(c.path);
    assert.deepEqual(got, c.expect, JSON.stringify(c));
  }
  for (const c of v.mappings.ok) {
    const mapping = legacy.parseMapping(c.text);
    for (const [uid, expected] of c.resolve) {
      let got = null;
      try {
        got = legacy.resolveUid(mapping, uid);
      } catch {}
      assert.deepEqual(got, expected, `${uid} in ${JSON.stringify(c.text)}`);
    }
  }
  for (const bad of v.mappings.bad) assert.throws(() => legacy.parseMapping(bad), undefined, `${JSON.stringify(bad)} accepted`);

  const m = new legacy.Migration(legacy.parseMapping(JSON.stringify(v.tree.mapping)));
  for (const f of v.tree.files) m.addFile(f.path, Buffer.from("json" in f ? JSON.stringify(f.json) : f.text));
  const report = m.report();
  assert.ok(report.unreadable.every((p) => p.reason.length > 0));
  report.unreadable = report.unreadable.map(({ source }) => ({ source }));
  assert.deepEqual(report, v.tree.expect.report);
  assert.deepEqual(m.plan(), v.tree.expect.plan);
});

// --- an old-app tree, exactly as it left it -------------------------------------------------

const MENTORS = {
  one: { uid: "Mentor.One@Mobil3.org", real: "MentorOneFirebaseUid" },
  ana: { uid: "Ana.Lopez@Example.COM", real: "AnaFirebaseUid42" },
  bob: { uid: "Bob.Jones", real: null }, // not in the mapping: keeps its sanitised id
};
const T0 = Date.UTC(2024, 2, 1);

/** The old app's wrapper, pretty-printed as it wrote it. */
function wrapperOf(memory, uid, receivedMs) {
  const sanitized = legacy.sanitizeUid(uid);
  return JSON.stringify(
    {
      memory,
      processed: { ...memory, uid: sanitized, word_frequency: { mentorship: 1, plan: 1 }, speaker_stats: { SPEAKER_00: 9 }, processed_at: new Date(receivedMs + 40).toISOString() },
      analytics: { wordCount: 17, duration: 9 },
      webhook_received_at: new Date(receivedMs).toISOString(),
      processing_time_ms: 41,
    },
    null,
    2,
  );
}

function put(root, rel, text) {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
}

/**
 * Writes the tree and returns what must end up stored: uid → memory id → the memory's versions
 * in received order ({memory, receivedMs}).
 */
function buildTree(root) {
  const expected = {};
  const deliveries = []; // { mentor, memory, receivedMs }
  const deliver = (mentor, memory, receivedMs) => deliveries.push({ mentor, memory, receivedMs });
  // Mentor One: 105 memories, more than by-user/ keeps.
  for (let i = 0; i < 105; i++) deliver("one", makeMemory({ id: randomUUID(), created_at: new Date(T0 + i * 3_600_000).toISOString() }), T0 + i * 3_600_000 + 2_000);
  // Ana: an ordinary memory, one that only all/ kept, and one re-sent with changed content.
  deliver("ana", makeMemory({ id: randomUUID(), created_at: new Date(T0).toISOString() }), T0 + 1_000);
  const onlyInAll = makeMemory({ id: randomUUID(), created_at: new Date(T0 + 60_000).toISOString() });
  deliver("ana", onlyInAll, T0 + 61_000);
  const resentId = randomUUID();
  const v1 = makeMemory({ id: resentId, created_at: new Date(T0 + 120_000).toISOString(), title: "Plan, first pass" });
  const v2 = { ...v1, structured: { ...v1.structured, title: "Plan, reprocessed", overview: "Reprocessed by Omi." } };
  deliver("ana", v1, T0 + 121_000);
  deliver("ana", v2, T0 + 7_200_000);
  // Bob: two memories; one of his by-user/ files is truncated, its all/ copy is fine.
  const bobs = [0, 1].map((i) => makeMemory({ id: randomUUID(), created_at: new Date(T0 + i * 86_400_000).toISOString() }));
  bobs.forEach((m, i) => deliver("bob", m, T0 + i * 86_400_000 + 500));

  const byUser = {};
  for (const d of deliveries) {
    const { uid, real } = MENTORS[d.mentor];
    const s = legacy.sanitizeUid(uid);
    const name = `${s}-memory-${d.memory.id}-${d.receivedMs + 1}.json`; // all/ was written a millisecond later
    if (d.memory !== onlyInAll) (byUser[s] ??= []).push(d);
    put(root, `memory/all/${name}`, wrapperOf(d.memory, uid, d.receivedMs));
    const stored = real ?? s;
    ((expected[stored] ??= {})[d.memory.id] ??= []).push({ memory: d.memory, receivedMs: d.receivedMs });
  }
  for (const [s, list] of Object.entries(byUser)) {
    // The old app pruned by-user/ to each mentor's newest 100.
    for (const d of list.sort((a, b) => b.receivedMs - a.receivedMs).slice(0, 100)) {
      const text = wrapperOf(d.memory, MENTORS[d.mentor].uid, d.receivedMs);
      put(root, `memory/by-user/${s}/memory-${d.memory.id}-${d.receivedMs}.json`, d.memory === bobs[1] ? text.slice(0, 200) : text);
    }
  }
  put(root, "memory/stats.json", JSON.stringify({ total: deliveries.length }));
  return { expected, onlyInAll, resent: { id: resentId, v1, v2 }, pruned: deliveries.filter((d) => d.mentor === "one").slice(0, 5) };
}

/** Everything the worker holds for Omi memories, to compare before and after a run. */
async function snapshot() {
  const rows = async (sql) => (await w.db.prepare(sql).all()).results;
  return {
    versions: await rows("SELECT user_id, memory_id, version, sha256, r2_key, daily_key, size_bytes, received_at FROM omi_memory_versions ORDER BY user_id, memory_id, version"),
    memories: await rows("SELECT user_id, memory_id, version, sha256, r2_key, received_at, title FROM omi_memories ORDER BY user_id, memory_id"),
    keys: (await listKeys(w.bucket, "mobil3-mentorships/")).sort(),
  };
}

test("an old-app tree is migrated once per memory under its mentor, and a second run changes nothing", async () => {
  const root = join(tmp, "omi-logs");
  const { expected, onlyInAll, resent, pruned } = buildTree(root);
  const mappingFile = join(tmp, "mapping.csv");
  // One key as the old app's sanitised id, one as the uid it was given: both are accepted.
  writeFileSync(mappingFile, `sanitized_uid,omi_uid\n${legacy.sanitizeUid(MENTORS.one.uid)},${MENTORS.one.real}\n${MENTORS.ana.uid},${MENTORS.ana.real}\n`);
  const args = [root, "--mapping", mappingFile, "--url", url, "--token", API_TOKEN, "--batch", "40"];
  const before = await snapshot();
  assert.equal(before.versions.length, 0);

  // Dry run: the report, and nothing written anywhere.
  const dry = await cli([...args, "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.out.length, 1);
  const report = dry.out[0];
  const truncated = `memory/by-user/bob_jones/memory-${Object.keys(expected.bob_jones)[1]}-${T0 + 86_400_000 + 500}.json`;
  assert.deepEqual(
    { ...report, unreadable: report.unreadable.map((p) => p.source) },
    {
      dryRun: true,
      files: 105 + 100 + 7 + 4 + 1,
      mentors: [
        { uid: MENTORS.ana.real, mapped: true, memories: 3, versions: 4, copies: 7 },
        { uid: MENTORS.one.real, mapped: true, memories: 105, versions: 105, copies: 205 },
        { uid: "bob_jones", mapped: false, memories: 2, versions: 2, copies: 3 },
      ],
      memories: 110,
      versions: 111,
      copies: 215,
      duplicates: 104,
      unreadable: [truncated],
      conflicts: [],
      unmapped: ["bob_jones"],
      skipped: ["memory/stats.json"],
    },
  );
  assert.match(dry.stderr, /dry run: nothing will be written/);
  assert.match(dry.stderr, /bob_jones \(unmapped/);
  assert.deepEqual(await snapshot(), before, "a dry run writes nothing");
  assert.ok(!existsSync(join(root, ".r2d1-import-state.json")), "a dry run leaves no state file");

  // The real run: the same report first, then the import.
  const first = await cli(args);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(first.out[0], { ...report, dryRun: false });
  assert.deepEqual(first.out[1], { imported: 111, duplicates: 0, failed: 0, alreadyDone: 0, errors: [] });

  const after = await snapshot();
  const perUser = Object.fromEntries(
    (await w.db.prepare("SELECT user_id, COUNT(*) AS n FROM omi_memories GROUP BY user_id").all()).results.map((r) => [r.user_id, r.n]),
  );
  assert.deepEqual(perUser, { [MENTORS.one.real]: 105, [MENTORS.ana.real]: 3, bob_jones: 2 }, "no mentor named `memory`, no sanitised ids for mapped mentors");

  // Every version stored exactly once, in received order, with the bytes the JS plan hashed.
  const versions = after.versions.map((v) => `${v.user_id}/${v.memory_id}/${v.version}/${v.sha256}/${v.received_at}`);
  const wanted = Object.entries(expected).flatMap(([uid, memories]) =>
    Object.entries(memories).flatMap(([id, list]) => list.map((v, i) => `${uid}/${id}/${i + 1}/${legacy.memorySha256(v.memory)}/${v.receivedMs}`)),
  );
  assert.deepEqual(versions.sort(), wanted.sort());
  for (const v of after.versions) {
    const stored = JSON.parse(await (await w.bucket.get(v.r2_key)).text());
    const want = expected[v.user_id][v.memory_id][v.version - 1].memory;
    assert.deepEqual(stored, want, `${v.r2_key} holds the memory as the old app received it`);
    assert.ok(v.r2_key.startsWith(`mobil3-mentorships/by-user/${v.user_id}/`));
  }
  assert.equal(after.keys.filter((k) => k.startsWith("mobil3-mentorships/by-user/")).length, 111);

  const row = (uid, id) => after.memories.find((m) => m.user_id === uid && m.memory_id === id);
  assert.ok(row(MENTORS.ana.real, onlyInAll.id), "a memory only all/ kept is stored");
  for (const d of pruned) assert.ok(row(MENTORS.one.real, d.memory.id), "memories pruned from by-user/ are stored from all/");
  const current = row(MENTORS.ana.real, resent.id);
  assert.equal(current.version, 2);
  assert.equal(current.title, "Plan, reprocessed", "the later content is the current version");
  assert.ok(row("bob_jones", Object.keys(expected.bob_jones)[1]), "a memory whose by-user/ copy is unreadable is stored from all/");

  // Again, with the state file: nothing to send, nothing changes.
  const again = await cli(args);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(again.out[1], { imported: 0, duplicates: 0, failed: 0, alreadyDone: 111, errors: [] });
  assert.deepEqual(await snapshot(), after);

  // And from scratch: every record is a duplicate, still nothing changes.
  rmSync(join(root, ".r2d1-import-state.json"));
  const fresh = await cli(args);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.deepEqual(fresh.out[1], { imported: 0, duplicates: 111, failed: 0, alreadyDone: 0, errors: [] });
  assert.deepEqual(await snapshot(), after);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'memory'"), 0);
});

test("a bad mapping file or a wrong token fails clearly with a non-zero exit", async () => {
  const root = join(tmp, "small", "omi-logs");
  const m = makeMemory({ id: randomUUID() });
  put(root, `memory/all/carol-memory-${m.id}-1709251200000.json`, wrapperOf(m, "carol", 1709251200000));

  const mapping = join(tmp, "bad-mapping.csv");
  writeFileSync(mapping, "carol,Carol@Example.com\n");
  const bad = await cli([root, "--mapping", mapping, "--dry-run"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /mapping line 1: real uid "Carol@Example.com" may contain only/);

  const wrong = await cli([root, "--url", url, "--token", "wrong", "--state", join(tmp, "small", "state.json")]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /401/);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'carol'"), 0);
});

test("on the Free plan's budget the CLI resumes each chunk where the worker stopped, until every record is stored", async () => {
  const free = await startWorker({ bindings: { SUBREQUEST_BUDGET: "50" } });
  try {
    const freeUrl = (await free.mf.ready).toString();
    const root = join(tmp, "free", "omi-logs");
    const memories = Array.from({ length: 9 }, (_, i) => makeMemory({ id: randomUUID(), created_at: new Date(T0 + i * 60_000).toISOString() }));
    memories.forEach((m, i) => put(root, `memory/all/dave-memory-${m.id}-${T0 + i * 60_000 + 1}.json`, wrapperOf(m, "dave", T0 + i * 60_000)));
    const res = await cli([root, "--url", freeUrl, "--token", API_TOKEN, "--batch", "40"]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(res.out.at(-1), { imported: 9, duplicates: 0, failed: 0, alreadyDone: 0, errors: [] });
    assert.equal(await dbCount(free, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'dave'"), 9);
    const imports = free.lines().filter((l) => l.event === "request" && l.route === "/api/omi/import");
    assert.ok(imports.length >= 3, `one chunk of 9 records took ${imports.length} request(s)`);
    assert.ok(imports.every((l) => l.status === 200 && l.operations <= 50), JSON.stringify(imports.map((l) => l.operations)));
  } finally {
    await free.dispose();
  }
});
