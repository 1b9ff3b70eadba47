#!/usr/bin/env node
// Manages r2d1's access: API keys, invite codes and mentors' webhook credentials, through the
// admin API (Node 20+, no dependencies). Needs a credential with the `admin` scope.
//
//   R2D1=https://r2d1.example.workers.dev API_TOKEN=... node scripts/keys.mjs <command> [options]
//
//   create --name NAME --scope SCOPE [--scope SCOPE…] [--expires-days N]   a key; prints its secret once
//   list                                                                 every key: prefix, name, scopes, status
//   revoke PREFIX                                                        refused from the next request on
//   invite create --label WHO [--uses N] [--expires-days N]             an invite code for the Omi app; printed once
//   invite list | invite revoke ID
//   credential create UID [--kind token|signingSecret] [--secret whsec_…] [--label NAME]
//                                                                        a mentor's webhook credential and the URLs for Omi
//   credential list UID | credential revoke UID ID
//
// Scopes: admin, omi:read[:uid], omi:export[:uid], omi:write, apps:read[:app], apps:write[:app],
// storage:admin. Output is JSON on stdout (secrets included where the API shows them once);
// `--quiet` prints only the secret, code or token, for scripts. Errors go to stderr, exit 1.

const USAGE = `usage: node scripts/keys.mjs create --name NAME --scope SCOPE… [--expires-days N] | list | revoke PREFIX
       node scripts/keys.mjs invite create --label WHO [--uses N] [--expires-days N] | invite list | invite revoke ID
       node scripts/keys.mjs credential create UID [--kind token|signingSecret] [--secret whsec_…] [--label NAME]
       node scripts/keys.mjs credential list UID | credential revoke UID ID
environment: R2D1 (the worker's URL), API_TOKEN (or an admin API key)`;

function parseArgs(argv) {
  const opts = { _: [], scope: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quiet") opts.quiet = true;
    else if (a.startsWith("--")) {
      const [k, inline] = a.slice(2).split("=", 2);
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      if (k === "scope") opts.scope.push(...v.split(/[\s,]+/).filter(Boolean));
      else opts[k] = v;
    } else opts._.push(a);
  }
  return opts;
}

const base = (process.env.R2D1 || "").replace(/\/$/, "");
const token = process.env.API_TOKEN || "";

async function call(method, path, body) {
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new Error(`${method} ${path}: ${e.message}`);
  }
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const why = parsed && parsed.error ? `${parsed.error.code}: ${parsed.error.message}` : text.slice(0, 200);
    throw new Error(`${method} ${path} -> ${res.status} ${why}`);
  }
  return parsed;
}

const number = (v, name) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be a whole number`);
  return n;
};
const seg = encodeURIComponent;

async function run(opts) {
  const [cmd, sub, a1, a2] = opts._;
  switch (cmd) {
    case "create": {
      if (!opts.name || !opts.scope.length) throw new Error("create needs --name and at least one --scope");
      const r = await call("POST", "/api/admin/keys", { name: opts.name, scopes: opts.scope, expiresInDays: number(opts["expires-days"], "expires-days") });
      return opts.quiet ? r.secret : { prefix: r.key.prefix, name: r.key.name, scopes: r.key.scopes, expiresAt: r.key.expiresAt, secret: r.secret, note: r.note };
    }
    case "list":
      return (await call("GET", "/api/admin/keys")).keys;
    case "revoke":
      if (!sub) throw new Error("revoke needs a key prefix");
      return (await call("DELETE", `/api/admin/keys/${seg(sub)}`)).key;
    case "invite":
      if (sub === "create") {
        if (!opts.label) throw new Error("invite create needs --label");
        const r = await call("POST", "/api/admin/invites", { label: opts.label, maxUses: number(opts.uses, "uses"), expiresInDays: number(opts["expires-days"], "expires-days") });
        return opts.quiet ? r.code : { code: r.code, invite: r.invite, enrollUrl: r.enrollUrl, note: r.note };
      }
      if (sub === "list") return (await call("GET", "/api/admin/invites")).invites;
      if (sub === "revoke" && a1) return (await call("DELETE", `/api/admin/invites/${seg(a1)}`)).invite;
      throw new Error("invite create|list|revoke ID");
    case "credential":
      if (sub === "create" && a1) {
        const body = { kind: opts.kind || "token", ...(opts.secret ? { secret: opts.secret } : {}), ...(opts.label ? { label: opts.label } : {}) };
        const r = await call("POST", `/api/admin/mentors/${seg(a1)}/credentials`, body);
        return opts.quiet ? r.token || r.secret : r;
      }
      if (sub === "list" && a1) return (await call("GET", `/api/admin/mentors/${seg(a1)}/credentials`)).credentials;
      if (sub === "revoke" && a1 && a2) return (await call("DELETE", `/api/admin/mentors/${seg(a1)}/credentials/${seg(a2)}`)).credential;
      throw new Error("credential create UID | list UID | revoke UID ID");
    default:
      throw new Error(USAGE);
  }
}

try {
  if (!base) throw new Error(`set R2D1 to the worker's URL\n${USAGE}`);
  if (!token) throw new Error(`set API_TOKEN (or an admin API key)\n${USAGE}`);
  const out = await run(parseArgs(process.argv.slice(2)));
  process.stdout.write(typeof out === "string" ? `${out}\n` : `${JSON.stringify(out, null, 2)}\n`);
} catch (e) {
  process.stderr.write(`keys: ${e.message}\n`);
  process.exit(1);
}
