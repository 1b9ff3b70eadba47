// The load driver: a separate Node process (forked by bench/run.mjs) so the client's CPU is not
// the runner's. It receives jobs over IPC, runs each with real concurrency (an undici Pool with
// one keep-alive connection per concurrent client, no pipelining) and answers with latencies.
//
// Idle connections are dropped after 1 s, before workerd drops them (a reset would be counted as
// an error).
//
// Every job is bounded twice: by a request count and by a deadline (`maxMs`); clients stop
// taking new requests at the deadline and the answer says how many were done.
//
// For CPU accounting a job can also ask for `marks: true`: the start of every request on the
// monotonic clock (µs, the clock V8's profiler stamps its samples with) and, given
// `cpuThread: {pid, tid}`, that thread's CPU time (ns, /proc/…/schedstat) at each start. Both
// end with one more mark `settleMs` after the last answer, so request i owns [mark i, mark i+1):
// its own work and whatever it left running after its response (waitUntil).
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { memory, memoryOfSize, streamIndex } from "./lib/data.mjs";

const pools = new Map();
function pool(origin, connections) {
  const key = `${origin}#${connections}`;
  if (!pools.has(key)) {
    pools.set(key, new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000, headersTimeout: 120_000, bodyTimeout: 120_000 }));
  }
  return pools.get(key);
}

/** The request list of a job, built before the clock starts when it is small enough. */
function requestAt(job, i) {
  if (job.kind === "ingest") {
    // `indices`: send exactly these stream positions (a retry of the ones that failed).
    const pos = job.indices ? job.indices[i] : job.from + i;
    const uids = job.uids;
    const idx = streamIndex(pos, job.dupRate || 0, job.salt || "");
    const uid = uids[idx % uids.length];
    const n = job.indexBase + Math.floor(idx / uids.length);
    const body = JSON.stringify(job.bytes ? memoryOfSize(uid, n, job.bytes) : memory(uid, n, job.size));
    return {
      method: "POST",
      path: `/api/omi/memory?uid=${encodeURIComponent(uid)}&token=${encodeURIComponent(job.token)}`,
      headers: { "content-type": "application/json" },
      body,
    };
  }
  if (job.kind === "import") {
    // NDJSON (r2d1's legacy import): one bare Omi memory per line, carrying its `uid`.
    const lines = [];
    for (let k = 0; k < job.perRequest; k++) {
      const n = (job.from + i) * job.perRequest + k;
      if (n >= job.total) break;
      const uid = job.uids[n % job.uids.length];
      lines.push(JSON.stringify({ uid, ...memory(uid, job.indexBase + Math.floor(n / job.uids.length), job.size) }));
    }
    return { method: "POST", path: job.path, headers: { ...job.headers, "content-type": "application/x-ndjson" }, body: lines.join("\n") + "\n" };
  }
  const r = job.requests[i % job.requests.length];
  return { method: r.method || "GET", path: r.path, headers: { ...(job.headers || {}), ...(r.headers || {}) }, body: r.body };
}

/** CPU time (ns) a thread has used, from /proc/<pid>/task/<tid>/schedstat; null off Linux. */
function threadCpuNs(t) {
  if (!t) return null;
  try {
    return Number(readFileSync(`/proc/${t.pid}/task/${t.tid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return null;
  }
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function run(job) {
  const p = pool(job.origin, job.concurrency);
  // Big bodies (megabytes each) are built as they are sent, not all up front.
  const prebuild = job.count <= 20_000 && !(job.bytes > 200_000);
  const pre = prebuild ? Array.from({ length: job.count }, (_, i) => requestAt(job, i)) : null;
  const marks = job.marks ? { startUs: new Array(job.count + 1).fill(null), cpuNs: new Array(job.count + 1).fill(null) } : null;
  const lat = job.keepLatencies === false ? null : new Float64Array(job.count);
  const statuses = {};
  const samples = [];
  let duplicates = 0;
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError = null;
  const transportFailed = [];
  const started = performance.now();
  const deadline = started + (job.maxMs || 60_000);

  async function client() {
    while (next < job.count && performance.now() < deadline) {
      const i = next++;
      const req = pre ? pre[i] : requestAt(job, i);
      if (marks) {
        marks.cpuNs[i] = threadCpuNs(job.cpuThread);
        marks.startUs[i] = nowUs();
      }
      const t0 = performance.now();
      let status = 0;
      let text = "";
      try {
        // `fresh`: a connection of its own, closed after the answer. For one-off requests spaced
        // out by other work, where a kept-alive socket may have been closed by workerd meanwhile
        // (a reset that would count as a failed request).
        const res = await p.request(job.fresh ? { ...req, reset: true } : req);
        status = res.statusCode;
        text = await res.body.text();
      } catch (e) {
        errors++;
        firstError ??= String(e && e.message ? e.message : e);
        if (job.kind === "ingest") transportFailed.push(job.indices ? job.indices[i] : job.from + i);
      }
      const ms = performance.now() - t0;
      if (lat) lat[done] = ms;
      done++;
      statuses[status] = (statuses[status] || 0) + 1;
      if (job.kind === "ingest" && status === 200 && text.includes('"duplicate":true')) duplicates++;
      if (samples.length < (job.samples || 0) || (status >= 400 && samples.length < (job.samples || 0) + 3)) {
        const cap = job.sampleBytes ?? 200_000;
        samples.push({ i, status, body: text.length > cap ? text.slice(0, cap) : text });
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, client));
  const wallMs = performance.now() - started;
  if (marks) {
    await sleep(job.settleMs ?? 50);
    marks.cpuNs[done] = threadCpuNs(job.cpuThread);
    marks.startUs[done] = nowUs();
    marks.startUs.length = marks.cpuNs.length = done + 1;
  }
  return {
    requested: job.count,
    done,
    errors,
    firstError,
    statuses,
    duplicates,
    transportFailed,
    wallMs,
    latencies: lat ? Array.from(lat.subarray(0, done)) : null,
    ...(marks ? { marks } : {}),
    samples,
  };
}

process.on("message", async (msg) => {
  if (msg.type === "exit") {
    await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
    process.exit(0);
  }
  try {
    const result = await run(msg.job);
    process.send({ id: msg.id, result });
  } catch (e) {
    process.send({ id: msg.id, error: String(e && e.stack ? e.stack : e) });
  }
});
process.on("disconnect", () => process.exit(0));
