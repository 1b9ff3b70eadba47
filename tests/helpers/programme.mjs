// Helpers of the programme tests (issue 14): the analytics fixtures, a tar reader, and Omi's
// `v2` request signature written from the rule in Omi's documentation (not from r2d1's code).
import { createHmac } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { fixture, postMemory } from "./omi.mjs";
import { ok } from "./worker.mjs";

/** The fixed English and Spanish mentors whose figures are counted by hand. */
export const ENGLISH = JSON.parse(fixture("analytics_en.json"));
export const SPANISH = JSON.parse(fixture("analytics_es.json"));

/** Delivers every memory of a fixture mentor through the webhook. */
export async function ingestFixture(w, { uid, memories }) {
  for (const m of memories) await ok(await postMemory(w, uid, m));
}

/** The files of a tar (or tar.gz) archive: [{ name, size, bytes }] in order. */
export function readTar(buffer, { gzip = false } = {}) {
  const data = gzip ? gunzipSync(buffer) : Buffer.from(buffer);
  const files = [];
  let pax = null;
  for (let at = 0; at + 512 <= data.length; ) {
    const header = data.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from, len) => header.subarray(from, from + len).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1);
    const body = data.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      pax = /\d+ path=([^\n]*)\n/.exec(body.toString("utf8"))?.[1] ?? null;
      continue;
    }
    files.push({ name: pax ?? field(0, 100), size, bytes: Buffer.from(body) });
    pax = null;
  }
  return files;
}

// --- Omi's v2 signature, from the written rule -----------------------------------------------

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** UTF-8 percent-encoding of every byte outside A-Z a-z 0-9 - . _ ~, upper-case hex. */
function encode(bytes) {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += b < 128 && UNRESERVED.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** %XX → byte; a % not followed by two hex digits stays. */
function percentDecode(text) {
  const bytes = [...Buffer.from(text, "utf8")];
  const out = [];
  for (let i = 0; i < bytes.length; i++) {
    const hex = String.fromCharCode(bytes[i + 1] ?? 0, bytes[i + 2] ?? 0);
    if (bytes[i] === 0x25 && i + 2 < bytes.length && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(bytes[i]);
  }
  return Buffer.from(out);
}

/** Each `/` segment percent-decoded, then re-encoded. */
export function canonicalPath(path) {
  return path === "" ? "/" : path.split("/").map((s) => encode(percentDecode(s))).join("/");
}

/** Decoded name/value pairs (form rules: `+` is a space), encoded, stably sorted by name. */
export function canonicalQuery(query) {
  const decode = (s) => Buffer.from(percentDecode(s.replaceAll("+", " ")).toString("utf8"), "utf8");
  const pairs = query
    .split("&")
    .filter((p) => p !== "")
    .map((p) => {
      const i = p.indexOf("=");
      const [name, value] = i < 0 ? [p, ""] : [p.slice(0, i), p.slice(i + 1)];
      return [encode(decode(name)), encode(decode(value))];
    });
  // Array.prototype.sort is stable: repeated names keep their order.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join("&");
}

/** Hex HMAC-SHA256 over the seven lines (`v2`, t, delivery, event, METHOD, path, query), each
 * ending in `\n`, then the raw body. */
export function signV2(secret, { t, delivery, event = "chat_tool", method, path, query = "", body = "" }) {
  const head = ["v2", String(t), delivery, event, method.toUpperCase(), canonicalPath(path), canonicalQuery(query)].map((l) => l + "\n").join("");
  return createHmac("sha256", Buffer.from(secret, "utf8")).update(head).update(body).digest("hex");
}

let deliveries = 0;

/**
 * Calls a chat tool the way Omi does: `X-Omi-Signature: t=…,v2=…` over the request. `sign`
 * overrides what is signed (to sign one request and send another); `headers` adds or replaces.
 */
export function callTool(w, { method, path, query = "", body = "", now, secret, sign = {}, headers = {}, t } = {}) {
  const delivery = `dlv-${process.pid}-${++deliveries}`;
  const ts = t ?? Math.floor(now / 1000);
  const signed = { t: ts, delivery, method, path, query, body, ...sign };
  const signature = secret ? `t=${ts},v2=${signV2(secret, signed)}` : undefined;
  return w.fetch(`${path}${query ? `?${query}` : ""}`, {
    method,
    body: method === "GET" ? undefined : body,
    headers: {
      "content-type": "application/json",
      "x-omi-delivery": delivery,
      "x-omi-event": "chat_tool",
      "x-r2d1-now": String(now),
      ...(signature ? { "x-omi-signature": signature } : {}),
      ...headers,
    },
  });
}
