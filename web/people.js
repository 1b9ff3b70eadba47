// The mentor directory as the dashboard uses it: who a uid is. Loaded once per page view and
// shared by every view (names instead of uids); `forget()` after the directory changes.
import { getJson } from "./api.js";

let loading = null;

/** The directory: { people: [{ id, name, cohort, mentees, uids }], unassigned: [uid] }. */
export function directory() {
  if (!loading) {
    loading = getJson("/api/omi/directory").catch((e) => {
      loading = null;
      throw e;
    });
  }
  return loading;
}

export function forget() {
  loading = null;
}

/** A map uid → person, never failing (an unreadable directory just names nobody). */
export async function peopleByUid() {
  try {
    const { people } = await directory();
    const map = new Map();
    for (const p of people) for (const uid of p.uids) map.set(uid, p);
    return map;
  } catch {
    return new Map();
  }
}

/** "Lucía Pérez" for a uid the directory names, else the uid itself. */
export const nameOf = (byUid, uid) => byUid.get(uid)?.name || uid;
