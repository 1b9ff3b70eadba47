// The load driver: a separate Node process (forked by bench/run.mjs) so the client's CPU is not
// the runner's. It receives jobs over IPC, runs each with real concurrency (an undici Pool with
// one keep-alive connection per concurrent client, no pipelining) and answers with latencies.
//
// Idle connections are dropped after 1 s, before workerd drops them (a reset would be counted as
// an error).
//
// Every job is bounded twice: by a request count and by a deadline (`maxMs`); clients stop
// taking new requests at the deadline and the answer says how many were done.
import { Pool } from "undici";
import { memory, streamIndex } from "./lib/data.mjs";

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
    const pos = job.from + i;
    const uids = job.uids;
    const idx = streamIndex(pos, job.dupRate || 0, job.salt || "");
    const uid = uids[idx % uids.length];
    const body = JSON.stringify(memory(uid, job.indexBase + Math.floor(idx / uids.length), job.size));
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

async function run(job) {
  const p = pool(job.origin, job.concurrency);
  const pre = job.count <= 20_000 ? Array.from({ length: job.count }, (_, i) => requestAt(job, i)) : null;
  const lat = job.keepLatencies === false ? null : new Float64Array(job.count);
  const statuses = {};
  const samples = [];
  let duplicates = 0;
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError = null;
  const started = performance.now();
  const deadline = started + (job.maxMs || 60_000);

  async function client() {
    while (next < job.count && performance.now() < deadline) {
      const i = next++;
      const req = pre ? pre[i] : requestAt(job, i);
      const t0 = performance.now();
      let status = 0;
      let text = "";
      try {
        const res = await p.request(req);
        status = res.statusCode;
        text = await res.body.text();
      } catch (e) {
        errors++;
        firstError ??= String(e && e.message ? e.message : e);
      }
      const ms = performance.now() - t0;
      if (lat) lat[done] = ms;
      done++;
      statuses[status] = (statuses[status] || 0) + 1;
      if (job.kind === "ingest" && status === 200 && text.includes('"duplicate":true')) duplicates++;
      if (samples.length < (job.samples || 0) || (status >= 400 && samples.length < (job.samples || 0) + 3)) {
        samples.push({ i, status, body: text.length > 200_000 ? text.slice(0, 200_000) : text });
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, client));
  const wallMs = performance.now() - started;
  return {
    requested: job.count,
    done,
    errors,
    firstError,
    statuses,
    duplicates,
    wallMs,
    latencies: lat ? Array.from(lat.subarray(0, done)) : null,
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
