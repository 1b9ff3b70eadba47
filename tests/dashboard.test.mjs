// The dashboard in a real browser (Playwright + Debian chromium) against the worker on a
// loopback port, with data seeded through the public API (webhooks and the files API).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startWorker, API_TOKEN } from "./helpers/worker.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";
import { join } from "node:path";
import { launchBrowser, screenshots, SHOTS } from "./helpers/browser.mjs";

const DAY = 86_400_000;
const now = Date.now();
const ago = (days, minutes = 0) => new Date(now - days * DAY - minutes * 60_000).toISOString();

let w;
let base;
let browser;
let page;
const seeded = { alice: [], bob: [] };

async function seedMemories() {
  // alice: one memory a day for 25 days (the 30-day chart), one 60 days ago (90-day chart only).
  const categories = ["education", "work", "education", "health", "education"];
  for (let d = 0; d < 25; d++) {
    const m = makeMemory({ created_at: ago(d, 30), category: categories[d % 5], title: `Alice session day ${d}` });
    assert.equal((await postMemory(w, "alice", m)).status, 200);
    seeded.alice.push(m);
  }
  const old = makeMemory({ created_at: ago(60), category: "work", title: "Alice long ago" });
  assert.equal((await postMemory(w, "alice", old)).status, 200);
  seeded.alice.push(old);
  // bob: a searchable word, a discarded memory, a transcript with timestamps, action items.
  const bobs = [
    makeMemory({ created_at: ago(1), title: "Zebra crossing plan", category: "work", text: "The zebra project needs a new plan" }),
    makeMemory({ created_at: ago(2), title: "Budget review", category: "finance" }),
    makeMemory({ created_at: ago(3), title: "Noise", category: "other", discarded: true }),
    makeMemory({
      created_at: ago(0, 90),
      title: "Career goals with Dana",
      category: "education",
      overview: "Dana wants to move into engineering management within a year.",
      transcript_segments: [
        { text: "Where do you see yourself next year?", speaker: "SPEAKER_00", speaker_id: 0, is_user: true, start: 0, end: 4.2 },
        { text: "Leading a small team, ideally.", speaker: "SPEAKER_01", speaker_id: 1, is_user: false, start: 65, end: 70 },
      ],
      action_items: [
        { description: "Send Dana the management reading list", completed: false },
        { description: "Schedule a follow-up", completed: true },
      ],
    }),
  ];
  for (const m of bobs) {
    assert.equal((await postMemory(w, "bob", m)).status, 200);
    seeded.bob.push(m);
  }
}

async function seedApps() {
  // The files API is part of this build: a failure here fails the suite, it never skips it.
  const probe = await w.api("/api/apps");
  assert.equal(probe.status, 200, await probe.text());
  const put = async (path, body) => {
    const res = await w.api(`/api/apps/demo/files/${path}`, { method: "PUT", body });
    assert.ok(res.status === 200 || res.status === 201, `${path}: ${res.status} ${await res.text()}`);
  };
  const version = async (changelog) => {
    const res = await w.api("/api/apps/demo/versions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ changelog }) });
    assert.equal(res.status, 201, await res.text());
  };
  await put("index.html", "<h1>Hello</h1>\n<p>First draft</p>\n");
  await put("app.js", "export const answer = 41;\nconsole.log(answer);\n");
  await put("assets/data.txt", "hybrid ".repeat(250)); // 1,750 bytes: hybrid
  await put("assets/big.txt", "r2 only ".repeat(2000)); // 16,000 bytes: R2
  await version("First release");
  await put("app.js", "export const answer = 42;\nconsole.log(answer);\n");
  await put("CHANGES.md", "- fixed the answer\n");
  await version("Fix the answer");
}

before(async () => {
  w = await startWorker();
  base = (await w.mf.ready).href.replace(/\/$/, "");
  await seedMemories();
  await seedApps();
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  page.setDefaultTimeout(10_000);
});

after(async () => {
  await browser?.close();
  await w?.dispose();
});

async function signIn() {
  await page.goto(`${base}/#/logs`);
  if (await page.locator("#token").isVisible().catch(() => false)) {
    await page.fill("#token", API_TOKEN);
    await page.click("button[type=submit]");
  }
  await page.locator("h1", { hasText: "Logs" }).waitFor();
}

const items = () => page.locator("ul.logs > li");

test("sign in: a wrong token is refused and says so; the right one is kept in sessionStorage, never in the URL", async () => {
  await page.goto(`${base}/`);
  await page.getByLabel("API token").fill("not-the-token");
  await page.keyboard.press("Enter");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.textContent(), /not accepted/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("r2d1.token")), null);
  await screenshots(page, "01-sign-in-refused");

  await page.getByLabel("API token").fill(API_TOKEN);
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Logs" }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("r2d1.token")), API_TOKEN);
  assert.ok(!page.url().includes(API_TOKEN));
});

test("mentors: the list shows memories, minutes and last seen", async () => {
  await signIn();
  await page.getByRole("link", { name: "Mentors" }).click();
  const alice = page.locator('tr[data-user="alice"]');
  await alice.waitFor();
  const cells = await alice.locator("td").allTextContents();
  assert.equal(cells[0], "26");
  assert.ok(Number(cells[1]) > 0, `minutes: ${cells[1]}`);
  assert.match(cells[2], /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
  assert.equal(await page.locator('tr[data-user="bob"] td').first().textContent(), "4");
  await screenshots(page, "02-mentors");
});

test("a mentor's page: stat cards, and the charts render from real data (30 and 90 days)", async () => {
  await page.goto(`${base}/#/mentors/alice`);
  const chart = page.locator("figure.chart-box svg").first();
  await chart.waitFor();
  assert.match(await page.locator(".cards").textContent(), /Memories\s*26/);
  const sum = async () => (await chart.locator("rect.bar").evaluateAll((rs) => rs.map((r) => Number(r.dataset.value)))).reduce((a, b) => a + b, 0);
  assert.equal(await chart.locator("rect.bar").count(), 30);
  assert.equal(await sum(), 25, "the 30-day chart counts alice's 25 recent memories");
  // The API says the same thing the chart draws.
  const bars = page.locator("figure.chart-box").nth(1).locator("rect.bar");
  const byCategory = Object.fromEntries(
    await bars.evaluateAll((rs) => rs.map((r) => [r.querySelector("title").textContent.split(":")[0], Number(r.dataset.value)])),
  );
  const stats = await (await w.api("/api/omi/users/alice/stats")).json();
  assert.deepEqual(byCategory, stats.stats.categories);
  await screenshots(page, "03-mentor");

  await page.getByRole("link", { name: "Last 90 days" }).click();
  await page.waitForFunction(() => document.querySelectorAll("figure.chart-box svg")[0]?.querySelectorAll("rect.bar").length === 90);
  assert.equal(await sum(), 26);
  assert.match(page.url(), /days=90/);
});

test("logs: newest first, paginated with the cursor, searched, filtered, and the filters survive a reload", async () => {
  await page.goto(`${base}/#/logs`);
  await items().first().waitFor();
  assert.equal(await items().count(), 20);
  const titles = await page.locator(".log-title").allTextContents();
  assert.equal(titles[0], "Alice session day 0", "newest first");
  assert.match(await page.locator(".count").textContent(), /29 memories match/);

  // Pagination: 29 visible memories → 20 + 9.
  await page.getByRole("button", { name: "Older →" }).click();
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 9);
  assert.match(page.url(), /cursor=/);
  await page.getByRole("button", { name: "← Newer" }).click();
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 20);
  assert.doesNotMatch(page.url(), /cursor=/);

  // Full-text search, debounced: finds the transcript word.
  await page.getByLabel("Search").fill("zebra");
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 1);
  assert.equal(await page.locator(".log-title").first().textContent(), "Zebra crossing plan");
  assert.match(page.url(), /q=zebra/);
  await page.getByLabel("Search").fill("");
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 20);

  // Mentor + category + discarded, in the URL; a reload shows the same view.
  await page.getByLabel("Mentor").selectOption("bob");
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 3);
  await page.getByLabel("Include discarded").check();
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 4);
  await page.getByLabel("Category").selectOption("work");
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 1);
  assert.match(page.url(), /userId=bob/);
  assert.match(page.url(), /category=work/);
  assert.match(page.url(), /discarded=1/);
  await page.reload();
  await items().first().waitFor();
  assert.equal(await items().count(), 1);
  assert.equal(await page.getByLabel("Mentor").inputValue(), "bob");
  assert.equal(await page.getByLabel("Category").inputValue(), "work");
  assert.equal(await page.getByLabel("Include discarded").isChecked(), true);

  // Date range: only today and yesterday.
  await page.goto(`${base}/#/logs?userId=bob`);
  await page.getByLabel("From").fill(ago(1).slice(0, 10));
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 2);
  assert.match(page.url(), /from=\d{4}-\d\d-\d\d/);

  // Empty state.
  await page.goto(`${base}/#/logs?q=nothingmatchesthis`);
  await page.locator(".empty", { hasText: "No memories match" }).waitFor();
  await page.goto(`${base}/#/logs`);
  await items().first().waitFor();
  await screenshots(page, "04-logs");
});

test("logs: an API failure shows an error banner that says what failed", async () => {
  await page.route("**/api/omi/logs?*", (route) =>
    route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: { code: "internal_error", message: "internal error" } }) }),
  );
  try {
    await page.goto(`${base}/#/logs?category=health`);
    const alert = page.locator(".results [role=alert]");
    await alert.waitFor();
    assert.match(await alert.textContent(), /Could not load the memories\. internal error \(HTTP 500, internal_error\)/);
    await screenshots(page, "05-logs-error");
  } finally {
    await page.unroute("**/api/omi/logs?*");
  }
});

test("a memory's page: title, emoji, overview, transcript by speaker with timestamps, action items, raw JSON download", async () => {
  await page.goto(`${base}/#/logs?userId=bob`);
  await page.getByRole("link", { name: "Career goals with Dana" }).click();
  await page.locator("h1", { hasText: "Career goals with Dana" }).waitFor();
  assert.match(await page.locator("h1").textContent(), /🧭/);
  assert.match(await page.locator(".overview").textContent(), /engineering management/);
  const lines = await page.locator(".transcript li").allInnerTexts();
  assert.equal(lines.length, 2);
  assert.match(lines[0], /0:00\s*–\s*0:04/);
  assert.match(lines[1], /1:05\s*–\s*1:10/);
  assert.match(lines[1], /SPEAKER_01/);
  assert.match(lines[1], /Leading a small team/);
  assert.equal(await page.locator(".actions li.open").count(), 1);
  assert.equal(await page.locator(".actions li.done").count(), 1);
  assert.match(await page.locator("h2#h-actions").textContent(), /1 open/);

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download JSON" }).click()]);
  const saved = JSON.parse(readFileSync(await download.path(), "utf8"));
  assert.equal(download.suggestedFilename(), `bob-${seeded.bob[3].id}.json`);
  assert.deepEqual(saved, seeded.bob[3]);
  await screenshots(page, "06-memory");
});

test("export: CSV and NDJSON downloads hold exactly the rows the current filters select", async () => {
  await page.goto(`${base}/#/logs?userId=bob&discarded=1`);
  await items().first().waitFor();
  const [csv] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  assert.equal(csv.suggestedFilename(), "omi-export.csv");
  const rows = readFileSync(await csv.path(), "utf8").trim().split("\n");
  assert.match(rows[0], /^user_id,memory_id,/);
  assert.equal(rows.length - 1, 4, "bob's four memories, discarded included");
  assert.ok(rows.slice(1).every((r) => r.startsWith("bob,")));

  await page.goto(`${base}/#/logs?userId=bob&category=finance`);
  await page.waitForFunction(() => document.querySelectorAll("ul.logs > li").length === 1);
  const [nd] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export NDJSON" }).click()]);
  assert.equal(nd.suggestedFilename(), "omi-export.ndjson");
  const lines = readFileSync(await nd.path(), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.title), ["Budget review"]);
});

test("live: a memory posted while the page is open appears at the top within two seconds", async () => {
  await page.goto(`${base}/#/logs`);
  await items().first().waitFor();
  await page.locator('.live-status[data-state="live"]').waitFor();
  const m = makeMemory({ created_at: new Date().toISOString(), title: "Arrived while watching", category: "work" });
  const started = Date.now();
  assert.equal((await postMemory(w, "carol", m)).status, 200);
  await page.locator(`ul.logs > li:first-child[data-memory="${m.id}"]`).waitFor({ timeout: 2000 });
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2000, `${elapsed} ms`);
  await page.locator(".toast", { hasText: "Arrived while watching" }).waitFor();
  // The README's picture (docs/dashboard-logs.png is a copy of it).
  await page.screenshot({ path: join(SHOTS, "readme-logs.png") });
  await screenshots(page, "07-live");
});

test("live: the page works while the socket is down, and reconnects by itself", async () => {
  let refuse = true;
  await page.route("**/api/live/ticket", (route) => (refuse ? route.fulfill({ status: 503, body: "{}" }) : route.continue()));
  try {
    await page.goto(`${base}/#/mentors`);
    await page.reload();
    await page.locator('.live-status[data-state="offline"]').waitFor();
    await page.locator('tr[data-user="alice"]').waitFor();
    refuse = false;
    await page.locator('.live-status[data-state="live"]').waitFor({ timeout: 8000 });
  } finally {
    await page.unroute("**/api/live/ticket");
  }
});

test("keyboard and screen readers: every control is labelled, the skip link and navigation work by keyboard", async () => {
  await page.goto(`${base}/#/logs`);
  await items().first().waitFor();
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, button")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.textContent.trim())
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, []);
  await page.locator("a.brand").focus();
  await page.keyboard.press("Shift+Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  await page.locator('nav a[data-nav="mentors"]').focus();
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Mentors" }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.tagName), "H1", "focus moves to the new page's heading");
});

test("apps: files with size, tier and sha; versions with changelogs; a diff shows the changed lines; restore makes a new version", async (t) => {
  await page.goto(`${base}/#/apps`);
  await page.getByRole("link", { name: "demo" }).click();
  await page.locator('tr[data-path="app.js"]').waitFor();
  const tier = async (p) => (await page.locator(`tr[data-path="${p}"] .badge`).textContent()).trim();
  assert.equal(await tier("app.js"), "database");
  assert.equal(await tier("assets/data.txt"), "hybrid");
  assert.equal(await tier("assets/big.txt"), "R2");
  const sha = await page.locator('tr[data-path="assets/big.txt"] code.sha').getAttribute("title");
  assert.match(sha, /^[0-9a-f]{64}$/);
  assert.equal(await page.locator(".timeline li").count(), 2);
  assert.match(await page.locator('.timeline li[data-version="2"]').textContent(), /Fix the answer/);
  assert.match(await page.locator('.timeline li[data-version="1"]').textContent(), /First release/);
  await screenshots(page, "08-app");

  const [archive] = await Promise.all([page.waitForEvent("download"), page.locator('.timeline li[data-version="1"]').getByRole("button", { name: "Download .tar.gz" }).click()]);
  assert.equal(archive.suggestedFilename(), "demo-v1.tar.gz");
  assert.deepEqual([...readFileSync(await archive.path()).subarray(0, 2)], [0x1f, 0x8b], "a gzip file");

  await page.getByLabel("Compare", { exact: true }).selectOption("1");
  await page.getByLabel("with", { exact: true }).selectOption("2");
  await page.getByRole("button", { name: "Show diff" }).click();
  await page.locator('.diff-file[data-path="app.js"]').waitFor();
  assert.equal(await page.locator('.diff-file[data-path="app.js"]').getAttribute("data-change"), "modified");
  assert.equal(await page.locator('.diff-file[data-path="CHANGES.md"]').getAttribute("data-change"), "added");
  const del = await page.locator('.diff-file[data-path="app.js"] .line.del').allTextContents();
  const add = await page.locator('.diff-file[data-path="app.js"] .line.add').allTextContents();
  assert.ok(del.some((l) => l.includes("-export const answer = 41;")), del.join("|"));
  assert.ok(add.some((l) => l.includes("+export const answer = 42;")), add.join("|"));
  const colours = await page.locator('.diff-file[data-path="app.js"] .line.add').first().evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.notEqual(colours, "rgba(0, 0, 0, 0)", "additions are coloured");
  await screenshots(page, "09-diff");

  await page.goto(`${base}/#/apps/demo`);
  await page.getByRole("button", { name: "Restore version 1" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  assert.equal(await page.locator(".timeline li").count(), 2, "cancel changes nothing");
  await page.getByRole("button", { name: "Restore version 1" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Restore" }).click();
  await page.locator('.timeline li[data-version="3"]').waitFor();
  assert.match(await page.locator('.timeline li[data-version="3"]').textContent(), /restored from v1/);
  assert.match(await page.locator(".messages").textContent(), /Restored v1 as new version v3/);
  const versions = await (await w.api("/api/apps/demo/versions")).json();
  assert.equal(versions.versions.length, 3);
  assert.equal(await page.locator('tr[data-path="app.js"]').count(), 1);
  await screenshots(page, "10-app-restored");
});

test("storage: the report's real figures, and a migration dry run", async (t) => {
  const report = await (await w.api("/api/admin/storage/report")).json();
  await page.goto(`${base}/#/storage`);
  await page.locator('tr[data-tier="r2"]').waitFor();
  for (const tier of ["database", "hybrid", "r2"]) {
    const cells = await page.locator(`tr[data-tier="${tier}"] td`).allTextContents();
    assert.equal(cells[0], String(report.files[tier].files), `${tier} files`);
    assert.equal(cells[2], String(report.versions[tier].files), `${tier} version lines`);
  }
  assert.ok(report.files.r2.files >= 1);
  assert.match(await page.locator('[data-stat="cost"]').textContent(), /\$\d/);
  assert.match(await page.locator(".migration label").textContent(), new RegExp(`${report.migration.progress_percent}% migrated`));
  await page.getByRole("button", { name: "Migration dry run" }).click();
  await page.locator(".dry-run [role=status]", { hasText: "Dry run:" }).waitFor();
  const after = await (await w.api("/api/admin/storage/report")).json();
  assert.deepEqual(after.files, report.files, "a dry run changes nothing");
  await screenshots(page, "11-storage");
});

test("signing out forgets the token", async () => {
  await page.goto(`${base}/#/logs`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByLabel("API token").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("r2d1.token")), null);
});
