// Small helpers shared by the migration CLIs: argument parsing, a progress bar on stderr,
// and HTTP calls with retries for the r2d1 API.

/** Parses `--name value` and `--flag` arguments; the rest are positional. */
export function parseArgs(argv, { flags = [] } = {}) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out._.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split("=", 2);
    if (inline !== undefined) out[name] = inline;
    else if (flags.includes(name)) out[name] = true;
    else out[name] = argv[++i];
  }
  return out;
}

/** A one-line progress bar, redrawn in place when stderr is a terminal. */
export function progressBar(total, label = "") {
  const tty = process.stderr.isTTY;
  let last = 0;
  return {
    update(done, extra = "") {
      const now = Date.now();
      if (tty && done < total && now - last < 100) return;
      last = now;
      const width = 30;
      const filled = total ? Math.round((done / total) * width) : width;
      const pct = total ? Math.floor((done / total) * 100) : 100;
      const line = `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total} ${pct}% ${extra}`;
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (done === total || done % Math.max(1, Math.floor(total / 10)) === 0) process.stderr.write(line + "\n");
    },
    done() {
      if (tty) process.stderr.write("\n");
    },
  };
}

/** Calls the API with the Bearer token, retrying 429/5xx and network errors with backoff. */
export async function callApi(base, token, path, init = {}, { retries = 5 } = {}) {
  let delay = 500;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(new URL(path, base), {
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.headers || {}) },
      });
      if (res.status !== 429 && res.status < 500) {
        const text = await res.text();
        const body = text ? JSON.parse(text) : {};
        if (!res.ok) throw Object.assign(new Error(`${res.status} ${body?.error?.message ?? text}`), { fatal: true });
        return body;
      }
      if (attempt >= retries) throw new Error(`${res.status} after ${retries} retries: ${await res.text()}`);
      const after = Number(res.headers.get("retry-after"));
      if (after > 0) delay = after * 1000;
    } catch (err) {
      if (err.fatal || attempt >= retries) throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

export function requireToken(args) {
  const token = args.token || process.env.API_TOKEN;
  if (!token) {
    console.error("error: give the API token with --token or the API_TOKEN environment variable");
    process.exit(2);
  }
  return token;
}
