// The rollout on the Storage page (issue 13): the share of apps whose big files go to R2, and
// the rollback switch that makes D1 the source again at once, both kept in D1 (no deploy); with
// the apps and bytes in each state.
import { h, mount, fmt, ui } from "../dom.js";
import { getJson, request } from "../api.js";

async function put(body) {
  const res = await request("/api/admin/storage/rollout", { method: "PUT", body: JSON.stringify(body), headers: { "content-type": "application/json" } });
  return res.json();
}

/** `confirm(title, text, action)` asks before the switch is flipped. */
export function rolloutSection({ confirm }) {
  const section = h("section", { class: "rollout", "aria-labelledby": "h-rollout" }, h("h2", { id: "h-rollout" }, "Rollout"), ui.loading("the rollout"));
  const status = h("div", { class: "section-messages", "aria-live": "polite" });

  function render(d, notice) {
    const r = d.report;
    const row = (key, label, x) => h("tr", { "data-state": key }, h("th", { scope: "row" }, label), h("td", { class: "num" }, fmt.number(x.apps)), h("td", { class: "num" }, fmt.number(x.files)), h("td", { class: "num" }, fmt.bytes(x.bytes)));
    const percent = h("input", { id: "rollout-percent", type: "number", min: "0", max: "100", step: "0.01", value: String(d.r2_percent) });
    const form = h(
      "form",
      {
        class: "inline-form",
        "aria-label": "Rollout percentage",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            render(await put({ r2_percent: percent.value === "" ? null : Number(percent.value) }), `Rollout set to ${percent.value} % of apps.`);
          } catch (err) {
            status.replaceChildren(ui.error("set the rollout", err));
          }
        },
      },
      h("label", { for: "rollout-percent" }, "Apps in the rollout (%)"),
      percent,
      h("button", { type: "submit", class: "button" }, "Save"),
    );
    const on = d.rollback;
    const toggle = h(
      "button",
      {
        type: "button",
        class: on ? "button primary" : "button danger",
        "aria-pressed": String(on),
        onclick: async () => {
          const ok = await confirm(
            on ? "Turn rollback off?" : "Turn rollback on?",
            on
              ? "Reads go back to R2 first, new writes follow the tiers again and the migrator resumes."
              : "Every read of a file that has a D1 copy is served from D1, new writes stay in D1 where they fit, and the migrator stops. It takes effect on the next request, without a deploy.",
            on ? "Turn off" : "Turn on",
          );
          if (!ok) return toggle.focus();
          try {
            render(await put({ rollback: on ? null : true }), on ? "Rollback is off." : "Rollback is on: reads come from D1 where a copy exists.");
          } catch (err) {
            status.replaceChildren(ui.error("flip the rollback switch", err));
          }
        },
      },
      on ? "Turn rollback off…" : "Turn rollback on…",
    );
    mount(
      section,
      h("h2", { id: "h-rollout" }, "Rollout"),
      status,
      notice ? ui.notice(notice) : null,
      h(
        "p",
        { class: "state", "data-rollback": String(on) },
        `${fmt.number(d.r2_percent)} % of apps follow ${d.global_mode}; the rest keep everything in D1. Rollback: `,
        on ? ui.badge("on", "warn") : ui.badge("off", "ok"),
        ` · ${fmt.bytes(r.readable_from_d1_bytes)} readable from D1, ${fmt.bytes(r.r2_only_bytes)} only in R2.`,
      ),
      form,
      h("div", { class: "tl-actions" }, toggle),
      h(
        "table",
        { class: "table rollout-states" },
        h("caption", { class: "sr-only" }, "Apps and bytes in each rollout state"),
        h("thead", {}, h("tr", {}, ["State", "Apps", "Files", "Bytes"].map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
        h(
          "tbody",
          {},
          row("rollout", "In the rollout", r.by_cohort.rollout),
          row("held_back", "Held back", r.by_cohort.held_back),
          row("overridden", "Own setting", r.by_cohort.overridden),
        ),
      ),
    );
  }

  (async () => {
    try {
      render(await getJson("/api/admin/storage/rollout"));
    } catch (e) {
      mount(section, h("h2", { id: "h-rollout" }, "Rollout"), ui.error("load the rollout", e));
    }
  })();
  return section;
}
