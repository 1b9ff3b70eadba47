// The three workers under test, each in its own workerd (Miniflare) on 127.0.0.1 with fresh,
// non-persistent R2 and D1: r2d1 (the release build in build/), the seed design and the JS
// peer. Same compatibility date, same bindings, same workerd binary.
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Miniflare, Log, LogLevel } from "miniflare";
import { ROOT, COMPATIBILITY_DATE, applyMigrations, splitSql } from "../../tests/helpers/worker.mjs";

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
      bindings: { ...wranglerVars(), API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN },
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
      modulesRules: [{ type: "ESModule", include: ["**/*.mjs"] }],
      bindings: { API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN },
    }),
    migrate: async (db) => {
      const sql = readFileSync(join(ROOT, "bench", "baselines", "peer.sql"), "utf8");
      await db.batch(splitSql(sql).map((s) => db.prepare(s)));
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

/**
 * Starts `name` and times it: `bootMs` = new Miniflare → listening (workerd start, script and
 * wasm compile), `firstMs` = the first request after that (isolate start-up, wasm instantiate).
 */
export async function startTarget(name, { build, verbose = false, extra = {} } = {}) {
  const spec = SPECS[name];
  const before = workerdChildren();
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
    ...spec.options(build),
    ...extra,
  });
  const url = await mf.ready;
  const bootMs = performance.now() - t0;
  const t1 = performance.now();
  const res = await fetch(new URL("/api/health", url));
  await res.text();
  const firstMs = performance.now() - t1;
  const pid = [...workerdChildren()].find((p) => !before.has(p)) ?? null;
  const db = await mf.getD1Database("DB");
  await spec.migrate(db);
  const bucket = await mf.getR2Bucket("BUCKET");
  return { name, mf, db, bucket, origin: url.origin, pid, bootMs, firstMs, dispose: () => mf.dispose() };
}
