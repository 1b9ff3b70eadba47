#!/usr/bin/env node
// node bench/profile.mjs [--n=300] [--route=ingest|logs|stats]
//
// Where a request's CPU goes inside the worker isolate: starts r2d1 (build/) and the JS peer
// with the V8 inspector on, sends the same N requests to each, one at a time, under the
// CPU profiler, and splits the isolate's sampled time into wasm, JS and GC. The difference
// between this and workerd's whole-process CPU (bench/run.mjs prints it) is the time spent in
// Miniflare's R2/D1 simulators, which run in other isolates of the same workerd.
//
// Each sample counts for one sampling period (bench/lib/cpu.mjs), not for the time until the
// next sample: V8 takes no samples while the isolate waits on a binding, so that gap is time in
// the simulators, not in the worker. (Before this was fixed the gaps were counted, which put an
// ingest at ~8 ms of "isolate time" instead of the ~1.5 ms bench/run.mjs's figure 7 measures.)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTarget, cpuSeconds, WEBHOOK_TOKEN, API_TOKEN } from "./lib/workers.mjs";
import { ROOT } from "../tests/helpers/worker.mjs";
import { memory } from "./lib/data.mjs";
import { Inspector, busyPerWindow } from "./lib/cpu.mjs";

const arg = (k, d) => process.argv.find((a) => a.startsWith(`--${k}=`))?.split("=")[1] ?? d;
const N = Number(arg("n", 300));
const ROUTE = arg("route", "ingest");
const BUILD = process.env.R2D1_BENCH_BUILD || join(ROOT, "build");

function classify(node) {
  const f = node.callFrame;
  if (f.functionName === "(idle)") return "idle";
  if (f.functionName === "(garbage collector)") return "gc";
  if (f.functionName === "(program)") return "program";
  if (f.url.startsWith("wasm://") || /^\$?wasm-function|^\$/.test(f.functionName)) return "wasm";
  return "js";
}

async function profileTarget(name) {
  const t = await startTarget(name, { build: BUILD, inspect: true });
  const c = await Inspector.attach(t.inspectorPort, name);
  const auth = { authorization: `Bearer ${API_TOKEN}` };
  // Warm up and seed, untimed: 200 memories for the query routes.
  for (let i = 0; i < 200; i++) {
    await (await fetch(`${t.origin}/api/omi/memory?uid=prof-seed&token=${WEBHOOK_TOKEN}`, { method: "POST", body: JSON.stringify(memory("prof-seed", i)) })).text();
  }
  const bodies = Array.from({ length: N }, (_, i) => JSON.stringify(memory("prof", i)));
  await c.startProfiler(Number(arg("interval", 500)));
  const w0 = cpuSeconds(t.pid);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const res =
      ROUTE === "ingest"
        ? await fetch(`${t.origin}/api/omi/memory?uid=prof&token=${WEBHOOK_TOKEN}`, { method: "POST", body: bodies[i] })
        : ROUTE === "logs"
          ? await fetch(`${t.origin}/api/omi/logs?userId=prof-seed&limit=20`, { headers: auth })
          : await fetch(`${t.origin}/api/omi/users/prof-seed/stats`, { headers: auth });
    await res.text();
  }
  const wall = performance.now() - t0;
  const workerdCpu = (cpuSeconds(t.pid) - w0) * 1000;
  const profile = await c.stopProfiler();
  c.close();
  await t.dispose();
  const p = profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const { periodUs } = busyPerWindow(p, [p.startTime, p.endTime], Number(arg("interval", 500)));
  const ms = { wasm: 0, js: 0, gc: 0, program: 0, idle: 0 };
  const top = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]);
    const dt = periodUs / 1000;
    const k = classify(node);
    ms[k] += dt;
    if (k === "wasm" || k === "js") {
      const key = `${k} ${node.callFrame.functionName || "(anonymous)"} ${node.callFrame.url.split("/").pop()}`;
      top.set(key, (top.get(key) || 0) + dt);
    }
  }
  const per = (x) => (x / N).toFixed(3);
  const busy = ms.wasm + ms.js + ms.gc + ms.program;
  return {
    name,
    wallPerReq: per(wall),
    workerdCpuPerReq: per(workerdCpu),
    isolateBusyPerReq: per(busy),
    wasm: per(ms.wasm),
    js: per(ms.js),
    gc: per(ms.gc),
    program: per(ms.program),
    simulatorsAndRuntimePerReq: per(workerdCpu - busy),
    top: [...top.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(arg("top", 12))).map(([k, v]) => `${per(v)} ms  ${k}`),
  };
}

const out = [];
out.push(await profileTarget("r2d1"));
out.push(await profileTarget("peer"));
console.log(`route: ${ROUTE}, ${N} requests at c=1, ms per request`);
console.log("target  wall   workerd-cpu  isolate-busy  (wasm   js     gc     program)  simulators+runtime");
for (const r of out) {
  console.log(
    `${r.name.padEnd(7)} ${r.wallPerReq.padStart(6)} ${r.workerdCpuPerReq.padStart(10)} ${r.isolateBusyPerReq.padStart(12)}   (${r.wasm} ${r.js} ${r.gc} ${r.program})   ${r.simulatorsAndRuntimePerReq}`,
  );
}
for (const r of out) console.log(`\n${r.name} top self time:\n  ` + r.top.join("\n  "));
