#!/usr/bin/env node
// Migrates the old app's file-based Omi logs into r2d1 through POST /api/omi/import.
//
//   node scripts/migrate-omi-logs.mjs <omi-logs dir> [--url http://127.0.0.1:8787]
//        [--token $API_TOKEN] [--uid fallback-uid] [--batch 200] [--state FILE] [--dry-run]
//
// Reads every *.json (one record or an array of records) and *.ndjson / *.jsonl file below the
// directory. A record is a bare Omi memory or the old app's wrapper
// {memory, processed, analytics, webhook_received_at}. Its mentor is the record's `uid`, else a
// `by-user/<uid>/` or `<uid>/` folder in its path that looks like one, else --uid.
// Resumable: finished files are listed in the state file (default <dir>/.r2d1-import-state.json)
// and skipped next time; re-running from scratch is safe too, since the import is idempotent.
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { parseArgs, progressBar, callApi, requireToken } from "./lib/cli.mjs";

const args = parseArgs(process.argv.slice(2), { flags: ["dry-run", "help"] });
if (args.help || args._.length !== 1) {
  console.error("usage: node scripts/migrate-omi-logs.mjs <omi-logs dir> [--url URL] [--token TOKEN] [--uid UID] [--batch N] [--state FILE] [--dry-run]");
  process.exit(args.help ? 0 : 2);
}
const dir = args._[0];
const base = args.url || process.env.R2D1_URL || "http://127.0.0.1:8787";
const token = args["dry-run"] ? "" : requireToken(args);
const batchSize = Math.max(1, Math.min(1000, Number(args.batch || 200)));
const statePath = args.state || join(dir, ".r2d1-import-state.json");
const UID = /^[A-Za-z0-9._-]{1,128}$/;

function walk(d) {
  return readdirSync(d).flatMap((name) => {
    const p = join(d, name);
    if (name.startsWith(".")) return [];
    if (statSync(p).isDirectory()) return walk(p);
    return /\.(json|ndjson|jsonl)$/i.test(name) ? [p] : [];
  });
}

function uidFromPath(rel) {
  const parts = rel.split(sep);
  const i = parts.indexOf("by-user");
  if (i >= 0 && UID.test(parts[i + 1] || "")) return parts[i + 1];
  if (parts.length > 1 && UID.test(parts[0]) && !/^\d{4}(-\d{2}){0,2}$/.test(parts[0]) && parts[0] !== "all") return parts[0];
  return undefined;
}

/** The NDJSON lines of one file, each with its mentor filled in where it can be known. */
function recordsOf(file) {
  const text = readFileSync(file, "utf8");
  const rel = relative(dir, file);
  const pathUid = uidFromPath(rel);
  let values;
  if (/\.json$/i.test(file)) {
    const v = JSON.parse(text);
    values = Array.isArray(v) ? v : [v];
  } else {
    values = text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  }
  return values.map((v) => {
    const has = v && (v.uid || v.userId || v.user_id || v.memory?.uid);
    const uid = has ? undefined : pathUid || args.uid;
    return JSON.stringify(uid ? { ...v, uid } : v);
  });
}

const state = existsSync(statePath) ? JSON.parse(readFileSync(statePath, "utf8")) : { done: [] };
const done = new Set(state.done);
const files = walk(dir).sort();
const todo = files.filter((f) => !done.has(relative(dir, f)));
console.error(`r2d1 import: ${files.length} files, ${files.length - todo.length} already done, ${todo.length} to go -> ${base}`);

const totals = { imported: 0, duplicates: 0, failed: 0, unreadable: 0 };
const bar = progressBar(todo.length, "importing");
let pending = [];
let pendingFiles = [];

async function flush() {
  if (!pending.length) return;
  if (!args["dry-run"]) {
    const r = await callApi(base, token, "/api/omi/import", { method: "POST", body: pending.join("\n") });
    totals.imported += r.imported;
    totals.duplicates += r.duplicates;
    totals.failed += r.failed;
    for (const e of r.errors || []) console.error(`\n  skipped record: ${e.code}: ${e.message}`);
  } else {
    totals.imported += pending.length;
  }
  for (const f of pendingFiles) done.add(f);
  writeFileSync(statePath, JSON.stringify({ done: [...done] }));
  pending = [];
  pendingFiles = [];
}

let n = 0;
for (const file of todo) {
  try {
    pending.push(...recordsOf(file));
  } catch (err) {
    totals.unreadable += 1;
    console.error(`\n  unreadable file ${relative(dir, file)}: ${err.message}`);
  }
  pendingFiles.push(relative(dir, file));
  if (pending.length >= batchSize) await flush();
  bar.update(++n, `imported ${totals.imported} dup ${totals.duplicates} failed ${totals.failed}`);
}
await flush();
bar.update(todo.length, `imported ${totals.imported} dup ${totals.duplicates} failed ${totals.failed}`);
bar.done();
console.log(JSON.stringify({ files: files.length, ...totals, dryRun: !!args["dry-run"] }));
process.exit(totals.failed || totals.unreadable ? 1 : 0);
