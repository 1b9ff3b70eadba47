// One Miniflare per test file, running the built worker (build-test/, made by `npm test` with
// the fault-injection feature) against real local R2 and D1, persistence off. Migrations are
// applied through the D1 binding, as `wrangler d1 migrations apply` would.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import workerThreads from "node:worker_threads";
import { checkResponse } from "./contract.mjs";

// Miniflare's synchronous proxy calls (every `db.prepare`, the first call of each binding
// method) block on Atomics.wait and then read the helper thread's reply with
// receiveMessageOnPort. On a loaded machine the reply can become visible a moment after the
// wake-up, and Miniflare then fails an assertion (`message?.id === id`), taking the rest of the
// test file with it. Miniflare looks the function up on this module object at each call, so a
// reply that is late is waited for here (up to 30 s) instead of being taken as missing.
if (!workerThreads.receiveMessageOnPort.r2d1Patient) {
  const receive = workerThreads.receiveMessageOnPort;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const patient = (port) => {
    let reply = receive(port);
    for (let waited = 0; reply === undefined && waited < 30_000; waited += 2) {
      Atomics.wait(nap, 0, 0, 2);
      reply = receive(port);
    }
    return reply;
  };
  patient.r2d1Patient = true;
  workerThreads.receiveMessageOnPort = patient;
}

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const API_TOKEN = "test-api-token-0123456789";
export const WEBHOOK_TOKEN = "test-webhook-token-0123456789";
/** The key of signed URLs (issue 13); a test that wants them off passes SIGNED_URL_SECRET: "". */
export const SIGNED_URL_SECRET = "test-signed-url-secret-0123456789abcdef";

const wranglerToml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
export const COMPATIBILITY_DATE = wranglerToml.match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];

/** Splits a migration file into statements; a CREATE TRIGGER runs to its END; */
export function splitSql(sql) {
  const statements = [];
  let current = "";
  let inTrigger = false;
  for (const raw of sql.split("\n")) {
    const line = raw.replace(/--.*$/, "");
    if (!line.trim()) continue;
    current += line + "\n";
    if (/^\s*CREATE\s+TRIGGER/i.test(line)) inTrigger = true;
    const ends = inTrigger ? /^\s*END\s*;\s*$/i.test(line) : /;\s*$/.test(line);
    if (ends) {
      statements.push(current.trim());
      current = "";
      inTrigger = false;
    }
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

export function migrationFiles() {
  const dir = join(ROOT, "migrations");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((f) => ({ name: f, sql: readFileSync(join(dir, f), "utf8") }));
}

export async function applyMigrations(db) {
  for (const { sql } of migrationFiles()) {
    const statements = splitSql(sql).map((s) => db.prepare(s));
    if (statements.length) await db.batch(statements);
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The `METRICS` binding as the tests see it: every data point written is logged as a line. */
const METRICS_RECORDER = `export default function () {
  return { writeDataPoint(point) { console.log(JSON.stringify({ event: "test.metrics", point })); } };
}`;

/** Lines the worker logged; the oldest go once there are more than this. */
const MAX_LOG_LINES = 50_000;

/**
 * Starts the worker. `bindings` override or add vars and secrets; `webhookLimit` is the per-uid
 * webhook rate limit per minute, `webhookCeiling` the limit over every uid, `authLimit` the
 * failed authentications per client address per minute (`limiters: false` leaves every
 * rate-limit binding out); `inspector` opens the V8 inspector on a free port (`inspectorPort`).
 * The subrequest budget is a paid plan's (1,000) unless a test sets `SUBREQUEST_BUDGET` (the
 * Free plan's 50 is the worker's default). `recordMetrics` replaces the Analytics Engine
 * binding by one that logs each data point (`event: "test.metrics"`); otherwise Miniflare's own
 * accepts and drops them. `enforcedBudget` sends every request with that operation budget
 * (test builds' `X-R2D1-Budget`) while SUBREQUEST_BUDGET still sizes budget-bounded pages.
 * Returns helpers: `fetch(path, init)`, `api(path, init)` (with the API token), whose responses
 * are validated against openapi.json, the D1 and R2 bindings for looking inside, the worker's
 * structured log lines (`lines()`, `waitForLine(predicate)`), and `dispose()`.
 */
export async function startWorker({
  bindings = {},
  migrate = true,
  webhookLimit = 100_000,
  webhookCeiling = 1_000_000,
  authLimit = 100_000,
  limiters = true,
  inspector = false,
  recordMetrics = false,
  enforcedBudget,
  attempt = 1,
} = {}) {
  const build = process.env.R2D1_TEST_BUILD || join(ROOT, "build-test");
  const inspectorPort = inspector ? await freePort() : undefined;
  // The worker's JSON log lines are kept for the tests; anything else it prints (warnings,
  // errors, panics) goes to stderr as before.
  const lines = [];
  const handleStructuredLogs = ({ level, message }) => {
    if (message.startsWith("{")) {
      try {
        const line = JSON.parse(message);
        if (line && typeof line.event === "string") {
          lines.push(line);
          if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES);
          return;
        }
      } catch {
        // not one of ours: printed below
      }
    }
    process.stderr.write(`[worker ${level}] ${message}\n`);
  };
  const worker = {
    name: "r2d1",
    modules: true,
    scriptPath: join(build, "entry.mjs"),
    modulesRoot: build,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    r2Buckets: ["BUCKET"],
    d1Databases: ["DB"],
    // The production limit is in wrangler.toml; tests that are not about it must not hit it.
    ratelimits: limiters
      ? {
          WEBHOOK_LIMITER: { simple: { limit: webhookLimit, period: 60 } },
          WEBHOOK_CEILING: { simple: { limit: webhookCeiling, period: 60 } },
          AUTH_LIMITER: { simple: { limit: authLimit, period: 60 } },
        }
      : {},
    durableObjects: { LIVE: "LiveHub" },
    // The dashboard, as wrangler.toml's [assets] serves it; other paths reach the worker.
    assets: { directory: join(build, "web"), routerConfig: { has_user_worker: true } },
    // A binding given as `undefined` is left out (e.g. `SUBREQUEST_BUDGET: undefined`: the
    // worker's own default, the Free plan's 50).
    bindings: Object.fromEntries(
      Object.entries({ API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN, SIGNED_URL_SECRET, SUBREQUEST_BUDGET: "1000", ...bindings }).filter(([, v]) => v !== undefined),
    ),
    ...(recordMetrics
      ? { wrappedBindings: { METRICS: { scriptName: "metrics-recorder" } } }
      : { analyticsEngineDatasets: { METRICS: { dataset: "r2d1_requests" } } }),
  };
  const workers = [worker];
  if (recordMetrics) workers.push({ name: "metrics-recorder", modules: true, script: METRICS_RECORDER });
  const mf = new Miniflare({ host: "127.0.0.1", cf: false, handleStructuredLogs, workers, ...(inspectorPort ? { inspectorPort } : {}) });
  let db, bucket;
  try {
    db = await mf.getD1Database("DB");
    bucket = await mf.getR2Bucket("BUCKET");
    if (migrate) await applyMigrations(db);
  } catch (err) {
    // Miniflare's synchronous proxy calls (every `db.prepare`) can lose a reply on a loaded
    // machine (an assertion in its SynchronousFetcher). Never leave workerd running behind a
    // failed start, or the test file hangs until its timeout; start afresh a couple of times.
    await mf.dispose().catch(() => {});
    if (attempt >= 3) throw err;
    console.error(`startWorker: attempt ${attempt} failed (${err.message}); starting again`);
    return startWorker({ bindings, migrate, webhookLimit, webhookCeiling, authLimit, limiters, inspector, recordMetrics, enforcedBudget, attempt: attempt + 1 });
  }

  // Every response is checked against openapi.json (tests/helpers/contract.mjs) before the test
  // sees it; the test gets the original, unread.
  const fetch = async (path, init = {}) => {
    const url = new URL(path, "http://r2d1.test").toString();
    // `enforcedBudget`: the operations every request may make (a test build's `X-R2D1-Budget`),
    // apart from SUBREQUEST_BUDGET, which also sizes the pages of budget-bounded reads.
    if (enforcedBudget) init = { ...init, headers: { "x-r2d1-budget": String(enforcedBudget), ...(init.headers || {}) } };
    const res = await mf.dispatchFetch(url, init);
    await checkResponse(init.method || "GET", url, res);
    return res;
  };
  const api = (path, init = {}) =>
    fetch(path, { ...init, headers: { authorization: `Bearer ${API_TOKEN}`, ...(init.headers || {}) } });

  /** Waits until the worker has logged a line `predicate` accepts (log lines arrive a little
   * after the response), and returns it. */
  const waitForLine = async (predicate, timeoutMs = 5_000) => {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find(predicate);
      if (found) return found;
      if (Date.now() > until) throw new Error(`no log line matched within ${timeoutMs} ms (${lines.length} lines logged)`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  return { mf, db, bucket, fetch, api, inspectorPort, lines: () => lines, waitForLine, dispose: () => mf.dispose() };
}

/** A request id for `cf-ray`, so a test can find its request's log line. */
let rayCount = 0;
export const ray = (label = "t") => `${label}-${process.pid}-${++rayCount}-${Date.now().toString(36)}`;

/** The structured log line of the request sent with `cf-ray: id`. */
export const requestLine = (w, id, timeoutMs) => w.waitForLine((l) => l.event === "request" && l.requestId === id, timeoutMs);

/** Asserts the `{"error":{"code","message"}}` shape and returns the parsed body. */
export async function expectError(res, status, code) {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  const body = JSON.parse(text);
  if (!body.error || typeof body.error.message !== "string" || !body.error.message) {
    throw new Error(`not an error body: ${text}`);
  }
  if (code && body.error.code !== code) throw new Error(`expected code ${code}, got ${body.error.code}: ${text}`);
  return body;
}

/** Every key in the bucket under `prefix`. */
export async function listKeys(bucket, prefix = "") {
  const keys = [];
  let cursor;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Lower-case hex SHA-256, as r2d1 stores it. */
export const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/** Asserts the status (one or several) and returns the parsed JSON body (or null). */
export async function ok(res, status = 200) {
  const text = await res.text();
  const want = Array.isArray(status) ? status : [status];
  assert.ok(want.includes(res.status), `expected ${want.join(" or ")}, got ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

/** Request init for a JSON body. */
export const json = (method, body, headers = {}) => ({
  method,
  body: body === undefined ? undefined : JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

export const HOUR = 3_600_000;

/** Headers that set a request's clock (test builds: `X-R2D1-Now`). */
export const at = (ms) => ({ "x-r2d1-now": String(Math.round(ms)) });

/** The whole consistency report, following `nextCursor` until the walk is complete. */
export async function consistency(w, { mode = "metadata", limit } = {}) {
  const merged = { clean: true, complete: true, totals: {}, sections: [] };
  let cursor = "";
  do {
    const q = new URLSearchParams({ mode, ...(limit ? { limit: String(limit) } : {}), ...(cursor ? { cursor } : {}) });
    const page = await ok(await w.api(`/api/admin/consistency?${q}`));
    for (const [k, v] of Object.entries(page.totals)) merged.totals[k] = (merged.totals[k] ?? 0) + v;
    for (const s of page.sections) {
      const have = merged.sections.find((x) => x.name === s.name);
      if (!have) merged.sections.push(s);
      else for (const [k, v] of Object.entries(s)) if (typeof v === "number") have[k] += v; else if (Array.isArray(v)) have[k].push(...v);
    }
    cursor = page.nextCursor;
  } while (cursor);
  const t = merged.totals;
  merged.clean = t.rowsWithoutObjects + t.shaMismatches + t.objectsWithoutRows + t.orphansOlderThanGrace + t.indexRowsWithoutVersion === 0;
  return merged;
}

/**
 * Runs the GC to the end on the test clock: a listing pass `hours` ahead (so every object is
 * past a one-hour grace) condemns what nothing references, a second run later deletes it.
 * Returns the keys deleted.
 */
export async function collectGarbage(w, { ahead = 2 * HOUR } = {}) {
  const deleted = [];
  for (const offset of [ahead, 2 * ahead]) {
    let cursor = "";
    do {
      const r = await ok(await w.api(`/api/admin/storage/gc?grace_hours=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { method: "POST", headers: at(Date.now() + offset) }));
      deleted.push(...r.deleted);
      cursor = r.cursor;
    } while (cursor);
  }
  return deleted;
}

/** Pause points (test builds): who is parked where, waiting for it, releasing it. */
export async function paused(w) {
  return (await ok(await w.api("/api/__test/paused"))).paused;
}

export async function waitPaused(w, name, count = 1, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const p = await paused(w);
    if ((p[name] ?? 0) >= count) return;
    if (Date.now() > until) throw new Error(`nothing reached pause point ${name} (parked: ${JSON.stringify(p)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function release(w, name) {
  await ok(await w.api(`/api/__test/release?name=${encodeURIComponent(name)}`, { method: "POST" }));
}
