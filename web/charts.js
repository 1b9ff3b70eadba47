// Two small SVG charts, enough for the mentor page: columns over days and horizontal bars over
// categories. Each is role="img" with a summary label, plus a visually hidden data table.
import { h } from "./dom.js";


function dataTable(caption, headers, rows) {
  return h(
    "table",
    { class: "sr-only" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

/** Columns: `points` = [{ label, value }], e.g. one per day (`span` names what a point is). */
export function columnChart({ title, points, unit = "", span = "days", firstColumn = "Day" }) {
  const W = 440;
  const H = 170;
  const pad = { l: 34, r: 6, t: 10, b: 22 };
  const max = Math.max(1, ...points.map((p) => p.value));
  const total = points.reduce((s, p) => s + p.value, 0);
  const innerW = W - pad.l - pad.r;
  const innerH = H - pad.t - pad.b;
  const step = innerW / Math.max(1, points.length);
  const bw = Math.max(1, step * 0.75);
  const busiest = points.reduce((a, p) => (p.value > a.value ? p : a), points[0] || { value: 0, label: "" });
  const label = `${title}: ${total} ${unit} in total over ${points.length} ${span}; busiest ${busiest.label} with ${busiest.value}.`;
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, "data-total": total },
    h("svg:line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }),
    h("svg:text", { x: pad.l - 6, y: pad.t + 8, class: "tick", "text-anchor": "end" }, String(max)),
    h("svg:text", { x: pad.l - 6, y: H - pad.b, class: "tick", "text-anchor": "end" }, "0"),
    points.map((p, i) => {
      const bh = (p.value / max) * innerH;
      const x = pad.l + i * step + (step - bw) / 2;
      return h(
        "svg:rect",
        { x: x.toFixed(1), y: (H - pad.b - bh).toFixed(1), width: bw.toFixed(1), height: Math.max(p.value ? 1 : 0, bh).toFixed(1), class: "bar", "data-value": p.value },
        h("svg:title", {}, `${p.label}: ${p.value} ${unit}`),
      );
    }),
    points.map((p, i) =>
      i % Math.ceil(points.length / 6) === 0
        ? h("svg:text", { x: (pad.l + i * step + step / 2).toFixed(1), y: H - 6, class: "tick", "text-anchor": "middle" }, p.label.slice(5))
        : null,
    ),
  );
  return h("figure", { class: "chart-box" }, h("figcaption", {}, title), svg, dataTable(title, [firstColumn, unit || "Value"], points.map((p) => [p.label, p.value])));
}

/** Horizontal bars: `items` = [{ label, value }], largest first. */
export function barChart({ title, items, unit = "", firstColumn = "Category" }) {
  const W = 360;
  const rowH = 26;
  const labelW = 110;
  const H = Math.max(1, items.length) * rowH + 4;
  const max = Math.max(1, ...items.map((i) => i.value));
  const total = items.reduce((s, i) => s + i.value, 0);
  const label = `${title}: ${items.map((i) => `${i.label} ${i.value}`).join(", ") || "no data"}.`;
  const svg = h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, "data-total": total },
    items.map((it, i) => {
      const bw = ((W - labelW - 50) * it.value) / max;
      const y = i * rowH + 4;
      return [
        h("svg:text", { x: labelW - 8, y: y + 15, class: "tick", "text-anchor": "end" }, it.label),
        h("svg:rect", { x: labelW, y, width: Math.max(1, bw).toFixed(1), height: rowH - 8, class: "bar alt", "data-value": it.value }, h("svg:title", {}, `${it.label}: ${it.value} ${unit}`)),
        h("svg:text", { x: labelW + bw + 6, y: y + 15, class: "tick" }, String(it.value)),
      ];
    }),
  );
  return h("figure", { class: "chart-box" }, h("figcaption", {}, title), svg, dataTable(title, [firstColumn, unit || "Value"], items.map((i) => [i.label, i.value])));
}
