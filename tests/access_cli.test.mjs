// scripts/keys.mjs as a separate process against a listening worker: keys (create, list, revoke),
// invite codes and a mentor's webhook credential, and its refusals.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import { startWorker, ROOT, API_TOKEN, sha256 } from "./helpers/worker.mjs";
import { makeMemory } from "./helpers/omi.mjs";

let w;
let url;
before(async () => {
  w = await startWorker();
  url = new URL(await w.mf.ready).origin;
});
after(() => w?.dispose());

const cli = (args, token = API_TOKEN) =>
  promisify(execFile)("node", [join(ROOT, "scripts", "keys.mjs"), ...args], { env: { ...process.env, R2D1: url, API_TOKEN: token } });

test("keys: create prints the secret once, list shows prefixes only, revoke takes effect at once", async () => {
  const { stdout } = await cli(["create", "--name", "analyst", "--scope", "omi:export", "--scope", "apps:read:demo", "--expires-days", "30"]);
  const created = JSON.parse(stdout);
  assert.match(created.secret, /^r2d1_[a-z2-7]{8}_[a-z2-7]{52}$/);
  assert.deepEqual(created.scopes, ["omi:export", "apps:read:demo"]);
  assert.equal((await w.db.prepare("SELECT hash FROM api_keys WHERE prefix = ?").bind(created.prefix).first()).hash, sha256(created.secret));
  const quiet = (await cli(["create", "--name", "bot", "--scope", "apps:write:demo", "--quiet"])).stdout.trim();
  assert.match(quiet, /^r2d1_[a-z2-7]{8}_[a-z2-7]{52}$/);

  const list = JSON.parse((await cli(["list"])).stdout);
  assert.deepEqual(list.map((k) => k.name).sort(), ["analyst", "bot"]);
  assert.ok(!JSON.stringify(list).includes(created.secret.slice(14)));

  const use = () => fetch(`${url}/api/omi/users`, { headers: { authorization: `Bearer ${created.secret}` } });
  assert.equal((await use()).status, 200);
  const revoked = JSON.parse((await cli(["revoke", created.prefix])).stdout);
  assert.equal(revoked.status, "revoked");
  assert.equal((await use()).status, 401);

  // The CLI runs with an admin key as well as with API_TOKEN, and refuses what the API refuses.
  const admin = (await cli(["create", "--name", "admin", "--scope", "admin", "--quiet"])).stdout.trim();
  assert.equal(JSON.parse((await cli(["list"], admin)).stdout).length, 3);
  await assert.rejects(cli(["create", "--name", "x", "--scope", "omi:fly"]), (e) => /400 invalid_field: scopes/.test(e.stderr));
  await assert.rejects(cli(["list"], quiet), (e) => /403 forbidden/.test(e.stderr) && e.code === 1);
  await assert.rejects(cli(["list"], "wrong"), (e) => /401/.test(e.stderr));
  await assert.rejects(cli(["nonsense"]), (e) => /usage:/.test(e.stderr));
});

test("invites and mentor credentials from the command line", async () => {
  const invite = JSON.parse((await cli(["invite", "create", "--label", "Ana", "--uses", "2", "--expires-days", "7"])).stdout);
  assert.match(invite.code, /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  assert.equal(invite.invite.maxUses, 2);
  const [listed] = JSON.parse((await cli(["invite", "list"])).stdout);
  assert.equal(listed.status, "active");
  assert.equal(JSON.parse((await cli(["invite", "revoke", String(listed.id)])).stdout).status, "revoked");

  const cred = JSON.parse((await cli(["credential", "create", "mentor-7", "--label", "Mentor Seven"])).stdout);
  assert.match(cred.urls.memory, new RegExp(`^${url}/api/omi/memory\\?token=omi_`));
  const res = await fetch(`${cred.urls.memory}&uid=mentor-7`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(makeMemory()) });
  assert.equal(res.status, 200);
  const creds = JSON.parse((await cli(["credential", "list", "mentor-7"])).stdout);
  assert.equal(creds.length, 1);
  assert.equal(JSON.parse((await cli(["credential", "revoke", "mentor-7", String(creds[0].id)])).stdout).status, "revoked");
  const secret = (await cli(["credential", "create", "mentor-7", "--kind", "signingSecret", "--quiet"])).stdout.trim();
  assert.match(secret, /^whsec_/);
});
