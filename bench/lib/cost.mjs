// Figures 7, 8 and 10: what a request costs the isolate, r2d1 against the JS peer.
//
// 7. CPU per request (isolate CPU from the V8 profiler, workerd thread CPU from schedstat;
//    method in bench/lib/cpu.mjs) for ingest (new and re-delivery), logs, stats and analytics.
// 8. Isolate CPU against the body size of a memory (1 KB … 8 MB, photos as base64), and the
//    largest memory under the Free plan's 10 ms.
// 10. Peak memory while an 8 MB memory is ingested.
//
// All at concurrency 1, in two rounds of opposite target order, on the targets the run started
// (with their inspectors open). The profiler runs only in these phases: the latency figures run
// without it.
import { setTimeout as sleep } from "node:timers/promises";
import { Inspector, busyPerWindow, threadCpuPerWindow, rss, resetPeakRss } from "./cpu.mjs";
import { BODY_SIZES } from "./data.mjs";
import { percentile, round } from "./stats.mjs";

export const CPU_TARGETS = ["r2d1", "peer"];

export function spread(xs) {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  return { n: s.length, p50: round(percentile(s, 50)), p99: round(percentile(s, 99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length) };
}

/** One inspector session per target, opened once. */
export async function openInspectors(targets) {
  const out = {};
  for (const name of CPU_TARGETS) out[name] = await Inspector.attach(targets[name].inspectorPort, name);
  return out;
}

/**
 * Runs `job` (made concurrency 1) against `name` under the profiler; returns the answers' wall
 * times and each request's isolate CPU and workerd thread CPU (ms).
 */
async function profiled(ctx, name, job) {
  const t = ctx.targets[name];
  const insp = ctx.inspectors[name];
  await insp.startProfiler(ctx.P.profileIntervalUs);
  const outcome = await ctx.loader.run({ ...job, concurrency: 1, marks: true, cpuThread: { pid: t.pid, tid: t.pid } }).then(
    (res) => ({ res }),
    (error) => ({ error }),
  );
  const profile = await insp.stopProfiler();
  if (outcome.error) throw outcome.error;
  const res = outcome.res;
  const { busyMs, periodUs } = busyPerWindow(profile, res.marks.startUs, ctx.P.profileIntervalUs);
  return { res, isolate: busyMs, thread: threadCpuPerWindow(res.marks.cpuNs), periodUs };
}

/** `jobFor(name, from, count)` for both targets, two rounds in opposite order, merged. */
async function profiledCompare(ctx, count, jobFor) {
  const acc = Object.fromEntries(CPU_TARGETS.map((n) => [n, { wall: [], isolate: [], thread: [], period: [], ok: 0, n: 0, statuses: {} }]));
  const per = Math.ceil(count / 2);
  for (let r = 0; r < 2; r++) {
    const from = r * per;
    const n = Math.min(per, count - from);
    if (n <= 0) break;
    for (const name of r ? [...CPU_TARGETS].reverse() : CPU_TARGETS) {
      const p = await profiled(ctx, name, jobFor(name, from, n));
      const a = acc[name];
      a.wall.push(...(p.res.latencies || []));
      a.isolate.push(...p.isolate);
      a.thread.push(...p.thread);
      a.period.push(p.periodUs);
      a.n += p.res.done;
      for (const [k, v] of Object.entries(p.res.statuses)) {
        a.statuses[k] = (a.statuses[k] || 0) + v;
        if (k >= 200 && k < 300) a.ok += v;
      }
    }
  }
  return Object.fromEntries(
    CPU_TARGETS.map((name) => {
      const a = acc[name];
      return [
        name,
        { n: a.n, ok: a.ok, statuses: a.statuses, wall: spread(a.wall), isolateCpu: spread(a.isolate), threadCpu: spread(a.thread), samplePeriodUs: round(Math.max(...a.period), 0) },
      ];
    }),
  );
}

/** Figure 7: CPU per request by route. `paths`: {logs, stats, daily} as figures 2-3 use them. */
export async function figureCpu(ctx, paths) {
  const n = ctx.P.cpuRequests;
  const uids = ["cpu-0", "cpu-1", "cpu-2", "cpu-3"];
  const routes = [
    { key: "ingest-new", name: "ingest, new memory (2-5 KB)", job: (t, from, count) => ctx.ingestJob(t, { uids, from, count, concurrency: 1, salt: "cpu" }) },
    { key: "ingest-again", name: "ingest, re-delivery", job: (t, from, count) => ctx.ingestJob(t, { uids, from, count, concurrency: 1, salt: "cpu" }) },
    { key: "logs", name: "logs: recent 20", job: (t, from, count) => ctx.getJob(t, [paths.logs], { count }) },
    { key: "stats", name: "stats", job: (t, from, count) => ctx.getJob(t, [paths.stats], { count }) },
    { key: "daily", name: "analytics daily, 60 days, all", job: (t, from, count) => ctx.getJob(t, [paths.daily], { count }) },
  ];
  const rows = [];
  for (const route of routes) {
    const missing = ctx.routes[route.key.startsWith("ingest") ? "ingest" : route.key === "daily" ? "analytics" : route.key] === false;
    if (missing) {
      rows.push({ key: route.key, name: route.name, na: "route missing" });
      continue;
    }
    ctx.log(`figure 7: CPU per request, ${route.name} × ${n}`);
    rows.push({ key: route.key, name: route.name, per: await profiledCompare(ctx, n, route.job) });
  }
  return { id: "7", group: 7, name: "CPU per request (c=1)", rows, method: METHOD };
}

/** Figure 8: isolate CPU of an ingest against the body size. */
export async function figureSizes(ctx) {
  const sizes = [];
  for (const s of BODY_SIZES) {
    const count = ctx.P.sizeCounts[s.name];
    if (!count) continue;
    ctx.log(`figure 8: ingest of ${s.name} memories × ${count}`);
    const uids = [`size-${s.bytes}`];
    const per = await profiledCompare(ctx, count, (t, from, n) => ctx.ingestJob(t, { uids, from, count: n, concurrency: 1, bytes: s.bytes, salt: s.name, maxMs: 120_000 }));
    sizes.push({ name: s.name, bytes: s.bytes, per });
  }
  const fitsLimit = {};
  for (const name of CPU_TARGETS) fitsLimit[name] = largestUnder(sizes, name, ctx.limitMs);
  return { id: "8", group: 8, name: "isolate CPU of an ingest against body size (c=1)", sizes, fitsLimit, limitMs: ctx.limitMs, method: METHOD };
}

/**
 * The largest body whose mean isolate CPU stays under `limitMs`, by linear interpolation between
 * the two measured sizes around the limit (CPU grows about linearly with the bytes parsed and
 * hashed). The mean, not the p50: the big sizes are measured a few times only, and a single
 * request's figure is quantised to the sampling period.
 */
export function largestUnder(sizes, name, limitMs) {
  const pts = sizes.map((s) => ({ bytes: s.bytes, name: s.name, cpu: s.per[name]?.isolateCpu?.mean })).filter((p) => p.cpu !== undefined && p.cpu !== null);
  if (!pts.length) return { bytes: null, text: "not measured" };
  if (pts[0].cpu >= limitMs) return { bytes: 0, text: `none: even ${pts[0].name} takes ${pts[0].cpu} ms` };
  for (let i = 1; i < pts.length; i++) {
    if (pts[i].cpu >= limitMs) {
      const [a, b] = [pts[i - 1], pts[i]];
      const bytes = Math.round(a.bytes + ((limitMs - a.cpu) / (b.cpu - a.cpu)) * (b.bytes - a.bytes));
      return { bytes, text: `about ${fmtBytes(bytes)} (${a.name}: ${a.cpu} ms, ${b.name}: ${b.cpu} ms)` };
    }
  }
  const last = pts[pts.length - 1];
  return { bytes: last.bytes, text: `at least ${last.name} (${last.cpu} ms), the largest measured` };
}

export function fmtBytes(b) {
  if (b === null || b === undefined) return "–";
  if (b >= 1e6) return `${(b / 1e6).toFixed(b >= 1e7 ? 0 : 1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(b >= 1e4 ? 0 : 1)} KB`;
  return `${b} B`;
}

/**
 * Figure 10: memory while one 8 MB memory is ingested, per target.
 * - `isolate` (the target's figure): what the worker's isolate held during the request above
 *   what it held before: JS heap in use + ArrayBuffer backing stores, polled through the
 *   inspector at every await of the request (bench/lib/cpu.mjs), plus the growth of r2d1's wasm
 *   linear memory (exact: it never shrinks, so its size after is the high-water mark of all Rust
 *   held at once, and it stays that size for the isolate's life). A lower bound: a copy made and
 *   dropped inside one synchronous JS stretch is not seen.
 * - `peakRss`: workerd's peak resident memory during the request over just before (Linux VmHWM,
 *   reset through /proc/<pid>/clear_refs): the isolate *and* Miniflare's R2/D1 simulators, which
 *   run in the same process and buffer the object themselves (the peer's figure shows that part).
 */
export async function figureMemory(ctx) {
  const bytes = 8_000_000;
  const per = {};
  for (const name of CPU_TARGETS) per[name] = [];
  for (let r = 0; r < ctx.P.memRuns; r++) {
    for (const name of r % 2 ? [...CPU_TARGETS].reverse() : CPU_TARGETS) {
      ctx.log(`figure 10: memory of an 8 MB ingest into ${name} (${r + 1} of ${ctx.P.memRuns})`);
      const t = ctx.targets[name];
      const insp = ctx.inspectors[name];
      const wasmBefore = name === "r2d1" ? sum(await insp.wasmMemoryBytes()) : 0;
      const jsBefore = await insp.heapUsage();
      await sleep(100);
      if (!resetPeakRss(t.pid)) return { id: "10", group: 10, name: "peak memory, 8 MB ingest", na: "cannot reset peak RSS (/proc/<pid>/clear_refs)" };
      const before = rss(t.pid);
      const poll = insp.pollJsMemory();
      const res = await ctx.loader.run(ctx.ingestJob(name, { uids: [`mem-${r}`], from: 0, count: 1, concurrency: 1, bytes, salt: `mem${r}`, maxMs: 120_000 }));
      await sleep(100);
      const js = await poll.stop();
      const after = rss(t.pid);
      const wasmAfter = name === "r2d1" ? sum(await insp.wasmMemoryBytes()) : 0;
      const jsBase = jsBefore.usedSize + (jsBefore.backingStorageSize || 0);
      per[name].push({
        status: Object.keys(res.statuses).join(","),
        wallMs: round(res.latencies?.[0]),
        jsPeak: js.peak - jsBase,
        jsPolls: js.polls,
        wasmBefore,
        wasmAfter,
        isolate: Math.max(0, js.peak - jsBase) + (wasmAfter - wasmBefore),
        rssBefore: before.rss,
        peakRss: after.peak - before.rss,
      });
    }
  }
  const out = {};
  for (const name of CPU_TARGETS) {
    const runs = per[name];
    const bad = runs.find((x) => x.status !== "200");
    if (bad) {
      out[name] = { na: `ingest answered ${bad.status}`, runs };
      continue;
    }
    const worst = runs.reduce((a, b) => (b.isolate > a.isolate ? b : a));
    out[name] = {
      isolate: worst.isolate,
      peakOverBody: round(worst.isolate / bytes),
      jsPeak: worst.jsPeak,
      wasmGrowth: worst.wasmAfter - worst.wasmBefore,
      wasmHighWater: Math.max(...runs.map((x) => x.wasmAfter)),
      peakRss: Math.max(...runs.map((x) => x.peakRss)),
      rssOverBody: round(Math.max(...runs.map((x) => x.peakRss)) / bytes),
      runs,
    };
  }
  return {
    id: "10",
    group: 10,
    name: "peak memory while an 8 MB memory is ingested",
    bodyName: "8 MB",
    bodyBytes: bytes,
    measure: "isolate: JS heap + ArrayBuffers at each await, + wasm memory growth",
    per: out,
  };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

export const METHOD =
  "isolate CPU: V8 sampling profiler of the worker's isolate (samples in the request's window × the achieved sampling period; " +
  "time in Miniflare's R2/D1 simulators and idle time leave no samples); workerd thread CPU: schedstat of workerd's JS thread " +
  "(worker + simulators + runtime). Windows run from a request's start to the next one's, so waitUntil work counts.";

export async function closeInspectors(inspectors) {
  for (const i of Object.values(inspectors || {})) i.close();
}
