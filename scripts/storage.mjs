#!/usr/bin/env node
// Drives r2d1's storage admin endpoints until a job is done, with a progress bar on stderr.
//
//   R2D1=https://r2d1.example.workers.dev API_TOKEN=... node scripts/storage.mjs <command> [options]
//
//   migrate  [--app ID] [--batch N] [--dry-run]   move inline content to R2, batch by batch
//   rollback [--app ID] [--batch N]               bring R2 content back inline
//   import   FILE.json [--chunk N]                import an app (old schema JSON), then `migrate`
//   gc       [--grace-hours H]                    one GC pass: condemn unreferenced objects, delete condemned ones past the grace
//   report   [--app ID]                           print the storage report
//
// Every command is safe to re-run and to interrupt: the worker works from what D1 says is left,
// so running the same command again resumes where the last run stopped.
import { readFileSync } from "node:fs";

const USAGE = "usage: node scripts/storage.mjs migrate|rollback|import FILE|gc|report [--app ID] [--batch N] [--dry-run] [--grace-hours H] [--chunk N]";

function parseArgs(argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--dry-run") opts.dryRun = true;
    else if (a.startsWith("--")) {
      const [k, inline] = a.slice(2).split("=", 2);
      opts[k] = inline ?? argv[++i];
      if (opts[k] === undefined) throw new Error(`${a} needs a value`);
    } else opts._.push(a);
  }
  return opts;
}

const base = (process.env.R2D1 || "").replace(/\/$/, "");
const token = process.env.API_TOKEN || "";

async function call(method, path, body) {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetch(base + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      res = { ok: false, status: 0, text: async () => String(e) };
    }
    const text = await res.text();
    // 5xx and network errors are retried (every endpoint is idempotent); 4xx are final.
    if (res.ok) return JSON.parse(text);
    if ((res.status === 0 || res.status >= 500) && attempt < 5) {
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      continue;
    }
    throw new Error(`${method} ${path} -> ${res.status}: ${text}`);
  }
}

/** A one-line progress bar on stderr (only when stderr is a terminal; a log gets plain lines). */
function progress(label, done, total, extra = "") {
  const width = 30;
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${done}/${total} ${label} ${extra}`;
  if (process.stderr.isTTY) process.stderr.write(`\r${bar}`);
  else process.stderr.write(`${bar}\n`);
}
const endProgress = () => process.stderr.isTTY && process.stderr.write("\n");

const query = (o) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
};

async function migrate(opts, endpoint = "migrate") {
  const batch = opts.batch ?? 50;
  let total = null;
  let done = 0;
  const problems = [];
  for (;;) {
    const r = await call("POST", `/api/admin/storage/${endpoint}${query({ app: opts.app, batch, dry_run: opts.dryRun ? "true" : undefined })}`);
    const moved = endpoint === "migrate" ? r.moved.length : r.restored_inline;
    problems.push(...(r.problems || []));
    done += moved;
    if (total === null) total = done + r.remaining;
    progress(endpoint === "migrate" ? "moved" : "inline", done, Math.max(total, done), `(${r.remaining} left)`);
    // A dry run changes nothing, so one call shows the plan; a call that moved nothing while
    // rows remain is stuck on problem rows, which the next run would meet again.
    if (r.done || opts.dryRun || moved === 0) {
      endProgress();
      return { [endpoint === "migrate" ? "moved" : "restored_inline"]: done, remaining: r.remaining, done: r.done, problems, ...(opts.dryRun ? { plan: r.moved } : {}) };
    }
  }
}

async function importFile(file, opts) {
  const data = JSON.parse(readFileSync(file, "utf8"));
  const app = data.app;
  const files = data.app_files || [];
  const versions = data.app_versions || [];
  const chunk = Number(opts.chunk ?? 100);
  const steps = Math.ceil(files.length / chunk) + versions.length;
  let step = 0;
  const summary = { app, files_written: 0, files_unchanged: 0, versions_created: [], versions_skipped: [] };
  const add = (r) => {
    summary.files_written += r.files_written;
    summary.files_unchanged += r.files_unchanged;
    summary.versions_created.push(...r.versions_created);
    summary.versions_skipped.push(...r.versions_skipped);
  };
  for (let i = 0; i < files.length; i += chunk) {
    add(await call("POST", "/api/admin/storage/import", { app, app_files: files.slice(i, i + chunk) }));
    progress("import steps", ++step, steps);
  }
  // One version per request: a version carries full copies of its files.
  for (const v of versions) {
    add(await call("POST", "/api/admin/storage/import", { app, app_versions: [v] }));
    progress("import steps", ++step, steps);
  }
  endProgress();
  return summary;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [command, arg] = opts._;
  if (!base || !token) throw new Error("set R2D1 (the worker's URL) and API_TOKEN");
  let out;
  switch (command) {
    case "migrate":
      out = await migrate(opts, "migrate");
      break;
    case "rollback":
      out = await migrate(opts, "rollback");
      break;
    case "import":
      if (!arg) throw new Error("import needs a JSON file");
      out = await importFile(arg, opts);
      break;
    case "gc": {
      // One GC run per call: follow the listing cursor until a whole pass is done. Objects it
      // condemns are deleted by a later run, once their grace has passed.
      out = { scanned: 0, condemned: 0, deleted: [] };
      let cursor;
      do {
        const r = await call("POST", `/api/admin/storage/gc${query({ grace_hours: opts["grace-hours"], cursor })}`);
        out.scanned += r.scanned;
        out.condemned += r.condemned;
        out.deleted.push(...r.deleted);
        cursor = r.cursor;
      } while (cursor);
      break;
    }
    case "report":
      out = await call("GET", `/api/admin/storage/report${query({ app: opts.app })}`);
      break;
    default:
      throw new Error(USAGE);
  }
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
}

main().catch((e) => {
  process.stderr.write(`${e.message}\n`);
  process.exit(1);
});
