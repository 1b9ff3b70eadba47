// Access-control helpers: API keys made through the API, and the authorization rule written out
// in JavaScript from the README's scope table (the generated access test compares the worker's
// answers with it).
import assert from "node:assert/strict";
import { API_TOKEN } from "./worker.mjs";

/** Creates a key with `scopes` through the API (as API_TOKEN); returns { secret, prefix, key }. */
export async function createKey(w, scopes, { name = `test ${scopes.join(" ")}`, expiresInDays, as = API_TOKEN } = {}) {
  const body = { name, scopes, ...(expiresInDays ? { expiresInDays } : {}) };
  const res = await w.fetch("/api/admin/keys", {
    method: "POST",
    headers: { authorization: `Bearer ${as}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const json = JSON.parse(text);
  return { secret: json.secret, prefix: json.key.prefix, key: json.key };
}

/** fetch with `Authorization: Bearer <secret>`. */
export const withKey = (w, secret) => (path, init = {}) =>
  w.fetch(path, { ...init, headers: { authorization: `Bearer ${secret}`, ...(init.headers || {}) } });

// --- the rule (README "Access", src/access/rule.rs) ------------------------------------------

const TARGETED = { "omi:read": "mentor", "omi:export": "mentor", "apps:read": "app", "apps:write": "app" };

export function parseScope(s) {
  for (const cap of ["storage:admin", "omi:export", "omi:write", "omi:read", "apps:read", "apps:write", "admin"]) {
    if (s === cap) return { cap, target: null };
    if (s.startsWith(`${cap}:`)) return { cap, target: s.slice(cap.length + 1) };
  }
  throw new Error(`not a scope: ${s}`);
}

const implies = (a, b) => a === b || a === "admin" || (a === "omi:read" && b === "omi:export") || (a === "apps:write" && b === "apps:read");

function grants(scopes, cap, target) {
  return scopes.some((s) => s.cap === "admin" || (implies(s.cap, cap) && (s.target === null || (target !== null && s.target === target))));
}

/**
 * What a key holding `scopeStrings` gets from a key route with `access` (the table's JSON) and
 * these parameters: { allow: true, forced } or { allow: false, missing }.
 */
export function decide(access, scopeStrings, { path = {}, query = {} } = {}) {
  if (access.needs === "anyKey") return { allow: true };
  const scopes = scopeStrings.map(parseScope);
  const cap = access.capability;
  const by = access.scopedBy.by;
  const param = access.scopedBy.param;
  const target = by === "path" ? path[param] ?? null : by === "query" ? query[param] || null : null;
  if (by === "nothing") return grants(scopes, cap, null) ? { allow: true } : { allow: false, missing: cap };
  if (target !== null) {
    const narrowest = TARGETED[cap] ? `${cap}:${target}` : cap;
    return grants(scopes, cap, target) ? { allow: true } : { allow: false, missing: narrowest };
  }
  if (grants(scopes, cap, null)) return { allow: true };
  if (by === "path") return { allow: false, missing: cap };
  const own = scopes.filter((s) => implies(s.cap, cap) && s.target !== null).map((s) => s.target);
  if (own.length && TARGETED[cap]) return { allow: true, forced: [...new Set(own)].sort() };
  return { allow: false, missing: cap };
}
