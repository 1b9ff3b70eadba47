import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, migrationFiles, splitSql } from "./helpers/worker.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

test("health reports both bindings and the schema version", async () => {
  const res = await w.fetch("/api/health");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /application\/json/);
  const body = await res.json();
  assert.equal(body.status, "ok");
  assert.equal(body.r2, true);
  assert.equal(body.d1, true);
  assert.match(body.version, /^\d+\.\d+\.\d+/);
  const { results } = await w.db.prepare("SELECT MAX(version) AS v FROM schema_version").all();
  assert.equal(body.schema_version, results[0].v);
  // Each file is numbered for the schema version it records.
  assert.equal(body.schema_version, Math.max(...migrationFiles().map((f) => parseInt(f.name, 10))));
});

test("health is degraded (503) when the schema is missing", async () => {
  const bare = await startWorker({ migrate: false });
  try {
    const res = await bare.fetch("/api/health");
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.status, "degraded");
    assert.equal(body.r2, true);
    assert.equal(body.d1, false);
  } finally {
    await bare.dispose();
  }
});

test("unknown routes answer a 404 JSON error", async () => {
  await expectError(await w.fetch("/nope"), 404, "not_found");
  await expectError(await w.fetch("/api/does-not-exist"), 404, "not_found");
});

test("wrong method answers 405 JSON error", async () => {
  await expectError(await w.fetch("/api/health", { method: "DELETE" }), 405, "method_not_allowed");
});

test("invalid configuration is a 503 naming the setting, not a crash", async () => {
  const bad = await startWorker({ bindings: { MAX_BODY_BYTES: "lots" } });
  try {
    const body = await expectError(await bad.fetch("/api/health"), 503, "not_configured");
    assert.match(body.error.message, /MAX_BODY_BYTES/);
  } finally {
    await bad.dispose();
  }
});

test("every migration file has statements and records its schema version", async () => {
  const files = migrationFiles();
  for (const { sql } of files) assert.ok(splitSql(sql).length > 0);
  const { results } = await w.db.prepare("SELECT version FROM schema_version ORDER BY version").all();
  assert.deepEqual(results.map((r) => r.version), files.map((f) => parseInt(f.name, 10)));
});

test("a panic in Rust answers a 500 JSON error and the next request still works", async () => {
  const body = await expectError(await w.fetch("/api/__test/panic"), 500, "internal_error");
  assert.equal(body.error.message, "internal error");
  const res = await w.fetch("/api/health");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, "ok");
});
