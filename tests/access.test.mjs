// Access control through workerd: API keys (hash only, shown once, revoked on the next request),
// the generated walk of every route the router serves with every kind of credential, a mentor
// key against every route that could leak another mentor's data, /api/me, the audit log, the
// failed-authentication limiter, and the headers of downloads and of the dashboard.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, expectError, ok, json, at, API_TOKEN, WEBHOOK_TOKEN, sha256, listKeys } from "./helpers/worker.mjs";
import { makeMemory, postMemory, fixture } from "./helpers/omi.mjs";
import { createKey, withKey, decide } from "./helpers/access.mjs";

const DAY = 86_400_000;
let w;
before(async () => {
  // The chat tools answer 503 without a secret; with one, an unsigned call is a 401 like any
  // other protected route's.
  w = await startWorker({ bindings: { OMI_TOOLS_SECRET: "whsec_access_walk_tools_secret" } });
});
after(() => w?.dispose());

async function until(fn, ms = 3000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("a key's secret is shown once and stored as a hash; lists show its prefix; revocation holds on the next request", async () => {
  const created = await ok(await w.api("/api/admin/keys", json("POST", { name: "alice's dashboard", scopes: ["omi:read:alice"], expiresInDays: 30 })), 201);
  const secret = created.secret;
  assert.match(secret, /^r2d1_[a-z2-7]{8}_[a-z2-7]{52}$/);
  assert.equal(created.key.prefix, secret.slice(5, 13));
  assert.deepEqual(created.key.scopes, ["omi:read:alice"]);
  assert.equal(created.key.status, "active");
  assert.ok(created.key.expiresAt > Date.now() + 29 * DAY);

  const row = await w.db.prepare("SELECT * FROM api_keys WHERE prefix = ?").bind(created.key.prefix).first();
  assert.equal(row.hash, sha256(secret));
  assert.ok(!JSON.stringify(row).includes(secret.slice(14)), "the secret is nowhere in D1");
  assert.equal(row.created_by, "API_TOKEN");

  const list = await ok(await w.api("/api/admin/keys"));
  const listed = list.keys.find((k) => k.prefix === created.key.prefix);
  assert.equal(listed.name, "alice's dashboard");
  assert.ok(!JSON.stringify(list).includes(secret.slice(14)), "lists never carry a secret");

  const alice = withKey(w, secret);
  assert.equal((await alice("/api/omi/logs?userId=alice")).status, 200);
  await until(async () => (await w.db.prepare("SELECT last_used_at FROM api_keys WHERE prefix = ?").bind(created.key.prefix).first()).last_used_at);
  assert.ok((await w.db.prepare("SELECT last_used_at FROM api_keys WHERE prefix = ?").bind(created.key.prefix).first()).last_used_at > 0);
  const denied = await expectError(await alice("/api/omi/logs?userId=bob"), 403, "forbidden");
  assert.equal(denied.error.scope, "omi:read:bob");
  assert.match(denied.error.message, /omi:read:bob/);

  const revoked = await ok(await w.api(`/api/admin/keys/${created.key.prefix}`, { method: "DELETE" }));
  assert.equal(revoked.key.status, "revoked");
  await expectError(await alice("/api/omi/logs?userId=alice"), 401, "unauthorized");
  // Tampered: the right prefix with another secret, or a truncated key.
  await expectError(await withKey(w, secret.slice(0, -1) + (secret.endsWith("a") ? "b" : "a"))("/api/omi/users"), 401, "unauthorized");
  await expectError(await withKey(w, secret.slice(0, -2))("/api/omi/users"), 401, "unauthorized");
  await expectError(await w.api("/api/admin/keys/zzzzzzzz", { method: "DELETE" }), 404, "not_found");
  await expectError(await w.api("/api/admin/keys/NOPE", { method: "DELETE" }), 400, "invalid_field");
});

test("bad key requests are 400s naming the field; expired keys are 401", async () => {
  for (const [body, field] of [
    [{ name: "", scopes: ["admin"] }, "name"],
    [{ name: "x", scopes: [] }, "scopes"],
    [{ name: "x", scopes: ["omi:fly"] }, "scopes"],
    [{ name: "x", scopes: ["omi:read:a/b"] }, "scopes"],
    [{ name: "x", scopes: ["admin"], expiresInDays: 0 }, "expiresInDays"],
  ]) {
    const e = await expectError(await w.api("/api/admin/keys", json("POST", body)), 400, "invalid_field");
    assert.ok(e.error.message.startsWith(field), `${JSON.stringify(body)}: ${e.error.message}`);
  }
  await expectError(await w.api("/api/admin/keys", json("POST", { name: "x", scopes: ["admin"], secret: "mine" })), 400, "invalid_json");
  const k = await createKey(w, ["omi:read"], { expiresInDays: 1 });
  assert.equal((await withKey(w, k.secret)("/api/omi/users")).status, 200);
  await expectError(await withKey(w, k.secret)("/api/omi/users", { headers: at(Date.now() + 2 * DAY) }), 401, "unauthorized");
  const listed = (await ok(await w.api("/api/admin/keys", { headers: at(Date.now() + 2 * DAY) }))).keys.find((x) => x.prefix === k.prefix);
  assert.equal(listed.status, "expired");
});

test("/api/me says what a key reaches, per capability", async () => {
  const boot = await ok(await w.api("/api/me"));
  assert.equal(boot.credential, "bootstrap");
  assert.deepEqual(boot.scopes, ["admin"]);
  for (const cap of ["admin", "omi:read", "apps:write", "storage:admin"]) assert.equal(boot.can[cap], "all");
  const k = await createKey(w, ["omi:read:alice", "apps:write:demo"], { name: "mixed" });
  const me = await ok(await withKey(w, k.secret)("/api/me"));
  assert.equal(me.credential, "apiKey");
  assert.equal(me.prefix, k.prefix);
  assert.equal(me.name, "mixed");
  assert.deepEqual(me.can["omi:read"], ["alice"]);
  assert.deepEqual(me.can["omi:export"], ["alice"]);
  assert.deepEqual(me.can["apps:read"], ["demo"]);
  assert.equal(me.can["storage:admin"], null);
  assert.equal(me.can.admin, null);
  assert.equal(me.legacyWebhookToken, true);
  await expectError(await w.fetch("/api/me"), 401, "unauthorized");
});

// --- the generated walk: every served route, every kind of credential -------------------------

const SAMPLE_PATH = {
  uid: "alice",
  app: "demo",
  path: "walk.txt",
  version: "1",
  other: "1",
  memoryId: "m1",
  sessionId: "s1",
  date: "2025-01-01",
  prefix: "zzzzzzzz",
  id: "999999",
  name: "no-such-job",
  personId: "p1",
};
const SCOPES = [
  ["admin"],
  ["omi:read"],
  ["omi:read:alice"],
  ["omi:read:bob"],
  ["omi:export"],
  ["omi:export:alice"],
  ["omi:write"],
  ["apps:read"],
  ["apps:read:demo"],
  ["apps:write"],
  ["apps:write:demo"],
  ["apps:write:other"],
  ["storage:admin"],
];

function fill(template, values) {
  return template.replace(/\{(\w+)\+?\}/g, (_, name) => encodeURIComponent(values[name]).replace(/%2F/g, "/"));
}

test("the generated walk: every route the router serves answers 401/403/2xx as the scope table says", async () => {
  const served = await ok(await w.api("/api/__test/access-table"));
  const missing = served.filter((r) => !r.rule).map((r) => `${r.method} ${r.template}`);
  assert.deepEqual(missing, [], "every served route has a rule in access::table");
  assert.ok(served.length >= 60, `${served.length} routes`);

  const revoked = await createKey(w, ["admin"], { name: "walk revoked" });
  await ok(await w.api(`/api/admin/keys/${revoked.prefix}`, { method: "DELETE" }));
  const expired = await createKey(w, ["admin"], { name: "walk expired", expiresInDays: 1 });
  const later = at(Date.now() + 2 * DAY);
  const keys = [];
  for (const scopes of SCOPES) keys.push({ scopes, secret: (await createKey(w, scopes, { name: `walk ${scopes}` })).secret });

  const failures = [];
  let checked = 0;
  const send = async (route, url, headers) => {
    const body = ["GET", "HEAD", "DELETE"].includes(route.method) ? undefined : "not json";
    const res = await w.fetch(url, { method: route.method, headers: { "content-type": "application/json", ...headers }, body });
    const text = await res.text();
    checked++;
    return { status: res.status, text };
  };
  const expect = (what, got, want) => {
    if (!want(got.status)) failures.push(`${what}: ${got.status} ${got.text.slice(0, 140)}`);
  };

  for (const route of served) {
    const kind = route.rule.access.kind;
    if (kind === "testOnly") continue;
    const path = fill(route.template, SAMPLE_PATH);
    const queries = [{}];
    if (kind === "key" && route.rule.access.scopedBy?.by === "query") queries.push({ [route.rule.access.scopedBy.param]: "bob" });
    if (kind === "webhook" || route.template === "/api/omi/setup" || route.template === "/api/omi/enroll") queries[0] = { uid: "alice" };
    for (const query of queries) {
      const url = `${path}${Object.keys(query).length ? `?${new URLSearchParams(query)}` : ""}`;
      const what = (cred) => `${route.method} ${url} with ${cred}`;
      if (kind === "open" && route.template.startsWith("/api/signed/")) {
        // Signed URLs (issue 13): the HMAC in the query is the credential, so without one it is
        // 401 whatever key comes along (files-lifecycle.test.mjs fetches with real signatures).
        expect(what("no signature"), await send(route, url, {}), (s) => s === 401);
        expect(what("no signature, an admin key"), await send(route, url, { authorization: `Bearer ${keys[0].secret}` }), (s) => s === 401);
        continue;
      }
      if (kind === "open") {
        expect(what("nothing"), await send(route, url, {}), (s) => s !== 401 && s !== 403 && s < 500);
        continue;
      }
      // No credential, a wrong one, a revoked key, an expired key: 401 on every protected route.
      expect(what("no credential"), await send(route, url, {}), (s) => s === 401);
      expect(what("a wrong token"), await send(route, url, { authorization: "Bearer wrong-token-0123456789" }), (s) => s === 401);
      expect(what("a revoked key"), await send(route, url, { authorization: `Bearer ${revoked.secret}` }), (s) => s === 401);
      expect(what("an expired key"), await send(route, url, { authorization: `Bearer ${expired.secret}`, ...later }), (s) => s === 401);
      if (kind === "webhook" || kind === "omiTool") {
        // API keys are not webhook credentials, whatever their scopes.
        expect(what("an admin key"), await send(route, url, { authorization: `Bearer ${keys[0].secret}` }), (s) => s === 401);
        continue;
      }
      const access = kind === "liveSocket" ? { needs: "scope", ...route.rule.access } : route.rule.access;
      for (const { scopes, secret } of keys) {
        const d = decide(access, scopes, { path: SAMPLE_PATH, query });
        const got = await send(route, url, { authorization: `Bearer ${secret}` });
        if (d.allow) {
          expect(what(scopes.join(" ")), got, (s) => s !== 401 && s !== 403 && s < 500);
        } else {
          expect(what(`${scopes.join(" ")} (must name ${d.missing})`), got, (s) => s === 403 && JSON.parse(got.text).error.scope === d.missing);
        }
      }
      expect(what("API_TOKEN"), await send(route, url, { authorization: `Bearer ${API_TOKEN}` }), (s) => s !== 401 && s !== 403 && s < 500);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${checked} requests answered otherwise than the table says`);
  assert.ok(checked > 800, `${checked} requests`);
});

// --- a mentor key against every route that could leak another mentor ---------------------------

test("a mentor key cannot obtain another mentor's data through any route", async () => {
  const v = await startWorker();
  try {
    const mem = (uid, id, word) => makeMemory({ id, title: `${word} session`, text: `We talked about ${word} and goals`, created_at: "2025-03-0" + (id.endsWith("2") ? "2" : "1") + "T10:00:00Z" });
    for (const [uid, word] of [["alice", "aardvark"], ["bob", "bumblebee"]]) {
      for (const n of [1, 2]) assert.equal((await postMemory(v, uid, mem(uid, `${uid}-m${n}`, word))).status, 200);
      // a second version of the first memory
      assert.equal((await postMemory(v, uid, { ...mem(uid, `${uid}-m1`, word), discarded: false, extra: 1 })).status, 200);
      assert.equal((await v.fetch(`/api/omi/transcript?uid=${uid}&session_id=s-${uid}&token=${WEBHOOK_TOKEN}`, { method: "POST", body: fixture("realtime_transcript.docs.json") })).status, 200);
      const summary = JSON.parse(fixture("day_summary.docs.json"));
      assert.equal((await v.fetch(`/api/omi/day-summary?uid=${uid}&token=${WEBHOOK_TOKEN}`, { method: "POST", body: JSON.stringify(summary) })).status, 200);
    }
    const date = (await v.db.prepare("SELECT date FROM omi_day_summaries WHERE user_id = 'bob'").first()).date;
    const k = await createKey(v, ["omi:read:alice"]);
    const alice = withKey(v, k.secret);
    const refused = async (path, scope = "omi:read:bob", init = {}) => {
      const e = await expectError(await alice(path, init), 403, "forbidden");
      assert.equal(e.error.scope, scope, path);
    };

    // Listing and searching: without userId only alice's; naming bob is refused.
    const logs = await ok(await alice("/api/omi/logs?limit=100&include_discarded=1"));
    assert.deepEqual([...new Set(logs.logs.map((l) => l.userId))], ["alice"]);
    assert.equal(logs.total, 2);
    const full = await ok(await alice("/api/omi/logs?full=1"));
    assert.ok(full.logs.every((l) => l.userId === "alice" && l.memory));
    assert.equal((await ok(await alice("/api/omi/logs?q=bumblebee"))).logs.length, 0, "search never finds bob's words");
    assert.equal((await ok(await alice("/api/omi/logs?q=aardvark"))).logs.length, 2);
    await refused("/api/omi/logs?userId=bob");
    await refused("/api/omi/logs?userId=bob&userId=alice");
    assert.deepEqual([...new Set((await ok(await alice("/api/omi/logs?userId=alice&userId=bob"))).logs.map((l) => l.userId))], ["alice"], "the first userId is the one checked and served");
    // A memory by id and its versions; percent-encoding changes nothing.
    assert.equal((await alice("/api/omi/logs/alice/alice-m1")).status, 200);
    await refused("/api/omi/logs/bob/bob-m1");
    await refused("/api/omi/logs/b%6Fb/bob-m1");
    await refused("/api/omi/logs/bob/bob-m1?version=1");
    await refused("/api/omi/logs/bob/bob-m1/versions");
    // Transcripts and day summaries.
    assert.equal((await alice("/api/omi/transcripts/alice")).status, 200);
    await refused("/api/omi/transcripts/bob");
    await refused("/api/omi/transcripts/bob/s-bob");
    await refused(`/api/omi/day-summaries/bob/${date}`);
    // Mentors, stats, analytics, export: aggregates too.
    assert.deepEqual((await ok(await alice("/api/omi/users"))).users.map((u) => u.userId), ["alice"]);
    assert.equal((await alice("/api/omi/users/alice/stats")).status, 200);
    await refused("/api/omi/users/bob/stats", "omi:export:bob");
    const daily = await ok(await alice("/api/omi/analytics/daily?from=2025-03-01&to=2025-03-31"));
    assert.equal(daily.totalMemories, 2, "the daily totals count alice's memories only");
    await refused("/api/omi/analytics/daily?from=2025-03-01&to=2025-03-31&userId=bob", "omi:export:bob");
    const exported = await (await alice("/api/omi/export?format=ndjson")).text();
    const lines = exported.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.ok(lines.every((l) => l.userId === "alice"));
    const csv = await (await alice("/api/omi/export?format=csv")).text();
    assert.ok(!csv.includes("bob"), "the CSV export has no row of bob");
    await refused("/api/omi/export?userId=bob", "omi:export:bob");
    // The programme's view (issue 14): analytics, linked transcripts, the archive, exports with
    // content, the directory and the Mentors page's activity.
    for (const [id, name, uids] of [["p-alice", "Alice A.", ["alice", "alice-old"]], ["p-bob", "Bob B.", ["bob"]]]) {
      await ok(await v.api(`/api/omi/directory/${id}`, json("PUT", { name, cohort: "2025-A", mentees: [`${name} mentee`], uids })));
    }
    assert.equal((await alice("/api/omi/logs/alice/alice-m1/analytics")).status, 200);
    await refused("/api/omi/logs/bob/bob-m1/analytics");
    assert.equal((await alice("/api/omi/logs/alice/alice-m1/transcript")).status, 200);
    await refused("/api/omi/logs/bob/bob-m1/transcript");
    assert.equal((await ok(await alice("/api/omi/users/alice/analytics?from=2025-03-01&to=2025-03-31"))).memories, 2);
    await refused("/api/omi/users/bob/analytics", "omi:export:bob");
    const archive = await alice("/api/omi/users/alice/archive?format=tar");
    assert.equal(archive.status, 200);
    const tar = Buffer.from(await archive.arrayBuffer()).toString("latin1");
    assert.ok(tar.includes("aardvark") && !tar.includes("bumblebee"), "alice's archive holds alice's memories only");
    await refused("/api/omi/users/bob/archive");
    const withContent = (await (await alice("/api/omi/export?format=ndjson&include=memory,transcript")).text()).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(withContent.length, 2);
    assert.ok(withContent.every((l) => l.userId === "alice" && l.memory && !JSON.stringify(l).includes("bumblebee")));
    // The route's own rule (omi:export) is checked first, by the router.
    await refused("/api/omi/export?format=ndjson&include=memory&userId=bob", "omi:export:bob");
    // Content is what omi:read guards: an export-only key gets the metadata, not the memories.
    const exporter = withKey(v, (await createKey(v, ["omi:export:alice"])).secret);
    assert.equal((await exporter("/api/omi/export?format=ndjson")).status, 200);
    // Without userId the key reads no mentor at all, so the scope named is the whole one.
    assert.equal((await expectError(await exporter("/api/omi/export?format=ndjson&include=memory"), 403, "forbidden")).error.scope, "omi:read");
    assert.equal((await expectError(await exporter("/api/omi/export?format=ndjson&include=transcript&userId=alice"), 403, "forbidden")).error.scope, "omi:read:alice");
    // The directory and the Mentors page: alice's entry, with her uids only; nobody else's.
    const dir = await ok(await alice("/api/omi/directory"));
    assert.deepEqual(dir.people.map((p) => [p.id, p.uids]), [["p-alice", ["alice"]]], "a person's other uids stay hidden too");
    assert.deepEqual(dir.unassigned, []);
    assert.ok(!JSON.stringify(dir).includes("Bob"));
    const programme = await ok(await alice("/api/omi/programme?weeks=4&inactive_days=7"));
    assert.deepEqual(programme.mentors.map((m) => m.name), ["Alice A."]);
    assert.ok(!JSON.stringify(programme).includes("bob") && !JSON.stringify(programme).includes("Bob"));
    const everyone = await ok(await v.api("/api/omi/programme?weeks=4&inactive_days=7"));
    assert.deepEqual(everyone.mentors.map((m) => m.name).sort(), ["Alice A.", "Bob B."]);
    await refused("/api/omi/directory/p-bob", "omi:write", json("PUT", { name: "Mallory", uids: ["bob"] }));
    await refused("/api/omi/directory/p-bob", "omi:write", { method: "DELETE" });
    // Operator routes are not a mentor's.
    await refused("/api/admin/consistency", "storage:admin");
    await refused("/api/admin/jobs", "storage:admin");
    await refused("/api/omi/users/bob", "omi:write", { method: "DELETE" });
    // Nothing of bob's was touched by any of it.
    assert.equal((await v.db.prepare("SELECT COUNT(*) AS n FROM omi_memories WHERE user_id = 'bob'").first()).n, 2);
  } finally {
    await v.dispose();
  }
});

// --- audit ----------------------------------------------------------------------------------------

test("the audit log records writes, deletes, key changes and refusals of valid keys, never reads; filters and pages", async () => {
  const v = await startWorker();
  try {
    const writer = await createKey(v, ["apps:write:demo"], { name: "writer" });
    const k = withKey(v, writer.secret);
    await ok(await k("/api/apps/demo/files/a.txt", { method: "PUT", body: "one" }), 201);
    assert.equal(await (await k("/api/apps/demo/files/a.txt")).text(), "one");
    await expectError(await k("/api/apps/other/files/a.txt", { method: "PUT", body: "x" }), 403, "forbidden");
    await expectError(await k("/api/apps/demo/files/a.txt", { method: "PUT", body: "x", headers: { "if-match": `"${"0".repeat(64)}"` } }), 412);
    assert.equal((await k("/api/apps/demo/files/a.txt", { method: "DELETE" })).status, 204);
    await ok(await v.api(`/api/admin/keys/${writer.prefix}`, { method: "DELETE" }));
    await expectError(await v.fetch("/api/apps/demo/files/b.txt", { method: "PUT", body: "x" }), 401);

    const rows = await until(async () => {
      const r = (await v.db.prepare("SELECT key_prefix, method, route, target, outcome, status FROM audit_log ORDER BY id").all()).results;
      return r.length >= 6 ? r : null;
    });
    const plain = rows.map((r) => `${r.key_prefix} ${r.method} ${r.route} ${r.target} ${r.outcome} ${r.status}`);
    assert.deepEqual(plain, [
      "API_TOKEN POST /api/admin/keys  ok 201",
      `${writer.prefix} PUT /api/apps/{app}/files/{path+} app=demo path=a.txt ok 201`,
      `${writer.prefix} PUT /api/apps/{app}/files/{path+} app=other path=a.txt denied 403`,
      `${writer.prefix} PUT /api/apps/{app}/files/{path+} app=demo path=a.txt rejected 412`,
      `${writer.prefix} DELETE /api/apps/{app}/files/{path+} app=demo path=a.txt ok 204`,
      `API_TOKEN DELETE /api/admin/keys/{prefix} prefix=${writer.prefix} ok 200`,
    ]);

    const page1 = await ok(await v.api("/api/admin/audit?limit=2"));
    assert.equal(page1.entries.length, 2);
    assert.equal(page1.entries[0].route, "/api/admin/keys/{prefix}", "newest first");
    const page2 = await ok(await v.api(`/api/admin/audit?limit=2&cursor=${page1.nextCursor}`));
    const page3 = await ok(await v.api(`/api/admin/audit?limit=2&cursor=${page2.nextCursor}`));
    assert.equal(new Set([...page1.entries, ...page2.entries, ...page3.entries].map((e) => e.id)).size, 6);
    // GET /api/admin/audit itself is a read: the reads above added nothing.
    assert.equal((await ok(await v.api("/api/admin/audit?limit=200"))).entries.length, 6);
    const denied = await ok(await v.api("/api/admin/audit?outcome=denied"));
    assert.deepEqual(denied.entries.map((e) => e.status), [403]);
    const byKey = await ok(await v.api(`/api/admin/audit?key=${writer.prefix}`));
    assert.equal(byKey.entries.length, 4);
    const byRoute = await ok(await v.api(`/api/admin/audit?route=${encodeURIComponent("/api/admin/keys")}`));
    assert.equal(byRoute.entries.length, 1);
    await expectError(await v.api("/api/admin/audit?outcome=maybe"), 400, "invalid_field");
    await expectError(await v.api("/api/admin/audit?key=short"), 400, "invalid_field");

    // Retention: rows older than AUDIT_RETENTION_DAYS (365) go when the job runs.
    await v.db.prepare("INSERT INTO audit_log (at_ms, key_prefix, method, route, target, outcome, status) VALUES (?, 'API_TOKEN', 'PUT', '/api/x', '', 'ok', 200)").bind(Date.now() - 400 * DAY).run();
    const run = await ok(await v.api("/api/admin/jobs/access.audit_retention/run", { method: "POST" }));
    assert.equal(run.ok, true, JSON.stringify(run));
    assert.equal(run.report.deleted, 1);
    assert.equal((await v.db.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE at_ms < ?").bind(Date.now() - 365 * DAY).first()).n, 0);
    // The cron's job runs are recorded as `cron`.
    const worker = await v.mf.getWorker();
    await worker.scheduled({ cron: "*/15 * * * *" });
    const cron = await until(async () => (await ok(await v.api("/api/admin/audit?key=cron"))).entries.find((e) => e.target === "name=gc"));
    assert.equal(cron.method, "CRON");
  } finally {
    await v.dispose();
  }
});

// --- throttling ---------------------------------------------------------------------------------

test("failed authentications are limited per address; a blocked address cannot use a right guess; keys and other addresses are unaffected", async () => {
  const v = await startWorker({ authLimit: 3 });
  try {
    const from = (ip, extra = {}) => ({ "cf-connecting-ip": ip, ...extra });
    const key = await createKey(v, ["omi:read"]);
    for (let i = 0; i < 3; i++) await expectError(await v.fetch("/api/omi/users", { headers: from("203.0.113.7", { authorization: `Bearer guess-${i}` }) }), 401);
    const over = await expectError(await v.fetch("/api/omi/users", { headers: from("203.0.113.7", { authorization: "Bearer guess-4" }) }), 429, "rate_limited");
    assert.match(over.error.message, /failed authentications/);
    // The right API_TOKEN and the right webhook token from that address: still 429.
    const right = await v.fetch("/api/omi/users", { headers: from("203.0.113.7", { authorization: `Bearer ${API_TOKEN}` }) });
    assert.equal(right.status, 429);
    assert.equal(right.headers.get("retry-after"), "60");
    const hook = await postMemory(v, "u", makeMemory(), { headers: from("203.0.113.7") });
    assert.equal(hook.status, 429);
    // A 256-bit API key is not guessable: it is not blocked. Another address is not either.
    assert.equal((await v.fetch("/api/omi/users", { headers: from("203.0.113.7", { authorization: `Bearer ${key.secret}` }) })).status, 200);
    assert.equal((await v.fetch("/api/omi/users", { headers: from("198.51.100.2", { authorization: `Bearer ${API_TOKEN}` }) })).status, 200);
    assert.equal((await postMemory(v, "u", makeMemory(), { headers: from("198.51.100.2") })).status, 200);
  } finally {
    await v.dispose();
  }
});

test("the webhook has a ceiling over every uid, besides the per-uid limit", async () => {
  const v = await startWorker({ webhookCeiling: 3 });
  try {
    for (let i = 0; i < 3; i++) assert.equal((await postMemory(v, `ceiling-${i}`, makeMemory())).status, 200);
    const res = await postMemory(v, "ceiling-new", makeMemory());
    await expectError(res, 429, "rate_limited");
    assert.equal(res.headers.get("retry-after"), "60");
    assert.equal((await v.db.prepare("SELECT COUNT(*) AS n FROM omi_memories WHERE user_id = 'ceiling-new'").first()).n, 0);
  } finally {
    await v.dispose();
  }
});

test("/api/health warns about the shared webhook token and reports the limiter bindings", async () => {
  const h = await ok(await w.fetch("/api/health"));
  assert.equal(h.status, "ok");
  assert.deepEqual(h.limiters, { WEBHOOK_LIMITER: true, WEBHOOK_CEILING: true, AUTH_LIMITER: true });
  assert.equal(h.enrollment, "open");
  assert.ok(h.warnings.some((x) => /OMI_WEBHOOK_TOKEN is set: anyone holding it can write as any mentor/.test(x)), JSON.stringify(h.warnings));
  const bare = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "" }, limiters: false });
  try {
    const b = await ok(await bare.fetch("/api/health"));
    assert.deepEqual(b.limiters, { WEBHOOK_LIMITER: false, WEBHOOK_CEILING: false, AUTH_LIMITER: false });
    assert.ok(b.warnings.some((x) => x.includes("AUTH_LIMITER is missing")));
    assert.ok(!b.warnings.some((x) => x.includes("OMI_WEBHOOK_TOKEN")));
  } finally {
    await bare.dispose();
  }
});

// --- headers ----------------------------------------------------------------------------------------

test("downloads say nosniff; HTML, SVG, XML and JS downloads are sandboxed attachments", async () => {
  const files = {
    "evil.html": "<script>alert(1)</script>",
    "img/logo.svg": '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "feed.xml": "<?xml version='1.0'?><x/>",
    "app.js": "alert(1)",
    "notes.txt": "just text",
  };
  for (const [path, body] of Object.entries(files)) await ok(await w.api(`/api/apps/hdr/files/${path}`, { method: "PUT", body }), [200, 201]);
  for (const path of ["evil.html", "img/logo.svg", "feed.xml", "app.js"]) {
    const res = await w.api(`/api/apps/hdr/files/${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(res.headers.get("content-security-policy"), "sandbox", path);
    assert.equal(res.headers.get("content-disposition"), `attachment; filename="${path.split("/").pop()}"`, path);
  }
  const txt = await w.api("/api/apps/hdr/files/notes.txt");
  assert.equal(txt.headers.get("x-content-type-options"), "nosniff");
  assert.equal(txt.headers.get("content-security-policy"), null);
  assert.equal(txt.headers.get("content-disposition"), null);
  await ok(await w.api("/api/apps/hdr/versions", json("POST", { changelog: "v1" })), 201);
  const inVersion = await w.api("/api/apps/hdr/versions/1/files/evil.html");
  assert.equal(inVersion.headers.get("content-security-policy"), "sandbox");
  const archive = await w.api("/api/apps/hdr/versions/1/archive");
  assert.equal(archive.headers.get("x-content-type-options"), "nosniff");
  assert.match(archive.headers.get("content-disposition"), /^attachment;/);
  assert.equal((await postMemory(w, "hdr", makeMemory({ id: "hdr-1" }))).status, 200);
  assert.equal((await w.api("/api/omi/logs/hdr/hdr-1")).headers.get("x-content-type-options"), "nosniff");
  assert.equal((await w.api("/api/omi/export?userId=hdr")).headers.get("x-content-type-options"), "nosniff");
});

test("the dashboard's pages carry a CSP without inline script, frame-ancestors 'none' and no-referrer", async () => {
  for (const path of ["/", "/app.js", "/style.css"]) {
    const res = await w.fetch(path);
    assert.equal(res.status, 200, path);
    const csp = res.headers.get("content-security-policy") || "";
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.equal(res.headers.get("referrer-policy"), "no-referrer", path);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
  }
  const html = await (await w.fetch("/")).text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline <script> in the page");
  assert.doesNotMatch(html, /\son[a-z]+=/i, "no inline event handlers");
});

// --- bounded reads ------------------------------------------------------------------------------------

/**
 * POSTs (or PUTs) `chunks` × 16 KiB chunked, without Content-Length, over a real connection; the
 * worker may answer before the body is through (then the rest is not sent).
 */
function streamed(origin, method, path, chunks, headers = {}) {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: origin.hostname, port: origin.port, method, path, agent: false, headers: { "transfer-encoding": "chunked", ...headers } }, (res) => {
      const parts = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => {
        answered = true;
        resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(parts).toString() || "null") });
      });
    });
    req.on("error", (e) => (answered || e.code === "EPIPE" || e.code === "ECONNRESET" ? undefined : reject(e)));
    const chunk = Buffer.alloc(16 * 1024, 120);
    let sent = 0;
    const pump = () => {
      while (sent < chunks) {
        sent++;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

test("bodies over the limit are refused while streaming, with or without Content-Length, on every writing route", async () => {
  const v = await startWorker({ bindings: { MAX_BODY_BYTES: "65536" } });
  try {
    const origin = new URL(await v.mf.ready);
    const auth = { authorization: `Bearer ${API_TOKEN}` };
    for (const [method, path, headers] of [
      ["POST", `/api/omi/memory?uid=big&token=${WEBHOOK_TOKEN}`, { "content-type": "application/json" }],
      ["PUT", "/api/apps/big/files/x.bin", auth],
      ["POST", "/api/omi/import", { ...auth, "content-type": "application/x-ndjson" }],
    ]) {
      const r = await streamed(origin, method, path, 40, headers);
      assert.equal(r.status, 413, `${method} ${path}`);
      assert.equal(r.body.error.code, "payload_too_large");
    }
    await expectError(await v.fetch(`/api/omi/memory?uid=big&token=${WEBHOOK_TOKEN}`, { method: "POST", body: "x".repeat(70_000) }), 413, "payload_too_large");
    // Just under the limit, chunked: read whole (and then judged on its content).
    const fits = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(JSON.stringify(makeMemory({ id: "fits" })))); c.close(); } });
    assert.equal((await v.fetch(`/api/omi/memory?uid=big&token=${WEBHOOK_TOKEN}`, { method: "POST", body: fits, duplex: "half" })).status, 200);
    assert.deepEqual((await listKeys(v.bucket, "apps/big/")).length, 0);
    assert.equal((await v.db.prepare("SELECT COUNT(*) AS n FROM omi_memories WHERE user_id = 'big'").first()).n, 1);
  } finally {
    await v.dispose();
  }
});
