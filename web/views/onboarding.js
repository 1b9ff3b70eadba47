// Onboarding: how mentors get connected. A mentor's own webhook credential (token or signing
// secret) with the exact URLs to paste into Omi; invite codes for the Omi app's auth step; and
// enrollment: who is linked, and which unenrolled uids Omi has been delivering for.
import { h, mount, fmt, ui } from "../dom.js";
import { getJson, postJson, request, seg } from "../api.js";

const when = (ms) => (ms ? fmt.date(new Date(ms).toISOString()) : "–");

function copyable(label, value, name) {
  return h("div", { class: "copy-row" }, h("span", { class: "copy-label" }, label), h("code", { class: "copy-value", "data-copy": name }, value));
}

export function onboardingView() {
  let credOut;
  let credList;
  let inviteOut;
  let invites;
  let enrolled;

  async function showCredentials(uid) {
    mount(credList, ui.loading(`${uid}'s credentials`));
    try {
      const { credentials } = await getJson(`/api/admin/mentors/${seg(uid)}/credentials`);
      if (!credentials.length) return mount(credList, ui.empty(`${uid} has no webhook credential.`));
      mount(
        credList,
        h(
          "table",
          { class: "table" },
          h("caption", { class: "sr-only" }, `${uid}'s webhook credentials`),
          h("thead", {}, h("tr", {}, ["Id", "Kind", "Created", "Last used", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            credentials.map((c) =>
              h(
                "tr",
                { "data-credential": c.id },
                h("td", {}, String(c.id)),
                h("td", {}, c.kind === "token" ? "token" : "signing secret"),
                h("td", {}, when(c.createdAt)),
                h("td", {}, when(c.lastUsedAt)),
                h("td", {}, ui.badge(c.status + (c.status === "retiring" ? ` until ${when(c.retiresAt)}` : ""))),
                h(
                  "td",
                  {},
                  c.status === "revoked"
                    ? null
                    : h(
                        "button",
                        {
                          type: "button",
                          class: "button small",
                          "aria-label": `Revoke credential ${c.id}`,
                          onclick: async () => {
                            if (!confirm(`Revoke credential ${c.id} of ${uid}? Omi deliveries using it are refused from now on.`)) return;
                            await request(`/api/admin/mentors/${seg(uid)}/credentials/${c.id}`, { method: "DELETE" });
                            showCredentials(uid);
                          },
                        },
                        "Revoke",
                      ),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      mount(credList, ui.error(`load ${uid}'s credentials`, e));
    }
  }

  function credentialForm() {
    const uid = h("input", { id: "cred-uid", required: true, maxlength: "128", placeholder: "the mentor's Omi uid" });
    const label = h("input", { id: "cred-label", maxlength: "100", placeholder: "e.g. Ana Pérez" });
    const kind = h("select", { id: "cred-kind" }, h("option", { value: "token" }, "Token in the URL (any Omi sender)"), h("option", { value: "signingSecret" }, "Signing secret (Omi signs each delivery)"));
    const secret = h("input", { id: "cred-secret", placeholder: "whsec_… from Omi (empty: r2d1 makes one)" });
    return h(
      "form",
      {
        class: "card form-grid",
        "aria-labelledby": "cred-title",
        onsubmit: async (e) => {
          e.preventDefault();
          const button = e.target.querySelector("button[type=submit]");
          button.disabled = true;
          try {
            const body = { kind: kind.value };
            if (label.value.trim()) body.label = label.value.trim();
            if (kind.value === "signingSecret" && secret.value.trim()) body.secret = secret.value.trim();
            const r = await postJson(`/api/admin/mentors/${seg(uid.value.trim())}/credentials`, body);
            mount(
              credOut,
              h(
                "div",
                { class: "banner ok secret", role: "status" },
                h("strong", {}, `Credential ${r.credential.id} for ${r.uid} created. `),
                r.token ? "The token is inside the URLs below; they are shown once." : "The secret is shown once.",
                r.secret ? copyable("Signing secret", r.secret, "secret") : null,
                copyable("Memory created", r.urls.memory, "memory"),
                copyable("Real-time transcript", r.urls.transcript, "transcript"),
                copyable("Day summary", r.urls.daySummary, "daySummary"),
                copyable("Setup check", r.urls.setup, "setup"),
                h("p", {}, r.instructions),
                r.retiring.length ? h("p", {}, `The previous credential stays valid until ${when(r.retiring[0].retiresAt)}.`) : null,
              ),
            );
            showCredentials(r.uid);
            loadEnrollment(); // a credential enrolls its uid
          } catch (err) {
            mount(credOut, ui.error("create the credential", err));
          } finally {
            button.disabled = false;
          }
        },
      },
      h("h2", { id: "cred-title" }, "A mentor's webhook credential"),
      h("p", { class: "hint" }, "Valid for this mentor's uid only. Creating another of the same kind rotates it: the previous one keeps working for 24 hours."),
      h("div", { class: "field" }, h("label", { for: "cred-uid" }, "Omi uid"), uid),
      h("div", { class: "field" }, h("label", { for: "cred-label" }, "Mentor (name)"), label),
      h("div", { class: "field" }, h("label", { for: "cred-kind" }, "Kind"), kind),
      h("div", { class: "field" }, h("label", { for: "cred-secret" }, "Signing secret (signing secret only)"), secret),
      h(
        "div",
        { class: "field actions" },
        h("button", { type: "submit" }, "Create credential"),
        h("button", { type: "button", class: "button", onclick: () => uid.value.trim() && showCredentials(uid.value.trim()) }, "Show existing"),
      ),
    );
  }

  async function loadInvites() {
    mount(invites, ui.loading("the invite codes"));
    try {
      const { invites: list } = await getJson("/api/admin/invites");
      if (!list.length) return mount(invites, ui.empty("No invite codes yet."));
      mount(
        invites,
        h(
          "table",
          { class: "table" },
          h("caption", { class: "sr-only" }, "Invite codes"),
          h("thead", {}, h("tr", {}, ["For", "Uses", "Expires", "Status", ""].map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            list.map((i) =>
              h(
                "tr",
                { "data-invite": i.id },
                h("td", {}, i.label),
                h("td", { class: "num" }, `${i.uses} / ${i.maxUses}`),
                h("td", {}, when(i.expiresAt)),
                h("td", {}, ui.badge(i.status)),
                h(
                  "td",
                  {},
                  i.status === "active"
                    ? h("button", { type: "button", class: "button small", "aria-label": `Withdraw invite for ${i.label}`, onclick: async () => (await request(`/api/admin/invites/${i.id}`, { method: "DELETE" }), loadInvites()) }, "Withdraw")
                    : null,
                ),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      mount(invites, ui.error("load the invite codes", e));
    }
  }

  function inviteForm() {
    const label = h("input", { id: "invite-label", required: true, maxlength: "100", placeholder: "who it is for" });
    const uses = h("input", { id: "invite-uses", type: "number", min: "1", max: "500", value: "1" });
    const days = h("input", { id: "invite-days", type: "number", min: "1", max: "90", value: "14" });
    return h(
      "form",
      {
        class: "card form-grid",
        "aria-labelledby": "invite-title",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const r = await postJson("/api/admin/invites", { label: label.value.trim(), maxUses: Number(uses.value), expiresInDays: Number(days.value) });
            mount(
              inviteOut,
              h(
                "div",
                { class: "banner ok secret", role: "status" },
                h("strong", {}, `Invite for ${r.invite.label}: `),
                h("code", { class: "invite-code", "data-copy": "code" }, r.code),
                h("p", {}, "Shown once. The mentor installs the programme's Omi app and types this code on its set-up page (", h("code", {}, r.enrollUrl), ")."),
              ),
            );
            label.value = "";
            loadInvites();
          } catch (err) {
            mount(inviteOut, ui.error("create the invite", err));
          }
        },
      },
      h("h2", { id: "invite-title" }, "Invite codes (Omi app install)"),
      h("div", { class: "field" }, h("label", { for: "invite-label" }, "For"), label),
      h("div", { class: "field" }, h("label", { for: "invite-uses" }, "Uses"), uses),
      h("div", { class: "field" }, h("label", { for: "invite-days" }, "Valid for days"), days),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, "Create invite")),
    );
  }

  async function loadEnrollment() {
    mount(enrolled, ui.loading("enrollment"));
    try {
      const r = await getJson("/api/admin/enrollment");
      const enroll = (uid) =>
        h(
          "button",
          {
            type: "button",
            class: "button small",
            "aria-label": `Enroll ${uid}`,
            onclick: async () => {
              await postJson(`/api/admin/enrollment/${seg(uid)}`, {});
              loadEnrollment();
            },
          },
          "Enroll",
        );
      mount(
        enrolled,
        h("p", {}, `OMI_ENROLLMENT=${r.mode}: `, r.mode === "required" ? "deliveries of uids nobody enrolled are answered 2xx and dropped." : "every authenticated delivery is stored."),
        h("h3", {}, `Asking (${r.asking.length} uids, ${r.droppedDeliveries} deliveries dropped)`),
        r.asking.length
          ? h(
              "table",
              { class: "table asking" },
              h("caption", { class: "sr-only" }, "Unenrolled uids that delivered"),
              h("thead", {}, h("tr", {}, ["Uid", "Deliveries", "First", "Last", ""].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, r.asking.map((a) => h("tr", { "data-uid": a.uid }, h("td", {}, h("code", {}, a.uid)), h("td", { class: "num" }, String(a.deliveries)), h("td", {}, when(a.firstAt)), h("td", {}, when(a.lastAt)), h("td", {}, enroll(a.uid))))),
            )
          : ui.empty("Nobody unenrolled is delivering."),
        h("h3", {}, `Enrolled (${r.enrolled.length})`),
        r.enrolled.length
          ? h(
              "table",
              { class: "table enrolled" },
              h("caption", { class: "sr-only" }, "Enrolled uids"),
              h("thead", {}, h("tr", {}, ["Uid", "Mentor", "How", "Since"].map((c) => h("th", { scope: "col" }, c)))),
              h("tbody", {}, r.enrolled.map((x) => h("tr", { "data-uid": x.uid }, h("td", {}, h("code", {}, x.uid)), h("td", {}, x.label), h("td", {}, x.via), h("td", {}, when(x.enrolledAt))))),
            )
          : ui.empty("Nobody is enrolled yet."),
      );
    } catch (e) {
      mount(enrolled, ui.error("load enrollment", e));
    }
  }

  return {
    mount(el) {
      credOut = h("div", { "aria-live": "polite" });
      credList = h("div", {});
      inviteOut = h("div", { "aria-live": "polite" });
      invites = h("div", {});
      enrolled = h("div", {});
      mount(
        el,
        h("h1", {}, "Onboarding"),
        h("p", { class: "meta" }, "Connect mentors' Omi: a webhook credential of their own (developer webhooks), or an invite code for the programme's Omi app. The shared OMI_WEBHOOK_TOKEN, while set, lets anyone holding it write as any mentor."),
        credentialForm(),
        credOut,
        credList,
        inviteForm(),
        inviteOut,
        invites,
        h("h2", {}, "Enrollment"),
        enrolled,
      );
      loadInvites();
      loadEnrollment();
    },
  };
}
