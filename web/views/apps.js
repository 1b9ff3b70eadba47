import { h, mount, fmt, ui, saveBlob, dispositionName } from "../dom.js";
import { can } from "../session.js";
import { getJson, request, postJson, seg } from "../api.js";
import { lifecycleSection, versionControls } from "./app-lifecycle.js";

const TIERS = { database: "database", hybrid: "hybrid", r2: "R2" };
const tierBadge = (loc) => ui.badge(TIERS[loc] || loc || "?", `tier-${loc}`);
const shortSha = (sha) => h("code", { title: sha, class: "sha" }, (sha || "").slice(0, 12));

export function appsView() {
  return {
    async mount(el) {
      const body = h("div", {}, ui.loading("apps"));
      mount(el, h("h1", {}, "Apps"), body);
      try {
        const { apps } = await getJson("/api/apps");
        if (!apps.length) return mount(body, ui.empty("No app has stored a file yet."));
        mount(
          body,
          h(
            "table",
            { class: "table" },
            h("caption", { class: "sr-only" }, "Apps"),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "App"), h("th", { scope: "col" }, "Storage mode"), h("th", { scope: "col", class: "num" }, "Updated"))),
            h(
              "tbody",
              {},
              apps.map((a) =>
                h(
                  "tr",
                  { "data-app": a.app },
                  h("th", { scope: "row" }, h("a", { href: `#/apps/${seg(a.app)}` }, a.app)),
                  h("td", {}, a.storage_mode || "default"),
                  h("td", { class: "num" }, fmt.date(a.updated_at)),
                ),
              ),
            ),
          ),
        );
      } catch (e) {
        mount(body, ui.error("load the apps", e));
      }
    },
  };
}

async function download(path, fallback, button, errorSlot) {
  button.disabled = true;
  try {
    const res = await request(path);
    saveBlob(await res.blob(), dispositionName(res, fallback));
  } catch (e) {
    errorSlot.replaceChildren(ui.error(`download ${fallback}`, e));
  } finally {
    button.disabled = false;
  }
}

/** A modal confirmation; resolves true when confirmed. Escape or Cancel resolves false. */
export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "card", "aria-labelledby": "dlg-title", "aria-describedby": "dlg-text" },
      h("h2", { id: "dlg-title" }, title),
      h("p", { id: "dlg-text" }, text),
      h(
        "form",
        { method: "dialog", class: "dialog-actions" },
        h("button", { value: "cancel", class: "button", autofocus: true }, "Cancel"),
        h("button", { value: "ok", class: "button primary" }, action),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function appView(app) {
  let el;
  let highlight = null;
  let notice = null;

  async function load() {
    const files = h("section", { "aria-labelledby": "h-files" }, h("h2", { id: "h-files" }, "Files"), ui.loading("files"));
    const versions = h("section", { "aria-labelledby": "h-versions" }, h("h2", { id: "h-versions" }, "Versions"), ui.loading("versions"));
    const messages = h("div", { class: "messages" }, notice ? ui.notice(notice) : null);
    notice = null;
    const reload = async (text) => {
      notice = text;
      await load();
    };
    mount(el, h("p", { class: "crumbs" }, h("a", { href: "#/apps" }, "Apps"), " / "), h("h1", {}, app), messages, h("div", { class: "two-col" }, files, versions), lifecycleSection(app, { confirm: confirmDialog, reload }));
    const [f, v] = await Promise.allSettled([getJson(`/api/apps/${seg(app)}/files`), getJson(`/api/apps/${seg(app)}/versions`)]);

    if (f.status === "rejected") files.append(ui.error("load the files", f.reason));
    else {
      const list = f.value.files;
      files.lastChild.remove();
      files.append(
        h("p", { class: "count" }, `${list.length} files, ${fmt.bytes(f.value.total_bytes)}`),
        list.length
          ? h(
              "table",
              { class: "table files" },
              h("caption", { class: "sr-only" }, `Files of ${app}`),
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Path"), h("th", { scope: "col", class: "num" }, "Size"), h("th", { scope: "col" }, "Tier"), h("th", { scope: "col" }, "SHA-256"))),
              h(
                "tbody",
                {},
                list.map((x) =>
                  h("tr", { "data-path": x.path }, h("th", { scope: "row" }, h("code", {}, x.path)), h("td", { class: "num" }, fmt.bytes(x.size_bytes)), h("td", {}, tierBadge(x.storage_location)), h("td", {}, shortSha(x.sha256))),
                ),
              ),
            )
          : ui.empty("No files."),
      );
    }

    if (v.status === "rejected") return versions.append(ui.error("load the versions", v.reason));
    versions.lastChild.remove();
    const list = v.value.versions.slice().sort((a, b) => b.version_number - a.version_number);
    if (!list.length) return versions.append(ui.empty("No versions yet."));
    const option = (n, sel) => h("option", { value: n, selected: sel }, `v${n}`);
    const from = h("select", { id: "diff-from" }, list.map((x, i) => option(x.version_number, i === 1 || list.length === 1)));
    const to = h("select", { id: "diff-to" }, list.map((x, i) => option(x.version_number, i === 0)));
    versions.append(
      h(
        "form",
        { class: "compare", "aria-label": "Compare two versions", onsubmit: (e) => (e.preventDefault(), (location.hash = `#/apps/${seg(app)}/diff?from=${from.value}&to=${to.value}`)) },
        h("label", { for: "diff-from" }, "Compare"),
        from,
        h("label", { for: "diff-to" }, "with"),
        to,
        h("button", { type: "submit", class: "button" }, "Show diff"),
      ),
      h(
        "ol",
        { class: "timeline" },
        list.map((x) => {
          const errs = h("div");
          const dl = h("button", { type: "button", class: "button small", onclick: () => download(`/api/apps/${seg(app)}/versions/${x.version_number}/archive`, `${app}-v${x.version_number}.tar.gz`, dl, errs) }, "Download .tar.gz");
          const restore = h(
            "button",
            {
              type: "button",
              class: "button small",
              "aria-label": `Restore version ${x.version_number}`,
              onclick: async () => {
                const ok = await confirmDialog(`Restore v${x.version_number}?`, `This makes a new version of ${app} with the files of v${x.version_number}. Nothing is deleted: the current files stay in their own version.`, "Restore");
                if (!ok) return restore.focus();
                restore.disabled = true;
                try {
                  const doc = await postJson(`/api/apps/${seg(app)}/versions/${x.version_number}/restore`);
                  highlight = doc.version_number;
                  notice = `Restored v${x.version_number} as new version v${doc.version_number}.`;
                  await load();
                  el.querySelector(`[data-version="${highlight}"]`)?.focus();
                } catch (e) {
                  restore.disabled = false;
                  errs.replaceChildren(ui.error(`restore v${x.version_number}`, e));
                }
              },
            },
            "Restore…",
          );
          const life = versionControls(app, x, { confirm: confirmDialog, reload, errs });
          return h(
            "li",
            { "data-version": x.version_number, tabindex: "-1", class: x.version_number === highlight ? "fresh" : "" },
            h("div", { class: "tl-head" }, h("strong", {}, `v${x.version_number}`), " ", h("time", { datetime: x.created_at }, fmt.date(x.created_at)), x.restored_from ? ui.badge(`restored from v${x.restored_from}`, "ok") : null, x.environment ? ui.badge(x.environment) : null, life.tags),
            h("p", { class: "changelog" }, x.changelog || h("em", {}, "No changelog")),
            h("p", { class: "meta" }, `${x.file_count} files · ${fmt.bytes(x.total_bytes)}`),
            // Restoring, deleting and tagging write: only for a key that may write this app.
            h("div", { class: "tl-actions" }, dl, can("apps:write", app) ? [restore, life.actions] : null),
            errs,
          );
        }),
      ),
    );
  }

  return {
    mount(target) {
      el = target;
      load();
    },
  };
}

function diffLines(text) {
  return h(
    "pre",
    { class: "diff", tabindex: "0" },
    text.replace(/\n$/, "").split("\n").map((line) => {
      let cls = "ctx";
      let label = null;
      if (line.startsWith("+++") || line.startsWith("---")) cls = "meta";
      else if (line.startsWith("@@")) cls = "hunk";
      else if (line.startsWith("+")) (cls = "add"), (label = "added: ");
      else if (line.startsWith("-")) (cls = "del"), (label = "removed: ");
      return h("span", { class: `line ${cls}` }, label ? h("span", { class: "sr-only" }, label) : null, line, "\n");
    }),
  );
}

export function diffView(app) {
  let el;
  async function load(route) {
    const a = route.params.get("from");
    const b = route.params.get("to");
    const body = h("div", {}, ui.loading("the diff"));
    mount(el, h("p", { class: "crumbs" }, h("a", { href: "#/apps" }, "Apps"), " / ", h("a", { href: `#/apps/${seg(app)}` }, app), " / "), h("h1", {}, `${app}: v${a} → v${b}`), body);
    if (!a || !b) return mount(body, ui.empty("Pick two versions on the app's page."));
    try {
      const d = await getJson(`/api/apps/${seg(app)}/versions/${seg(a)}/diff/${seg(b)}`);
      const s = d.summary;
      const changed = d.files.filter((f) => f.change !== "unchanged");
      mount(
        body,
        h("p", { class: "summary" }, ui.badge(`${s.added} added`, "add"), ui.badge(`${s.modified} modified`, "mod"), ui.badge(`${s.deleted} deleted`, "del"), ui.badge(`${s.unchanged} unchanged`)),
        changed.length ? null : ui.empty("The two versions hold the same files."),
        changed.map((f) =>
          h(
            "section",
            { class: "diff-file card", "data-path": f.path, "data-change": f.change },
            h("h2", {}, ui.badge(f.change, { added: "add", modified: "mod", deleted: "del" }[f.change]), " ", h("code", {}, f.path)),
            h("p", { class: "meta" }, `${f.from_size !== null && f.from_size !== undefined ? fmt.bytes(f.from_size) : "—"} → ${f.to_size !== null && f.to_size !== undefined ? fmt.bytes(f.to_size) : "—"}`),
            f.diff ? diffLines(f.diff) : h("p", { class: "empty" }, f.too_large ? `${f.too_large.message[0].toUpperCase()}${f.too_large.message.slice(1)}.` : "No line diff (binary file)."),
          ),
        ),
        d.files.some((f) => f.change === "unchanged")
          ? h("details", {}, h("summary", {}, "Unchanged files"), h("ul", {}, d.files.filter((f) => f.change === "unchanged").map((f) => h("li", {}, h("code", {}, f.path)))))
          : null,
      );
    } catch (e) {
      mount(body, ui.error(`compare v${a} with v${b}`, e));
    }
  }
  return {
    mount(target, route) {
      el = target;
      load(route);
    },
    update: (route) => load(route),
  };
}
