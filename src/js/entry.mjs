// The worker's entry point: the Rust worker built by worker-build (./index.js), wrapped so that
// a failure that escapes Rust (a panic traps the wasm instance) still answers with the JSON error
// shape every other route uses. worker-build's shim marks the instance for reset on such a trap,
// so the next request runs on a fresh instance: the isolate never stays dead.
import { WorkerEntrypoint } from "cloudflare:workers";
import RustWorker from "./index.js";

export * from "./index.js";

function internalError() {
  return new Response(
    JSON.stringify({ error: { code: "internal_error", message: "internal error" } }),
    { status: 500, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" } },
  );
}

// A panic traps inside a promise job, so the trap never rejects the request's promise: it
// surfaces as a global error event instead. Every request in flight on the trapped instance is
// doomed (its wasm state is gone), so each one waits on a promise that such an event rejects.
const inFlight = new Set();
function onTrap(err) {
  if (!(err instanceof WebAssembly.RuntimeError)) return;
  for (const reject of inFlight) reject(err);
  inFlight.clear();
}
addEventListener("error", (event) => onTrap(event.error));
addEventListener("unhandledrejection", (event) => onTrap(event.reason));

function trapped() {
  let reject;
  const promise = new Promise((_, r) => (reject = r));
  inFlight.add(reject);
  return { promise, done: () => inFlight.delete(reject) };
}

export default class Entry extends WorkerEntrypoint {
  // A fresh proxy-wrapped instance per call lets the shim's reset logic see every trap.
  rust() {
    return new RustWorker(this.ctx, this.env);
  }

  async fetch(request) {
    const trap = trapped();
    try {
      return await Promise.race([this.rust().fetch(request), trap.promise]);
    } catch (err) {
      console.error("r2d1: request failed outside Rust's error handling:", err && err.stack ? err.stack : err);
      return internalError();
    } finally {
      trap.done();
    }
  }

  async scheduled(controller) {
    const rust = this.rust();
    if (typeof rust.scheduled === "function") return rust.scheduled(controller);
  }
}
