// The programme's view in a real browser (Playwright + Debian chromium): the Mentors page with
// names, sessions per week and the quiet mentors; a mentor's analytics; a memory's analytics
// and the live transcript it came from; the directory. Data goes in through the public API.
// The README's pictures are taken here (test-results/screenshots/readme-programme-*.png,
// copied to docs/).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startWorker, API_TOKEN, WEBHOOK_TOKEN, ok, at } from "./helpers/worker.mjs";
import { makeMemory, postMemory } from "./helpers/omi.mjs";
import { ENGLISH, SPANISH, ingestFixture } from "./helpers/programme.mjs";
import { launchBrowser, screenshots, SHOTS } from "./helpers/browser.mjs";
import { createKey } from "./helpers/access.mjs";

const DAY = 86_400_000;
const now = Date.now();
let w;
let base;
let browser;
let page;

async function put(id, person) {
  await ok(await w.api(`/api/omi/directory/${id}`, { method: "PUT", body: JSON.stringify(person), headers: { "content-type": "application/json" } }));
}

before(async () => {
  w = await startWorker();
  base = (await w.mf.ready).href.replace(/\/$/, "");
  await ingestFixture(w, ENGLISH);
  await ingestFixture(w, SPANISH);
  // What Omi streamed during the pitch review (13 Jan 2025, 10:00-10:45).
  const live = [
    ["SPEAKER_00", "Live: let's start with the deck.", 2],
    ["SPEAKER_01", "Live: the pricing slide is the weak one.", 12],
  ];
  for (const [speaker, text, minute] of live) {
    const res = await w.fetch(`/api/omi/transcript?uid=${ENGLISH.uid}&session_id=pitch&token=${WEBHOOK_TOKEN}`, {
      method: "POST",
      body: JSON.stringify([{ text, speaker, start: 0, end: 3 }]),
      headers: { "content-type": "application/json", ...at(Date.UTC(2025, 0, 13, 10, minute)) },
    });
    await ok(res);
  }
  // An active mentor: sessions yesterday and a week ago.
  for (const days of [1, 8, 9]) {
    const start = now - days * DAY;
    await ok(await postMemory(w, "sam-phone", makeMemory({ started_at: new Date(start).toISOString(), finished_at: new Date(start + 45 * 60_000).toISOString(), created_at: new Date(start + 46 * 60_000).toISOString(), title: `Sam's session ${days} days ago` })));
  }
  // Two more active mentors, so the Mentors page looks like a programme, and one not named yet.
  const sessions = { "ines-phone": [0, 2, 6, 9, 13, 20, 27, 34, 41], "tom-phone": [3, 10, 17, 30, 31] };
  for (const [uid, days] of Object.entries(sessions)) {
    for (const d of days) {
      const start = now - d * DAY - 2 * 3_600_000;
      await ok(await postMemory(w, uid, makeMemory({ started_at: new Date(start).toISOString(), finished_at: new Date(start + 50 * 60_000).toISOString(), created_at: new Date(start + 51 * 60_000).toISOString() })));
    }
  }
  await ok(await postMemory(w, "nora-tablet", makeMemory({ created_at: new Date(now - DAY).toISOString(), title: "Nora's first session" })));
  await put("ines", { name: "Inés Castro", cohort: "2025-B", mentees: ["Pablo", "Rocío"], uids: ["ines-phone"] });
  await put("tom", { name: "Tom Becker", cohort: "2025-A", mentees: ["Lena"], uids: ["tom-phone"] });
  await put("lucia", { name: "Lucía Pérez", cohort: "2025-A", mentees: ["Ana", "Luis"], uids: [ENGLISH.uid] });
  await put("marta", { name: "Marta Ruiz", cohort: "2025-A", mentees: ["María", "Jorge"], uids: [SPANISH.uid, "marta-old-phone"] });
  await put("sam", { name: "Sam Okafor", cohort: "2025-B", mentees: ["Dana"], uids: ["sam-phone"] });
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/`);
  await page.getByLabel("API token").fill(API_TOKEN);
  await page.keyboard.press("Enter");
  await page.locator("h1", { hasText: "Logs" }).waitFor();
});

after(async () => {
  await browser?.close();
  await w?.dispose();
});

test("the Mentors page names mentors, shows sessions per week and lists who has had no session in 14 days", async () => {
  const api = await (await w.api("/api/omi/programme?weeks=8&inactive_days=14")).json();
  await page.goto(`${base}/#/mentors`);
  const lucia = page.locator('tr[data-person="lucia"]');
  await lucia.waitFor();
  assert.match(await lucia.locator("th").textContent(), /Lucía Pérez.*2025-A.*mentor-en-1/);
  assert.equal(await lucia.getAttribute("data-inactive"), "true");
  assert.match(await lucia.locator(".badge").textContent(), /^No session in \d+ days$/);
  const sam = page.locator('tr[data-person="sam"]');
  assert.equal(await sam.getAttribute("data-inactive"), "false");
  assert.equal((await sam.locator("td").first().textContent()).trim(), "3");
  // The bars draw the API's sessions per week.
  const bars = await sam.locator("svg.spark rect.bar").evaluateAll((rs) => rs.map((r) => Number(r.dataset.value)));
  assert.deepEqual(bars, api.mentors.find((m) => m.personId === "sam").weeks.map((x) => x.sessions));
  assert.equal(bars.reduce((a, b) => a + b, 0), 3);
  const quiet = await page.locator(".quiet-list li").allTextContents();
  assert.ok(quiet.some((t) => t.startsWith("Lucía Pérez")) && quiet.some((t) => t.startsWith("Marta Ruiz")), quiet.join("|"));
  assert.ok(!quiet.some((t) => t.startsWith("Sam")), quiet.join("|"));
  // Quiet after 60 days: the fixtures are older still; Sam is not.
  await page.getByLabel("Quiet after").selectOption("60");
  await page.locator("#h-quiet", { hasText: "No session in 60 days" }).waitFor();
  await screenshots(page, "12-programme-mentors");
  await page.screenshot({ path: join(SHOTS, "readme-programme-mentors.png") });
});

test("a mentor's page: their name, hours per week, talk share and top words for a period", async () => {
  await page.goto(`${base}/#/mentors/${ENGLISH.uid}?from=2025-01-01&to=2025-01-31`);
  await page.locator("h1", { hasText: "Lucía Pérez" }).waitFor();
  assert.match(await page.locator(".person").textContent(), /Cohort 2025-A · uid mentor-en-1 · mentees: Ana, Luis/);
  const hours = page.locator('.analytics [data-stat="hours"] .stat-value');
  await hours.waitFor();
  assert.equal(await hours.textContent(), "1.9");
  assert.equal(await page.locator('.analytics [data-stat="share"] .stat-value').textContent(), "45%");
  const weekly = page.locator(".analytics figure.chart-box").first();
  assert.deepEqual(await weekly.locator("rect.bar").evaluateAll((rs) => rs.map((r) => Number(r.dataset.value))), [1.75, 0.15]);
  const words = await page.locator(".analytics figure.chart-box").nth(1).locator("rect.bar title").allTextContents();
  assert.deepEqual(words.slice(0, 3), ["pricing: 5 times", "customer: 3 times", "interviews: 3 times"]);
  await screenshots(page, "13-programme-mentor");
  await page.screenshot({ path: join(SHOTS, "readme-programme-mentor.png"), fullPage: true });

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download all data (.tar.gz)" }).click()]);
  assert.equal(download.suggestedFilename(), "r2d1-mentor-en-1.tar.gz");
  assert.deepEqual([...readFileSync(await download.path()).subarray(0, 2)], [0x1f, 0x8b]);
});

test("a memory's page: words, unique words, top words, speakers' talk time, and the live transcript it came from", async () => {
  await page.goto(`${base}/#/logs/${ENGLISH.uid}/en-pitch-review`);
  await page.locator("h1", { hasText: "Pitch Deck Review with Ana" }).waitFor();
  const stat = (k) => page.locator(`.memory-analytics [data-stat="${k}"] .stat-value`);
  await stat("words").waitFor();
  assert.equal(await stat("words").textContent(), "54");
  assert.equal(await stat("unique").textContent(), "42");
  assert.equal(await stat("share").textContent(), "45%");
  const rows = await page.locator(".speakers tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
  assert.deepEqual(rows, [
    ["Mentor (device owner) mentor", "0:25", "45%", "27"],
    ["Ana", "0:22", "41%", "18"],
    ["Luis", "0:08", "14%", "9"],
  ]);
  assert.match(await page.locator(".top-words").textContent(), /^Top words: pricing \(4\), customer \(2\), data \(2\), deck \(2\), pitch \(2\)/);
  const live = page.locator(".live-transcript li");
  await live.first().waitFor();
  assert.deepEqual(await live.allTextContents(), ["SPEAKER_00 Live: let's start with the deck.", "SPEAKER_01 Live: the pricing slide is the weak one."]);
  // The memory's own transcript is still there, untouched.
  assert.equal(await page.locator(".transcript li").count(), 5);
  assert.match(await page.locator(".meta a").first().textContent(), /Lucía Pérez/);
  await screenshots(page, "14-programme-memory");
  await page.screenshot({ path: join(SHOTS, "readme-programme-memory.png"), fullPage: true });
});

test("the directory: add a mentor with their uids; names replace uids in the logs", async () => {
  await page.goto(`${base}/#/directory`);
  await page.locator("h1", { hasText: "Directory" }).waitFor();
  await page.locator('form[data-person="lucia"]').waitFor();
  assert.match(await page.locator(".unassigned").textContent(), /nora-tablet/);
  await page.getByLabel("Name", { exact: true }).first().fill("Nora Díaz");
  await page.locator("#p-cohort-new").fill("2025-B");
  await page.locator("#p-mentees-new").fill("Kim, Lee");
  await page.locator("#p-uids-new").fill("nora-tablet");
  await page.getByRole("button", { name: "Add mentor" }).click();
  await page.locator(".messages", { hasText: "Saved Nora Díaz." }).waitFor();
  await page.locator('form[data-person="nora-diaz"]').waitFor();
  const saved = await (await w.api("/api/omi/directory")).json();
  assert.deepEqual(saved.people.find((p) => p.id === "nora-diaz"), { id: "nora-diaz", name: "Nora Díaz", cohort: "2025-B", mentees: ["Kim", "Lee"], uids: ["nora-tablet"] });
  await screenshots(page, "15-programme-directory");
  await page.screenshot({ path: join(SHOTS, "readme-programme-directory.png"), fullPage: true });

  await page.goto(`${base}/#/logs`);
  const first = page.locator('ul.logs > li[data-memory] .who').first();
  await first.waitFor();
  const names = await page.locator("ul.logs > li .who").allTextContents();
  assert.ok(names.includes("Nora Díaz") && names.includes("Sam Okafor"), names.join("|"));
  assert.ok(!names.includes("nora-tablet"));
  assert.match(await page.getByLabel("Mentor").locator('option[value="nora-tablet"]').textContent(), /Nora Díaz \(nora-tablet\)/);

  // Removing the person keeps their logs.
  await page.goto(`${base}/#/directory`);
  await page.getByRole("button", { name: "Remove Nora Díaz" }).click();
  await page.locator(".messages", { hasText: "Removed Nora Díaz" }).waitFor();
  assert.equal((await (await w.api("/api/omi/logs?userId=nora-tablet")).json()).total, 1);
});

// Last: it signs the browser in with another key.
test("a mentor's own key: their row, analytics, archive and live transcript; no directory and nobody else", async () => {
  const key = await createKey(w, [`omi:read:${ENGLISH.uid}`], { name: "Lucía's dashboard" });
  const mine = await browser.context.newPage();
  mine.setDefaultTimeout(10_000);
  try {
    await mine.goto(`${base}/`);
    await mine.getByLabel("API token").fill(key.secret);
    await mine.keyboard.press("Enter");
    await mine.waitForFunction((uid) => location.hash.startsWith(`#/logs?userId=${uid}`), ENGLISH.uid);
    assert.deepEqual((await mine.locator("header nav a").allTextContents()).map((t) => t.trim()), ["Mentors", "Logs"]);
    await mine.goto(`${base}/#/mentors`);
    await mine.locator('tr[data-person="lucia"]').waitFor();
    assert.equal(await mine.locator("table.mentors tbody tr").count(), 1, "only their own row");
    assert.ok(!(await mine.locator("main").textContent()).includes("Marta"), "no other mentor's name anywhere");
    await mine.goto(`${base}/#/mentors/${ENGLISH.uid}?from=2025-01-01&to=2025-01-31`);
    await mine.locator("h1", { hasText: "Lucía Pérez" }).waitFor();
    const hours = mine.locator('.analytics [data-stat="hours"] .stat-value');
    await hours.waitFor();
    assert.equal(await hours.textContent(), "1.9");
    assert.equal(await mine.getByRole("button", { name: "Download all data (.tar.gz)" }).count(), 1);
    await mine.goto(`${base}/#/logs/${ENGLISH.uid}/en-pitch-review`);
    await mine.locator(".live-transcript li").first().waitFor();
    assert.equal(await mine.locator(".live-transcript li").count(), 2);
    // The directory is the programme's: not offered, and a typed hash falls back to their logs.
    await mine.goto(`${base}/#/directory`);
    await mine.waitForFunction((uid) => location.hash.startsWith(`#/logs?userId=${uid}`), ENGLISH.uid);
  } finally {
    await mine.close();
  }
});
