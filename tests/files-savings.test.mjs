// The storage report's savings section (issue 13), checked against a recount from D1 and R2
// done here in JavaScript: D1 bytes by table and index, R2 objects and bytes by kind, R2
// operations by class, the money; and the plan's example (100 apps x 85 files x 5 KB average)
// measured from real rows under the default tiers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, listKeys } from "./helpers/worker.mjs";
import { ok, json, text, counters } from "./helpers/files.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

const PRICES = { d1: 0.75, r2: 0.015, a: 4.5, b: 0.36 };
const ROW_OVERHEAD = 12;
const INDEX_ENTRY_OVERHEAD = 12;

/** Bytes SQLite stores for a value of SQL type `type`. */
function valueBytes(type, v) {
  if (type === "null") return 0;
  if (type === "real") return 8;
  if (type === "integer") {
    const n = BigInt(v);
    const fits = (bits) => n >= -(1n << BigInt(bits - 1)) && n < 1n << BigInt(bits - 1);
    for (const [bits, bytes] of [[8, 1], [16, 2], [24, 3], [32, 4], [48, 6]]) if (fits(bits)) return bytes;
    return 8;
  }
  if (typeof v === "string") return Buffer.byteLength(v, "utf8");
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) return v.length;
  throw new Error(`a ${type} value of unexpected shape: ${v}`);
}

const q = (name) => `"${name.replaceAll('"', '""')}"`;

/** Rows and value bytes of `cols` of `table` (optionally only rows matching `where`). */
async function sumValues(db, table, cols, where = "") {
  if (!cols.length) {
    const { results } = await db.prepare(`SELECT COUNT(*) AS n FROM ${q(table)}${where}`).all();
    return { rows: results[0].n, bytes: 0 };
  }
  const select = cols.map((c, i) => `typeof(${q(c)}) AS t${i}, ${q(c)} AS v${i}`).join(", ");
  const { results } = await db.prepare(`SELECT ${select} FROM ${q(table)}${where}`).all();
  let bytes = 0;
  for (const r of results) for (let i = 0; i < cols.length; i++) bytes += valueBytes(r[`t${i}`], r[`v${i}`]);
  return { rows: results.length, bytes };
}

/** Every table's estimated bytes, recounted value by value. */
async function recountD1(db) {
  const master = (await db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master").all()).results;
  const tables = master.filter((m) => m.type === "table" && !m.name.startsWith("sqlite_") && !m.name.startsWith("_cf_") && !(m.sql || "").startsWith("CREATE VIRTUAL TABLE"));
  const out = {};
  for (const t of tables) {
    const cols = (await db.prepare(`PRAGMA table_info(${q(t.name)})`).all()).results.map((c) => c.name);
    const s = await sumValues(db, t.name, cols);
    out[t.name] = { rows: s.rows, payload: s.bytes, entries: 0, keys: 0 };
  }
  for (const i of master.filter((m) => m.type === "index" && out[m.tbl_name])) {
    const cols = (await db.prepare(`PRAGMA index_info(${q(i.name)})`).all()).results.map((c) => c.name).filter(Boolean);
    const where = i.sql?.match(/\)\s+WHERE\s+(.+)$/is)?.[1];
    const s = await sumValues(db, i.tbl_name, cols, where ? ` WHERE ${where}` : "");
    out[i.tbl_name].entries += s.rows;
    out[i.tbl_name].keys += s.bytes;
  }
  for (const t of Object.values(out)) t.estimated = t.payload + t.keys + t.rows * ROW_OVERHEAD + t.entries * INDEX_ENTRY_OVERHEAD;
  return out;
}

/** The object kind of a key, as src/store/kinds.rs says. */
function kindOf(key) {
  const apps = key.match(/^apps\/[^/]+\/(blobs|snapshots)\/[^/]+$/);
  if (apps) return apps[1] === "blobs" ? "app_blob" : "snapshot";
  for (const [prefix, kind] of [["by-user/", "memory"], ["all/", "daily_copy"], ["transcripts/", "transcript"], ["day-summaries/", "day_summary"], ["analytics/", "rollup"]]) {
    if (key.startsWith(`mobil3-mentorships/${prefix}`)) return kind;
  }
  return "other";
}

async function recountR2(bucket) {
  const byKind = {};
  let cursor;
  do {
    const page = await bucket.list({ cursor, limit: 1000 });
    for (const o of page.objects) {
      const k = (byKind[kindOf(o.key)] ??= { objects: 0, bytes: 0 });
      k.objects++;
      k.bytes += o.size;
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return byKind;
}

const perMonth = (count, observedSecs) => Math.ceil((count * 30 * 86_400) / Math.max(observedSecs, 3_600));

test("the report's figures match a recount from D1 and R2: bytes by table, objects by kind, operations by class, and the money", async () => {
  // Both workloads: mentors' memories and an app with files in every tier and two versions.
  for (let i = 0; i < 6; i++) assert.equal((await postMemory(w, i % 2 ? "alice" : "bob", makeMemory({ title: `Session ${i}` }))).status, 200);
  const files = [
    { path: "index.html", content: "<h1>hello</h1>" },
    { path: "src/app.js", content: text(1_800, "app") },
    { path: "assets/big.css", content: text(30_000, "css") },
  ];
  await ok(await w.api("/api/apps/costly/files:batch", json("POST", { files })));
  await ok(await w.api("/api/apps/costly/versions", json("POST", { changelog: "one" })), 201);
  await ok(await w.api("/api/apps/costly/files/assets/big.css", { method: "PUT", body: text(31_000, "css2") }), 200);
  await ok(await w.api("/api/apps/costly/versions", json("POST", { changelog: "two" })), 201);

  const first = await ok(await w.api("/api/admin/storage/report?refresh=true"));
  const d1 = await recountD1(w.db);
  const byTable = Object.fromEntries(first.costs.d1.tables.map((t) => [t.table, t]));
  assert.deepEqual(Object.keys(byTable).sort(), Object.keys(d1).sort(), "every table, no more");
  for (const [name, t] of Object.entries(d1)) {
    assert.equal(byTable[name].rows, t.rows, `${name} rows`);
    assert.equal(byTable[name].estimated_bytes, t.estimated, `${name} bytes`);
  }
  assert.equal(first.costs.d1.estimated_bytes, Object.values(d1).reduce((s, t) => s + t.estimated, 0));
  for (const name of ["omi_memories", "app_files", "gc_marks"]) {
    assert.equal(byTable[name].workload, name.startsWith("omi_") ? "omi" : name === "app_files" ? "app_files" : "core");
  }

  // R2 right after the census: every object counted under its kind.
  const r2 = await recountR2(w.bucket);
  const reported = Object.fromEntries(first.costs.r2.prefixes.map((p) => [p.prefix.split(" ")[0], p]));
  assert.deepEqual(Object.keys(reported).sort(), Object.keys(r2).sort());
  for (const [kind, k] of Object.entries(r2)) assert.deepEqual([reported[kind].objects, reported[kind].bytes], [k.objects, k.bytes], kind);
  const all = await listKeys(w.bucket);
  assert.equal(first.costs.r2.objects, all.length);
  assert.ok(first.census.complete_at, "the census completed");

  // Operations: what the requests in between counted is what the next report adds.
  const dayOps = (report) => report.operations.counted.reduce((s, d) => ({ a: s.a + d.class_a, b: s.b + d.class_b }), { a: 0, b: 0 });
  const before = dayOps(first);
  let a = 0;
  let b = 0;
  for (const res of [
    await w.api("/api/apps/costly/files/assets/big.css", { method: "PUT", body: text(32_000, "css3") }),
    await w.api("/api/apps/costly/files/assets/big.css"),
    await w.api("/api/apps/costly/export?version=1"),
    await postMemory(w, "alice", makeMemory({ title: "one more" })),
  ]) {
    await res.arrayBuffer();
    a += counters(res).r2_class_a;
    b += counters(res).r2_class_b;
  }
  assert.ok(a >= 3 && b >= 1, `counted ${a} class A and ${b} class B operations`);
  let second;
  for (let i = 0; i < 20; i++) {
    second = await ok(await w.api("/api/admin/storage/report"));
    const now = dayOps(second);
    if (now.a - before.a === a && now.b - before.b >= b) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = dayOps(second);
  assert.equal(after.a - before.a, a, "class A operations");
  // An export's R2 reads happen while its body streams: counted when the stream has been read.
  assert.ok(after.b - before.b >= b, `class B operations: ${after.b - before.b} >= ${b}`);

  // The money, recomputed from the recount at list prices.
  const observed = second.operations.observed_secs;
  for (const wl of second.costs.workloads) {
    const tables = second.costs.d1.tables.filter((t) => t.workload === wl.workload);
    const d1Bytes = tables.reduce((s, t) => s + t.estimated_bytes, 0);
    const r2Bytes = second.costs.r2.prefixes.filter((p) => p.workload === wl.workload).reduce((s, p) => s + p.bytes, 0);
    const ops = second.operations.counted.filter((d) => (d.workload === "other" ? "core" : d.workload) === wl.workload);
    const opsA = perMonth(ops.reduce((s, d) => s + d.class_a, 0), observed);
    const opsB = perMonth(ops.reduce((s, d) => s + d.class_b, 0), observed);
    const usd = (d1Bytes / 1e9) * PRICES.d1 + (r2Bytes / 1e9) * PRICES.r2 + (opsA / 1e6) * PRICES.a + (opsB / 1e6) * PRICES.b;
    assert.equal(wl.d1_bytes, d1Bytes, `${wl.workload} D1`);
    assert.equal(wl.r2_bytes, r2Bytes, `${wl.workload} R2`);
    assert.ok(Math.abs(wl.list_price.total_usd - usd) < 1e-12, `${wl.workload}: ${wl.list_price.total_usd} vs ${usd}`);
  }
  assert.equal(second.costs.monthly.total_usd, 0, "a small store is inside every free allowance");
  const m = second.costs.metrics;
  assert.deepEqual([m.database_size_reduction_percent.plan, m.storage_cost_reduction_percent.plan, m.omi_monthly_usd.plan], ["70-80 %", "> 90 %", "< $5"]);
  assert.equal(m.omi_monthly_usd.met, true);
  assert.equal(m.cost_reduction_per_byte_moved_percent, 98);
  // Tiers, dedupe and compression, from the rows.
  const lines = (await w.db.prepare("SELECT storage_location AS l, size_bytes AS s FROM app_files UNION ALL SELECT storage_location, size_bytes FROM app_version_files WHERE action != 'deleted'").all()).results;
  for (const tier of ["database", "hybrid", "r2"]) {
    const mine = lines.filter((x) => x.l === tier);
    assert.deepEqual([second.costs.tiers[tier].files, second.costs.tiers[tier].bytes], [mine.length, mine.reduce((s, x) => s + x.s, 0)], tier);
  }
  const blobs = (await w.db.prepare("SELECT COALESCE(SUM(size_bytes), 0) AS b, COALESCE(SUM(stored_bytes), 0) AS s FROM blobs").all()).results[0];
  assert.equal(second.costs.savings.compression_bytes, blobs.b - blobs.s);
  assert.ok(second.costs.savings.compression_bytes > 0, "text compresses");
});

/** The plan's example app: 85 file sizes averaging 5,000 bytes (src/files/costs.rs). */
function typicalAppSizes() {
  const sizes = [];
  for (let i = 0; i < 50; i++) sizes.push(300 + ((i * 397) % 2_300));
  for (let i = 0; i < 25; i++) sizes.push(3_000 + ((i * 2_741) % 9_000));
  for (let i = 0; i < 9; i++) sizes.push(13_000 + ((i * 1_931) % 9_000));
  sizes.push(425_000 - sizes.reduce((s, x) => s + x, 0));
  return sizes;
}

test("the plan's example, 100 apps x 85 files x 5 KB, measured from real rows: the default tiers keep D1 70-80 % smaller", async () => {
  const plan = await startWorker();
  try {
    const sizes = typicalAppSizes();
    assert.equal(sizes.length, 85);
    assert.equal(sizes.reduce((s, x) => s + x, 0), 425_000);
    // 100 batch uploads, four at a time (each one D1 batch and ~68 R2 puts).
    const upload = async (a) => {
      const app = `plan-${String(a).padStart(3, "0")}`;
      const files = sizes.map((size, i) => ({ path: `src/${i < 50 ? "modules" : i < 75 ? "styles" : "bundles"}/file-${String(i).padStart(2, "0")}.txt`, content: text(size, `${app}-${i}`) }));
      await ok(await plan.api(`/api/apps/${app}/files:batch`, json("POST", { files })));
    };
    for (let a = 0; a < 100; a += 4) await Promise.all([a, a + 1, a + 2, a + 3].map(upload));
    const r = await ok(await plan.api("/api/admin/storage/report?refresh=true"));
    const files = r.database_size_reduction_by_workload.find((x) => x.workload === "app_files");
    const byTable = Object.fromEntries(r.costs.d1.tables.filter((t) => t.workload === "app_files").map((t) => [t.table, t.estimated_bytes]));
    const measured = {
      tiers: r.costs.tiers,
      d1_bytes: files.d1_bytes,
      all_inline_d1_bytes: files.all_inline_d1_bytes,
      reduction_percent: files.percent,
      tables: byTable,
      model: { reduction_percent: r.plan_example.database_size_reduction_percent, tiered: r.plan_example.tiered_d1_bytes, all_inline: r.plan_example.all_inline_d1_bytes },
    };
    console.log(`plan example, measured: ${JSON.stringify(measured)}`);
    assert.deepEqual([r.costs.tiers.database.files + r.costs.tiers.hybrid.files + r.costs.tiers.r2.files, r.costs.tiers.database.bytes + r.costs.tiers.hybrid.bytes + r.costs.tiers.r2.bytes], [8_500, 42_500_000]);
    assert.ok(files.percent >= 70 && files.percent <= 80, `measured D1 reduction ${files.percent} % (plan: 70-80 %)`);
    assert.equal(r.plan_example.meets_plan, true);
  } finally {
    await plan.dispose();
  }
});
