// Figure 5: app files, r2d1 against the JS peer (bench/baselines/peer-files.mjs): PUT/GET of
// one file at four sizes (one per storage tier and one above), then an 85-file app: upload,
// snapshot (new version), restore of an older version; diff is r2d1's alone (the peer has none).
// Figure 9: a full sync of that app, per-file GETs against one streamed export call.
//
// Every timed request goes through the load driver, and every operation alternates the order in
// which the targets run it (r2d1 first, then the peer first), like the other figures. The
// untimed edits between snapshots go straight from the runner.
import { summarise, round } from "./stats.mjs";

const SIZES = [512, 5120, 51200, 1048576];
export const sizeName = (b) => (b >= 1048576 ? `${b / 1048576} MB` : b >= 1024 ? `${b / 1024} KB` : `${b} B`);
const APP85 = "bench-app85";

/** The 85 files of a small web app: mostly small sources, some assets, a few large bundles. */
export function appFiles(fileBody, round) {
  const files = [];
  for (let i = 0; i < 85; i++) {
    const size = i < 60 ? 400 + ((i * 97) % 1800) : i < 80 ? 5000 + ((i * 1231) % 15000) : 60_000 + i * 1500;
    const dir = i < 30 ? "src/components" : i < 60 ? "src/lib" : i < 80 ? "public/assets" : "dist";
    files.push({ path: `${dir}/file-${String(i).padStart(2, "0")}.${i < 60 ? "ts" : i < 80 ? "svg" : "js"}`, content: fileBody(size, `app-${i}-${round}`) });
  }
  return files;
}

function versionOf(body) {
  if (!body || typeof body !== "object") return null;
  for (const k of ["version_number", "versionNumber", "version", "number", "v"]) if (Number.isInteger(body[k])) return body[k];
  for (const k of ["manifest", "data", "snapshot", "version"]) {
    const v = versionOf(body[k]);
    if (v !== null) return v;
  }
  return null;
}

const missing = (r) => Boolean(r.statuses[404] || r.statuses[405]) && r.ok === 0;

/**
 * `targets`: names to compare (r2d1 first); `origin(name)`, `call(name, path, init)`.
 * Returns `{rows: [{name, per: {target: summary}}], versions}`.
 */
export async function runFiles({ loader, targets, origin, auth, call, P, log, fileBody }) {
  const rows = [];
  const orderOf = (r) => (r % 2 ? [...targets].reverse() : targets);
  const job = (t, requests, count = requests.length, headers = auth) => ({
    kind: "requests",
    origin: origin(t),
    headers,
    requests,
    count,
    concurrency: 1,
    maxMs: 60_000,
    samples: 1,
    // Single operations come seconds apart: each on its own connection (see bench/load.mjs).
    fresh: count === 1,
  });
  const app = "bench-files";

  for (const size of SIZES) {
    const n = P.fileCount[size];
    log(`figure 5: PUT/GET ${sizeName(size)} × ${n} (${targets.join(", ")})`);
    const put = Object.fromEntries(targets.map((t) => [t, []]));
    const get = Object.fromEntries(targets.map((t) => [t, []]));
    const bytesOk = {};
    const half = Math.ceil(n / 2);
    for (let r = 0; r < 2; r++) {
      const from = r * half;
      const count = Math.min(half, n - from);
      if (count <= 0) break;
      const paths = Array.from({ length: count }, (_, i) => `/api/apps/${app}/files/sizes/${size}/file-${from + i}.txt`);
      for (const t of orderOf(r)) {
        put[t].push(
          await loader.run(
            job(t, paths.map((path, i) => ({ method: "PUT", path, body: fileBody(size, `${size}-${from + i}`) })), count, { ...auth, "content-type": "text/plain; charset=utf-8" }),
          ),
        );
        const g = await loader.run(job(t, paths.map((path) => ({ method: "GET", path }))));
        get[t].push(g);
        const len = g.samples[0]?.body?.length;
        if (size <= 200_000 && len !== undefined) bytesOk[t] = (bytesOk[t] ?? true) && len === size;
      }
    }
    rows.push({ name: `PUT ${sizeName(size)}`, per: Object.fromEntries(targets.map((t) => [t, summarise(put[t])])) });
    rows.push({
      name: `GET ${sizeName(size)}`,
      per: Object.fromEntries(targets.map((t) => [t, { ...summarise(get[t]), ...(t in bytesOk ? { bodyBytesOk: bytesOk[t] } : {}) }])),
    });
  }

  // The 85-file app.
  log(`figure 5: 85-file app: upload, snapshot, diff, restore (${targets.join(", ")})`);
  const files = appFiles(fileBody, 0);
  const upload = {};
  for (const t of targets) {
    const r = await loader.run(job(t, [{ method: "POST", path: `/api/apps/${APP85}/files:batch`, headers: { "content-type": "application/json" }, body: JSON.stringify({ files }) }]));
    upload[t] = summarise([r]);
  }
  rows.push({ name: "upload 85 files (batch)", per: upload });

  const versions = Object.fromEntries(targets.map((t) => [t, []]));
  const snaps = Object.fromEntries(targets.map((t) => [t, []]));
  for (let r = 0; r < P.appOps; r++) {
    for (const t of orderOf(r)) {
      if (r > 0) {
        // Change 5 files between snapshots, untimed.
        const changed = appFiles(fileBody, r).filter((_, i) => i % 17 === r % 17);
        for (const f of changed) await call(t, `/api/apps/${APP85}/files/${f.path}`, { method: "PUT", headers: { "content-type": "text/plain" }, body: f.content });
      }
      const res = await loader.run(job(t, [{ method: "POST", path: `/api/apps/${APP85}/versions`, headers: { "content-type": "application/json" }, body: JSON.stringify({ changelog: `bench ${r}` }) }]));
      snaps[t].push(res);
      let v = null;
      try {
        v = versionOf(JSON.parse(res.samples[0]?.body || "null"));
      } catch {}
      if (v !== null) versions[t].push(v);
    }
  }
  const snapRow = { name: "snapshot (85 files)", per: {} };
  for (const t of targets) {
    const s = summarise(snaps[t]);
    snapRow.per[t] = missing(s) ? { na: "route missing" } : s;
  }
  rows.push(snapRow);

  const v = versions[targets[0]];
  if (v.length < 2) {
    rows.push({ name: "diff", per: { [targets[0]]: { na: `no version numbers in the snapshot answer: ${snaps[targets[0]][0]?.samples[0]?.body?.slice(0, 200)}` } } });
    return { rows, versions };
  }
  const [first, last] = [v[0], v[v.length - 1]];
  // Diff: r2d1 only (the peer has no diff route).
  const diff = summarise([await loader.run(job(targets[0], [{ method: "GET", path: `/api/apps/${APP85}/versions/${first}/diff/${last}` }], P.appOps * 3))]);
  rows.push({ name: `diff v${first}..v${last}`, per: { [targets[0]]: missing(diff) ? { na: "route missing" } : diff } });

  const restores = Object.fromEntries(targets.map((t) => [t, []]));
  for (let r = 0; r < P.appOps; r++) {
    for (const t of orderOf(r)) {
      const vs = versions[t];
      const target = r % 2 ? vs[vs.length - 1] : vs[0];
      if (target === undefined) continue;
      restores[t].push(await loader.run(job(t, [{ method: "POST", path: `/api/apps/${APP85}/versions/${target}/restore`, headers: { "content-type": "application/json" }, body: "{}" }])));
    }
  }
  const restoreRow = { name: "restore (85 files)", per: {} };
  for (const t of targets) {
    const s = summarise(restores[t]);
    restoreRow.per[t] = !restores[t].length ? { na: "no versions" } : missing(s) ? { na: "route missing" } : s;
  }
  rows.push(restoreRow);
  return { rows, versions };
}

/**
 * Figure 9 (issue 13): a client syncing the whole 85-file app. Per-file GETs (the list, then
 * each file: one at a time, and 6 at a time as a browser would) against one streamed call,
 * `GET /api/apps/{app}/export` (NDJSON), which is skipped with "route missing" until it exists.
 */
export async function runSync({ loader, origin, auth, call, P, log }) {
  log("figure 9: full sync of the 85-file app");
  const listing = await call(`/api/apps/${APP85}/files`);
  const paths = (listing.body?.files || []).map((f) => f.path);
  const out = { name: `full sync of an ${paths.length}-file app`, files: paths.length, rows: [] };
  if (!paths.length) {
    out.na = `no file list (GET /api/apps/${APP85}/files answered ${listing.status})`;
    return out;
  }
  const encode = (p) => p.split("/").map(encodeURIComponent).join("/");
  const perFile = paths.map((p) => ({ method: "GET", path: `/api/apps/${APP85}/files/${encode(p)}` }));
  for (const concurrency of [1, 6]) {
    const runs = [];
    for (let r = 0; r < P.syncRuns; r++) {
      const t0 = performance.now();
      await loader.run({ kind: "requests", origin, headers: auth, requests: [{ method: "GET", path: `/api/apps/${APP85}/files` }], count: 1, concurrency: 1, maxMs: 60_000 });
      const res = await loader.run({ kind: "requests", origin, headers: auth, requests: perFile, count: perFile.length, concurrency, maxMs: 60_000, keepLatencies: false });
      runs.push({ ms: performance.now() - t0, ok: res.statuses[200] || 0 });
    }
    out.rows.push(syncRow(`list + ${paths.length} GETs, c=${concurrency}`, runs, paths.length));
  }
  const probe = await call(`/api/apps/${APP85}/export`);
  if ((probe.status === 404 || probe.status === 405) && /no route/i.test(probe.text)) {
    out.rows.push({ name: "one streamed export call (NDJSON)", na: `route missing: GET /api/apps/{app}/export answered ${probe.status} (issue 13)` });
    return out;
  }
  const runs = [];
  for (let r = 0; r < P.syncRuns; r++) {
    const t0 = performance.now();
    const res = await loader.run({ kind: "requests", origin, headers: auth, requests: [{ method: "GET", path: `/api/apps/${APP85}/export` }], count: 1, concurrency: 1, maxMs: 60_000, samples: 1, sampleBytes: 64 << 20 });
    const body = res.samples[0]?.body || "";
    const lines = body.split("\n").filter((l) => l.trim()).length;
    runs.push({ ms: performance.now() - t0, ok: res.statuses[200] ? lines : 0, bytes: body.length });
  }
  out.rows.push(syncRow("one streamed export call (NDJSON)", runs, paths.length));
  return out;
}

function syncRow(name, runs, expected) {
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  return { name, runs: runs.length, p50: round(ms[ms.length >> 1]), max: round(ms[ms.length - 1]), complete: runs.every((r) => r.ok >= expected), perRun: runs.map((r) => round(r.ms)) };
}
