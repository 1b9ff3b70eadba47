#!/usr/bin/env node
// node bench/bloat.mjs [--wasm=FILE] [--top=40]      (npm run bench:bloat)
//
// What the release wasm carries, twiggy/cargo-bloat style, from the function-name section.
// The shipped build has that section stripped (scripts/strip-wasm-names.mjs), so by default this
// makes an identical release build that keeps it: worker-build with the same toolchain, profile
// and wasm-opt flags into bench/out/build-names/ (cargo's output is reused; wasm-bindgen and
// wasm-opt run again, about a minute). Writes bench/out/bloat.txt and bench/out/bloat.json:
// code bytes by crate and by kind (formatting, panics, serde, hashing, …), the largest
// functions, and generic functions instantiated more than once (monomorphised copies).
// If twiggy is installed (`cargo install twiggy`; or TWIGGY=path), its `top`, `monos` and
// `garbage` listings of the same file go to bench/out/twiggy.txt.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const OUT = join(HERE, "out");
const arg = (k, d) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3) ?? d;
const TOP = Number(arg("top", 40));

function buildWithNames() {
  const dir = join(OUT, "build-names");
  console.error(`bloat: release build keeping the name section into ${dir}`);
  const script = `set -euo pipefail; source scripts/toolchain.sh; r2d1_toolchain; worker-build --release --out-dir "${dir}" >&2`;
  const r = spawnSync("bash", ["-c", script], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error("worker-build failed");
  return join(dir, "index_bg.wasm");
}

// --- wasm parsing ------------------------------------------------------------------------------

function leb(buf, at) {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

function str(buf, at) {
  const [len, p] = leb(buf, at);
  return [buf.subarray(p, p + len).toString("utf8"), p + len];
}

/** Sections, imported function count, defined functions' body sizes, function names. */
export function parseWasm(wasm) {
  const sections = [];
  let importedFunctions = 0;
  const bodies = [];
  const names = new Map();
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, body] = leb(wasm, at + 1);
    const end = body + size;
    let name = ["custom", "type", "import", "function", "table", "memory", "global", "export", "start", "element", "code", "data", "datacount"][id] ?? `#${id}`;
    if (id === 0) {
      const [custom, p] = str(wasm, body);
      name = `custom "${custom}"`;
      if (custom === "name") parseNames(wasm, p, end, names);
    } else if (id === 2) {
      let [count, p] = leb(wasm, body);
      for (let i = 0; i < count; i++) {
        [, p] = str(wasm, p);
        [, p] = str(wasm, p);
        const kind = wasm[p++];
        if (kind === 0) {
          [, p] = leb(wasm, p);
          importedFunctions++;
        } else if (kind === 1) {
          p++;
          const flags = wasm[p++];
          [, p] = leb(wasm, p);
          if (flags & 1) [, p] = leb(wasm, p);
        } else if (kind === 2) {
          const flags = wasm[p++];
          [, p] = leb(wasm, p);
          if (flags & 1) [, p] = leb(wasm, p);
        } else if (kind === 3) p += 2;
        else if (kind === 4) p += 2;
      }
    } else if (id === 10) {
      let [count, p] = leb(wasm, body);
      for (let i = 0; i < count; i++) {
        const [len, q] = leb(wasm, p);
        bodies.push(q + len - p);
        p = q + len;
      }
    }
    sections.push({ id, name, bytes: end - at });
    at = end;
  }
  return { sections, importedFunctions, bodies, names };
}

function parseNames(wasm, at, end, names) {
  while (at < end) {
    const kind = wasm[at];
    const [size, body] = leb(wasm, at + 1);
    if (kind === 1) {
      let [count, p] = leb(wasm, body);
      for (let i = 0; i < count; i++) {
        let index;
        let name;
        [index, p] = leb(wasm, p);
        [name, p] = str(wasm, p);
        names.set(index, name);
      }
    }
    at = body + size;
  }
}

// --- names -------------------------------------------------------------------------------------

const ESCAPES = { $SP$: "@", $BP$: "*", $RF$: "&", $LT$: "<", $GT$: ">", $LP$: "(", $RP$: ")", $C$: "," };

/**
 * A function's Rust path without hashes: Rust's legacy mangling (`_ZN…17h<hash>E`) decoded, and
 * in already-demangled names (what wasm-bindgen leaves) the `::h<hash>` suffix and the
 * `[<hash>]` crate disambiguators dropped, so that every copy of a generic function has the
 * same path. Other names (imports, wasm-bindgen shims) are returned as they are.
 */
export function demangle(name) {
  const m = name.match(/^_?_ZN(.*)E$/);
  if (!m) return name.replace(/::h[0-9a-f]{16}$/, "").replace(/\[[0-9a-f]{16}\]/g, "");
  const parts = [];
  let s = m[1];
  while (s.length) {
    const d = s.match(/^(\d+)/);
    if (!d) break;
    const len = Number(d[1]);
    parts.push(s.slice(d[1].length, d[1].length + len));
    s = s.slice(d[1].length + len);
  }
  if (parts.length && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1])) parts.pop();
  return parts
    .map((p) =>
      p
        .replace(/^_\$/, "$")
        .replace(/\$(SP|BP|RF|LT|GT|LP|RP|C)\$/g, (x) => ESCAPES[x])
        .replace(/\$u([0-9a-f]+)\$/g, (_, h) => String.fromCodePoint(parseInt(h, 16)))
        .replace(/\.\./g, "::"),
    )
    .join("::");
}

const PRIMITIVE = /^(bool|char|str|[iuf](8|16|32|64|128|size)|T|U|E|F|R|S|K|V|W|I|A|B)$/;

/**
 * The crate a function belongs to: the first path segment; for `<Type as Trait>::f`, the type's
 * crate, or the trait's when the type is a primitive or a generic parameter (`<f64 as
 * core::fmt::Display>` is formatting code from core).
 */
export function crateOf(path) {
  const strip = (x) => x.replace(/^([<&*\s\[(]|mut |dyn |const )+/, "");
  const first = (x) => strip(x).match(/^[A-Za-z_][A-Za-z0-9_]*/)?.[0] ?? null;
  const impl = path.match(/^<(.+?) as ([A-Za-z_][A-Za-z0-9_:]*)/);
  if (impl) {
    const own = first(impl[1]);
    if (own && !PRIMITIVE.test(own)) return own;
    return first(impl[2]) ?? "(unnamed)";
  }
  return first(path) ?? "(unnamed)";
}

// Kinds that cut across crates, by path; then kinds by crate.
const PATH_KINDS = [
  ["panics", /core::panicking|std::panicking|panic_fmt|panic_bounds_check|unwrap_failed|expect_failed|begin_panic|rust_panic|panic_nounwind|console_error_panic_hook|slice_(start|end)_index_len_fail|slice_index_order_fail|option::unwrap|result::unwrap/],
  ["formatting (core::fmt, Display/Debug, float printing)", /core::fmt|alloc::fmt|as core::fmt::[A-Za-z]+>|fmt::write|Formatter|format_inner|::to_string$|^zmij::/],
  ["JS glue (wasm_bindgen, js_sys, web_sys, worker)", /__wbg|__wbindgen|__externref|externref shim|multivalue shim/],
  ["sorting (core::slice::sort)", /core::slice::sort/],
  ["allocator and collections (alloc, hashbrown, dlmalloc)", /__rust_(alloc|dealloc|realloc)|__rdl_|^memcpy|^memmove|^memset|^memcmp/],
];
const CRATE_KINDS = [
  ["r2d1 (own code)", ["r2d1"]],
  ["serde_json / serde", ["serde", "serde_core", "serde_json", "serde_derive"]],
  ["JS glue (wasm_bindgen, js_sys, web_sys, worker)", ["wasm_bindgen", "js_sys", "web_sys", "worker", "worker_sys", "wasm_bindgen_futures", "serde_wasm_bindgen"]],
  ["URL parsing (url, idna, icu): pulled in by worker", ["url", "idna", "icu_normalizer", "icu_collections", "icu_properties", "icu_provider", "percent_encoding", "form_urlencoded", "utf8_iter", "zerovec", "writeable", "tinystr", "smallvec"]],
  ["hashing (sha2, hmac, subtle)", ["sha2", "hmac", "digest", "block_buffer", "subtle", "crypto_common", "generic_array"]],
  ["compression (flate2, miniz_oxide)", ["flate2", "miniz_oxide", "crc32fast", "adler", "adler2"]],
  ["archives (tar)", ["tar"]],
  ["diff (similar)", ["similar"]],
  ["csv", ["csv", "csv_core"]],
  ["dates (chrono)", ["chrono"]],
  ["base64, hex", ["base64", "hex"]],
  ["async (futures)", ["futures", "futures_util", "futures_core", "futures_channel", "pin_project_lite"]],
  ["allocator and collections (alloc, hashbrown, dlmalloc)", ["alloc", "hashbrown", "dlmalloc"]],
  ["core / std, other", ["core", "std"]],
];

function kindOf(path, crate) {
  for (const [kind, re] of PATH_KINDS) if (re.test(path)) return kind;
  for (const [kind, crates] of CRATE_KINDS) if (crates.includes(crate)) return kind;
  return "other";
}

// --- report -----------------------------------------------------------------------------------

function pct(x, total) {
  return `${((x / total) * 100).toFixed(1)} %`;
}

function analyse(wasm) {
  const { sections, importedFunctions, bodies, names } = parseWasm(wasm);
  const code = bodies.reduce((a, b) => a + b, 0);
  const fns = bodies.map((bytes, i) => {
    const raw = names.get(importedFunctions + i) ?? null;
    const path = raw ? demangle(raw) : `(function ${importedFunctions + i})`;
    const crate = raw ? crateOf(path) : "(unnamed)";
    return { bytes, raw, path, crate, kind: raw ? kindOf(path, crate) : "other" };
  });
  const sum = (key) => {
    const m = new Map();
    for (const f of fns) {
      const e = m.get(f[key]) ?? { bytes: 0, functions: 0 };
      e.bytes += f.bytes;
      e.functions += 1;
      m.set(f[key], e);
    }
    return [...m.entries()].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.bytes - a.bytes);
  };
  // Generic functions instantiated more than once: the same path (hash dropped) several times.
  const families = new Map();
  for (const f of fns.filter((f) => f.raw)) {
    const e = families.get(f.path) || { path: f.path, copies: 0, bytes: 0, largest: 0 };
    e.copies++;
    e.bytes += f.bytes;
    e.largest = Math.max(e.largest, f.bytes);
    families.set(f.path, e);
  }
  const duplicated = [...families.values()].filter((e) => e.copies > 1).sort((a, b) => b.bytes - a.bytes);
  return {
    wasmBytes: wasm.length,
    gzipBytes: gzipSync(wasm, { level: 9 }).length,
    sections: sections.sort((a, b) => b.bytes - a.bytes),
    functions: fns.length,
    named: fns.filter((f) => f.raw).length,
    codeBytes: code,
    byKind: sum("kind"),
    byCrate: sum("crate"),
    top: [...fns].sort((a, b) => b.bytes - a.bytes).slice(0, TOP).map(({ bytes, path, crate, kind }) => ({ bytes, path, crate, kind })),
    duplicated: {
      families: duplicated.length,
      copies: duplicated.reduce((a, e) => a + e.copies, 0),
      bytes: duplicated.reduce((a, e) => a + e.bytes, 0),
      // What the copies beyond the largest one of each function cost (twiggy's "bloat").
      excessBytes: duplicated.reduce((a, e) => a + e.bytes - e.largest, 0),
      top: duplicated.slice(0, 25),
    },
  };
}

function text(a, source) {
  const L = [];
  const code = a.codeBytes;
  L.push(`r2d1 wasm: ${source}`);
  L.push(`${(a.wasmBytes / 1024).toFixed(0)} KiB with names (${(a.gzipBytes / 1024).toFixed(0)} KiB gzipped); ${a.functions} functions (${a.named} named), code ${(code / 1024).toFixed(0)} KiB`);
  L.push("", "sections:");
  for (const s of a.sections) L.push(`  ${String(s.bytes).padStart(9)}  ${pct(s.bytes, a.wasmBytes).padStart(7)}  ${s.name}`);
  L.push("", "code by kind:");
  for (const k of a.byKind) L.push(`  ${String(k.bytes).padStart(9)}  ${pct(k.bytes, code).padStart(7)}  ${String(k.functions).padStart(5)} fns  ${k.name}`);
  L.push("", "code by crate:");
  for (const k of a.byCrate.slice(0, 30)) L.push(`  ${String(k.bytes).padStart(9)}  ${pct(k.bytes, code).padStart(7)}  ${String(k.functions).padStart(5)} fns  ${k.name}`);
  L.push("", `largest ${a.top.length} functions:`);
  for (const f of a.top) L.push(`  ${String(f.bytes).padStart(9)}  ${pct(f.bytes, code).padStart(7)}  ${f.path}`);
  L.push(
    "",
    `generic functions with more than one copy: ${a.duplicated.families} functions, ${a.duplicated.copies} copies, ${(a.duplicated.bytes / 1024).toFixed(0)} KiB (${pct(a.duplicated.bytes, code)} of code), of which ${(a.duplicated.excessBytes / 1024).toFixed(0)} KiB beyond each function's largest copy; largest:`,
  );
  for (const e of a.duplicated.top) L.push(`  ${String(e.bytes).padStart(9)}  ×${String(e.copies).padEnd(3)} ${e.path}`);
  return L.join("\n") + "\n";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = arg("wasm", null) ?? buildWithNames();
  const a = analyse(readFileSync(file));
  if (!a.named) throw new Error(`${file} has no function names (a stripped build?)`);
  mkdirSync(OUT, { recursive: true });
  const t = text(a, file);
  writeFileSync(join(OUT, "bloat.txt"), t);
  writeFileSync(join(OUT, "bloat.json"), JSON.stringify({ source: file, ...a }, null, 2) + "\n");
  process.stdout.write(t);
  console.error(`wrote ${join(OUT, "bloat.txt")} and bloat.json`);
  const twiggy = process.env.TWIGGY || "twiggy";
  const parts = [];
  for (const args of [["top", "-n", "40"], ["monos", "-m", "20", "-n", "10"], ["garbage", "-n", "20"]]) {
    const r = spawnSync(twiggy, [...args, file], { encoding: "utf8" });
    if (r.error || r.status !== 0) {
      console.error(`bloat: twiggy not run (${r.error ? "not installed: cargo install twiggy" : r.stderr.trim()})`);
      break;
    }
    parts.push(`$ twiggy ${args.join(" ")} index_bg.wasm\n${r.stdout}`);
  }
  if (parts.length) {
    writeFileSync(join(OUT, "twiggy.txt"), parts.join("\n"));
    console.error(`wrote ${join(OUT, "twiggy.txt")}`);
  }
}
