#!/usr/bin/env node
// npm run bench [-- --quick] [--no-build] [--out=FILE] [--verbose]
//
// Builds the release worker if needed, starts r2d1 and the two baselines (bench/baselines/) each
// in its own workerd on 127.0.0.1 with fresh in-memory R2 and D1, seeds the same data into each
// through the public API, drives the load from a separate process (bench/load.mjs), prints a
// table and writes bench/results.json (--quick: bench/out/results.quick.json).
//
// Fairness: every comparison runs the same requests, in the same order, against each worker;
// each cell is split into two rounds run in opposite target order (ABC, CBA), so drift in the
// machine's background load (2 shared cores) falls on all of them alike.
import { fork, execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { ROOT, listKeys } from "../tests/helpers/worker.mjs";
import { TARGETS, startTarget, label, cpuSeconds, API_TOKEN, WEBHOOK_TOKEN } from "./lib/targets.mjs";
import { memory, newestIds, streamIndex, fileBody, SEARCH_WORD, EPOCH_MS } from "./lib/data.mjs";
import { summarise, table, fmtMs, fmtRatio, round } from "./lib/stats.mjs";

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

// Sizes of every phase. Full: ≤ 10 minutes on 2 cores; quick: ≤ 2.
const P = QUICK
  ? {
      budgetS: 110,
      ingest: { c1: 60, c8: 200, c32: 400, dup: 300 },
      logsMentor: 1000,
      statsMentor: 1000, // the same mentor serves both figures
      queryCount: 60,
      seedQueryCount: 30,
      seedStatsCount: 4,
      fleetSmall: 1000,
      fleetLarge: 5_000,
      fleetQueryCount: 40,
      fileCount: { 512: 10, 5120: 10, 51200: 6, 1048576: 3 },
      appOps: 3,
      restarts: 0,
    }
  : {
      budgetS: 570,
      ingest: { c1: 300, c8: 800, c32: 1600, dup: 800 },
      logsMentor: 5000,
      statsMentor: 1000,
      queryCount: 300,
      seedQueryCount: 150,
      seedStatsCount: 20,
      fleetSmall: 1000,
      fleetLarge: 100_000,
      fleetQueryCount: 150,
      fileCount: { 512: 60, 5120: 60, 51200: 40, 1048576: 15 },
      appOps: 10,
      restarts: 2,
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
const results = {
  schema: 1,
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
 * merges each target's rounds.
 */
async function compare(names, count, jobFor, rounds = 2) {
  const parts = Object.fromEntries(names.map((n) => [n, []]));
  const cpu = Object.fromEntries(names.map((n) => [n, { workerd: 0, loader: 0, wall: 0 }]));
  const per = Math.ceil(count / rounds);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...names].reverse() : names;
    const from = r * per;
    const n = Math.min(per, count - from);
    if (n <= 0) break;
    for (const name of order) {
      const w0 = cpuSeconds(targets[name].pid);
      const l0 = cpuSeconds(loader.pid);
      const t0 = performance.now();
      parts[name].push(await loader.run(jobFor(name, from, n)));
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
        cpuPercent: { workerd: round((cpu[n].workerd / cpu[n].wall) * 100, 0), loader: round((cpu[n].loader / cpu[n].wall) * 100, 0) },
      },
    ]),
  );
}

function ingestJob(target, { uids, from, count, concurrency, size = "full", dupRate = 0, salt = "", indexBase = 0, maxMs = 90_000, keepLatencies = true }) {
  return {
    kind: "ingest",
    origin: targets[target].origin,
    token: WEBHOOK_TOKEN,
    uids,
    from,
    count,
    concurrency,
    size,
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
  routes.import = !isMissingRoute(await call("r2d1", "/api/omi/import", { method: "POST", headers: { "content-type": "application/x-ndjson" }, body: "" }));
  routes.files = !isMissingRoute(await call("r2d1", "/api/apps/bench-probe/files/probe.txt"));
  routes.versions = !isMissingRoute(await call("r2d1", "/api/apps/bench-probe/versions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
  // Same probe memory into the baselines, so every worker holds the same data.
  for (const t of ["peer", "seed"]) {
    const r = await fetch(new URL(`/api/omi/memory?uid=probe-user&token=${WEBHOOK_TOKEN}`, targets[t].origin), { method: "POST", body: JSON.stringify(probe) });
    if (r.status !== 200) throw new Error(`${t} ingest probe answered ${r.status}: ${await r.text()}`);
  }
  log("r2d1 routes present:", Object.entries(routes).map(([k, v]) => `${k}=${v ? "yes" : "MISSING"}`).join(" "));
}

async function figureIngest() {
  const names = routes.ingest ? TARGETS : TARGETS.filter((t) => t !== "r2d1");
  const cells = [
    { key: "c1", name: "ingest, unique, c=1", concurrency: 1, count: P.ingest.c1 },
    { key: "c8", name: "ingest, unique, c=8", concurrency: 8, count: P.ingest.c8 },
    { key: "c32", name: "ingest, unique, c=32", concurrency: 32, count: P.ingest.c32 },
    { key: "dup", name: "ingest, 30 % duplicates, c=8", concurrency: 8, count: P.ingest.dup, dupRate: 0.3 },
  ];
  for (const cell of cells) {
    const uids = uidList(`ing-${cell.key}`, 10);
    log(`figure 1: ${cell.name} × ${cell.count}`);
    const rows = await compare(names, cell.count, (t, from, count) =>
      ingestJob(t, { uids, from, count, concurrency: cell.concurrency, dupRate: cell.dupRate || 0, salt: cell.key }),
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
    const r = summarise([await loader.run(ingestJob(t, { uids: [uid], from: 0, count, concurrency, keepLatencies: false, maxMs: 240_000 }))]);
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
  const uids = uidList("fleet", 50);
  log(`figure 4: seeding ${P.fleetSmall} small memories across 50 mentors`);
  const s1 = await seedFleet(uids, 0, P.fleetSmall, 120);
  const small = await measureFleet(P.fleetSmall);
  // What is left of the budget, less the time the queries at the larger size take.
  const cap = P.fleetUnbounded ? 3600 : Math.max(20, remainingS() - (QUICK ? 12 : 30));
  log(`figure 4: growing to ${P.fleetLarge} (method: ${routes.import ? "import" : "webhook"}; cap ${cap.toFixed(0)} s)`);
  const s2 = await seedFleet(uids, P.fleetSmall, P.fleetLarge, cap);
  // What the index really holds (a request cut off by an error may still have stored part of
  // its lines): the sum of the 50 mentors' stats, through the public API.
  let reached = 0;
  for (const uid of uids) reached += statsTotal((await call("r2d1", `/api/omi/users/${uid}/stats`)).body) || 0;
  if (!routes.stats) reached = P.fleetSmall + s2.done;
  log(`  reached ${reached} memories in ${s2.seconds} s`);
  const large = await measureFleet(reached);
  const rows = fleetQueries().map((q) => ({
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
  const { runFiles } = await import("./lib/files.mjs");
  const fig = await runFiles({ loader, origin: targets.r2d1.origin, auth, call: (p, i) => call("r2d1", p, i), P, routes, log, fileBody });
  figure({ id: "5", group: 5, ...fig });
}

async function figureStartup() {
  const boot = {};
  for (const t of ["r2d1", "peer"]) {
    boot[t] = [{ bootMs: targets[t].bootMs, firstMs: targets[t].firstMs }];
  }
  for (let i = 0; i < P.restarts; i++) {
    for (const t of ["r2d1", "peer"]) {
      const s = await startTarget(t, { build: BUILD });
      boot[t].push({ bootMs: s.bootMs, firstMs: s.firstMs });
      await s.dispose();
    }
  }
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows = {};
  for (const t of Object.keys(boot)) {
    rows[t] = { bootMs: round(med(boot[t].map((x) => x.bootMs))), firstRequestMs: round(med(boot[t].map((x) => x.firstMs))), starts: boot[t].length };
  }
  const fig = figure({ id: "6", group: 6, name: "wasm size; start-up", wasm: wasmSize(), startup: rows });
  return fig;
}

// ---------------------------------------------------------------------------------------------
// Report

const T = ["r2d1", "peer", "seed"];

function cellText(row) {
  if (!row) return ["–", "–", "–"];
  if (row.na) return [`n/a (${row.na})`, "", ""];
  const err = row.ok < row.n ? ` (${row.n - row.ok} err)` : "";
  return [fmtMs(row.p50) + err, fmtMs(row.p99), row.rps === null ? "–" : `${row.rps}/s`];
}

function ratio(a, b, key) {
  if (!a || !b || a.na || b.na || !a[key] || !b[key]) return null;
  return a[key] / b[key];
}

function report() {
  const lines = [];
  const main = [];
  for (const f of results.figures.filter((f) => f.group <= 3)) {
    if (f.na) {
      main.push([f.name, `n/a (${f.na})`, "", "", "", "", "", "", "", "", "", ""]);
      continue;
    }
    const [a, b, c] = T.map((t) => cellText(f.rows[t]));
    const rp50 = ratio(f.rows.r2d1, f.rows.peer, "p50");
    const rp99 = ratio(f.rows.r2d1, f.rows.peer, "p99");
    const seedX = ratio(f.rows.seed, f.rows.r2d1, "p50");
    main.push([f.name, ...a, ...b, ...c, fmtRatio(rp50), fmtRatio(rp99), fmtRatio(seedX)]);
    f.ratios = { r2d1OverPeerP50: round(rp50), r2d1OverPeerP99: round(rp99), seedOverR2d1P50: round(seedX) };
  }
  lines.push(
    table(
      ["figure", "r2d1 p50", "p99", "thru", "JS peer p50", "p99", "thru", "seed p50", "p99", "thru", "r2d1/peer p50", "r2d1/peer p99", "seed/r2d1 p50"],
      main,
    ),
  );
  const ingestCpu = results.figures.filter((f) => f.group === 1 && f.rows);
  if (ingestCpu.length) {
    lines.push("", "workerd CPU while under ingest load, % of one core (worker + Miniflare's R2/D1 simulators, one JS thread):");
    for (const f of ingestCpu) {
      lines.push(`  ${f.name.padEnd(30)} ` + T.filter((t) => f.rows[t]?.cpuPercent).map((t) => `${t} ${f.rows[t].cpuPercent.workerd}%`).join(", ") + `; load driver ${f.rows.peer?.cpuPercent?.loader ?? "–"}%`);
    }
  }
  const f2 = results.figures.find((f) => f.id === "2");
  if (f2?.correctness) {
    lines.push("", `Which 20 each returns (truth: the 20 newest by created_at of ${P.logsMentor}, discarded ones hidden as r2d1 does):`);
    for (const [t, c] of Object.entries(f2.correctness)) {
      lines.push(`  ${label(t).padEnd(24)} ${c.newestOverlap}/20 of the newest, newest-first order ${c.exactNewestFirst ? "exact" : "NOT exact"}; total ${c.total} (true: ${c.expectedTotal} not discarded)`);
    }
  }
  const f3 = results.figures.find((f) => f.id === "3");
  if (f3?.reportedTotals) {
    lines.push("", "Memory count each stats answer reports:");
    for (const [t, c] of Object.entries(f3.reportedTotals)) lines.push(`  ${label(t).padEnd(24)} ${Object.entries(c).map(([k, v]) => `${k}: ${v}`).join(", ")}`);
  }
  const fd = results.figures.find((f) => f.id === "1.dup");
  if (fd?.storedObjects) {
    lines.push("", `30 % duplicates: ${fd.sent} deliveries of ${fd.distinctMemories} distinct memories; by-user objects kept:`);
    for (const [t, n] of Object.entries(fd.storedObjects)) lines.push(`  ${label(t).padEnd(24)} ${n} (duplicate:true answers: ${fd.rows[t]?.duplicates ?? "–"})`);
  }
  const f4 = results.figures.find((f) => f.id === "4");
  if (f4) {
    lines.push("");
    if (f4.na) lines.push(`Figure 4 (r2d1 queries at scale): n/a (${f4.na})`);
    else {
      lines.push(`r2d1 at ${f4.smallCount.toLocaleString("en")} vs ${f4.largeCount.toLocaleString("en")} memories across 50 mentors (seeded by ${f4.seeding[1].method}):`);
      lines.push(
        table(
          ["query", `p50 @${f4.smallCount}`, "p99", `p50 @${f4.largeCount}`, "p99", "ratio p50", "ratio p99"],
          f4.queries.map((q) => [q.name, fmtMs(q.small.p50), fmtMs(q.small.p99), fmtMs(q.large.p50), fmtMs(q.large.p99), fmtRatio(q.ratioP50), fmtRatio(q.ratioP99)]),
        ),
      );
    }
  }
  const f5 = results.figures.find((f) => f.id === "5");
  if (f5) {
    lines.push("");
    if (f5.na) lines.push(`Figure 5 (files): n/a (${f5.na})`);
    else {
      lines.push("r2d1 files:");
      lines.push(table(["operation", "p50", "p99", "thru", "n"], f5.rows.map((r) => [r.name, ...(r.na ? [`n/a (${r.na})`, "", ""] : cellText(r)), r.n ?? ""])));
    }
  }
  const f6 = results.figures.find((f) => f.id === "6");
  if (f6) {
    lines.push("", `wasm: ${(f6.wasm.raw / 1024).toFixed(0)} KiB raw, ${(f6.wasm.gzip / 1024).toFixed(0)} KiB gzipped (-9)`);
    for (const [t, s] of Object.entries(f6.startup)) {
      lines.push(`start-up ${label(t).padEnd(24)} workerd boot ${fmtMs(s.bootMs)}, first request ${fmtMs(s.firstRequestMs)} (median of ${s.starts})`);
    }
  }
  return lines.join("\n");
}

function targetsCheck() {
  const get = (id) => results.figures.find((f) => f.id === id);
  const checks = [];
  const add = (name, value, goal, met, why = "") => checks.push({ name, value, goal, met, ...(why ? { why } : {}) });
  for (const id of ["1.c1", "1.c8", "1.c32", "1.dup", "2", "3"]) {
    const f = get(id);
    if (!f || f.na || !f.rows.r2d1 || f.rows.r2d1.na) {
      add(`r2d1/peer ${f?.name ?? id}`, null, "≤ 1.0", null, "n/a (route missing)");
      continue;
    }
    const p50 = ratio(f.rows.r2d1, f.rows.peer, "p50");
    const p99 = ratio(f.rows.r2d1, f.rows.peer, "p99");
    const isIngest = id.startsWith("1.");
    add(`r2d1/peer p50, ${f.name}`, round(p50), "≤ 1.0", p50 <= 1.0);
    if (isIngest || id === "2" || id === "3") add(`r2d1/peer p99, ${f.name}`, round(p99), "≤ 1.0", p99 <= 1.0);
  }
  const f3 = get("3");
  if (f3 && !f3.na && f3.rows.r2d1 && !f3.rows.r2d1.na) {
    const x = ratio(f3.rows.seed, f3.rows.r2d1, "p50");
    add("stats at 1,000: seed/r2d1 p50", round(x), "≥ 50×", x >= 50);
  } else add("stats at 1,000: seed/r2d1", null, "≥ 50×", null, "n/a (route missing)");
  const f2 = get("2");
  if (f2 && !f2.na && f2.rows.r2d1 && !f2.rows.r2d1.na) {
    const x = ratio(f2.rows.seed, f2.rows.r2d1, "p50");
    const newest = f2.correctness.r2d1?.exactNewestFirst;
    add("recent logs: seed/r2d1 p50, and r2d1 returns exactly the newest 20", round(x), "≥ 5× and newest", x >= 5 && newest === true);
  } else add("recent logs: seed/r2d1", null, "≥ 5× and newest", null, "n/a (route missing)");
  const f4 = get("4");
  if (f4 && !f4.na) {
    for (const q of f4.queries) add(`${q.name}: p50 at ${f4.largeCount} / at ${f4.smallCount}`, q.ratioP50, "≤ 2×", q.ratioP50 <= 2);
    if (f4.largeCount < f4.target) checks[checks.length - 1].why = `seeding reached ${f4.largeCount} of ${f4.target} within the time bound`;
  } else add("indexed queries 100k vs 1k", null, "≤ 2×", null, "n/a (route missing)");
  const c1 = get("1.c1")?.rows?.r2d1;
  const c32 = get("1.c32")?.rows?.r2d1;
  if (c1 && c32 && !c1.na && !c32.na) add("r2d1 ingest throughput c=32 / c=1", round(c32.rps / c1.rps), "≥ 3×", c32.rps / c1.rps >= 3);
  else add("ingest throughput c=32 / c=1", null, "≥ 3×", null, "n/a (route missing)");
  const f6 = get("6");
  if (f6) add("wasm gzipped (KiB)", round(f6.wasm.gzip / 1024, 0), "≤ 600 KB", f6.wasm.gzip <= 600 * 1000);
  results.targets = checks;
  return table(
    ["target", "value", "goal", "met"],
    checks.map((c) => [c.name, c.value ?? "–", c.goal, c.met === null ? `n/a${c.why ? ": " + c.why : ""}` : c.met ? "yes" : `NO${c.why ? ": " + c.why : ""}`]),
  );
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
    targets[t] = await startTarget(t, { build: BUILD, verbose: VERBOSE });
    log(`started ${label(t)} at ${targets[t].origin} (boot ${fmtMs(targets[t].bootMs)}, first request ${fmtMs(targets[t].firstMs)})`);
  }
  loader = startLoader();
  await probeRoutes();
  results.routes = { ...routes };

  await figureIngest();
  await figureLogsAndStats();
  await figureFiles();
  await figureStartup();
  await figureFleet();

  finish();
}

function finish() {
  results.machine.loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  results.durationS = round(elapsedS(), 0);
  const text = report();
  const checks = targetsCheck();
  console.log(text);
  console.log("\nTargets:\n" + checks);
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
