// Hostile HTTP: more than fifty hand-made bad requests, each answered with a 4xx JSON error and
// none changing anything; and the access rule — every route but the health check and Omi's
// setup check refuses a request without the right token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, listKeys, API_TOKEN, WEBHOOK_TOKEN } from "./helpers/worker.mjs";
import { makeMemory, omiSignature } from "./helpers/omi.mjs";

const SECRET = "whsec_hostile_suite";
let w, base;
before(async () => {
  w = await startWorker();
  base = new URL(await w.mf.ready);
  // something to attack: a mentor with memories and an app with files and a version
  for (let i = 0; i < 3; i++) {
    const res = await w.fetch(`/api/omi/memory?uid=victim&token=${WEBHOOK_TOKEN}`, { method: "POST", body: JSON.stringify(makeMemory({ id: `v${i}` })) });
    assert.equal(res.status, 200);
  }
  const put = await w.api("/api/apps/victim-app/files/src/index.js", { method: "PUT", body: "console.log('hi')" });
  assert.equal(put.status, 201);
  assert.equal((await w.api("/api/apps/victim-app/versions", { method: "POST", body: JSON.stringify({ changelog: "v1" }) })).status, 201);
});
after(() => w?.dispose());

/** Row counts of every table and the list of R2 keys: what "changes nothing" compares. */
async function snapshot() {
  // The audit log is left out: recording a refused write is what it is for.
  const { results } = await w.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts%' AND name NOT LIKE '_cf_%' AND name != 'audit_log'").all();
  const counts = {};
  for (const { name } of results) counts[name] = (await w.db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).first()).n;
  return { counts, keys: (await listKeys(w.bucket)).sort() };
}

/**
 * Sends a request with its path exactly as written (no client-side normalisation), with a
 * Content-Length always (as curl and Omi send), so an oversized body can be refused up front.
 */
function raw(method, path, { headers = {}, body } = {}) {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  // A large body waits for "100 Continue", as curl does: a server that refuses it up front
  // answers without reading it.
  const large = payload.length > 1024 * 1024;
  return new Promise((resolve, reject) => {
    let answered = false;
    // A fresh connection each time: workerd closes one whose request body went unread.
    const req = http.request(
      { host: base.hostname, port: base.port, method, path, agent: false,
        headers: { "content-length": payload.length, ...(large ? { expect: "100-continue" } : {}), ...headers } },
      (res) => {
        answered = true;
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", (e) => (answered ? undefined : reject(e)));
    if (large) req.on("continue", () => req.end(payload));
    else req.end(payload);
  });
}

const auth = { authorization: `Bearer ${API_TOKEN}` };
const jsonAuth = { "content-type": "application/json", ...auth };
const hook = (uid, q = "") => `/api/omi/memory?uid=${uid}&token=${WEBHOOK_TOKEN}${q}`;
const good = JSON.stringify(makeMemory({ id: "hostile-good" }));
const sqli = encodeURIComponent("x' OR '1'='1'; DROP TABLE omi_memories; --");

const CASES = [
  // --- the webhook ---------------------------------------------------------------------
  ["POST", hook("h"), { body: "{not json" }],
  ["POST", hook("h"), { body: "" }],
  ["POST", hook("h"), { body: "null" }],
  ["POST", hook("h"), { body: '"a string"' }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), id: 12 }) }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), id: ["a"] }) }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), created_at: 1e400 }) }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), created_at: { $gt: "" } }) }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), transcript_segments: [{ text: ["x"] }] }) }],
  ["POST", hook("h"), { body: JSON.stringify({ ...JSON.parse(good), structured: "title" }) }],
  ["POST", hook("h"), { body: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]) }],
  ["POST", hook("h"), { body: Buffer.alloc(20 * 1024 * 1024, 0x20) }],
  ["POST", hook("h"), { body: good, headers: { "content-type": "text/html" } }],
  ["POST", hook("h"), { body: good, headers: { "x-omi-delivery": "d".repeat(5000) } }],
  ["POST", hook("..%2F..%2Fetc"), { body: good }],
  ["POST", hook("%2e%2e"), { body: good }],
  ["POST", hook("a%00b"), { body: good }],
  ["POST", hook(sqli), { body: good }],
  ["POST", hook("u".repeat(129)), { body: good }],
  ["POST", `/api/omi/memory?token=${WEBHOOK_TOKEN}`, { body: good }],
  ["POST", "/api/omi/memory?uid=h&token=forged", { body: good }],
  ["POST", "/api/omi/memory?uid=h", { body: good, headers: { authorization: "Bearer forged" } }],
  ["POST", `/api/omi/transcript?uid=h&token=${WEBHOOK_TOKEN}`, { body: '{"segments": "no"}' }],
  ["POST", `/api/omi/transcript?uid=h&session_id=..&token=${WEBHOOK_TOKEN}`, { body: "[]" }],
  ["POST", `/api/omi/day-summary?uid=h&token=${WEBHOOK_TOKEN}`, { body: '[{"summary_json": 1}]' }],
  ["PUT", hook("h"), { body: good }],
  ["GET", "/api/omi/memory?uid=h%40x"],
  // --- queries ---------------------------------------------------------------------------
  ["GET", "/api/omi/logs?limit=1000000", { headers: auth }],
  ["GET", "/api/omi/logs?limit=-5", { headers: auth }],
  ["GET", "/api/omi/logs?limit=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?cursor=" + Buffer.from("v1:1:1; DROP TABLE x").toString("base64url"), { headers: auth }],
  ["GET", "/api/omi/logs?cursor=%00%00", { headers: auth }],
  ["GET", "/api/omi/logs?userId=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?category=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?from=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?to=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?include_discarded=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?full=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?q=" + "x".repeat(500), { headers: auth }],
  ["GET", "/api/omi/logs/victim/v0?version=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs/victim/..%2F..", { headers: auth }],
  ["GET", "/api/omi/users/" + sqli + "/stats", { headers: auth }],
  ["GET", "/api/omi/analytics/daily?from=" + sqli, { headers: auth }],
  ["GET", "/api/omi/export?format=" + sqli, { headers: auth }],
  ["DELETE", "/api/omi/users/" + sqli, { headers: auth }],
  ["PATCH", "/api/omi/logs", { headers: auth }],
  ["POST", "/api/omi/reindex?cursor=" + "c".repeat(2000), { headers: auth }],
  ["POST", "/api/omi/reindex?limit=" + sqli, { headers: auth }],
  ["POST", "/api/omi/import", { headers: auth, body: "" }],
  // --- app files -------------------------------------------------------------------------
  ["PUT", "/api/apps/victim-app/files/../../etc/passwd", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/%2e%2e/%2e%2e/secret", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/a//b", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files//abs", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/a%00b", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/%ff%fe", { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/" + "p".repeat(1100), { headers: auth, body: "x" }],
  ["PUT", "/api/apps/victim-app/files/src/index.js", { headers: { ...auth, "if-match": '"' + "0".repeat(64) + '"' }, body: "overwrite" }],
  ["PUT", "/api/apps/" + sqli + "/files/x", { headers: auth, body: "x" }],
  ["POST", "/api/apps/victim-app/files:batch", { headers: jsonAuth, body: "{" }],
  ["POST", "/api/apps/victim-app/files:batch", { headers: jsonAuth, body: '{"files": [{"path": "../x", "content": "a"}]}' }],
  ["POST", "/api/apps/victim-app/files:batch", { headers: jsonAuth, body: '{"files": [{"path": "ok.txt", "content": "@@@", "encoding": "base64"}]}' }],
  ["POST", "/api/apps/victim-app/files:batch", { headers: jsonAuth, body: '{"files": [{"path": "ok.txt", "content": 5}]}' }],
  ["POST", "/api/apps/victim-app/files:batch", { headers: jsonAuth, body: '{"files": "all"}' }],
  ["GET", "/api/apps/victim-app/versions/abc", { headers: auth }],
  ["GET", "/api/apps/victim-app/versions/0", { headers: auth }],
  ["GET", "/api/apps/victim-app/versions/1/diff/" + sqli, { headers: auth }],
  ["POST", "/api/apps/victim-app/versions/-1/restore", { headers: auth }],
  ["POST", "/api/apps/victim-app/versions/99/restore", { headers: auth }],
  ["POST", "/api/apps/victim-app/versions", { headers: jsonAuth, body: '{"changelog": 7}' }],
  // Deleting a version is a real operation since issue 13; a malformed one is still refused.
  ["DELETE", "/api/apps/victim-app/versions/0", { headers: auth }],
  ["POST", "/api/admin/storage/migrate?batch=99999999999", { headers: auth }],
  ["POST", "/api/admin/storage/migrate?dry_run=" + sqli, { headers: auth }],
  ["POST", "/api/admin/storage/gc?grace_hours=-1", { headers: auth }],
  ["POST", "/api/admin/storage/migrate?app=" + sqli, { headers: auth }],
  ["GET", "/api/admin/storage/gc", { headers: auth }],
  ["POST", "/api/admin/storage/import", { headers: jsonAuth, body: '{"app": "../x", "app_files": []}' }],
  // --- the old app's migration, old clients ----------------------------------------------
  ["PUT", "/api/omi/legacy/mapping", { headers: auth, body: "alice,Alice,extra" }],
  ["PUT", "/api/omi/legacy/mapping", { headers: auth, body: '{"alice": "not a uid!"}' }],
  ["PUT", "/api/omi/legacy/mapping", { headers: auth, body: '{"alice": "A1", "Alice": "A2"}' }],
  ["POST", "/api/omi/legacy/migrate?cursor=" + sqli, { headers: auth }],
  ["POST", "/api/omi/legacy/migrate?cursor=v1:1:scan:7:", { headers: auth }],
  ["POST", "/api/omi/legacy/migrate?limit=0", { headers: auth }],
  ["POST", "/api/omi/legacy/migrate?dry_run=" + sqli, { headers: auth }],
  ["GET", "/api/omi/logs?format=" + sqli, { headers: auth }],
  ["OPTIONS", "/api/nothing/here"],
];

test(`${CASES.length} bad requests each get a 4xx JSON error and change nothing`, async () => {
  assert.ok(CASES.length >= 50);
  const before = await snapshot();
  const failures = [];
  for (const [method, path, init = {}] of CASES) {
    const res = await raw(method, path, init);
    let body;
    try {
      body = JSON.parse(res.text);
    } catch {
      body = null;
    }
    const okShape = body && body.error && typeof body.error.code === "string" && typeof body.error.message === "string";
    if (res.status < 400 || res.status >= 500 || !okShape) failures.push(`${method} ${path.slice(0, 80)} -> ${res.status} ${res.text.slice(0, 160)}`);
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(await snapshot(), before);
});

test("SQL metacharacters in free-text search are plain text", async () => {
  const res = await w.api("/api/omi/logs?q=" + sqli);
  assert.equal(res.status, 200);
  assert.deepEqual((await res.json()).logs, []);
  assert.equal((await w.db.prepare("SELECT COUNT(*) AS n FROM omi_memories").first()).n, 3);
});

test("missing, forged and stale signatures are refused when signing is on", async () => {
  const s = await startWorker({ bindings: { OMI_SIGNING_SECRET: SECRET } });
  try {
    const now = Math.floor(Date.now() / 1000);
    const send = (sig) => s.fetch("/api/omi/memory?uid=sig", { method: "POST", body: good, headers: sig ? { "x-omi-signature": sig } : {} });
    for (const sig of [null, `t=${now},v1=${"ab".repeat(32)}`, omiSignature(SECRET, now - 3600, "sig", good), omiSignature(SECRET, now + 3600, "sig", good),
                       omiSignature("whsec_other", now, "sig", good), "t=now,v1=zz", "v1=" + "0".repeat(64), "x".repeat(5000)]) {
      const res = await send(sig);
      assert.equal(res.status, 401, sig);
      assert.equal((await res.json()).error.code, "unauthorized");
    }
    assert.equal((await s.db.prepare("SELECT COUNT(*) AS n FROM omi_memories").first()).n, 0);
  } finally {
    await s.dispose();
  }
});

// Every route of the API, with the method it answers to.
const ROUTES = [
  ["POST", "/api/omi/memory?uid=a"], ["POST", "/api/omi/conversation?uid=a"], ["POST", "/api/omi/transcript?uid=a"],
  ["POST", "/api/omi/webhook?uid=a"], ["POST", "/api/omi/day-summary?uid=a"],
  ["GET", "/api/omi/logs"], ["GET", "/api/omi/logs/victim/v0"], ["GET", "/api/omi/logs/victim/v0/versions"],
  ["GET", "/api/omi/users"], ["GET", "/api/omi/users/victim/stats"], ["DELETE", "/api/omi/users/victim"],
  ["GET", "/api/omi/analytics/daily"], ["GET", "/api/omi/export"], ["GET", "/api/omi/transcripts/victim"],
  ["GET", "/api/omi/transcripts/victim/s"], ["GET", "/api/omi/day-summaries/victim/2025-01-01"],
  ["POST", "/api/omi/import"], ["POST", "/api/omi/reindex"], ["POST", "/api/omi/reconcile"],
  ["GET", "/api/omi/legacy/mapping"], ["PUT", "/api/omi/legacy/mapping"], ["POST", "/api/omi/legacy/migrate"],
  ["GET", "/api/apps"], ["GET", "/api/apps/victim-app"], ["PUT", "/api/apps/victim-app"], ["GET", "/api/apps/victim-app/files"],
  ["POST", "/api/apps/victim-app/files:batch"], ["GET", "/api/apps/victim-app/files/src/index.js"],
  ["PUT", "/api/apps/victim-app/files/src/index.js"], ["DELETE", "/api/apps/victim-app/files/src/index.js"],
  ["GET", "/api/apps/victim-app/versions"], ["POST", "/api/apps/victim-app/versions"], ["GET", "/api/apps/victim-app/versions/1"],
  ["GET", "/api/apps/victim-app/versions/1/files/src/index.js"], ["GET", "/api/apps/victim-app/versions/1/diff/1"],
  ["POST", "/api/apps/victim-app/versions/1/restore"], ["GET", "/api/apps/victim-app/versions/1/archive"],
  ["POST", "/api/admin/storage/migrate"], ["POST", "/api/admin/storage/rollback"], ["POST", "/api/admin/storage/gc"],
  ["GET", "/api/admin/storage/report"], ["POST", "/api/admin/storage/import"], ["GET", "/api/admin/consistency"],
  ["GET", "/api/admin/jobs"], ["POST", "/api/admin/jobs/gc/run"], ["POST", "/api/live/ticket"],
];

test("every route but health and setup refuses a request without the right token", async () => {
  const before = await snapshot();
  for (const [method, path] of ROUTES) {
    // The webhook token opens the webhooks only; the API token opens everything else.
    const webhook = /\/api\/omi\/(memory|conversation|transcript|webhook|day-summary)/.test(path);
    const attempts = [{}, { authorization: "Bearer wrong" }, ...(webhook ? [] : [{ authorization: `Bearer ${WEBHOOK_TOKEN}` }])];
    for (const headers of attempts) {
      const res = await raw(method, path, { headers, body: method === "GET" || method === "DELETE" ? undefined : good });
      assert.equal(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}: ${res.text.slice(0, 120)}`);
      assert.equal(JSON.parse(res.text).error.code, "unauthorized");
    }
  }
  assert.deepEqual(await snapshot(), before);
  assert.equal((await raw("GET", "/api/health")).status, 200);
  assert.equal((await raw("GET", "/api/omi/setup?uid=victim")).status, 200);
});
