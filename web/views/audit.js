// Audit: every change made through the API and every refusal of a valid key, newest first,
// filtered by key, route and outcome, paged with the API's cursor.
import { h, mount, ui } from "../dom.js";
import { getJson } from "../api.js";

export function auditView() {
  let el;
  let rows;
  let more;
  const filters = { key: "", outcome: "" };

  async function load(cursor) {
    if (!cursor) mount(rows, ui.loading("the audit log"));
    const q = new URLSearchParams({ limit: "50" });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    if (cursor) q.set("cursor", cursor);
    let page;
    try {
      page = await getJson(`/api/admin/audit?${q}`);
    } catch (e) {
      return mount(rows, ui.error("load the audit log", e));
    }
    const body = page.entries.map((e) =>
      h(
        "tr",
        { "data-outcome": e.outcome },
        h("td", {}, e.at.replace("T", " ").slice(0, 19)),
        h("td", {}, h("code", {}, e.key || "–")),
        h("td", {}, e.method),
        h("td", {}, h("code", {}, e.route)),
        h("td", {}, e.target),
        h("td", {}, ui.badge(`${e.outcome} ${e.status}`, `outcome-${e.outcome}`)),
      ),
    );
    if (!cursor) {
      if (!body.length) return mount(rows, ui.empty("Nothing recorded for these filters."));
      mount(
        rows,
        h(
          "table",
          { class: "table audit" },
          h("caption", { class: "sr-only" }, "Audit log"),
          h("thead", {}, h("tr", {}, ["Time (UTC)", "Key", "Method", "Route", "Target", "Outcome"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, body),
        ),
      );
    } else {
      rows.querySelector("tbody").append(...body);
    }
    mount(more, page.nextCursor ? h("button", { type: "button", class: "button", onclick: () => load(page.nextCursor) }, "Older") : null);
  }

  return {
    mount(target) {
      el = target;
      rows = h("div", {});
      more = h("div", { class: "pager" });
      const key = h("input", { id: "audit-key", placeholder: "prefix, API_TOKEN or cron" });
      const outcome = h("select", { id: "audit-outcome" }, ["", "ok", "denied", "rejected", "failed"].map((o) => h("option", { value: o }, o || "any")));
      const form = h(
        "form",
        { class: "filters", onsubmit: (e) => (e.preventDefault(), (filters.key = key.value.trim()), (filters.outcome = outcome.value), load()) },
        h("div", { class: "field" }, h("label", { for: "audit-key" }, "Key"), key),
        h("div", { class: "field" }, h("label", { for: "audit-outcome" }, "Outcome"), outcome),
        h("div", { class: "field actions" }, h("button", { type: "submit" }, "Filter")),
      );
      mount(el, h("h1", {}, "Audit"), form, rows, more);
      load();
    },
  };
}
