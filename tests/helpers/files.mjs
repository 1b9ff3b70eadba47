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
