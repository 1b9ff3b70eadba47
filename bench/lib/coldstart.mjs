// Figure 6: what a cold isolate costs, r2d1 against the JS peer, and where r2d1's share goes.
//
// Each round starts r2d1 and the peer afresh (alternating which goes first): `boot` is new
// Miniflare → listening (workerd start, every script parsed and evaluated: for r2d1 that is
// where its wasm is compiled and instantiated); then the storage simulators are woken through
// the bindings; then the first webhook delivery (the request Omi's bursts land on a cold
// isolate with), then a second one, warm. `first − second` is what being first costs (lazy
// compilation of the wasm functions and JS the request runs, first-use set-up).
//
// The wasm's own share is measured with two probe workers in the same workerd, built from
// r2d1's own index_bg.wasm: one imports the module (so workerd compiles it at start-up), one
// does not; the difference in boot time is the compile. The probe that has the module then
// instantiates it `INSTANCES` times in one request (against stub imports: no code runs), and
// the request's time over a no-op request's, divided by `INSTANCES`, is one instantiation.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import { COMPATIBILITY_DATE } from "../../tests/helpers/worker.mjs";
import { startTarget, WEBHOOK_TOKEN } from "./workers.mjs";
import { memory } from "./data.mjs";
import { round } from "./stats.mjs";

const INSTANCES = 10;

const PROBE_PLAIN = `export default { async fetch() { return new Response("ok"); } };`;
const PROBE_WASM = `import wasm from "./index_bg.wasm";
function stubs(mod) {
  const imports = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    const ns = (imports[imp.module] ??= {});
    if (imp.kind === "function") ns[imp.name] = () => { throw new Error("stub import " + imp.name); };
    else if (imp.kind === "memory") ns[imp.name] = new WebAssembly.Memory({ initial: 17 });
    else if (imp.kind === "table") ns[imp.name] = new WebAssembly.Table({ initial: 128, element: "anyfunc" });
    else if (imp.kind === "global") ns[imp.name] = new WebAssembly.Global({ value: "i32", mutable: true }, 0);
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
};`;

async function startProbe(withWasm, wasmBytes) {
  const t0 = performance.now();
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    compatibilityDate: COMPATIBILITY_DATE,
    cf: false,
    log: new Log(LogLevel.WARN),
    modules: [
      { type: "ESModule", path: "probe.mjs", contents: withWasm ? PROBE_WASM : PROBE_PLAIN },
      ...(withWasm ? [{ type: "CompiledWasm", path: "index_bg.wasm", contents: wasmBytes }] : []),
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

/** Runs `rounds` cold starts of each target and the wasm probes. */
export async function runColdStart({ build, rounds, log }) {
  const wasmBytes = readFileSync(join(build, "index_bg.wasm"));
  const starts = { r2d1: [], peer: [] };
  const probes = { plain: [], wasm: [], instantiateMs: [] };
  const delivery = (name, round) => (i) => {
    const uid = `cold-${name}-${round}`;
    return {
      path: `/api/omi/memory?uid=${uid}&token=${WEBHOOK_TOKEN}`,
      init: { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(memory(uid, i)) },
    };
  };
  for (let r = 0; r < rounds; r++) {
    log(`figure 6: cold start, round ${r + 1} of ${rounds}`);
    for (const name of r % 2 ? ["peer", "r2d1"] : ["r2d1", "peer"]) {
      const t = await startTarget(name, { build, first: delivery(name, r) });
      starts[name].push({ bootMs: t.bootMs, firstMs: t.firstMs, secondMs: t.secondMs });
      await t.dispose();
    }
    for (const withWasm of r % 2 ? [true, false] : [false, true]) {
      const p = await startProbe(withWasm, wasmBytes);
      try {
        if (withWasm) {
          await timedGet(p.url); // the isolate's first request, not timed
          const noop = [];
          const many = [];
          for (let i = 0; i < 3; i++) {
            noop.push(await timedGet(new URL("/?instances=0", p.url)));
            many.push(await timedGet(new URL(`/?instances=${INSTANCES}`, p.url)));
          }
          probes.instantiateMs.push((median(many) - median(noop)) / INSTANCES);
          probes.wasm.push(p.bootMs);
        } else probes.plain.push(p.bootMs);
      } finally {
        await p.mf.dispose();
      }
    }
  }
  const per = {};
  for (const [name, xs] of Object.entries(starts)) {
    const first = median(xs.map((x) => x.firstMs));
    const second = median(xs.map((x) => x.secondMs));
    per[name] = {
      starts: xs.length,
      bootMs: round(median(xs.map((x) => x.bootMs))),
      firstMs: round(first),
      secondMs: round(second),
      firstExtraMs: round(median(xs.map((x) => x.firstMs - x.secondMs))),
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
      probeBootMs: { withModule: round(median(probes.wasm)), without: round(median(probes.plain)) },
    },
  };
}
