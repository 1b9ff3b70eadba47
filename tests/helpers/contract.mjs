// The API contract (openapi.json at the repo root) as a response checker. tests/helpers/worker.mjs
// runs every response an integration test receives through `checkResponse`, so a handler that
// answers a status, content type, header or body the document does not describe fails the test
// that met it, with the operation, the schema location and the offending value in the message.
//
// Schemas are JSON Schema 2020-12 (OpenAPI 3.1's dialect), compiled by Ajv with ajv-formats.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
export const DOC = JSON.parse(readFileSync(join(ROOT, "openapi.json"), "utf8"));
const DOC_ID = "r2d1-openapi";
const METHODS = ["get", "head", "post", "put", "patch", "delete", "options"];
/** Test builds only (the fault-injection feature): not part of the API. */
const TEST_ONLY_PREFIX = "/api/__test/";

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
// OpenAPI's annotation for raw bytes; nothing to check in a decoded string.
ajv.addFormat("binary", true);
ajv.addSchema(DOC, DOC_ID);

const escapePointer = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");
const validators = new Map();
function validatorAt(pointer) {
  let v = validators.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
    validators.set(pointer, v);
  }
  return v;
}

/** Follows an OpenAPI `$ref` (`#/components/...`); returns the object and its JSON pointer. */
function resolve(node, pointer) {
  while (node && node.$ref) {
    pointer = node.$ref.replace(/^#/, "");
    node = pointer
      .split("/")
      .slice(1)
      .reduce((n, part) => n?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], DOC);
    if (!node) throw new Error(`contract: openapi.json has a dangling $ref ${pointer}`);
  }
  return { node, pointer };
}

// Path templates as regular expressions, most literal segments first, so a fixed segment wins
// over a parameter. A parameter marked `x-r2d1-multi-segment` spans several segments.
const routes = Object.entries(DOC.paths)
  .map(([template, item]) => {
    const params = new Map();
    for (const method of METHODS) {
      for (const p of [...(item.parameters || []), ...(item[method]?.parameters || [])]) {
        const { node } = resolve(p, "");
        if (node.in === "path") params.set(node.name, node);
      }
    }
    const parts = template.split("/").map((seg) =>
      seg.replace(/\{([^}]+)\}|[^{]+/g, (m, name) =>
        name ? (params.get(name)?.["x-r2d1-multi-segment"] ? "(.+)" : "([^/]+)") : m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"),
      ),
    );
    const literal = template.split("/").filter((s) => s && !s.includes("{")).length;
    return { template, item, regex: new RegExp(`^${parts.join("/")}$`), literal };
  })
  .sort((a, b) => b.literal - a.literal || b.template.length - a.template.length);

export function findRoute(path) {
  return routes.find((r) => r.regex.test(path));
}

/** The operation for `method` and `path`, or null when the document has none. */
export function operationFor(method, path) {
  const route = findRoute(path);
  let m = method.toLowerCase();
  // HEAD is served wherever GET is (the router's rule); its own entry, where the document has
  // one, says more.
  if (m === "head" && route && !route.item.head && route.item.get) m = "get";
  if (!route || !route.item[m]) return null;
  return { template: route.template, method: m, op: route.item[m], pointer: `/paths/${escapePointer(route.template)}/${m}` };
}

const mediaType = (ct) => (ct || "").split(";")[0].trim().toLowerCase();

function matchContent(content, type) {
  if (!content) return null;
  const keys = Object.keys(content);
  const key =
    keys.find((k) => k.toLowerCase() === type) ||
    keys.find((k) => k.endsWith("/*") && type.startsWith(k.slice(0, -1))) ||
    keys.find((k) => k === "*/*");
  return key ?? null;
}

function describeErrors(errors, body) {
  return errors
    .slice(0, 5)
    .map((e) => {
      let value = e.instancePath.split("/").slice(1).reduce((v, k) => v?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], body);
      value = JSON.stringify(value);
      if (value && value.length > 120) value = value.slice(0, 117) + "...";
      return `${e.instancePath || "(body)"} ${e.message}${e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ""} (got ${value}; schema ${e.schemaPath})`;
    })
    .join("; ");
}

/** The response object the document gives for `status` (exact code, then `4XX`-style, then default). */
function responseFor(found, status) {
  const responses = found.op.responses;
  const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => responses[k]);
  if (!key) return null;
  return { key, ...resolve(responses[key], `${found.pointer}/responses/${key}`) };
}

/**
 * Whether the body of this response must be read for validation: not for streamed bodies
 * (`x-r2d1-body: stream`: export, archive), whose content type alone is checked.
 */
export function wantsBody(method, path, status) {
  // A 101 carries a WebSocket, not a body (and cannot be cloned).
  if (method.toUpperCase() === "HEAD" || status === 101) return false;
  const found = operationFor(method, path);
  if (!found) return true;
  const res = responseFor(found, status);
  return !(res && res.node["x-r2d1-body"] === "stream");
}

/**
 * Throws a precise error when the response is not one the document describes. `headers` is a
 * Headers object or a plain object; `bodyText` is undefined for streamed bodies.
 */
export function validateResponse(method, path, status, headers, bodyText) {
  method = method.toUpperCase();
  path = path.split("?")[0];
  const header = (name) => (typeof headers.get === "function" ? headers.get(name) : headers[name] ?? headers[name.toLowerCase()]) ?? null;
  const where = `${method} ${path} → ${status}`;
  const fail = (why) => {
    const shown = bodyText === undefined ? "" : `\n  body: ${bodyText.length > 300 ? bodyText.slice(0, 300) + "…" : bodyText}`;
    throw new Error(`contract: ${where}: ${why}${shown}`);
  };

  if (path.startsWith(TEST_ONLY_PREFIX)) return;
  // Outside /api/ are the dashboard's static assets; a path that is neither answers 404 JSON.
  if (!path.startsWith("/api/") && !(status === 404 && mediaType(header("content-type")) === "application/json")) return;

  let res;
  let opName;
  const found = operationFor(method, path);
  if (found) {
    opName = `${found.op.operationId} (${found.method.toUpperCase()} ${found.template})`;
    res = responseFor(found, status);
    if (!res) fail(`status ${status} is not documented for ${opName} (documented: ${Object.keys(found.op.responses).join(", ")})`);
  } else {
    // No operation: a documented path with another method answers 405 (or, where the token is
    // checked first, 401); any other path 404. Server-side failures can still happen first.
    const route = findRoute(path);
    const unmatched = DOC["x-r2d1-unmatched"];
    // A path may answer other methods in its own shape (`x-r2d1-method-not-allowed`: Omi's
    // chat tools answer `{"error": "…"}`).
    const allowed = route
      ? { 405: route.item["x-r2d1-method-not-allowed"] ?? unmatched.methodNotAllowed, 401: { $ref: "#/components/responses/Unauthorized" } }
      : { 404: unmatched.notFound };
    // OPTIONS on a documented path is the CORS preflight (ALLOWED_ORIGINS), answered 204.
    if (route && method === "OPTIONS") allowed[204] = unmatched.preflight;
    Object.assign(allowed, {
      500: { $ref: "#/components/responses/InternalError" },
      502: { $ref: "#/components/responses/StorageError" },
      503: { $ref: "#/components/responses/NotConfigured" },
    });
    opName = route ? `${method} on ${route.template} (no such operation)` : "an undocumented path";
    if (!allowed[status]) {
      fail(route ? `the document has no ${method} operation on ${route.template}` : `no path of the document matches ${path}`);
    }
    res = { key: String(status), ...resolve(allowed[status], "") };
  }
  const response = res.node;

  // Headers the document requires, with their value schemas.
  for (const [name, raw] of Object.entries(response.headers || {})) {
    const { node, pointer: at } = resolve(raw, `${res.pointer}/headers/${escapePointer(name)}`);
    const value = header(name);
    if (value === null) {
      if (node.required) fail(`required header ${name} is missing (${opName})`);
      continue;
    }
    const pointer = `${at}/schema`;
    const v = validatorAt(pointer);
    if (!v(value)) fail(`header ${name}: ${describeErrors(v.errors, value)}`);
  }

  const noBody = method === "HEAD" || [101, 204, 304].includes(status);
  if (noBody) {
    if (bodyText) fail(`a ${method === "HEAD" ? "HEAD" : status} response must have no body`);
    return;
  }
  if (!response.content) {
    if (bodyText) fail(`${opName} documents no body for ${status}`);
    return;
  }
  const type = mediaType(header("content-type"));
  const key = matchContent(response.content, type);
  if (!key) fail(`content type ${JSON.stringify(type)} is not documented (${Object.keys(response.content).join(", ")}) for ${opName}`);
  if (bodyText === undefined) return; // streamed: content type only
  if (!type.endsWith("json") || type === "application/x-ndjson") return; // raw bytes or text: nothing more to check
  let body;
  try {
    body = JSON.parse(bodyText);
  } catch (e) {
    fail(`body is not JSON (${e.message})`);
  }
  const pointer = `${res.pointer}/content/${escapePointer(key)}/schema`;
  const validate = validatorAt(pointer);
  if (!validate(body)) fail(`body does not match the schema of ${opName}: ${describeErrors(validate.errors, body)}`);
}

/** Validates a fetch Response without consuming it (reads a clone when the body matters). */
export async function checkResponse(method, url, res) {
  const path = new URL(url).pathname;
  const bodyText = wantsBody(method, path, res.status) ? await res.clone().text() : undefined;
  validateResponse(method, path, res.status, res.headers, bodyText);
}
