// Hash routes: "#/logs?q=x" → { parts: ["logs"], params, hash }.
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query), hash: `#/${raw}` };
}

export function hashFor(path, params) {
  const q = params && [...params].length ? `?${params}` : "";
  return `#/${path}${q}`;
}

/** Changes the URL without a new history entry and tells the router (hashchange does not fire). */
export function replaceHash(hash) {
  history.replaceState(history.state, "", hash);
  window.dispatchEvent(new Event("r2d1:route"));
}
