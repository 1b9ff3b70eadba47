import { h } from "../dom.js";
import { token } from "../api.js";
import { session } from "../session.js";

/** Sign-in with API_TOKEN or any API key: checked against the API (GET /api/me, which also
 * says what the key may do) before it is kept (sessionStorage only). */
export function loginView({ message, onSignedIn }) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "token-help" });
  const status = h("div", { class: "login-status", "aria-live": "assertive" }, message ? h("p", { class: "banner ok", role: "status" }, message) : null);
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "login card",
      "aria-labelledby": "login-title",
      onsubmit: async (e) => {
        e.preventDefault();
        const given = input.value.trim();
        if (!given) return;
        button.disabled = true;
        status.replaceChildren(h("p", { class: "loading", role: "status" }, "Checking the token…"));
        try {
          await session.load(given);
          token.set(given);
          onSignedIn();
        } catch (err) {
          const text =
            err.status === 401
              ? "That key was not accepted: it is not this deployment's API token or a valid API key."
              : err.status === 429
                ? `Too many attempts: ${err.message}`
              : err.status === 503
                ? `The API is closed: ${err.message}`
                : `Could not sign in: ${err.describe()}`;
          status.replaceChildren(h("p", { class: "banner error", role: "alert" }, text));
          input.setAttribute("aria-invalid", "true");
          input.select();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { id: "login-title" }, "r2d1 dashboard"),
    h("p", {}, "Mentors' conversations, app files and storage, straight from this worker's API."),
    h("label", { for: "token" }, "API token or key"),
    input,
    h("p", { id: "token-help", class: "hint" }, "An API key (r2d1_…) or the deployment's API_TOKEN. Kept in this tab's session storage only; closing the tab forgets it."),
    button,
    status,
  );
  queueMicrotask(() => input.focus());
  return h("main", { id: "main", class: "login-wrap" }, form);
}
