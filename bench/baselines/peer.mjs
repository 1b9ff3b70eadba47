// Baseline 2: what a Cloudflare user would write instead of r2d1 — r2d1's design (raw body in
// R2, index in D1, idempotent, newest-first, SQL stats) as an idiomatic JS Worker, tuned to do
// the least work the platform allows:
//
// - ingest: one SHA-256 (native), one JSON.parse, ONE D1 statement that both decides
//   new/changed/duplicate and writes the index row (upsert … WHERE hash differs … RETURNING),
//   then the two R2 copies in parallel. A duplicate costs the D1 round trip and nothing else.
//   If R2 fails the row is rolled back, so a retry stores the memory.
// - logs: one D1 batch (page + total) off the (user_id, created_ms DESC) index; R2 untouched.
// - stats: one D1 batch of aggregates over the user's clustered rows.
// - analytics: one GROUP BY over a covering (day, user_id, duration_s) index.
// - health: one R2 HEAD and one D1 SELECT, like r2d1's (the cold-start figure compares them).
// - app files (`/api/apps/…`): bench/baselines/peer-files.mjs.
//
// Schema: bench/baselines/peer.sql (memories); r2d1's migrations 0001 and 0003 (app files).
import { appFiles } from "./peer-files.mjs";

const ROOT = "mobil3-mentorships";
const HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
const KEY_PART = /^[A-Za-z0-9._-]{1,128}$/;

function json(status, value) {
  return new Response(JSON.stringify(value), { status, headers: HEADERS });
}

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

function words(text) {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const space = c === 32 || c === 10 || c === 9 || c === 13;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

const UPSERT = `INSERT INTO memories (user_id, memory_id, version, content_sha256, created_ms, created_at, day,
  title, overview, emoji, category, discarded, segments, words, duration_s, action_items, action_done, bytes, r2_key, received_ms,
  started_at, finished_at, language, source)
VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)
ON CONFLICT (user_id, memory_id) DO UPDATE SET
  version = memories.version + 1, content_sha256 = excluded.content_sha256, created_ms = excluded.created_ms,
  created_at = excluded.created_at, day = excluded.day, title = excluded.title, overview = excluded.overview,
  emoji = excluded.emoji, category = excluded.category, discarded = excluded.discarded, segments = excluded.segments,
  words = excluded.words, duration_s = excluded.duration_s, action_items = excluded.action_items, action_done = excluded.action_done,
  bytes = excluded.bytes, r2_key = excluded.r2_key, received_ms = excluded.received_ms,
  started_at = excluded.started_at, finished_at = excluded.finished_at, language = excluded.language, source = excluded.source
WHERE memories.content_sha256 <> excluded.content_sha256
RETURNING version`;

async function ingest(request, env, url) {
  if (url.searchParams.get("token") !== env.OMI_WEBHOOK_TOKEN) return json(401, { error: { code: "unauthorized", message: "invalid token" } });
  const uid = url.searchParams.get("uid") || "";
  if (!KEY_PART.test(uid)) return json(400, { error: { code: "invalid_field", message: "uid" } });
  const body = await request.arrayBuffer();
  let m;
  try {
    m = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return json(400, { error: { code: "invalid_json", message: "body is not JSON" } });
  }
  const id = m && typeof m.id === "string" ? m.id : null;
  if (!id || !KEY_PART.test(id)) return json(400, { error: { code: "invalid_field", message: "id" } });
  const createdMs = Date.parse(m.created_at);
  if (!Number.isFinite(createdMs)) return json(400, { error: { code: "invalid_field", message: "created_at" } });
  const hash = hex(await crypto.subtle.digest("SHA-256", body));

  const s = m.structured || {};
  const items = Array.isArray(s.action_items) ? s.action_items : [];
  const segs = Array.isArray(m.transcript_segments) ? m.transcript_segments : [];
  let w = 0;
  for (const seg of segs) if (seg && typeof seg.text === "string") w += words(seg.text);
  const started = Date.parse(m.started_at);
  const finished = Date.parse(m.finished_at);
  const createdAt = new Date(createdMs).toISOString();
  const received = Date.now();
  const rIso = new Date(received).toISOString();
  const userKey = `${ROOT}/by-user/${uid}/${rIso.slice(0, 4)}/${rIso.slice(5, 7)}/${id}-${received}.json`;
  const dailyKey = `${ROOT}/all/${rIso.slice(0, 10)}/${uid}-${id}-${received}.json`;

  const row = await env.DB.prepare(UPSERT)
    .bind(
      uid, id, hash, createdMs, createdAt, createdAt.slice(0, 10),
      typeof s.title === "string" ? s.title : "", typeof s.overview === "string" ? s.overview : "",
      typeof s.emoji === "string" ? s.emoji : null, typeof s.category === "string" ? s.category : "other",
      m.discarded === true ? 1 : 0, segs.length, w,
      Number.isFinite(started) && Number.isFinite(finished) ? (finished - started) / 1000 : 0,
      items.length, items.filter((x) => x && x.completed === true).length, body.byteLength, userKey, received,
      Number.isFinite(started) ? new Date(started).toISOString() : null,
      Number.isFinite(finished) ? new Date(finished).toISOString() : null,
      typeof m.language === "string" ? m.language : null, typeof m.source === "string" ? m.source : null,
    )
    .first();
  if (!row) {
    return json(200, { success: true, message: "Memory already stored", memory_id: id, user_id: uid, duplicate: true });
  }
  const meta = { httpMetadata: { contentType: "application/json" }, sha256: hash };
  try {
    await Promise.all([env.BUCKET.put(userKey, body, meta), env.BUCKET.put(dailyKey, body, meta)]);
  } catch (e) {
    // The index must not point at a body that was never stored: undo, so Omi's retry succeeds.
    await env.DB.prepare("DELETE FROM memories WHERE user_id = ?1 AND memory_id = ?2 AND content_sha256 = ?3").bind(uid, id, hash).run();
    return json(503, { error: { code: "storage_unavailable", message: "R2 write failed" } });
  }
  return json(200, {
    success: true, message: "Memory stored in R2", memory_id: id, user_id: uid, duplicate: false,
    version: row.version, storage: { r2Key: userKey },
  });
}

// The same fields r2d1's logs answer carries, named as it names them.
const COLUMNS = `user_id AS userId, memory_id AS memoryId, version, created_at AS createdAt, started_at AS startedAt,
  finished_at AS finishedAt, duration_s AS durationSeconds, title, overview, emoji, category, language, source, discarded,
  segments AS segmentCount, words AS wordCount, action_items AS t, action_items - action_done AS o, r2_key AS r2Key,
  content_sha256 AS sha256, bytes AS sizeBytes, received_ms AS receivedAt, created_ms AS c`;

async function logs(env, url) {
  const uid = url.searchParams.get("userId");
  const limit = Math.min(Math.max(parseInt(url.searchParams.get("limit") || "20", 10) || 20, 1), 100);
  const cursor = url.searchParams.get("cursor");
  const where = [];
  const args = [];
  if (uid) {
    args.push(uid);
    where.push(`user_id = ?${args.length}`);
  }
  // Like r2d1: discarded fragments are hidden unless asked for.
  if (url.searchParams.get("include_discarded") !== "true") where.push("discarded = 0");
  const countSql = `SELECT COUNT(*) AS total FROM memories${where.length ? " WHERE " + where.join(" AND ") : ""}`;
  const countArgs = [...args];
  if (cursor) {
    const [c, mid] = JSON.parse(atob(cursor));
    args.push(c, mid);
    where.push(`(created_ms, memory_id) < (?${args.length - 1}, ?${args.length})`);
  }
  args.push(limit + 1);
  const pageSql = `SELECT ${COLUMNS} FROM memories${where.length ? " WHERE " + where.join(" AND ") : ""} ORDER BY created_ms DESC, memory_id DESC LIMIT ?${args.length}`;
  const [page, count] = await env.DB.batch([env.DB.prepare(pageSql).bind(...args), env.DB.prepare(countSql).bind(...countArgs)]);
  const rows = page.results;
  let nextCursor = null;
  if (rows.length > limit) {
    rows.length = limit;
    const last = rows[limit - 1];
    nextCursor = btoa(JSON.stringify([last.c, last.memoryId]));
  }
  for (const r of rows) {
    r.discarded = r.discarded === 1;
    r.actionItems = { total: r.t, open: r.o };
    r.receivedAt = new Date(r.receivedAt).toISOString();
    delete r.c;
    delete r.t;
    delete r.o;
  }
  return json(200, { success: true, logs: rows, source: "r2", total: count.results[0].total, nextCursor });
}

async function stats(env, uid) {
  const [totals, cats] = await env.DB.batch([
    env.DB.prepare(
      `SELECT COUNT(*) AS total, COALESCE(SUM(discarded), 0) AS discarded, COALESCE(SUM(words), 0) AS words,
              COALESCE(SUM(segments), 0) AS segments, COALESCE(SUM(duration_s), 0) AS duration,
              COALESCE(SUM(action_items), 0) AS actionItems, COALESCE(SUM(action_done), 0) AS actionDone,
              COUNT(DISTINCT day) AS activeDays, MIN(created_at) AS first, MAX(created_at) AS last
       FROM memories WHERE user_id = ?1`,
    ).bind(uid),
    env.DB.prepare("SELECT category, COUNT(*) AS n FROM memories WHERE user_id = ?1 GROUP BY category ORDER BY n DESC, category").bind(uid),
  ]);
  const t = totals.results[0];
  if (!t.total) return json(404, { error: { code: "not_found", message: `no memories for user ${uid}` } });
  const categories = {};
  for (const r of cats.results) categories[r.category] = r.n;
  return json(200, {
    success: true,
    userId: uid,
    stats: {
      memories: t.total, discarded: t.discarded, totalDurationSeconds: t.duration,
      totalMinutes: Math.round(t.duration / 6) / 10, words: t.words, segments: t.segments, categories,
      actionItems: { total: t.actionItems, completed: t.actionDone }, activeDays: t.activeDays, first: t.first, last: t.last,
    },
  });
}

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` (start of day, or end of it for `to`) or milliseconds. */
function dayParam(v, endOfDay) {
  if (v === null) return null;
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(v) ? Date.parse(`${v}T00:00:00Z`) + (endOfDay ? DAY_MS : 0) : Number(v);
  return Number.isFinite(ms) ? ms : NaN;
}

// The same answer as r2d1's GET /api/omi/analytics/daily: one entry per day, gaps filled.
async function daily(env, url) {
  const uid = url.searchParams.get("userId");
  let to = dayParam(url.searchParams.get("to"), true);
  let from = dayParam(url.searchParams.get("from"), false);
  if (Number.isNaN(to) || Number.isNaN(from)) return json(400, { error: { code: "invalid_field", message: "from/to" } });
  to ??= (Math.floor(Date.now() / DAY_MS) + 1) * DAY_MS;
  from ??= to - 30 * DAY_MS;
  if (from >= to || to - from > 366 * DAY_MS) return json(400, { error: { code: "invalid_field", message: "from/to" } });
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const args = [day(from), day(to - 1)];
  if (uid) args.push(uid);
  const { results } = await env.DB.prepare(
    `SELECT day, COUNT(*) AS memories, SUM(duration_s) / 60.0 AS minutes, COUNT(DISTINCT user_id) AS mentors
     FROM memories WHERE day BETWEEN ?1 AND ?2${uid ? " AND user_id = ?3" : ""} GROUP BY day ORDER BY day`,
  )
    .bind(...args)
    .all();
  const byDay = new Map(results.map((r) => [r.day, r]));
  const days = [];
  let total = 0;
  for (let d = Math.floor(from / DAY_MS) * DAY_MS; d < to; d += DAY_MS) {
    const r = byDay.get(day(d));
    days.push({ date: day(d), memories: r ? r.memories : 0, minutes: r ? Math.round(r.minutes * 10) / 10 : 0, mentors: r ? r.mentors : 0 });
    total += r ? r.memories : 0;
  }
  const iso = (ms) => new Date(ms).toISOString();
  return json(200, { success: true, userId: uid, from: iso(from), to: iso(to), totalMemories: total, days });
}

async function health(env) {
  const r2 = await env.BUCKET.head("__peer_health_probe").then(() => true, () => false);
  const row = await env.DB.prepare("SELECT MAX(version) AS version FROM schema_version").first().catch(() => null);
  const ok = r2 && row !== null;
  return json(ok ? 200 : 503, { status: ok ? "ok" : "degraded", r2, d1: row !== null, schema_version: row?.version ?? null });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/api/omi/memory" && request.method === "POST") return ingest(request, env, url);
    if (path === "/api/health") return health(env);
    if (request.headers.get("authorization") !== `Bearer ${env.API_TOKEN}`) return json(401, { error: { code: "unauthorized", message: "invalid API token" } });
    if (path.startsWith("/api/apps/")) return appFiles(request, env, path.slice("/api/apps/".length).split("/"));
    if (path === "/api/omi/logs" && request.method === "GET") return logs(env, url);
    if (path === "/api/omi/analytics/daily" && request.method === "GET") return daily(env, url);
    const m = path.match(/^\/api\/omi\/users\/([^/]+)\/stats$/);
    if (m && request.method === "GET") return stats(env, decodeURIComponent(m[1]));
    return json(404, { error: { code: "not_found", message: "no route" } });
  },
};
