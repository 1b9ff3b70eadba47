// The old Next.js app's Omi logs, read for migration: the JavaScript mirror of src/omi/legacy.rs
// (same rules, same names in camelCase). Both are checked against
// tests/fixtures/omi/legacy_vectors.json, so change them together.
//
// Layouts (anything may precede the layout's own directories):
//   …/by-user/{sanitizedUid}/memory-{id}-{ms}.json        local, pruned to the newest 100
//   …/all/{sanitizedUid}-memory-{id}-{ms}.json            local, never pruned
//   …/by-user/{uid}/{yyyy}/{mm}/{id}-{ms}.json            R2
//   …/all/{yyyy-mm-dd}/{uid}-{id}-{ms}.json               R2
// The mentor comes from the wrapper (processed.uid) or the name, never from a directory.
import { createHash } from "node:crypto";

/** The old app's sanitiser, as it ran: substring() counts UTF-16 units, toLowerCase() is Unicode. */
export function sanitizeUid(uid) {
  const s = String(uid)
    .substring(0, 50)
    .toLowerCase()
    .replace(/@/g, "at_")
    .replace(/[^a-z0-9_-]/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_|_$/g, "");
  return s || "anonymous";
}

export const isSanitized = (uid) => /^[a-z0-9_-]+$/.test(uid) && !uid.startsWith("_") && !uid.endsWith("_") && !uid.includes("__");

/** The sanitised id a uid stands for (itself when it already is one). */
export const uidClass = (uid) => (isSanitized(uid) ? uid : sanitizeUid(uid));

/** Why a uid or memory id cannot be part of an r2d1 key (src/omi/keys.rs), or null. */
export function keyPartProblem(value) {
  if (typeof value !== "string" || value.length < 1 || value.length > 128) return "must be 1-128 characters";
  if (!/^[A-Za-z0-9._-]+$/.test(value)) return "may contain only A-Z, a-z, 0-9, '.', '_' and '-'";
  if (/^\.+$/.test(value)) return "must not be only dots";
  return null;
}

export const isUuid = (s) => /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s);

const segmentsOf = (path) => path.split("/").filter(Boolean);
const digits = (s, len) => typeof s === "string" && s.length === len && /^[0-9]+$/.test(s);
const isDate = (s) => typeof s === "string" && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s);

/** "local-by-user" | "local-all" | "r2-by-user" | "r2-all" | null (not a memory file). */
export function layoutOf(path) {
  const segs = segmentsOf(path);
  const file = segs.at(-1);
  if (!file || !file.endsWith(".json")) return null;
  const up = (n) => segs[segs.length - 1 - n];
  if (up(2) === "by-user" && file.startsWith("memory-")) return "local-by-user";
  if (up(1) === "all" && file.includes("-memory-")) return "local-all";
  if (up(4) === "by-user" && digits(up(2), 4) && digits(up(1), 2)) return "r2-by-user";
  if (up(2) === "all" && isDate(up(1))) return "r2-all";
  return null;
}

/** `{uid}{sep}{id}` → [uid, id] or null; unique splits only when the id is unknown. */
function splitUid(head, sep, knownId) {
  if (knownId != null) {
    if (!head.endsWith(sep + knownId)) return null;
    return [head.slice(0, head.length - knownId.length - sep.length), knownId];
  }
  const splits = [];
  for (let i = head.indexOf(sep); i >= 0; i = head.indexOf(sep, i + sep.length)) splits.push([head.slice(0, i), head.slice(i + sep.length)]);
  if (sep === "-memory-" && splits.length === 1) return splits[0];
  const uuids = splits.filter(([, id]) => isUuid(id));
  return uuids.length === 1 ? uuids[0] : null;
}

function parse(path, knownId) {
  const layout = layoutOf(path);
  if (!layout) return null;
  const segs = segmentsOf(path);
  const stem = segs.at(-1).slice(0, -".json".length);
  const dash = stem.lastIndexOf("-");
  if (dash < 0) return null;
  const head = stem.slice(0, dash);
  const ms = stem.slice(dash + 1);
  if (!/^[0-9]+$/.test(ms)) return null;
  let uid = null;
  let memoryId;
  if (layout === "local-by-user") {
    if (!head.startsWith("memory-")) return null;
    memoryId = head.slice("memory-".length);
  } else if (layout === "r2-by-user") {
    uid = segs[segs.length - 4];
    memoryId = head;
  } else {
    const split = splitUid(head, layout === "local-all" ? "-memory-" : "-", knownId);
    if (!split) return null;
    [uid, memoryId] = split;
  }
  if (!memoryId || uid === "" || (knownId != null && knownId !== memoryId)) return null;
  return { layout, uid, memoryId, receivedMs: Number(ms) };
}

/** What a name says without knowing the memory id (exact for by-user/, unique splits for all/). */
export const parseName = (path) => parse(path, null);
/** What a name says, split with the memory id known from the wrapper; null if it lacks that id. */
export const parseNameWithId = (path, memoryId) => parse(path, memoryId);

class Invalid extends Error {}

/** payload::parse_time: ISO-8601 (no zone = UTC) or seconds / milliseconds. */
export function parseTime(value, field) {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new Invalid(`${field}: must be a positive time`);
    return Math.trunc(value < 1e11 ? value * 1000 : value);
  }
  if (typeof value !== "string") throw new Invalid(`${field}: must be an ISO-8601 date-time string`);
  const m = value.trim().match(/^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?$/);
  const bad = () => new Invalid(`${field}: ${JSON.stringify(value)} is not an ISO-8601 date-time`);
  if (!m) throw bad();
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  const base = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s);
  const check = new Date(base);
  if (check.getUTCFullYear() !== +y || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || +h > 23 || +mi > 59 || +s > 59) throw bad();
  const offset = /^[Zz]$/.test(zone) ? 0 : (zone[0] === "-" ? -1 : 1) * (+zone.slice(1, 3) * 60 + +zone.slice(4, 6)) * 60_000;
  return base + Number((frac + "000").slice(0, 3)) - offset;
}

const uidOf = (o) => ["uid", "userId", "user_id"].map((k) => o?.[k]).find((v) => typeof v === "string");

/** payload::unwrap_legacy: the old wrapper, or a bare memory. */
export function unwrapLegacy(value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new Invalid("each record must be a JSON object");
  const isWrapper = value.memory && typeof value.memory === "object" && !Array.isArray(value.memory) && !("id" in value);
  if (!isWrapper) return { memory: value, uid: uidOf(value) ?? null, receivedMs: null };
  const at = value.webhook_received_at;
  const receivedMs = at == null ? null : parseTime(at, "webhook_received_at");
  return { memory: value.memory, uid: uidOf(value) ?? uidOf(value.memory) ?? null, receivedMs };
}

/** legacy::read_wrapper */
export function readWrapper(value) {
  const nonEmpty = (s) => (typeof s === "string" && s ? s : null);
  const processedUid = nonEmpty(value?.processed?.uid);
  const record = unwrapLegacy(value);
  const memoryId = record.memory.id;
  if (typeof memoryId !== "string" || !memoryId) throw new Invalid("memory.id: is required (a string)");
  return { memory: record.memory, memoryId, processedUid, uid: nonEmpty(record.uid), receivedMs: record.receivedMs };
}

/** legacy::attribute: the wrapper decides the mentor, the least sanitised spelling of it is kept. */
export function attribute(wrapper, name) {
  const anchor = wrapper.processedUid ?? wrapper.uid ?? name.uid;
  if (anchor == null) return null;
  const cls = uidClass(anchor);
  let chosen = null;
  const others = [];
  for (const [source, uid] of [["record", wrapper.uid], ["name", name.uid], ["processed", wrapper.processedUid]]) {
    if (uid == null) continue;
    if (uidClass(uid) !== cls) {
      if (!others.includes(uid)) others.push(uid);
    } else if (!chosen) chosen = { uid, source };
  }
  return { ...chosen, others };
}

const CSV_HEADER_FIRST_CELLS = ["sanitized", "sanitizeduid", "legacy", "legacyuid", "old", "olduid", "from"];

/** legacy::Mapping::parse: a JSON object or two-column CSV, sanitised id → real Omi uid. */
export function parseMapping(text) {
  text = String(text).replace(/^\ufeff/, "");
  const pairs = [];
  if (text.trimStart().startsWith("{")) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Invalid(`mapping is not valid JSON: ${e.message}`);
    }
    for (const [from, to] of Object.entries(value ?? {})) {
      if (typeof to !== "string") throw new Invalid(`mapping[${JSON.stringify(from)}]: must be a string`);
      pairs.push([`mapping[${JSON.stringify(from)}]`, from, to]);
    }
  } else {
    let seenRow = false;
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith("#")) return;
      const cells = line.split(/[,;\t]/).map((c) => c.trim().replace(/^"+|"+$/g, "").trim());
      const field = `mapping line ${i + 1}`;
      const firstRow = !seenRow;
      seenRow = true;
      if (firstRow && CSV_HEADER_FIRST_CELLS.includes(cells[0].toLowerCase().replace(/[^a-z0-9]/g, ""))) return;
      if (cells.length !== 2 || !cells[0]) throw new Invalid(`${field}: must be two columns: sanitized id, real Omi uid`);
      pairs.push([field, cells[0], cells[1]]);
    });
  }
  const mapping = { byClass: new Map(), real: new Set() };
  for (const [field, from, to] of pairs) {
    const why = keyPartProblem(to);
    if (why) throw new Invalid(`${field}: real uid ${JSON.stringify(to)} ${why}`);
    const cls = uidClass(from);
    const before = mapping.byClass.get(cls);
    if (before !== undefined && before !== to) throw new Invalid(`${field}: ${cls} is mapped to both ${before} and ${to}`);
    mapping.byClass.set(cls, to);
    mapping.real.add(to);
  }
  return mapping;
}

export const emptyMapping = () => ({ byClass: new Map(), real: new Set() });

/** legacy::Mapping::resolve → { uid, mapped }. */
export function resolveUid(mapping, uid) {
  const cls = uidClass(uid);
  if (mapping.byClass.has(cls)) return { uid: mapping.byClass.get(cls), mapped: true };
  if (mapping.real.has(uid)) return { uid, mapped: true };
  for (const candidate of [uid, cls]) if (!keyPartProblem(candidate)) return { uid: candidate, mapped: false };
  throw new Invalid(`uid: ${JSON.stringify(uid)} cannot be stored (sanitised ${JSON.stringify(cls)} is not 1-128 of A-Z a-z 0-9 . _ -); map it`);
}

const utf8Order = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * The memory as r2d1 stores it (serde_json: keys sorted by UTF-8 bytes, no spaces). Equal to
 * Rust's bytes for everything JavaScript wrote; numbers JavaScript prints in exponent form
 * (≥ 1e21, < 1e-6) are spelled differently by serde, which only changes the reported hash.
 */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort(utf8Order)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export const memorySha256 = (memory) => createHash("sha256").update(canonicalJson(memory)).digest("hex");

/** The checks payload::memory_from_value makes, so the report names what the import would refuse. */
export function checkMemory(memory) {
  const isObj = (v) => v && typeof v === "object" && !Array.isArray(v);
  const optType = (v, field, type, what) => {
    if (v != null && typeof v !== type) throw new Invalid(`${field}: must be ${what}`);
  };
  if (!isObj(memory)) throw new Invalid("body must be a JSON object");
  if (memory.id == null) throw new Invalid("id: is required");
  if (typeof memory.id !== "string") throw new Invalid("id: must be a string");
  const why = keyPartProblem(memory.id);
  if (why) throw new Invalid(`id: ${why}`);
  if (memory.created_at == null) throw new Invalid("created_at: is required");
  parseTime(memory.created_at, "created_at");
  for (const k of ["started_at", "finished_at"]) if (memory[k] != null) parseTime(memory[k], k);
  const segs = memory.transcript_segments;
  if (segs != null && !Array.isArray(segs)) throw new Invalid("transcript_segments: must be an array");
  (segs ?? []).forEach((s, i) => {
    if (!isObj(s)) throw new Invalid(`transcript_segments[${i}]: must be an object`);
    optType(s.text, `transcript_segments[${i}].text`, "string", "a string");
  });
  const st = memory.structured;
  if (st != null && !isObj(st)) throw new Invalid("structured: must be an object");
  for (const k of ["title", "overview", "emoji", "category"]) optType(st?.[k], `structured.${k}`, "string", "a string");
  const items = st?.action_items;
  if (items != null && !Array.isArray(items)) throw new Invalid("structured.action_items: must be an array");
  (items ?? []).forEach((it, i) => {
    if (!isObj(it)) throw new Invalid(`structured.action_items[${i}]: must be an object`);
    optType(it.completed, `structured.action_items[${i}].completed`, "boolean", "true or false");
  });
  optType(memory.discarded, "discarded", "boolean", "true or false");
}

/** legacy::read_copy: one file of a legacy layout → a copy, or throws why it cannot be migrated. */
export function readCopy(path, bytes) {
  const layout = layoutOf(path);
  if (!layout) throw new Invalid("not a file of the old app's layouts");
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Invalid(`not valid JSON: ${e.message}`);
  }
  const wrapper = readWrapper(value);
  const name = parseNameWithId(path, wrapper.memoryId);
  if (!name) {
    const says = parseName(path);
    throw new Invalid(`name: says ${says ? `memory ${says.memoryId}` : "no memory id"} but the wrapper holds memory ${wrapper.memoryId}`);
  }
  const attribution = attribute(wrapper, name);
  if (!attribution) throw new Invalid("uid: neither processed.uid nor the name says whose memory this is");
  checkMemory(wrapper.memory);
  return {
    source: path,
    layout,
    attribution,
    memoryId: wrapper.memoryId,
    receivedMs: wrapper.receivedMs ?? name.receivedMs,
    sha256: memorySha256(wrapper.memory),
    memory: wrapper.memory,
  };
}

const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** legacy::Migration: every file of a tree → a dedupe plan and a report. */
export class Migration {
  constructor(mapping = emptyMapping()) {
    this.mapping = mapping;
    this.memories = new Map(); // "uid\u0000id" → { uid, memoryId, versions: Map(sha → version) }
    this.mapped = new Map();
    this.unreadable = [];
    this.conflicts = [];
    this.skipped = [];
  }

  /** `path` decides the layout; `source` is how the report names the file (default: path). */
  addFile(path, bytes, source = path) {
    if (!layoutOf(path)) {
      this.skipped.push(source);
      return;
    }
    try {
      this.addCopy({ ...readCopy(path, bytes), source });
    } catch (e) {
      if (!(e instanceof Invalid)) throw e;
      this.unreadable.push({ source, reason: e.message });
    }
  }

  addCopy(copy) {
    const resolved = resolveUid(this.mapping, copy.attribution.uid);
    if (copy.attribution.others.length) this.conflicts.push({ source: copy.source, uid: copy.attribution.uid, others: copy.attribution.others });
    this.mapped.set(resolved.uid, resolved.mapped);
    const key = `${resolved.uid}\u0000${copy.memoryId}`;
    if (!this.memories.has(key)) this.memories.set(key, { uid: resolved.uid, memoryId: copy.memoryId, versions: new Map() });
    const versions = this.memories.get(key).versions;
    if (!versions.has(copy.sha256)) versions.set(copy.sha256, { sha256: copy.sha256, receivedMs: copy.receivedMs, sources: [] });
    const v = versions.get(copy.sha256);
    v.receivedMs = Math.min(v.receivedMs, copy.receivedMs);
    v.sources.push(copy.source);
    v.sources.sort(utf8Order);
  }

  /** Every memory once, sorted by mentor and id; versions in received order. */
  plan() {
    return [...this.memories.values()]
      .sort((a, b) => utf8Order(a.uid, b.uid) || utf8Order(a.memoryId, b.memoryId))
      .map(({ uid, memoryId, versions }) => ({
        uid,
        memoryId,
        versions: [...versions.values()].map((v) => ({ ...v, sources: [...v.sources] })).sort((a, b) => a.receivedMs - b.receivedMs || cmp(a.sha256, b.sha256)),
      }));
  }

  report() {
    const plan = this.plan();
    const mentors = new Map();
    for (const m of plan) {
      if (!mentors.has(m.uid)) mentors.set(m.uid, { uid: m.uid, mapped: this.mapped.get(m.uid) ?? false, memories: 0, versions: 0, copies: 0 });
      const r = mentors.get(m.uid);
      r.memories += 1;
      r.versions += m.versions.length;
      r.copies += m.versions.reduce((n, v) => n + v.sources.length, 0);
    }
    const list = [...mentors.values()];
    const versions = list.reduce((n, m) => n + m.versions, 0);
    const copies = list.reduce((n, m) => n + m.copies, 0);
    const bySource = (a, b) => utf8Order(a.source, b.source);
    return {
      mentors: list,
      memories: plan.length,
      versions,
      copies,
      duplicates: copies - versions,
      unreadable: [...this.unreadable].sort(bySource),
      conflicts: [...this.conflicts].sort(bySource),
      unmapped: list.filter((m) => !m.mapped).map((m) => m.uid),
      skipped: [...this.skipped].sort(utf8Order),
    };
  }
}

export { Invalid as LegacyError };
