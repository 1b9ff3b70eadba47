// An app's lifecycle on its page (issue 13): where its bytes are and why (rollout cohort), its
// quotas against its usage, its retention policy with "apply" behind a confirmation, version
// tags, deleting a version or the whole app (each after a confirmation).
import { h, mount, fmt, ui } from "../dom.js";
import { getJson, request, seg } from "../api.js";
import { can } from "../session.js";

const COHORT = { rollout: "in the rollout", held_back: "held back (all in D1)", override: "own setting" };

async function send(path, method, body) {
  const res = await request(path, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
  return res.status === 204 ? null : res.json();
}

const numberOrNull = (input) => (input.value.trim() === "" ? null : Number(input.value));

/**
 * The lifecycle section of an app's page. `confirm(title, text, action)` asks before anything
 * destructive; `reload(notice)` redraws the page after a change.
 */
export function lifecycleSection(app, { confirm, reload }) {
  const section = h("section", { class: "lifecycle", "aria-labelledby": "h-lifecycle" }, h("h2", { id: "h-lifecycle" }, "Storage, quotas and retention"), ui.loading("the app's settings"));
  const errors = h("div", { class: "section-messages" });

  async function save(body, what) {
    errors.replaceChildren();
    try {
      await send(`/api/apps/${seg(app)}`, "PATCH", body);
      await reload(`Saved the ${what}.`);
    } catch (e) {
      errors.replaceChildren(ui.error(`save the ${what}`, e));
    }
  }

  (async () => {
    let d;
    try {
      d = await getJson(`/api/apps/${seg(app)}`);
    } catch (e) {
      return mount(section, h("h2", { id: "h-lifecycle" }, "Storage, quotas and retention"), ui.error("load the app's settings", e));
    }
    const q = d.effective_quota;
    const quotaRow = (name, label, used, limit, format) =>
      h(
        "tr",
        { "data-quota": name },
        h("th", { scope: "row" }, label),
        h("td", { class: "num" }, format(used)),
        h("td", { class: "num" }, limit === null ? "unlimited" : format(limit)),
        h("td", {}, limit !== null && used > limit ? ui.badge("over", "del") : limit !== null && used >= limit ? ui.badge("full", "mod") : ui.badge("ok", "ok")),
      );
    const input = (id, label, value, hint) =>
      h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, type: "number", min: "0", step: "1", value: value ?? "", placeholder: hint }));
    const quotaForm = h(
      "form",
      {
        class: "inline-form",
        "aria-label": "Quotas",
        onsubmit: (e) => {
          e.preventDefault();
          save({ quota: { max_bytes: numberOrNull(quotaForm.querySelector("#q-bytes")), max_files: numberOrNull(quotaForm.querySelector("#q-files")), max_versions: numberOrNull(quotaForm.querySelector("#q-versions")) } }, "quotas");
        },
      },
      input("q-bytes", "Max bytes", d.quota.max_bytes, "default"),
      input("q-files", "Max files", d.quota.max_files, "default"),
      input("q-versions", "Max versions", d.quota.max_versions, "default"),
      h("button", { type: "submit", class: "button" }, "Save quotas"),
    );
    const retentionForm = h(
      "form",
      {
        class: "inline-form",
        "aria-label": "Retention",
        onsubmit: (e) => {
          e.preventDefault();
          save({ retention: { keep_last: numberOrNull(retentionForm.querySelector("#r-last")), keep_days: numberOrNull(retentionForm.querySelector("#r-days")) } }, "retention policy");
        },
      },
      input("r-last", "Keep the last N versions", d.retention.keep_last, "all"),
      input("r-days", "Keep versions newer than (days)", d.retention.keep_days, "all"),
      h("button", { type: "submit", class: "button" }, "Save retention"),
    );
    const apply = h(
      "button",
      {
        type: "button",
        class: "button",
        onclick: async () => {
          errors.replaceChildren();
          try {
            const dry = await send(`/api/apps/${seg(app)}/retention/run?dry_run=true`, "POST");
            if (!dry.delete.length) return reload("Retention: nothing to delete (the newest and tagged versions are always kept).");
            const ok = await confirm("Apply retention?", `This deletes ${dry.delete.map((n) => `v${n}`).join(", ")} of ${app} and frees the bytes only they hold. Kept: ${dry.keep.map((n) => `v${n}`).join(", ")}.`, "Delete versions");
            if (!ok) return apply.focus();
            const run = await send(`/api/apps/${seg(app)}/retention/run`, "POST");
            await reload(`Retention deleted ${run.delete.map((n) => `v${n}`).join(", ")} (${fmt.bytes(run.removed?.bytes_freed ?? 0)} freed).`);
          } catch (e) {
            errors.replaceChildren(ui.error("apply the retention policy", e));
          }
        },
      },
      "Apply retention…",
    );
    const remove = h(
      "button",
      {
        type: "button",
        class: "button danger",
        onclick: async () => {
          const ok = await confirm(`Delete ${app}?`, `Every file, version and tag of ${app} is deleted, with the R2 objects only it holds. This cannot be undone.`, "Delete app");
          if (!ok) return remove.focus();
          try {
            await send(`/api/apps/${seg(app)}`, "DELETE");
            location.hash = "#/apps";
          } catch (e) {
            errors.replaceChildren(ui.error(`delete ${app}`, e));
          }
        },
      },
      "Delete app…",
    );
    mount(
      section,
      h("h2", { id: "h-lifecycle" }, "Storage, quotas and retention"),
      errors,
      h(
        "p",
        { class: "state", "data-cohort": d.cohort },
        "Mode ",
        ui.badge(d.effective_storage_mode, `tier-${d.effective_storage_mode === "database" ? "database" : d.effective_storage_mode}`),
        ` · ${COHORT[d.cohort] || d.cohort} (bucket ${d.rollout_bucket})`,
        d.rollback ? [" · ", ui.badge("rollback on", "warn")] : null,
      ),
      h(
        "table",
        { class: "table storage-state" },
        h("caption", { class: "sr-only" }, `Where ${app}'s current files are`),
        h("thead", {}, h("tr", {}, ["Location", "Files", "Bytes"].map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
        h(
          "tbody",
          {},
          ["database", "hybrid", "r2"].map((loc) =>
            h("tr", { "data-location": loc }, h("th", { scope: "row" }, ui.badge(loc === "r2" ? "R2" : loc, `tier-${loc}`)), h("td", { class: "num" }, fmt.number(d.storage[loc].files)), h("td", { class: "num" }, fmt.bytes(d.storage[loc].bytes))),
          ),
        ),
      ),
      h(
        "table",
        { class: "table quotas" },
        h("caption", { class: "sr-only" }, `Quotas of ${app}`),
        h("thead", {}, h("tr", {}, ["Quota", "Used", "Limit", ""].map((c, i) => h("th", { scope: "col", class: i === 1 || i === 2 ? "num" : "" }, c)))),
        h(
          "tbody",
          {},
          quotaRow("bytes", "Bytes", d.usage.bytes, q.max_bytes, fmt.bytes),
          quotaRow("files", "Files", d.usage.files, q.max_files, fmt.number),
          quotaRow("versions", "Versions", d.usage.versions, q.max_versions, fmt.number),
        ),
      ),
      // Settings, retention and deleting write: only for a key that may write this app.
      can("apps:write", app) ? [quotaForm, retentionForm, h("div", { class: "tl-actions" }, apply, remove)] : null,
    );
  })();
  return section;
}

/** A version's tags (each removable), a "tag" form, and "Delete…"; for the timeline. */
export function versionControls(app, v, { confirm, reload, errs }) {
  const fail = (what) => (e) => errs.replaceChildren(ui.error(what, e));
  const tags = (v.tags || []).map((t) =>
    h(
      "span",
      { class: "tag", "data-tag": t },
      ui.badge(t, "ok"),
      h(
        "button",
        {
          type: "button",
          class: "link-button",
          "aria-label": `Remove tag ${t}`,
          onclick: () => send(`/api/apps/${seg(app)}/tags/${seg(t)}`, "DELETE").then(() => reload(`Removed tag ${t}.`), fail(`remove tag ${t}`)),
        },
        "×",
      ),
    ),
  );
  const id = `tag-${v.version_number}`;
  const field = h("input", { id, type: "text", placeholder: "production", pattern: "[a-z0-9][a-z0-9._-]{0,31}", size: "10" });
  const tagForm = h(
    "form",
    {
      class: "inline-form tag-form",
      "aria-label": `Tag version ${v.version_number}`,
      onsubmit: (e) => {
        e.preventDefault();
        const tag = field.value.trim();
        if (!tag) return;
        send(`/api/apps/${seg(app)}/tags/${seg(tag)}`, "PUT", { version: v.version_number }).then(() => reload(`Tagged v${v.version_number} ${tag}.`), fail(`tag v${v.version_number}`));
      },
    },
    h("label", { for: id, class: "sr-only" }, `Tag for version ${v.version_number}`),
    field,
    h("button", { type: "submit", class: "button small" }, "Tag"),
  );
  const del = h(
    "button",
    {
      type: "button",
      class: "button small danger",
      "aria-label": `Delete version ${v.version_number}`,
      disabled: (v.tags || []).length > 0,
      title: (v.tags || []).length ? "Remove its tags first" : null,
      onclick: async () => {
        const ok = await confirm(`Delete v${v.version_number}?`, `Version ${v.version_number} of ${app} is deleted with the R2 objects only it holds. Its number is never reused.`, "Delete version");
        if (!ok) return del.focus();
        try {
          const r = await send(`/api/apps/${seg(app)}/versions/${v.version_number}`, "DELETE");
          await reload(`Deleted v${v.version_number} (${fmt.bytes(r.bytes_freed)} freed).`);
        } catch (e) {
          fail(`delete v${v.version_number}`)(e);
        }
      },
    },
    "Delete…",
  );
  return { tags, actions: [tagForm, del] };
}
