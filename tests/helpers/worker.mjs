// One Miniflare per test file, running the built worker (build-test/, made by `npm test` with
// the fault-injection feature) against real local R2 and D1, persistence off. Migrations are
// applied through the D1 binding, as `wrangler d1 migrations apply` would.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { Miniflare } from "miniflare";
import { checkResponse } from "./contract.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const API_TOKEN = "test-api-token-0123456789";
export const WEBHOOK_TOKEN = "test-webhook-token-0123456789";

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

/**
 * Starts the worker. `bindings` override or add vars and secrets; `webhookLimit` is the per-uid
 * webhook rate limit per minute.
 * Returns helpers: `fetch(path, init)`, `api(path, init)` (with the API token), whose responses
 * are validated against openapi.json, the D1 and R2 bindings for looking inside, and `dispose()`.
 */
export async function startWorker({ bindings = {}, migrate = true, webhookLimit = 100_000 } = {}) {
  const build = process.env.R2D1_TEST_BUILD || join(ROOT, "build-test");
  const mf = new Miniflare({
    host: "127.0.0.1",
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
    ratelimits: { WEBHOOK_LIMITER: { simple: { limit: webhookLimit, period: 60 } } },
    durableObjects: { LIVE: "LiveHub" },
    // The dashboard, as wrangler.toml's [assets] serves it; other paths reach the worker.
    assets: { directory: join(build, "web"), routerConfig: { has_user_worker: true } },
    bindings: { API_TOKEN, OMI_WEBHOOK_TOKEN: WEBHOOK_TOKEN, ...bindings },
    cf: false,
  });
  const db = await mf.getD1Database("DB");
  const bucket = await mf.getR2Bucket("BUCKET");
  if (migrate) await applyMigrations(db);

  // Every response is checked against openapi.json (tests/helpers/contract.mjs) before the test
  // sees it; the test gets the original, unread.
  const fetch = async (path, init = {}) => {
    const url = new URL(path, "http://r2d1.test").toString();
    const res = await mf.dispatchFetch(url, init);
    await checkResponse(init.method || "GET", url, res);
    return res;
  };
  const api = (path, init = {}) =>
    fetch(path, { ...init, headers: { authorization: `Bearer ${API_TOKEN}`, ...(init.headers || {}) } });

  return { mf, db, bucket, fetch, api, dispose: () => mf.dispose() };
}

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
