// Figure 5: r2d1's app files. PUT/GET of one file at four sizes, then an 85-file app:
// upload, snapshot (new version), diff between versions, restore of an older version.
// Every timed request goes through the load driver; the untimed edits between snapshots go
// straight from the runner.
import { summarise } from "./stats.mjs";

const SIZES = [512, 5120, 51200, 1048576];
const sizeName = (b) => (b >= 1048576 ? `${b / 1048576} MB` : b >= 1024 ? `${b / 1024} KB` : `${b} B`);

/** The 85 files of a small web app: mostly small sources, some assets, a few large bundles. */
function appFiles(fileBody, round) {
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

export async function runFiles({ loader, origin, auth, call, P, log, fileBody }) {
  const rows = [];
  const app = "bench-files";
  const one = async (name, req, extra = {}) => {
    const r = summarise([await loader.run({ kind: "requests", origin, headers: auth, requests: [req], count: 1, concurrency: 1, maxMs: 60_000, samples: 1 })]);
    return r;
  };
  const missing = (r) => (r.statuses[404] || r.statuses[405]) && r.ok === 0;

  for (const size of SIZES) {
    const n = P.fileCount[size];
    log(`figure 5: PUT/GET ${sizeName(size)} × ${n}`);
    const paths = Array.from({ length: n }, (_, i) => `/api/apps/${app}/files/sizes/${size}/file-${i}.txt`);
    const put = await loader.run({
      kind: "requests",
      origin,
      headers: { ...auth, "content-type": "text/plain; charset=utf-8" },
      requests: paths.map((path, i) => ({ method: "PUT", path, body: fileBody(size, `${size}-${i}`) })),
      count: n,
      concurrency: 1,
      maxMs: 60_000,
      samples: 1,
    });
    const get = await loader.run({ kind: "requests", origin, headers: auth, requests: paths.map((path) => ({ method: "GET", path })), count: n, concurrency: 1, maxMs: 60_000, samples: 1 });
    const g = summarise([get]);
    const sampleLen = get.samples[0]?.body?.length;
    rows.push({ name: `PUT ${sizeName(size)}`, ...summarise([put]) });
    rows.push({ name: `GET ${sizeName(size)}`, ...g, ...(size <= 200_000 && sampleLen !== undefined ? { bodyBytesOk: sampleLen === size } : {}) });
  }

  // The 85-file app.
  const a85 = "bench-app85";
  log("figure 5: 85-file app: upload, snapshot, diff, restore");
  const files = appFiles(fileBody, 0);
  let upload = await one("batch", { method: "POST", path: `/api/apps/${a85}/files:batch`, headers: { "content-type": "application/json" }, body: JSON.stringify({ files }) });
  if (missing(upload)) {
    // No batch route: one PUT per file, timed as one operation.
    const t0 = performance.now();
    for (const f of files) await call(`/api/apps/${a85}/files/${f.path}`, { method: "PUT", headers: { "content-type": "text/plain" }, body: f.content });
    upload = { n: 1, ok: 85, note: "85 single PUTs (no batch route)", p50: performance.now() - t0, p99: performance.now() - t0, rps: null };
  }
  rows.push({ name: "upload 85 files (batch)", ...upload });

  const versions = [];
  const snaps = [];
  for (let r = 0; r < P.appOps; r++) {
    if (r > 0) {
      // Change 5 files between snapshots, untimed.
      const changed = appFiles(fileBody, r).filter((_, i) => i % 17 === r % 17);
      for (const f of changed) await call(`/api/apps/${a85}/files/${f.path}`, { method: "PUT", headers: { "content-type": "text/plain" }, body: f.content });
    }
    const res = await loader.run({
      kind: "requests",
      origin,
      headers: auth,
      requests: [{ method: "POST", path: `/api/apps/${a85}/versions`, headers: { "content-type": "application/json" }, body: JSON.stringify({ changelog: `bench ${r}` }) }],
      count: 1,
      concurrency: 1,
      maxMs: 60_000,
      samples: 1,
    });
    snaps.push(res);
    let v = null;
    try {
      v = versionOf(JSON.parse(res.samples[0]?.body || "null"));
    } catch {}
    if (v !== null) versions.push(v);
  }
  const snap = summarise(snaps);
  if (missing(snap)) {
    rows.push({ name: "snapshot (85 files)", na: "route missing" });
    return { name: "files", rows };
  }
  rows.push({ name: "snapshot (85 files)", ...snap });
  if (versions.length < 2) {
    rows.push({ name: "diff", na: `no version numbers in the snapshot answer: ${snaps[0]?.samples[0]?.body?.slice(0, 200)}` });
    return { name: "files", rows };
  }
  const first = versions[0];
  const last = versions[versions.length - 1];
  const diff = summarise([await loader.run({ kind: "requests", origin, headers: auth, requests: [{ method: "GET", path: `/api/apps/${a85}/versions/${first}/diff/${last}` }], count: P.appOps * 3, concurrency: 1, maxMs: 60_000, samples: 1 })]);
  rows.push({ name: `diff v${first}..v${last}`, ...(missing(diff) ? { na: "route missing" } : diff) });
  const restores = [];
  for (let r = 0; r < P.appOps; r++) {
    const v = r % 2 ? last : first;
    restores.push(await loader.run({ kind: "requests", origin, headers: auth, requests: [{ method: "POST", path: `/api/apps/${a85}/versions/${v}/restore`, headers: { "content-type": "application/json" }, body: "{}" }], count: 1, concurrency: 1, maxMs: 60_000, samples: 1 }));
  }
  const restore = summarise(restores);
  rows.push({ name: "restore (85 files)", ...(missing(restore) ? { na: "route missing" } : restore) });
  return { name: "files", rows, versions: { first, last } };
}
