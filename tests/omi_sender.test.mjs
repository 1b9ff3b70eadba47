// Omi as it really sends (issue 12): deliveries built and signed the way Omi's backend does,
// answers that never reach a mentor's phone, day summaries from every sender generation,
// webhook URLs that answer a browser, CORS for the old dashboard, the old app's query
// parameters, and one version per content whichever way a memory arrives.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, expectError, consistency, API_TOKEN } from "./helpers/worker.mjs";
import { sha256, dbCount, fixture } from "./helpers/omi.mjs";
import { conversation, delivery, pyDumps, f } from "./helpers/sender.mjs";
import { createKey, withKey } from "./helpers/access.mjs";

const OLD_SECRET = "whsec_old_rotating_out_0123456789";
const NEW_SECRET = "whsec_new_rotating_in_9876543210";
const DASH = "https://dash.example.org";

let app; // an integration app: deliveries signed with the app's secret
let dev; // developer webhooks: the token in the URL
let chatty; // an integration app that asked for the memory answer's message
before(async () => {
  [app, dev, chatty] = await Promise.all([
    startWorker({ bindings: { OMI_SIGNING_SECRET: NEW_SECRET, ALLOWED_ORIGINS: `${DASH}, http://localhost:3000` } }),
    startWorker(),
    startWorker({ bindings: { OMI_SIGNING_SECRET: NEW_SECRET, OMI_REPLY_MESSAGE: "on" } }),
  ]);
});
after(() => Promise.all([app, dev, chatty].map((w) => w?.dispose())));

/** What Omi would do with a 200 answer: push `message` when it is longer than 5 characters. */
function assertNothingPushed(answer, what) {
  const message = answer?.message;
  assert.ok(typeof message !== "string" || [...message].length <= 5, `${what} would push ${JSON.stringify(message)} to the phone`);
}

const WEBHOOK_URL = "/api/omi/memory?token=kept-as-configured&uid=stale";

test("a memory delivered as Omi sends it, signed during a rotation and retried, is stored once, byte for byte, and pushes nothing", async () => {
  const uid = "Mentor.Uid_1";
  const conv = conversation({ title: "Plan de negocio" });
  const body = pyDumps(conv);
  assert.match(body, /"start":0\.0,"end":4\.5/, "Python's floats");
  assert.ok(body.includes("¿cómo vas con el \\\"pitch\\\"?") && body.includes("🚀"), "UTF-8 unescaped");
  assert.ok(body.includes('","') && !body.includes('": ') && !body.includes('", "'), "compact");
  const d = delivery(app, { configured: WEBHOOK_URL, uid, body, secrets: [OLD_SECRET, NEW_SECRET] });
  assert.match(d.url, /token=kept-as-configured&uid=Mentor.Uid_1$/);

  // The first attempt fails after the R2 write (Omi sees a 5xx and retries 1 s later)...
  const failed = await d.send(0, { "x-r2d1-fault": "omi.after_put" });
  assert.ok(failed.status >= 500, `expected a 5xx, got ${failed.status}`);
  // ...the retry, re-signed with a fresh t and the same Idempotency-Key, is stored...
  const first = await ok(await d.send(1));
  assert.equal(first.duplicate, false);
  assertNothingPushed(first, "the memory answer to an integration app");
  assert.equal(first.message, undefined);
  // ...and a retry whose 200 was lost changes nothing.
  const again = await ok(await d.send(2));
  assert.equal(again.duplicate, true);
  assert.equal(again.storage.r2Key, first.storage.r2Key);
  assertNothingPushed(again, "a duplicate's answer");

  assert.equal(await dbCount(app, "SELECT COUNT(*) FROM omi_memory_versions WHERE user_id = ? AND memory_id = ?", uid, conv.id), 1);
  assert.equal(await dbCount(app, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ? AND memory_id = ?", uid, conv.id), 1);
  const stored = await app.bucket.get(first.storage.r2Key);
  assert.deepEqual(Buffer.from(await stored.arrayBuffer()), Buffer.from(body, "utf8"), "stored bytes are the wire bytes");
  const row = await app.db.prepare("SELECT sha256, title, category FROM omi_memories WHERE memory_id = ?").bind(conv.id).first();
  assert.deepEqual(row, { sha256: sha256(Buffer.from(body, "utf8")), title: "Plan de negocio", category: "entrepreneurship" });

  // The other order of the two v1 values, and a delivery to the conversation alias, verify too.
  const other = conversation();
  const d2 = delivery(app, { configured: "/api/omi/conversation", uid, body: pyDumps(other), secrets: [NEW_SECRET, OLD_SECRET] });
  assert.equal((await ok(await d2.send())).duplicate, false);
  // A signature by the old secret alone no longer verifies: this worker holds the new one.
  const d3 = delivery(app, { configured: WEBHOOK_URL, uid, body: pyDumps(conversation()), secrets: [OLD_SECRET] });
  await expectError(await d3.send(), 401, "unauthorized");

  // The failed attempt's objects are reconciliation's: condemned, swept, and the stores agree.
  const rec = await ok(await app.api("/api/omi/reconcile?grace_seconds=0&limit=500", { method: "POST" }));
  assert.equal(rec.removedOrphans, 1);
  assert.equal((await consistency(app)).clean, true);
});

test("real-time transcript answers never carry a message Omi would push, new or repeated, signed or not", async () => {
  const segments = [
    { id: "s1", text: "Vamos a revisar las métricas", speaker: "SPEAKER_00", speaker_id: 0, is_user: true, person_id: null, start: f(0), end: f(3.2) },
  ];
  for (const [w, secrets, path] of [[app, [NEW_SECRET], "/api/omi/transcript"], [dev, [], "/api/omi/webhook"]]) {
    const uid = "live-mentor";
    const token = secrets.length ? "" : "?token=test-webhook-token-0123456789";
    // the backend's shape (session_id is the uid) and the documented bare array
    for (const payload of [{ session_id: uid, segments }, segments]) {
      const d = delivery(w, { configured: path + token, uid, body: pyDumps(payload), event: "transcript_processed", secrets });
      for (let attempt = 0; attempt < 2; attempt++) {
        const answer = await ok(await d.send(attempt));
        assertNothingPushed(answer, `${path} attempt ${attempt}`);
        assert.equal(answer.message, undefined);
        assert.equal(answer.duplicate, attempt > 0);
      }
    }
  }
});

test("day summaries from every sender generation are stored raw, dated by summary_json or created_at, and answered 2xx", async () => {
  const uid = "summary-mentor";
  const docs = JSON.parse(fixture("day_summary.docs.json"));
  const generations = [
    // today's sender
    [{ summary: docs.summary, summary_json: docs.summary_json, uid, created_at: "2024-01-15T22:00:00.123456+00:00" }, "2024-01-15"],
    // summary_json null
    [{ summary: "{'headline': 'Día tranquilo', 'stats': {'total_conversations': 1}}", summary_json: null, uid, created_at: "2025-05-30T22:15:00.000000+00:00" }, "2025-05-30"],
    // older senders: no summary_json at all
    [{ summary: "{'headline': 'Old sender'}", uid, created_at: "2025-05-29T21:00:00+00:00" }, "2025-05-29"],
  ];
  for (const [payload, date] of generations) {
    const body = pyDumps(payload);
    const d = delivery(app, { configured: "/api/omi/day-summary", uid, body, event: "day_summary", secrets: [NEW_SECRET] });
    const answer = await ok(await d.send());
    assert.equal(answer.date, date);
    const res = await app.api(`/api/omi/day-summaries/${uid}/${date}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from(body, "utf8"), `${date}: the raw body is kept`);
  }
  assert.equal(await dbCount(app, "SELECT COUNT(*) FROM omi_day_summaries WHERE user_id = ?", uid), 3);
});

test("the memory answer's message: documented for developer webhooks, left out for integration apps unless OMI_REPLY_MESSAGE=on", async () => {
  const body = pyDumps(conversation());
  const devAnswer = await ok(await delivery(dev, { configured: "/api/omi/memory?token=test-webhook-token-0123456789", uid: "m1", body }).send());
  assert.equal(devAnswer.message, "Memory stored in R2");
  const appAnswer = await ok(await delivery(app, { configured: "/api/omi/memory", uid: "m1", body, secrets: [NEW_SECRET] }).send());
  assert.equal(appAnswer.message, undefined);
  const chattyAnswer = await ok(await delivery(chatty, { configured: "/api/omi/memory", uid: "m1", body, secrets: [NEW_SECRET] }).send());
  assert.equal(chattyAnswer.message, "Memory stored in R2");
  for (const a of [devAnswer, appAnswer, chattyAnswer]) assert.deepEqual(Object.keys(a.storage), ["r2Key"]);
});

test("every webhook route answers GET and HEAD with a short description, without credentials and without data", async () => {
  for (const path of ["/api/omi/memory", "/api/omi/conversation", "/api/omi/transcript", "/api/omi/webhook", "/api/omi/day-summary"]) {
    const res = await app.fetch(`${path}?uid=Mentor.Uid_1`);
    assert.equal(res.status, 200, path);
    const d = await res.json();
    assert.equal(d.status, "ready");
    assert.equal(d.method, "POST");
    assert.equal(d.endpoint, path);
    assert.match(d.authentication, /X-Omi-Signature/);
    assert.equal(d.stats ?? null, null, `${path} shows no data without the API token`);
    const head = await app.fetch(path, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  }
  // The old app's GET /api/omi/memory?uid= answered the mentor's stats too: for the API token.
  const stats = await ok(await app.api("/api/omi/memory?uid=Mentor.Uid_1"));
  assert.equal(stats.userId, "Mentor.Uid_1");
  assert.equal(stats.stats.memories, 2);
  assert.equal(stats.stats.categories.entrepreneurship, 2);
  // ...and for a key that may read this mentor's stats (the rule of /api/omi/users/{uid}/stats);
  // a key for another mentor, or a wrong one, sees the description without them.
  const mine = withKey(app, (await createKey(app, ["omi:export:Mentor.Uid_1"])).secret);
  const other = withKey(app, (await createKey(app, ["omi:read:someone-else"])).secret);
  assert.equal((await ok(await mine("/api/omi/memory?uid=Mentor.Uid_1"))).stats.memories, 2);
  for (const [fetcher, who] of [[other, "another mentor's key"], [withKey(app, "r2d1_wrongwro_nope"), "a wrong key"]]) {
    const d = await ok(await fetcher("/api/omi/memory?uid=Mentor.Uid_1"));
    assert.equal(d.stats, null, who);
    assert.equal(d.status, "ready", who);
  }
  assert.match((await ok(await dev.fetch("/api/omi/memory"))).authentication, /token/);
  assert.deepEqual(await ok(await app.fetch("/api/omi/setup?uid=Mentor.Uid_1")), { is_setup_completed: true });
  assert.deepEqual(await ok(await app.fetch("/api/omi/setup?uid=nobody-yet")), { is_setup_completed: false });
});

test("CORS: allowed origins get the headers (errors included) and a preflight; others and unset ALLOWED_ORIGINS get none", async () => {
  const preflight = (w, origin, path = "/api/omi/logs") =>
    w.fetch(path, { method: "OPTIONS", headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" } });
  const res = await preflight(app, DASH);
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), DASH);
  assert.match(res.headers.get("access-control-allow-methods"), /\bGET\b/);
  assert.match(res.headers.get("access-control-allow-headers"), /Authorization/);
  assert.match(res.headers.get("allow"), /OPTIONS/);
  assert.ok(Number(res.headers.get("access-control-max-age")) > 0);
  const local = await preflight(app, "http://localhost:3000", "/api/omi/users/x");
  assert.equal(local.headers.get("access-control-allow-origin"), "http://localhost:3000");
  assert.match(local.headers.get("access-control-allow-methods"), /DELETE/);
  const evil = await preflight(app, "https://evil.example.org");
  assert.equal(evil.status, 204);
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  await expectError(await preflight(app, DASH, "/api/nothing"), 404, "not_found");

  const read = await app.fetch("/api/omi/logs?limit=1", { headers: { origin: DASH, authorization: `Bearer ${API_TOKEN}` } });
  assert.equal(read.status, 200);
  assert.equal(read.headers.get("access-control-allow-origin"), DASH);
  assert.match(read.headers.get("access-control-expose-headers"), /ETag/);
  assert.match(read.headers.get("vary"), /Origin/);
  const refused = await app.fetch("/api/omi/logs", { headers: { origin: DASH } });
  assert.equal(refused.status, 401);
  assert.equal(refused.headers.get("access-control-allow-origin"), DASH, "the dashboard can read why it was refused");
  const other = await app.fetch("/api/omi/logs", { headers: { origin: "https://evil.example.org", authorization: `Bearer ${API_TOKEN}` } });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const off = await dev.fetch("/api/omi/logs", { headers: { origin: DASH, authorization: `Bearer ${API_TOKEN}` } });
  assert.equal(off.headers.get("access-control-allow-origin"), null);
  assert.equal((await preflight(dev, DASH)).headers.get("access-control-allow-origin"), null);
});

test("the old app's clients: GET /api/omi/logs takes userId, limit and source, and answers the old wrapper shape with format=legacy", async () => {
  const uid = "Mentor.Uid_1";
  const page = await ok(await app.api(`/api/omi/logs?userId=${uid}&limit=1&source=r2&format=legacy`));
  assert.equal(page.success, true);
  assert.equal(page.total, 2);
  assert.equal(page.logs.length, 1);
  assert.ok(page.nextCursor);
  const [log] = page.logs;
  assert.deepEqual(Object.keys(log).sort(), ["analytics", "memory", "processed", "processing_time_ms", "webhook_received_at"]);
  const stored = await (await app.api(`/api/omi/logs/${uid}/${log.memory.id}`)).json();
  assert.deepEqual(log.memory, stored);
  assert.equal(log.processed.uid, "mentor_uid_1", "the uid as the old app sanitised it");
  assert.equal(log.processed.id, log.memory.id, "processed spreads the memory");
  assert.equal(typeof log.processed.word_frequency, "object");
  assert.ok(log.processed.speaker_stats.SPEAKER_00.words > 0);
  assert.equal(log.analytics.segment_count, 2);
  assert.equal(log.analytics.action_item_count, 1);
  assert.match(log.webhook_received_at, /^\d{4}-\d{2}-\d{2}T/);
  const local = await ok(await app.api(`/api/omi/logs?userId=${uid}&source=local`));
  assert.equal(local.total, 2);
  await expectError(await app.api("/api/omi/logs?format=xml"), 400, "invalid_field");
});

test("the same memory by webhook (wire bytes) and by import (re-serialised) is one version, whichever comes first", async () => {
  const token = "?token=test-webhook-token-0123456789";
  // webhook first, then the old app's wrapper of it (JSON.stringify: 0.0 became 0, pretty-printed)
  const a = conversation({ title: "Primero por webhook" });
  const wire = pyDumps(a);
  const hooked = await ok(await delivery(dev, { configured: `/api/omi/memory${token}`, uid: "same-mentor", body: wire }).send());
  const reserialised = JSON.stringify({ memory: JSON.parse(wire), processed: { uid: "same-mentor" }, webhook_received_at: new Date().toISOString() }, null, 2);
  assert.ok(reserialised.includes('"start": 0,'), "JavaScript wrote Python's 0.0 as 0");
  const imported = await ok(await dev.api("/api/omi/import", { method: "POST", body: reserialised.replace(/\n\s*/g, " ") + "\n" }));
  assert.deepEqual([imported.imported, imported.duplicates], [0, 1]);
  assert.equal(await dbCount(dev, "SELECT COUNT(*) FROM omi_memory_versions WHERE memory_id = ?", a.id), 1);
  assert.equal(await (await dev.bucket.get(hooked.storage.r2Key)).text(), wire, "the webhook's bytes stay");
  // import first (a bare memory with its uid, keys sorted by serde), then Omi delivers it
  const b = conversation({ title: "Primero por importación" });
  const bare = JSON.stringify({ ...JSON.parse(JSON.stringify(JSON.parse(pyDumps(b)))), uid: "same-mentor" });
  assert.equal((await ok(await dev.api("/api/omi/import", { method: "POST", body: bare }))).imported, 1);
  const late = await ok(await delivery(dev, { configured: `/api/omi/memory${token}`, uid: "same-mentor", body: pyDumps(b) }).send());
  assert.equal(late.duplicate, true);
  assert.equal(await dbCount(dev, "SELECT COUNT(*) FROM omi_memory_versions WHERE memory_id = ?", b.id), 1);
});

test("the current version is the one received last, not the one imported last", async () => {
  const token = "?token=test-webhook-token-0123456789";
  const uid = "versions-mentor";
  const id = "6f1d2c3b-4a5e-4f60-8b7a-9c8d7e6f5a4b";
  const newer = conversation({ id, title: "Nueva versión" });
  await ok(await delivery(dev, { configured: `/api/omi/memory${token}`, uid, body: pyDumps(newer) }).send());
  // the old app's copy of an earlier processing of the same conversation, received a day before
  const older = { ...conversation({ id, title: "Versión vieja" }), structured: { ...newer.structured, title: "Versión vieja" } };
  const dayBefore = new Date(Date.now() - 86_400_000).toISOString();
  const line = JSON.stringify({ memory: JSON.parse(pyDumps(older)), processed: { uid }, webhook_received_at: dayBefore });
  assert.equal((await ok(await dev.api("/api/omi/import", { method: "POST", body: line }))).imported, 1);
  const versions = await ok(await dev.api(`/api/omi/logs/${uid}/${id}/versions`));
  assert.equal(versions.versions.length, 2);
  const logs = await ok(await dev.api(`/api/omi/logs?userId=${uid}`));
  assert.deepEqual(logs.logs.map((l) => l.title), ["Nueva versión"]);
  assert.equal((await (await dev.api(`/api/omi/logs/${uid}/${id}`)).json()).structured.title, "Nueva versión");
  // content received later than the current one does become current, imported or not
  const latest = { ...older, structured: { ...newer.structured, title: "Reprocesada" } };
  const later = new Date(Date.now() + 60_000).toISOString();
  await ok(await dev.api("/api/omi/import", { method: "POST", body: JSON.stringify({ memory: latest, processed: { uid }, webhook_received_at: later }) }));
  assert.deepEqual((await ok(await dev.api(`/api/omi/logs?userId=${uid}`))).logs.map((l) => l.title), ["Reprocesada"]);
});

test("old-app wrappers imported without a uid are attributed from processed.uid or their name, through the stored mapping", async () => {
  const put = await ok(await dev.api("/api/omi/legacy/mapping", { method: "PUT", body: "sanitized,uid\nAna.Garcia@Example.com,AnaOmiUid\n" }));
  assert.deepEqual(put.mapping, { ana_garciaat_example_com: "AnaOmiUid" });
  assert.deepEqual((await ok(await dev.api("/api/omi/legacy/mapping"))).mapping, { ana_garciaat_example_com: "AnaOmiUid" });
  const wrapper = (memory, processedUid, extra = {}) =>
    JSON.stringify({ memory, processed: { ...memory, uid: processedUid, word_frequency: {} }, analytics: {}, webhook_received_at: "2024-07-01T10:00:00.000Z", processing_time_ms: 12, ...extra });
  const ana = JSON.parse(pyDumps(conversation()));
  const pedro = JSON.parse(pyDumps(conversation()));
  const luis = JSON.parse(pyDumps(conversation()));
  const lines = [
    wrapper(ana, "ana_garciaat_example_com"),
    wrapper(pedro, "pedro"),
    JSON.stringify({ memory: luis, path: `mobil3-mentorships/all/2024-07-01/Luis.Perez@x.org-${luis.id}-1719828000000.json` }),
  ].join("\n");
  const r = await ok(await dev.api("/api/omi/import?uid=fallback-mentor", { method: "POST", body: lines }));
  assert.deepEqual([r.imported, r.failed], [3, 0], JSON.stringify(r.errors));
  const owner = async (id) => (await dev.db.prepare("SELECT user_id, received_at FROM omi_memories WHERE memory_id = ?").bind(id).first());
  assert.equal((await owner(ana.id)).user_id, "AnaOmiUid");
  assert.equal((await owner(pedro.id)).user_id, "pedro", "the wrapper's mentor wins over ?uid=");
  assert.deepEqual(await owner(luis.id), { user_id: "luis_perezat_x_org", received_at: 1719828000000 });
});
