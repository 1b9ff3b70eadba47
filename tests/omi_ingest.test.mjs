// The memory webhook: both payload shapes, storage layout in R2, the D1 index, idempotency,
// versions, signatures, and bad input that must change nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, listKeys, API_TOKEN } from "./helpers/worker.mjs";
import { fixture, makeMemory, postMemory, omiSignature, sha256, dbCount } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker({ bindings: { R2_PUBLIC_URL: "https://files.example.org/" } });
});
after(() => w?.dispose());

async function objectCount(prefix = "mobil3-mentorships/") {
  return (await listKeys(w.bucket, prefix)).length;
}
async function rowCount() {
  return dbCount(w, "SELECT COUNT(*) FROM omi_memories");
}

test("the documented example is stored raw in R2 (by-user and daily copy) and indexed in D1", async () => {
  const raw = fixture("memory_created.docs.json");
  const res = await postMemory(w, "docs-user", raw);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.success, true);
  assert.equal(body.message, "Memory stored in R2");
  assert.equal(body.memory_id, "memory_abc123");
  assert.equal(body.user_id, "docs-user");
  assert.equal(body.duplicate, false);
  assert.equal(body.version, 1);
  const key = body.storage.r2Key;
  assert.match(key, /^mobil3-mentorships\/by-user\/docs-user\/\d{4}\/\d{2}\/memory_abc123-\d{13}\.json$/);
  assert.equal(body.storage.publicUrl, `https://files.example.org/${key}`);

  const obj = await w.bucket.get(key);
  assert.equal(await obj.text(), raw, "raw body bytes unchanged");
  assert.equal(obj.customMetadata.userId, "docs-user");
  assert.equal(obj.customMetadata.memoryId, "memory_abc123");
  assert.equal(obj.customMetadata.type, "memory_created");
  assert.equal(obj.customMetadata.sha256, sha256(raw));
  const ts = key.match(/-(\d{13})\.json$/)[1];
  assert.equal(obj.customMetadata.timestamp, ts);
  const day = new Date(Number(ts)).toISOString().slice(0, 10);
  const copy = await w.bucket.get(`mobil3-mentorships/all/${day}/docs-user-memory_abc123-${ts}.json`);
  assert.ok(copy, "daily copy exists");
  assert.equal(await copy.text(), raw);

  const row = await w.db.prepare("SELECT * FROM omi_memories WHERE user_id = 'docs-user'").first();
  assert.equal(row.memory_id, "memory_abc123");
  assert.equal(row.title, "Project Timeline Discussion");
  assert.equal(row.category, "work");
  assert.equal(row.emoji, "📅");
  assert.equal(row.duration_seconds, 60);
  assert.equal(row.segment_count, 1);
  assert.equal(row.word_count, 5);
  assert.equal(row.action_items_total, 1);
  assert.equal(row.action_items_open, 1);
  assert.equal(row.created_at, Date.parse("2024-07-22T23:59:45.910Z"));
  assert.equal(row.r2_key, key);
  assert.equal(row.sha256, sha256(raw));
  assert.equal(row.size_bytes, Buffer.byteLength(raw));
  assert.equal(row.version, 1);
});

test("the backend shape (speaker_id, apps_results, plugins_results, extra fields) is accepted", async () => {
  const m = makeMemory({ extra: { status: "completed", visibility: "private", geolocation: null, external_data: { a: 1 }, photos: [] } });
  m.apps_response = [{ app_id: "x", content: "y" }];
  const res = await postMemory(w, "backend-user", m, { path: "/api/omi/conversation" });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.duplicate, false);
  const row = await w.db.prepare("SELECT * FROM omi_memories WHERE memory_id = ?").bind(m.id).first();
  assert.equal(row.user_id, "backend-user");
  assert.equal(row.category, "education");
  assert.equal(row.action_items_open, 1);
  assert.equal(row.source, "omi");
  assert.equal(row.language, "en");
});

test("a 1.5 MB payload (inline photo pixels) is stored byte for byte", async () => {
  const m = makeMemory({ extra: { photos: [{ base64: "A".repeat(1_500_000), description: "whiteboard" }] } });
  const raw = JSON.stringify(m);
  assert.ok(raw.length > 1_500_000);
  const res = await postMemory(w, "big-user", raw);
  assert.equal(res.status, 200);
  const { storage } = await res.json();
  const obj = await w.bucket.get(storage.r2Key);
  assert.equal(sha256(Buffer.from(await obj.arrayBuffer())), sha256(raw));
});

test("a re-delivery of the same memory stores nothing new and answers duplicate with the original key", async () => {
  const m = makeMemory();
  const first = await (await postMemory(w, "dup-user", m)).json();
  const before = [await objectCount(), await rowCount()];
  const again = await postMemory(w, "dup-user", m);
  assert.equal(again.status, 200);
  const second = await again.json();
  assert.equal(second.duplicate, true);
  assert.equal(second.version, 1);
  assert.equal(second.storage.r2Key, first.storage.r2Key);
  assert.deepEqual([await objectCount(), await rowCount()], before);
});

test("the same X-Omi-Delivery is answered once, even if the retried body differs", async () => {
  const m = makeMemory();
  const headers = { "X-Omi-Delivery": `delivery-${m.id}` };
  const first = await (await postMemory(w, "delivery-user", m, { headers })).json();
  const before = await objectCount();
  const changed = { ...m, structured: { ...m.structured, title: "reprocessed" } };
  const second = await (await postMemory(w, "delivery-user", changed, { headers })).json();
  assert.equal(second.duplicate, true);
  assert.equal(second.storage.r2Key, first.storage.r2Key);
  assert.equal(await objectCount(), before);
  const idem = await (await postMemory(w, "delivery-user", m, { headers: { "Idempotency-Key": "idem-1" } })).json();
  assert.equal(idem.duplicate, true);
});

test("concurrent deliveries of one memory store exactly one copy", async () => {
  const m = makeMemory();
  const raw = JSON.stringify(m);
  const results = await Promise.all(Array.from({ length: 16 }, () => postMemory(w, "race-user", raw).then((r) => r.json())));
  const stored = results.filter((r) => r.success && !r.duplicate);
  assert.equal(stored.length, 1, JSON.stringify(results));
  assert.ok(results.every((r) => r.storage.r2Key === stored[0].storage.r2Key));
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'race-user'"), 1);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_versions WHERE user_id = 'race-user'"), 1);
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/race-user/")).length, 1);
  const daily = (await listKeys(w.bucket, "mobil3-mentorships/all/")).filter((k) => k.includes("/race-user-"));
  assert.equal(daily.length, 1);
});

test("changed content for the same id is a new version; older versions stay retrievable", async () => {
  const m = makeMemory();
  const v1 = await (await postMemory(w, "ver-user", m)).json();
  const changed = { ...m, structured: { ...m.structured, title: "Reprocessed title" } };
  const v2res = await postMemory(w, "ver-user", changed);
  const v2 = await v2res.json();
  assert.equal(v2.duplicate, false);
  assert.equal(v2.version, 2);
  assert.notEqual(v2.storage.r2Key, v1.storage.r2Key);
  const row = await w.db.prepare("SELECT version, title, r2_key FROM omi_memories WHERE memory_id = ?").bind(m.id).first();
  assert.deepEqual(row, { version: 2, title: "Reprocessed title", r2_key: v2.storage.r2Key });

  const latest = await w.api(`/api/omi/logs/ver-user/${m.id}`);
  assert.equal(latest.headers.get("x-r2d1-version"), "2");
  assert.equal((await latest.json()).structured.title, "Reprocessed title");
  const old = await w.api(`/api/omi/logs/ver-user/${m.id}?version=1`);
  assert.equal(old.status, 200);
  assert.equal((await old.json()).structured.title, m.structured.title);
  const versions = await (await w.api(`/api/omi/logs/ver-user/${m.id}/versions`)).json();
  assert.deepEqual(versions.versions.map((v) => v.version), [1, 2]);
  // the old content again is a duplicate of version 1, not a third version
  const again = await (await postMemory(w, "ver-user", m)).json();
  assert.equal(again.duplicate, true);
  assert.equal(again.version, 1);
  // search sees the new title only
  const found = await (await w.api("/api/omi/logs?userId=ver-user&q=reprocessed")).json();
  assert.equal(found.logs.length, 1);
});

test("webhook auth: missing or wrong token is 401 and writes nothing", async () => {
  const before = [await objectCount(), await rowCount()];
  await expectError(await postMemory(w, "u1", makeMemory(), { token: null }), 401, "unauthorized");
  await expectError(await postMemory(w, "u1", makeMemory(), { token: "wrong-token" }), 401, "unauthorized");
  await expectError(await postMemory(w, "u1", makeMemory(), { token: API_TOKEN }), 401, "unauthorized");
  assert.deepEqual([await objectCount(), await rowCount()], before);
  // Bearer works as well as ?token=
  const m = makeMemory();
  const res = await w.fetch(`/api/omi/memory?uid=bearer-user`, {
    method: "POST",
    headers: { authorization: `Bearer ${(await import("./helpers/worker.mjs")).WEBHOOK_TOKEN}` },
    body: JSON.stringify(m),
  });
  assert.equal(res.status, 200);
});

test("bad input gets a JSON error naming the problem, and nothing is written", async () => {
  const good = makeMemory();
  const cases = [
    ["no uid", () => postMemory(w, undefined, good), 400, "missing_field", /uid/],
    ["uid with slash", () => postMemory(w, "a/b", good), 400, "invalid_field", /uid/],
    ["uid with dot-dot", () => postMemory(w, "..", good), 400, "invalid_field", /uid/],
    ["uid too long", () => postMemory(w, "u".repeat(129), good), 400, "invalid_field", /uid/],
    ["uid with quote", () => postMemory(w, "x' OR '1'='1", good), 400, "invalid_field", /uid/],
    ["empty body", () => postMemory(w, "bad", ""), 400, "invalid_json", /empty/],
    ["invalid JSON", () => postMemory(w, "bad", "{not json"), 400, "invalid_json", /JSON/],
    ["JSON array", () => postMemory(w, "bad", "[1,2]"), 400, "invalid_json", /object/],
    ["bad UTF-8", () => postMemory(w, "bad", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "invalid_json", /UTF-8/],
    ["missing id", () => postMemory(w, "bad", { ...good, id: undefined }), 400, "missing_field", /^id/],
    ["numeric id", () => postMemory(w, "bad", { ...good, id: 42 }), 400, "invalid_field", /^id/],
    ["id with slash", () => postMemory(w, "bad", { ...good, id: "../../etc" }), 400, "invalid_field", /^id/],
    ["missing created_at", () => postMemory(w, "bad", { ...good, created_at: undefined }), 400, "missing_field", /created_at/],
    ["bad created_at", () => postMemory(w, "bad", { ...good, created_at: "yesterday" }), 400, "invalid_field", /created_at/],
    ["bad finished_at", () => postMemory(w, "bad", { ...good, finished_at: true }), 400, "invalid_field", /finished_at/],
    ["segments not array", () => postMemory(w, "bad", { ...good, transcript_segments: "hi" }), 400, "invalid_field", /transcript_segments/],
    ["segment not object", () => postMemory(w, "bad", { ...good, transcript_segments: [3] }), 400, "invalid_field", /transcript_segments\[0\]/],
    ["segment text number", () => postMemory(w, "bad", { ...good, transcript_segments: [{ text: 5 }] }), 400, "invalid_field", /text/],
    ["structured not object", () => postMemory(w, "bad", { ...good, structured: [] }), 400, "invalid_field", /structured/],
    ["title not string", () => postMemory(w, "bad", { ...good, structured: { title: {} } }), 400, "invalid_field", /structured.title/],
    ["action items not array", () => postMemory(w, "bad", { ...good, structured: { action_items: {} } }), 400, "invalid_field", /action_items/],
    ["discarded not bool", () => postMemory(w, "bad", { ...good, discarded: "yes" }), 400, "invalid_field", /discarded/],
    ["wrong content type", () => postMemory(w, "bad", good, { headers: { "content-type": "application/xml" } }), 415, "unsupported_media_type", /Content-Type/],
    ["empty delivery id", () => postMemory(w, "bad", good, { headers: { "X-Omi-Delivery": "x".repeat(201) } }), 400, "invalid_field", /X-Omi-Delivery/],
    // GET and HEAD describe the webhook (issue 12); other methods are refused
    ["wrong method", () => w.fetch("/api/omi/memory?uid=bad", { method: "DELETE" }), 405, "method_not_allowed", /POST or GET/],
  ];
  const before = [await objectCount(), await rowCount()];
  for (const [name, call, status, code, message] of cases) {
    const body = await expectError(await call(), status, code).catch((e) => assert.fail(`${name}: ${e.message}`));
    assert.match(body.error.message, message, name);
  }
  assert.ok(cases.length >= 20);
  assert.deepEqual([await objectCount(), await rowCount()], before);
});

test("a body over MAX_BODY_BYTES is 413 and writes nothing", async () => {
  const small = await startWorker({ bindings: { MAX_BODY_BYTES: "1000" } });
  try {
    await expectError(await postMemory(small, "u", makeMemory({ text: "x".repeat(2000) })), 413, "payload_too_large");
    assert.equal((await listKeys(small.bucket)).length, 0);
    assert.equal(await dbCount(small, "SELECT COUNT(*) FROM omi_memories"), 0);
  } finally {
    await small.dispose();
  }
});

test("signatures: valid (with key rotation) accepted; wrong, stale, missing rejected", async () => {
  const secret = "whsec_test_signing_secret";
  const s = await startWorker({ bindings: { OMI_SIGNING_SECRET: secret } });
  try {
    const post = (uid, raw, signature) =>
      s.fetch(`/api/omi/memory?uid=${uid}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(signature ? { "x-omi-signature": signature } : {}) },
        body: raw,
      });
    const raw = JSON.stringify(makeMemory());
    const now = Math.floor(Date.now() / 1000);
    const ok = await post("sig-user", raw, omiSignature(secret, now, "sig-user", raw, ["00".repeat(32)]));
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal((await ok.json()).duplicate, false);

    const raw2 = JSON.stringify(makeMemory());
    await expectError(await post("sig-user", raw2), 401, "unauthorized");
    await expectError(await post("sig-user", raw2, omiSignature("whsec_wrong", now, "sig-user", raw2)), 401, "unauthorized");
    await expectError(await post("sig-user", raw2, omiSignature(secret, now, "other-user", raw2)), 401, "unauthorized");
    await expectError(await post("sig-user", raw2 + " ", omiSignature(secret, now, "sig-user", raw2)), 401, "unauthorized");
    const stale = await expectError(await post("sig-user", raw2, omiSignature(secret, now - 301, "sig-user", raw2)), 401, "unauthorized");
    assert.match(stale.error.message, /timestamp/);
    await expectError(await post("sig-user", raw2, "t=abc,v1=zz"), 401, "unauthorized");
    // the token alone is not enough once signing is configured
    await expectError(await postMemory(s, "sig-user", raw2), 401, "unauthorized");
    assert.equal(await dbCount(s, "SELECT COUNT(*) FROM omi_memories"), 1);
  } finally {
    await s.dispose();
  }
});

test("without a shared token or signing secret only per-mentor credentials open the webhook (401 otherwise)", async () => {
  const open = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "" } });
  try {
    await expectError(await postMemory(open, "u", makeMemory(), { token: "" }), 401, "unauthorized");
    await expectError(await postMemory(open, "u", makeMemory(), { token: null }), 401, "unauthorized");
  } finally {
    await open.dispose();
  }
});

test("WRITE_DAILY_COPY=false writes only the by-user object", async () => {
  const s = await startWorker({ bindings: { WRITE_DAILY_COPY: "false" } });
  try {
    assert.equal((await postMemory(s, "nodaily", makeMemory())).status, 200);
    assert.equal((await listKeys(s.bucket, "mobil3-mentorships/all/")).length, 0);
    assert.equal((await listKeys(s.bucket, "mobil3-mentorships/by-user/")).length, 1);
  } finally {
    await s.dispose();
  }
});

test("a failure between the R2 write and the index write is a 5xx, leaves no row, and the retry stores one memory", async () => {
  const m = makeMemory();
  const raw = JSON.stringify(m);
  const fail = await postMemory(w, "fault-user", raw, { headers: { "x-r2d1-fault": "omi.after_put" } });
  assert.ok(fail.status >= 500, `status ${fail.status}`);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'fault-user'"), 0);
  const retry = await (await postMemory(w, "fault-user", raw)).json();
  assert.equal(retry.duplicate, false);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'fault-user'"), 1);
  // the failed attempt's objects are orphans; reconciliation removes them
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/fault-user/")).length, 2);
  let cursor = "";
  do {
    const r = await (await w.api(`/api/omi/reconcile?grace_seconds=0&limit=500`, { method: "POST" })).json();
    cursor = r.nextCursor;
  } while (cursor);
  const left = await listKeys(w.bucket, "mobil3-mentorships/by-user/fault-user/");
  assert.deepEqual(left, [retry.storage.r2Key]);
  const daily = (await listKeys(w.bucket, "mobil3-mentorships/all/")).filter((k) => k.includes("/fault-user-"));
  assert.equal(daily.length, 1);
});

test("a failed D1 batch is a 5xx and leaves no row", async () => {
  const m = makeMemory();
  const fail = await postMemory(w, "batch-fault", m, { headers: { "x-r2d1-fault": "d1.batch" } });
  assert.ok(fail.status >= 500);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'batch-fault'"), 0);
  assert.equal((await (await postMemory(w, "batch-fault", m)).json()).version, 1);
});

test("a failed R2 write is a 5xx and leaves nothing", async () => {
  const m = makeMemory();
  const fail = await postMemory(w, "put-fault", m, { headers: { "x-r2d1-fault": "r2.put" } });
  assert.ok(fail.status >= 500);
  const body = await fail.json();
  assert.equal(body.error.code, "storage_error");
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/put-fault/")).length, 0);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'put-fault'"), 0);
});

test("the per-uid webhook rate limit answers 429 with Retry-After, and other uids are unaffected", async () => {
  const limited = await startWorker({ webhookLimit: 3 });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await postMemory(limited, "busy", makeMemory())).status, 200);
    const res = await postMemory(limited, "busy", makeMemory());
    const body = await expectError(res, 429, "rate_limited");
    assert.match(body.error.message, /busy/);
    assert.equal(res.headers.get("retry-after"), "60");
    assert.equal((await postMemory(limited, "calm", makeMemory())).status, 200);
    // unauthenticated requests do not use up the budget
    await expectError(await postMemory(limited, "calm", makeMemory(), { token: "wrong" }), 401, "unauthorized");
    assert.equal(await dbCount(limited, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'busy'"), 3);
    // the refused delivery's objects (written alongside the limiter check) are gone again
    assert.equal((await listKeys(limited.bucket, "mobil3-mentorships/by-user/busy/")).length, 3);
    assert.equal((await listKeys(limited.bucket, "mobil3-mentorships/all/")).filter((k) => k.includes("/busy-")).length, 3);
  } finally {
    await limited.dispose();
  }
});
