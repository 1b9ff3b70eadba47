// Baseline 1: the seed's storage design (the Next.js app r2d1 replaces), as a Worker, faithfully.
//
// - Ingest writes two timestamped copies of a wrapper {memory, processed, analytics,
//   webhook_received_at, processing_time_ms}: `by-user/{uid}/{YYYY}/{MM}/{id}-{ms}.json` and
//   `all/{YYYY-MM-DD}/{uid}-{id}-{ms}.json` (YYYY/MM of the received time). No index, no
//   deduplication: a re-sent memory is stored again under a new timestamp.
// - "logs" lists the user's prefix with `limit` and GETs every object listed (R2 lists in key
//   order, so these are not the newest).
// - "stats" reads up to 1,000 objects (one R2 list page) and aggregates them in JS.
//
// Where the seed left a choice open we took the faster one (the two copies and the GETs run in
// parallel), so its figures are a best case for the design.
const ROOT = "mobil3-mentorships";

function json(status, value) {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

/** The seed sanitised uids to lowercase [a-z0-9_-], at most 50 characters. */
function sanitiseUid(uid) {
  return String(uid || "").toLowerCase().replace(/[^a-z0-9_-]/g, "").slice(0, 50);
}

function process(memory) {
  const segments = Array.isArray(memory.transcript_segments) ? memory.transcript_segments : [];
  const s = memory.structured || {};
  let words = 0;
  for (const seg of segments) words += String(seg.text || "").split(/\s+/).filter(Boolean).length;
  const started = Date.parse(memory.started_at);
  const finished = Date.parse(memory.finished_at);
  return {
    processed: {
      title: s.title || "Untitled",
      overview: s.overview || "",
      category: s.category || "other",
      emoji: s.emoji || "",
      action_items: Array.isArray(s.action_items) ? s.action_items : [],
    },
    analytics: {
      segment_count: segments.length,
      word_count: words,
      duration_seconds: Number.isFinite(started) && Number.isFinite(finished) ? (finished - started) / 1000 : 0,
      action_item_count: Array.isArray(s.action_items) ? s.action_items.length : 0,
      speakers: new Set(segments.map((x) => x.speaker)).size,
    },
  };
}

async function ingest(request, env, url) {
  const t0 = Date.now();
  if (url.searchParams.get("token") !== env.OMI_WEBHOOK_TOKEN) return json(401, { error: "unauthorized" });
  const uid = sanitiseUid(url.searchParams.get("uid"));
  if (!uid) return json(400, { error: "uid is required" });
  let memory;
  try {
    memory = await request.json();
  } catch {
    return json(400, { error: "invalid JSON" });
  }
  if (!memory || typeof memory.id !== "string") return json(400, { error: "memory id is required" });
  const now = new Date();
  const ms = now.getTime();
  const iso = now.toISOString();
  const yyyy = iso.slice(0, 4);
  const mm = iso.slice(5, 7);
  const day = iso.slice(0, 10);
  const { processed, analytics } = process(memory);
  const wrapper = JSON.stringify({
    memory,
    processed,
    analytics,
    webhook_received_at: iso,
    processing_time_ms: Date.now() - t0,
  });
  const userKey = `${ROOT}/by-user/${uid}/${yyyy}/${mm}/${memory.id}-${ms}.json`;
  const allKey = `${ROOT}/all/${day}/${uid}-${memory.id}-${ms}.json`;
  const meta = { httpMetadata: { contentType: "application/json" } };
  await Promise.all([env.BUCKET.put(userKey, wrapper, meta), env.BUCKET.put(allKey, wrapper, meta)]);
  return json(200, { success: true, message: "Memory stored in R2", memory_id: memory.id, user_id: uid, storage: { r2Key: userKey } });
}

async function readAll(env, objects) {
  const bodies = await Promise.all(objects.map((o) => env.BUCKET.get(o.key).then((b) => (b ? b.json() : null))));
  return bodies.filter(Boolean);
}

async function logs(env, url) {
  const uid = sanitiseUid(url.searchParams.get("userId"));
  const limit = Math.min(Math.max(parseInt(url.searchParams.get("limit") || "50", 10) || 50, 1), 1000);
  const prefix = uid ? `${ROOT}/by-user/${uid}/` : `${ROOT}/by-user/`;
  const listed = await env.BUCKET.list({ prefix, limit });
  const logs = await readAll(env, listed.objects);
  return json(200, { success: true, logs, total: logs.length });
}

async function stats(env, uid) {
  uid = sanitiseUid(uid);
  const listed = await env.BUCKET.list({ prefix: `${ROOT}/by-user/${uid}/`, limit: 1000 });
  const records = await readAll(env, listed.objects);
  const categories = {};
  let words = 0;
  let duration = 0;
  let actionItems = 0;
  let discarded = 0;
  let first = null;
  let last = null;
  for (const r of records) {
    const c = r.processed?.category || "other";
    categories[c] = (categories[c] || 0) + 1;
    words += r.analytics?.word_count || 0;
    duration += r.analytics?.duration_seconds || 0;
    actionItems += r.analytics?.action_item_count || 0;
    if (r.memory?.discarded) discarded++;
    const at = r.memory?.created_at;
    if (at && (!first || at < first)) first = at;
    if (at && (!last || at > last)) last = at;
  }
  return json(200, {
    success: true,
    user_id: uid,
    stats: {
      total_memories: records.length,
      discarded,
      total_words: words,
      total_duration_seconds: duration,
      action_items: actionItems,
      categories,
      first_memory_at: first,
      last_memory_at: last,
    },
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/api/health") return json(200, { status: "ok" });
    if (path === "/api/omi/memory" && request.method === "POST") return ingest(request, env, url);
    if (request.headers.get("authorization") !== `Bearer ${env.API_TOKEN}`) return json(401, { error: "unauthorized" });
    if (path === "/api/omi/logs" && request.method === "GET") return logs(env, url);
    const m = path.match(/^\/api\/omi\/users\/([^/]+)\/stats$/);
    if (m && request.method === "GET") return stats(env, decodeURIComponent(m[1]));
    return json(404, { error: "not found" });
  },
};
