// The programme's view (issue 14) through workerd: analytics against hand-computed values on
// the fixed English and Spanish mentors, real-time transcripts linked to their memories,
// searchable and paged, exports with content, a mentor's archive, the directory, the Mentors
// page's activity, the omi.analytics job, and mentor deletion and retention reaching all of it.
//
// The worker runs with SUBREQUEST_BUDGET=12, so every read bounded by the budget has to page:
// a transcript page reads at most 7 batches, an export with content 8 memories, an archive
// part 8 objects.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, listKeys, ok, sha256, at, WEBHOOK_TOKEN } from "./helpers/worker.mjs";
import { makeMemory, postMemory, dbCount, assertTotalsExact } from "./helpers/omi.mjs";
import { ENGLISH, SPANISH, ingestFixture, readTar } from "./helpers/programme.mjs";

let w;
before(async () => {
  // The pages are sized by SUBREQUEST_BUDGET=12; the operations each request may make are a
  // paid plan's (a memory delivery alone counts more than 12 D1 statements and R2 calls).
  w = await startWorker({ bindings: { SUBREQUEST_BUDGET: "12", RETENTION_DAYS: "30" }, enforcedBudget: 1000 });
  await ingestFixture(w, ENGLISH);
  await ingestFixture(w, SPANISH);
});
after(async () => {
  await assertTotalsExact(w);
  await w?.dispose();
});

const MIN = 60_000;
const iso = (ms) => new Date(ms).toISOString();
const words = (list, n = list.length) => list.slice(0, n).map((w) => [w.word, w.count]);
const speakers = (a) => a.speakers.map((s) => [s.speaker, s.name, s.isUser, s.segments, s.talkSeconds, s.words]);
const counters = (res) => Object.fromEntries((res.headers.get("x-r2d1-counters") || "").split(" ").map((kv) => kv.split("=")));

/** A real-time batch delivered at `now` (the request clock), in session `session` or, without one, the uid's. */
function postBatch(uid, now, segments, session) {
  const body = session ? { session_id: session, segments } : segments;
  return w.fetch(`/api/omi/transcript?uid=${uid}&token=${WEBHOOK_TOKEN}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...at(now) },
  });
}

test("a memory's analytics are stored at ingest and match the hand-counted English figures", async () => {
  const body = await ok(await w.api(`/api/omi/logs/${ENGLISH.uid}/en-pitch-review/analytics`));
  assert.equal(body.current, true);
  assert.equal(body.analyticsVersion, 1);
  const a = body.analytics;
  // 11 + 12 + 16 + 9 + 6 words; 42 distinct; 20 English stop words; 34 content words, 27 distinct.
  assert.deepEqual([a.words, a.uniqueWords, a.englishStopWords, a.spanishStopWords, a.language], [54, 42, 20, 0, "en"]);
  assert.deepEqual([a.contentWords, a.uniqueContentWords], [34, 27]);
  assert.deepEqual(words(a.topWords, 7), [["pricing", 4], ["customer", 2], ["data", 2], ["deck", 2], ["pitch", 2], ["ana", 1], ["ask", 1]]);
  assert.equal(a.topWords.length, 25);
  assert.deepEqual(speakers(a), [
    ["SPEAKER_00", null, true, 2, 25, 27],
    ["SPEAKER_01", "Ana", false, 2, 22.5, 18],
    ["SPEAKER_02", "Luis", false, 1, 8, 9],
  ]);
  assert.deepEqual([a.talkSeconds, a.mentorTalkSeconds, a.menteeTalkSeconds, a.mentorTalkShare], [55.5, 25, 30.5, 0.4505]);
  assert.deepEqual(a.topics, ["business", "pitch", "deck", "review", "ana", "compare"]);
  // The index row carries the same word count (one count for the whole API) and the columns.
  const row = await w.db.prepare("SELECT word_count, unique_words, talk_seconds, analytics_language, week FROM omi_memories WHERE memory_id = 'en-pitch-review'").first();
  assert.deepEqual(row, { word_count: 54, unique_words: 42, talk_seconds: 55.5, analytics_language: "en", week: Date.UTC(2025, 0, 13) / 86_400_000 });
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_words w JOIN omi_memories m ON m.seq = w.seq WHERE m.memory_id = 'en-pitch-review'"), 25);
  const log = await ok(await w.api(`/api/omi/logs?userId=${ENGLISH.uid}&q=pitch`));
  assert.equal(log.logs.find((l) => l.memoryId === "en-pitch-review").wordCount, 54);
});

test("Spanish memories: stop words, accents (decomposed too), speakers", async () => {
  const a = (await ok(await w.api(`/api/omi/logs/${SPANISH.uid}/es-prototipo/analytics`))).analytics;
  assert.deepEqual([a.words, a.uniqueWords, a.spanishStopWords, a.englishStopWords, a.language], [39, 32, 21, 0, "es"]);
  assert.deepEqual(words(a.topWords, 4), [["diseño", 2], ["prototipo", 2], ["usuarios", 2], ["aplicación", 1]]);
  assert.deepEqual(speakers(a), [
    ["SPEAKER_00", null, true, 2, 15.5, 19],
    ["SPEAKER_01", "María", false, 1, 14, 10],
    ["SPEAKER_02", "Jorge", false, 1, 5.5, 10],
  ]);
  assert.equal(a.mentorTalkShare, 0.4429);
  assert.deepEqual(a.topics, ["technology", "prototipo", "aplicación", "maría", "cinco", "entrevistar"]);
  const f = (await ok(await w.api(`/api/omi/logs/${SPANISH.uid}/es-finanzas/analytics`))).analytics;
  // `an\u0303o` is año; `esta\u0301` is the stop word está.
  assert.deepEqual([f.words, f.uniqueWords, f.spanishStopWords], [22, 16, 9]);
  assert.deepEqual(words(f.topWords, 5), [["dinero", 2], ["presupuesto", 2], ["año", 1], ["listo", 1], ["lunes", 1]]);
  assert.equal(f.mentorTalkShare, 0.5161);
  await expectError(await w.api(`/api/omi/logs/${SPANISH.uid}/nope/analytics`), 404, "not_found");
});

test("a mentor's period: hours per ISO week, talk-time share and top words, hand-computed", async () => {
  const en = await ok(await w.api(`/api/omi/users/${ENGLISH.uid}/analytics?from=2025-01-01&to=2025-01-31&top=5`));
  // W03: 45 min + the hour that began Sunday 23:30; W04: 9 min of transcript.
  assert.deepEqual(en.weeks, [
    { week: "2025-W03", weekStart: "2025-01-13", memories: 2, seconds: 6300, hours: 1.75 },
    { week: "2025-W04", weekStart: "2025-01-20", memories: 1, seconds: 540, hours: 0.15 },
  ]);
  assert.deepEqual([en.memories, en.analyzedMemories, en.seconds, en.hours, en.language], [3, 3, 6840, 1.9, "en"]);
  // Mentor 25 + 18 + 240 = 283 s; mentees 30.5 + 18 + 300 = 348.5 s.
  assert.deepEqual([en.mentorTalkSeconds, en.menteeTalkSeconds, en.mentorTalkShare], [283, 348.5, 0.4481]);
  assert.deepEqual(words(en.topWords), [["pricing", 5], ["customer", 3], ["interviews", 3], ["data", 2], ["deck", 2]]);
  assert.equal(en.from, "2025-01-01T00:00:00.000Z");
  assert.equal(en.to, "2025-02-01T00:00:00.000Z");

  const es = await ok(await w.api(`/api/omi/users/${SPANISH.uid}/analytics?from=2025-03-01&to=2025-03-31&top=5`));
  assert.deepEqual(es.weeks.map((x) => [x.week, x.memories, x.hours]), [["2025-W10", 1, 0.5], ["2025-W11", 1, 1.5]]);
  assert.deepEqual([es.hours, es.mentorTalkSeconds, es.menteeTalkSeconds, es.mentorTalkShare, es.language], [2, 47.5, 49.5, 0.4897, "es"]);
  assert.deepEqual(es.topWords.map((x) => x.word), ["dinero", "diseño", "presupuesto", "prototipo", "usuarios"]);
  // The default period is the last twelve weeks up to today: nothing of 2025 in it by then.
  const none = await ok(await w.api(`/api/omi/users/${SPANISH.uid}/analytics`, { headers: at(Date.UTC(2026, 5, 1)) }));
  assert.deepEqual([none.memories, none.hours, none.weeks.length, none.topWords.length], [0, 0, 0, 0]);
  await expectError(await w.api(`/api/omi/users/${SPANISH.uid}/analytics?from=2020-01-01&to=2025-01-01`), 400, "invalid_field");
  await expectError(await w.api(`/api/omi/users/${SPANISH.uid}/analytics?top=0`), 400, "invalid_field");
});

// Monday 3 February 2025, 10:00 UTC: a mentorship session from 10:00 to 10:30.
const T0 = Date.UTC(2025, 1, 3, 10);

test("real-time batches are linked to the memory they became, whichever arrives first, and are searchable with it", async () => {
  const uid = "rt-mentor";
  const seg = (text, speaker = "SPEAKER_00") => [{ text, speaker, start: 0, end: 2 }];
  // During the session, before the memory: two in a session, one filed under the uid.
  await ok(await postBatch(uid, T0 + 1 * MIN, seg("Welcome, let us look at the zeppelin prototype."), "s-a"));
  await ok(await postBatch(uid, T0 + 10 * MIN, seg("The zeppelin needs lighter materials.", "SPEAKER_01"), "s-a"));
  await ok(await postBatch(uid, T0 + 20 * MIN, seg("Send me the supplier list.")));
  const memory = makeMemory({ id: "rt-m1", started_at: iso(T0), finished_at: iso(T0 + 30 * MIN), created_at: iso(T0 + 31 * MIN), title: "Airship design review" });
  await ok(await postMemory(w, uid, memory));
  // A minute after the end (within the slack), three hours later (another conversation).
  await ok(await postBatch(uid, T0 + 31 * MIN, seg("Thanks, bye."), "s-a"));
  await ok(await postBatch(uid, T0 + 180 * MIN, seg("Unrelated chatter about lunch.")));
  const links = await w.db.prepare("SELECT session_id, received_at, memory_id FROM omi_transcript_batches WHERE user_id = ?1 ORDER BY received_at").bind(uid).all();
  assert.deepEqual(links.results.map((r) => r.memory_id), ["rt-m1", "rt-m1", "rt-m1", "rt-m1", null]);

  const a = await ok(await w.api(`/api/omi/logs/${uid}/rt-m1/analytics`));
  assert.deepEqual([a.linkedTranscript.batches, a.span.start, a.span.end], [4, iso(T0), iso(T0 + 30 * MIN)]);

  // The linked transcript, two batches a page, in arrival order across both sessions.
  const first = await w.api(`/api/omi/logs/${uid}/rt-m1/transcript?limit=2`);
  assert.ok(Number(counters(first).r2_operations) <= 2, first.headers.get("x-r2d1-counters"));
  const p1 = await ok(first);
  assert.equal(p1.batches, 2);
  assert.deepEqual(p1.segments.map((s) => s.text), ["Welcome, let us look at the zeppelin prototype.", "The zeppelin needs lighter materials."]);
  assert.ok(p1.nextCursor);
  const p2 = await ok(await w.api(`/api/omi/logs/${uid}/rt-m1/transcript?limit=2&cursor=${p1.nextCursor}`));
  assert.deepEqual(p2.segments.map((s) => s.text), ["Send me the supplier list.", "Thanks, bye."]);
  assert.deepEqual(p2.parts.map((p) => p.sessionId), [uid, "s-a"]);
  assert.equal(p2.nextCursor, null);
  assert.match(p2.text, /^SPEAKER_00: Send me the supplier list\./);

  // Searchable with the memories: the memory's own text never says "zeppelin".
  const found = await ok(await w.api(`/api/omi/logs?userId=${uid}&q=zeppelin`));
  assert.deepEqual(found.logs.map((l) => l.memoryId), ["rt-m1"]);
  assert.equal(found.total, 1);
  const sessions = await ok(await w.api(`/api/omi/transcripts/${uid}?q=zeppelin`));
  assert.deepEqual(sessions.sessions.map((s) => [s.sessionId, s.batches, s.memories]), [["s-a", 3, 1]]);
  const all = await ok(await w.api(`/api/omi/transcripts/${uid}`));
  assert.deepEqual(all.sessions.map((s) => s.sessionId).sort(), [uid, "s-a"]);
  await expectError(await w.api(`/api/omi/logs/${uid}/rt-m1/transcript?cursor=forged`), 400, "invalid_cursor");
});

test("a session filed under the uid grows forever: it is read a page at a time, never whole", async () => {
  const uid = "endless";
  const day = Date.UTC(2025, 1, 10, 9);
  for (let i = 0; i < 16; i++) await ok(await postBatch(uid, day + i * 3_600_000, [{ text: `Batch number ${i}`, speaker: "SPEAKER_00" }]));
  const texts = [];
  let cursor = null;
  let pages = 0;
  do {
    const res = await w.api(`/api/omi/transcripts/${uid}/${uid}${cursor ? `?cursor=${cursor}` : ""}`);
    // The budget of 12 subrequests leaves 7 batches a page.
    assert.ok(Number(counters(res).r2_operations) <= 7, res.headers.get("x-r2d1-counters"));
    const page = await ok(res);
    assert.ok(page.batches <= 7);
    texts.push(...page.segments.map((s) => s.text));
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(texts, Array.from({ length: 16 }, (_, i) => `Batch number ${i}`));
  await expectError(await w.api(`/api/omi/transcripts/${uid}/${uid}?limit=8`), 400, "invalid_field");
  await expectError(await w.api(`/api/omi/transcripts/${uid}/nope`), 404, "not_found");
});

test("exports can carry each stored memory, byte for byte, and its transcript text, paged under the budget", async () => {
  const uid = "exporter";
  const memories = Array.from({ length: 11 }, (_, i) => makeMemory({ id: `exp-${String(i).padStart(2, "0")}`, created_at: iso(Date.UTC(2025, 1, 1) + i * MIN) }));
  // One delivered with odd spacing and number spellings: the export must keep them.
  const raw = JSON.stringify(memories[0], null, 1).replace('"discarded": false', '"discarded": false, "score": 1.50');
  await ok(await postMemory(w, uid, raw));
  for (const m of memories.slice(1)) await ok(await postMemory(w, uid, m));

  const lines = [];
  let cursor = null;
  let pages = 0;
  do {
    const res = await w.api(`/api/omi/export?userId=${uid}&format=ndjson&include=memory,transcript${cursor ? `&cursor=${cursor}` : ""}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    cursor = res.headers.get("x-r2d1-next-cursor");
    const text = await res.text();
    lines.push(...text.trim().split("\n"));
    pages++;
  } while (cursor);
  assert.equal(pages, 2); // 8 + 3 under a budget of 12
  assert.equal(lines.length, 11);
  for (const line of lines) {
    const entry = JSON.parse(line);
    const object = await (await w.bucket.get(entry.r2Key)).text();
    assert.equal(sha256(object), entry.sha256);
    // Spliced in as stored (line breaks, whitespace in JSON, become spaces on an NDJSON line).
    assert.ok(line.includes(`"memory":${object.trim().replace(/[\r\n]/g, " ")}`), entry.memoryId);
    assert.deepEqual(entry.memory, JSON.parse(object));
    assert.equal(entry.transcript, "SPEAKER_00: We talked about the mentorship plan for next week\nSPEAKER_01: Sounds good, I will prepare the slides\n");
  }
  assert.ok(lines.some((l) => l.includes('"score": 1.50')));
  const asJson = await ok(await w.api(`/api/omi/export?userId=${uid}&format=json&include=memory`));
  assert.equal(asJson.length, 8);
  assert.ok(asJson.every((e) => e.memory.id === e.memoryId && e.transcript === undefined));
  await expectError(await w.api(`/api/omi/export?userId=${uid}&format=csv&include=memory`), 400, "invalid_field");
  await expectError(await w.api(`/api/omi/export?userId=${uid}&include=photos`), 400, "invalid_field");
});

test("a mentor's archive holds every version, transcript batch and day summary, in parts under the budget", async () => {
  const uid = "archived";
  const m1 = makeMemory({ id: "arc-1", created_at: iso(Date.UTC(2025, 1, 5)) });
  await ok(await postMemory(w, uid, m1));
  await ok(await postMemory(w, uid, { ...m1, structured: { ...m1.structured, title: "Re-processed title" } })); // version 2
  await ok(await postMemory(w, uid, makeMemory({ id: "arc-2", created_at: iso(Date.UTC(2025, 1, 6)) })));
  await ok(await postMemory(w, uid, makeMemory({ id: "arc-3", created_at: iso(Date.UTC(2025, 1, 7)) })));
  for (let i = 0; i < 3; i++) await ok(await postBatch(uid, Date.UTC(2025, 1, 8, 9, i), [{ text: `live ${i}` }], "live"));
  for (const date of ["2025-02-05", "2025-02-06"]) {
    const summary = { uid, created_at: `${date}T23:00:00+00:00`, summary: "x", summary_json: { date, headline: `Day ${date}` } };
    await ok(await postMemory(w, uid, summary, { path: "/api/omi/day-summary" }));
  }
  const rows = (
    await w.db.prepare(
      `SELECT r2_key, sha256 FROM omi_memory_versions WHERE user_id = ?1 UNION ALL SELECT r2_key, sha256 FROM omi_transcript_batches WHERE user_id = ?1
       UNION ALL SELECT r2_key, sha256 FROM omi_day_summaries WHERE user_id = ?1`,
    ).bind(uid).all()
  ).results;
  assert.equal(rows.length, 9);

  const part1 = await w.api(`/api/omi/users/${uid}/archive?format=tar`);
  assert.equal(part1.status, 200);
  assert.equal(part1.headers.get("content-type"), "application/x-tar");
  assert.equal(part1.headers.get("x-r2d1-archive-part"), "1");
  assert.match(part1.headers.get("content-disposition"), /filename="r2d1-archived\.tar"/);
  const next = part1.headers.get("x-r2d1-next-cursor");
  assert.ok(next);
  const files1 = readTar(Buffer.from(await part1.arrayBuffer()));
  assert.deepEqual(files1.map((f) => f.name), [
    "r2d1-archived/manifest.json",
    "r2d1-archived/memories/arc-1/v1.json",
    "r2d1-archived/memories/arc-1/v2.json",
    "r2d1-archived/memories/arc-2/v1.json",
    "r2d1-archived/memories/arc-3/v1.json",
    ...files1.slice(5, 8).map((f) => f.name),
    "r2d1-archived/day-summaries/2025-02-05.json",
  ]);
  assert.ok(files1.slice(5, 8).every((f) => /^r2d1-archived\/transcripts\/live\/\d+-[0-9a-f]{16}\.json$/.test(f.name)));
  const manifest = JSON.parse(files1[0].bytes.toString("utf8"));
  assert.deepEqual(manifest.counts, { memories: 3, versions: 4, transcriptBatches: 3, transcriptSessions: 1, daySummaries: 2 });
  assert.equal(manifest.userId, uid);
  assert.equal(manifest.parts.complete, false);

  const part2 = await w.api(`/api/omi/users/${uid}/archive?format=tar&cursor=${next}`);
  assert.equal(part2.headers.get("x-r2d1-archive-part"), "2");
  assert.equal(part2.headers.get("x-r2d1-next-cursor"), null);
  const files2 = readTar(Buffer.from(await part2.arrayBuffer()));
  assert.deepEqual(files2.map((f) => f.name), ["r2d1-archived-part2/day-summaries/2025-02-06.json"]);

  // Every object of the mentor is in exactly one part, byte for byte.
  const archived = [...files1.slice(1), ...files2].map((f) => sha256(f.bytes)).sort();
  assert.deepEqual(archived, rows.map((r) => r.sha256).sort());
  const v2 = JSON.parse(files1[2].bytes.toString("utf8"));
  assert.equal(v2.structured.title, "Re-processed title");

  // The default is tar.gz with the same files.
  const gz = await w.api(`/api/omi/users/${uid}/archive`);
  assert.equal(gz.headers.get("content-type"), "application/gzip");
  assert.deepEqual(readTar(Buffer.from(await gz.arrayBuffer()), { gzip: true }).map((f) => f.name), files1.map((f) => f.name));
  await expectError(await w.api("/api/omi/users/nobody-at-all/archive"), 404, "not_found");
  await expectError(await w.api(`/api/omi/users/${uid}/archive?cursor=forged`), 400, "invalid_cursor");
  await expectError(await w.api(`/api/omi/users/${uid}/archive?format=zip`), 400, "invalid_field");
});

test("the directory names mentors (several uids each) and the Mentors page shows sessions per week and who is quiet", async () => {
  const put = (id, body) => w.api(`/api/omi/directory/${id}`, { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  const saved = await ok(await put("lucia", { name: "Lucía Pérez", cohort: "2025-A", mentees: ["Ana", "Luis"], uids: [ENGLISH.uid, "lucia-old-phone"] }));
  assert.deepEqual(saved.person, { id: "lucia", name: "Lucía Pérez", cohort: "2025-A", mentees: ["Ana", "Luis"], uids: [ENGLISH.uid, "lucia-old-phone"] });
  await ok(await put("marta", { name: "Marta Ruiz", cohort: "2025-A", mentees: ["María", "Jorge"], uids: [SPANISH.uid] }));
  await ok(await put("temp", { name: "Temporary", uids: ["lucia-old-phone"] })); // takes the uid
  const dir = await ok(await w.api("/api/omi/directory"));
  assert.deepEqual(dir.people.map((p) => [p.id, p.name, p.uids]), [
    ["lucia", "Lucía Pérez", [ENGLISH.uid]],
    ["marta", "Marta Ruiz", [SPANISH.uid]],
    ["temp", "Temporary", ["lucia-old-phone"]],
  ]);
  assert.ok(dir.unassigned.includes("rt-mentor") && !dir.unassigned.includes(ENGLISH.uid));
  await ok(await w.api("/api/omi/directory/temp", { method: "DELETE" }));
  await expectError(await w.api("/api/omi/directory/temp", { method: "DELETE" }), 404, "not_found");
  await expectError(await put("x", { name: "" }), 400, "invalid_field");
  await expectError(await put("x", { name: "X", uids: ["../etc"] }), 400, "invalid_field");
  await expectError(await put("a%20b", { name: "X" }), 400, "invalid_field");

  // Monday 17 March 2025: the ten weeks W03..W12.
  const now = Date.UTC(2025, 2, 17, 12);
  const act = await ok(await w.api("/api/omi/programme?weeks=10&inactive_days=14", { headers: at(now) }));
  const lucia = act.mentors.find((m) => m.personId === "lucia");
  const marta = act.mentors.find((m) => m.personId === "marta");
  assert.equal(lucia.weeks.length, 10);
  assert.deepEqual(lucia.weeks.slice(0, 2).map((x) => [x.week, x.sessions, x.hours]), [["2025-W03", 2, 1.75], ["2025-W04", 1, 0.15]]);
  assert.deepEqual([lucia.sessions, lucia.hours, lucia.lastSession, lucia.daysSinceLastSession, lucia.inactive], [3, 1.9, "2025-01-21T09:00:00.000Z", 55, true]);
  assert.deepEqual(marta.weeks.slice(7).map((x) => [x.week, x.sessions, x.hours]), [["2025-W10", 1, 0.5], ["2025-W11", 1, 1.5], ["2025-W12", 0, 0]]);
  assert.deepEqual([marta.name, marta.cohort, marta.mentees, marta.daysSinceLastSession, marta.inactive], ["Marta Ruiz", "2025-A", ["María", "Jorge"], 4, false]);
  assert.ok(act.inactive.includes("Lucía Pérez") && !act.inactive.includes("Marta Ruiz"));
  // A uid nobody named is listed under its uid.
  assert.ok(act.mentors.some((m) => m.personId === null && m.name === "rt-mentor"));
  await expectError(await w.api("/api/omi/programme?weeks=0"), 400, "invalid_field");
});

test("the omi.analytics job recomputes stale analytics from R2 and indexes older transcript text", async () => {
  const uid = "job-mentor";
  await ok(await postMemory(w, uid, makeMemory({ id: "job-1", text: "Quarterly roadmap roadmap planning" })));
  await ok(await postBatch(uid, Date.UTC(2025, 3, 1), [{ text: "Kaleidoscope feedback session" }]));
  const before = await w.db.prepare("SELECT seq, analytics_json, word_count, open_items_json FROM omi_memories WHERE user_id = ?1").bind(uid).first();
  const batch = await w.db.prepare("SELECT seq FROM omi_transcript_batches WHERE user_id = ?1").bind(uid).first();
  // As rows written before migration 0010 look.
  await w.db.batch([
    w.db.prepare("UPDATE omi_memories SET analytics_version = 0, analytics_json = NULL, word_count = 999, open_items_json = NULL WHERE seq = ?1").bind(before.seq),
    w.db.prepare("DELETE FROM omi_memory_words WHERE seq = ?1").bind(before.seq),
    w.db.prepare("UPDATE omi_transcript_batches SET text_indexed = 0 WHERE seq = ?1").bind(batch.seq),
    w.db.prepare("DELETE FROM omi_transcripts_fts WHERE rowid = ?1").bind(batch.seq),
  ]);
  assert.deepEqual((await ok(await w.api(`/api/omi/transcripts/${uid}?q=kaleidoscope`))).sessions, []);
  let runs = 0;
  for (;;) {
    const r = await ok(await w.api("/api/admin/jobs/omi.analytics/run", { method: "POST" }));
    assert.equal(r.ok, true, JSON.stringify(r));
    runs++;
    if (r.report.done) break;
    assert.ok(runs < 10);
  }
  const after = await w.db.prepare("SELECT seq, analytics_json, word_count, open_items_json, analytics_version FROM omi_memories WHERE user_id = ?1").bind(uid).first();
  assert.deepEqual(after, { ...before, analytics_version: 1 });
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_words WHERE seq = ?1", before.seq) > 0, true);
  assert.deepEqual((await ok(await w.api(`/api/omi/transcripts/${uid}?q=kaleidoscope`))).sessions.map((s) => s.batches), [1]);
  const jobs = await ok(await w.api("/api/admin/jobs"));
  assert.ok(JSON.stringify(jobs).includes("omi.analytics"));
});

test("deleting a mentor removes their transcripts, search entries, words and directory entry; retention reaches transcripts", async () => {
  const uid = "rt-mentor";
  const del = await ok(await w.api(`/api/omi/users/${uid}`, { method: "DELETE" }));
  assert.equal(del.objectsPending, 0);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_transcript_batches WHERE user_id = ?1", uid), 0);
  assert.deepEqual((await w.db.prepare("SELECT rowid FROM omi_transcripts_fts WHERE omi_transcripts_fts MATCH 'zeppelin'").all()).results, []);
  assert.deepEqual(await listKeys(w.bucket, `mobil3-mentorships/transcripts/${uid}/`), []);
  assert.deepEqual((await ok(await w.api(`/api/omi/logs?q=zeppelin`))).logs, []);

  // Marta's only uid goes: so does her entry (her name is personal data).
  await ok(await w.api(`/api/omi/users/${SPANISH.uid}`, { method: "DELETE" }));
  const dir = await ok(await w.api("/api/omi/directory"));
  assert.deepEqual(dir.people.map((p) => p.id), ["lucia"]);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_words w WHERE NOT EXISTS (SELECT 1 FROM omi_memories m WHERE m.seq = w.seq)"), 0);

  // Retention (30 days) run a year later: transcripts, their search entries and words go too.
  const later = Date.UTC(2026, 5, 1);
  const r = await ok(await w.api("/api/admin/jobs/omi.retention/run", { method: "POST", headers: at(later) }));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_transcript_batches"), 0);
  assert.deepEqual((await w.db.prepare("SELECT rowid FROM omi_transcripts_fts WHERE omi_transcripts_fts MATCH 'batch'").all()).results, []);
  assert.equal(await dbCount(w, "SELECT COUNT(*) FROM omi_memory_words"), 0);
});
