// The dashboard's app lifecycle and rollout controls (issue 13) in a real browser: an app's
// storage state and quotas, version tags, deleting a version, retention and the app itself
// behind confirmations, and the rollout switch and savings on the Storage page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startWorker, API_TOKEN } from "./helpers/worker.mjs";
import { launchBrowser, screenshots } from "./helpers/browser.mjs";
import { ok, json } from "./helpers/files.mjs";

let w;
let base;
let browser;
let page;

before(async () => {
  w = await startWorker();
  base = (await w.mf.ready).href.replace(/\/$/, "");
  const put = (path, body) => w.api(`/api/apps/site/files/${path}`, { method: "PUT", body });
  await ok(await put("index.html", "<h1>site</h1>"), 201);
  await ok(await put("app.js", "console.log('hybrid'); ".repeat(70)), 201);
  for (let v = 1; v <= 4; v++) {
    await ok(await put("big.bin", randomBytes(9_000 + v)), [200, 201]);
    await ok(await w.api("/api/apps/site/versions", json("POST", { changelog: `release ${v}` })), 201);
  }
  await ok(await w.api("/api/apps/scratch/files/a.txt", { method: "PUT", body: "scratch" }), 201);
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/#/apps`);
  await page.fill("#token", API_TOKEN);
  await page.click("button[type=submit]");
  await page.locator("h1", { hasText: "Apps" }).waitFor();
});

after(async () => {
  await browser?.close();
  await w?.dispose();
});

const app = async (name) => ok(await w.api(`/api/apps/${name}`));

test("an app's page: where its bytes are and why, its quotas against its usage, and editing them", async () => {
  await page.goto(`${base}/#/apps/site`);
  await page.locator('section.lifecycle tr[data-location="r2"]').waitFor();
  const doc = await app("site");
  for (const loc of ["database", "hybrid", "r2"]) {
    const cells = await page.locator(`section.lifecycle tr[data-location="${loc}"] td`).allTextContents();
    assert.equal(cells[0], String(doc.storage[loc].files), `${loc} files`);
  }
  assert.match(await page.locator("section.lifecycle .state").textContent(), /in the rollout/);
  assert.equal((await page.locator('tr[data-quota="versions"] td').allTextContents())[0], "4");

  await page.getByLabel("Max versions").fill("4");
  await page.getByRole("button", { name: "Save quotas" }).click();
  await page.locator(".messages [role=status]", { hasText: "Saved the quotas." }).waitFor();
  assert.equal((await app("site")).quota.max_versions, 4);
  assert.match(await page.locator('tr[data-quota="versions"]').textContent(), /full/);
  await screenshots(page, "12-app-lifecycle");
  await page.getByLabel("Max versions").fill("");
  await page.getByRole("button", { name: "Save quotas" }).click();
  await page.locator(".messages [role=status]", { hasText: "Saved the quotas." }).waitFor();
  assert.equal((await app("site")).quota.max_versions, null);
});

test("version tags, deleting a version after a confirmation, and retention after a confirmation", async () => {
  await page.goto(`${base}/#/apps/site`);
  await page.getByLabel("Tag for version 2").fill("production");
  await page.getByRole("form", { name: "Tag version 2" }).getByRole("button", { name: "Tag" }).click();
  await page.locator('.timeline li[data-version="2"] [data-tag="production"]').waitFor();
  assert.deepEqual((await ok(await w.api("/api/apps/site/tags"))).tags.map((t) => [t.tag, t.version_number]), [["production", 2]]);
  assert.equal(await page.getByRole("button", { name: "Delete version 2" }).isDisabled(), true, "a tagged version cannot be deleted");

  await page.getByRole("button", { name: "Delete version 1" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  assert.equal(await page.locator('.timeline li[data-version="1"]').count(), 1, "cancel deletes nothing");
  await page.getByRole("button", { name: "Delete version 1" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete version" }).click();
  await page.locator(".messages [role=status]", { hasText: "Deleted v1" }).waitFor();
  assert.equal(await page.locator('.timeline li[data-version="1"]').count(), 0);
  assert.deepEqual((await ok(await w.api("/api/apps/site/versions"))).versions.map((v) => v.version_number), [2, 3, 4]);

  // Keep the last one: v3 goes, v2 stays (tagged), v4 stays (newest).
  await page.getByLabel("Keep the last N versions").fill("1");
  await page.getByRole("button", { name: "Save retention" }).click();
  await page.locator(".messages [role=status]", { hasText: "Saved the retention policy." }).waitFor();
  await page.getByRole("button", { name: "Apply retention…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /deletes v3 of site/);
  await dialog.getByRole("button", { name: "Delete versions" }).click();
  await page.locator(".messages [role=status]", { hasText: "Retention deleted v3" }).waitFor();
  assert.deepEqual((await ok(await w.api("/api/apps/site/versions"))).versions.map((v) => v.version_number), [2, 4]);
  await screenshots(page, "13-app-retention");

  await page.locator('.timeline li[data-version="2"]').getByRole("button", { name: "Remove tag production" }).click();
  await page.locator(".messages [role=status]", { hasText: "Removed tag production." }).waitFor();
  assert.deepEqual((await ok(await w.api("/api/apps/site/tags"))).tags, []);
});

test("deleting an app asks first, then takes everything it owns", async () => {
  await page.goto(`${base}/#/apps/scratch`);
  await page.getByRole("button", { name: "Delete app…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  assert.equal((await w.api("/api/apps/scratch")).status, 200);
  await page.getByRole("button", { name: "Delete app…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete app" }).click();
  await page.locator("h1", { hasText: "Apps" }).waitFor();
  assert.equal((await w.api("/api/apps/scratch")).status, 404);
  assert.equal(await page.locator('tr[data-app="scratch"]').count(), 0);
});

test("the Storage page: the rollout percentage, the rollback switch behind a confirmation, and the plan's metrics beside the measured ones", async () => {
  await page.goto(`${base}/#/storage`);
  await page.locator('section.rollout tr[data-state="rollout"]').waitFor();
  assert.equal(await page.getByLabel("Apps in the rollout (%)").inputValue(), "100");
  await page.getByLabel("Apps in the rollout (%)").fill("10");
  await page.getByRole("form", { name: "Rollout percentage" }).getByRole("button", { name: "Save" }).click();
  await page.locator("section.rollout [role=status]", { hasText: "Rollout set to 10 % of apps." }).waitFor();
  const rollout = await ok(await w.api("/api/admin/storage/rollout"));
  assert.equal(rollout.r2_percent, 10);
  const held = await page.locator('section.rollout tr[data-state="held_back"] td').allTextContents();
  assert.equal(held[0], String(rollout.report.by_cohort.held_back.apps));

  await page.getByRole("button", { name: "Turn rollback on…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
  assert.equal((await ok(await w.api("/api/admin/storage/rollout"))).rollback, false);
  await page.getByRole("button", { name: "Turn rollback on…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Turn on" }).click();
  await page.locator('section.rollout .state[data-rollback="true"]').waitFor();
  assert.equal((await ok(await w.api("/api/admin/storage/rollout"))).rollback, true);
  assert.equal(await page.getByRole("button", { name: "Turn rollback off…" }).getAttribute("aria-pressed"), "true");

  const report = await ok(await w.api("/api/admin/storage/report"));
  await page.locator('section.savings tr[data-metric="omi"]').waitFor();
  assert.match(await page.locator('tr[data-metric="database"]').textContent(), /70-80 %/);
  assert.match(await page.locator('tr[data-metric="cost"]').textContent(), /> 90 %/);
  assert.match(await page.locator('tr[data-metric="omi"]').textContent(), /< \$5/);
  assert.equal(await page.locator("section.savings tr[data-workload]").count(), report.costs.workloads.length);
  await screenshots(page, "14-storage-rollout");

  await page.getByRole("button", { name: "Turn rollback off…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Turn off" }).click();
  await page.locator('section.rollout .state[data-rollback="false"]').waitFor();
  await ok(await w.api("/api/admin/storage/rollout", json("PUT", { r2_percent: null })));
});
