// Live updates at the HTTP level: tickets, the WebSocket handshake's authentication, and the
// webhook's announcements (the browser side is in dashboard.test.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, expectError, API_TOKEN } from "./helpers/worker.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";
import { createKey } from "./helpers/access.mjs";

let w;
before(async () => {
  w = await startWorker();
});
after(() => w?.dispose());

async function ticket(bearer = API_TOKEN) {
  const res = await w.fetch("/api/live/ticket", { method: "POST", headers: { authorization: `Bearer ${bearer}` } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.protocol, "r2d1-live");
  // 2.{expiry}.{who}.{scopes}.{mac}: the key and its scopes travel signed (src/access/ticket.rs).
  assert.match(body.ticket, /^2\.\d+\.[kb][0-9a-f]+\.[A-Za-z0-9_-]+\.[0-9a-f]{64}$/);
  return body.ticket;
}

/** Opens /api/live with `headers`; returns { res, ws, messages }. */
async function open(headers) {
  const res = await w.fetch("/api/live", { headers: { upgrade: "websocket", ...headers } });
  if (res.status !== 101) return { res };
  const ws = res.webSocket;
  const messages = [];
  ws.addEventListener("message", (e) => messages.push(e.data));
  ws.accept();
  return { res, ws, messages };
}

async function until(fn, ms = 2000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

test("a ticket needs the API token", async () => {
  await expectError(await w.fetch("/api/live/ticket", { method: "POST" }), 401, "unauthorized");
  await expectError(await w.fetch("/api/live/ticket", { method: "POST", headers: { authorization: "Bearer nope" } }), 401, "unauthorized");
  await expectError(await w.api("/api/live/ticket"), 405);
});

test("the socket needs a valid ticket (as a subprotocol) or the Bearer token, never a URL parameter", async () => {
  await expectError((await open({})).res, 401, "unauthorized");
  await expectError((await open({ "sec-websocket-protocol": "r2d1-live, r2d1-ticket.1.00" })).res, 401, "unauthorized");
  const t = await ticket();
  const [v, exp, ...rest] = t.split(".");
  await expectError((await open({ "sec-websocket-protocol": `r2d1-live, r2d1-ticket.${v}.${Number(exp) + 1}.${rest.join(".")}` })).res, 401, "unauthorized");
  const res = await w.fetch(`/api/live?ticket=${t}&token=${API_TOKEN}`, { headers: { upgrade: "websocket" } });
  await expectError(res, 401, "unauthorized");
  await expectError(await w.api("/api/live"), 400, "upgrade_required");

  const byTicket = await open({ "sec-websocket-protocol": `r2d1-live, r2d1-ticket.${t}` });
  assert.equal(byTicket.res.status, 101);
  assert.equal(byTicket.res.headers.get("sec-websocket-protocol"), "r2d1-live");
  const byBearer = await open({ authorization: `Bearer ${API_TOKEN}` });
  assert.equal(byBearer.res.status, 101);
  byTicket.ws.close(1000);
  byBearer.ws.close(1000);
});

test("a stored memory is announced to every open socket; a duplicate is not; pings are answered", async () => {
  const a = await open({ "sec-websocket-protocol": `r2d1-live, r2d1-ticket.${await ticket()}` });
  const b = await open({ authorization: `Bearer ${API_TOKEN}` });
  assert.ok(await until(() => a.messages.length && b.messages.length), "hello");
  a.ws.send("ping");
  assert.ok(await until(() => a.messages.includes("pong")));

  const m = makeMemory({ title: "Announced" });
  assert.equal((await postMemory(w, "dora", m)).status, 200);
  const event = (msgs) => msgs.map((x) => JSON.parse(x === "pong" ? "{}" : x)).find((e) => e.type === "memory");
  assert.ok(await until(() => event(a.messages) && event(b.messages)), "both sockets hear about it");
  assert.deepEqual(
    { ...event(a.messages) },
    { type: "memory", userId: "dora", memoryId: m.id, title: "Announced", emoji: "🧭", category: "education", discarded: false, createdAt: new Date(m.created_at).toISOString() },
  );

  const before = a.messages.length;
  const dup = await postMemory(w, "dora", m);
  assert.equal((await dup.json()).duplicate, true);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.messages.length, before, "a duplicate delivery is not announced");
  a.ws.close(1000);
  b.ws.close(1000);
});

test("a mentor's socket hears only that mentor's memories; revoking its key closes it at the next broadcast", async () => {
  const alice = await createKey(w, ["omi:read:alice"]);
  const other = await createKey(w, ["omi:read:bob"]);
  const a = await open({ "sec-websocket-protocol": `r2d1-live, r2d1-ticket.${await ticket(alice.secret)}` });
  const byBearer = await open({ authorization: `Bearer ${other.secret}` });
  const admin = await open({ authorization: `Bearer ${API_TOKEN}` });
  assert.equal(a.res.status, 101);
  assert.equal(byBearer.res.status, 101);
  const memories = (msgs) => msgs.map((x) => (x === "pong" ? {} : JSON.parse(x))).filter((e) => e.type === "memory");
  const closed = (s) => new Promise((resolve) => s.ws.addEventListener("close", (e) => resolve(e.code)));
  const aClosed = closed(a);

  const forBob = makeMemory({ title: "Bob's" });
  assert.equal((await postMemory(w, "bob", forBob)).status, 200);
  assert.ok(await until(() => memories(admin.messages).length === 1 && memories(byBearer.messages).length === 1), "bob's event reaches the admin and bob's key");
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(memories(a.messages).length, 0, "alice's socket never hears about bob");

  const forAlice = makeMemory({ title: "Alice's" });
  assert.equal((await postMemory(w, "alice", forAlice)).status, 200);
  assert.ok(await until(() => memories(a.messages).length === 1), "alice's own event arrives");
  assert.equal(memories(a.messages)[0].memoryId, forAlice.id);
  assert.equal(memories(byBearer.messages).length, 1, "bob's key does not hear alice");

  // Revoked: the next broadcast closes the socket (4001) instead of sending to it.
  assert.equal((await w.api(`/api/admin/keys/${alice.prefix}`, { method: "DELETE" })).status, 200);
  assert.equal((await postMemory(w, "alice", makeMemory())).status, 200);
  // (Miniflare's client finishes the closing handshake about ten seconds later; a browser at once.)
  assert.equal(await Promise.race([aClosed, new Promise((r) => setTimeout(() => r("open"), 20_000))]), 4001);
  assert.equal(memories(a.messages).length, 1, "nothing more was sent to the revoked socket");
  // A revoked key gets no new ticket or socket either.
  await expectError(await w.fetch("/api/live/ticket", { method: "POST", headers: { authorization: `Bearer ${alice.secret}` } }), 401, "unauthorized");
  byBearer.ws.close(1000);
  admin.ws.close(1000);
});

test("a key without omi:read gets no ticket and no socket (403 naming the scope)", async () => {
  const apps = await createKey(w, ["apps:read"]);
  const r = await expectError(await w.fetch("/api/live/ticket", { method: "POST", headers: { authorization: `Bearer ${apps.secret}` } }), 403, "forbidden");
  assert.equal(r.error.scope, "omi:read");
  await expectError((await open({ authorization: `Bearer ${apps.secret}` })).res, 403, "forbidden");
});

test("a failing live hub never fails the webhook", async () => {
  const m = makeMemory({ title: "Stored anyway" });
  const res = await postMemory(w, "erin", m, { headers: { "X-R2D1-Fault": "live.notify" } });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).duplicate, false);
  const row = await w.db.prepare("SELECT title FROM omi_memories WHERE memory_id = ?").bind(m.id).first();
  assert.equal(row?.title, "Stored anyway");
});

test("the dashboard is served at / from static assets, bundled (no CDN)", async () => {
  const res = await w.fetch("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /text\/html/);
  const html = await res.text();
  assert.match(html, /<script type="module" src="\/app.js">/);
  assert.doesNotMatch(html, /https?:\/\//, "nothing loaded from another origin");
  for (const asset of ["/app.js", "/style.css"]) {
    const r = await w.fetch(asset);
    assert.equal(r.status, 200, asset);
    assert.doesNotMatch(await r.text(), /https?:\/\/(?!www\.w3\.org)/, `${asset} loads nothing from another origin`);
  }
  // API routes still reach the worker.
  assert.equal((await w.fetch("/api/health")).status, 200);
});
