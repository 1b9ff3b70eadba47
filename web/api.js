// The API client: the token lives in sessionStorage (never in a URL), every call sends it as a
// Bearer header, and failures become ApiError with the server's {"error":{code,message}}.

const KEY = "r2d1.token";

export const token = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  describe() {
    return this.status ? `${this.message} (HTTP ${this.status}, ${this.code})` : this.message;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** fetch with the token; returns the Response (ok) or throws ApiError. */
export async function request(path, { method = "GET", body, headers = {}, bearer = token.get(), quiet401 = false } = {}) {
  let res;
  try {
    res = await fetch(path, { method, body, headers: { authorization: `Bearer ${bearer}`, ...headers } });
  } catch (e) {
    throw new ApiError(0, "network", `the server could not be reached (${e.message})`);
  }
  if (res.ok) return res;
  let code = `http_${res.status}`;
  let message = res.statusText || "request failed";
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    /* not JSON: keep the status text */
  }
  if (res.status === 401 && !quiet401) onUnauthorized();
  throw new ApiError(res.status, code, message);
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

export async function postJson(path, value, opts = {}) {
  const res = await request(path, {
    method: "POST",
    body: value === undefined ? undefined : JSON.stringify(value),
    headers: { "content-type": "application/json" },
    ...opts,
  });
  return res.json();
}

/** Percent-encodes each path segment. */
export const seg = (s) => encodeURIComponent(s);
