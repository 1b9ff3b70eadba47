// A Chrome DevTools Protocol session with the worker's isolate, through Miniflare's inspector
// (startWorker({ inspector: true })): the bench's session (bench/lib/cpu.mjs) with what the
// tests read from it: totals of the isolate's memory, and how long it was busy (isolateBusyMs).
import { Inspector as Session } from "../../bench/lib/cpu.mjs";

export class Inspector extends Session {
  /** Bytes of every WebAssembly.Memory alive in the isolate, summed: Rust's whole heap. */
  async wasmMemoryBytes() {
    return (await super.wasmMemoryBytes()).reduce((a, b) => a + b, 0);
  }

  /** The isolate's JS memory now: heap in use + ArrayBuffer backing stores (bytes). */
  async jsMemory() {
    const u = await this.heapUsage();
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
  await inspector.startProfiler(intervalUs);
  let result, profile;
  try {
    result = await fn();
  } finally {
    profile = await inspector.stopProfiler();
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
