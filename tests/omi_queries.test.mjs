// The read side: logs (pagination, search, filters), one memory, mentors, stats, analytics,
// export, plus transcripts, day summaries, setup, import, reindex, deletion and the cron job.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, listKeys, ok as json } from "./helpers/worker.mjs";
import { createKey, withKey } from "./helpers/access.mjs";
import { fixture, makeMemory, postMemory, dbCount, sha256, assertTotalsExact } from "./helpers/omi.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(async () => {
  // Everything above inserted, re-versioned, reindexed and deleted memories: the running
  // totals the triggers keep must still add up exactly.
  await assertTotalsExact(w);
  await w?.dispose();
});

const DAY = 86_400_000;

async function postAll(uid, memories, concurrency = 8) {
  const queue = [...memories];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (queue.length) {
        const m = queue.shift();
        const res = await postMemory(w, uid, m);
        assert.equal(res.status, 200, await res.text());
      }
    }),
  );
}

test("every read route refuses a missing or wrong API token", async () => {
  const routes = [
    "/api/omi/logs", "/api/omi/logs/u/m", "/api/omi/logs/u/m/versions", "/api/omi/users", "/api/omi/users/u/stats",
    "/api/omi/analytics/daily", "/api/omi/export", "/api/omi/transcripts/u", "/api/omi/transcripts/u/s",
    "/api/omi/day-summaries/u/2025-01-01",
  ];
  for (const r of routes) {
    await expectError(await w.fetch(r), 401, "unauthorized");
    await expectError(await w.fetch(r, { headers: { authorization: "Bearer nope" } }), 401, "unauthorized");
  }
  for (const r of ["/api/omi/import", "/api/omi/reindex", "/api/omi/reconcile"]) {
    await expectError(await w.fetch(r, { method: "POST", body: "{}" }), 401, "unauthorized");
  }
  await expectError(await w.fetch("/api/omi/users/u", { method: "DELETE" }), 401, "unauthorized");
});

test("pagination over 250 memories is newest first with no gaps or repeats while new ones arrive", async () => {
  const base = Date.UTC(2025, 2, 1);
  const memories = Array.from({ length: 250 }, (_, i) =>
    makeMemory({ id: `page-${i}`, created_at: new Date(base + i * 60_000).toISOString() }),
  );
  await postAll("pager", memories);
  const seen = [];
  let cursor = null;
  let page = 0;
  do {
    const q = new URLSearchParams({ userId: "pager", limit: "37" });
    if (cursor) q.set("cursor", cursor);
    const body = await json(await w.api(`/api/omi/logs?${q}`));
    assert.equal(body.success, true);
    assert.equal(body.source, "r2");
    if (page === 0) assert.equal(body.total, 250);
    seen.push(...body.logs.map((l) => l.memoryId));
    cursor = body.nextCursor;
    // arrivals between pages: newer (go before the cursor) and one in the past
    if (page === 1) {
      await postAll("pager", [makeMemory({ id: "late-new", created_at: new Date(base + 10 * DAY).toISOString() })]);
    }
    page += 1;
  } while (cursor);
  const expected = memories.map((m) => m.id).reverse();
  assert.equal(seen.length, 250, "no gaps, no repeats");
  assert.deepEqual(seen, expected);
  assert.equal(new Set(seen).size, 250);
});

test("logs without userId cover all mentors; limit bounds and forged cursors are rejected", async () => {
  await postAll("other-mentor", [makeMemory({ id: "other-1", created_at: "2030-01-01T00:00:00Z" })]);
  const body = await json(await w.api("/api/omi/logs?limit=1"));
  assert.equal(body.logs[0].memoryId, "other-1");
  assert.equal(body.logs[0].userId, "other-mentor");
  assert.ok(body.total >= 252);
  assert.ok(body.nextCursor);
  await expectError(await w.api("/api/omi/logs?limit=0"), 400, "invalid_field");
  await expectError(await w.api("/api/omi/logs?limit=101"), 400, "invalid_field");
  await expectError(await w.api("/api/omi/logs?limit=1e9"), 400, "invalid_field");
  await expectError(await w.api("/api/omi/logs?cursor=abc"), 400, "invalid_cursor");
  await expectError(await w.api("/api/omi/logs?cursor=" + Buffer.from("v1:1:1 OR 1=1").toString("base64url")), 400, "invalid_cursor");
  await expectError(await w.api("/api/omi/logs?userId=x'%20OR%201=1--"), 400, "invalid_field");
});

test("full-text search, filters and full=1", async () => {
  const uid = "searcher";
  await postAll(uid, [
    makeMemory({ id: "s1", title: "Fundraising strategy", category: "entrepreneurship", created_at: "2025-05-01T10:00:00Z" }),
    makeMemory({ id: "s2", title: "Weekly sync", text: "the fundraising deck needs numbers", created_at: "2025-05-02T10:00:00Z" }),
    makeMemory({ id: "s3", title: "Gym plans", category: "health", created_at: "2025-05-03T10:00:00Z" }),
    makeMemory({ id: "s4", title: "Fundraising fragment", discarded: true, created_at: "2025-05-04T10:00:00Z" }),
  ]);
  const ids = async (qs) => (await json(await w.api(`/api/omi/logs?userId=${uid}&${qs}`))).logs.map((l) => l.memoryId);
  assert.deepEqual(await ids("q=fundraising"), ["s2", "s1"]);
  assert.deepEqual(await ids("q=fundrais"), ["s2", "s1"], "prefix match");
  assert.deepEqual(await ids("q=fundraising&include_discarded=1"), ["s4", "s2", "s1"]);
  assert.deepEqual(await ids("q=deck%20numbers"), ["s2"], "transcript text is searchable");
  assert.deepEqual(await ids('q=%22%20OR%20*'), [], "FTS syntax is plain text");
  assert.deepEqual(await ids("category=health"), ["s3"]);
  assert.deepEqual(await ids("from=2025-05-02&to=2025-05-02"), ["s2"]);
  assert.deepEqual(await ids("from=2025-05-02T00:00:00Z"), ["s3", "s2"]);
  await expectError(await w.api("/api/omi/logs?category=romance"), 400, "invalid_field");
  await expectError(await w.api("/api/omi/logs?from=2025-06-01&to=2025-05-01"), 400, "invalid_field");
  const full = await json(await w.api(`/api/omi/logs?userId=${uid}&full=1&limit=2`));
  assert.equal(full.logs[0].memory.id, "s3");
  assert.equal(full.logs[0].memory.structured.title, "Gym plans");
  const entry = full.logs[1];
  assert.equal(entry.title, "Weekly sync");
  assert.deepEqual(entry.actionItems, { total: 2, open: 1 });
  assert.equal(entry.durationSeconds, 120);
  assert.equal(entry.createdAt, "2025-05-02T10:00:00.000Z");
});

test("sort=relevance ranks by bm25 within the filters, pages without gaps or repeats, and keeps a mentor key to its mentor", async () => {
  const uid = "ranker";
  const base = Date.UTC(2025, 6, 1);
  // The best match is the oldest: newest first puts it last, relevance first.
  const best = makeMemory({
    id: "rank-best", title: "Negotiation masterclass", overview: "Negotiation tactics and negotiation practice",
    text: "negotiation, negotiation", created_at: new Date(base).toISOString(),
  });
  const passing = Array.from({ length: 45 }, (_, i) =>
    makeMemory({ id: `rank-${i}`, title: "Weekly sync", text: "we briefly mentioned negotiation before lunch", created_at: new Date(base + (i + 1) * 60_000).toISOString() }),
  );
  await postAll(uid, [best, ...passing, makeMemory({ id: "rank-none", title: "Gym plans", created_at: new Date(base + DAY).toISOString() })]);
  await postAll("ranker-other", [makeMemory({ id: "rank-other", title: "Negotiation negotiation", overview: "negotiation", created_at: new Date(base).toISOString() })]);

  const page = async (qs, api = w.api.bind(w)) => json(await api(`/api/omi/logs?${qs}`));
  const newest = await page(`userId=${uid}&q=negotiation&limit=100`);
  assert.equal(newest.logs[0].memoryId, "rank-44");
  assert.equal(newest.logs.at(-1).memoryId, "rank-best");
  const ranked = await page(`userId=${uid}&q=negotiation&sort=relevance&limit=100`);
  assert.equal(ranked.total, 46);
  assert.equal(ranked.nextCursor, null);
  assert.equal(ranked.logs[0].memoryId, "rank-best", "the better match ranks first");
  assert.deepEqual(new Set(ranked.logs.map((l) => l.memoryId)), new Set(newest.logs.map((l) => l.memoryId)), "the same matches");
  assert.equal((await page("sort=newest&q=negotiation&userId=ranker&limit=1")).logs[0].memoryId, "rank-44");

  // Pages of 7 give the one-page ranking exactly: no gaps, no repeats.
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const q = new URLSearchParams({ userId: uid, q: "negotiation", sort: "relevance", limit: "7" });
    if (cursor) q.set("cursor", cursor);
    const body = await page(q);
    assert.equal(body.total, 46);
    seen.push(...body.logs.map((l) => l.memoryId));
    cursor = body.nextCursor;
    pages += 1;
  } while (cursor && pages < 20);
  assert.equal(pages, 7);
  assert.deepEqual(seen, ranked.logs.map((l) => l.memoryId));

  // A key for one mentor ranks only that mentor's memories, with or without userId.
  const { secret } = await createKey(w, [`omi:read:${uid}`]);
  const narrow = await page("q=negotiation&sort=relevance&limit=100", withKey(w, secret));
  assert.equal(narrow.total, 46);
  assert.ok(narrow.logs.every((l) => l.userId === uid));
  assert.equal(narrow.logs[0].memoryId, "rank-best");
  await expectError(await withKey(w, secret)("/api/omi/logs?userId=ranker-other&q=negotiation&sort=relevance"), 403, "forbidden");
  const all = await page("q=negotiation&sort=relevance&limit=2");
  assert.deepEqual(new Set(all.logs.map((l) => l.memoryId)), new Set(["rank-best", "rank-other"]));

  // Refusals: an unknown order, relevance without words, cursors forged or of the other order.
  await expectError(await w.api("/api/omi/logs?q=negotiation&sort=oldest"), 400, "invalid_field");
  await expectError(await w.api("/api/omi/logs?sort=relevance"), 400, "invalid_field");
  await expectError(await w.api(`/api/omi/logs?q=negotiation&sort=relevance&cursor=${(await page("limit=1")).nextCursor}`), 400, "invalid_cursor");
  for (const forged of ["r1:1:500", "r1:1:0", "r1:-1:7", "r1:1:7 OR 1=1", "v1:1:1"]) {
    await expectError(await w.api(`/api/omi/logs?q=negotiation&sort=relevance&cursor=${Buffer.from(forged).toString("base64url")}`), 400, "invalid_cursor");
  }
  await expectError(await w.api(`/api/omi/logs?cursor=${Buffer.from("r1:1:7").toString("base64url")}`), 400, "invalid_cursor");
  await expectError(await w.api("/api/omi/export?q=negotiation&sort=relevance"), 400, "invalid_field");
});

test("one memory: raw bytes with ETag and 304; unknown ids 404", async () => {
  const raw = fixture("memory_created.docs.json");
  await postMemory(w, "etag-user", raw);
  const res = await w.api("/api/omi/logs/etag-user/memory_abc123");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), raw);
  const etag = res.headers.get("etag");
  assert.equal(etag, `"${sha256(raw)}"`);
  const again = await w.api("/api/omi/logs/etag-user/memory_abc123", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  await expectError(await w.api("/api/omi/logs/etag-user/nope"), 404, "not_found");
  await expectError(await w.api("/api/omi/logs/etag-user/memory_abc123?version=9"), 404, "not_found");
  await expectError(await w.api("/api/omi/logs/etag-user/memory_abc123?version=0"), 400, "invalid_field");
});

test("a corrupted object is never served", async () => {
  const m = makeMemory({ id: "corrupt-me" });
  const { storage } = await (await postMemory(w, "corrupt-user", m)).json();
  await w.bucket.put(storage.r2Key, JSON.stringify({ ...m, id: "tampered" }));
  await expectError(await w.api("/api/omi/logs/corrupt-user/corrupt-me"), 500, "integrity_error");
});

test("re-versioning a memory (discarded, duration and day changed) moves it between the totals", async () => {
  const uid = "totals-user";
  const m = makeMemory({ id: "t1", created_at: "2025-03-01T10:00:00Z", durationSeconds: 60 });
  await postAll(uid, [m, makeMemory({ id: "t2", created_at: "2025-03-02T10:00:00Z" })]);
  await postAll(uid, [{ ...m, created_at: "2025-03-05T10:00:00Z", discarded: true, finished_at: "2025-03-01T10:05:00Z" }]);
  const daily = await json(await w.api(`/api/omi/analytics/daily?userId=${uid}&from=2025-03-01&to=2025-03-05`));
  assert.deepEqual(daily.days.map((d) => d.memories), [0, 1, 0, 0, 1]);
  const logs = await json(await w.api(`/api/omi/logs?userId=${uid}`));
  assert.equal(logs.total, 1, "the discarded version no longer counts");
  assert.equal((await json(await w.api(`/api/omi/logs?userId=${uid}&include_discarded=1`))).total, 2);
  await assertTotalsExact(w);
});

test("mentors, stats and daily analytics come from the index", async () => {
  const uid = "stats-user";
  await postAll(uid, [
    makeMemory({ id: "a", category: "work", durationSeconds: 600, created_at: "2025-04-01T09:00:00Z" }),
    makeMemory({ id: "b", category: "work", durationSeconds: 300, created_at: "2025-04-01T15:00:00Z" }),
    makeMemory({ id: "c", category: "health", durationSeconds: 60, created_at: "2025-04-03T09:00:00Z",
      action_items: [{ description: "x", completed: true }] }),
  ]);
  const users = await json(await w.api("/api/omi/users"));
  const me = users.users.find((u) => u.userId === uid);
  assert.equal(me.memories, 3);
  assert.equal(me.minutes, 16);
  assert.equal(me.firstSeen, "2025-04-01T09:00:00.000Z");
  assert.equal(me.lastSeen, "2025-04-03T09:00:00.000Z");

  const { stats } = await json(await w.api(`/api/omi/users/${uid}/stats`));
  assert.equal(stats.memories, 3);
  assert.equal(stats.totalDurationSeconds, 960);
  assert.deepEqual(stats.categories, { work: 2, health: 1 });
  assert.deepEqual(stats.actionItems, { total: 5, completed: 3 });
  assert.equal(stats.activeDays, 2);
  assert.equal(stats.words, 3 * 16);
  assert.equal(stats.segments, 6);
  await expectError(await w.api("/api/omi/users/nobody/stats"), 404, "not_found");

  const daily = await json(await w.api(`/api/omi/analytics/daily?userId=${uid}&from=2025-04-01&to=2025-04-03`));
  assert.deepEqual(daily.days.map((d) => [d.date, d.memories, d.minutes]), [
    ["2025-04-01", 2, 15],
    ["2025-04-02", 0, 0],
    ["2025-04-03", 1, 1],
  ]);
  assert.equal(daily.totalMemories, 3);
  await expectError(await w.api("/api/omi/analytics/daily?from=2020-01-01&to=2025-01-01"), 400, "invalid_field");
});

test("export streams every matching memory as CSV, NDJSON and JSON", async () => {
  const uid = "exporter";
  const memories = Array.from({ length: 450 }, (_, i) =>
    makeMemory({ id: `x${i}`, title: i === 7 ? 'Quote "this", and\na newline' : `Title ${i}`, created_at: new Date(Date.UTC(2025, 6, 1) + i * 1000).toISOString() }),
  );
  await postAll(uid, memories);
  const nd = await w.api(`/api/omi/export?userId=${uid}&format=ndjson`);
  assert.equal(nd.status, 200);
  assert.match(nd.headers.get("content-type"), /ndjson/);
  const lines = (await nd.text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.length, 450);
  assert.equal(new Set(lines.map((l) => l.memoryId)).size, 450);

  const js = await (await w.api(`/api/omi/export?userId=${uid}&format=json`)).json();
  assert.equal(js.length, 450);

  const csv = await (await w.api(`/api/omi/export?userId=${uid}&format=csv&from=2025-07-01&to=2025-07-01`)).text();
  const records = parseCsv(csv);
  assert.equal(records[0][0], "user_id");
  assert.equal(records.length, 451);
  const quoted = records.find((r) => r[1] === "x7");
  assert.equal(quoted[7], 'Quote "this", and\na newline');
  await expectError(await w.api("/api/omi/export?format=xml"), 400, "invalid_field");
});

/** A small RFC 4180 parser for the round trip. */
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
    else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

test("real-time transcripts in both shapes append per session and read back as one", async () => {
  const bare = fixture("realtime_transcript.docs.json");
  const r1 = await w.fetch(`/api/omi/transcript?uid=live-user&session_id=sess-1&token=${(await import("./helpers/worker.mjs")).WEBHOOK_TOKEN}`, { method: "POST", body: bare });
  assert.equal(r1.status, 200, await r1.clone().text());
  const second = JSON.stringify({ session_id: "sess-1", segments: [{ text: "Then Android.", speaker: "SPEAKER_00", start: 19, end: 20 }] });
  const r2 = await postMemory(w, "live-user", second, { path: "/api/omi/webhook" });
  assert.equal(r2.status, 200);
  const dup = await (await postMemory(w, "live-user", second, { path: "/api/omi/webhook" })).json();
  assert.equal(dup.duplicate, true);
  const t = await json(await w.api("/api/omi/transcripts/live-user/sess-1"));
  assert.equal(t.batches, 2);
  assert.deepEqual(t.segments.map((s) => s.text), ["I think we should prioritize the mobile app.", "Agreed, let's start with iOS.", "Then Android."]);
  assert.match(t.text, /SPEAKER_01: Agreed/);
  const sessions = await json(await w.api("/api/omi/transcripts/live-user"));
  assert.equal(sessions.sessions[0].segments, 3);
  await expectError(await postMemory(w, "live-user", '{"session_id":"s"}', { path: "/api/omi/transcript" }), 400, "missing_field");
});

test("day summaries keep summary_json; setup check answers for known and unknown mentors", async () => {
  const raw = fixture("day_summary.docs.json");
  const res = await json(await postMemory(w, "user123", raw, { path: "/api/omi/day-summary" }));
  assert.equal(res.date, "2024-01-15");
  const stored = await json(await w.api("/api/omi/day-summaries/user123/2024-01-15"));
  assert.equal(stored.summary_json.headline, "Productive day with three focused work sessions");
  // optional fields never refuse a summary (older senders, issue 12); a body that is not an object does
  const today = new Date().toISOString().slice(0, 10);
  assert.equal((await json(await postMemory(w, "user123", '{"summary":"x"}', { path: "/api/omi/day-summary" }))).date, today);
  await expectError(await postMemory(w, "user123", "[1]", { path: "/api/omi/day-summary" }), 400, "invalid_json");
  assert.deepEqual(await json(await w.fetch("/api/omi/setup?uid=user123")), { is_setup_completed: true });
  assert.deepEqual(await json(await w.fetch("/api/omi/setup?uid=never-seen")), { is_setup_completed: false });
  await expectError(await w.fetch("/api/omi/setup"), 400, "missing_field");
});

test("import of legacy records (wrappers and bare memories) is idempotent", async () => {
  const a = makeMemory({ id: "legacy-a" });
  const b = makeMemory({ id: "legacy-b" });
  const ndjson = [
    JSON.stringify({ memory: a, processed: { wordCount: 3 }, analytics: {}, webhook_received_at: "2024-03-05T06:07:08Z", uid: "legacy-user" }),
    JSON.stringify({ memory: a, processed: {}, webhook_received_at: "2024-03-05T06:09:00Z", uid: "legacy-user" }), // the old app's re-send
    JSON.stringify({ ...b, uid: "legacy-user" }),
    "{broken",
    JSON.stringify({ id: "no-uid", created_at: "2024-01-01T00:00:00Z" }),
  ].join("\n");
  const first = await json(await w.api("/api/omi/import", { method: "POST", body: ndjson }));
  assert.equal(first.imported, 2);
  assert.equal(first.duplicates, 1);
  assert.deepEqual(first.errors.map((e) => [e.line, e.code]), [[4, "invalid_json"], [5, "missing_field"]]);
  const keys = await listKeys(w.bucket, "mobil3-mentorships/by-user/legacy-user/");
  assert.equal(keys.length, 2);
  assert.ok(keys.some((k) => k.startsWith("mobil3-mentorships/by-user/legacy-user/2024/03/legacy-a-1709618828000")));
  const second = await json(await w.api("/api/omi/import", { method: "POST", body: ndjson }));
  assert.equal(second.imported, 0);
  assert.equal(second.duplicates, 3);
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/legacy-user/")).length, 2);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'legacy-user'"), 2);
});

test("reindex rebuilds a lost index from the bucket, leaves the old app's objects to the legacy migration, and is idempotent", async () => {
  const uid = "reindex-user";
  const m1 = makeMemory({ id: "r1", title: "Rebuilt one" });
  await postAll(uid, [m1, makeMemory({ id: "r2" })]);
  // an object written by the old app: wrapper body, by-user key, no index row
  const legacy = makeMemory({ id: "old-app-9", title: "From the old app" });
  await w.bucket.put(`mobil3-mentorships/by-user/${uid}/2024/02/old-app-9-1706745600000.json`,
    JSON.stringify({ memory: legacy, processed: {}, webhook_received_at: "2024-02-01T00:00:00Z" }));
  // and the old app's duplicate of it
  await w.bucket.put(`mobil3-mentorships/by-user/${uid}/2024/02/old-app-9-1706745600001.json`,
    JSON.stringify({ memory: legacy, processed: {}, webhook_received_at: "2024-02-01T00:00:00Z" }));
  // lose the index for this mentor
  await w.db.batch([
    w.db.prepare("DELETE FROM omi_memories_fts WHERE rowid IN (SELECT seq FROM omi_memories WHERE user_id = ?)").bind(uid),
    w.db.prepare("DELETE FROM omi_memories WHERE user_id = ?").bind(uid),
    w.db.prepare("DELETE FROM omi_memory_versions WHERE user_id = ?").bind(uid),
  ]);
  const run = async () => {
    const totals = { indexed: 0, legacy: 0 };
    let cursor = "";
    do {
      const r = await json(await w.api(`/api/omi/reindex?limit=50&grace_seconds=0${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { method: "POST" }));
      totals.indexed += r.indexed;
      totals.legacy += r.legacy;
      cursor = r.nextCursor;
    } while (cursor);
    return totals;
  };
  const first = await run();
  assert.deepEqual(first, { indexed: 2, legacy: 2 });
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid), 2);
  const found = await json(await w.api(`/api/omi/logs?userId=${uid}&q=rebuilt`));
  assert.deepEqual(found.logs.map((l) => l.memoryId), ["r1"]);
  // the legacy migration attributes the old app's copies and stores the memory once
  let cursor = "";
  do {
    const r = await json(await w.api(`/api/omi/legacy/migrate?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { method: "POST" }));
    cursor = r.nextCursor;
  } while (cursor);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_versions WHERE user_id = ? AND memory_id = 'old-app-9'", uid), 1);
  const second = await run();
  assert.deepEqual(second, { indexed: 0, legacy: 0 });
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid), 3);
});

test("deleting a mentor removes every object and row", async () => {
  const uid = "leaver";
  await postAll(uid, [makeMemory({ id: "l1" }), makeMemory({ id: "l2" })]);
  await postMemory(w, uid, { ...makeMemory({ id: "l1" }), discarded: true }); // a second version
  await postMemory(w, uid, fixture("realtime_transcript.docs.json"), { path: "/api/omi/transcript" });
  await postMemory(w, uid, fixture("day_summary.docs.json"), { path: "/api/omi/day-summary" });
  const res = await json(await w.api(`/api/omi/users/${uid}`, { method: "DELETE" }));
  assert.equal(res.deletedMemories, 2);
  assert.equal(res.deletedObjects, 3 * 2 + 1 + 1);
  const everything = await listKeys(w.bucket, "mobil3-mentorships/");
  assert.deepEqual(everything.filter((k) => k.includes(`/${uid}/`) || k.includes(`/${uid}-`)), []);
  for (const table of ["omi_memories", "omi_memory_versions", "omi_transcript_batches", "omi_day_summaries"]) {
    assert.equal(await dbCount(w, `SELECT COUNT(*) FROM ${table} WHERE user_id = ?`, uid), 0, table);
  }
  assert.deepEqual((await json(await w.api(`/api/omi/logs?userId=${uid}&q=mentorship`))).logs, []);
  await expectError(await w.api(`/api/omi/users/${uid}`, { method: "DELETE" }), 404, "not_found");
});

test("the cron job writes rollups, applies retention and reconciles", async () => {
  const cron = await startWorker({ bindings: { RETENTION_DAYS: "30" } });
  try {
    const now = Date.now();
    const yesterday = new Date(now - DAY).toISOString();
    const post = (uid, m) => postMemory(cron, uid, m);
    assert.equal((await post("cron-a", makeMemory({ id: "y1", created_at: yesterday, durationSeconds: 90 }))).status, 200);
    assert.equal((await post("cron-b", makeMemory({ id: "y2", created_at: yesterday }))).status, 200);
    assert.equal((await post("cron-a", makeMemory({ id: "ancient", created_at: new Date(now - 90 * DAY).toISOString() }))).status, 200);
    const worker = await cron.mf.getWorker();
    await worker.scheduled({ cron: "17 3 * * *", scheduledTime: new Date(now) });
    const date = new Date(now - DAY).toISOString().slice(0, 10);
    const summary = await cron.bucket.get(`mobil3-mentorships/analytics/daily-summaries/${date}.json`);
    assert.ok(summary, "daily summary written");
    const doc = JSON.parse(await summary.text());
    assert.equal(doc.totals.memories, 2);
    assert.equal(doc.totals.mentors, 2);
    const statsA = JSON.parse(await (await cron.bucket.get("mobil3-mentorships/analytics/user-stats/cron-a.json")).text());
    assert.equal(statsA.userId, "cron-a");
    // retention removed the 90-day-old memory, rows and objects
    assert.equal(await dbCount(cron, "SELECT COUNT(*) FROM omi_memories WHERE memory_id = 'ancient'"), 0);
    assert.equal((await listKeys(cron.bucket, "mobil3-mentorships/")).filter((k) => k.includes("ancient")).length, 0);
    assert.equal(await dbCount(cron, "SELECT COUNT(*) FROM omi_memories"), 2);
    await assertTotalsExact(cron);
  } finally {
    await cron.dispose();
  }
});
