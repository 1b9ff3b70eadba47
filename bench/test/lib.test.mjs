// Unit tests of the bench's own arithmetic: CPU attribution, interpolation, body sizes, name
// demangling and the target check. `npm run bench:test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { busyPerWindow, threadCpuPerWindow } from "../lib/cpu.mjs";
import { largestUnder, spread } from "../lib/cost.mjs";
import { memoryOfSize, memory, BODY_SIZES } from "../lib/data.mjs";
import { demangle, crateOf } from "../bloat.mjs";
import { evaluate } from "../lib/targets.mjs";

/** A profile whose samples are taken every `period` µs while `busy(t)` says the isolate runs. */
function profileOf(startUs, endUs, period, busy) {
  const nodes = [
    { id: 1, callFrame: { functionName: "(root)" } },
    { id: 2, callFrame: { functionName: "work" } },
    { id: 3, callFrame: { functionName: "(idle)" } },
  ];
  const samples = [];
  const timeDeltas = [];
  let last = startUs;
  for (let t = startUs + period; t < endUs; t += period) {
    const state = busy(t);
    if (state === "absent") continue; // not entered: V8 records nothing
    samples.push(state === "idle" ? 3 : 2);
    timeDeltas.push(t - last);
    last = t;
  }
  return { nodes, startTime: startUs, endTime: endUs, samples, timeDeltas };
}

test("busy time per window counts the isolate's samples at the achieved period", () => {
  // Request 0: busy 1,000-4,000 µs; request 1: busy 10,000-12,000 µs; another isolate runs in
  // between (no samples), and the isolate idles at the end.
  const busy = (t) => ((t > 1000 && t <= 4000) || (t > 10_000 && t <= 12_000) ? "busy" : t > 15_000 ? "idle" : "absent");
  const p = profileOf(0, 20_000, 300, busy);
  const { periodUs, busyMs } = busyPerWindow(p, [0, 8000, 20_000], 250);
  assert.equal(periodUs, 300);
  // Too few back-to-back samples to measure the period: the requested interval plus 25 %.
  assert.equal(busyPerWindow(profileOf(0, 2000, 300, () => "busy"), [0, 2000], 250).periodUs, 312.5);
  assert.equal(busyMs.length, 2);
  assert.ok(Math.abs(busyMs[0] - 3.0) <= 0.3, `window 0: ${busyMs[0]}`);
  assert.ok(Math.abs(busyMs[1] - 2.0) <= 0.3, `window 1: ${busyMs[1]}`);
});

test("thread CPU per window is the difference of consecutive schedstat marks", () => {
  assert.deepEqual(threadCpuPerWindow([0, 2_000_000, 2_500_000, null]), [2, 0.5, null]);
});

test("spread gives nearest-rank percentiles and ignores missing values", () => {
  const s = spread([5, 1, null, 3, 2, 4]);
  assert.deepEqual(s, { n: 5, p50: 3, p99: 5, mean: 3 });
  assert.equal(spread([null]), null);
});

test("the largest body under the limit is interpolated between the sizes around it", () => {
  const sizes = [
    { name: "1 KB", bytes: 1_000, per: { r2d1: { isolateCpu: { mean: 4 } } } },
    { name: "1 MB", bytes: 1_000_000, per: { r2d1: { isolateCpu: { mean: 8 } } } },
    { name: "8 MB", bytes: 8_000_000, per: { r2d1: { isolateCpu: { mean: 36 } } } },
  ];
  assert.equal(largestUnder(sizes, "r2d1", 10).bytes, 1_500_000);
  assert.equal(largestUnder(sizes, "r2d1", 3).bytes, 0);
  assert.equal(largestUnder(sizes, "r2d1", 50).bytes, 8_000_000);
  assert.equal(largestUnder(sizes, "peer", 10).bytes, null);
});

test("memories of a given size are deterministic, valid and just under the size", () => {
  for (const { bytes } of BODY_SIZES.slice(0, 4)) {
    const a = JSON.stringify(memoryOfSize("u", 7, bytes));
    const b = JSON.stringify(memoryOfSize("u", 7, bytes));
    assert.equal(a, b);
    const len = Buffer.byteLength(a);
    assert.ok(len <= bytes && len > bytes - 300, `${bytes}: ${len}`);
    const m = JSON.parse(a);
    assert.equal(m.id, memory("u", 7).id);
    if (bytes > 64_000) assert.ok(m.photos.length >= 1 && /^[A-Za-z0-9+/]+=*$/.test(m.photos[0].base64));
  }
});

test("legacy Rust names demangle to paths without the hash", () => {
  assert.equal(demangle("_ZN4core3fmt9Formatter3pad17h0123456789abcdefE"), "core::fmt::Formatter::pad");
  assert.equal(
    demangle("_ZN81_$LT$serde_json..de..Deserializer$LT$R$GT$$u20$as$u20$serde..de..Deserializer$GT$15deserialize_any17h0123456789abcdefE"),
    "<serde_json::de::Deserializer<R> as serde::de::Deserializer>::deserialize_any",
  );
  assert.equal(demangle("__wbg_put_123"), "__wbg_put_123");
  assert.equal(crateOf("<serde_json::de::Deserializer<R> as serde::de::Deserializer>::deserialize_any"), "serde_json");
  assert.equal(crateOf("&mut r2d1::omi::ingest"), "r2d1");
});

test("the target check marks what it could not measure, and judges what it could", () => {
  const row = (p50, p99) => ({ p50, p99, n: 10, ok: 10 });
  const results = {
    figures: [
      { id: "1.c1", rows: { r2d1: row(5, 12), peer: row(5, 10) } },
      { id: "1.c8", rows: { r2d1: { na: "route missing" }, peer: row(5, 10) } },
      { id: "1.re1", rows: { r2d1: row(1, 2), peer: { ...row(1, 2), ok: 8, statuses: { 0: 2, 200: 8 } } } },
      { id: "6", coldStart: { firstRatio: 1.5 }, wasm: { gzip: 500 * 1024 } },
    ],
  };
  const rows = evaluate(results);
  const by = (name) => rows.find((r) => r.name.startsWith(name));
  assert.equal(by("ingest new, c=1: r2d1/peer p50").met, true);
  assert.equal(by("ingest new, c=1: r2d1/peer p99").met, true); // 1.2 ≤ 1.2
  assert.equal(by("ingest new, c=8").met, null);
  assert.equal(by("first request after start").met, true);
  assert.equal(by("wasm gzipped").met, false);
  assert.equal(by("ingest re-delivery, c=1").met, null);
  assert.match(by("ingest re-delivery, c=1").why, /peer: 2 of 10 requests failed/);
  assert.equal(by("ingest re-delivery, c=8").met, null);
  assert.ok(rows.every((r) => r.met !== undefined && r.goal));
});
