// Baseline for the files figure: r2d1's app-file store (issue 4) written as an idiomatic JS
// Worker, so file PUT/GET, snapshot and restore get an r2d1/peer ratio. Served by the JS peer
// (peer.mjs routes `/api/apps/…` here).
//
// The same design as r2d1 where it is a guarantee: the same tables (r2d1's own migration
// 0003_app_files.sql), the same tiers (inline ≤ INLINE_MAX_BYTES in D1; ≤ HYBRID_MAX_BYTES in
// D1 and R2; larger in R2 only; never more than 512 KiB in a D1 row), content-addressed R2
// objects written create-only (gzip when it saves ≥ 5 %) *before* the one D1 batch that
// references them, R2 verifying each upload's SHA-256, every byte served or restored checked
// against its hash, versions guarded by the app's `revision`, manifests inline up to 4 KB.
//
// Plain JS doing the least work the platform allows: native crypto.subtle SHA-256,
// CompressionStream gzip; one D1 read before a write (the app's storage mode) and one batch
// after it; a snapshot's lines copied and classified in SQL (created / updated / unchanged by
// a join with the previous version) instead of bound path by path; independent R2 writes in
// parallel. Where it does less than r2d1: no Cache API; a `hybrid` file is served from its D1
// copy (already in the row the GET reads) instead of from R2; no If-Match / If-None-Match
// write conditions; no diff, archive, migration or GC routes.
const HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
const D1_INLINE_HARD_MAX = 512 * 1024;
const MANIFEST_INLINE_MAX = 4096;
const APP_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

function json(status, value, extra = {}) {
  return new Response(JSON.stringify(value), { status, headers: { ...HEADERS, ...extra } });
}

const fail = (status, code, message) => json(status, { error: { code, message } });

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

const sha256 = async (bytes) => hex(await crypto.subtle.digest("SHA-256", bytes));

/** Relative, no `..`, no empty segments, no control characters or backslashes. */
function validPath(p) {
  if (!p || p.length > 1024 || p.startsWith("/") || /[\u0000-\u001f\u007f\\]/.test(p)) return null;
  const segs = p.split("/").filter((s) => s !== ".");
  if (!segs.length || segs.some((s) => s === "" || s === "..")) return null;
  return segs.join("/");
}

const TYPES = {
  html: "text/html; charset=utf-8", htm: "text/html; charset=utf-8", css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8", mjs: "text/javascript; charset=utf-8", cjs: "text/javascript; charset=utf-8",
  json: "application/json; charset=utf-8", map: "application/json; charset=utf-8", md: "text/markdown; charset=utf-8",
  txt: "text/plain; charset=utf-8", log: "text/plain; charset=utf-8", csv: "text/csv; charset=utf-8",
  xml: "application/xml", svg: "image/svg+xml", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg",
  gif: "image/gif", webp: "image/webp", ico: "image/x-icon", wasm: "application/wasm", pdf: "application/pdf",
  woff2: "font/woff2", woff: "font/woff", gz: "application/gzip", zip: "application/zip",
};
for (const e of ["ts", "tsx", "jsx", "rs", "py", "toml", "yaml", "yml", "sh", "sql"]) TYPES[e] = "text/plain; charset=utf-8";

const utf8 = new TextDecoder("utf-8", { fatal: true });
function fileType(bytes) {
  if (bytes.includes(0)) return "binary";
  try {
    utf8.decode(bytes);
    return "text";
  } catch {
    return "binary";
  }
}

function contentType(path, type) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  return TYPES[ext] || (type === "text" ? "text/plain; charset=utf-8" : "application/octet-stream");
}

function policy(env, appMode) {
  const mode = ["database", "hybrid", "r2"].includes(appMode) ? appMode : env.STORAGE_MODE || "hybrid";
  return { mode, inlineMax: Number(env.INLINE_MAX_BYTES || 1024), hybridMax: Number(env.HYBRID_MAX_BYTES || 2048) };
}

function place(p, size) {
  const wanted = p.mode === "database" ? "database" : p.mode === "r2" ? "r2" : size <= p.inlineMax ? "database" : size <= p.hybridMax ? "hybrid" : "r2";
  return wanted !== "r2" && size > D1_INLINE_HARD_MAX ? "r2" : wanted;
}

const through = async (bytes, stream) => new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(stream)).arrayBuffer());

/** Writes content at its content address, create-only; an existing object is the same bytes. */
async function putBlob(env, app, sha, bytes, type) {
  let stored = bytes;
  let encoding = null;
  if (bytes.byteLength >= 64) {
    const gz = await through(bytes, new CompressionStream("gzip"));
    if (gz.byteLength * 100 <= bytes.byteLength * 95) {
      stored = gz;
      encoding = "gzip";
    }
  }
  const key = `apps/${app}/blobs/${sha}`;
  await env.BUCKET.put(key, stored, {
    onlyIf: { etagDoesNotMatch: "*" },
    httpMetadata: { contentType: type },
    customMetadata: encoding ? { "r2d1-sha256": sha, "r2d1-encoding": encoding } : { "r2d1-sha256": sha },
    sha256: encoding ? await sha256(stored) : sha,
  });
  return { key, sizeBytes: bytes.byteLength, storedBytes: stored.byteLength, encoding };
}

/** Hashes and places one file's bytes; writes R2 first where its tier needs it. */
async function prepare(env, app, path, bytes, p, entryPoint = false) {
  const sha = await sha256(bytes);
  const type = fileType(bytes);
  const ct = contentType(path, type);
  const location = place(p, bytes.byteLength);
  const blob = location === "database" ? null : await putBlob(env, app, sha, bytes, ct);
  return { path, sha, type, ct, location, size: bytes.byteLength, entryPoint, blob, content: location === "r2" ? null : bytes };
}

const touchApp = (env, app, now) =>
  env.DB.prepare(
    "INSERT INTO apps (id, created_at, updated_at) VALUES (?1, ?2, ?2) ON CONFLICT (id) DO UPDATE SET revision = revision + 1, updated_at = ?2",
  ).bind(app, now);

const recordBlob = (env, app, f, now) =>
  env.DB.prepare(
    `INSERT INTO blobs (r2_key, app_id, sha256, size_bytes, stored_bytes, content_encoding, created_at, last_seen_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (r2_key) DO UPDATE SET last_seen_at = ?7`,
  ).bind(f.blob.key, app, f.sha, f.blob.sizeBytes, f.blob.storedBytes, f.blob.encoding, now);

const writeFile = (env, app, f, now) =>
  env.DB.prepare(
    `INSERT INTO app_files (app_id, path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, content, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)
     ON CONFLICT (app_id, path) DO UPDATE SET file_type = ?3, content_type = ?4, size_bytes = ?5, sha256 = ?6, is_entry_point = ?7,
       storage_location = ?8, r2_key = ?9, content = ?10, updated_at = ?11
     RETURNING created_at`,
  ).bind(app, f.path, f.type, f.ct, f.size, f.sha, f.entryPoint ? 1 : 0, f.location, f.blob ? f.blob.key : null, f.content, now);

const iso = (ms) => new Date(ms).toISOString();

function view(f, now, createdAt) {
  return {
    path: f.path, size_bytes: f.size, sha256: f.sha, storage_location: f.location, content_type: f.ct, file_type: f.type,
    is_entry_point: f.entryPoint, ...(createdAt !== undefined ? { created_at: iso(createdAt) } : {}), updated_at: iso(now),
  };
}

async function appMode(env, app) {
  const row = await env.DB.prepare("SELECT storage_mode FROM apps WHERE id = ?1").bind(app).first();
  return policy(env, row?.storage_mode);
}

async function putFile(request, env, app, path) {
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength > Number(env.MAX_BODY_BYTES || 8388608)) return fail(413, "too_large", "body too large");
  const now = Date.now();
  const f = await prepare(env, app, path, bytes, await appMode(env, app), new URL(request.url).searchParams.get("entry_point") === "true");
  const stmts = [touchApp(env, app, now)];
  if (f.blob) stmts.push(recordBlob(env, app, f, now));
  stmts.push(writeFile(env, app, f, now));
  const results = await env.DB.batch(stmts);
  const createdAt = results[results.length - 1].results[0].created_at;
  return json(createdAt === now ? 201 : 200, view(f, now, createdAt), { etag: `"${f.sha}"` });
}

/** A row's inline content (D1 returns a BLOB as an array of numbers). */
const inline = (row) => (row.content === null || row.content === undefined ? null : new Uint8Array(row.content));

/** The file's bytes, checked against its hash: inline where the row has them, else from R2. */
async function load(env, row) {
  const own = inline(row);
  if (own) {
    if ((await sha256(own)) === row.sha256) return own;
    if (row.storage_location === "database") return null;
  }
  const obj = await env.BUCKET.get(row.r2_key);
  if (!obj) return null;
  let bytes = new Uint8Array(await obj.arrayBuffer());
  if (obj.customMetadata?.["r2d1-encoding"] === "gzip") bytes = await through(bytes, new DecompressionStream("gzip"));
  return (await sha256(bytes)) === row.sha256 ? bytes : null;
}

async function getFile(request, env, app, path) {
  const row = await env.DB.prepare(
    "SELECT path, content_type, sha256, storage_location, r2_key, content FROM app_files WHERE app_id = ?1 AND path = ?2",
  )
    .bind(app, path)
    .first();
  if (!row) return fail(404, "not_found", `no file ${path}`);
  const headers = { etag: `"${row.sha256}"`, "cache-control": "no-cache", "x-content-sha256": row.sha256, "content-type": row.content_type };
  if ((request.headers.get("if-none-match") || "").replaceAll('"', "") === row.sha256) return new Response(null, { status: 304, headers });
  const bytes = await load(env, row);
  if (!bytes) return fail(500, "integrity", `${app} ${path}: content does not match its hash`);
  return new Response(request.method === "HEAD" ? null : bytes, { headers });
}

function decodeContent(content, encoding) {
  if (!encoding || encoding === "utf8" || encoding === "utf-8" || encoding === "text") return new TextEncoder().encode(content);
  if (encoding === "base64") return Uint8Array.from(atob(content), (c) => c.charCodeAt(0));
  throw new Error(`encoding ${encoding}`);
}

async function batch(request, env, app) {
  let body;
  try {
    body = await request.json();
  } catch {
    return fail(400, "invalid_json", "batch body is not JSON");
  }
  const files = body.files || [];
  const deletes = body.delete || [];
  if (!files.length && !deletes.length) return fail(400, "invalid_field", "files must not be empty");
  if (files.length + deletes.length > 500) return fail(400, "invalid_field", "at most 500 files per batch");
  const seen = new Set();
  const inputs = [];
  for (const f of files) {
    const path = validPath(f.path);
    if (!path || seen.has(path)) return fail(400, "invalid_path", `path ${f.path}`);
    seen.add(path);
    inputs.push({ path, bytes: decodeContent(f.content, f.encoding), entry: f.entry_point === true });
  }
  const gone = deletes.map(validPath);
  if (gone.some((p) => !p || seen.has(p))) return fail(400, "invalid_path", "delete");
  const now = Date.now();
  const p = await appMode(env, app);
  const prepared = await Promise.all(inputs.map((x) => prepare(env, app, x.path, x.bytes, p, x.entry)));
  const stmts = [touchApp(env, app, now)];
  for (const f of prepared) {
    if (f.blob) stmts.push(recordBlob(env, app, f, now));
    stmts.push(writeFile(env, app, f, now));
  }
  for (const path of gone) stmts.push(env.DB.prepare("DELETE FROM app_files WHERE app_id = ?1 AND path = ?2").bind(app, path));
  await env.DB.batch(stmts);
  return json(200, { app, files: prepared.map((f) => view(f, now)), deleted: gone });
}

// ---------------------------------------------------------------------------------------------
// Versions

const GUARD = "(SELECT revision FROM apps WHERE id = ?1) = ?3";
const LINE_COLS = "file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, content";

/** Actions of a new version whose live files are `next` after `previous` (both [{path, sha256, size_bytes}]). */
function plan(previous, next, restoring) {
  const before = new Map(previous.map((f) => [f.path, f]));
  const after = new Set(next.map((f) => f.path));
  const out = next.map((f) => {
    const was = before.get(f.path);
    const action = was && was.sha256 === f.sha256 ? "unchanged" : restoring ? "restored" : was ? "updated" : "created";
    return { path: f.path, action, sha256: f.sha256, size_bytes: f.size_bytes, storage_location: f.storage_location };
  });
  for (const f of previous) if (!after.has(f.path)) out.push({ path: f.path, action: "deleted", sha256: f.sha256, size_bytes: f.size_bytes });
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Stores the manifest (inline or in R2) and returns the version row's statement and the doc. */
async function manifestOf(env, app, number, header, planned, now) {
  const live = planned.filter((l) => l.action !== "deleted");
  const doc = {
    app, version_number: number, changelog: header.changelog, environment: header.environment, created_at: iso(now),
    ...(header.restoredFrom ? { restored_from: header.restoredFrom } : {}),
    file_count: live.length, total_bytes: live.reduce((s, l) => s + l.size_bytes, 0), files: planned,
  };
  const text = JSON.stringify(doc);
  const bytes = new TextEncoder().encode(text);
  const sha = await sha256(bytes);
  let key = null;
  if (bytes.byteLength > MANIFEST_INLINE_MAX) {
    key = `apps/${app}/snapshots/${number}.json`;
    // A leftover of an attempt whose D1 batch failed may sit there: readers check the hash.
    await env.BUCKET.put(key, bytes, { httpMetadata: { contentType: "application/json" }, customMetadata: { "r2d1-sha256": sha }, sha256: sha });
  }
  const row = env.DB.prepare(
    `INSERT INTO app_versions (app_id, version_number, changelog, environment, storage_strategy, snapshot_key, manifest,
       manifest_sha256, manifest_bytes, file_count, total_bytes, restored_from, created_at)
     SELECT ?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 WHERE ${GUARD}`,
  );
  const bind = (revision) =>
    row.bind(app, number, revision, header.changelog, header.environment, key ? "r2" : "inline", key, key ? null : text, sha, bytes.byteLength, doc.file_count, doc.total_bytes, header.restoredFrom ?? null, now);
  return { doc, bind };
}

/** The previous version's live lines, and the statements that copy its deleted ones forward. */
const latestLines = (env, app) =>
  env.DB.prepare(
    `SELECT version_number AS v, path, sha256, size_bytes FROM app_version_files
     WHERE app_id = ?1 AND version_number = (SELECT MAX(version_number) FROM app_versions WHERE app_id = ?1) AND action != 'deleted'`,
  ).bind(app);

function deletedLines(env, app, number, revision, prev, keptSql) {
  return env.DB.prepare(
    `INSERT INTO app_version_files (app_id, version_number, path, action, file_type, content_type, size_bytes, sha256)
     SELECT ?1, ?2, p.path, 'deleted', 'binary', 'application/octet-stream', p.size_bytes, p.sha256 FROM app_version_files p
     WHERE p.app_id = ?1 AND p.version_number = ?4 AND p.action != 'deleted' AND p.path NOT IN (${keptSql}) AND ${GUARD}`,
  ).bind(app, number, revision, prev);
}

const bump = (env, app, revision, now) =>
  env.DB.prepare("UPDATE apps SET revision = revision + 1, updated_at = ?2 WHERE id = ?1 AND revision = ?3").bind(app, now, revision);

async function createVersion(request, env, app) {
  let body = {};
  const text = await request.text();
  if (text.trim()) {
    try {
      body = JSON.parse(text);
    } catch {
      return fail(400, "invalid_json", "body is not JSON");
    }
  }
  const header = { changelog: body.changelog || "", environment: body.environment || "development" };
  const [appRow, current, previous] = await env.DB.batch([
    env.DB.prepare("SELECT revision FROM apps WHERE id = ?1").bind(app),
    env.DB.prepare("SELECT path, sha256, size_bytes, storage_location FROM app_files WHERE app_id = ?1 ORDER BY path").bind(app),
    latestLines(env, app),
  ]);
  if (!appRow.results.length) return fail(404, "not_found", `app ${app} has no files`);
  const revision = appRow.results[0].revision;
  const prev = previous.results.length ? previous.results[0].v : 0;
  const number = prev + 1;
  const now = Date.now();
  const planned = plan(previous.results, current.results, false);
  const { doc, bind } = await manifestOf(env, app, number, header, planned, now);
  const results = await env.DB.batch([
    bind(revision),
    // Every current file becomes a line, classified against the previous version in SQL.
    env.DB.prepare(
      `INSERT INTO app_version_files (app_id, version_number, path, action, ${LINE_COLS})
       SELECT ?1, ?2, f.path, CASE WHEN p.sha256 IS NULL THEN 'created' WHEN p.sha256 = f.sha256 THEN 'unchanged' ELSE 'updated' END,
         f.file_type, f.content_type, f.size_bytes, f.sha256, f.is_entry_point, f.storage_location, f.r2_key, f.content
       FROM app_files f LEFT JOIN app_version_files p ON p.app_id = f.app_id AND p.version_number = ?4 AND p.path = f.path AND p.action != 'deleted'
       WHERE f.app_id = ?1 AND ${GUARD}`,
    ).bind(app, number, revision, prev),
    deletedLines(env, app, number, revision, prev, "SELECT path FROM app_files WHERE app_id = ?1"),
    bump(env, app, revision, now),
  ]);
  if (results[0].meta.changes !== 1) return fail(409, "conflict", "the app's files changed while the version was being recorded; retry");
  return json(201, doc);
}

async function restore(env, app, v) {
  const [appRow, target, previous] = await env.DB.batch([
    env.DB.prepare("SELECT revision, (SELECT COUNT(*) FROM app_versions WHERE app_id = ?1 AND version_number = ?2) AS found FROM apps WHERE id = ?1").bind(app, v),
    env.DB.prepare(`SELECT path, ${LINE_COLS} FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted' ORDER BY path`).bind(app, v),
    latestLines(env, app),
  ]);
  if (!appRow.results.length || !appRow.results[0].found) return fail(404, "not_found", `app ${app} has no version ${v}`);
  // Every byte about to become current is checked first (R2 objects read in parallel).
  const checks = await Promise.all(target.results.map((row) => load(env, row)));
  const bad = target.results.find((_, i) => !checks[i]);
  if (bad) return fail(500, "integrity", `version ${v} file ${bad.path} does not match its hash`);
  const revision = appRow.results[0].revision;
  const prev = previous.results.length ? previous.results[0].v : 0;
  const number = prev + 1;
  const now = Date.now();
  const planned = plan(previous.results, target.results, true);
  const { doc, bind } = await manifestOf(env, app, number, { changelog: `restore of version ${v}`, environment: "restore", restoredFrom: v }, planned, now);
  const results = await env.DB.batch([
    env.DB.prepare(
      `DELETE FROM app_files WHERE app_id = ?1 AND ${GUARD} AND path NOT IN
         (SELECT path FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted')`,
    ).bind(app, v, revision),
    env.DB.prepare(
      `INSERT INTO app_files (app_id, path, ${LINE_COLS}, created_at, updated_at)
       SELECT ?1, path, ${LINE_COLS}, ?4, ?4 FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted' AND ${GUARD}
       ON CONFLICT (app_id, path) DO UPDATE SET file_type = excluded.file_type, content_type = excluded.content_type,
         size_bytes = excluded.size_bytes, sha256 = excluded.sha256, is_entry_point = excluded.is_entry_point,
         storage_location = excluded.storage_location, r2_key = excluded.r2_key, content = excluded.content, updated_at = excluded.updated_at
       WHERE app_files.sha256 != excluded.sha256 OR app_files.storage_location != excluded.storage_location`,
    ).bind(app, v, revision, now),
    bind(revision),
    env.DB.prepare(
      `INSERT INTO app_version_files (app_id, version_number, path, action, ${LINE_COLS})
       SELECT ?1, ?2, s.path, CASE WHEN p.sha256 = s.sha256 THEN 'unchanged' ELSE 'restored' END,
         s.file_type, s.content_type, s.size_bytes, s.sha256, s.is_entry_point, s.storage_location, s.r2_key, s.content
       FROM app_version_files s LEFT JOIN app_version_files p ON p.app_id = s.app_id AND p.version_number = ?4 AND p.path = s.path AND p.action != 'deleted'
       WHERE s.app_id = ?1 AND s.version_number = ?5 AND s.action != 'deleted' AND ${GUARD}`,
    ).bind(app, number, revision, prev, v),
    deletedLines(env, app, number, revision, prev, `SELECT path FROM app_version_files WHERE app_id = ?1 AND version_number = ${Number(v)} AND action != 'deleted'`),
    bump(env, app, revision, now),
  ]);
  if (results[2].meta.changes !== 1) return fail(409, "conflict", "the app's files changed during the restore; retry");
  return json(201, doc);
}

/** `/api/apps/{segments…}` (the API token is already checked). */
export async function appFiles(request, env, segments) {
  const [rawApp, what, ...rest] = segments;
  const app = decodeURIComponent(rawApp || "");
  if (!APP_ID.test(app)) return fail(400, "invalid_field", "app");
  const m = request.method;
  if (what === "files" && rest.length) {
    const path = validPath(rest.map(decodeURIComponent).join("/"));
    if (!path) return fail(400, "invalid_path", "path");
    if (m === "PUT") return putFile(request, env, app, path);
    if (m === "GET" || m === "HEAD") return getFile(request, env, app, path);
  }
  if (what === "files:batch" && !rest.length && m === "POST") return batch(request, env, app);
  if (what === "versions" && !rest.length && m === "POST") return createVersion(request, env, app);
  if (what === "versions" && rest.length === 2 && rest[1] === "restore" && m === "POST") {
    const v = Number(rest[0]);
    if (!Number.isInteger(v) || v < 1) return fail(400, "invalid_field", "version");
    return restore(env, app, v);
  }
  return fail(404, "not_found", `no route for ${m} /api/apps/${segments.join("/")}`);
}
