// What the signed-in credential may do (GET /api/me): the dashboard hides the pages and buttons
// it cannot use. The server still decides every request; this only keeps the page honest.
import { getJson } from "./api.js";

let me = null;

export const session = {
  get me() {
    return me;
  },
  /** Loads the caller's grant with `bearer` (or the stored token); throws ApiError on 401. */
  async load(bearer) {
    me = await getJson("/api/me", bearer ? { bearer, quiet401: true } : {});
    return me;
  },
  clear() {
    me = null;
  },
};

/** Whether the key reaches `capability` (for `target`, when given). */
export function can(capability, target) {
  const reach = me && me.can ? me.can[capability] : null;
  if (!reach) return false;
  if (reach === "all") return true;
  return target === undefined ? reach.length > 0 : reach.includes(target);
}

/** Whether the key reaches `capability` for every mentor or app, not only some. */
export function canAll(capability) {
  return Boolean(me && me.can && me.can[capability] === "all");
}

/** The mentors a narrow key reads (null: all of them, or none). */
export function ownMentors() {
  const reach = me && me.can ? me.can["omi:read"] : null;
  return Array.isArray(reach) ? reach : null;
}
