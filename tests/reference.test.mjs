// The rendered API reference (web/reference.html) in a real browser: it loads the worker's copy
// of openapi.json and shows every operation, parameter limit, response and schema.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker } from "./helpers/worker.mjs";
import { DOC } from "./helpers/contract.mjs";
import { join } from "node:path";
import { launchBrowser, SHOTS, DESKTOP, PHONE } from "./helpers/browser.mjs";

let w;
let browser;
let page;
let base;
const errors = [];

before(async () => {
  w = await startWorker();
  base = (await w.mf.ready).href.replace(/\/$/, "");
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  page.setDefaultTimeout(10_000);
  page.on("pageerror", (e) => errors.push(e.message));
});

after(async () => {
  await browser?.close();
  await w?.dispose();
});

test("the reference renders every operation and schema of openapi.json, with limits and access", async () => {
  // The page reads the same document the tests validate against.
  const served = await w.fetch("/openapi.json");
  assert.equal(served.status, 200);
  assert.deepEqual(await served.json(), DOC);

  await page.goto(`${base}/reference.html`);
  await page.waitForSelector("section.op");
  const ops = Object.values(DOC.paths).flatMap((item) => Object.values(item).filter((o) => o && o.operationId));
  assert.equal(await page.locator("section.op").count(), ops.length);
  for (const op of ops) {
    const section = page.locator(`#op-${op.operationId}`);
    assert.equal(await section.count(), 1, op.operationId);
    assert.equal(await section.locator(".access").innerText(), op["x-r2d1-access"], op.operationId);
  }
  assert.equal(await page.locator("section.schema").count(), Object.keys(DOC.components.schemas).length);

  const logs = page.locator("#op-listOmiLogs");
  const text = await logs.innerText();
  assert.match(text, /limit\s+query\s+integer 1–100\s+default 20/);
  assert.match(text, /Codes: invalid_field/);
  assert.match(text, /LogsPage/);
  // A schema link leads to the schema.
  await logs.locator("a.ref", { hasText: "LogsPage" }).first().click();
  await page.waitForFunction(() => location.hash === "#schema-LogsPage");
  assert.match(await page.locator("#schema-LogsPage").innerText(), /nextCursor/);
  // Request examples are there to copy.
  const memory = page.locator("#op-postOmiMemory");
  await memory.locator("details summary").first().click();
  assert.match(await memory.locator("pre.example").first().innerText(), /"memory_abc123"/);
  // Nothing is rendered as a stray "null" or "[object …]".
  assert.doesNotMatch(await page.locator("main").innerText(), /\[object |,http/);
  // The page is tens of thousands of pixels tall: the viewport, not the full page, is kept.
  for (const [label, size] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(size);
    await page.locator("#op-listOmiLogs").scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, `reference-${label}.png`) });
  }
  assert.deepEqual(errors, []);
});
