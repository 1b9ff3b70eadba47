// Platform budgets, checked: every documented operation, driven at its documented worst case
// on a worker held to the Workers Free plan's 50 subrequests (SUBREQUEST_BUDGET=50), with the
// R2 + D1 operations it made read from its structured log line. A route either fits (it pages,
// batches or stops with a cursor) or is listed in PAID_ONLY, where the Free plan gets a clean
// 413 `over_budget` before anything is half done, and a paid plan's 1,000 is enough. The README's
// "Platform budgets" table is these figures (the test prints them).
//
// Data-driven: every operation of openapi.json is driven from its own examples (the example ids
// are seeded with worst-case data: a mentor with 150 memories, one of them with 5 versions, a
// transcript session of 60 batches, an app of 85 files in two versions), every bounded query
// parameter at its documented maximum, plus the overrides in WORST. A new route needs no line
// here unless its worst case is not its examples at their maximum.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, ray, requestLine, API_TOKEN, WEBHOOK_TOKEN } from "./helpers/worker.mjs";
import { DOC } from "./helpers/contract.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";
import { signV2 } from "./helpers/programme.mjs";

const FREE = 50;
const PAID = 1000;
const SEED = { "x-r2d1-budget": "1000000" };
const TOOLS_SECRET = "whsec_budgets_tools_secret_0123456789";

/** Query parameters that make an operation's worst case, beyond its bounded ones at their maximum. */
const WORST = {
  "GET /api/omi/logs": { userId: "mentor-1", full: "1" },
  "GET /api/omi/export": { userId: "mentor-1" },
  "GET /api/omi/analytics/daily": { userId: "mentor-1" },
  "GET /api/admin/consistency": { mode: "bytes", limit: "1000" },
  "POST /api/admin/storage/migrate": { app: "demo" },
  "POST /api/admin/storage/rollback": { app: "demo" },
};

/** Request bodies for a worst case the examples do not show. */
const BODIES = {
  // 1,000 new records: stored while the budget lasts, the rest left to the next call (nextLine).
  "POST /api/omi/import": () =>
    Array.from({ length: 1000 }, (_, i) => JSON.stringify({ uid: "mentor-imp", ...makeMemory({ id: `imp-${i}` }) })).join("\n"),
  // The documented maximum: 500 files, each big enough to be an R2 object.
  "POST /api/apps/{app}/files:batch": () =>
    JSON.stringify({ files: Array.from({ length: 500 }, (_, i) => ({ path: `batch/f${i}.txt`, content: `${i}`.padEnd(12_000, "b") })) }),
};

/**
 * Operations whose documented worst case does not fit the Free plan. On Free that case is
 * refused cleanly (413 `over_budget`, before the call the platform would refuse); `paid` says
 * whether a paid plan's 1,000 carries it; `free` is the smaller request that fits on Free
 * (checked too).
 */
const PAID_ONLY = {
  "GET /api/apps/{app}/versions/{version}/diff/{other}": {
    why: "reads both versions' changed files: an 85-file app whose every file changed needs a paid plan",
    paid: true,
  },
  "GET /api/admin/storage/report": {
    why: "recounts every tier, version line, object and table (the census) in one answer: a paid plan's budget",
    paid: true,
  },
  "POST /api/admin/storage/rollback": {
    why: "moves `batch` files a call: on Free use `?batch=10`",
    paid: true,
    free: { query: { batch: "10" } },
  },
  "POST /api/apps/{app}/files:batch": {
    why: "500 R2-stored files (> 10 KB each) are 500 R2 writes and their rows, past even a paid plan's 1,000: refused whole; on Free send ≤ 10 such files a batch (inline and D1-stored files cost no R2 call)",
    paid: false,
    free: { body: () => JSON.stringify({ files: Array.from({ length: 10 }, (_, i) => ({ path: `free/f${i}.txt`, content: `${i}`.padEnd(12_000, "f") })) }) },
  },
};

const METHODS = ["get", "head", "post", "put", "patch", "delete"];
const deref = (n) => {
  while (n && n.$ref) n = n.$ref.slice(2).split("/").reduce((o, k) => o[k], DOC);
  return n;
};
const operations = Object.entries(DOC.paths).flatMap(([path, ops]) =>
  Object.entries(ops)
    .filter(([m]) => METHODS.includes(m))
    .map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, path, method, op })),
);
// Reads first, then writes, deletions last (they remove the seeded data).
const ORDER = { get: 0, head: 0, post: 1, put: 1, patch: 1, delete: 2 };
operations.sort((a, b) => ORDER[a.method] - ORDER[b.method]);

/** The worst-case request for an operation: its examples, bounded parameters at their maximum. */
function worstRequest({ name, path, method, op }) {
  const params = (op.parameters || []).map(deref);
  const value = (p) => p.example ?? deref(p.schema)?.example ?? "x";
  let url = path.replace(/\{([^}]+)\}/g, (_, n) => encodeURIComponent(String(value(params.find((p) => p.name === n)))));
  const query = new URLSearchParams();
  for (const p of params) {
    if (p.in !== "query") continue;
    const schema = deref(p.schema) || {};
    if (schema.type === "integer" && Number.isSafeInteger(schema.maximum) && /^(limit|batch)$/.test(p.name)) query.set(p.name, String(schema.maximum));
    else if (p.required) query.set(p.name, String(value(p)));
  }
  for (const [k, v] of Object.entries(WORST[name] || {})) query.set(k, v);
  const headers = {};
  if (op["x-r2d1-access"] === "webhook") query.set("token", WEBHOOK_TOKEN);
  if (op["x-r2d1-access"] === "api") headers.authorization = `Bearer ${API_TOKEN}`;
  if ([...query].length) url += `?${query}`;
  let body;
  const content = deref(op.requestBody)?.content;
  if (content) {
    const [type, media] = Object.entries(content)[0];
    headers["content-type"] = type;
    const example = media.example ?? {};
    if (BODIES[name]) body = BODIES[name]();
    else if (type === "application/x-ndjson") body = example.map((l) => JSON.stringify(l)).join("\n");
    else if (type === "application/json") body = JSON.stringify(example);
    else body = "example bytes".padEnd(20_000, ".");
  }
  if (op["x-r2d1-access"] === "omi-tool") {
    // Signed as Omi signs a chat-tool call (the `v2` scheme), now.
    const t = Math.floor(Date.now() / 1000);
    const delivery = `budget-${op.operationId}-${t}`;
    const [p, q = ""] = url.split("?");
    const signature = signV2(TOOLS_SECRET, { t, delivery, method, path: p, query: q, body: body ?? "" });
    Object.assign(headers, { "x-omi-delivery": delivery, "x-omi-event": "chat_tool", "x-omi-signature": `t=${t},v2=${signature}` });
  }
  return { url, init: { method: method.toUpperCase(), headers, body } };
}

let w;
before(async () => {
  w = await startWorker({ bindings: { SUBREQUEST_BUDGET: String(FREE), OMI_TOOLS_SECRET: TOOLS_SECRET } });
  const seed = (path, init = {}) => w.api(path, { ...init, headers: { ...SEED, ...(init.headers || {}) } });
  // mentor-1: 150 memories, and memory_abc123 in 5 versions.
  const lines = Array.from({ length: 150 }, () => JSON.stringify({ uid: "mentor-1", ...makeMemory() }));
  const imported = await ok(await seed("/api/omi/import", { method: "POST", body: lines.join("\n") }));
  assert.equal(imported.imported, 150);
  for (let v = 1; v <= 5; v++) {
    const res = await postMemory(w, "mentor-1", makeMemory({ id: "memory_abc123", title: `version ${v}` }), { headers: SEED });
    assert.equal(res.status, 200);
  }
  // A transcript session of 60 batches: more than one Free-plan request reads.
  for (let i = 0; i < 60; i++) {
    const segments = [{ text: `segment ${i} `.padEnd(400, "t"), speaker: "SPEAKER_00", speaker_id: 0, is_user: false, start: i * 10, end: i * 10 + 9 }];
    const res = await w.fetch(`/api/omi/transcript?uid=mentor-1&session_id=s1&token=${WEBHOOK_TOKEN}`, {
      method: "POST",
      headers: { ...SEED, "content-type": "application/json" },
      body: JSON.stringify({ session_id: "s1", segments }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  // App demo: 85 files stored in R2, version 1; all 85 changed, version 2.
  for (const round of [1, 2]) {
    const files = Array.from({ length: 85 }, (_, i) => ({ path: i === 0 ? "index.html" : `src/file${i}.txt`, content: `${round}:${i}:`.padEnd(12_000, "x") }));
    await ok(await seed("/api/apps/demo/files:batch", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ files }) }));
    await ok(await seed("/api/apps/demo/versions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }), [200, 201]);
  }
});
after(() => w?.dispose());

test("a transcript session longer than one request's budget is read in pages that add up to all of it", async () => {
  const segments = [];
  let cursor = null;
  let calls = 0;
  for (;;) {
    const id = ray("session");
    const query = `limit=${FREE - 5}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await ok(await w.api(`/api/omi/transcripts/mentor-1/s1?${query}`, { headers: { "cf-ray": id } }));
    calls += 1;
    assert.ok((await requestLine(w, id)).operations <= FREE);
    segments.push(...page.segments);
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
    assert.ok(calls < 10);
  }
  assert.equal(calls, 2, "60 batches on the Free plan: two pages");
  assert.equal(segments.length, 60);
  assert.deepEqual(segments.map((s) => Number(s.text.split(" ")[1])), Array.from({ length: 60 }, (_, i) => i));
});

test("every documented operation at its worst case fits the Free plan's 50 R2 + D1 operations, or is paid-plan only", async () => {
  const rows = [];
  const failures = [];
  for (const o of operations) {
    const { url, init } = worstRequest(o);
    const id = ray("budget");
    // Straight to Miniflare: a refusal (413 over_budget) is the finding here, reported below,
    // not a contract failure that would stop the walk (the contract is checked everywhere else).
    const res = await w.mf.dispatchFetch(new URL(url, "http://r2d1.test").toString(), { ...init, headers: { ...init.headers, "cf-ray": id } });
    const text = o.method === "head" ? "" : await res.text();
    const line = await requestLine(w, id, 15_000);
    let code = "";
    try {
      code = JSON.parse(text).error?.code ?? "";
    } catch {}
    const row = { name: o.name, status: res.status, operations: line.operations, r2: line.r2.operations, d1: line.d1.statements };
    const send = async (u, i, budget) => {
      const rid = ray("budget");
      const headers = { ...i.headers, "cf-ray": rid, ...(budget ? { "x-r2d1-budget": String(budget) } : {}) };
      const r = await w.mf.dispatchFetch(new URL(u, "http://r2d1.test").toString(), { ...i, headers });
      await r.arrayBuffer();
      return { status: r.status, line: await requestLine(w, rid, 30_000) };
    };
    const paidOnly = PAID_ONLY[o.name];
    if (paidOnly) {
      if (!(res.status === 413 && code === "over_budget")) failures.push(`${o.name}: listed as paid-plan only, but the Free plan answered ${res.status} ${code}`);
      // The smaller request first: the paid-plan run may leave it nothing to do.
      if (paidOnly.free) {
        const u = new URL(url, "http://r2d1.test");
        for (const [k, v] of Object.entries(paidOnly.free.query || {})) u.searchParams.set(k, v);
        const smaller = await send(u.pathname + u.search, { ...init, body: paidOnly.free.body ? paidOnly.free.body() : init.body });
        row.free = smaller.line.operations;
        if (smaller.status >= 400) failures.push(`${o.name}: the smaller request for the Free plan answered ${smaller.status}`);
      }
      if (paidOnly.paid) {
        const again = await send(url, init, PAID);
        row.paid = again.line.operations;
        if (again.status >= 400) failures.push(`${o.name}: ${again.status} on a paid plan's budget`);
      }
    } else {
      if (code === "over_budget") failures.push(`${o.name}: 413 over_budget at its worst case on the Free plan (${url})`);
      if (res.status >= 500) failures.push(`${o.name}: ${res.status} ${text.slice(0, 200)}`);
    }
    if (line.operations > FREE) failures.push(`${o.name}: ${line.operations} operations`);
    rows.push(row);
  }
  // The figures for the README's table.
  console.log(["| operation | status | R2 + D1 + other | R2 | D1 statements | paid | free |", "|---|---|---|---|---|---|---|"]
    .concat(rows.map((r) => `| \`${r.name}\` | ${r.status} | ${r.operations} | ${r.r2} | ${r.d1} | ${r.paid ?? ""} | ${r.free ?? ""} |`))
    .join("\n"));
  assert.deepEqual(failures, []);
  assert.equal(rows.length, operations.length);
  assert.ok(rows.filter((r) => r.status < 300).length >= operations.length / 2, "most operations reached their worst case, not an error");
});
