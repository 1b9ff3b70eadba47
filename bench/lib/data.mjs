// Deterministic Omi memories for the benchmark. Every process (the runner and the load driver)
// regenerates the same memory from (uid, index), so the load driver never receives bodies over
// IPC and the runner knows the ground truth (which memories are newest) without asking a worker.
//
// The shape follows Omi's documented `memory_created` example (bench/fixtures/) plus the
// backend's spellings (`speaker_id`), with created_at spread over a year and *not* in ingest
// order, so a listing in key order cannot pass for newest-first by accident.
import { createHash } from "node:crypto";

/** Fixed "now" so runs are comparable: created_at values fall in the year before it. */
export const EPOCH_MS = Date.UTC(2026, 3, 1);
const YEAR_MS = 365 * 24 * 3600 * 1000;

const CATEGORIES = ["work", "education", "entrepreneurship", "technology", "finance", "health", "personal", "business", "other"];
const EMOJI = ["📅", "🧭", "💡", "🚀", "📈", "🧪", "🎯", "🤝"];
// The search probe word (`SEARCH_WORD`) appears in about 1 title in 40.
export const SEARCH_WORD = "runway";
const WORDS = (
  "mentor founder pitch product market customer growth metric hiring roadmap launch feedback " +
  "design pricing retention funding investor demo sprint backlog interview strategy partner " +
  "onboarding community token wallet contract audit grant ecosystem milestone review planning"
).split(" ");

function digest(...parts) {
  return createHash("sha256").update(parts.join("\u0000")).digest();
}

/** A small deterministic PRNG (mulberry32) seeded from the digest. */
function rng(seedBytes) {
  let a = seedBytes.readUInt32LE(0);
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(bytes) {
  const h = Buffer.from(bytes.subarray(0, 16));
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function sentence(rand, n) {
  const words = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(rand() * WORDS.length)]);
  const s = words.join(" ");
  return s[0].toUpperCase() + s.slice(1) + ".";
}

/** The memory id of `(uid, index)`, without building the whole memory. */
export function memoryId(uid, index) {
  return uuid(digest("id", uid, String(index)));
}

/** created_at (ms) of `(uid, index)`. */
export function createdMs(uid, index) {
  const rand = rng(digest("t", uid, String(index)));
  // Millisecond resolution and a year's spread: ties are practically impossible.
  return EPOCH_MS - 3600_000 - Math.floor(rand() * YEAR_MS);
}

/**
 * The memory `(uid, index)` as Omi would send it.
 * size: "full" (a realistic conversation, 2-5 KB) or "small" (one segment, ~0.7 KB).
 */
export function memory(uid, index, size = "full") {
  const rand = rng(digest("m", uid, String(index)));
  const created = createdMs(uid, index);
  const durationS = 60 + Math.floor(rand() * 1800);
  const started = created - durationS * 1000 - 5000;
  const segments = [];
  const nSeg = size === "small" ? 1 : 6 + Math.floor(rand() * 18);
  let t = 0;
  for (let i = 0; i < nSeg; i++) {
    const len = 3 + Math.floor(rand() * (size === "small" ? 10 : 22));
    const seg = {
      text: sentence(rand, len),
      speaker: `SPEAKER_0${i % 2}`,
      speaker_id: i % 2,
      is_user: i % 2 === 0,
      start: t,
      end: t + len * 0.4,
    };
    // Half the senders use the documented spelling.
    if (rand() < 0.5) {
      seg.speakerId = seg.speaker_id;
      delete seg.speaker_id;
    }
    t = seg.end + 0.5;
    segments.push(seg);
  }
  let title = sentence(rand, 3 + Math.floor(rand() * 4)).replace(/\.$/, "");
  if (rand() < 1 / 40) title = `${title} ${SEARCH_WORD}`;
  const nItems = size === "small" ? 0 : Math.floor(rand() * 4);
  return {
    id: memoryId(uid, index),
    created_at: new Date(created).toISOString(),
    started_at: new Date(started).toISOString(),
    finished_at: new Date(started + durationS * 1000).toISOString(),
    transcript_segments: segments,
    structured: {
      title,
      overview: sentence(rand, size === "small" ? 8 : 30 + Math.floor(rand() * 30)),
      emoji: EMOJI[Math.floor(rand() * EMOJI.length)],
      category: CATEGORIES[Math.floor(rand() * CATEGORIES.length)],
      action_items: Array.from({ length: nItems }, () => ({ description: sentence(rand, 6), completed: rand() < 0.3 })),
      events: [],
    },
    apps_response: [],
    discarded: rand() < 0.05,
    folder_id: null,
    folder_name: null,
  };
}

/**
 * The ids of the `n` newest memories among indices [0, count) of `uid`, newest first, leaving
 * out discarded ones (which r2d1's logs hide by default); and how many are not discarded.
 */
export function newestIds(uid, count, n, size = "full") {
  const all = [];
  for (let i = 0; i < count; i++) {
    const m = memory(uid, i, size);
    if (!m.discarded) all.push([createdMs(uid, i), m.id]);
  }
  all.sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? 1 : -1));
  const ids = all.slice(0, n).map((x) => x[1]);
  ids.visible = all.length;
  return ids;
}

/** A file body of exactly `bytes` bytes (text, deterministic per seed). */
export function fileBody(bytes, seed = 0) {
  const line = `// r2d1 bench file ${seed} ` + "abcdefghijklmnopqrstuvwxyz0123456789".repeat(3) + "\n";
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes);
}

function unit(...parts) {
  return digest(...parts).readUInt32LE(0) / 4294967296;
}

/**
 * Position `i` of a duplicate-laced ingest stream: the index of the memory it sends. With
 * probability `dupRate` a position re-sends an earlier memory, byte for byte (what Omi's retries
 * and "trigger webhook with existing data" do); the original is at least 64 positions back, so
 * it has been answered even at concurrency 32.
 */
export function streamIndex(i, dupRate, salt = "") {
  if (!dupRate || i < 64 || unit(salt, "dup", i) >= dupRate) return i;
  let k = Math.floor(unit(salt, "src", i) * (i - 63));
  while (k >= 64 && unit(salt, "dup", k) < dupRate) k--;
  return k;
}

/** Nominal body sizes of the CPU-against-size figure, in bytes (8 MB stays under r2d1's
 * MAX_BODY_BYTES of 8 MiB). */
export const BODY_SIZES = [
  { name: "1 KB", bytes: 1_000 },
  { name: "10 KB", bytes: 10_000 },
  { name: "100 KB", bytes: 100_000 },
  { name: "1 MB", bytes: 1_000_000 },
  { name: "8 MB", bytes: 8_000_000 },
];

/** Transcript grows up to this many bytes (a long conversation); photos make the rest. */
const TRANSCRIPT_CAP = 64_000;

/** `n` bytes from a seeded PRNG: stands in for JPEG data (incompressible, like the real thing). */
function noise(n, seedBytes) {
  const rand = rng(seedBytes);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const x = Math.floor(rand() * 4294967296);
    out[i] = x & 0xff;
    if (i + 1 < n) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < n) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < n) out[i + 3] = x >>> 24;
  }
  return out;
}

/**
 * The memory `(uid, index)` grown to about `bytes` of JSON: its transcript grows to at most
 * 64 KB (a long conversation), then `photos[{id, base64, description, created_at}]` fill the
 * rest, as Omi sends pictures taken during a conversation (OMI.md: bodies can be megabytes).
 * Deterministic; the serialised length is within a segment (≤ ~250 bytes) of `bytes`, never
 * above it.
 */
export function memoryOfSize(uid, index, bytes) {
  const m = memory(uid, index, bytes < 2_500 ? "small" : "full");
  const size = () => Buffer.byteLength(JSON.stringify(m));
  const rand = rng(digest("grow", uid, String(index), String(bytes)));
  const segs = m.transcript_segments;
  let t = segs.length ? segs[segs.length - 1].end + 0.5 : 0;
  const transcriptGoal = Math.min(bytes, TRANSCRIPT_CAP);
  let current = size();
  for (;;) {
    let len = 8 + Math.floor(rand() * 30);
    const text = sentence(rand, len).split(" ");
    const segOf = (n) => ({ text: text.slice(0, n).join(" "), speaker: `SPEAKER_0${segs.length % 2}`, speaker_id: segs.length % 2, is_user: segs.length % 2 === 0, start: t, end: t + n * 0.4 });
    // The last segment is cut short to land near the size.
    while (len > 3 && current + Buffer.byteLength(JSON.stringify(segOf(len))) + 1 > transcriptGoal) len--;
    const seg = segOf(len);
    const grown = current + Buffer.byteLength(JSON.stringify(seg)) + 1;
    if (grown > transcriptGoal) break;
    t = seg.end + 0.5;
    segs.push(seg);
    current = grown;
  }
  if (bytes <= TRANSCRIPT_CAP) return m;
  const photos = [];
  m.photos = photos;
  current = size();
  // Each photo is at most ~1 MB of base64; the last one is cut to land on `bytes`.
  for (let p = 0; bytes - current > 200; p++) {
    const photo = { id: uuid(digest("photo", uid, String(index), String(p))), base64: "", description: sentence(rand, 6), created_at: m.created_at, discarded: false };
    const overhead = Buffer.byteLength(JSON.stringify(photo)) + (photos.length ? 1 : 0);
    const room = Math.min(bytes - current - overhead, 1_000_000);
    if (room < 4) break;
    const raw = noise(Math.floor(room / 4) * 3, digest("pixels", uid, String(index), String(p)));
    photo.base64 = raw.toString("base64");
    photos.push(photo);
    current += overhead + photo.base64.length;
  }
  return m;
}
