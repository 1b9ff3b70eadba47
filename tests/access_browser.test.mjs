// Access in a real browser (Playwright driving Debian's chromium): the Omi app's install flow
// end to end under OMI_ENROLLMENT=required (the auth-step page with Omi's ?uid=, an invite code
// accepted once, the setup check turning true, signed deliveries dropped until the uid is
// enrolled and stored after), and the dashboard with keys of different scopes (a mentor's key
// lands on that mentor's logs and sees no other page; an admin creates and revokes keys and
// mentor credentials, and is warned about the shared webhook token).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ok, json, listKeys, API_TOKEN } from "./helpers/worker.mjs";
import { makeMemory, postMemory, omiSignature, dbCount } from "./helpers/omi.mjs";
import { createKey } from "./helpers/access.mjs";
import { launchBrowser, screenshots } from "./helpers/browser.mjs";

const APP_SECRET = "whsec_programme_app_secret_for_tests_0123";
let omiApp; // the programme's Omi app: signed deliveries, enrollment required
let dash; // a deployment on the shared webhook token
let browser;
let omiBase;
let dashBase;

before(async () => {
  omiApp = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: "", OMI_SIGNING_SECRET: APP_SECRET, OMI_ENROLLMENT: "required" } });
  dash = await startWorker();
  omiBase = new URL(await omiApp.mf.ready).origin;
  dashBase = new URL(await dash.mf.ready).origin;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await omiApp?.dispose();
  await dash?.dispose();
});

/** A delivery exactly as Omi's app sends it: signed with the app's secret over t, uid and body. */
function signedDelivery(uid, memory) {
  const body = JSON.stringify(memory);
  const t = Math.floor(Date.now() / 1000);
  return omiApp.fetch(`/api/omi/memory?uid=${encodeURIComponent(uid)}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-omi-signature": omiSignature(APP_SECRET, t, uid, body), "x-omi-delivery": `d-${memory.id}` },
    body,
  });
}

const setupDone = async (uid) => (await ok(await omiApp.fetch(`/api/omi/setup?uid=${encodeURIComponent(uid)}`))).is_setup_completed;

test("installing the Omi app: unenrolled deliveries are answered 2xx and dropped; an invite code links the uid once; then deliveries are stored", async () => {
  const uid = "OmiUid_Ana.01";
  // Before enrolling: Omi's delivery succeeds (2xx, no message to push), nothing is kept.
  const early = await signedDelivery(uid, makeMemory({ id: "before-enrollment" }));
  assert.equal(early.status, 200);
  const earlyBody = await early.json();
  assert.deepEqual(earlyBody, { success: true, stored: false, enrolled: false, user_id: uid });
  assert.equal(await dbCount(omiApp, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid), 0);
  assert.equal((await listKeys(omiApp.bucket)).length, 0, "nothing of an unenrolled uid reaches R2");
  assert.equal(await setupDone(uid), false);
  const asking = await ok(await omiApp.api("/api/admin/enrollment"));
  assert.equal(asking.mode, "required");
  assert.deepEqual(asking.asking.map((a) => [a.uid, a.deliveries]), [[uid, 1]]);
  assert.equal(asking.droppedDeliveries, 1);

  // The programme makes a single-use code for Ana.
  const invite = await ok(await omiApp.api("/api/admin/invites", json("POST", { label: "Ana Pérez", maxUses: 1, expiresInDays: 7 })), 201);
  assert.match(invite.code, /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  assert.equal(invite.enrollUrl, "http://r2d1.test/api/omi/enroll", "the auth-step URL on the origin the admin used");

  // Omi opens the auth step with ?uid=; Ana types the code (lower case, no dashes: forgiven).
  const page = await browser.context.newPage();
  try {
    const resp = await page.goto(`${omiBase}/api/omi/enroll?uid=${encodeURIComponent(uid)}`);
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()["content-security-policy"], /default-src 'none'/);
    assert.match(resp.headers()["content-security-policy"], /frame-ancestors 'none'/);
    await page.getByLabel("Invite code").fill("wrong-code-0000");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").textContent(), /invite code/);
    await screenshots(page, "access-01-enroll-refused");
    await page.getByLabel("Invite code").fill(invite.code.toLowerCase().replaceAll("-", " "));
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("heading", { name: "Connected" }).waitFor();
    await screenshots(page, "access-02-enrolled");
  } finally {
    await page.close();
  }
  // Omi's poll of setup_completed_url now says true.
  assert.equal(await setupDone(uid), true);
  const enrolled = await ok(await omiApp.api("/api/admin/enrollment"));
  assert.deepEqual(enrolled.enrolled.map((e) => [e.uid, e.label, e.via]), [[uid, "Ana Pérez", "invite"]]);
  assert.deepEqual(enrolled.asking, [], "Ana is no longer asking");
  const used = (await ok(await omiApp.api("/api/admin/invites"))).invites[0];
  assert.equal(used.uses, 1);
  assert.equal(used.status, "usedUp");

  // The same code for another uid: refused, and that uid stays unenrolled.
  const other = await browser.context.newPage();
  try {
    await other.goto(`${omiBase}/api/omi/enroll?uid=someone-else`);
    await other.getByLabel("Invite code").fill(invite.code);
    await other.getByRole("button", { name: "Connect" }).click();
    await other.getByRole("alert").waitFor();
    assert.match(await other.getByRole("alert").textContent(), /already been used/);
  } finally {
    await other.close();
  }
  assert.equal(await setupDone("someone-else"), false);

  // Enrolled now: the next signed delivery is stored, as Omi sent it.
  const m = makeMemory({ id: "after-enrollment" });
  const stored = await ok(await signedDelivery(uid, m));
  assert.equal(stored.duplicate, false);
  assert.equal(await dbCount(omiApp, "SELECT COUNT(*) FROM omi_memories WHERE user_id = ?", uid), 1);
  assert.equal((await listKeys(omiApp.bucket, `mobil3-mentorships/by-user/${uid}/`)).length, 1);
  // An admin can enroll a uid that was asking, from the API as from the dashboard.
  assert.equal((await signedDelivery("late-uid", makeMemory())).status, 200);
  await ok(await omiApp.api("/api/admin/enrollment/late-uid", json("POST", { label: "Late" })));
  assert.equal((await ok(await signedDelivery("late-uid", makeMemory({ id: "late-1" })))).duplicate, false);
  assert.equal(await dbCount(omiApp, "SELECT COUNT(*) FROM omi_memories WHERE user_id = 'late-uid'"), 1);
});

async function signIn(page, secret) {
  await page.goto(`${dashBase}/`);
  await page.getByLabel("API token").fill(secret);
  await page.keyboard.press("Enter");
}

const navLinks = async (page) => (await page.locator("header nav a").allTextContents()).map((t) => t.trim());

test("dashboard: a mentor's key lands on that mentor's own logs and sees no page it cannot use", async () => {
  for (const uid of ["alice", "bob"]) for (let i = 0; i < 2; i++) assert.equal((await postMemory(dash, uid, makeMemory({ title: `${uid} talk ${i}` }))).status, 200);
  const alice = await createKey(dash, ["omi:read:alice"], { name: "Alice's dashboard" });
  const page = await browser.context.newPage();
  try {
    await signIn(page, alice.secret);
    await page.locator("h1", { hasText: "Logs" }).waitFor();
    await page.waitForFunction(() => location.hash.startsWith("#/logs?userId=alice"));
    await page.locator("ul.logs > li").first().waitFor();
    const titles = await page.locator("ul.logs > li").allTextContents();
    assert.equal(titles.length, 2);
    assert.ok(titles.every((t) => t.includes("alice talk")), titles.join(" | "));
    assert.deepEqual(await navLinks(page), ["Mentors", "Logs"]);
    assert.equal(await page.locator(".legacy-token").count(), 0, "the shared-token warning is for admins");
    await screenshots(page, "access-03-mentor-key");
    // A hand-typed hash to a page the key cannot use falls back to its own logs.
    await page.goto(`${dashBase}/#/keys`);
    await page.waitForFunction(() => location.hash.startsWith("#/logs?userId=alice"));
  } finally {
    await page.close();
  }
});

test("dashboard: an admin creates and revokes keys and a mentor's credential, and is warned about the shared webhook token", async () => {
  const page = await browser.context.newPage();
  page.on("dialog", (d) => d.accept());
  try {
    await signIn(page, API_TOKEN);
    await page.locator("h1", { hasText: "Logs" }).waitFor();
    assert.deepEqual(await navLinks(page), ["Mentors", "Logs", "Directory", "Apps", "Storage", "Keys", "Onboarding", "Audit"]);
    assert.match(await page.locator(".legacy-token").textContent(), /anyone holding it can write as any mentor/);

    await page.locator("header nav").getByRole("link", { name: "Keys" }).click();
    await page.locator("h1", { hasText: "Keys" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill("deploy bot");
    await page.getByLabel("Scopes").fill("apps:write:demo, apps:read");
    await page.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.locator("[data-secret=key]").textContent()).trim();
    assert.match(secret, /^r2d1_[a-z2-7]{8}_[a-z2-7]{52}$/);
    const prefix = secret.slice(5, 13);
    const row = page.locator(`tr[data-prefix="${prefix}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /apps:write:demo/);
    assert.equal((await dash.fetch("/api/apps", { headers: { authorization: `Bearer ${secret}` } })).status, 200);
    await screenshots(page, "access-04-keys");
    await page.getByRole("button", { name: `Revoke key ${prefix}` }).click();
    await page.locator(`tr[data-prefix="${prefix}"][data-status="revoked"]`).waitFor();
    assert.equal((await dash.fetch("/api/apps", { headers: { authorization: `Bearer ${secret}` } })).status, 401);

    await page.locator("header nav").getByRole("link", { name: "Onboarding" }).click();
    await page.locator("h1", { hasText: "Onboarding" }).waitFor();
    await page.getByLabel("Omi uid").fill("carol");
    await page.getByLabel("Mentor (name)").fill("Carol");
    await page.getByRole("button", { name: "Create credential" }).click();
    const memoryUrl = (await page.locator("[data-copy=memory]").textContent()).trim();
    assert.match(memoryUrl, new RegExp(`^${dashBase}/api/omi/memory\\?token=omi_[0-9a-f]{8}_[a-z2-7]{52}$`));
    assert.equal((await page.locator("[data-copy=setup]").textContent()).trim(), `${dashBase}/api/omi/setup`);
    // The printed URL works for carol, as Omi would call it.
    const u = new URL(memoryUrl);
    const res = await dash.fetch(`${u.pathname}${u.search}&uid=carol`, { method: "POST", body: JSON.stringify(makeMemory()) });
    assert.equal(res.status, 200);
    await page.locator("tr[data-credential]").first().waitFor();
    await page.getByLabel("For", { exact: true }).fill("Dora");
    await page.getByRole("button", { name: "Create invite" }).click();
    assert.match(await page.locator("[data-copy=code]").textContent(), /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    await page.locator("tr[data-invite]").first().waitFor();
    await screenshots(page, "access-05-onboarding");

    await page.locator("header nav").getByRole("link", { name: "Audit" }).click();
    await page.locator("table.audit tr[data-outcome]").first().waitFor();
    const audit = await page.locator("table.audit").textContent();
    assert.match(audit, /\/api\/admin\/keys\/\{prefix\}/);
    assert.match(audit, /\/api\/admin\/mentors\/\{uid\}\/credentials/);
    await screenshots(page, "access-06-audit");
  } finally {
    await page.close();
  }
});

test("dashboard: a read-only app key sees the app's versions but no restore button, and no Omi pages", async () => {
  assert.equal((await dash.api("/api/apps/demo/files/index.html", { method: "PUT", body: "<h1>v1</h1>" })).status, 201);
  assert.equal((await dash.api("/api/apps/demo/versions", json("POST", { changelog: "first" }))).status, 201);
  const reader = await createKey(dash, ["apps:read:demo"], { name: "demo reader" });
  const page = await browser.context.newPage();
  try {
    await signIn(page, reader.secret);
    await page.waitForFunction(() => location.hash.startsWith("#/apps"));
    assert.deepEqual(await navLinks(page), ["Apps"]);
    assert.equal(await page.locator(".live-status").textContent(), "No live feed");
    await page.goto(`${dashBase}/#/apps/demo`);
    await page.locator("[data-version='1']").waitFor();
    assert.equal(await page.getByRole("button", { name: "Download .tar.gz" }).count(), 1);
    assert.equal(await page.getByRole("button", { name: /Restore version/ }).count(), 0);
  } finally {
    await page.close();
  }
});
