// The programme's view (issue 14): the Mentors page (names, sessions per week, who has gone
// quiet), a mentor's analytics, a memory's analytics and the real-time transcript it came from,
// the mentor directory, and a mentor's complete archive.
import { h, mount, fmt, ui, saveBlob, dispositionName } from "../dom.js";
import { getJson, request, seg } from "../api.js";
import { columnChart, barChart } from "../charts.js";
import { directory, forget, peopleByUid, nameOf } from "../people.js";
import { can } from "../session.js";

const QUIET_CHOICES = [7, 14, 30, 60];
const WEEKS = 8;

/** Small bars, one per week: role=img with the numbers in its label. */
function sparkline(weeks) {
  const W = 8 * weeks.length;
  const H = 22;
  const max = Math.max(1, ...weeks.map((w) => w.sessions));
  const label = `Sessions per week: ${weeks.map((w) => `${w.week} ${w.sessions}`).join(", ")}`;
  return h(
    "svg:svg",
    { viewBox: `0 0 ${W} ${H}`, class: "spark", role: "img", "aria-label": label, width: W, height: H },
    weeks.map((w, i) => h("svg:rect", { x: i * 8 + 1, y: H - 2, width: 6, height: 2, class: "slot" })),
    weeks.map((w, i) => {
      const bh = (w.sessions / max) * (H - 2);
      return h(
        "svg:rect",
        { x: i * 8 + 1, y: (H - bh).toFixed(1), width: 6, height: Math.max(w.sessions ? 1 : 0, bh).toFixed(1), class: "bar", "data-value": w.sessions, "data-week": w.week },
        h("svg:title", {}, `${w.week}: ${w.sessions} sessions, ${w.hours} h`),
      );
    }),
  );
}

function status(m) {
  if (m.daysSinceLastSession === null) return ui.badge("No session yet", "warn");
  if (m.inactive) return ui.badge(`No session in ${m.daysSinceLastSession} days`, "warn");
  return ui.badge(m.daysSinceLastSession === 0 ? "Active today" : `Active ${m.daysSinceLastSession} d ago`, "ok");
}

/** The Mentors page: one row per person (or per uid nobody has named), quiet mentors first listed. */
export function mentorsView() {
  let body;
  let quiet = 14;
  async function load() {
    mount(body, ui.loading("mentors"));
    try {
      const [activity, { users }] = await Promise.all([getJson(`/api/omi/programme?weeks=${WEEKS}&inactive_days=${quiet}`), getJson("/api/omi/users")]);
      const byUid = new Map(users.map((u) => [u.userId, u]));
      const rows = activity.mentors.filter((m) => m.memories > 0 || m.personId);
      if (!rows.length) return mount(body, ui.empty("No mentor has sent a memory yet."));
      const sum = (m, k) => m.uids.reduce((s, uid) => s + (byUid.get(uid)?.[k] || 0), 0);
      const lastSeen = (m) => m.uids.map((uid) => byUid.get(uid)?.lastSeen).filter(Boolean).sort().pop();
      const quietOnes = rows.filter((m) => m.inactive);
      mount(
        body,
        h(
          "section",
          { class: "card quiet", "aria-labelledby": "h-quiet" },
          h("h2", { id: "h-quiet" }, `No session in ${quiet} days (${quietOnes.length})`),
          quietOnes.length
            ? h(
                "ul",
                { class: "quiet-list" },
                quietOnes.map((m) =>
                  h(
                    "li",
                    { "data-person": m.personId || m.uids[0] },
                    h("a", { href: `#/mentors/${seg(m.uids[0])}` }, m.name),
                    " · ",
                    m.lastSession ? `last session ${fmt.day(m.lastSession)} (${m.daysSinceLastSession} days ago)` : "no session yet",
                  ),
                ),
              )
            : ui.empty("Every mentor had a session recently."),
        ),
        h(
          "table",
          { class: "table mentors" },
          h("caption", { class: "sr-only" }, "Mentors"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Mentor"),
              h("th", { scope: "col", class: "num" }, "Memories"),
              h("th", { scope: "col", class: "num" }, "Minutes"),
              h("th", { scope: "col", class: "num" }, "Last seen"),
              h("th", { scope: "col", class: "hide-narrow" }, `Sessions per week (last ${WEEKS})`),
              h("th", { scope: "col" }, "Status"),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((m) =>
              h(
                "tr",
                { "data-user": m.uids[0] || "", "data-person": m.personId || "", "data-inactive": m.inactive ? "true" : "false" },
                h(
                  "th",
                  { scope: "row" },
                  h("a", { href: `#/mentors/${seg(m.uids[0] || "")}` }, m.name),
                  m.personId ? h("div", { class: "hint" }, [m.cohort ? `${m.cohort} · ` : "", m.uids.join(", ") || "no uid yet"]) : null,
                ),
                h("td", { class: "num" }, fmt.number(sum(m, "memories"))),
                h("td", { class: "num" }, fmt.number(Math.round(sum(m, "minutes") * 10) / 10)),
                h("td", { class: "num" }, fmt.date(lastSeen(m))),
                h("td", { class: "hide-narrow sessions" }, sparkline(m.weeks), " ", h("span", { class: "hint" }, `${m.sessions} in ${WEEKS} wk · ${m.hours} h`)),
                h("td", {}, status(m)),
              ),
            ),
          ),
        ),
      );
    } catch (e) {
      mount(body, ui.error("load the mentors", e));
    }
  }
  return {
    mount(el) {
      body = h("div");
      const select = h(
        "select",
        { id: "f-quiet", onchange: (e) => ((quiet = Number(e.target.value)), load()) },
        QUIET_CHOICES.map((d) => h("option", { value: d, selected: d === quiet }, `${d} days`)),
      );
      mount(
        el,
        h("div", { class: "title-row" }, h("h1", {}, "Mentors"), h("div", { class: "inline-field" }, h("label", { for: "f-quiet" }, "Quiet after"), select)),
        body,
      );
      load();
    },
    onLive: () => load(),
  };
}

const DAY = 86_400_000;
const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const PERIODS = [4, 12, 26, 52];

/**
 * A mentor's analytics over a period: hours per week, talk share, top words. `params` may set
 * from/to or weeks. Returns the section and `load()`, which the mentor page calls once its own
 * charts are drawn (so theirs come first on the page).
 */
export function mentorAnalytics(uid, params) {
  const section = h("section", { class: "analytics", "aria-labelledby": "h-analytics" });
  const weeks = PERIODS.includes(Number(params.get("weeks"))) ? Number(params.get("weeks")) : 12;
  const from = params.get("from");
  const to = params.get("to");
  const query = new URLSearchParams({ top: "12" });
  if (from || to) {
    if (from) query.set("from", from);
    if (to) query.set("to", to);
  } else {
    const today = Date.now() - (Date.now() % DAY);
    query.set("from", isoDay(today - (weeks * 7 - 1) * DAY));
    query.set("to", isoDay(today));
  }
  const toggle = h(
    "div",
    { class: "segmented", role: "group", "aria-label": "Analytics period" },
    PERIODS.map((n) => h("a", { href: `#/mentors/${seg(uid)}?weeks=${n}`, "aria-current": !from && !to && n === weeks ? "true" : false, class: "button small" }, `${n} weeks`)),
  );
  const content = h("div", {}, ui.loading("analytics"));
  mount(section, h("h2", { id: "h-analytics" }, "Mentoring analytics"), toggle, content);
  const load = () => getJson(`/api/omi/users/${seg(uid)}/analytics?${query}`)
    .then((a) => {
      const period = `${fmt.day(a.from)} – ${fmt.day(new Date(Date.parse(a.to) - 1).toISOString())}`;
      if (!a.memories) return mount(content, h("p", { class: "hint" }, period), ui.empty("No sessions in this period."));
      const share = a.mentorTalkShare === null ? null : Math.round(a.mentorTalkShare * 100);
      const card = (label, value, sub, key) => h("div", { class: "card stat", "data-stat": key }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value), sub ? h("div", { class: "stat-sub" }, sub) : null);
      mount(
        content,
        h("p", { class: "hint" }, `${period} · answers and analytics in ${a.language === "es" ? "Spanish" : "English"}`),
        h(
          "div",
          { class: "stat-grid" },
          card("Hours mentored", String(a.hours), `${a.memories} sessions`, "hours"),
          card("Mentor talk share", share === null ? "–" : `${share}%`, share === null ? "no talk timed" : `mentees ${100 - share}%`, "share"),
          card("Mentor / mentee talk", `${fmt.clock(a.mentorTalkSeconds)} / ${fmt.clock(a.menteeTalkSeconds)}`, "m:ss", "talk"),
        ),
        share === null ? null : h("div", { class: "share-bar", role: "img", "aria-label": `Mentor talked ${share}% of the time, mentees ${100 - share}%` }, h("span", { class: "mentor", style: `width:${share}%` }), h("span", { class: "mentee", style: `width:${100 - share}%` })),
        h(
          "div",
          { class: "charts" },
          columnChart({ title: "Hours mentored per week", points: a.weeks.map((w) => ({ label: w.week, value: w.hours })), unit: "hours", span: "weeks", firstColumn: "Week" }),
          a.topWords.length ? barChart({ title: "Top words", items: a.topWords.map((w) => ({ label: w.word, value: w.count })), unit: "times", firstColumn: "Word" }) : ui.empty("No words yet."),
        ),
      );
    })
    .catch((e) => mount(content, ui.error("load the analytics", e)));
  return { section, load };
}

/** Downloads a mentor's archive, part after part (each part is a complete .tar.gz); nothing
 * for a key that cannot read the mentor's content (`omi:read`). */
export function archiveButton(uid) {
  if (!can("omi:read", uid)) return null;
  const status = h("span", { class: "hint", role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "button",
      onclick: async () => {
        button.disabled = true;
        let cursor = null;
        let part = 0;
        try {
          do {
            part += 1;
            status.textContent = `Downloading part ${part}…`;
            const res = await request(`/api/omi/users/${seg(uid)}/archive${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
            cursor = res.headers.get("x-r2d1-next-cursor");
            saveBlob(await res.blob(), dispositionName(res, `r2d1-${uid}-part${part}.tar.gz`));
          } while (cursor);
          status.textContent = `Saved ${part} ${part === 1 ? "archive" : "archive parts"}.`;
        } catch (e) {
          status.textContent = `Could not download the archive: ${e.describe ? e.describe() : e.message}`;
        } finally {
          button.disabled = false;
        }
      },
    },
    "Download all data (.tar.gz)",
  );
  return h("div", { class: "archive" }, button, " ", status);
}

const speakerName = (s) => s.name || (s.isUser ? "Mentor (device owner)" : s.speaker);

/** A memory's analytics and the real-time transcript it came from. */
export function memoryInsights(uid, memoryId) {
  const analytics = h("section", { class: "memory-analytics", "aria-labelledby": "h-mem-analytics" }, h("h2", { id: "h-mem-analytics" }, "Analytics"), ui.loading("the analytics"));
  const live = h("section", { class: "linked", "aria-labelledby": "h-linked" }, h("h2", { id: "h-linked" }, "Live transcript"), ui.loading("the live transcript"));
  getJson(`/api/omi/logs/${seg(uid)}/${seg(memoryId)}/analytics`)
    .then((body) => {
      const a = body.analytics;
      if (!a) return mount(analytics, h("h2", { id: "h-mem-analytics" }, "Analytics"), ui.empty("Not analysed yet (the omi.analytics job will)."));
      const total = a.talkSeconds || 0;
      const stat = (label, value, key) => h("div", { class: "card stat", "data-stat": key }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value));
      mount(
        analytics,
        h("h2", { id: "h-mem-analytics" }, "Analytics"),
        h(
          "div",
          { class: "stat-grid" },
          stat("Words", fmt.number(a.words), "words"),
          stat("Unique words", fmt.number(a.uniqueWords), "unique"),
          stat("Mentor talk share", a.mentorTalkShare === null ? "–" : `${Math.round(a.mentorTalkShare * 100)}%`, "share"),
          stat("Language", a.language === "es" ? "Spanish" : a.language === "en" ? "English" : "–", "language"),
        ),
        h(
          "table",
          { class: "table speakers" },
          h("caption", {}, "Talk time by speaker"),
          h("thead", {}, h("tr", {}, ["Speaker", "Talk time", "Share", "Words"].map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
          h(
            "tbody",
            {},
            a.speakers.map((s) =>
              h(
                "tr",
                { "data-speaker": s.speaker },
                h("th", { scope: "row" }, speakerName(s), s.isUser ? " " : null, s.isUser ? ui.badge("mentor") : null),
                h("td", { class: "num" }, fmt.clock(s.talkSeconds)),
                h("td", { class: "num" }, total ? `${Math.round((s.talkSeconds / total) * 100)}%` : "–"),
                h("td", { class: "num" }, fmt.number(s.words)),
              ),
            ),
          ),
        ),
        h(
          "p",
          { class: "top-words" },
          h("strong", {}, "Top words: "),
          a.topWords.slice(0, 10).map((w, i) => [i ? ", " : "", h("span", { class: "word", "data-count": w.count }, w.word), ` (${w.count})`]),
        ),
        a.topics.length ? h("p", { class: "topics" }, h("strong", {}, "Topics: "), a.topics.map((t) => [ui.badge(t), " "])) : null,
      );
    })
    .catch((e) => mount(analytics, h("h2", { id: "h-mem-analytics" }, "Analytics"), ui.error("load the analytics", e)));

  const list = h("ol", { class: "live-transcript" });
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load more");
  let cursor = null;
  async function page() {
    more.disabled = true;
    try {
      const body = await getJson(`/api/omi/logs/${seg(uid)}/${seg(memoryId)}/transcript${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`);
      if (!cursor && !body.segments.length) {
        mount(live, h("h2", { id: "h-linked" }, "Live transcript"), ui.empty("No real-time transcript was received during this session."));
        return;
      }
      for (const s of body.segments) {
        list.append(h("li", { class: s.is_user ? "me" : "" }, h("strong", { class: "who" }, s.speaker_name || s.speaker || "Speaker"), " ", h("span", { class: "said" }, s.text || "")));
      }
      cursor = body.nextCursor;
      more.hidden = !cursor;
    } catch (e) {
      live.append(ui.error("load the live transcript", e));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", page);
  mount(live, h("h2", { id: "h-linked" }, "Live transcript"), h("p", { class: "hint" }, "What Omi streamed while the session went on, received during it."), list, more);
  page();
  return [analytics, live];
}

/** The directory: people, their cohort, mentees and uids; uids nobody has named yet. */
export function directoryView() {
  let body;
  let messages;
  const field = (id, label, control, hint) => h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("div", { class: "hint" }, hint) : null);
  const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
  const slug = (name) => name.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 64) || "person";

  function form(person, suffix) {
    const f = {
      name: h("input", { id: `p-name-${suffix}`, value: person?.name || "", required: true, autocomplete: "off" }),
      cohort: h("input", { id: `p-cohort-${suffix}`, value: person?.cohort || "", autocomplete: "off" }),
      mentees: h("input", { id: `p-mentees-${suffix}`, value: (person?.mentees || []).join(", "), autocomplete: "off" }),
      uids: h("input", { id: `p-uids-${suffix}`, value: (person?.uids || []).join(", "), autocomplete: "off" }),
    };
    const save = async (e) => {
      e.preventDefault();
      const id = person?.id || slug(f.name.value);
      try {
        await request(`/api/omi/directory/${seg(id)}`, {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: f.name.value, cohort: f.cohort.value || null, mentees: list(f.mentees.value), uids: list(f.uids.value) }),
        });
        forget();
        mount(messages, ui.notice(`Saved ${f.name.value}.`));
        load();
      } catch (err) {
        mount(messages, ui.error(`save ${f.name.value || "the person"}`, err));
      }
    };
    const remove = person
      ? h("button", {
          type: "button",
          class: "button",
          onclick: async () => {
            try {
              await request(`/api/omi/directory/${seg(person.id)}`, { method: "DELETE" });
              forget();
              mount(messages, ui.notice(`Removed ${person.name} from the directory (their logs stay).`));
              load();
            } catch (err) {
              mount(messages, ui.error(`remove ${person.name}`, err));
            }
          },
        }, `Remove ${person.name}`)
      : null;
    return h(
      "form",
      { class: "person card", "data-person": person?.id || "", onsubmit: save, "aria-label": person ? `Edit ${person.name}` : "Add a mentor" },
      field(`p-name-${suffix}`, "Name", f.name),
      field(`p-cohort-${suffix}`, "Cohort", f.cohort),
      field(`p-mentees-${suffix}`, "Mentees", f.mentees, "Names, separated by commas"),
      field(`p-uids-${suffix}`, "Omi uids", f.uids, "Every device or account of this mentor, separated by commas"),
      h("div", { class: "field actions" }, h("button", { type: "submit" }, person ? `Save ${person.name}` : "Add mentor"), remove),
    );
  }

  // Without omi:write the directory is read, not edited.
  function entry(p) {
    return h(
      "div",
      { class: "person card", "data-person": p.id },
      h("h3", {}, p.name),
      h("p", {}, h("strong", {}, "Cohort: "), p.cohort || "—"),
      h("p", {}, h("strong", {}, "Mentees: "), p.mentees.length ? p.mentees.join(", ") : "—"),
      h("p", {}, h("strong", {}, "Omi uids: "), p.uids.map((u, i) => [i ? ", " : "", h("a", { href: `#/mentors/${seg(u)}` }, h("code", {}, u))])),
    );
  }

  async function load() {
    mount(body, ui.loading("the directory"));
    try {
      const dir = await directory();
      const editable = can("omi:write");
      mount(
        body,
        editable ? [h("h2", {}, "Add a mentor"), form(null, "new")] : null,
        h("h2", {}, `People (${dir.people.length})`),
        dir.people.length ? h("div", { class: "people" }, dir.people.map((p, i) => (editable ? form(p, String(i)) : entry(p)))) : ui.empty("Nobody is in the directory yet."),
        h("h2", {}, `Uids nobody has named (${dir.unassigned.length})`),
        dir.unassigned.length ? h("ul", { class: "unassigned" }, dir.unassigned.map((u) => h("li", {}, h("code", {}, u), " · ", h("a", { href: `#/mentors/${seg(u)}` }, "their page")))) : ui.empty("Every uid with memories is named."),
      );
    } catch (e) {
      mount(body, ui.error("load the directory", e));
    }
  }
  return {
    mount(el) {
      body = h("div");
      messages = h("div", { class: "messages", "aria-live": "polite" });
      mount(el, h("h1", {}, "Directory"), h("p", { class: "hint" }, "Who each Omi uid is: a mentor's name, cohort and mentees. A mentor who changed phone or account has several uids."), messages, body);
      forget();
      load();
    },
  };
}

export { peopleByUid, nameOf };
