// A Chrome DevTools Protocol session with the worker's isolate, through Miniflare's inspector
// (startWorker({ inspector: true })): what the isolate holds in memory while a request runs, and
// how long it was busy (isolateBusyMs).
import WebSocket from "ws";

export class Inspector {
  static async attach(port) {
    let list = [];
    for (let i = 0; i < 100 && !list.length; i++) {
      try {
        list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
      } catch {}
      if (!list.length) await new Promise((r) => setTimeout(r, 100));
    }
    const target = list.find((t) => (t.title || "").includes("core:user")) || list[0];
    if (!target) throw new Error(`no inspector target on port ${port}`);
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    return new Inspector(ws);
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

  /** Sizes of every WebAssembly.Memory alive in the isolate (bytes): Rust's whole heap. */
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
      return result.value.reduce((a, b) => a + b, 0);
    } finally {
      await this.send("Runtime.disable");
    }
  }

  /**
   * Polls the isolate's JS memory (heap in use + ArrayBuffer backing stores) until `stop()`,
   * which returns the largest value seen. workerd answers whenever the isolate is free, i.e.
   * at every await of a request, where the request's buffers are alive.
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

  async jsMemory() {
    const u = await this.send("Runtime.getHeapUsage");
    return u.usedSize + (u.backingStorageSize || 0);
  }
}

/**
 * The isolate's busy time (ms) while `fn` runs, from V8's sampling profiler: samples outside
 * "(idle)" × the sampling period achieved (the 10th percentile of back-to-back gaps, as in
 * bench/lib/cpu.mjs). V8 samples only while the isolate is entered (JS, wasm, bindings, GC), so
 * Miniflare's R2/D1 simulators and waiting leave no samples; time the OS takes the thread away
 * while it is entered does count, so on a loaded machine this is an upper bound.
 */
export async function isolateBusyMs(inspector, fn, intervalUs = 250) {
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: intervalUs });
  await inspector.send("Profiler.start");
  let result, profile;
  try {
    result = await fn();
  } finally {
    ({ profile } = await inspector.send("Profiler.stop"));
    await inspector.send("Profiler.disable");
  }
  const names = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName]));
  const gaps = [];
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    if (names.get(profile.samples[i]) !== "(idle)") busy++;
    const g = profile.timeDeltas[i];
    if (i > 0 && g >= 0.8 * intervalUs && g <= 3 * intervalUs) gaps.push(g);
  }
  gaps.sort((a, b) => a - b);
  const periodUs = gaps.length >= 20 ? gaps[Math.floor(gaps.length / 10)] : intervalUs * 1.25;
  return { result, busyMs: (busy * periodUs) / 1000, samples: busy };
}
