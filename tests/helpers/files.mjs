// Builders and calls used by the app-files tests (beside helpers/omi.mjs for the Omi tests).
export { sha256, ok, json } from "./worker.mjs";

/** `n` bytes of text repeating `seed|` (compressible). */
export const text = (n, seed) => (`${seed}|`.repeat(Math.ceil(n / (seed.length + 1)) + 1)).slice(0, n);

/** `n` letters plus `seed`: distinct content per seed, above the tier thresholds when large. */
export const big = (n, seed) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed.length) % 26))).join("") + seed;

export const tick = () => new Promise((r) => setTimeout(r, 20));

/** PUT a file (raw body). */
export const putFile = (w, app, path, body, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { method: "PUT", body, headers });

/** GET a file. */
export const getFile = (w, app, path, headers = {}) => w.api(`/api/apps/${app}/files/${path}`, { headers });

/** POST JSON to a path. */
export const postJson = (w, path, body, headers = {}) =>
  w.api(path, { method: "POST", body: body === undefined || body === null ? undefined : JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });

import { createHash } from "node:crypto";

/** The app's stable rollout bucket, as src/files/rollout.rs computes it (0-9999). */
export const rolloutBucket = (app) => createHash("sha256").update(`r2d1-rollout:${app}`).digest().readUInt32BE(0) % 10_000;

/** The storage counters a test build puts on every answer (`X-R2D1-Counters`), as numbers. */
export function counters(res) {
  const raw = res.headers.get("x-r2d1-counters") || "";
  return Object.fromEntries(raw.split(" ").filter(Boolean).map((kv) => kv.split("=")).map(([k, v]) => [k, k === "route" ? v : Number(v)]));
}

/** The entries of a tar archive (ustar, with PAX `path` records), as {path, body}. */
export function untar(buf) {
  const out = [];
  let pax = {};
  for (let at = 0; at + 512 <= buf.length; ) {
    const header = buf.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (from, len) => header.subarray(from, from + len).toString("utf8").replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 48);
    const body = buf.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      for (const rec of body.toString("utf8").split("\n").filter(Boolean)) {
        const [, kv] = rec.match(/^\d+ (.*)$/s);
        const eq = kv.indexOf("=");
        pax[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      continue;
    }
    const prefix = field(345, 155);
    const name = pax.path || (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    out.push({ path: name, body: Buffer.from(body), mode: parseInt(field(100, 8).trim(), 8) });
    pax = {};
  }
  return out;
}

/** An NDJSON export: its header, files (content decoded) and trailer. */
export function parseExport(text) {
  const lines = text.split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
  const header = lines[0];
  const trailer = lines[lines.length - 1]?.type === "trailer" ? lines[lines.length - 1] : null;
  const files = lines
    .filter((l) => l.type === "file")
    .map((l) => ({ ...l, bytes: l.encoding === "base64" ? Buffer.from(l.content, "base64") : Buffer.from(l.content, "utf8") }));
  return { header, files, trailer };
}

/** SHA-256 over "{path}\0{sha256}\n" of each file, in order: an export's tree hash. */
export function treeSha256(files) {
  const h = createHash("sha256");
  for (const f of files) h.update(`${f.path}\0${f.sha256}\n`);
  return h.digest("hex");
}
