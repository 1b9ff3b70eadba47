// Who may deliver as a mentor, through workerd: per-mentor tokens and signing secrets (a
// credential for uid A never writes as B; rotation keeps deliveries flowing), the legacy shared
// token only while it is set, signed transcripts' session ids, and bounded reads: a 100 MB
// chunked body without Content-Length is refused while the isolate's memory stays under twice
// the limit (measured through workerd's V8 inspector).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, expectError, ok, json, at, WEBHOOK_TOKEN, listKeys } from "./helpers/worker.mjs";
import { makeMemory, postMemory, omiSignature, fixture, dbCount } from "./helpers/omi.mjs";
import { Inspector } from "./helpers/inspector.mjs";

const HOUR = 3_600_000;
let w; // OMI_WEBHOOK_TOKEN unset: only per-mentor credentials
before(async () => {
  w = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "" } });
});
after(() => w?.dispose());

const memories = (s, uid) => dbCount(s, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid);
const credential = async (s, uid, body = {}) => ok(await s.api(`/api/admin/mentors/${uid}/credentials`, json("POST", body)), 201);

/** Posts `body` to a URL printed by the credential endpoint, with Omi's `uid`. */
function deliver(s, url, uid, body, headers = {}) {
  const u = new URL(url);
  u.searchParams.set("uid", uid);
  return s.fetch(`${u.pathname}${u.search}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

test("a mentor's token writes as that mentor only; the legacy token is refused while unset", async () => {
  const made = await credential(w, "alice", { label: "Alice" });
  assert.match(made.token, /^omi_[0-9a-f]{8}_[a-z2-7]{52}$/);
  assert.equal(made.urls.memory, `http://r2d1.test/api/omi/memory?token=${made.token}`);
  assert.equal(made.urls.daySummary, `http://r2d1.test/api/omi/day-summary?token=${made.token}`);
  assert.equal(made.urls.setup, "http://r2d1.test/api/omi/setup");
  assert.match(made.instructions, /Omi adds \?uid= itself/);
  const stored = await w.db.prepare("SELECT material FROM mentor_credentials WHERE id = ?").bind(made.credential.id).first();
  assert.notEqual(stored.material, made.token, "only the token's hash is stored");

  const m = makeMemory();
  assert.equal((await deliver(w, made.urls.memory, "alice", JSON.stringify(m))).status, 200);
  assert.equal(await memories(w, "alice"), 1);
  // Alice's token with ?uid=bob: refused, and nothing of bob's is written.
  const wrong = await expectError(await deliver(w, made.urls.memory, "bob", JSON.stringify(makeMemory())), 401, "unauthorized");
  assert.match(wrong.error.message, /another mentor/);
  assert.equal(await memories(w, "bob"), 0);
  assert.equal((await listKeys(w.bucket, "mobil3-mentorships/by-user/bob/")).length, 0);
  // The transcript and day-summary URLs work the same way.
  assert.equal((await deliver(w, made.urls.transcript, "alice", fixture("realtime_transcript.docs.json"))).status, 200);
  await expectError(await deliver(w, made.urls.daySummary, "bob", fixture("day_summary.docs.json")), 401, "unauthorized");
  // Without OMI_WEBHOOK_TOKEN, no shared token works, and no credential is no entry.
  await expectError(await postMemory(w, "bob", makeMemory(), { token: WEBHOOK_TOKEN }), 401, "unauthorized");
  await expectError(await postMemory(w, "bob", makeMemory(), { token: null }), 401, "unauthorized");
  // Issuing a credential enrolled the uid (for OMI_ENROLLMENT=required and the setup check).
  assert.deepEqual((await ok(await w.fetch("/api/omi/setup?uid=alice"))).is_setup_completed, true);
  const e = await ok(await w.api("/api/admin/enrollment"));
  assert.deepEqual(e.enrolled.map((x) => [x.uid, x.label, x.via]), [["alice", "Alice", "credential"]]);

  // Revoked: the next delivery is refused.
  await ok(await w.api(`/api/admin/mentors/alice/credentials/${made.credential.id}`, { method: "DELETE" }));
  await expectError(await deliver(w, made.urls.memory, "alice", JSON.stringify(makeMemory())), 401, "unauthorized");
  const listed = await ok(await w.api("/api/admin/mentors/alice/credentials"));
  assert.equal(listed.credentials[0].status, "revoked");
  assert.ok(listed.credentials[0].lastUsedAt > 0);
  assert.ok(!JSON.stringify(listed).includes(made.token) && !JSON.stringify(listed).includes(stored.material), "no material in the list");
});

test("signing-secret rotation keeps deliveries flowing through the switch; the old secret stops after the grace", async () => {
  const first = await credential(w, "carol", { kind: "signingSecret" });
  assert.match(first.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
  assert.equal(first.urls.memory, "http://r2d1.test/api/omi/memory", "a signing secret needs no token in the URL");
  const OLD = first.secret;
  const send = (secrets, now = Date.now()) => {
    const body = JSON.stringify(makeMemory());
    const t = Math.floor(now / 1000);
    const sig = secrets.map((s) => omiSignature(s, t, "carol", body).split(",").find((p) => p.startsWith("v1=")));
    return deliver(w, first.urls.memory, "carol", body, { "x-omi-signature": [`t=${t}`, ...sig].join(","), ...at(now) });
  };
  assert.equal((await send([OLD])).status, 200);

  // The admin pastes Omi's new secret: both verify for 24 h, whichever Omi sends.
  const NEW = "whsec_" + "n".repeat(40);
  const second = await credential(w, "carol", { kind: "signingSecret", secret: NEW });
  assert.deepEqual(second.retiring.map((r) => r.id), [first.credential.id]);
  for (const secrets of [[OLD], [NEW, OLD], [OLD, NEW], [NEW]]) assert.equal((await send(secrets)).status, 200, secrets.join("+"));
  // After the grace window only the new one works.
  const later = Date.now() + 24 * HOUR + 60_000;
  await expectError(await send([OLD], later), 401, "unauthorized");
  assert.equal((await send([NEW], later)).status, 200);
  assert.equal(await memories(w, "carol"), 6);
  // A secret for carol does not sign for dave.
  const body = JSON.stringify(makeMemory());
  const t = Math.floor(Date.now() / 1000);
  await expectError(await deliver(w, first.urls.memory, "dave", body, { "x-omi-signature": omiSignature(NEW, t, "dave", body) }), 401, "unauthorized");
  await expectError(await w.api("/api/admin/mentors/carol/credentials", json("POST", { kind: "signingSecret", secret: "sk_live_x" })), 400, "invalid_field");
});

test("the legacy token stays valid for every uid while set; the app's signing secret signs for any uid", async () => {
  const legacy = await startWorker();
  try {
    assert.equal((await postMemory(legacy, "anyone", makeMemory())).status, 200);
    assert.equal((await postMemory(legacy, "someone-else", makeMemory())).status, 200);
    await expectError(await postMemory(legacy, "anyone", makeMemory(), { token: "wrong-token" }), 401, "unauthorized");
  } finally {
    await legacy.dispose();
  }
  const APP = "whsec_the_programme_app_secret_0123456789";
  const signed = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "", OMI_SIGNING_SECRET: APP } });
  try {
    const body = JSON.stringify(makeMemory());
    const t = Math.floor(Date.now() / 1000);
    const res = await signed.fetch("/api/omi/memory?uid=installer", { method: "POST", headers: { "x-omi-signature": omiSignature(APP, t, "installer", body) }, body });
    assert.equal(res.status, 200);
    // A mentor token still works alongside the app's secret.
    const made = await credential(signed, "erin");
    assert.equal((await deliver(signed, made.urls.memory, "erin", JSON.stringify(makeMemory()))).status, 200);
    // A signature stale by a lifetime, or from the year -292 billion, is refused, not a crash.
    for (const stale of [t - 301, -9223372036854775808n, 9223372036854775807n]) {
      const r = await signed.fetch("/api/omi/memory?uid=installer", { method: "POST", headers: { "x-omi-signature": `t=${stale},v1=${"a".repeat(64)}` }, body });
      await expectError(r, 401, "unauthorized");
    }
  } finally {
    await signed.dispose();
  }
});

test("a signed transcript's session comes from its body, never from the unsigned ?session_id=", async () => {
  const APP = "whsec_the_programme_app_secret_0123456789";
  const s = await startWorker({ bindings: { OMI_SIGNING_SECRET: APP } });
  try {
    const batch = fixture("realtime_transcript.docs.json"); // a bare array: no session id inside
    const t = Math.floor(Date.now() / 1000);
    const sig = omiSignature(APP, t, "frank", batch);
    const res = await ok(await s.fetch("/api/omi/transcript?uid=frank&session_id=forged", { method: "POST", headers: { "x-omi-signature": sig }, body: batch }));
    assert.equal(res.session_id, "frank");
    assert.equal(await dbCount(s, "SELECT COUNT(*) FROM omi_transcript_batches WHERE session_id = 'forged'"), 0);
    const withSession = JSON.stringify({ session_id: "real", segments: JSON.parse(batch) });
    const res2 = await ok(await s.fetch("/api/omi/transcript?uid=frank&session_id=forged", { method: "POST", headers: { "x-omi-signature": omiSignature(APP, t, "frank", withSession) }, body: withSession }));
    assert.equal(res2.session_id, "real");
    // A token delivery's URL is its credential: its ?session_id= holds.
    const made = await credential(s, "gina");
    const u = new URL(made.urls.transcript);
    const res3 = await ok(await s.fetch(`${u.pathname}${u.search}&uid=gina&session_id=by-url`, { method: "POST", body: batch }));
    assert.equal(res3.session_id, "by-url");
  } finally {
    await s.dispose();
  }
});

test("a 100 MB chunked webhook body without Content-Length is answered 413 while the isolate stays under twice the limit", async () => {
  const LIMIT = 8 * 1024 * 1024; // MAX_BODY_BYTES' default
  const s = await startWorker({ inspector: true });
  const insp = await Inspector.attach(s.inspectorPort);
  try {
    // Warm the isolate (wasm instantiated, allocator set up) with an ordinary delivery.
    assert.equal((await postMemory(s, "warm", makeMemory())).status, 200);
    const wasmBefore = await insp.wasmMemoryBytes();
    const jsBefore = await insp.jsMemory();
    const poll = insp.pollJsMemory();
    const origin = new URL(await s.mf.ready);
    const total = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 0x7b);
    const { status, sent, text } = await new Promise((resolve, reject) => {
      let sent = 0;
      let answered = null;
      const req = http.request(
        { host: origin.hostname, port: origin.port, method: "POST", path: `/api/omi/memory?uid=huge&token=${WEBHOOK_TOKEN}`, agent: false,
          headers: { "content-type": "application/json", "transfer-encoding": "chunked" } },
        (res) => {
          const parts = [];
          res.on("data", (c) => parts.push(c));
          res.on("end", () => {
            answered = { status: res.statusCode, sent, text: Buffer.concat(parts).toString() };
            resolve(answered);
          });
        },
      );
      req.on("error", (e) => (answered ? undefined : e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e)));
      const pump = () => {
        while (!answered && sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
    const js = await poll.stop();
    const wasmAfter = await insp.wasmMemoryBytes();
    assert.equal(status, 413, text);
    assert.equal(JSON.parse(text).error.code, "payload_too_large");
    const isolate = Math.max(0, js.peak - jsBefore) + (wasmAfter - wasmBefore);
    console.log(`100 MB chunked body: sent ${(sent / 1048576).toFixed(0)} MiB before the 413; isolate grew ${(isolate / 1048576).toFixed(1)} MiB ` +
      `(JS heap + ArrayBuffers peak +${((js.peak - jsBefore) / 1048576).toFixed(1)} MiB over ${js.polls} polls, wasm memory +${((wasmAfter - wasmBefore) / 1048576).toFixed(1)} MiB)`);
    assert.ok(js.polls > 0, "the inspector answered while the body streamed");
    assert.ok(isolate < 2 * LIMIT, `the isolate grew ${isolate} bytes for a ${total}-byte body (limit ${LIMIT})`);
    assert.ok(wasmAfter - wasmBefore <= 2 * LIMIT);
    assert.equal(await memories(s, "huge"), 0);
  } finally {
    insp.close();
    await s.dispose();
  }
});
