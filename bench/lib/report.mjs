// The text report of one run (Markdown-compatible tables), from bench/run.mjs's results.
import { table, fmtMs, fmtRatio, round } from "./stats.mjs";
import { fmtBytes } from "./cost.mjs";

const T = ["r2d1", "peer", "seed"];

function cellText(row) {
  if (!row) return ["–", "–", "–"];
  if (row.na) return [`n/a (${row.na})`, "", ""];
  const err = row.ok < row.n ? ` (${row.n - row.ok} err)` : "";
  return [fmtMs(row.p50) + err, fmtMs(row.p99), row.rps === null || row.rps === undefined ? "–" : `${row.rps}/s`];
}

function ratio(a, b, key) {
  if (!a || !b || a.na || b.na || !a[key] || !b[key]) return null;
  return a[key] / b[key];
}

const cpuText = (c) => (c ? `${fmtMs(c.p50)} / ${fmtMs(c.p99)}` : "–");
const na = (f) => `n/a (${f.na})`;

export function report(results, { label, P }) {
  const find = (id) => results.figures.find((f) => f.id === id);
  const lines = [];
  const main = [];
  for (const f of results.figures.filter((f) => f.group <= 3)) {
    if (f.na) {
      main.push([f.name, na(f), "", "", "", "", "", "", "", "", "", ""]);
      continue;
    }
    const [a, b, c] = T.map((t) => cellText(f.rows[t]));
    const rp50 = ratio(f.rows.r2d1, f.rows.peer, "p50");
    const rp99 = ratio(f.rows.r2d1, f.rows.peer, "p99");
    const seedX = ratio(f.rows.seed, f.rows.r2d1, "p50");
    main.push([f.name, ...a, ...b, ...c, fmtRatio(rp50), fmtRatio(rp99), fmtRatio(seedX)]);
    f.ratios = { r2d1OverPeerP50: round(rp50), r2d1OverPeerP99: round(rp99), seedOverR2d1P50: round(seedX) };
  }
  lines.push(
    table(
      ["figure", "r2d1 p50", "p99", "thru", "JS peer p50", "p99", "thru", "seed p50", "p99", "thru", "r2d1/peer p50", "r2d1/peer p99", "seed/r2d1 p50"],
      main,
    ),
  );
  const threadRows = results.figures.filter((f) => f.group <= 3 && f.rows && (f.rows.r2d1?.threadCpu || f.rows.peer?.threadCpu));
  if (threadRows.length) {
    lines.push("", "workerd thread CPU per request at c=1, p50 / p99 (the worker + Miniflare's R2/D1 simulators; bench/lib/cpu.mjs):");
    lines.push(
      table(
        ["figure", "r2d1", "JS peer", "seed", "r2d1/peer p50"],
        threadRows.map((f) => [f.name, cpuText(f.rows.r2d1?.threadCpu), cpuText(f.rows.peer?.threadCpu), cpuText(f.rows.seed?.threadCpu), fmtRatio(ratio(f.rows.r2d1?.threadCpu, f.rows.peer?.threadCpu, "p50"))]),
      ),
    );
  }
  const ingestCpu = results.figures.filter((f) => f.group === 1 && f.rows);
  if (ingestCpu.length) {
    lines.push("", "workerd CPU while under ingest load, % of one core (worker + Miniflare's R2/D1 simulators, one JS thread):");
    for (const f of ingestCpu) {
      lines.push(`  ${f.name.padEnd(30)} ` + T.filter((t) => f.rows[t]?.cpuPercent).map((t) => `${t} ${f.rows[t].cpuPercent.workerd}%`).join(", ") + `; load driver ${f.rows.peer?.cpuPercent?.loader ?? "–"}%`);
    }
  }
  const f2 = find("2");
  if (f2?.correctness) {
    lines.push("", `Which 20 each returns (truth: the 20 newest by created_at of ${P.logsMentor}, discarded ones hidden as r2d1 does):`);
    for (const [t, c] of Object.entries(f2.correctness)) {
      lines.push(`  ${label(t).padEnd(24)} ${c.newestOverlap}/20 of the newest, newest-first order ${c.exactNewestFirst ? "exact" : "NOT exact"}; total ${c.total} (true: ${c.expectedTotal} not discarded)`);
    }
  }
  const f3 = find("3");
  if (f3?.reportedTotals) {
    lines.push("", "Memory count each stats answer reports:");
    for (const [t, c] of Object.entries(f3.reportedTotals)) lines.push(`  ${label(t).padEnd(24)} ${Object.entries(c).map(([k, v]) => `${k}: ${v}`).join(", ")}`);
  }
  const daily = find("3.daily-all");
  if (daily?.totalMemories) lines.push("", `Daily analytics, 60 days, all mentors: totalMemories ${Object.entries(daily.totalMemories).map(([t, n]) => `${t} ${n}`).join(", ")}`);
  const fd = find("1.dup");
  if (fd?.storedObjects) {
    lines.push("", `30 % duplicates: ${fd.sent} deliveries of ${fd.distinctMemories} distinct memories; by-user objects kept:`);
    for (const [t, n] of Object.entries(fd.storedObjects)) lines.push(`  ${label(t).padEnd(24)} ${n} (duplicate:true answers: ${fd.rows[t]?.duplicates ?? "–"})`);
  }
  for (const id of ["1.re1", "1.re8"]) {
    const f = find(id);
    if (f?.rows) lines.push(`${f.name}: duplicate:true answers ${Object.entries(f.rows).filter(([, r]) => r && !r.na).map(([t, r]) => `${t} ${r.duplicates}/${r.n}`).join(", ")}`);
  }

  const f7 = find("7");
  if (f7) {
    lines.push("", "Figure 7, CPU per request at c=1, under the profiler (isolate CPU p50 / p99 (mean); thread CPU and wall p50):");
    if (f7.na) lines.push(`  ${na(f7)}`);
    else {
      const iso = (c) => (c ? `${fmtMs(c.p50)} / ${fmtMs(c.p99)} (${fmtMs(c.mean)})` : "–");
      lines.push(
        table(
          ["route", "r2d1 isolate CPU", "peer isolate CPU", "r2d1/peer (means)", "r2d1 thread CPU", "peer thread CPU", "r2d1 wall", "peer wall"],
          f7.rows.map((r) =>
            r.na
              ? [r.name, na(r), "", "", "", "", "", ""]
              : [
                  r.name,
                  iso(r.per.r2d1.isolateCpu),
                  iso(r.per.peer.isolateCpu),
                  fmtRatio(ratio(r.per.r2d1.isolateCpu, r.per.peer.isolateCpu, "mean")),
                  fmtMs(r.per.r2d1.threadCpu?.p50),
                  fmtMs(r.per.peer.threadCpu?.p50),
                  fmtMs(r.per.r2d1.wall?.p50),
                  fmtMs(r.per.peer.wall?.p50),
                ],
          ),
        ),
      );
    }
  }
  const f8 = find("8");
  if (f8) {
    lines.push("", "Figure 8, ingest CPU against body size at c=1 (p50; isolate CPU from the profiler, with its mean):");
    if (f8.na) lines.push(`  ${na(f8)}`);
    else {
      lines.push(
        table(
          ["memory", "n", "r2d1 isolate CPU", "thread CPU", "wall", "peer isolate CPU", "thread CPU", "wall", "r2d1/peer isolate CPU (means)"],
          f8.sizes.map((s) => {
            const [a, b] = [s.per.r2d1, s.per.peer];
            const errs = a.ok < a.n || b.ok < b.n ? ` (errors: r2d1 ${JSON.stringify(a.statuses)}, peer ${JSON.stringify(b.statuses)})` : "";
            const iso = (c) => `${fmtMs(c?.p50)} (${fmtMs(c?.mean)})`;
            return [s.name + errs, a.n, iso(a.isolateCpu), fmtMs(a.threadCpu?.p50), fmtMs(a.wall?.p50), iso(b.isolateCpu), fmtMs(b.threadCpu?.p50), fmtMs(b.wall?.p50), fmtRatio(ratio(a.isolateCpu, b.isolateCpu, "mean"))];
          }),
        ),
      );
      lines.push(`Largest memory under ${f8.limitMs} ms mean isolate CPU: r2d1 ${f8.fitsLimit.r2d1.text}; peer ${f8.fitsLimit.peer.text}`);
    }
  }
  const f10 = find("10");
  if (f10) {
    lines.push("", "Figure 10, memory while one 8 MB memory is ingested:");
    if (f10.na) lines.push(`  ${na(f10)}`);
    else {
      for (const [t, m] of Object.entries(f10.per)) {
        if (m.na) lines.push(`  ${t}: n/a (${m.na})`);
        else
          lines.push(
            `  ${t.padEnd(5)} isolate +${fmtBytes(m.isolate)} (${m.peakOverBody}× the body): JS heap + ArrayBuffers +${fmtBytes(m.jsPeak)}` +
              (t === "r2d1" ? `, wasm memory +${fmtBytes(m.wasmGrowth)} (now ${fmtBytes(m.wasmHighWater)}, never returned)` : "") +
              `; workerd peak RSS +${fmtBytes(m.peakRss)} (${m.rssOverBody}×, simulators included)`,
          );
      }
    }
  }

  const f4 = find("4");
  if (f4) {
    lines.push("");
    if (f4.na) lines.push(`Figure 4 (r2d1 queries at scale): ${na(f4)}`);
    else {
      lines.push(`Figure 4, r2d1 at ${f4.smallCount.toLocaleString("en")} vs ${f4.largeCount.toLocaleString("en")} memories across 50 mentors (seeded by ${f4.seeding[1].method}):`);
      lines.push(
        table(
          ["query", `p50 @${f4.smallCount}`, "p99", `p50 @${f4.largeCount}`, "p99", "ratio p50", "ratio p99"],
          f4.queries.map((q) =>
            q.na ? [q.name, na(q), "", "", "", "", ""] : [q.name, fmtMs(q.small.p50), fmtMs(q.small.p99), fmtMs(q.large.p50), fmtMs(q.large.p99), fmtRatio(q.ratioP50), fmtRatio(q.ratioP99)],
          ),
        ),
      );
    }
  }
  const f5 = find("5");
  if (f5) {
    lines.push("");
    if (f5.na) lines.push(`Figure 5 (files): ${na(f5)}`);
    else {
      lines.push("Figure 5, app files at c=1:");
      lines.push(
        table(
          ["operation", "r2d1 p50", "p99", "JS peer p50", "p99", "r2d1/peer p50", "n"],
          f5.rows.map((r) => {
            const [a, b] = [r.per.r2d1, r.per.peer];
            const [ra, rb] = [cellText(a), cellText(b)];
            return [r.name, ra[0], ra[1], b ? rb[0] : "–", b ? rb[1] : "", fmtRatio(ratio(a, b, "p50")), a?.n ?? ""];
          }),
        ),
      );
    }
  }
  const f9 = find("9");
  if (f9) {
    lines.push("", `Figure 9, ${f9.name ?? "full sync"} (r2d1; wall time of the whole sync, p50 of ${f9.rows?.[0]?.runs ?? 0}):`);
    if (f9.na) lines.push(`  ${na(f9)}`);
    else for (const r of f9.rows) lines.push(`  ${r.name.padEnd(36)} ${r.na ? na(r) : `${fmtMs(r.p50)} (max ${fmtMs(r.max)})${r.complete ? "" : " INCOMPLETE"}`}`);
  }
  const f6 = find("6");
  if (f6) {
    lines.push("", `Figure 6, wasm: ${(f6.wasm.raw / 1024).toFixed(0)} KiB raw, ${(f6.wasm.gzip / 1024).toFixed(0)} KiB gzipped (-9)`);
    const c = f6.coldStart;
    for (const [t, s] of Object.entries(c.per)) {
      lines.push(
        `  cold start ${label(t).padEnd(24)} workerd boot ${fmtMs(s.bootMs)}, first delivery ${fmtMs(s.firstMs)}, second ${fmtMs(s.secondMs)} (being first: +${fmtMs(s.firstExtraMs)}; medians of ${s.starts})`,
      );
      const [a, b] = [s.isolateCpu.first, s.isolateCpu.second];
      lines.push(
        `    isolate CPU, first delivery ${fmtMs(a.total)} (wasm ${fmtMs(a.wasm)}, JS ${fmtMs(a.js)}, GC ${fmtMs(a.gc)}, V8 other ${fmtMs(a.other)}); second ${fmtMs(b.total)} (wasm ${fmtMs(b.wasm)}, JS ${fmtMs(b.js)})`,
      );
    }
    lines.push(`  r2d1/peer: first delivery ${fmtRatio(c.firstRatio)}, boot ${fmtRatio(c.bootRatio)}`);
    lines.push(
      `  r2d1's wasm in workerd: compile ${fmtMs(c.wasm.compileMs)} (probe boot with the module ${fmtMs(c.wasm.probeBootMs.withModule)} − without ${fmtMs(c.wasm.probeBootMs.without)}, medians of ${c.wasm.probeBootMs.pairs}), instantiate ${fmtMs(c.wasm.instantiateMs)}`,
    );
  }
  return lines.join("\n");
}

export function targetsTable(rows) {
  return table(
    ["group", "target", "value", "goal", "met"],
    rows.map((c) => [c.group, c.name, c.value ?? "–", c.goal, c.met === null ? `–${c.why ? ": " + c.why : ""}` : c.met ? "yes" : `NO${c.why ? ": " + c.why : ""}`]),
  );
}
