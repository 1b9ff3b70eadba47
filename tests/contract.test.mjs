// The contract itself (openapi.json): well formed, every operation reachable in the worker,
// the response checker able to fail, and the inputs the contract tests found answered as 400s.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, API_TOKEN, WEBHOOK_TOKEN, listKeys } from "./helpers/worker.mjs";
import { DOC, operationFor, validateResponse } from "./helpers/contract.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";
import { signV2 } from "./helpers/programme.mjs";

/** The chat tools' secret of this worker: example calls to them are signed like Omi's. */
const TOOLS_SECRET = "whsec_contract_tools_secret_0123456789";

const METHODS = ["get", "head", "post", "put", "patch", "delete"];
const operations = Object.entries(DOC.paths).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((method) => ({ path, method, op: item[method] })),
);

function deref(node) {
  while (node && node.$ref) {
    node = node.$ref
      .slice(2)
      .split("/")
      .reduce((n, k) => n?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], DOC);
  }
  return node;
}

let w;
before(async () => {
  w = await startWorker({ bindings: { OMI_TOOLS_SECRET: TOOLS_SECRET } });
});
after(() => w?.dispose());

test("openapi.json: every $ref resolves and every operation says who may call it", () => {
  const refs = [];
  (function walk(n) {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === "object") {
      if (typeof n.$ref === "string") refs.push(n.$ref);
      Object.values(n).forEach(walk);
    }
  })(DOC);
  for (const ref of refs) assert.ok(deref({ $ref: ref }), `dangling ${ref}`);

  const ids = new Set();
  const schemes = Object.keys(DOC.components.securitySchemes);
  for (const { path, method, op } of operations) {
    const name = `${method.toUpperCase()} ${path}`;
    assert.ok(op.operationId && !ids.has(op.operationId), `${name}: operationId missing or repeated`);
    ids.add(op.operationId);
    assert.ok(["open", "webhook", "api", "omi-tool"].includes(op["x-r2d1-access"]), `${name}: x-r2d1-access`);
    const named = (op.security || []).flatMap((req) => Object.keys(req));
    for (const s of named) assert.ok(schemes.includes(s), `${name}: unknown security scheme ${s}`);
    const expected = { open: [], webhook: ["webhookToken", "webhookBearer", "omiSignature"], api: ["apiToken"], "omi-tool": ["omiV2Signature"] }[
      op["x-r2d1-access"]
    ];
    for (const s of expected) assert.ok(named.includes(s), `${name}: ${op["x-r2d1-access"]} access without ${s}`);
    if (op["x-r2d1-access"] === "open") assert.deepEqual(op.security, [], `${name}: open but secured`);
    for (const status of ["500", "502", "503"]) {
      if (path === "/api/health" || method === "head") continue; // health reports 503 as its own body
      assert.ok(op.responses[status], `${name}: ${status} undocumented`);
    }
    if (op["x-r2d1-access"] !== "open") assert.ok(op.responses["401"], `${name}: 401 undocumented`);
    for (const [status, raw] of Object.entries(op.responses)) {
      const res = deref(raw);
      assert.ok(res.description, `${name} ${status}: no description`);
      if (Number(status) >= 400 && method !== "head") {
        const schema = JSON.stringify(res.content?.["application/json"]?.schema ?? null);
        // Omi's chat tools fail in Omi's shape, `{"error": "text"}`.
        const shape = op["x-r2d1-access"] === "omi-tool" ? "ToolError" : "Error";
        assert.ok(schema.includes(`"#/components/schemas/${shape}"`), `${name} ${status}: not the error shape`);
      }
    }
    for (const raw of op.parameters || []) {
      const p = deref(raw);
      if (p.in === "path") assert.ok(path.includes(`{${p.name}}`), `${name}: path parameter ${p.name} not in the template`);
    }
    for (const [, param] of path.matchAll(/\{([^}]+)\}/g)) {
      assert.ok((op.parameters || []).some((raw) => deref(raw).in === "path" && deref(raw).name === param), `${name}: {${param}} undocumented`);
    }
  }
});

test("the response checker fails on what the document does not say", () => {
  const json = { "content-type": "application/json; charset=utf-8" };
  const health = JSON.stringify({ status: "ok", version: "0.1.0", r2: true, d1: true, schema_version: 5 });
  validateResponse("GET", "/api/health", 200, new Headers(json), health);
  const cases = [
    [["GET", "/api/health", 418, json, health], /status 418 is not documented/],
    [["GET", "/api/health", 200, { "content-type": "text/html" }, health], /content type "text\/html" is not documented/],
    [["GET", "/api/health", 200, json, health.replace('"ok"', '"fine"')], /\/status must be equal to one of the allowed values/],
    [["GET", "/api/health", 200, json, health.replace(',"schema_version":5', "")], /must have required property 'schema_version'/],
    [["GET", "/api/health", 200, json, "{"], /body is not JSON/],
    [["GET", "/api/omi/logs", 401, json, JSON.stringify({ error: { code: "nope", message: "x" } })], /\/error\/code must be equal to one of the allowed values/],
    [["GET", "/api/nowhere", 200, json, "{}"], /no path of the document matches/],
    [["PATCH", "/api/omi/logs", 200, json, "{}"], /no PATCH operation on \/api\/omi\/logs/],
    [["GET", "/api/omi/logs/u/m", 200, json, "{}"], /required header ETag is missing/],
    [["DELETE", "/api/apps/demo/files/a.txt", 204, {}, "x"], /must have no body/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => validateResponse(args[0], args[1], args[2], new Headers(args[3]), args[4]), message, args.join(" "));
  }
  // Streamed bodies are judged by their content type alone.
  const csv = { "content-type": "text/csv; charset=utf-8", "content-disposition": 'attachment; filename="omi-export.csv"' };
  validateResponse("GET", "/api/omi/export", 200, new Headers(csv), undefined);
  assert.throws(() => validateResponse("GET", "/api/omi/export", 200, new Headers({ ...csv, "content-type": "text/plain" }), undefined), /content type/);
});

/** A request for `op` built from the document's own examples. */
function exampleRequest(path, method, op) {
  const params = (op.parameters || []).map(deref);
  const value = (p) => p.example ?? deref(p.schema)?.example ?? "x";
  let url = path.replace(/\{([^}]+)\}/g, (_, name) => encodeURIComponent(String(value(params.find((p) => p.name === name)))));
  const query = new URLSearchParams();
  for (const p of params) if (p.in === "query" && p.required) query.set(p.name, String(value(p)));
  const headers = {};
  if (op["x-r2d1-access"] === "webhook") query.set("token", WEBHOOK_TOKEN);
  if (op["x-r2d1-access"] === "api") headers.authorization = `Bearer ${API_TOKEN}`;
  if ([...query].length) url += `?${query}`;
  let body;
  const content = deref(op.requestBody)?.content;
  if (content) {
    const [type, media] = Object.entries(content)[0];
    headers["content-type"] = type;
    const example = media.example ?? {};
    if (type === "application/x-ndjson") body = example.map((line) => JSON.stringify(line)).join("\n");
    else if (type === "application/json") body = JSON.stringify(example);
    else body = "example bytes";
  }
  if (op["x-r2d1-access"] === "omi-tool") {
    // Signed as Omi signs a chat-tool call (the `v2` scheme), now.
    const t = Math.floor(Date.now() / 1000);
    const delivery = `contract-${op.operationId}`;
    const signature = signV2(TOOLS_SECRET, { t, delivery, method, path: url.split("?")[0], query: query.toString(), body: body ?? "" });
    Object.assign(headers, { "x-omi-delivery": delivery, "x-omi-event": "chat_tool", "x-omi-signature": `t=${t},v2=${signature}` });
  }
  return { url, init: { method: method.toUpperCase(), headers, body } };
}

test("every documented operation is routed by the worker, answering as documented with its examples", async () => {
  // Something for the reads to find: the example ids of the document.
  const seed = makeMemory({ id: "memory_abc123" });
  assert.equal((await postMemory(w, "mentor-1", seed)).status, 200);
  assert.equal((await w.api("/api/apps/demo/files/index.html", { method: "PUT", body: "<h1>demo</h1>" })).status, 201);
  const reached = [];
  for (const { path, method, op } of operations) {
    const { url, init } = exampleRequest(path, method, op);
    // w.fetch validates the response against the document.
    const res = await w.fetch(url, init);
    const text = method === "head" ? "" : await res.text();
    const name = `${method.toUpperCase()} ${path}`;
    assert.ok(operationFor(method, new URL(url, "http://x").pathname), `${name}: the checker finds no operation for ${url}`);
    assert.notEqual(res.status, 405, `${name}: the worker has no such method (${text})`);
    // A signed URL cannot be made from examples (it expires): its refusal is the documented answer.
    if (!op["x-r2d1-credential"]) assert.notEqual(res.status, 401, `${name}: the example request is not authenticated as documented (${text})`);
    if (res.status === 404) assert.doesNotMatch(text, /no route/, `${name}: the worker has no such route`);
    assert.ok(res.status < 500, `${name}: ${res.status} ${text}`);
    reached.push(`${name} ${res.status}`);
  }
  assert.equal(reached.length, operations.length);
});

test("time bounds outside 1970-9999 are a 400 at once, not an overflow (issue 15's example)", async () => {
  const started = Date.now();
  const res = await w.api("/api/omi/analytics/daily?from=-0001-01-01&to=9223372036854775807");
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.equal(body.error.code, "invalid_field");
  assert.match(body.error.message, /^(from|to):/);
  assert.ok(Date.now() - started < 5000);
  for (const q of ["from=-0001-01-01", "to=10000-01-01", "to=253402300800000", "from=1969-12-31T00:00:00Z"]) {
    const r = await w.api(`/api/omi/logs?${q}`);
    assert.equal(r.status, 400, q);
    await r.arrayBuffer();
  }
  const edge = await w.api("/api/omi/analytics/daily?from=9999-01-01&to=9999-12-31");
  assert.equal(edge.status, 200);
  assert.equal((await edge.json()).days.length, 365);
});

test("a memory time past 9999 or before 1970 is refused and stores nothing (found by schemathesis)", async () => {
  const before = await listKeys(w.bucket);
  for (const created_at of [1e19, "10000-01-01T00:00:00", "1969-12-31T23:59:59Z"]) {
    const times = { created_at, started_at: "2025-01-01T00:00:00Z", finished_at: "2025-01-01T00:01:00Z" };
    const res = await postMemory(w, "mentor-time", makeMemory({ id: "far", ...times }));
    const body = await res.json();
    assert.equal(res.status, 400, JSON.stringify(created_at));
    assert.match(body.error.message, /^created_at:/);
  }
  assert.deepEqual(await listKeys(w.bucket), before);
  const rows = await w.db.prepare("SELECT COUNT(*) AS n FROM omi_memories WHERE user_id = 'mentor-time'").first();
  assert.equal(rows.n, 0);
  // Listings keep working.
  assert.equal((await w.api("/api/omi/logs")).status, 200);
});

test("an import naming a version past 2^53 is refused before anything is written (found by schemathesis)", async () => {
  const res = await w.api("/api/admin/storage/import", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      app: "legacy-big",
      app_files: [{ path: "index.html", content: "<h1>old</h1>" }],
      app_versions: [{ version_number: 9007199254740992, files: [] }],
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 400);
  assert.match(body.error.message, /^app_versions\[\]\.version_number:/);
  const apps = await w.db.prepare("SELECT COUNT(*) AS n FROM apps WHERE id = 'legacy-big'").first();
  assert.equal(apps.n, 0);
  assert.equal((await w.api("/api/apps/legacy-big/versions")).status, 200);
});
