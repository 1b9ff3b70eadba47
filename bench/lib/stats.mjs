// Summaries of latency samples and the text table.

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Merges load-driver results (one per round) into one figure. */
export function summarise(results) {
  const lat = [];
  let done = 0;
  let errors = 0;
  let wallMs = 0;
  let duplicates = 0;
  const statuses = {};
  let firstError = null;
  for (const r of results) {
    if (r.latencies) lat.push(...r.latencies);
    done += r.done;
    errors += r.errors;
    wallMs += r.wallMs;
    duplicates += r.duplicates || 0;
    firstError ??= r.firstError;
    for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] || 0) + v;
  }
  lat.sort((a, b) => a - b);
  const ok = Object.entries(statuses)
    .filter(([k]) => k >= 200 && k < 300)
    .reduce((s, [, v]) => s + v, 0);
  return {
    n: done,
    ok,
    errors,
    statuses,
    duplicates,
    p50: round(percentile(lat, 50)),
    p99: round(percentile(lat, 99)),
    mean: round(lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : null),
    rps: round(wallMs > 0 ? (done / wallMs) * 1000 : null, 1),
    wallMs: Math.round(wallMs),
    ...(firstError ? { firstError } : {}),
  };
}

export function round(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function fmtMs(x) {
  if (x === null || x === undefined) return "–";
  if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
  if (x >= 100) return `${x.toFixed(0)} ms`;
  if (x >= 10) return `${x.toFixed(1)} ms`;
  return `${x.toFixed(2)} ms`;
}

export function fmtRatio(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  if (x >= 100) return `${x.toFixed(0)}×`;
  if (x >= 10) return `${x.toFixed(1)}×`;
  return `${x.toFixed(2)}×`;
}

/** A plain-text (and Markdown-compatible) table. */
export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? "").length)));
  const line = (cells) => "| " + cells.map((c, i) => String(c ?? "").padEnd(widths[i])).join(" | ") + " |";
  return [line(headers), "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|", ...rows.map(line)].join("\n");
}
