// Figure 6: what a cold isolate costs, r2d1 against the JS peer, and where r2d1's share goes.
//
// Wall time. Each round starts r2d1 and the peer afresh (alternating which goes first): `boot`
// is new Miniflare → listening (workerd start; every script parsed and evaluated: r2d1's wasm
// is compiled and instantiated there, at module evaluation); then the storage simulators are
// woken through the bindings (on Cloudflare they are remote services); then the first webhook
// delivery, the request Omi's bursts land on a cold isolate with, then a second, warm one.
//
// The split of r2d1's start-up:
// - compile: two probe workers in their own workerd, one importing r2d1's index_bg.wasm (so
//   workerd compiles it at start-up) and one not: the difference in their median boot times. V8 compiles wasm
//   lazily (a function on its first call), so this is validation and set-up only.
// - instantiate: the probe that has the module instantiates it `INSTANCES` times in one
//   request against stub imports (no Rust code runs); its time over a no-op request's, per
//   instance.
// - first request: each round also starts both targets once more with the V8 profiler on, and
//   records the isolate CPU of the first and of the second delivery, split into wasm (where
//   V8's lazy compilation of each function on its first call is attributed), JS and the rest.
//   `first − second` is what being first costs the isolate.
import { mkdirSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import { COMPATIBILITY_DATE } from "../../tests/helpers/worker.mjs";
import { startTarget, WEBHOOK_TOKEN } from "./workers.mjs";
import { Inspector } from "./cpu.mjs";
import { memory } from "./data.mjs";
import { round } from "./stats.mjs";

const INSTANCES = 10;
const PROFILE_INTERVAL_US = 250;

const PROBE_PLAIN = `export default { async fetch() { return new Response("ok"); } };\n`;
const PROBE_WASM = `import wasm from "./index_bg.wasm";
function stubs(mod) {
  const imports = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === "function") ns[imp.name] = () => { throw new Error("stub import " + imp.name); };
    else if (imp.kind === "memory") ns[imp.name] = new WebAssembly.Memory({ initial: 17 });
    else if (imp.kind === "table") ns[imp.name] = new WebAssembly.Table({ initial: 128, element: "anyfunc" });
    else if (imp.kind === "global") ns[imp.name] = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
    else if (imp.kind === "tag") ns[imp.name] = WebAssembly.JSTag;
  }
  return imports;
}
export default {
  async fetch(req) {
    const n = Number(new URL(req.url).searchParams.get("instances") || 0);
    const imports = n ? stubs(wasm) : null;
    let exports = 0;
    for (let i = 0; i < n; i++) exports += Object.keys(new WebAssembly.Instance(wasm, imports).exports).length;
    return new Response(String(exports));
  },
};
`;

/** Writes the probe workers beside a copy of the wasm (loaded from disk, as r2d1's build is). */
function writeProbes(build, dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "plain.mjs"), PROBE_PLAIN);
  writeFileSync(join(dir, "wasm.mjs"), PROBE_WASM);
  copyFileSync(join(build, "index_bg.wasm"), join(dir, "index_bg.wasm"));
}

async function startProbe(dir, withWasm) {
  const t0 = performance.now();
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate: COMPATIBILITY_DATE,
    cf: false,
    log: new Log(LogLevel.WARN),
    modules: true,
    scriptPath: join(dir, withWasm ? "wasm.mjs" : "plain.mjs"),
    modulesRoot: dir,
    modulesRules: [
      { type: "ESModule", include: ["**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
  });
  const url = await mf.ready;
  return { mf, url, bootMs: performance.now() - t0 };
}

async function timedGet(url) {
  const t = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`probe answered ${res.status}: ${text.slice(0, 200)}`);
  return performance.now() - t;
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
};

/** Isolate CPU of one profile (ms), by kind: wasm, js, gc, other (V8 native: "(program)"). */
function splitProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const counts = { wasm: 0, js: 0, gc: 0, other: 0 };
  for (const id of profile.samples) {
    const f = byId.get(id);
    if (f.functionName === "(idle)") continue;
    if (f.functionName === "(garbage collector)") counts.gc++;
    else if (f.functionName === "(program)") counts.other++;
    else if (f.url.startsWith("wasm://") || /^\$|wasm-function|^js-to-wasm|^wasm-to-js/.test(f.functionName)) counts.wasm++;
    else counts.js++;
  }
  const gaps = [];
  let ts = profile.startTime;
  const times = profile.timeDeltas.map((d) => (ts += d));
  for (let i = 1; i < times.length; i++) {
    const g = times[i] - times[i - 1];
    if (g >= 0.8 * PROFILE_INTERVAL_US && g <= 3 * PROFILE_INTERVAL_US) gaps.push(g);
  }
  gaps.sort((a, b) => a - b);
  const period = (gaps.length >= 20 ? gaps[Math.floor(gaps.length / 10)] : PROFILE_INTERVAL_US * 1.25) / 1000;
  const ms = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v * period]));
  ms.total = Object.values(ms).reduce((a, b) => a + b, 0);
  return ms;
}

/** Runs `rounds` cold starts of each target, profiled starts, and the wasm probes. */
export async function runColdStart({ build, rounds, probePairs = 3, log, probeDir }) {
  writeProbes(build, probeDir);
  const starts = { r2d1: [], peer: [] };
  const cpu = { r2d1: [], peer: [] };
  const probes = { plain: [], wasm: [], instantiateMs: [] };
  const delivery = (tag) => (i) => {
    const uid = `cold-${tag}`;
    return {
      path: `/api/omi/memory?uid=${uid}&token=${WEBHOOK_TOKEN}`,
      init: { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(memory(uid, i)) },
    };
  };
  for (let r = 0; r < rounds; r++) {
    log(`figure 6: cold start, round ${r + 1} of ${rounds}`);
    for (const name of r % 2 ? ["peer", "r2d1"] : ["r2d1", "peer"]) {
      const t = await startTarget(name, { build, first: delivery(`${name}-${r}`) });
      starts[name].push({ bootMs: t.bootMs, firstMs: t.firstMs, secondMs: t.secondMs });
      await t.dispose();
      // The same again under the profiler, for the isolate's share of the first two requests.
      let insp = null;
      const split = [];
      const p = await startTarget(name, {
        build,
        inspect: true,
        first: delivery(`${name}-${r}-p`),
        around: async (i, send, { inspectorPort }) => {
          insp ??= await Inspector.attach(inspectorPort, name);
          await insp.startProfiler(PROFILE_INTERVAL_US);
          const ms = await send();
          split[i] = splitProfile(await insp.stopProfiler());
          return ms;
        },
      });
      insp?.close();
      await p.dispose();
      cpu[name].push(split);
    }
    for (let k = 0; k < probePairs; k++) {
      for (const withWasm of (r + k) % 2 ? [true, false] : [false, true]) {
        const probe = await startProbe(probeDir, withWasm);
        try {
          if (withWasm && k === 0) {
            await timedGet(probe.url); // the isolate's first request, not timed
            const noop = [];
            const many = [];
            for (let i = 0; i < 3; i++) {
              noop.push(await timedGet(new URL("/?instances=0", probe.url)));
              many.push(await timedGet(new URL(`/?instances=${INSTANCES}`, probe.url)));
            }
            probes.instantiateMs.push((median(many) - median(noop)) / INSTANCES);
          }
          (withWasm ? probes.wasm : probes.plain).push(probe.bootMs);
        } finally {
          await probe.mf.dispose();
        }
      }
    }
  }
  const per = {};
  for (const [name, xs] of Object.entries(starts)) {
    const cpuOf = (i, k) => round(median(cpu[name].map((s) => s[i]?.[k])));
    per[name] = {
      starts: xs.length,
      bootMs: round(median(xs.map((x) => x.bootMs))),
      firstMs: round(median(xs.map((x) => x.firstMs))),
      secondMs: round(median(xs.map((x) => x.secondMs))),
      firstExtraMs: round(median(xs.map((x) => x.firstMs - x.secondMs))),
      isolateCpu: {
        first: Object.fromEntries(["total", "wasm", "js", "gc", "other"].map((k) => [k, cpuOf(0, k)])),
        second: Object.fromEntries(["total", "wasm", "js", "gc", "other"].map((k) => [k, cpuOf(1, k)])),
      },
      all: xs.map((x) => ({ bootMs: round(x.bootMs), firstMs: round(x.firstMs), secondMs: round(x.secondMs) })),
    };
  }
  return {
    per,
    firstRatio: per.r2d1.firstMs && per.peer.firstMs ? round(per.r2d1.firstMs / per.peer.firstMs) : null,
    bootRatio: per.r2d1.bootMs && per.peer.bootMs ? round(per.r2d1.bootMs / per.peer.bootMs) : null,
    wasm: {
      compileMs: round(median(probes.wasm) - median(probes.plain)),
      instantiateMs: round(median(probes.instantiateMs)),
      probeBootMs: { withModule: round(median(probes.wasm)), without: round(median(probes.plain)), pairs: probes.wasm.length },
    },
  };
}
