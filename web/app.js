// The r2d1 dashboard: a hash-routed single page over the worker's public API. Routes:
//   #/mentors, #/mentors/<uid>?days=30|90, #/logs?<filters>, #/logs/<uid>/<memoryId>,
//   #/apps, #/apps/<app>, #/apps/<app>/diff?from=&to=, #/storage, #/directory
// Filters and pages live in the hash, so a view can be shared and reloaded.
import { h, mount } from "./dom.js";
import { token, whenUnauthorized } from "./api.js";
import { startLive } from "./live.js";
import { parseHash } from "./router.js";
import { loginView } from "./views/login.js";
import { mentorView } from "./views/mentors.js";
import { mentorsView, directoryView } from "./views/programme.js";
import { logsView, memoryView } from "./views/logs.js";
import { appsView, appView, diffView } from "./views/apps.js";
import { storageView } from "./views/storage.js";

const NAV = [
  ["mentors", "Mentors"],
  ["logs", "Logs"],
  ["directory", "Directory"],
  ["apps", "Apps"],
  ["storage", "Storage"],
];

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
  const text = { live: "Live", connecting: "Connecting…", offline: "Offline (retrying)" }[state] || state;
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
        if (!parseHash().parts.length) location.hash = "#/logs";
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
    h("ul", {}, NAV.map(([path, label]) => h("li", {}, h("a", { href: `#/${path}`, "data-nav": path }, label)))),
  );
  mount(
    shell.root,
    h("a", { class: "skip", href: "#main", onclick: (e) => (e.preventDefault(), shell.main.focus()) }, "Skip to content"),
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: "#/logs" }, h("span", { "aria-hidden": "true" }, "◆ "), "r2d1"),
      nav,
      h("div", { class: "top-right" }, shell.status, h("button", { type: "button", class: "link", onclick: () => signOut("Signed out.") }, "Sign out")),
    ),
    shell.main,
    shell.toasts,
  );
  shell.live = startLive({ onEvent: onLive, onStatus: setLiveStatus });
}

function route() {
  if (!token.get()) return renderLogin();
  const r = parseHash();
  const found = pick(r);
  if (!found) return void (location.hash = "#/logs");
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

whenUnauthorized(() => signOut("Your token was not accepted any more; sign in again."));
window.addEventListener("hashchange", route);
window.addEventListener("r2d1:route", route);
if (token.get()) renderShell();
route();
