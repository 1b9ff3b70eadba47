// The r2d1 dashboard: a hash-routed single page over the worker's public API. Routes:
//   #/mentors, #/mentors/<uid>?days=30|90, #/logs?<filters>, #/logs/<uid>/<memoryId>,
//   #/apps, #/apps/<app>, #/apps/<app>/diff?from=&to=, #/storage, #/directory, #/keys, #/onboarding,
//   #/audit
// Filters and pages live in the hash, so a view can be shared and reloaded. Pages the signed-in
// key cannot use are not shown (GET /api/me, web/session.js).
import { h, mount } from "./dom.js";
import { token, whenUnauthorized } from "./api.js";
import { session, can, canAll, ownMentors } from "./session.js";
import { startLive } from "./live.js";
import { parseHash } from "./router.js";
import { loginView } from "./views/login.js";
import { mentorView } from "./views/mentors.js";
import { mentorsView, directoryView } from "./views/programme.js";
import { logsView, memoryView } from "./views/logs.js";
import { appsView, appView, diffView } from "./views/apps.js";
import { storageView } from "./views/storage.js";
import { keysView } from "./views/keys.js";
import { onboardingView } from "./views/onboarding.js";
import { auditView } from "./views/audit.js";

// Each page and the capability a key needs to see it.
const NAV = [
  ["mentors", "Mentors", "omi:export"],
  ["logs", "Logs", "omi:read"],
  // The whole programme's directory: a mentor's own key has no use for it.
  ["directory", "Directory", "omi:export", "all"],
  ["apps", "Apps", "apps:read"],
  ["storage", "Storage", "storage:admin"],
  ["keys", "Keys", "admin"],
  ["onboarding", "Onboarding", "admin"],
  ["audit", "Audit", "admin"],
];
const shown = ([, , cap, reach]) => (reach === "all" ? canAll(cap) : can(cap));
const allowed = (page) => NAV.some((entry) => entry[0] === page && shown(entry));

/** Where a key lands: the logs (a mentor's key: that mentor's own); otherwise its first page. */
function home() {
  const mine = ownMentors();
  if (mine && mine.length === 1) return `#/logs?userId=${encodeURIComponent(mine[0])}`;
  if (can("omi:read")) return "#/logs";
  const first = NAV.find(shown);
  return first ? `#/${first[0]}` : "#/none";
}

function pick(route) {
  const [a, b, c, d] = route.parts;
  switch (a) {
    case "mentors":
      return b ? ["mentor", () => mentorView(b)] : ["mentors", mentorsView];
    case "logs":
      return b && c ? ["memory", () => memoryView(b, c)] : ["logs", logsView];
    case "apps":
      if (b && c === "diff") return ["diff", () => diffView(b)];
      return b ? ["app", () => appView(b)] : ["apps", appsView];
    case "storage":
      return ["storage", storageView];
    case "directory":
      return ["directory", directoryView];
    case "keys":
      return ["keys", keysView];
    case "onboarding":
      return ["onboarding", onboardingView];
    case "audit":
      return ["audit", auditView];
    default:
      return null;
  }
}

const shell = {
  root: document.getElementById("app"),
  main: null,
  status: null,
  toasts: null,
  current: null, // { key, view }
  live: null,
};

function setLiveStatus(state) {
  if (!shell.status) return;
  const text = { live: "Live", connecting: "Connecting…", offline: "Offline (retrying)", off: "No live feed" }[state] || state;
  shell.status.dataset.state = state;
  shell.status.textContent = text;
  shell.status.title = state === "live" ? "New memories appear as they arrive" : "Live updates are paused; the page still works";
}

function toast(event) {
  const link = h("a", { href: `#/logs/${encodeURIComponent(event.userId)}/${encodeURIComponent(event.memoryId)}` }, `${event.emoji || "🆕"} ${event.title || event.memoryId}`);
  const item = h("li", { class: "toast" }, "New memory from ", h("strong", {}, event.userId), ": ", link);
  shell.toasts.prepend(item);
  setTimeout(() => item.remove(), 8000);
}

function onLive(event) {
  toast(event);
  const v = shell.current && shell.current.view;
  if (v && v.onLive) v.onLive(event);
}

function signOut(message) {
  token.clear();
  session.clear();
  if (shell.live) shell.live.stop();
  shell.live = null;
  shell.current = null;
  renderLogin(message);
}

function renderLogin(message) {
  document.title = "Sign in · r2d1";
  mount(
    shell.root,
    loginView({
      message,
      onSignedIn: () => {
        if (!parseHash().parts.length || !allowed(parseHash().parts[0])) location.hash = home();
        renderShell();
        route();
      },
    }),
  );
}

function renderShell() {
  shell.main = h("main", { id: "main", tabindex: "-1" });
  shell.status = h("span", { class: "live-status", role: "status", "aria-live": "polite", "data-state": "connecting" }, "Connecting…");
  shell.toasts = h("ul", { class: "toasts", "aria-live": "polite", "aria-label": "New memories" });
  const nav = h(
    "nav",
    { "aria-label": "Sections" },
    h("ul", {}, NAV.filter(shown).map(([path, label]) => h("li", {}, h("a", { href: `#/${path}`, "data-nav": path }, label)))),
  );
  const me = session.me || {};
  const who = h("span", { class: "who", title: (me.scopes || []).join(" ") }, me.credential === "apiKey" ? `${me.name} (${me.prefix})` : "API_TOKEN");
  // Anyone holding the shared webhook token can write as any mentor: admins are told.
  const warning =
    me.legacyWebhookToken && can("admin")
      ? h("div", { class: "banner warn legacy-token", role: "status" }, "OMI_WEBHOOK_TOKEN is set: anyone holding it can write as any mentor. Give each mentor their own credential (", h("a", { href: "#/onboarding" }, "Onboarding"), ") and unset it.")
      : null;
  mount(
    shell.root,
    h("a", { class: "skip", href: "#main", onclick: (e) => (e.preventDefault(), shell.main.focus()) }, "Skip to content"),
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: "#/logs" }, h("span", { "aria-hidden": "true" }, "◆ "), "r2d1"),
      nav,
      h("div", { class: "top-right" }, who, shell.status, h("a", { href: "/reference.html", class: "api-reference" }, "API reference"), h("button", { type: "button", class: "link", onclick: () => signOut("Signed out.") }, "Sign out")),
    ),
    warning,
    shell.main,
    shell.toasts,
  );
  // The live feed carries memories: only for keys that read some mentor's.
  if (can("omi:read")) shell.live = startLive({ onEvent: onLive, onStatus: setLiveStatus });
  else setLiveStatus("off");
}

function route() {
  if (!token.get()) return renderLogin();
  if (!session.me) return; // boot() renders once the grant is known
  const r = parseHash();
  const found = r.parts[0] === "none" ? ["none", noPagesView] : allowed(r.parts[0]) ? pick(r) : null;
  if (!found) return void (location.hash = home());
  const [key, make] = found;
  for (const a of shell.root.querySelectorAll("[data-nav]")) {
    const active = a.dataset.nav === r.parts[0];
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Same view, new parameters (a filter or a page): update in place so focus stays put.
  if (shell.current && shell.current.key === key && shell.current.hash.split("?")[0] === r.hash.split("?")[0] && shell.current.view.update) {
    shell.current.hash = r.hash;
    shell.current.view.update(r);
    return;
  }
  if (shell.current && shell.current.view.unmount) shell.current.view.unmount();
  const view = make();
  shell.current = { key, view, hash: r.hash };
  mount(shell.main);
  view.mount(shell.main, r);
  const heading = shell.main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · r2d1`;
  }
}

function noPagesView() {
  return { mount: (el) => mount(el, h("h1", {}, "Nothing to show"), h("p", {}, "This key has no scope the dashboard has a page for.")) };
}

/** With a stored token: learn what it may do, then draw the pages it can use. */
async function boot() {
  if (!token.get()) return route();
  try {
    await session.load();
  } catch (e) {
    return signOut(e.status === 401 ? "Your key was not accepted any more; sign in again." : `Could not sign in: ${e.message}`);
  }
  renderShell();
  route();
}

whenUnauthorized(() => signOut("Your key was not accepted any more; sign in again."));
window.addEventListener("hashchange", route);
window.addEventListener("r2d1:route", route);
boot();
