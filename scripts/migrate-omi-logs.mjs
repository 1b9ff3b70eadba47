#!/usr/bin/env node
// Migrates the old Next.js app's Omi logs into r2d1 through POST /api/omi/import.
//
//   node scripts/migrate-omi-logs.mjs <omi-logs dir> [--mapping FILE] [--dry-run]
//        [--url http://127.0.0.1:8787] [--token $API_TOKEN] [--batch 200] [--state FILE]
//
// Walks the whole tree: omi-logs/memory/by-user/{sanitizedUid}/memory-{id}-{ms}.json and
// omi-logs/memory/all/{sanitizedUid}-memory-{id}-{ms}.json (and, if a bucket was copied in,
// the R2 layouts mobil3-mentorships/{by-user,all}/…). Each memory is attributed to its mentor
// from the wrapper's processed.uid or the file name, never from a directory; `--mapping` (a
// JSON object or two-column CSV, sanitised id → real Omi uid) restores real uids, and a mentor
// it does not name keeps the sanitised id (listed under "unmapped"). Copies of the same content
// count once; changed content of the same memory becomes its next version, in received order.
//
// stdout: line 1 is the report (mentors, memories, versions, copies, duplicates, unreadable
// files, conflicts, unmapped, skipped); with --dry-run that is all, and nothing is written.
// Otherwise line 2 is the import's result. Progress and a readable summary go to stderr.
// Resumable: acknowledged records are listed in the state file (default
// <dir>/.r2d1-import-state.json) and not sent again; starting over is safe too, since the
// import is idempotent. Exit status 1 when the worker refused records, 2 on bad arguments.
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync, renameSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { parseArgs, progressBar, callApi, requireToken } from "./lib/cli.mjs";
import { Migration, parseMapping, emptyMapping, unwrapLegacy } from "./lib/omi-legacy.mjs";

const USAGE =
  "usage: node scripts/migrate-omi-logs.mjs <omi-logs dir> [--mapping FILE] [--dry-run] [--url URL] [--token TOKEN] [--batch N] [--state FILE]";
const args = parseArgs(process.argv.slice(2), { flags: ["dry-run", "help"] });
if (args.help || args._.length !== 1) {
  console.error(USAGE);
  process.exit(args.help ? 0 : 2);
}
const dir = resolve(args._[0]);
if (!existsSync(dir) || !statSync(dir).isDirectory()) {
  console.error(`error: ${args._[0]} is not a directory`);
  process.exit(2);
}
const dryRun = !!args["dry-run"];
const base = args.url || process.env.R2D1_URL || "http://127.0.0.1:8787";
const token = dryRun ? "" : requireToken(args);
const batchSize = Math.max(1, Math.min(1000, Number(args.batch || 200)));
// The worker's MAX_BODY_BYTES defaults to 8 MiB; memories with photos can be megabytes each.
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
const statePath = args.state || join(dir, ".r2d1-import-state.json");

let mapping = emptyMapping();
if (args.mapping) {
  try {
    mapping = parseMapping(readFileSync(args.mapping, "utf8"));
  } catch (e) {
    console.error(`error: --mapping ${args.mapping}: ${e.message}`);
    process.exit(2);
  }
}

function walk(d) {
  return readdirSync(d)
    .sort()
    .flatMap((name) => {
      if (name.startsWith(".")) return [];
      const p = join(d, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
}

// Layouts are read from the absolute path (so the tree's own directories are always there);
// the report names files relative to <dir>.
const posix = (p) => p.split(sep).join("/");
const files = walk(dir);
const migration = new Migration(mapping);
const fileOf = new Map();
for (const file of files) {
  const source = posix(relative(dir, file));
  fileOf.set(source, file);
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    migration.unreadable.push({ source, reason: e.message });
    continue;
  }
  migration.addFile(posix(file), bytes, source);
}
const report = { dryRun, files: files.length, ...migration.report() };
console.log(JSON.stringify(report));
summarise(report);
if (dryRun) process.exit(0);

// --- import ---------------------------------------------------------------------------------
const recordKey = (m, v) => `${m.uid}\t${m.memoryId}\t${v.sha256}`;
const loaded = existsSync(statePath) ? JSON.parse(readFileSync(statePath, "utf8")) : null;
const done = new Set(loaded && loaded.url === base ? loaded.done : []);
function saveState() {
  // Written whole, then renamed: an interrupted run never leaves half a state file.
  writeFileSync(statePath + ".tmp", JSON.stringify({ url: base, done: [...done] }));
  renameSync(statePath + ".tmp", statePath);
}

// Versions of one memory must reach the worker in received order (it numbers them as they
// arrive, and lines of one request are stored concurrently): wave k holds every memory's k-th
// version, and a wave starts when the one before it is acknowledged.
const plan = migration.plan();
const waves = [];
for (const m of plan) {
  m.versions.forEach((v, k) => {
    if (done.has(recordKey(m, v))) return;
    (waves[k] ??= []).push({ m, v });
  });
}
const todo = waves.reduce((n, w) => n + w.length, 0);
const totals = { imported: 0, duplicates: 0, failed: 0, alreadyDone: plan.reduce((n, m) => n + m.versions.length, 0) - todo, errors: [] };
console.error(`r2d1 import: ${todo} records to send, ${totals.alreadyDone} already done -> ${base}`);
const bar = progressBar(todo, "importing");
let sent = 0;

/** The NDJSON line for one version: its first copy's memory, with the mentor and time made explicit. */
function lineOf({ m, v }) {
  const record = unwrapLegacy(JSON.parse(readFileSync(fileOf.get(v.sources[0]), "utf8")));
  return JSON.stringify({ uid: m.uid, webhook_received_at: new Date(v.receivedMs).toISOString(), memory: record.memory });
}

/** Sends a chunk; a response with `done: false` (the worker's operation budget or time ran
 * out) is followed by the chunk's lines from its `nextLine` on, until every line is done. */
async function post(chunk) {
  while (chunk.length) {
    const lines = chunk.map(lineOf);
    const r = await callApi(base, token, "/api/omi/import", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: lines.join("\n"),
    });
    // The counts and errors cover the lines before `nextLine`; the lines from there are sent again.
    const handled = r.done === false ? r.nextLine - 1 : chunk.length;
    if (!(handled > 0)) throw new Error(`the worker made no progress on a chunk (nextLine ${r.nextLine}): raise SUBREQUEST_BUDGET`);
    totals.imported += r.imported;
    totals.duplicates += r.duplicates;
    totals.failed += r.failed;
    const failedLines = new Set();
    for (const e of r.errors || []) {
      const { m, v } = chunk[e.line - 1];
      failedLines.add(e.line - 1);
      totals.errors.push({ uid: m.uid, memoryId: m.memoryId, source: v.sources[0], code: e.code, message: e.message });
      console.error(`\n  refused ${v.sources[0]}: ${e.code}: ${e.message}`);
    }
    chunk.slice(0, handled).forEach(({ m, v }, i) => failedLines.has(i) || done.add(recordKey(m, v)));
    saveState();
    sent += handled;
    bar.update(sent, `imported ${totals.imported} dup ${totals.duplicates} failed ${totals.failed}`);
    chunk = chunk.slice(handled);
  }
}

try {
  for (const wave of waves.filter(Boolean)) {
    let chunk = [];
    let bytes = 0;
    for (const item of wave) {
      const size = statSync(fileOf.get(item.v.sources[0])).size;
      if (chunk.length && (chunk.length >= batchSize || bytes + size > MAX_CHUNK_BYTES)) {
        await post(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += size;
    }
    if (chunk.length) await post(chunk);
  }
} catch (e) {
  bar.done();
  console.error(`\nerror: ${e.message} (${sent} of ${todo} records sent; run again to resume)`);
  process.exit(1);
}
bar.update(todo, `imported ${totals.imported} dup ${totals.duplicates} failed ${totals.failed}`);
bar.done();
console.log(JSON.stringify(totals));
process.exit(totals.failed ? 1 : 0);

function summarise(r) {
  const out = [
    `${r.dryRun ? "dry run: nothing will be written" : "plan"}: ${r.files} files, ${r.copies} copies of ${r.memories} memories (${r.versions} versions) from ${r.mentors.length} mentors, ${r.duplicates} duplicate copies`,
    ...r.mentors.map((m) => `  ${m.uid}${m.mapped ? "" : " (unmapped: keeps its sanitised id)"}: ${m.memories} memories, ${m.versions} versions, ${m.copies} copies`),
  ];
  if (r.unreadable.length) out.push(`unreadable (${r.unreadable.length}):`, ...r.unreadable.map((p) => `  ${p.source}: ${p.reason}`));
  if (r.conflicts.length) out.push(`conflicts (${r.conflicts.length}, the wrapper wins):`, ...r.conflicts.map((c) => `  ${c.source}: ${c.uid}, also ${c.others.join(", ")}`));
  if (r.skipped.length) out.push(`skipped, not memory files: ${r.skipped.length}`);
  console.error(out.join("\n"));
}
