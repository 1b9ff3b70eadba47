// A tiny hyperscript helper: the dashboard builds its DOM with plain functions, no framework.

/**
 * h("a", { href, class: "x", onclick }, "text", child, [more]) → element.
 * Attributes starting with "on" become listeners; false/null/undefined attributes and children
 * are skipped; strings become text nodes (never parsed as HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:") ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "selected") el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces every child of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const fmt = {
  bytes(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return `${n} B`;
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  },
  number(n) {
    return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US");
  },
  date(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  },
  day(iso) {
    return iso ? String(iso).slice(0, 10) : "–";
  },
  /** Seconds → "m:ss" (or "h:mm:ss"). */
  clock(seconds) {
    if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
    const s = Math.max(0, Math.floor(seconds));
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  },
  usd(n) {
    const v = Number(n || 0);
    return v > 0 && v < 0.01 ? "< $0.01" : `$${v.toFixed(2)}`;
  },
};

/** Saves `blob` as a file named `name` (an <a download> click: no new window, no URL token). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The filename of a Content-Disposition header, or `fallback`. */
export function dispositionName(res, fallback) {
  const m = /filename="?([^";]+)"?/i.exec(res.headers.get("content-disposition") || "");
  return m ? m[1] : fallback;
}

export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** States every view shows the same way. */
export const ui = {
  loading: (what) => h("p", { class: "loading", role: "status", "aria-busy": "true" }, `Loading ${what}…`),
  empty: (text) => h("p", { class: "empty" }, text),
  error: (what, err) =>
    h(
      "div",
      { class: "banner error", role: "alert" },
      h("strong", {}, `Could not ${what}. `),
      err && err.describe ? err.describe() : String(err && err.message ? err.message : err),
    ),
  notice: (text) => h("div", { class: "banner ok", role: "status" }, text),
  badge: (text, kind = "") => h("span", { class: `badge ${kind}` }, text),
};
