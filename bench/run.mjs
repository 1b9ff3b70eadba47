#!/usr/bin/env node
// npm run bench [-- --quick] [--no-build] [--out=FILE] [--verbose] [--fleet=N]
//
// Builds the release worker if needed, starts r2d1 and the two baselines (bench/baselines/) each
// in its own workerd on 127.0.0.1 with fresh in-memory R2 and D1, seeds the same data into each
// through the public API, drives the load from a separate process (bench/load.mjs), prints the
// figures and which of bench/lib/targets.mjs's targets they meet, and writes bench/results.json
// (--quick: bench/out/results.quick.json).
//
// Fairness: every comparison runs the same requests, in the same order, against each worker;
// each cell is split into two rounds run in opposite target order (ABC, CBA), so drift in the
// machine's background load (2 shared cores) falls on all of them alike.
//
// Figures: 1 ingest latency · 2 logs · 3 stats and analytics · 4 r2d1's queries at 1,000 vs
// 100,000 memories · 5 app files · 6 cold start and wasm size · 7 CPU per request · 8 CPU
// against body size · 9 full sync of an app · 10 peak memory of an 8 MB ingest.
import { fork, execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { ROOT, listKeys } from "../tests/helpers/worker.mjs";
import { TARGETS, startTarget, label, cpuSeconds, API_TOKEN, WEBHOOK_TOKEN } from "./lib/workers.mjs";
import { memory, newestIds, streamIndex, fileBody, SEARCH_WORD, EPOCH_MS } from "./lib/data.mjs";
import { summarise, fmtMs, round } from "./lib/stats.mjs";
import { evaluate, ISSUE_16 } from "./lib/targets.mjs";
import { threadCpuPerWindow } from "./lib/cpu.mjs";
import { openInspectors, closeInspectors, figureCpu, figureSizes, figureMemory, spread } from "./lib/cost.mjs";
import { runColdStart } from "./lib/coldstart.mjs";
import { runFiles, runSync } from "./lib/files.mjs";
import { report, targetsTable } from "./lib/report.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, dflt) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
};
const QUICK = flag("quick");
const VERBOSE = flag("verbose");
const OUT = opt("out", QUICK ? join(HERE, "out", "results.quick.json") : join(HERE, "results.json"));
const BUILD = process.env.R2D1_BENCH_BUILD || join(ROOT, "build");

// Sizes of every phase. Full: ≤ 13 minutes on 2 cores; quick: ≤ 3.
const P = QUICK
  ? {
      budgetS: 150,
      ingest: { c1: 60, c8: 200, c32: 400, dup: 300 },
      logsMentor: 1000,
      statsMentor: 1000, // the same mentor serves both figures
      queryCount: 60,
      seedQueryCount: 30,
      seedStatsCount: 4,
      fleetSmall: 1000,
      fleetLarge: 5_000,
      fleetQueryCount: 40,
      fileCount: { 512: 10, 5120: 10, 51200: 6, 1048576: 4 },
      appOps: 4,
      syncRuns: 2,
      coldStarts: 2,
      probePairs: 2,
      cpuRequests: 30,
      sizeCounts: { "1 KB": 10, "10 KB": 10, "100 KB": 6, "1 MB": 2, "8 MB": 2 },
      memRuns: 1,
      profileIntervalUs: 250,
    }
  : {
      budgetS: 760,
      ingest: { c1: 300, c8: 800, c32: 1600, dup: 800 },
      logsMentor: 5000,
      statsMentor: 1000,
      queryCount: 300,
      seedQueryCount: 150,
      seedStatsCount: 20,
      fleetSmall: 1000,
      fleetLarge: 100_000,
      fleetQueryCount: 150,
      fileCount: { 512: 60, 5120: 60, 51200: 40, 1048576: 16 },
      appOps: 10,
      syncRuns: 5,
      coldStarts: 5,
      probePairs: 3,
      cpuRequests: 150,
      sizeCounts: { "1 KB": 40, "10 KB": 40, "100 KB": 30, "1 MB": 8, "8 MB": 4 },
      memRuns: 2,
      profileIntervalUs: 250,
    };
// --fleet=N: grow figure 4 to N memories whatever it takes (lifts the time bound by the
// seeding time; on 2 cores 100,000 take ~7 minutes through the import route).
const FLEET = opt("fleet", null);
if (FLEET) {
  P.fleetLarge = Number(FLEET);
  P.fleetUnbounded = true;
  P.budgetS += Math.ceil(P.fleetLarge / 100);
}

let startedAt = Date.now();
const elapsedS = () => (Date.now() - startedAt) / 1000;
const remainingS = () => P.budgetS - elapsedS();
const log = (...a) => console.error(`[${elapsedS().toFixed(0).padStart(3)}s]`, ...a);

const targets = {};
let loader = null;
let inspectors = null;
const results = {
  schema: 2,
  mode: QUICK ? "quick" : "full",
  figures: [],
  notes: [],
};
const routes = {};

// ---------------------------------------------------------------------------------------------
// Plumbing

function startLoader() {
  const child = fork(join(HERE, "load.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = new Map();
  let nextId = 1;
  child.on("message", (m) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    m.error ? p.reject(new Error(m.error)) : p.resolve(m.result);
  });
  child.on("exit", (code) => {
    for (const p of pending.values()) p.reject(new Error(`load driver exited (${code})`));
    pending.clear();
  });
  return {
    pid: child.pid,
    run(job) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, job });
      });
    },
    stop() {
      if (child.connected) child.send({ type: "exit" });
      setTimeout(() => child.exitCode === null && child.kill(), 2000).unref();
    },
  };
}

let cleaned = false;
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  loader?.stop();
  await closeInspectors(inspectors);
  // Miniflare's dispose can wait on requests still in flight; after 5 s each workerd this run
  // started is ended by its process id.
  await Promise.all(
    Object.values(targets).map((t) =>
      Promise.race([t.dispose().catch(() => {}), new Promise((r) => setTimeout(r, 5000).unref())]).then(() => {
        try {
          const ppid = Number(readFileSync(`/proc/${t.pid}/stat`, "utf8").split(") ")[1].split(" ")[1]);
          if (t.pid && ppid === process.pid) process.kill(t.pid, "SIGKILL");
        } catch {}
      }),
    ),
  );
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    log(`${sig}: stopping everything the bench started`);
    await cleanup();
    process.exit(130);
  });
}

const auth = { authorization: `Bearer ${API_TOKEN}` };

async function call(target, path, init = {}) {
  const res = await fetch(new URL(path, targets[target].origin), {
    ...init,
    headers: { ...auth, ...(init.headers || {}) },
  });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, text, body };
}

/** r2d1 answers an unrouted path with 404 `no route for …` (src/routes.rs). */
function isMissingRoute(r) {
  return (r.status === 404 || r.status === 405) && /no route for/i.test(r.text);
}

/**
 * Runs `jobFor(target, from, count)` for each target in two rounds, in opposite orders, and
 * merges each target's rounds. At concurrency 1 each request's window also gets the CPU time of
 * workerd's JS thread (schedstat: the worker and Miniflare's R2/D1 simulators together;
 * bench/lib/cpu.mjs), as `threadCpu`.
 */
async function compare(names, count, jobFor, rounds = 2) {
  const parts = Object.fromEntries(names.map((n) => [n, []]));
  const threadCpu = Object.fromEntries(names.map((n) => [n, []]));
  const cpu = Object.fromEntries(names.map((n) => [n, { workerd: 0, loader: 0, wall: 0 }]));
  const per = Math.ceil(count / rounds);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    const from = r * per;
    const n = Math.min(per, count - from);
    if (n <= 0) break;
    for (const name of order) {
      const job = jobFor(name, from, n);
      if (job.concurrency === 1) Object.assign(job, { marks: true, cpuThread: { pid: targets[name].pid, tid: targets[name].pid } });
      const w0 = cpuSeconds(targets[name].pid);
      const l0 = cpuSeconds(loader.pid);
      const t0 = performance.now();
      const res = await loader.run(job);
      parts[name].push(res);
      if (res.marks) threadCpu[name].push(...threadCpuPerWindow(res.marks.cpuNs));
      cpu[name].wall += (performance.now() - t0) / 1000;
      cpu[name].workerd += cpuSeconds(targets[name].pid) - w0;
      cpu[name].loader += cpuSeconds(loader.pid) - l0;
    }
  }
  // CPU use while each target was under load: workerd (the worker *and* Miniflare's R2/D1
  // simulators, which share its JS thread) and the load driver, in % of one core.
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        ...summarise(parts[n]),
        ...(threadCpu[n].length ? { threadCpu: spread(threadCpu[n]) } : {}),
        cpuPercent: { workerd: round((cpu[n].workerd / cpu[n].wall) * 100, 0), loader: round((cpu[n].loader / cpu[n].wall) * 100, 0) },
      },
    ]),
  );
}

function ingestJob(target, { uids, from, count, concurrency, size = "full", bytes = 0, dupRate = 0, salt = "", indexBase = 0, maxMs = 90_000, keepLatencies = true }) {
  return {
    kind: "ingest",
    origin: targets[target].origin,
    token: WEBHOOK_TOKEN,
    uids,
    from,
    count,
    concurrency,
    size,
    bytes,
    dupRate,
    salt,
    indexBase,
    maxMs,
    keepLatencies,
    samples: 1,
  };
}

function getJob(target, paths, { count, concurrency = 1, maxMs = 60_000, samples = 1 }) {
  return {
    kind: "requests",
    origin: targets[target].origin,
    headers: auth,
    requests: paths.map((path) => ({ method: "GET", path })),
    count,
    concurrency,
    maxMs,
    samples,
  };
}

const uidList = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);

function figure(fig) {
  results.figures.push(fig);
  return fig;
}

function na(id, name, why) {
  return figure({ id, name, na: why });
}

/** Ids, in order, of a logs response of any of the three shapes. */
function idsOf(body) {
  const logs = body?.logs || body?.data?.logs || [];
  return logs.map((x) => x.memoryId ?? x.memory_id ?? x.id ?? x.memory?.id ?? null);
}

/** The memory count a stats response reports, whatever it calls it. */
function statsTotal(body) {
  let found = null;
  const walk = (o, depth) => {
    if (!o || typeof o !== "object" || depth > 3 || found !== null) return;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "number" && /^(total_?memories|memories|memory_?count|totalMemories|count|total)$/i.test(k)) {
        found = v;
        return;
      }
    }
    for (const v of Object.values(o)) walk(v, depth + 1);
  };
  walk(body, 0);
  return found;
}

function correctness(ids, truth) {
  const set = new Set(truth);
  const overlap = ids.filter((x) => set.has(x)).length;
  const exact = ids.length === truth.length && ids.every((x, i) => x === truth[i]);
  return { returned: ids.length, newestOverlap: overlap, exactNewestFirst: exact };
}

// ---------------------------------------------------------------------------------------------
// Phases

function machine() {
  const pkg = (name) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
    } catch {
      return null;
    }
  };
  const git = (...a) => {
    try {
      return execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
    } catch {
      return null;
    }
  };
  return {
    date: new Date().toISOString(),
    commit: git("rev-parse", "HEAD"),
    branch: git("rev-parse", "--abbrev-ref", "HEAD"),
    dirty: (git("status", "--porcelain", "--untracked-files=no") || "") !== "",
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      workerd: pkg("workerd"),
      miniflare: pkg("miniflare"),
      loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    },
  };
}

function build() {
  if (flag("no-build") && existsSync(join(BUILD, "entry.mjs"))) return log("build: skipped (--no-build)");
  log("build: bash scripts/build.sh (release; skips itself when up to date)");
  const r = spawnSync("bash", ["scripts/build.sh"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, R2D1_PROFILE: "release", R2D1_FEATURES: "", R2D1_OUT: BUILD } });
  if (r.status !== 0) throw new Error("release build failed");
}

function wasmSize() {
  const wasm = readFileSync(join(BUILD, "index_bg.wasm"));
  const raw = wasm.length;
  const gz = gzipSync(wasm, { level: 9 }).length;
  return { raw, gzip: gz };
}

async function probeRoutes() {
  const probe = memory("probe-user", 0, "small");
  const ingest = await fetch(new URL(`/api/omi/memory?uid=probe-user&token=${WEBHOOK_TOKEN}`, targets.r2d1.origin), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(probe),
  });
  const ingestText = await ingest.text();
  routes.ingest = !isMissingRoute({ status: ingest.status, text: ingestText });
  if (routes.ingest && ingest.status !== 200) throw new Error(`r2d1 ingest probe answered ${ingest.status}: ${ingestText}`);
  routes.logs = !isMissingRoute(await call("r2d1", "/api/omi/logs?userId=probe-user&limit=1"));
  routes.stats = !isMissingRoute(await call("r2d1", "/api/omi/users/probe-user/stats"));
  routes.analytics = !isMissingRoute(await call("r2d1", "/api/omi/analytics/daily?from=2025-01-01&to=2025-01-31"));
  // sort=relevance (issue 16): supported when r2d1 validates `sort` (a bogus order is refused)
  // and accepts `relevance`; a route that ignores unknown parameters would answer both alike.
  const bogus = await call("r2d1", `/api/omi/logs?q=${SEARCH_WORD}&sort=bench-no-such-order&limit=1`);
  const relevance = await call("r2d1", `/api/omi/logs?q=${SEARCH_WORD}&sort=relevance&limit=1`);
  routes.relevance = bogus.status === 400 && relevance.status === 200;
  if (!routes.relevance) routes.relevanceWhy = bogus.status === 200 ? "sort=relevance not implemented (sort= is ignored)" : `sort=relevance answered ${relevance.status}`;
  routes.import = !isMissingRoute(await call("r2d1", "/api/omi/import", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: "" }));
  routes.files = !isMissingRoute(await call("r2d1", "/api/apps/bench-probe/files/probe.txt"));
  routes.versions = !isMissingRoute(await call("r2d1", "/api/apps/bench-probe/versions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
  // Same probe memory into the baselines, so every worker holds the same data.
  for (const t of ["peer", "seed"]) {
    const r = await fetch(new URL(`/api/omi/memory?uid=probe-user&token=${WEBHOOK_TOKEN}`, targets[t].origin), { method: "POST", body: JSON.stringify(probe) });
    if (r.status !== 200) throw new Error(`${t} ingest probe answered ${r.status}: ${await r.text()}`);
  }
  log("r2d1 routes present:", Object.entries(routes).filter(([, v]) => typeof v === "boolean").map(([k, v]) => `${k}=${v ? "yes" : "MISSING"}`).join(" "));
}

async function figureIngest() {
  const names = routes.ingest ? TARGETS : TARGETS.filter((t) => t !== "r2d1");
  const cells = [
    { key: "c1", name: "ingest, unique, c=1", concurrency: 1, count: P.ingest.c1 },
    { key: "c8", name: "ingest, unique, c=8", concurrency: 8, count: P.ingest.c8 },
    { key: "c32", name: "ingest, unique, c=32", concurrency: 32, count: P.ingest.c32 },
    { key: "dup", name: "ingest, 30 % duplicates, c=8", concurrency: 8, count: P.ingest.dup, dupRate: 0.3 },
    // Re-deliveries: the c=1 and c=8 cells' memories sent again, byte for byte (Omi's retries).
    { key: "re1", name: "ingest, re-delivery, c=1", concurrency: 1, count: P.ingest.c1, of: "c1" },
    { key: "re8", name: "ingest, re-delivery, c=8", concurrency: 8, count: P.ingest.c8, of: "c8" },
  ];
  for (const cell of cells) {
    const uids = uidList(`ing-${cell.of ?? cell.key}`, 10);
    log(`figure 1: ${cell.name} × ${cell.count}`);
    const rows = await compare(names, cell.count, (t, from, count) =>
      ingestJob(t, { uids, from, count, concurrency: cell.concurrency, dupRate: cell.dupRate || 0, salt: cell.of ?? cell.key }),
    );
    const fig = { id: `1.${cell.key}`, group: 1, name: cell.name, concurrency: cell.concurrency, rows };
    if (!routes.ingest) fig.rows.r2d1 = { na: "route missing" };
    if (cell.dupRate) {
      // What each design kept: objects under by-user/ for these mentors vs distinct memories sent.
      const distinct = new Set();
      for (let i = 0; i < cell.count; i++) distinct.add(streamIndex(i, cell.dupRate, cell.key));
      fig.sent = cell.count;
      fig.distinctMemories = distinct.size;
      fig.storedObjects = {};
      for (const t of names) {
        let n = 0;
        for (const uid of uids) n += (await listKeys(targets[t].bucket, `mobil3-mentorships/by-user/${uid}/`)).length;
        fig.storedObjects[t] = n;
      }
    }
    figure(fig);
  }
}

async function seedMentor(names, uid, count, concurrency = 16) {
  for (const t of names) {
    const job = ingestJob(t, { uids: [uid], from: 0, count, concurrency, keepLatencies: false, maxMs: 240_000 });
    let res = await loader.run(job);
    let r = summarise([res]);
    // On a busy machine a few connections can be closed under the client (status 0, "other side
    // closed"); those memories are sent again (a memory that did arrive answers 200 again, and
    // is stored once in r2d1 and the peer).
    let ok = r.ok;
    for (let retry = 0; retry < 2 && ok !== count && res.transportFailed.length === count - ok; retry++) {
      log(`  seeding ${uid} into ${t}: ${count - ok} transport errors (${r.firstError}); sending those again`);
      res = await loader.run({ ...job, indices: res.transportFailed, count: res.transportFailed.length });
      ok += summarise([res]).ok;
    }
    r = { ...r, ok };
    if (r.ok !== count) throw new Error(`seeding ${uid} into ${t}: ${r.ok}/${count} stored (${JSON.stringify(r.statuses)} ${r.firstError || ""})`);
    log(`  seeded ${count} × ${uid} into ${t} in ${(r.wallMs / 1000).toFixed(1)} s (${r.rps} /s at c=${concurrency})`);
    results.seeding ??= [];
    results.seeding.push({ target: t, uid, count, concurrency, seconds: round(r.wallMs / 1000, 1), rps: r.rps });
  }
}

async function figureLogsAndStats() {
  const names = routes.ingest ? TARGETS : TARGETS.filter((t) => t !== "r2d1");
  log(`figures 2-3: seeding ${P.logsMentor} + ${P.statsMentor} memories into each worker through the webhook`);
  await seedMentor(names, "mentor-logs", P.logsMentor);
  const statsUid = P.statsMentor === P.logsMentor ? "mentor-logs" : "mentor-stats";
  if (statsUid !== "mentor-logs") await seedMentor(names, statsUid, P.statsMentor);

  // Figure 2: the 20 most recent logs of a mentor with P.logsMentor memories.
  const truth = newestIds("mentor-logs", P.logsMentor, 20);
  const logNames = names.filter((t) => t !== "r2d1" || routes.logs);
  const logsPath = "/api/omi/logs?userId=mentor-logs&limit=20";
  log(`figure 2: recent 20 logs of a mentor with ${P.logsMentor}`);
  const rows2 = await compare(logNames, P.queryCount, (t, from, count) =>
    getJob(t, [logsPath], { count: t === "seed" ? Math.min(count, Math.ceil(P.seedQueryCount / 2)) : count, maxMs: 45_000 }),
  );
  const correct2 = {};
  for (const t of logNames) {
    const r = await call(t, logsPath);
    correct2[t] = { ...correctness(idsOf(r.body), truth), total: r.body?.total ?? null, expectedTotal: truth.visible };
  }
  const fig2 = figure({ id: "2", group: 2, name: `logs: recent 20 of ${P.logsMentor.toLocaleString("en")}`, rows: rows2, correctness: correct2 });
  if (!routes.logs) fig2.rows.r2d1 = { na: "route missing" };

  // Figure 3: stats of a mentor with 1,000 memories (and, as a correctness probe, of the one with more).
  const statNames = names.filter((t) => t !== "r2d1" || routes.stats);
  log(`figure 3: stats of a mentor with ${P.statsMentor}`);
  const statsPath = `/api/omi/users/${statsUid}/stats`;
  const rows3 = await compare(statNames, P.queryCount, (t, from, count) =>
    getJob(t, [statsPath], { count: t === "seed" ? Math.min(count, Math.ceil(P.seedStatsCount / 2)) : count, maxMs: 60_000 }),
  );
  const correct3 = {};
  for (const t of statNames) {
    const a = await call(t, statsPath);
    const b = await call(t, "/api/omi/users/mentor-logs/stats");
    correct3[t] = { [`${statsUid} (${P.statsMentor})`]: statsTotal(a.body), [`mentor-logs (${P.logsMentor})`]: statsTotal(b.body) };
  }
  const fig3 = figure({ id: "3", group: 3, name: `stats at ${P.statsMentor.toLocaleString("en")} memories`, rows: rows3, reportedTotals: correct3 });
  if (!routes.stats) fig3.rows.r2d1 = { na: "route missing" };

  // Daily analytics over the same data (r2d1 and the peer; the seed has none): 60 days of the
  // year the memories span, across all mentors and for the big one.
  const from = new Date(EPOCH_MS - 60 * 86400_000).toISOString().slice(0, 10);
  const to = new Date(EPOCH_MS).toISOString().slice(0, 10);
  const daily = {
    "daily-all": { name: "analytics daily, 60 days, all", path: `/api/omi/analytics/daily?from=${from}&to=${to}` },
    "daily-user": { name: "analytics daily, 60 days, one mentor", path: `/api/omi/analytics/daily?from=${from}&to=${to}&userId=mentor-logs` },
  };
  const dailyNames = names.filter((t) => t !== "seed" && (t !== "r2d1" || routes.analytics));
  for (const [key, q] of Object.entries(daily)) {
    log(`figure 3: ${q.name}`);
    const rows = await compare(dailyNames, P.queryCount, (t, from, count) => getJob(t, [q.path], { count, maxMs: 45_000 }));
    const totals = {};
    for (const t of dailyNames) totals[t] = (await call(t, q.path)).body?.totalMemories ?? null;
    const fig = figure({ id: `3.${key}`, group: 3, name: q.name, rows, totalMemories: totals });
    if (!routes.analytics) fig.rows.r2d1 = { na: "route missing" };
  }
  return { logs: logsPath, stats: statsPath, daily: daily["daily-all"].path };
}

// Figure 4: r2d1's indexed queries at 1,000 and at P.fleetLarge memories across 50 mentors.
function fleetQueries() {
  const uid = "fleet-07";
  const from = new Date(EPOCH_MS - 60 * 86400_000).toISOString().slice(0, 10);
  const to = new Date(EPOCH_MS).toISOString().slice(0, 10);
  const q = [];
  if (routes.logs) {
    q.push({ key: "logs-user", name: "logs: one mentor, newest 20", path: `/api/omi/logs?userId=${uid}&limit=20` });
    q.push({ key: "logs-all", name: "logs: all mentors, newest 20", path: `/api/omi/logs?limit=20` });
    q.push({ key: "search-user", name: `search q=${SEARCH_WORD}, one mentor`, path: `/api/omi/logs?userId=${uid}&q=${SEARCH_WORD}&limit=20` });
    q.push({ key: "search-all", name: `search q=${SEARCH_WORD}, all mentors`, path: `/api/omi/logs?q=${SEARCH_WORD}&limit=20` });
    const na = routes.relevance ? null : routes.relevanceWhy;
    q.push({ key: "search-user-relevance", name: `search q=${SEARCH_WORD}, one mentor, sort=relevance`, path: `/api/omi/logs?userId=${uid}&q=${SEARCH_WORD}&sort=relevance&limit=20`, na });
    q.push({ key: "search-all-relevance", name: `search q=${SEARCH_WORD}, all mentors, sort=relevance`, path: `/api/omi/logs?q=${SEARCH_WORD}&sort=relevance&limit=20`, na });
  }
  if (routes.analytics) {
    q.push({ key: "daily-all", name: "analytics daily, 60 days, all", path: `/api/omi/analytics/daily?from=${from}&to=${to}` });
    q.push({ key: "daily-user", name: "analytics daily, 60 days, one mentor", path: `/api/omi/analytics/daily?from=${from}&to=${to}&userId=${uid}` });
  }
  return q;
}

async function measureFleet(label) {
  const out = {};
  for (const q of fleetQueries()) {
    if (q.na) continue;
    out[q.key] = summarise([await loader.run(getJob("r2d1", [q.path], { count: P.fleetQueryCount, maxMs: 30_000 }))]);
    const check = await call("r2d1", q.path);
    out[q.key].sample = { status: check.status, returned: idsOf(check.body).length, total: check.body?.total ?? null };
  }
  log(`  queries at ${label} done`);
  return out;
}

async function seedFleet(uids, fromCount, toCount, capS) {
  const n = toCount - fromCount;
  const t0 = performance.now();
  if (routes.import) {
    // NDJSON import (issue 3), in requests of 500 lines, two at a time.
    const perRequest = 250;
    const first = Math.floor(fromCount / perRequest);
    const requests = Math.ceil(toCount / perRequest) - first;
    const r = summarise([
      await loader.run({
        kind: "import",
        origin: targets.r2d1.origin,
        path: "/api/omi/import",
        headers: auth,
        uids,
        from: first,
        count: requests,
        total: toCount,
        perRequest,
        size: "small",
        indexBase: 0,
        concurrency: 2,
        maxMs: capS * 1000,
        keepLatencies: false,
        samples: 1,
      }),
    ]);
    return {
      method: `POST /api/omi/import (NDJSON, ${perRequest} per request, c=2)`,
      done: Math.min(n, r.ok * perRequest),
      seconds: round((performance.now() - t0) / 1000, 1),
      statuses: r.statuses,
      ...(r.firstError ? { firstError: r.firstError } : {}),
    };
  }
  const r = summarise([
    await loader.run(
      ingestJob("r2d1", { uids, from: fromCount, count: n, concurrency: 32, size: "small", maxMs: capS * 1000, keepLatencies: false }),
    ),
  ]);
  return { method: "public webhook, small payloads (~0.6 KB), c=32", done: r.ok, seconds: round(r.wallMs / 1000, 1), rps: r.rps, statuses: r.statuses, ...(r.firstError ? { firstError: r.firstError } : {}) };
}

async function figureFleet() {
  if (!routes.ingest || !(routes.logs || routes.analytics)) {
    return na("4", "r2d1 queries at 1,000 vs 100,000 memories", "route missing");
  }
  // Figure 4 fills what is left of the time bound; on a machine so busy that nothing is left,
  // it is skipped rather than run past the bound (the watchdog would cut it anyway).
  if (!P.fleetUnbounded && remainingS() < (QUICK ? 20 : 90)) {
    return na("4", "r2d1 queries at 1,000 vs 100,000 memories", `skipped: ${Math.round(elapsedS())} s of the ${P.budgetS} s bound were used before it (a busy machine)`);
  }
  const uids = uidList("fleet", 50);
  log(`figure 4: seeding ${P.fleetSmall} small memories across 50 mentors`);
  const s1 = await seedFleet(uids, 0, P.fleetSmall, 120);
  const small = await measureFleet(P.fleetSmall);
  // What is left of the budget, less the time the queries at the larger size take.
  const cap = P.fleetUnbounded ? 3600 : Math.max(QUICK ? 10 : 20, remainingS() - (QUICK ? 12 : 30));
  log(`figure 4: growing to ${P.fleetLarge} (method: ${routes.import ? "import" : "webhook"}; cap ${cap.toFixed(0)} s)`);
  const s2 = await seedFleet(uids, P.fleetSmall, P.fleetLarge, cap);
  // What the index really holds (a request cut off by an error may still have stored part of
  // its lines): the sum of the 50 mentors' stats, through the public API.
  let reached = 0;
  for (const uid of uids) reached += statsTotal((await call("r2d1", `/api/omi/users/${uid}/stats`)).body) || 0;
  if (!routes.stats) reached = P.fleetSmall + s2.done;
  log(`  reached ${reached} memories in ${s2.seconds} s`);
  const large = await measureFleet(reached);
  const rows = fleetQueries().map((q) => q.na ? { key: q.key, name: q.name, na: q.na } : ({
    key: q.key,
    name: q.name,
    small: small[q.key],
    large: large[q.key],
    ratioP50: round(large[q.key].p50 / small[q.key].p50),
    ratioP99: round(large[q.key].p99 / small[q.key].p99),
  }));
  figure({
    id: "4",
    group: 4,
    name: `r2d1 queries at ${P.fleetSmall.toLocaleString("en")} vs ${reached.toLocaleString("en")} memories (50 mentors)`,
    smallCount: P.fleetSmall,
    largeCount: reached,
    target: P.fleetLarge,
    seeding: [s1, s2],
    queries: rows,
  });
}

async function figureFiles() {
  if (!routes.files) return na("5", "files: PUT/GET, snapshot, diff, restore", "route missing");
  const names = ["r2d1", "peer"];
  const fig = await runFiles({
    loader,
    targets: names,
    origin: (t) => targets[t].origin,
    auth,
    call: (t, p, i) => call(t, p, i),
    P,
    log,
    fileBody,
  });
  figure({ id: "5", group: 5, name: "app files", targets: names, ...fig });
  const sync = await runSync({ loader, origin: targets.r2d1.origin, auth, call: (p, i) => call("r2d1", p, i), P, log });
  figure({ id: "9", group: 9, ...sync });
}

async function figureStartup() {
  const coldStart = await runColdStart({ build: BUILD, rounds: P.coldStarts, probePairs: P.probePairs, log, probeDir: join(HERE, "out", "coldstart-probe") });
  figure({ id: "6", group: 6, name: "wasm size; cold start", wasm: wasmSize(), coldStart });
}

/** What the figure modules (bench/lib/cost.mjs) need from the run. */
function costContext() {
  return { loader, targets, inspectors, P, log, routes, ingestJob, getJob, limitMs: ISSUE_16.cpuLimitMs };
}

// ---------------------------------------------------------------------------------------------

async function main() {
  Object.assign(results, machine());
  log(`r2d1 bench (${results.mode}) on ${results.machine.cpus} × ${results.machine.cpuModel}, load ${results.machine.loadavgAtStart.join(" ")}`);
  const b0 = Date.now();
  build();
  results.buildS = round((Date.now() - b0) / 1000, 0);
  // The time bound is the run's: a release build (about a minute when the sources changed) is
  // not part of it.
  startedAt = Date.now();
  // A hard stop well past the budget, in case a worker hangs or the machine is swamped: what
  // was measured so far is still written (marked incomplete), and everything is torn down.
  const watchdog = setTimeout(async () => {
    log(`watchdog: over ${P.budgetS + 120} s, writing what was measured and stopping`);
    results.incomplete = `stopped by the watchdog after ${Math.round(elapsedS())} s`;
    try {
      finish();
    } catch (e) {
      console.error(e);
    }
    await cleanup();
    process.exit(2);
  }, (P.budgetS + 120) * 1000);
  watchdog.unref();
  for (const t of TARGETS) {
    // r2d1 and the peer with their V8 inspector open, for the CPU and memory figures.
    targets[t] = await startTarget(t, { build: BUILD, verbose: VERBOSE, inspect: t !== "seed" });
    log(`started ${label(t)} at ${targets[t].origin} (boot ${fmtMs(targets[t].bootMs)}, first request ${fmtMs(targets[t].firstMs)})`);
  }
  loader = startLoader();
  await probeRoutes();
  results.routes = { ...routes };

  await figureIngest();
  const paths = await figureLogsAndStats();
  if (routes.ingest) {
    // Inspector sessions only for these figures: the latency figures run with none attached.
    inspectors = await openInspectors(targets);
    figure(await figureCpu(costContext(), paths));
    figure(await figureMemory(costContext()));
    figure(await figureSizes(costContext()));
    await closeInspectors(inspectors);
    inspectors = null;
  } else {
    na("7", "CPU per request", "route missing");
    na("8", "CPU against body size", "route missing");
    na("10", "peak memory, 8 MB ingest", "route missing");
  }
  await figureFiles();
  await figureStartup();
  await figureFleet();

  finish();
}

function finish() {
  results.machine.loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  results.durationS = round(elapsedS(), 0);
  const text = report(results, { label, P });
  results.targets = evaluate(results);
  console.log(text);
  console.log("\nTargets (bench/lib/targets.mjs):\n" + targetsTable(results.targets));
  console.log(
    `\n${results.mode} run, ${results.durationS} s after the build (build ${results.buildS} s), commit ${results.commit?.slice(0, 10)}${results.dirty ? " (dirty)" : ""}, load average ${results.machine.loadavgAtStart.join("/")} → ${results.machine.loadavgAtEnd.join("/")}`,
  );
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + "\n");
  console.log(`wrote ${OUT}`);
}

main()
  .then(cleanup)
  .catch(async (e) => {
    console.error(e);
    await cleanup();
    process.exit(1);
  });
