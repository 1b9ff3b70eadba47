import { h, mount, fmt, ui } from "../dom.js";
import { getJson, seg } from "../api.js";
import { columnChart, barChart } from "../charts.js";
import { mentorAnalytics, archiveButton, peopleByUid } from "./programme.js";
import { can } from "../session.js";

const DAY = 86_400_000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

export function mentorView(uid) {
  let el;
  let days = 30;
  let params = new URLSearchParams();
  async function load() {
    const heading = h("h1", {}, uid);
    const personLine = h("p", { class: "hint person" });
    const cards = h("div", { class: "cards" }, ui.loading("statistics"));
    const analytics = mentorAnalytics(uid, params);
    const charts = h("div", { class: "charts" });
    const toggle = h(
      "div",
      { class: "segmented", role: "group", "aria-label": "Chart period" },
      [30, 90].map((d) =>
        h("a", { href: `#/mentors/${seg(uid)}?days=${d}`, "aria-current": d === days ? "true" : false, class: "button small" }, `Last ${d} days`),
      ),
    );
    mount(
      el,
      h("p", { class: "crumbs" }, h("a", { href: "#/mentors" }, "Mentors"), " / "),
      heading,
      personLine,
      h("p", {}, h("a", { href: `#/logs?userId=${encodeURIComponent(uid)}` }, "Browse this mentor's logs →")),
      cards,
      h("h2", {}, "Activity"),
      toggle,
      charts,
      analytics.section,
      // The archive holds content: only for a key that reads this mentor.
      can("omi:read", uid) ? [h("h2", {}, "Their data"), archiveButton(uid)] : null,
    );
    // The directory names the mentor, once it has loaded.
    peopleByUid().then((byUid) => {
      const person = byUid.get(uid);
      if (!person) return personLine.remove();
      heading.textContent = person.name;
      document.title = `${person.name} · r2d1`;
      mount(
        personLine,
        [person.cohort ? `Cohort ${person.cohort} · ` : "", `uid ${uid}`, person.mentees.length ? ` · mentees: ${person.mentees.join(", ")}` : ""],
        person.uids.filter((u) => u !== uid).map((u) => [" · also ", h("a", { href: `#/mentors/${seg(u)}` }, u)]),
      );
    });
    const today = Date.now() - (Date.now() % DAY);
    const from = isoDay(today - (days - 1) * DAY);
    const [stats, daily] = await Promise.allSettled([
      getJson(`/api/omi/users/${seg(uid)}/stats`),
      getJson(`/api/omi/analytics/daily?userId=${encodeURIComponent(uid)}&from=${from}&to=${isoDay(today)}`),
    ]);
    if (stats.status === "rejected") mount(cards, ui.error("load this mentor's statistics", stats.reason));
    else {
      const s = stats.value.stats;
      const card = (label, value, sub) => h("div", { class: "card stat" }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), sub ? h("div", { class: "stat-sub" }, sub) : null);
      mount(
        cards,
        card("Memories", fmt.number(s.memories), s.discarded ? `${s.discarded} discarded` : null),
        card("Minutes", fmt.number(s.totalMinutes)),
        card("Words", fmt.number(s.words)),
        card("Active days", fmt.number(s.activeDays)),
        card("Action items", `${fmt.number(s.actionItems.completed)} / ${fmt.number(s.actionItems.total)}`, "done / total"),
        card("Last seen", fmt.day(s.last), `first ${fmt.day(s.first)}`),
      );
    }
    const parts = [];
    if (daily.status === "rejected") parts.push(ui.error("load the daily activity", daily.reason));
    else parts.push(columnChart({ title: `Memories per day, last ${days} days`, points: daily.value.days.map((d) => ({ label: d.date, value: d.memories })), unit: "memories" }));
    if (stats.status === "fulfilled") {
      const items = Object.entries(stats.value.stats.categories || {})
        .map(([label, value]) => ({ label, value }))
        .sort((a, b) => b.value - a.value);
      parts.push(items.length ? barChart({ title: "Memories by category", items, unit: "memories" }) : ui.empty("No categories yet."));
    }
    mount(charts, parts);
    await analytics.load();
  }
  return {
    mount(target, route) {
      el = target;
      params = route.params;
      days = route.params.get("days") === "90" ? 90 : 30;
      load();
    },
    update(route) {
      params = route.params;
      days = route.params.get("days") === "90" ? 90 : 30;
      load().then(() => el.querySelector(`.segmented [aria-current]`)?.focus());
    },
    onLive: (e) => e.userId === uid && load(),
  };
}
