// CPU and memory accounting for one worker under test.
//
// workerd run locally has no CPU accounting of its own: a tail worker's trace items carry
// `cpuTime: 0` and `wallTime: 0` (checked with workerd 1.20260426.1), and its limit enforcer is
// a no-op. So two measures are used, both per request at concurrency 1:
//
// - **isolate CPU** (what Cloudflare bills and limits): the V8 sampling profiler of the worker's
//   own isolate, through Miniflare's inspector. V8 records a sample only while the isolate is
//   entered (running JS or wasm, or C++ on its behalf: bindings, crypto, compilation, GC), so
//   time spent in Miniflare's R2/D1 simulators (other isolates on the same thread) and idle
//   time leave no samples. Busy time = samples in the request's window × the sampling period
//   actually achieved (the median gap between consecutive samples, which is a little over the
//   requested interval). Resolution is one period (~0.3 ms at the default 250 µs); the sampler's
//   own cost adds a few per cent. Checked against a worker that only computes (its thread CPU is
//   its isolate's plus ~0.3 ms of HTTP handling): within 5-15 % for requests of 1-9 ms, on a
//   2-core machine at load average 8. Single requests are quantised to the period; means and
//   percentiles over many requests are what the figures report.
// - **workerd thread CPU** (exact, but includes the simulators): the CPU time of workerd's one
//   JS thread (/proc/<pid>/task/<pid>/schedstat, nanoseconds) over the request's window: the
//   worker, Miniflare's R2 and D1 (SQLite) simulators and the runtime's HTTP work together.
//
// A request's window runs from its start to the next request's start (the last one: to 50 ms
// after its answer), so work a request leaves running after its response (waitUntil) is its own.
import { readFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";

/** A Chrome DevTools Protocol session with one worker's isolate (Miniflare's inspector proxy). */
export class Inspector {
  /**
   * Attaches to `workerName`'s isolate, or without a name to the first user worker's (a test's
   * single worker). Subclasses get an instance of their own class.
   */
  static async attach(port, workerName) {
    let list = [];
    for (let i = 0; i < 100 && !list.length; i++) {
      try {
        list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
      } catch {}
      if (!list.length) await new Promise((r) => setTimeout(r, 100));
    }
    const title = (t) => t.title || "";
    const target = workerName
      ? list.find((t) => title(t).endsWith(`core:user:${workerName}`))
      : list.find((t) => title(t).includes("core:user")) || list[0];
    if (!target) throw new Error(`no inspector target for ${workerName ?? "the worker"} on port ${port}: ${list.map(title).join(", ")}`);
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    return new this(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    ws.on("message", (m) => {
      const msg = JSON.parse(m);
      const p = msg.id && this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      msg.error ? p.reject(new Error(`${p.method}: ${msg.error.message}`)) : p.resolve(msg.result);
    });
    ws.on("close", () => {
      for (const p of this.pending.values()) p.reject(new Error("inspector closed"));
      this.pending.clear();
    });
  }

  send(method, params = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  close() {
    this.ws.close();
  }

  async startProfiler(intervalUs) {
    await this.send("Profiler.enable");
    await this.send("Profiler.setSamplingInterval", { interval: intervalUs });
    await this.send("Profiler.start");
  }

  async stopProfiler() {
    const { profile } = await this.send("Profiler.stop");
    await this.send("Profiler.disable");
    return profile;
  }

  /**
   * Sizes of every WebAssembly.Memory alive in the isolate (bytes). workerd has no default
   * execution context outside a request, so this enables the Runtime domain long enough to
   * learn the worker's context id. (`Runtime.queryObjects` collects garbage first.)
   */
  async wasmMemoryBytes() {
    const created = new Promise((resolve) => {
      const onMessage = (m) => {
        const msg = JSON.parse(m);
        if (msg.method === "Runtime.executionContextCreated") {
          this.ws.off("message", onMessage);
          resolve(msg.params.context.id);
        }
      };
      this.ws.on("message", onMessage);
    });
    await this.send("Runtime.enable");
    const contextId = await created;
    try {
      const proto = await this.send("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype", contextId });
      const { objects } = await this.send("Runtime.queryObjects", { prototypeObjectId: proto.result.objectId });
      const { result } = await this.send("Runtime.callFunctionOn", {
        objectId: objects.objectId,
        functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
        returnByValue: true,
      });
      return result.value;
    } finally {
      await this.send("Runtime.disable");
    }
  }

  /** V8's heap in use and allocated (bytes). (workerd does not answer HeapProfiler.collectGarbage.) */
  heapUsage() {
    return this.send("Runtime.getHeapUsage");
  }

  /**
   * Polls the isolate's JS memory (heap in use + ArrayBuffer backing stores) until `stop()`,
   * which returns the largest value seen and how many polls answered. workerd answers the
   * inspector whenever the isolate is free, i.e. at every await of a request, where the
   * request's buffers are alive; a spike inside one synchronous stretch is not seen.
   */
  pollJsMemory() {
    let running = true;
    let peak = 0;
    let polls = 0;
    const loop = (async () => {
      while (running) {
        const u = await this.send("Runtime.getHeapUsage");
        polls++;
        peak = Math.max(peak, u.usedSize + (u.backingStorageSize || 0));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { peak, polls };
      },
    };
  }
}

/** Splits a CPU profile into busy time per window ([startUs[i], startUs[i+1]), µs). */
export function busyPerWindow(profile, startUs, intervalUs) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName]));
  const times = new Float64Array(profile.samples.length);
  let ts = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    ts += profile.timeDeltas[i];
    times[i] = ts;
  }
  // The period the sampler achieved while the isolate ran: a little over the requested interval
  // (each sample costs a signal). Gaps between samples taken back to back are the shortest
  // ones; longer gaps span time the isolate was not entered. The 10th percentile of the gaps
  // between 0.8 and 3 intervals is robust to both; with too few of them, the usual overhead.
  const gaps = [];
  for (let i = 1; i < times.length; i++) {
    const g = times[i] - times[i - 1];
    if (g >= 0.8 * intervalUs && g <= 3 * intervalUs) gaps.push(g);
  }
  gaps.sort((a, b) => a - b);
  const periodUs = gaps.length >= 20 ? gaps[Math.floor(gaps.length / 10)] : intervalUs * 1.25;
  const windows = startUs.length - 1;
  const counts = new Array(Math.max(windows, 0)).fill(0);
  let w = 0;
  for (let i = 0; i < times.length; i++) {
    const name = byId.get(profile.samples[i]);
    if (name === "(idle)") continue;
    while (w < windows && times[i] >= startUs[w + 1]) w++;
    if (w >= windows) break;
    if (times[i] >= startUs[w]) counts[w]++;
  }
  return { periodUs, busyMs: counts.map((c) => (c * periodUs) / 1000) };
}

/** CPU (ms) of a thread over each window, from the load driver's schedstat marks (ns). */
export function threadCpuPerWindow(cpuNs) {
  const out = [];
  for (let i = 0; i + 1 < cpuNs.length; i++) {
    out.push(cpuNs[i] === null || cpuNs[i + 1] === null ? null : (cpuNs[i + 1] - cpuNs[i]) / 1e6);
  }
  return out;
}

/** Resident set size now and its peak since the last reset (bytes), from /proc/<pid>/status. */
export function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** Resets a process's peak RSS to its current RSS (Linux: `5` into /proc/<pid>/clear_refs). */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
