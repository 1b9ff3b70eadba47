// POST /api/omi/import within the Free plan's operation budget: identical lines count once, the
// records already stored are found with one query, new ones are stored while the budget lasts
// and the answer says where to resume (`done: false`, `nextLine`); resuming stores the rest.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, ray, requestLine } from "./helpers/worker.mjs";
import { makeMemory, dbCount } from "./helpers/omi.mjs";

// The most operations one new record may cost (IMPORT_RECORD_OPS in src/omi/maintenance.rs).
const RECORD_OPS = 16;
const FREE = 50;

let free, paid;
before(async () => {
  [free, paid] = await Promise.all([startWorker({ bindings: { SUBREQUEST_BUDGET: String(FREE) } }), startWorker()]);
});
after(async () => {
  await Promise.all([free?.dispose(), paid?.dispose()]);
});

const line = (uid, m) => JSON.stringify({ uid, ...m });
const post = (w, body, id = ray("import")) =>
  w.api("/api/omi/import", { method: "POST", headers: { "content-type": "application/x-ndjson", "cf-ray": id }, body });

test("one new record costs at most the documented operations", async () => {
  for (const n of [1, 4]) {
    const id = ray("cost");
    const lines = Array.from({ length: n }, () => line("cost-mentor", makeMemory()));
    const r = await ok(await post(paid, lines.join("\n"), id));
    assert.deepEqual([r.imported, r.done, r.nextLine], [n, true, undefined]);
    const log = await requestLine(paid, id);
    // The duplicate check of the whole body is one statement; each record its own share.
    assert.ok(log.operations <= 1 + n * RECORD_OPS, `${n} record(s): ${log.operations} operations`);
  }
});

test("on the Free plan an import stops before the budget, says where to resume, and resuming stores the rest", async () => {
  const memories = Array.from({ length: 10 }, () => makeMemory());
  const lines = [
    line("free-mentor", memories[0]),
    "not json",
    line("free-mentor", memories[0]), // the same record again: counted once, as a duplicate
    ...memories.slice(1).map((m) => line("free-mentor", m)),
  ];
  let body = lines;
  const totals = { imported: 0, duplicates: 0, failed: 0 };
  let requests = 0;
  let lineOffset = 0;
  const errorLines = [];
  for (;;) {
    const id = ray("free");
    const r = await ok(await post(free, body.join("\n"), id));
    requests += 1;
    const log = await requestLine(free, id);
    assert.ok(log.operations <= FREE, `request ${requests}: ${log.operations} operations`);
    assert.equal(log.status, 200);
    totals.imported += r.imported;
    totals.duplicates += r.duplicates;
    totals.failed += r.failed;
    errorLines.push(...r.errors.map((e) => e.line + lineOffset));
    if (r.done) {
      assert.equal(r.nextLine, undefined);
      break;
    }
    assert.ok(r.nextLine > 1 && r.nextLine <= body.length, `nextLine ${r.nextLine}`);
    assert.ok(r.imported > 0, "every call makes progress");
    for (const e of r.errors) assert.ok(e.line < r.nextLine, "errors cover only the lines before nextLine");
    lineOffset += r.nextLine - 1;
    body = body.slice(r.nextLine - 1);
    assert.ok(requests < 20, "the import ends");
  }
  assert.ok(requests >= 3, `10 new records on a budget of ${FREE}: ${requests} request(s)`);
  assert.deepEqual(totals, { imported: 10, duplicates: 1, failed: 1 });
  assert.deepEqual(errorLines, [2]);
  assert.equal(await dbCount(free, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'free-mentor'"), 10);
  assert.equal(await dbCount(free, "SELECT COUNT(*) FROM omi_memory_versions WHERE user_id = 'free-mentor'"), 10);
});

test("1,000 lines already stored or repeated cost one query, and the answer is quick", async () => {
  const stored = Array.from({ length: 5 }, () => makeMemory());
  await ok(await post(paid, stored.map((m) => line("dup-mentor", m)).join("\n")));
  const lines = Array.from({ length: 1000 }, (_, i) => line("dup-mentor", stored[i % stored.length]));
  const id = ray("dups");
  const started = Date.now();
  const r = await ok(await post(paid, lines.join("\n"), id));
  assert.deepEqual([r.imported, r.duplicates, r.failed, r.done], [0, 1000, 0, true]);
  const log = await requestLine(paid, id);
  assert.ok(log.operations <= 2, `${log.operations} operations`);
  assert.ok(Date.now() - started < 20_000);
});
