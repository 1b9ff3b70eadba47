// The three workers under test, each in its own workerd (Miniflare) on 127.0.0.1 with fresh,
// non-persistent R2 and D1: r2d1 (the release build in build/), the seed design and the JS
// peer. Same compatibility date, same bindings, same workerd binary.
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import { ROOT, COMPATIBILITY_DATE, applyMigrations, splitSql, migrationFiles } from "../../tests/helpers/worker.mjs";

export const API_TOKEN = "bench-api-token-0123456789abcdef";
export const WEBHOOK_TOKEN = "bench-webhook-token-0123456789abcdef";

/** The [vars] of wrangler.toml, so r2d1 runs with its deployed settings. */
function wranglerVars() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const section = toml.split(/^\[vars\]\s*$/m)[1];
  if (!section) return {};
  const vars = {};
  for (const line of section.split("\n")) {
    if (/^\s*\[/.test(line)) break;
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*"([^"]*)"/);
    if (m) vars[m[1]] = m[2];
  }
  return vars;
}

const SPECS = {
  r2d1: {
    label: "r2d1 (Rust/wasm)",
    options: (build) => ({
      scriptPath: join(build, "entry.mjs"),
      modulesRoot: build,
      modulesRules: [
        { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
        { type: "CompiledWasm", include: ["**/*.wasm"] },
      ],
      // The bench measures speed, not the plan's per-request subrequest limit (Miniflare does
      // not enforce it; tests/budgets.test.mjs holds every route to the Free plan's): its
      // seeding imports 250 memories a request and its diffs read 85 files.
      bindings: { ...wranglerVars(), SUBREQUEST_BUDGET: "1000000", API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN },
      // r2d1's per-uid webhook limiter stays on (its cost is part of ingest) with a limit the
      // load cannot reach: the baselines have none.
      ratelimits: { WEBHOOK_LIMITER: { simple: { limit: 10_000_000, period: 60 } } },
      // As deployed: every new memory is announced to the dashboards' hub (after the response).
      durableObjects: { LIVE: "LiveHub" },
    }),
    migrate: (db) => applyMigrations(db),
  },
  peer: {
    label: "JS peer (same design)",
    options: () => ({
      scriptPath: join(ROOT, "bench", "baselines", "peer.mjs"),
      modulesRoot: join(ROOT, "bench", "baselines"),
      modulesRules: [{ type: "ESModule", include: ["**/*.mjs"] }],
      // The same storage policy as r2d1 (wrangler.toml's [vars]) for the app files.
      bindings: { ...wranglerVars(), API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN },
    }),
    migrate: async (db) => {
      // Memories: the peer's own one-table schema. App files (peer-files.mjs): r2d1's own
      // tables, from its migrations (0003_app_files.sql records itself in schema_version, which
      // 0001 creates).
      const files = migrationFiles().filter((m) => /^000[13]_/.test(m.name));
      for (const sql of [readFileSync(join(ROOT, "bench", "baselines", "peer.sql"), "utf8"), ...files.map((m) => m.sql)]) {
        await db.batch(splitSql(sql).map((s) => db.prepare(s)));
      }
    },
  },
  seed: {
    label: "seed design (JS)",
    options: () => ({
      scriptPath: join(ROOT, "bench", "baselines", "seed.mjs"),
      modulesRules: [{ type: "ESModule", include: ["**/*.mjs"] }],
      bindings: { API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN },
    }),
    migrate: async () => {},
  },
};

function workerdChildren() {
  try {
    return new Set(execFileSync("pgrep", ["-P", String(process.pid), "workerd"], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number));
  } catch {
    return new Set();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; null off Linux. */
export function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

export const TARGETS = Object.keys(SPECS);
export const label = (name) => SPECS[name].label;

/** A TCP port free on 127.0.0.1 right now (for an inspector). */
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

/**
 * Starts `name` with fresh storage, migrated, and times it: `bootMs` = new Miniflare → listening
 * (workerd start, scripts parsed, wasm compiled); then the D1 and R2 simulators are woken
 * through the bindings (migrations, one R2 HEAD: on Cloudflare they are remote services, their
 * start is not the worker's); then `firstMs` = the first request to the worker (isolate
 * start-up, wasm instantiation, first run of every code path it takes) and `secondMs` = the same
 * request again, warm. The request is `GET /api/health` (R2 HEAD + one D1 SELECT in r2d1 and
 * in the peer) unless `first(i)` returns another `{path, init}` for request i (0, 1); `around(i,
 * send, {inspectorPort})` may wrap each of the two (to profile it).
 * `inspect: true` opens the V8 inspector (bench/lib/cpu.mjs) on a free port. `pid` is workerd's
 * process id; its main thread (tid = pid) runs every isolate.
 */
export async function startTarget(name, { build, verbose = false, inspect = false, first = null, around = null, extra = {} } = {}) {
  const spec = SPECS[name];
  const before = workerdChildren();
  const inspectorPort = inspect ? await freePort() : undefined;
  const t0 = performance.now();
  const mf = new Miniflare({
    name,
    host: "127.0.0.1",
    port: 0,
    modules: true,
    compatibilityDate: COMPATIBILITY_DATE,
    r2Buckets: ["BUCKET"],
    d1Databases: ["DB"],
    cf: false,
    log: new Log(verbose ? LogLevel.INFO : LogLevel.WARN),
    ...(inspectorPort ? { inspectorPort } : {}),
    ...spec.options(build),
    ...extra,
  });
  const url = await mf.ready;
  const bootMs = performance.now() - t0;
  const pid = [...workerdChildren()].find((p) => !before.has(p)) ?? null;
  const db = await mf.getD1Database("DB");
  await spec.migrate(db);
  const bucket = await mf.getR2Bucket("BUCKET");
  await bucket.head("__bench_wake");
  const timed = async (i) => {
    const req = first ? first(i) : { path: "/api/health", init: {} };
    const send = async () => {
      const t = performance.now();
      const res = await fetch(new URL(req.path, url), req.init);
      await res.text();
      if (res.status >= 500) throw new Error(`${name}: first requests answered ${res.status}`);
      return performance.now() - t;
    };
    return around ? around(i, send, { inspectorPort }) : send();
  };
  const firstMs = await timed(0);
  const secondMs = await timed(1);
  return { name, mf, db, bucket, origin: url.origin, pid, inspectorPort, bootMs, firstMs, secondMs, dispose: () => mf.dispose() };
}
