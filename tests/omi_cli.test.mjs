// The legacy-log migration CLI, run as a separate process against the worker on loopback.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorker, API_TOKEN, ROOT, listKeys } from "./helpers/worker.mjs";
import { makeMemory, dbCount } from "./helpers/omi.mjs";

const run = promisify(execFile);
let w, url, dir;
before(async () => {
  w = await startWorker();
  url = (await w.mf.ready).toString();
  dir = mkdtempSync(join(tmpdir(), "omi-logs-"));
});
after(async () => {
  await w?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("migrates a legacy omi-logs directory, resumes, and is safe to re-run", async () => {
  const m = (id) => makeMemory({ id });
  const a1 = m("a1");
  mkdirSync(join(dir, "mentor-a", "2024-03-01"), { recursive: true });
  mkdirSync(join(dir, "by-user", "mentor-b"), { recursive: true });
  writeFileSync(join(dir, "mentor-a", "2024-03-01", "a1-1709251200000.json"),
    JSON.stringify({ memory: a1, processed: {}, webhook_received_at: "2024-03-01T00:00:00Z" }));
  writeFileSync(join(dir, "mentor-a", "2024-03-01", "a1-1709251200500.json"), // the old app's duplicate
    JSON.stringify({ memory: a1, processed: {}, webhook_received_at: "2024-03-01T00:00:00Z" }));
  writeFileSync(join(dir, "by-user", "mentor-b", "log.ndjson"), [m("b1"), m("b2")].map((x) => JSON.stringify(x)).join("\n"));
  writeFileSync(join(dir, "mixed.json"), JSON.stringify([{ ...m("c1"), uid: "mentor-c" }]));

  const cli = (...extra) => run("node", [join(ROOT, "scripts", "migrate-omi-logs.mjs"), dir, "--url", url, "--token", API_TOKEN, "--batch", "2", ...extra]);
  const first = JSON.parse((await cli()).stdout);
  assert.deepEqual({ ...first, files: undefined }, { files: undefined, imported: 4, duplicates: 1, failed: 0, unreadable: 0, dryRun: false });
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id IN ('mentor-a','mentor-b','mentor-c')"), 4);
  assert.ok(existsSync(join(dir, ".r2d1-import-state.json")));

  const resumed = JSON.parse((await cli()).stdout);
  assert.equal(resumed.imported + resumed.duplicates, 0, "finished files are skipped");

  rmSync(join(dir, ".r2d1-import-state.json"));
  const again = JSON.parse((await cli()).stdout);
  assert.equal(again.imported, 0);
  assert.equal(again.duplicates, 5);
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/mentor-a/")).length, 1);
});

test("a wrong token fails clearly with a non-zero exit", async () => {
  const res = await run("node", [join(ROOT, "scripts", "migrate-omi-logs.mjs"), dir, "--url", url, "--token", "wrong", "--state", join(dir, "other-state.json")]).catch((e) => e);
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /401/);
});
