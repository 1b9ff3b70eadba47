// Builders for Omi payloads and webhook calls used by the Omi tests.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, WEBHOOK_TOKEN } from "./worker.mjs";

export { sha256 } from "./worker.mjs";

export const fixture = (name) => readFileSync(join(ROOT, "tests", "fixtures", "omi", name), "utf8");


let counter = 0;
/** A memory in the backend's shape, with overridable fields. */
export function makeMemory(over = {}) {
  counter += 1;
  const created = over.created_at ?? new Date(Date.UTC(2025, 0, 1) + counter * 60_000).toISOString();
  return {
    id: over.id ?? `mem-${process.pid}-${counter}`,
    created_at: created,
    started_at: over.started_at ?? created,
    finished_at: over.finished_at ?? new Date(Date.parse(created) + (over.durationSeconds ?? 120) * 1000).toISOString(),
    transcript_segments: over.transcript_segments ?? [
      { text: over.text ?? "We talked about the mentorship plan for next week", speaker: "SPEAKER_00", speaker_id: 0, is_user: false, start: 0, end: 5 },
      { text: "Sounds good, I will prepare the slides", speaker: "SPEAKER_01", speaker_id: 1, is_user: true, start: 5, end: 9 },
    ],
    structured: {
      title: over.title ?? `Mentorship session ${counter}`,
      overview: over.overview ?? "A short catch-up about goals.",
      emoji: "🧭",
      category: over.category ?? "education",
      action_items: over.action_items ?? [
        { description: "Prepare slides", completed: false },
        { description: "Book a room", completed: true },
      ],
      events: [],
    },
    apps_results: [],
    plugins_results: [],
    discarded: over.discarded ?? false,
    source: "omi",
    language: "en",
    ...(over.extra ?? {}),
  };
}

/** POSTs a memory webhook; `body` may be an object or raw string/bytes; `token: null` sends none. */
export function postMemory(w, uid, body, { token = WEBHOOK_TOKEN, headers = {}, path = "/api/omi/memory", query = "" } = {}) {
  const raw = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
  const params = new URLSearchParams();
  if (uid !== undefined) params.set("uid", uid);
  if (token !== null) params.set("token", token);
  const url = `${path}?${params}${query ? `&${query}` : ""}`;
  return w.fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: raw });
}

/** Omi's X-Omi-Signature for `body`. */
export function omiSignature(secret, t, uid, body, extra = []) {
  const v1 = createHmac("sha256", secret).update(`${t}.${uid}.`).update(body).digest("hex");
  return [`t=${t}`, ...extra.map((e) => `v1=${e}`), `v1=${v1}`].join(",");
}

export async function dbCount(w, sql, ...params) {
  const row = await w.db.prepare(sql).bind(...params).first();
  return Object.values(row)[0];
}

/** The running totals the triggers keep must equal what the memories themselves add up to. */
export async function assertTotalsExact(w) {
  const rows = async (sql) => (await w.db.prepare(sql).all()).results;
  const expectedUsers = await rows(
    `SELECT user_id, COUNT(*) AS memories, SUM(discarded) AS discarded, ROUND(COALESCE(SUM(duration_seconds), 0), 3) AS duration,
            SUM(word_count) AS words, MIN(created_at) AS first, MAX(created_at) AS last
     FROM omi_memories GROUP BY user_id ORDER BY user_id`,
  );
  const users = await rows(
    `SELECT user_id, memories, discarded, ROUND(duration_seconds, 3) AS duration, words, first_created AS first, last_created AS last
     FROM omi_user_totals ORDER BY user_id`,
  );
  if (JSON.stringify(users) !== JSON.stringify(expectedUsers)) {
    throw new Error(`omi_user_totals drifted:\n${JSON.stringify(users)}\nexpected\n${JSON.stringify(expectedUsers)}`);
  }
  const expectedDays = await rows(
    `SELECT created_at / 86400000 AS day, user_id, COUNT(*) AS memories, ROUND(COALESCE(SUM(duration_seconds), 0), 3) AS duration
     FROM omi_memories GROUP BY day, user_id ORDER BY day, user_id`,
  );
  const days = await rows(`SELECT day, user_id, memories, ROUND(duration_seconds, 3) AS duration FROM omi_daily_totals ORDER BY day, user_id`);
  if (JSON.stringify(days) !== JSON.stringify(expectedDays)) {
    throw new Error(`omi_daily_totals drifted (${days.length} rows vs ${expectedDays.length})`);
  }
}
