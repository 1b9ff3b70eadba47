import { h, mount, fmt, ui, debounce, saveBlob, dispositionName } from "../dom.js";
import { can } from "../session.js";
import { getJson, request, seg } from "../api.js";
import { hashFor, replaceHash } from "../router.js";
import { memoryInsights, peopleByUid, nameOf } from "./programme.js";

// Omi's categories (src/omi/payload.rs CATEGORIES).
const CATEGORIES = (
  "personal education health finance legal philosophy spiritual science entrepreneurship parenting romantic travel " +
  "inspiration technology business social work sports politics literature history architecture music weather news " +
  "entertainment psychology real design family economics environment other"
).split(" ");

const FILTERS = ["q", "userId", "category", "from", "to", "discarded"];
let lastListHash = "#/logs";

/** The API query for the filters in `params` (the URL's names are the API's, but `discarded`). */
function apiQuery(params, extra = {}) {
  const q = new URLSearchParams();
  for (const k of ["q", "userId", "category", "from", "to"]) if (params.get(k)) q.set(k, params.get(k));
  q.set("include_discarded", params.get("discarded") === "1" ? "true" : "false");
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  return q;
}

const filterKey = (params) => FILTERS.map((k) => `${k}=${params.get(k) || ""}`).join("&");

export function logsView() {
  let params = new URLSearchParams();
  let results;
  let countLine;
  let form;
  let fields;
  let older = []; // cursors of the pages before this one, for "Newer"
  let key = "";
  let seq = 0;
  let fresh = null; // memoryId to highlight after a live refresh

  function navigate(next, { replace = false } = {}) {
    const hash = hashFor("logs", next);
    if (replace) replaceHash(hash);
    else location.hash = hash;
  }

  function fromForm({ keepCursor = false } = {}) {
    const next = new URLSearchParams();
    const v = (k) => fields[k].value.trim();
    if (v("q")) next.set("q", v("q"));
    if (v("userId")) next.set("userId", v("userId"));
    if (v("category")) next.set("category", v("category"));
    if (v("from")) next.set("from", v("from"));
    if (v("to")) next.set("to", v("to"));
    if (fields.discarded.checked) next.set("discarded", "1");
    if (keepCursor && params.get("cursor")) next.set("cursor", params.get("cursor"));
    return next;
  }

  function syncForm() {
    // The search box keeps what is being typed (the URL catches up after the debounce).
    for (const k of ["q", "userId", "category", "from", "to"]) {
      if (!(k === "q" && document.activeElement === fields.q)) fields[k].value = params.get(k) || "";
    }
    fields.discarded.checked = params.get("discarded") === "1";
    // The mentor list may still be loading: keep the URL's mentor selectable meanwhile.
    const uid = params.get("userId");
    if (uid && fields.userId.value !== uid) {
      fields.userId.append(h("option", { value: uid }, uid));
      fields.userId.value = uid;
    }
  }

  async function loadMentors() {
    try {
      const [{ users }, byUid] = await Promise.all([getJson("/api/omi/users"), peopleByUid()]);
      const current = params.get("userId") || "";
      const label = (uid) => (byUid.has(uid) ? `${nameOf(byUid, uid)} (${uid})` : uid);
      mount(
        fields.userId,
        h("option", { value: "" }, "All mentors"),
        users.map((u) => h("option", { value: u.userId }, label(u.userId))),
        current && !users.some((u) => u.userId === current) ? h("option", { value: current }, current) : null,
      );
      fields.userId.value = current;
    } catch {
      /* the list below reports errors; the select keeps "All mentors" */
    }
  }

  async function load() {
    const mine = ++seq;
    results.setAttribute("aria-busy", "true");
    mount(results, ui.loading("memories"));
    countLine.textContent = "";
    try {
      const [body, byUid] = await Promise.all([getJson(`/api/omi/logs?${apiQuery(params, { cursor: params.get("cursor"), limit: 20 })}`), peopleByUid()]);
      if (mine !== seq) return;
      countLine.textContent = `${fmt.number(body.total)} ${body.total === 1 ? "memory matches" : "memories match"}${params.get("cursor") ? ` · page ${older.length + 1}` : ""}`;
      if (!body.logs.length) {
        mount(results, ui.empty(params.get("cursor") ? "No more memories." : "No memories match these filters."));
      } else {
        mount(results, h("ul", { class: "logs" }, body.logs.map((l) => logItem(l, l.memoryId === fresh, byUid))));
      }
      fresh = null;
      results.append(pager(body.nextCursor));
    } catch (e) {
      if (mine === seq) mount(results, ui.error("load the memories", e));
    } finally {
      if (mine === seq) results.removeAttribute("aria-busy");
    }
  }

  function pager(nextCursor) {
    const cursor = params.get("cursor");
    const newer = h("button", { type: "button", class: "button", disabled: !cursor, onclick: () => {
      const next = new URLSearchParams(params);
      const prev = older.pop();
      if (prev) next.set("cursor", prev);
      else next.delete("cursor");
      navigate(next);
    } }, "← Newer");
    const olderBtn = h("button", { type: "button", class: "button", disabled: !nextCursor, onclick: () => {
      older.push(cursor || "");
      const next = new URLSearchParams(params);
      next.set("cursor", nextCursor);
      navigate(next);
    } }, "Older →");
    return h("nav", { class: "pager", "aria-label": "Pages" }, newer, olderBtn);
  }

  async function exportAs(format, button) {
    button.disabled = true;
    const label = button.textContent;
    button.textContent = "Exporting…";
    try {
      const res = await request(`/api/omi/export?${apiQuery(params, { format })}`);
      saveBlob(await res.blob(), dispositionName(res, `omi-export.${format}`));
    } catch (e) {
      results.prepend(ui.error(`export ${format.toUpperCase()}`, e));
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  function build(el) {
    const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: `f-${id}` }, label), control);
    fields = {
      q: h("input", { id: "f-q", type: "search", name: "q", placeholder: "Words in titles, overviews, transcripts", autocomplete: "off" }),
      userId: h("select", { id: "f-userId", name: "userId" }, h("option", { value: "" }, "All mentors")),
      category: h("select", { id: "f-category", name: "category" }, h("option", { value: "" }, "All categories"), CATEGORIES.map((c) => h("option", { value: c }, c))),
      from: h("input", { id: "f-from", type: "date", name: "from" }),
      to: h("input", { id: "f-to", type: "date", name: "to" }),
      discarded: h("input", { id: "f-discarded", type: "checkbox", name: "discarded" }),
    };
    const search = debounce(() => navigate(fromForm(), { replace: true }), 300);
    fields.q.addEventListener("input", search);
    for (const k of ["userId", "category", "from", "to", "discarded"]) fields[k].addEventListener("change", () => navigate(fromForm()));
    form = h(
      "form",
      { class: "filters card", role: "search", "aria-label": "Filter memories", onsubmit: (e) => (e.preventDefault(), navigate(fromForm())) },
      field("q", "Search", fields.q),
      field("userId", "Mentor", fields.userId),
      field("category", "Category", fields.category),
      field("from", "From", fields.from),
      field("to", "To", fields.to),
      h("div", { class: "field check" }, fields.discarded, h("label", { for: "f-discarded" }, "Include discarded")),
      h("div", { class: "field actions" }, h("a", { class: "button small", href: "#/logs" }, "Clear filters")),
    );
    const csv = h("button", { type: "button", class: "button", onclick: () => exportAs("csv", csv) }, "Export CSV");
    const ndjson = h("button", { type: "button", class: "button", onclick: () => exportAs("ndjson", ndjson) }, "Export NDJSON");
    countLine = h("p", { class: "count", role: "status" });
    results = h("section", { class: "results", "aria-label": "Memories" });
    mount(el, h("div", { class: "title-row" }, h("h1", {}, "Logs"), can("omi:export") ? h("div", { class: "exports", role: "group", "aria-label": "Export with the current filters" }, csv, ndjson) : null), form, countLine, results);
  }

  function apply(route) {
    params = route.params;
    lastListHash = route.hash;
    const k = filterKey(params);
    if (k !== key || !params.get("cursor")) older = [];
    key = k;
    syncForm();
    load();
  }

  return {
    mount(el, route) {
      build(el);
      apply(route);
      loadMentors();
    },
    update: apply,
    onLive(event) {
      if (params.get("cursor")) return; // an older page stays put; the toast announces it
      fresh = event.memoryId;
      load();
      if (![...fields.userId.options].some((o) => o.value === event.userId)) loadMentors();
    },
  };
}

function logItem(l, fresh, byUid = new Map()) {
  const href = `#/logs/${seg(l.userId)}/${seg(l.memoryId)}`;
  const minutes = l.durationSeconds ? `${Math.max(1, Math.round(l.durationSeconds / 60))} min` : null;
  const items = l.actionItems && l.actionItems.total ? `${l.actionItems.open} of ${l.actionItems.total} action items open` : null;
  return h(
    "li",
    { class: `log${fresh ? " fresh" : ""}`, "data-memory": l.memoryId },
    h("span", { class: "emoji", "aria-hidden": "true" }, l.emoji || "💬"),
    h(
      "div",
      { class: "log-main" },
      h("a", { class: "log-title", href }, l.title || l.memoryId),
      l.overview ? h("p", { class: "overview" }, l.overview) : null,
      h(
        "p",
        { class: "meta" },
        h("span", { class: "who", title: l.userId }, nameOf(byUid, l.userId)),
        ui.badge(l.category),
        h("time", { datetime: l.createdAt }, fmt.date(l.createdAt)),
        minutes ? h("span", {}, minutes) : null,
        items ? h("span", {}, items) : null,
        l.discarded ? ui.badge("discarded", "warn") : null,
        fresh ? ui.badge("new", "ok") : null,
      ),
    ),
  );
}

export function memoryView(uid, memoryId) {
  return {
    async mount(el) {
      const back = h("p", { class: "crumbs" }, h("a", { href: lastListHash }, "← Logs"));
      mount(el, back, h("h1", {}, "Memory"), ui.loading("the memory"));
      let res;
      let text;
      let byUid;
      try {
        [res, byUid] = await Promise.all([request(`/api/omi/logs/${seg(uid)}/${seg(memoryId)}`), peopleByUid()]);
        text = await res.text();
      } catch (e) {
        return mount(el, back, h("h1", {}, "Memory"), ui.error(`load memory ${memoryId}`, e));
      }
      let m;
      try {
        m = JSON.parse(text);
      } catch {
        m = {};
      }
      const s = m.structured || {};
      const segments = Array.isArray(m.transcript_segments) ? m.transcript_segments : [];
      const actions = Array.isArray(s.action_items) ? s.action_items : [];
      const speaker = (x) => x.speaker_name || (x.is_user ? "Mentor (device owner)" : null) || x.speaker || (x.speaker_id !== undefined ? `Speaker ${x.speaker_id}` : "Speaker");
      mount(
        el,
        back,
        h("h1", {}, h("span", { class: "emoji", "aria-hidden": "true" }, s.emoji || "💬"), " ", s.title || memoryId),
        h(
          "p",
          { class: "meta" },
          h("a", { href: `#/mentors/${seg(uid)}` }, nameOf(byUid, uid)),
          ui.badge(s.category || "other"),
          h("time", { datetime: m.created_at }, fmt.date(m.created_at)),
          m.discarded ? ui.badge("discarded", "warn") : null,
          h("span", {}, `version ${res.headers.get("x-r2d1-version") || 1}`),
        ),
        s.overview ? h("section", { "aria-labelledby": "h-overview" }, h("h2", { id: "h-overview" }, "Overview"), h("p", { class: "overview" }, s.overview)) : null,
        h(
          "section",
          { "aria-labelledby": "h-actions" },
          h("h2", { id: "h-actions" }, `Action items (${actions.filter((a) => !a.completed).length} open)`),
          actions.length
            ? h("ul", { class: "actions" }, actions.map((a) => h("li", { class: a.completed ? "done" : "open" }, ui.badge(a.completed ? "done" : "open", a.completed ? "ok" : "warn"), " ", a.description || "")))
            : ui.empty("No action items."),
        ),
        h(
          "section",
          { "aria-labelledby": "h-transcript" },
          h("h2", { id: "h-transcript" }, "Transcript"),
          segments.length
            ? h(
                "ol",
                { class: "transcript" },
                segments.map((x) =>
                  h(
                    "li",
                    { class: x.is_user ? "me" : "" },
                    h("span", { class: "ts" }, fmt.clock(x.start), x.end !== undefined ? `–${fmt.clock(x.end)}` : ""),
                    h("strong", { class: "who" }, speaker(x)),
                    h("span", { class: "said" }, x.text || ""),
                  ),
                ),
              )
            : ui.empty("No transcript."),
        ),
        memoryInsights(uid, memoryId),
        h(
          "section",
          { "aria-labelledby": "h-raw" },
          h("h2", { id: "h-raw" }, "Raw JSON"),
          h("button", { type: "button", class: "button", onclick: () => saveBlob(new Blob([text], { type: "application/json" }), `${uid}-${memoryId}.json`) }, "Download JSON"),
          h("details", {}, h("summary", {}, "Show the stored JSON"), h("pre", { class: "raw" }, JSON.stringify(m, null, 2))),
        ),
      );
      el.querySelector("h1").focus({ preventScroll: true });
    },
  };
}
