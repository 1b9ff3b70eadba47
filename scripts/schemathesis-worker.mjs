// The worker schemathesis tests (scripts/schemathesis.sh): the test build (build-test/) in
// Miniflare on 127.0.0.1, started by the integration tests' own helper, with a little data
// seeded through the public API so the routes that read something have something to return
// (the examples in openapi.json name it: mentor-1, memory_abc123, session s1, 2024-01-15,
// app demo with versions 1 and 2).
//
// Schemathesis sends one header, `Authorization: Bearer <token>`, to every operation, so the
// webhook token here is the API token: the webhooks are then reachable through their Bearer
// form, as Omi may call them.
//
// Prints one JSON line `{"url","token"}` on stdout when ready; stops on SIGTERM, SIGINT or
// when stdin closes.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startWorker, API_TOKEN, ROOT } from "../tests/helpers/worker.mjs";
import { makeMemory } from "../tests/helpers/omi.mjs";

const fixture = (name) => readFileSync(join(ROOT, "tests", "fixtures", "omi", name), "utf8");

// The chat tools get a signing secret schemathesis does not know: its calls are then refused as
// unsigned (401), the answer a deployment gives, rather than "not configured" (503).
const w = await startWorker({ bindings: { OMI_WEBHOOK_TOKEN: API_TOKEN, OMI_TOOLS_SECRET: "whsec_schemathesis_does_not_know_this" } });
let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  await w.dispose().catch(() => {});
  process.exit(code);
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

async function expectOk(what, res) {
  if (res.status >= 300) throw new Error(`seeding: ${what} answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
}

try {
  const json = { "content-type": "application/json" };
  const hook = (path, uid, body, query = "") =>
    w.api(`${path}?uid=${uid}${query}`, { method: "POST", headers: json, body: typeof body === "string" ? body : JSON.stringify(body) });

  // Omi: the documented memory, two more, a second version of one, a session, a day summary.
  await expectOk("memory", await hook("/api/omi/memory", "mentor-1", fixture("memory_created.docs.json")));
  for (let i = 0; i < 3; i++) await expectOk("memory", await hook("/api/omi/memory", "mentor-1", makeMemory({ id: `memory-${i}` })));
  await expectOk("memory v2", await hook("/api/omi/memory", "mentor-1", makeMemory({ id: "memory-0", title: "A second version" })));
  await expectOk("memory", await hook("/api/omi/memory", "mentor-2", makeMemory({ id: "memory-9", category: "work" })));
  await expectOk("transcript", await hook("/api/omi/transcript", "mentor-1", fixture("realtime_transcript.docs.json"), "&session_id=s1"));
  await expectOk("day summary", await hook("/api/omi/day-summary", "mentor-1", fixture("day_summary.docs.json")));

  // App files: inline, hybrid and R2-tier files, two versions.
  const put = (path, body) => w.api(`/api/apps/demo/files/${path}`, { method: "PUT", body });
  await expectOk("file", await put("index.html", "<!doctype html><h1>demo</h1>\n"));
  await expectOk("file", await put("src/app.js", "export const x = 1;\n".repeat(200)));
  await expectOk("file", await put("assets/big.txt", "0123456789abcdef\n".repeat(1024)));
  await expectOk("version 1", await w.api("/api/apps/demo/versions", { method: "POST", headers: json, body: JSON.stringify({ changelog: "first" }) }));
  await expectOk("file", await put("index.html", "<!doctype html><h1>demo, again</h1>\n"));
  await expectOk("version 2", await w.api("/api/apps/demo/versions", { method: "POST", headers: json, body: "{}" }));
} catch (e) {
  console.error(e.stack || String(e));
  await stop(1);
}

const url = (await w.mf.ready).toString().replace(/\/$/, "");
process.stdout.write(JSON.stringify({ url, token: API_TOKEN }) + "\n");
process.stdin.on("end", () => stop(0));
process.stdin.resume();
