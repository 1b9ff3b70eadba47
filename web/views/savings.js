// The savings the plan promised, on the Storage page (issue 13): the plan's success metrics
// beside the measured values, the month's cost by workload, D1 by table and R2 by kind.
import { h, fmt, ui } from "../dom.js";

const pct = (v) => (v === null || v === undefined ? "–" : `${v} %`);

/** The section, from the storage report `r` (which has `costs` when it covers every app). */
export function savingsSection(r) {
  if (!r.costs) return null;
  const m = r.costs.metrics;
  const files = (r.database_size_reduction_by_workload || []).find((x) => x.workload === "app_files");
  const metric = (key, label, measured, plan, met) =>
    h("tr", { "data-metric": key }, h("th", { scope: "row" }, label), h("td", { class: "num" }, measured), h("td", {}, plan), h("td", {}, met ? ui.badge("met", "ok") : ui.badge("not met", "warn")));
  const ex = r.plan_example;
  return h(
    "section",
    { class: "savings", "aria-labelledby": "h-savings" },
    h("h2", { id: "h-savings" }, "Savings against the plan"),
    h(
      "table",
      { class: "table metrics" },
      h("caption", { class: "sr-only" }, "The plan's success metrics and the measured values"),
      h("thead", {}, h("tr", {}, ["Metric", "Measured", "Plan", ""].map((c, i) => h("th", { scope: "col", class: i === 1 ? "num" : "" }, c)))),
      h(
        "tbody",
        {},
        metric("database", "Database size reduction (app files)", pct(files?.percent), m.database_size_reduction_percent.plan, files?.percent >= 70 && files?.percent <= 80),
        metric("database_all", "Database size reduction (all workloads)", pct(m.database_size_reduction_percent.value), m.database_size_reduction_percent.plan, m.database_size_reduction_percent.met),
        metric("cost", "Storage cost reduction", pct(m.storage_cost_reduction_percent.value), m.storage_cost_reduction_percent.plan, m.storage_cost_reduction_percent.met),
        metric("omi", "Monthly cost of the Omi workload", m.omi_monthly_usd.value === null ? "–" : fmt.usd(m.omi_monthly_usd.value), m.omi_monthly_usd.plan, m.omi_monthly_usd.met),
      ),
    ),
    h(
      "p",
      { class: "meta" },
      `Each byte moved from D1 to R2 costs ${m.cost_reduction_per_byte_moved_percent} % less, but what stays in D1 costs the same on both sides: a 70-80 % smaller database cannot make storage more than about that much cheaper. `,
      `This month: ${fmt.usd(r.costs.monthly.total_usd)} billed after free allowances.`,
    ),
    h(
      "table",
      { class: "table workloads" },
      h("caption", {}, "Per workload, per month at list prices"),
      h("thead", {}, h("tr", {}, ["Workload", "D1", "R2", "Cost", "All in D1 would cost"].map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
      h(
        "tbody",
        {},
        r.costs.workloads.map((w) =>
          h("tr", { "data-workload": w.workload }, h("th", { scope: "row" }, w.workload), h("td", { class: "num" }, fmt.bytes(w.d1_bytes)), h("td", { class: "num" }, fmt.bytes(w.r2_bytes)), h("td", { class: "num" }, `$${w.list_price.total_usd.toPrecision(3)}`), h("td", { class: "num" }, `$${w.all_inline_list_price.total_usd.toPrecision(3)}`)),
        ),
      ),
    ),
    h(
      "details",
      {},
      h("summary", {}, "D1 by table, R2 by kind"),
      h(
        "table",
        { class: "table" },
        h("caption", { class: "sr-only" }, "D1 tables, estimated from row sizes"),
        h("thead", {}, h("tr", {}, ["Table", "Workload", "Rows", "Bytes"].map((c, i) => h("th", { scope: "col", class: i > 1 ? "num" : "" }, c)))),
        h("tbody", {}, r.costs.d1.tables.map((t) => h("tr", { "data-table": t.table }, h("th", { scope: "row" }, h("code", {}, t.table)), h("td", {}, t.workload), h("td", { class: "num" }, fmt.number(t.rows)), h("td", { class: "num" }, fmt.bytes(t.estimated_bytes))))),
      ),
      h(
        "table",
        { class: "table" },
        h("caption", { class: "sr-only" }, "R2 objects by kind"),
        h("thead", {}, h("tr", {}, ["Kind", "Workload", "Objects", "Bytes"].map((c, i) => h("th", { scope: "col", class: i > 1 ? "num" : "" }, c)))),
        h("tbody", {}, r.costs.r2.prefixes.map((p) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, p.prefix)), h("td", {}, p.workload), h("td", { class: "num" }, fmt.number(p.objects)), h("td", { class: "num" }, fmt.bytes(p.bytes))))),
      ),
    ),
    ex
      ? h(
          "p",
          { class: "meta", "data-plan-example": String(ex.database_size_reduction_percent) },
          `The plan's example (${ex.apps} apps × ${ex.files / ex.apps} files × ${fmt.bytes(ex.average_file_bytes)}) under these tiers (${fmt.bytes(ex.inline_max_bytes)} / ${fmt.bytes(ex.hybrid_max_bytes)}): D1 ${ex.database_size_reduction_percent} % smaller (model).`,
        )
      : null,
  );
}
