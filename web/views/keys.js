// Keys: the deployment's API keys (prefix, name, scopes, expiry, last use, status), a form to
// create one (its secret is shown once) and revocation, which takes effect on the next request.
import { h, mount, fmt, ui } from "../dom.js";
import { getJson, postJson, request, seg } from "../api.js";

const SCOPE_HELP =
  "admin · omi:read[:uid] · omi:export[:uid] · omi:write · apps:read[:app] · apps:write[:app] · storage:admin (separate with spaces or commas)";

export function keysView() {
  let el;
  let list;
  let created;

  async function load() {
    mount(list, ui.loading("the keys"));
    let keys;
    try {
      ({ keys } = await getJson("/api/admin/keys"));
    } catch (e) {
      return mount(list, ui.error("load the keys", e));
    }
    if (!keys.length) return mount(list, ui.empty("No API keys yet: API_TOKEN is the only credential."));
    mount(
      list,
      h(
        "table",
        { class: "table keys" },
        h("caption", { class: "sr-only" }, "API keys"),
        h("thead", {}, h("tr", {}, ["Prefix", "Name", "Scopes", "Created", "Expires", "Last used", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
        h(
          "tbody",
          {},
          keys.map((k) => {
            const revoke = h(
              "button",
              {
                type: "button",
                class: "button small",
                "aria-label": `Revoke key ${k.prefix}`,
                onclick: async () => {
                  if (!confirm(`Revoke key ${k.prefix} (${k.name})? Requests with it are refused from now on.`)) return;
                  revoke.disabled = true;
                  try {
                    await request(`/api/admin/keys/${seg(k.prefix)}`, { method: "DELETE" });
                    load();
                  } catch (e) {
                    revoke.disabled = false;
                    list.prepend(ui.error(`revoke ${k.prefix}`, e));
                  }
                },
              },
              "Revoke",
            );
            return h(
              "tr",
              { "data-prefix": k.prefix, "data-status": k.status },
              h("td", {}, h("code", {}, k.prefix)),
              h("td", {}, k.name),
              h("td", {}, (k.scopes || []).map((s) => h("code", { class: "scope" }, s))),
              h("td", {}, fmt.date(k.createdAt && new Date(k.createdAt).toISOString())),
              h("td", {}, k.expiresAt ? fmt.date(new Date(k.expiresAt).toISOString()) : "never"),
              h("td", {}, k.lastUsedAt ? fmt.date(new Date(k.lastUsedAt).toISOString()) : "–"),
              h("td", {}, ui.badge(k.status, `status-${k.status}`)),
              h("td", {}, k.status === "active" ? revoke : null),
            );
          }),
        ),
      ),
    );
  }

  function form() {
    const name = h("input", { id: "key-name", name: "name", required: true, maxlength: "100" });
    const scopes = h("input", { id: "key-scopes", name: "scopes", required: true, placeholder: "omi:read:mentor-uid", "aria-describedby": "key-scopes-help" });
    const days = h("input", { id: "key-days", name: "days", type: "number", min: "1", max: "3650", placeholder: "never" });
    return h(
      "form",
      {
        class: "card form-grid",
        "aria-labelledby": "new-key",
        onsubmit: async (e) => {
          e.preventDefault();
          const button = e.target.querySelector("button[type=submit]");
          button.disabled = true;
          try {
            const body = { name: name.value.trim(), scopes: scopes.value.split(/[\s,]+/).filter(Boolean) };
            if (days.value) body.expiresInDays = Number(days.value);
            const r = await postJson("/api/admin/keys", body);
            mount(
              created,
              h(
                "div",
                { class: "banner ok secret", role: "status" },
                h("strong", {}, `Key ${r.key.prefix} created. `),
                "Copy it now: it is shown once, and r2d1 keeps only its hash.",
                h("pre", { class: "secret-value", "data-secret": "key" }, r.secret),
              ),
            );
            e.target.reset();
            load();
          } catch (err) {
            mount(created, ui.error("create the key", err));
          } finally {
            button.disabled = false;
          }
        },
      },
      h("h2", { id: "new-key" }, "New key"),
      h("div", { class: "field" }, h("label", { for: "key-name" }, "Name"), name),
      h("div", { class: "field" }, h("label", { for: "key-scopes" }, "Scopes"), scopes, h("p", { id: "key-scopes-help", class: "hint" }, SCOPE_HELP)),
      h("div", { class: "field" }, h("label", { for: "key-days" }, "Expires in days (empty: never)"), days),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Create key")),
    );
  }

  return {
    mount(target) {
      el = target;
      list = h("div", { class: "keys-list" });
      created = h("div", { "aria-live": "polite" });
      mount(el, h("h1", {}, "Keys"), h("p", { class: "meta" }, "Every API key of this deployment. API_TOKEN stays the bootstrap admin and is not listed."), form(), created, h("h2", {}, "All keys"), list);
      load();
    },
  };
}
