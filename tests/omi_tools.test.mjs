// Omi's chat tools through workerd: the manifest, each tool's answer for the fixed English and
// Spanish mentors, requests signed exactly as Omi's `v2` rule says (the signer is written
// here from that rule), and everything that must be refused: a tampered query or body, the
// wrong method, a stale or missing signature, a v1 signature, no secret configured. No tool
// can be made to answer with another mentor's data.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, json } from "./helpers/worker.mjs";
import { ENGLISH, SPANISH, ingestFixture, callTool, signV2, canonicalQuery } from "./helpers/programme.mjs";

const SECRET = "whsec_tools_test_secret_0123456789abcdef";
// Wednesday 29 January 2025, 12:00 UTC.
const JAN_29 = Date.UTC(2025, 0, 29, 12);
// Monday 17 March 2025, 12:00 UTC.
const MAR_17 = Date.UTC(2025, 2, 17, 12);

let w;
before(async () => {
  w = await startWorker({ bindings: { OMI_TOOLS_SECRET: SECRET } });
  await ingestFixture(w, ENGLISH);
  await ingestFixture(w, SPANISH);
});
after(async () => w?.dispose());

async function answer(res) {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["result"]);
  assert.equal(typeof body.result, "string");
  assert.ok(body.result.length <= 800, body.result);
  return body.result;
}

async function refused(res, status) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"], text);
  assert.equal(typeof body.error, "string");
  return body.error;
}

const post = (path, body, now = JAN_29, extra = {}) => callTool(w, { method: "POST", path, body: JSON.stringify(body), now, secret: SECRET, ...extra });
const get = (path, query, now = JAN_29, extra = {}) => callTool(w, { method: "GET", path, query, now, secret: SECRET, ...extra });

test("the signer written from Omi's rule reproduces the fixed vectors r2d1's unit tests were computed with", () => {
  // The same request the Rust tests sign: every canonical rule at once.
  const query = "uid=mentor%2D1&period=this+month&z=%7e&a=2&&a=1&app_id=app%20one&flag&name=Jos%C3%A9";
  assert.equal(canonicalQuery(query), "a=2&a=1&app_id=app%20one&flag=&name=Jos%C3%A9&period=this%20month&uid=mentor-1&z=~");
  const vector = signV2("whsec_r2d1_v2_vector", { t: 1750000000, delivery: "dlv_0001", method: "get", path: "/api/omi/tools/%68ours", query });
  assert.equal(vector, "bcb5f6d59e6e8f265f7882cedf2634ca5a733786621b7f7f49f3262e37636529");
  const postVector = signV2("whsec_r2d1_v2_vector", {
    t: 1750000000,
    delivery: "dlv_0002",
    method: "POST",
    path: "/api/omi/tools/search",
    body: '{"uid":"mentor-1","query":"Ana"}',
  });
  assert.equal(postVector, "701b7067fec69e862d5f2911b7336d2e1d20ca6b5178acebda3f42ab5cfc18a7");
});

test("the manifest lists the four tools with absolute endpoints, methods and parameters", async () => {
  const res = await w.fetch("/.well-known/omi-tools.json");
  const m = await ok(res);
  assert.deepEqual(m.tools.map((t) => [t.name, t.method, new URL(t.endpoint).pathname]), [
    ["search_mentorship_logs", "POST", "/api/omi/tools/search"],
    ["list_open_action_items", "GET", "/api/omi/tools/action-items"],
    ["summarize_sessions_with", "POST", "/api/omi/tools/sessions-with"],
    ["mentoring_hours", "GET", "/api/omi/tools/hours"],
  ]);
  for (const t of m.tools) {
    assert.equal(new URL(t.endpoint).origin, "http://r2d1.test");
    assert.equal(t.parameters.type, "object");
    assert.equal(t.auth_required, true);
  }
});

test("search: the mentor's own sessions, newest first, in the language of their logs", async () => {
  const en = await answer(await post("/api/omi/tools/search", { uid: ENGLISH.uid, app_id: "r2d1", tool_name: "search_mentorship_logs", query: "pricing" }));
  assert.equal(
    en,
    'Found 2 sessions matching "pricing":\n' +
      "- 21 Jan 2025 · Weekly check-in: Customers want an offline mode.\n" +
      "- 13 Jan 2025 · Pitch Deck Review with Ana: Ana's pitch deck is nearly ready; the pricing slide needs customer data.",
  );
  const ranged = await answer(await post("/api/omi/tools/search", { uid: ENGLISH.uid, query: "pricing", from: "2025-01-01", to: "2025-01-14" }));
  assert.match(ranged, /^Found 1 session matching "pricing" between 1 Jan 2025 and 14 Jan 2025:\n- 13 Jan 2025 · Pitch Deck Review/);
  const es = await answer(await post("/api/omi/tools/search", { uid: SPANISH.uid, query: "presupuesto" }, MAR_17));
  assert.equal(es, "Encontré 1 sesión sobre «presupuesto»:\n- 12 mar 2025 · Finanzas del equipo de Guadalajara: El equipo de Guadalajara tiene presupuesto para seis meses.");
  // When no session has every word, any of them will do.
  const loose = await answer(await post("/api/omi/tools/search", { uid: ENGLISH.uid, query: "what did I promise about hiring" }));
  assert.match(loose, /^Found 1 session matching "what did I promise about hiring":\n- 19 Jan 2025 · Hiring the first engineer/);
});

test("search and sessions never cross mentors: another mentor's words find nothing", async () => {
  assert.equal(await answer(await post("/api/omi/tools/search", { uid: ENGLISH.uid, query: "presupuesto" })), 'No sessions match "presupuesto" in your logs.');
  assert.equal(
    await answer(await post("/api/omi/tools/sessions-with", { uid: SPANISH.uid, person: "Ana" }, MAR_17)),
    "No encontré sesiones con Ana en tus registros.",
  );
  // A uid nobody has: empty answers, not someone else's.
  assert.equal(await answer(await get("/api/omi/tools/action-items", "uid=stranger")), "You have no open action items.");
  assert.equal(await answer(await get("/api/omi/tools/hours", "uid=stranger&period=this_year")), "You have no mentoring sessions logged between 1 Jan 2025 and 31 Dec 2025.");
});

test("sessions with a person or a team", async () => {
  assert.equal(
    await answer(await post("/api/omi/tools/sessions-with", { uid: ENGLISH.uid, person: "Ana" })),
    "You met Ana in 2 sessions; the last was on 19 Jan 2025:\n" +
      "- 19 Jan 2025 · Hiring the first engineer: Ana plans to hire a mobile engineer first.\n" +
      "- 13 Jan 2025 · Pitch Deck Review with Ana: Ana's pitch deck is nearly ready; the pricing slide needs customer data.",
  );
  assert.equal(
    await answer(await post("/api/omi/tools/sessions-with", { uid: SPANISH.uid, person: "el equipo de Guadalajara" }, MAR_17)),
    "Te reuniste con el equipo de Guadalajara en 1 sesión; la última fue el 12 mar 2025:\n" +
      "- 12 mar 2025 · Finanzas del equipo de Guadalajara: El equipo de Guadalajara tiene presupuesto para seis meses.",
  );
});

test("open action items, newest session first", async () => {
  assert.equal(
    await answer(await get("/api/omi/tools/action-items", `uid=${ENGLISH.uid}`)),
    "You have 2 open action items:\n" +
      '- Draft the engineer job post (from "Hiring the first engineer", 19 Jan 2025)\n' +
      '- Compare three pricing tiers with customer data (from "Pitch Deck Review with Ana", 13 Jan 2025)',
  );
  assert.equal(
    await answer(await get("/api/omi/tools/action-items", `uid=${SPANISH.uid}&limit=1`, MAR_17)),
    "Tienes 2 tareas pendientes:\n- Enviar el presupuesto a Jorge (de «Finanzas del equipo de Guadalajara», 12 mar 2025)\n…y 1 más.",
  );
});

test("mentoring hours for a period: hours per week and the mentor's share, hand-computed", async () => {
  assert.equal(
    await answer(await get("/api/omi/tools/hours", `uid=${ENGLISH.uid}&from=2025-01-01&to=2025-01-31`)),
    "You mentored 1.9 hours in 3 sessions between 1 Jan 2025 and 31 Jan 2025. You did 45% of the talking. " +
      "By week: 2025-W03 1.75 h, 2025-W04 0.15 h.",
  );
  assert.equal(
    await answer(await get("/api/omi/tools/hours", `uid=${SPANISH.uid}&period=this_month`, MAR_17)),
    "Diste 2 horas de mentoría en 2 sesiones entre el 1 mar 2025 y el 31 mar 2025. Hablaste el 49% del tiempo. " +
      "Por semana: 2025-W10 0.5 h, 2025-W11 1.5 h.",
  );
});

test("a tampered query or body, a wrong method, a stale t, v1 or no signature: 401 {error}, nothing answered", async () => {
  const query = `uid=${ENGLISH.uid}&period=this_month`;
  // Signed for this month, sent for last year.
  assert.match(await refused(await get("/api/omi/tools/hours", `uid=${ENGLISH.uid}&period=last_year`, JAN_29, { sign: { query } }), 401), /Signature/);
  // Signed for one mentor, the body swapped for another's uid.
  const body = JSON.stringify({ uid: ENGLISH.uid, query: "pricing" });
  await refused(await post("/api/omi/tools/search", { uid: SPANISH.uid, query: "pricing" }, JAN_29, { sign: { body } }), 401);
  // Signed as a GET, sent as a POST.
  await refused(await post("/api/omi/tools/search", { uid: ENGLISH.uid, query: "pricing" }, JAN_29, { sign: { method: "GET" } }), 401);
  // Signed for another tool's path.
  await refused(await get("/api/omi/tools/hours", query, JAN_29, { sign: { path: "/api/omi/tools/action-items" } }), 401);
  // 301 s old, and 301 s ahead.
  await refused(await get("/api/omi/tools/hours", query, JAN_29, { t: Math.floor(JAN_29 / 1000) - 301 }), 401);
  await refused(await get("/api/omi/tools/hours", query, JAN_29, { t: Math.floor(JAN_29 / 1000) + 301 }), 401);
  // The right HMAC under the v1 name, and no signature at all.
  const t = Math.floor(JAN_29 / 1000);
  const v2 = signV2(SECRET, { t, delivery: "d1", method: "GET", path: "/api/omi/tools/hours", query });
  await refused(await get("/api/omi/tools/hours", query, JAN_29, { headers: { "x-omi-delivery": "d1", "x-omi-signature": `t=${t},v1=${v2}` } }), 401);
  await refused(await callTool(w, { method: "GET", path: "/api/omi/tools/hours", query, now: JAN_29 }), 401);
  // Signed by the right secret but for another event.
  await refused(await get("/api/omi/tools/hours", query, JAN_29, { sign: { event: "memory_created" }, headers: { "x-omi-event": "memory_created" } }), 401);
  // Another secret.
  await refused(await callTool(w, { method: "GET", path: "/api/omi/tools/hours", query, now: JAN_29, secret: "whsec_someone_else" }), 401);
  // The equivalent spelling of the same query still verifies (canonical form).
  const respelled = await get("/api/omi/tools/hours", `period=this%5Fmonth&uid=${ENGLISH.uid}`, JAN_29, { sign: { query } });
  assert.match(await answer(respelled), /^You mentored/);
});

test("a wrong HTTP method is a 405 in Omi's shape; bad arguments are 400 naming them", async () => {
  const res = await callTool(w, { method: "GET", path: "/api/omi/tools/search", query: `uid=${ENGLISH.uid}&query=x`, now: JAN_29, secret: SECRET });
  assert.match(await refused(res, 405), /POST/);
  assert.equal(res.headers.get("allow"), "POST");
  assert.match(await refused(await post("/api/omi/tools/search", { uid: ENGLISH.uid }), 400), /^query/);
  assert.match(await refused(await get("/api/omi/tools/hours", `uid=${ENGLISH.uid}&period=fortnight`), 400), /^period/);
  assert.match(await refused(await post("/api/omi/tools/search", { query: "x" }), 400), /^uid/);
  // A uid in the query that disagrees with the body's is refused rather than guessed.
  const body = JSON.stringify({ uid: ENGLISH.uid, query: "pricing" });
  const both = await callTool(w, { method: "POST", path: "/api/omi/tools/search", query: `uid=${SPANISH.uid}`, body, now: JAN_29, secret: SECRET });
  assert.match(await refused(both, 400), /^uid/);
});

test("without a signing secret the tools refuse every call (503), while the manifest stays public", async () => {
  const bare = await startWorker();
  try {
    assert.match(await refused(await callTool(bare, { method: "GET", path: "/api/omi/tools/hours", query: "uid=u", now: JAN_29, secret: SECRET }), 503), /OMI_TOOLS_SECRET/);
    assert.equal((await bare.fetch("/.well-known/omi-tools.json")).status, 200);
  } finally {
    await bare.dispose();
  }
  // OMI_SIGNING_SECRET alone is the app's secret for both deliveries and tools.
  const shared = await startWorker({ bindings: { OMI_SIGNING_SECRET: SECRET } });
  try {
    assert.equal(await answer(await callTool(shared, { method: "GET", path: "/api/omi/tools/action-items", query: "uid=nobody", now: JAN_29, secret: SECRET })), "You have no open action items.");
  } finally {
    await shared.dispose();
  }
});

test("under OMI_ENROLLMENT=required only an enrolled mentor gets answers (401 before anything is read)", async () => {
  const app = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "", OMI_SIGNING_SECRET: SECRET, OMI_ENROLLMENT: "required" } });
  try {
    const hours = () => callTool(app, { method: "GET", path: "/api/omi/tools/hours", query: "uid=stranger-1&period=this%20month", now: JAN_29, secret: SECRET });
    assert.match(await refused(await hours(), 401), /not enrolled/);
    await ok(await app.api("/api/admin/enrollment/stranger-1", json("POST", { label: "Stranger" })));
    assert.match(await answer(await hours()), /no mentoring sessions/);
  } finally {
    await app.dispose();
  }
});
