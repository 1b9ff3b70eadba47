import { h, mount, fmt, ui } from "../dom.js";
import { getJson, request } from "../api.js";
import { confirmDialog } from "./apps.js";
import { rolloutSection } from "./rollout.js";
import { savingsSection } from "./savings.js";

export function storageView() {
  let el;
  async function load() {
    const body = h("div", {}, ui.loading("the storage report"));
    mount(el, h("h1", {}, "Storage"), body);
    let r;
    try {
      r = await getJson("/api/admin/storage/report");
    } catch (e) {
      return mount(body, ui.error("load the storage report", e));
    }
    const tiers = ["database", "hybrid", "r2"];
    const names = { database: "Database (D1 inline)", hybrid: "Hybrid (D1 + R2)", r2: "R2 only" };
    const card = (label, value, sub, id) => h("div", { class: "card stat", "data-stat": id }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), sub ? h("div", { class: "stat-sub" }, sub) : null);
    const totalBytes = tiers.reduce((s, t) => s + r.files[t].bytes, 0);
    const dry = h("div", { class: "dry-run", "aria-live": "polite" });
    const button = h("button", { type: "button", class: "button primary", onclick: () => dryRun(button, dry) }, "Migration dry run");
    const m = r.migration;
    mount(
      body,
      h(
        "div",
        { class: "cards" },
        card("Current files", fmt.bytes(totalBytes), `${fmt.number(tiers.reduce((s, t) => s + r.files[t].files, 0))} files`, "files"),
        card("R2 stored", fmt.bytes(r.r2.stored_bytes), `${fmt.number(r.r2.objects)} objects`, "r2"),
        card("Dedupe saved", fmt.bytes(r.savings.dedupe_bytes), null, "dedupe"),
        card("Compression saved", fmt.bytes(r.savings.compression_bytes), null, "compression"),
        card("D1 bytes avoided", fmt.bytes(r.savings.d1_bytes_avoided), null, "d1"),
        card("Estimated R2 cost", `${fmt.usd(r.cost.estimated_usd_per_month)}/month`, `$${r.cost.estimated_usd_per_month.toPrecision(2)} at $${r.cost.usd_per_gb_month}/GB-month`, "cost"),
      ),
      h("h2", {}, "Bytes by tier"),
      h(
        "table",
        { class: "table" },
        h("caption", { class: "sr-only" }, "Files and version lines by storage tier"),
        h("thead", {}, h("tr", {}, ["Tier", "Current files", "Bytes", "Version lines", "Bytes"].map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
        h(
          "tbody",
          {},
          tiers.map((t) =>
            h(
              "tr",
              { "data-tier": t },
              h("th", { scope: "row" }, ui.badge(t === "r2" ? "R2" : t, `tier-${t}`), " ", names[t]),
              h("td", { class: "num" }, fmt.number(r.files[t].files)),
              h("td", { class: "num" }, fmt.bytes(r.files[t].bytes)),
              h("td", { class: "num" }, fmt.number(r.versions[t].files)),
              h("td", { class: "num" }, fmt.bytes(r.versions[t].bytes)),
            ),
          ),
        ),
      ),
      h("h2", {}, "Migration to R2"),
      h(
        "div",
        { class: "card migration" },
        h("label", { for: "migration-progress" }, `${m.progress_percent}% migrated`),
        h("progress", { id: "migration-progress", max: "100", value: String(m.progress_percent) }, `${m.progress_percent}%`),
        h("p", { class: "meta" }, `${fmt.number(m.migrated_files)} moved · ${fmt.number(m.pending_files)} waiting (${fmt.bytes(m.pending_bytes)})`),
        button,
        dry,
      ),
      rolloutSection({ confirm: confirmDialog }),
      savingsSection(r),
    );
  }

  async function dryRun(button, out) {
    button.disabled = true;
    mount(out, ui.loading("the dry run"));
    try {
      const res = await request("/api/admin/storage/migrate?dry_run=1", { method: "POST" });
      const d = await res.json();
      mount(
        out,
        ui.notice(`Dry run: ${d.moved.length} of ${d.processed} files looked at would move (${fmt.bytes(d.bytes_moved)}); ${fmt.number(d.remaining)} still waiting. Nothing was changed.`),
        d.moved.length
          ? h(
              "table",
              { class: "table" },
              h("caption", { class: "sr-only" }, "Files the migration would move"),
              h("thead", {}, h("tr", {}, ["App", "Path", "Size", "From", "To"].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, d.moved.slice(0, 50).map((x) => h("tr", {}, h("td", {}, x.app), h("td", {}, h("code", {}, x.path + (x.version ? ` (v${x.version})` : ""))), h("td", { class: "num" }, fmt.bytes(x.size_bytes)), h("td", {}, x.from), h("td", {}, x.to)))),
            )
          : null,
      );
    } catch (e) {
      mount(out, ui.error("run the migration dry run", e));
    } finally {
      button.disabled = false;
    }
  }

  return {
    mount(target) {
      el = target;
      load();
    },
  };
}
