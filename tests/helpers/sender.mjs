// Deliveries built the way Omi's backend builds them (backend/utils/webhooks.py,
// webhook_signing.py): the configured URL with `uid` appended (other parameters kept, an old
// `uid` replaced), a compact UTF-8 JSON body as Python's json.dumps(separators=(",", ":"),
// ensure_ascii=False) writes it, and, with a signing secret, X-Omi-Signature (one `v1=` per
// active secret during a rotation), X-Omi-Event, X-Omi-Delivery and Idempotency-Key, the
// delivery id kept across retries and the signature made again with a fresh `t` each time.
import { createHmac, randomUUID } from "node:crypto";

/** A float as Python writes it: `12.0`, not JavaScript's `12`. */
export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}
export const f = (value) => new PyFloat(value);

/** json.dumps(value, separators=(",", ":"), ensure_ascii=False), in insertion order. */
export function pyDumps(value) {
  if (value instanceof PyFloat) return Number.isInteger(value.value) ? `${value.value}.0` : String(value.value);
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(pyDumps).join(",")}]`;
  if (typeof value === "object") return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${pyDumps(v)}`).join(",")}}`;
  // Strings: JSON.stringify escapes what json.dumps does with ensure_ascii=False (quotes,
  // backslashes, control characters) and leaves every other character as UTF-8.
  return JSON.stringify(value);
}

/** The URL Omi posts to: the configured one with `uid` set (replacing one already there). */
export function deliveryUrl(configured, uid) {
  const url = new URL(configured, "http://r2d1.test");
  url.searchParams.set("uid", uid);
  return url.pathname + url.search;
}

export function sign(secret, t, uid, body) {
  return createHmac("sha256", secret).update(`${t}.${uid}.`).update(body).digest("hex");
}

/**
 * One delivery: `send(attempt)` posts it (attempt 0, then retries), re-signed each time with
 * `t` moved on by the retry delays (1 s, 5 s, 30 s) and every secret in `secrets`.
 */
export function delivery(w, { configured, uid, body, event = "memory_created", secrets = [], id = randomUUID() }) {
  const url = deliveryUrl(configured, uid);
  const delays = [0, 1, 6, 36];
  return {
    id,
    url,
    body,
    send(attempt = 0, extraHeaders = {}) {
      const t = Math.floor(Date.now() / 1000) + delays[Math.min(attempt, delays.length - 1)];
      const headers = { "content-type": "application/json", "idempotency-key": id, ...extraHeaders };
      if (secrets.length) {
        headers["x-omi-signature"] = [`t=${t}`, ...secrets.map((s) => `v1=${sign(s, t, uid, body)}`)].join(",");
        headers["x-omi-event"] = event;
        headers["x-omi-delivery"] = id;
      }
      return w.fetch(url, { method: "POST", headers, body: Buffer.from(body, "utf8") });
    },
  };
}

let n = 0;
/** A conversation as the backend's model serialises it (field order and spellings included). */
export function conversation(over = {}) {
  n += 1;
  const id = over.id ?? randomUUID();
  return {
    id,
    created_at: over.created_at ?? `2025-06-0${1 + (n % 8)}T10:00:00.123456+00:00`,
    started_at: "2025-06-01T09:50:00.000000+00:00",
    finished_at: "2025-06-01T10:00:00.000000+00:00",
    source: "omi",
    language: "es",
    structured: {
      title: over.title ?? `Sesión de mentoría ${n}`,
      overview: "Hablamos del plan de negocio y de los próximos pasos. ¿Qué sigue? 🚀",
      emoji: "🧭",
      category: "entrepreneurship",
      action_items: [{ description: "Preparar el pitch", completed: false, created_at: "2025-06-01T10:00:00+00:00", due_at: null }],
      events: [],
    },
    transcript_segments: [
      { id: randomUUID(), text: "Hola, ¿cómo vas con el \"pitch\"?", speaker: "SPEAKER_00", speaker_id: 0, is_user: true, person_id: null, start: f(0), end: f(4.5), translations: [] },
      { id: randomUUID(), text: "Bien — ya casi está.\nMañana lo envío.", speaker: "SPEAKER_01", speaker_id: 1, is_user: false, person_id: null, start: f(4.5), end: f(12), translations: [] },
    ],
    geolocation: null,
    photos: [],
    apps_results: [],
    plugins_results: [],
    external_data: null,
    discarded: false,
    deleted: false,
    visibility: "private",
    status: "completed",
    processing_memory_id: null,
    ...(over.extra ?? {}),
  };
}
