// Fault injection for the app files: every write path (file PUT, batch, snapshot, restore,
// migration) fails at each named point in turn — the R2 write itself, after the R2 write and
// before the D1 write, and the D1 batch. Each time: a 5xx, no D1 row naming a missing object,
// and the retried call succeeds. At the end GC collects the orphans and the check is clean.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, consistency, collectGarbage } from "./helpers/worker.mjs";
import { sha256, ok as expectOk, big } from "./helpers/files.mjs";

const POINTS = ["r2.put", "files.after_put", "d1.batch"];

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

const ok = (res, status = 200) => expectOk(res, status === 200 ? [200, 201] : status);

async function expectFailure(res, label) {
  const text = await res.text();
  assert.ok(res.status >= 500, `${label}: expected a 5xx, got ${res.status}: ${text}`);
  assert.ok(JSON.parse(text).error.code, `${label}: JSON error`);
}

/** The invariant that must hold after any failure: no row names a missing or wrong object. */
async function noDanglingRows(label) {
  const report = await consistency(w, { mode: "bytes" });
  assert.equal(report.totals.rowsWithoutObjects, 0, `${label}: ${JSON.stringify(report.sections)}`);
  assert.equal(report.totals.shaMismatches, 0, `${label}: ${JSON.stringify(report.sections)}`);
  return report;
}

const put = (app, path, body, fault) =>
  w.api(`/api/apps/${app}/files/${path}`, { method: "PUT", body, headers: fault ? { "x-r2d1-fault": fault } : {} });
const post = (path, body, fault) =>
  w.api(path, { method: "POST", body: body && JSON.stringify(body), headers: { "content-type": "application/json", ...(fault ? { "x-r2d1-fault": fault } : {}) } });

/** An app whose manifest is too big to stay inline, so snapshots write to R2 too. */
async function seedApp(app, files = 40) {
  const list = Array.from({ length: files }, (_, i) => ({
    path: `src/components/generated/very/long/directory/name/component-${String(i).padStart(3, "0")}.tsx`,
    content: i % 4 === 0 ? big(20_000, `${app}-${i}`) : `export const c${i} = ${i};\n`,
  }));
  await ok(await post(`/api/apps/${app}/files:batch`, { files: list }));
  return list;
}

for (const point of POINTS) {
  test(`file PUT fails cleanly at ${point}`, async () => {
    const app = `put-${point.replace(/\W/g, "")}`;
    const body = big(30_000, app);
    await expectFailure(await put(app, "big.txt", body, point), `PUT ${point}`);
    await noDanglingRows(`PUT ${point}`);
    assert.equal((await w.api(`/api/apps/${app}/files/big.txt`)).status, 404);
    await ok(await put(app, "big.txt", body), 201);
    assert.equal(sha256(Buffer.from(await (await w.api(`/api/apps/${app}/files/big.txt`)).arrayBuffer())), sha256(body));
  });

  test(`batch write fails cleanly at ${point}`, async () => {
    const app = `batch-${point.replace(/\W/g, "")}`;
    const files = [{ path: "a.txt", content: big(15_000, "a") }, { path: "b.txt", content: "small" }];
    await expectFailure(await post(`/api/apps/${app}/files:batch`, { files }, point), `batch ${point}`);
    await noDanglingRows(`batch ${point}`);
    const listed = await w.api(`/api/apps/${app}/files`);
    if (listed.status === 200) assert.equal((await listed.json()).files.length, 0, "nothing half-written");
    await ok(await post(`/api/apps/${app}/files:batch`, { files }));
    assert.equal((await (await w.api(`/api/apps/${app}/files`)).json()).files.length, 2);
  });

  test(`snapshot fails cleanly at ${point}`, async () => {
    const app = `snap-${point.replace(/\W/g, "")}`;
    await seedApp(app);
    await expectFailure(await post(`/api/apps/${app}/versions`, { changelog: "first", environment: "dev" }, point), `snapshot ${point}`);
    await noDanglingRows(`snapshot ${point}`);
    assert.equal((await (await w.api(`/api/apps/${app}/versions`)).json()).versions.length, 0);
    const v = await ok(await post(`/api/apps/${app}/versions`, { changelog: "first", environment: "dev" }));
    assert.equal(v.version_number, 1);
    const manifest = await ok(await w.api(`/api/apps/${app}/versions/1`));
    assert.equal(manifest.files.length, 40);
  });

  test(`restore fails cleanly at ${point}`, async () => {
    const app = `restore-${point.replace(/\W/g, "")}`;
    const files = await seedApp(app);
    await ok(await post(`/api/apps/${app}/versions`, { changelog: "v1", environment: "dev" }));
    await ok(await put(app, files[0].path, "changed"), 200);
    await ok(await post(`/api/apps/${app}/versions`, { changelog: "v2", environment: "dev" }));
    await expectFailure(await post(`/api/apps/${app}/versions/1/restore`, null, point), `restore ${point}`);
    await noDanglingRows(`restore ${point}`);
    assert.equal(await (await w.api(`/api/apps/${app}/files/${files[0].path}`)).text(), "changed", "nothing half-restored");
    const restored = await ok(await post(`/api/apps/${app}/versions/1/restore`));
    assert.equal(restored.version_number, 3);
    assert.equal(await (await w.api(`/api/apps/${app}/files/${files[0].path}`)).text(), files[0].content);
  });

  test(`migration fails cleanly at ${point}`, async () => {
    const app = `migrate-${point.replace(/\W/g, "")}`;
    const content = big(12_000, app);
    await ok(await post("/api/admin/storage/import", { app, app_files: [{ path: "legacy.txt", content }] }));
    const row = await w.db.prepare("SELECT storage_location FROM app_files WHERE app_id = ?").bind(app).first();
    assert.equal(row.storage_location, "database");
    await expectFailure(await post(`/api/admin/storage/migrate?app=${app}&batch=10`, null, point), `migrate ${point}`);
    await noDanglingRows(`migrate ${point}`);
    assert.equal((await w.db.prepare("SELECT storage_location FROM app_files WHERE app_id = ?").bind(app).first()).storage_location, "database");
    const r = await ok(await post(`/api/admin/storage/migrate?app=${app}&batch=10`));
    assert.equal(r.moved.length, 1);
    assert.equal((await w.db.prepare("SELECT storage_location FROM app_files WHERE app_id = ?").bind(app).first()).storage_location, "r2");
    assert.equal(await (await w.api(`/api/apps/${app}/files/legacy.txt`)).text(), content);
  });
}

test("retries adopt the blobs their failed attempt wrote; what no retry adopts is an orphan GC collects", async () => {
  // Content addressing: every retry above found its blob already written. Only the manifests of
  // failed snapshot and restore attempts are left over: they are named by their hash, and the
  // retry's manifest differs (its time), so no attempt ever overwrites another's.
  const after = await noDanglingRows("after retries");
  const leftovers = after.sections.flatMap((s) => s.examples).filter((e) => e.startsWith("object without row"));
  assert.equal(leftovers.length, after.totals.objectsWithoutRows);
  assert.ok(leftovers.every((e) => /\/snapshots\/\d+-[0-9a-f]{16}\.json$/.test(e)), JSON.stringify(leftovers));
  await expectFailure(await put("abandoned", "never-retried.txt", big(25_000, "abandoned"), "files.after_put"), "abandoned");
  const before = await noDanglingRows("abandoned");
  assert.equal(before.totals.objectsWithoutRows, after.totals.objectsWithoutRows + 1);
  await collectGarbage(w);
  const report = await consistency(w, { mode: "bytes" });
  assert.equal(report.clean, true, JSON.stringify(report.sections));
});
