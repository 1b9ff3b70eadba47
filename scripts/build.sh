#!/usr/bin/env bash
# Builds the worker with worker-build into build/ (what wrangler.toml's `main` points at).
#
#   R2D1_PROFILE=release|dev   (default release)
#   R2D1_FEATURES=...          cargo features; tests use `fault-injection`
#   R2D1_OUT=dir               output directory (default build)
#
# Skips the build when the output is newer than every input and was made with the same
# settings: `wrangler dev` runs its build command twice at start-up, and `npm test` must not
# rebuild what has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${R2D1_PROFILE:-release}
features=${R2D1_FEATURES:-}
out=${R2D1_OUT:-build}
stamp="$out/.r2d1-build"
want="profile=$profile features=$features"

# The dashboard (web/) bundled by esbuild into $out/web, which Workers static assets serve
# (wrangler.toml [assets]). Everything is bundled here: the page loads nothing from a CDN.
# Takes well under a second; skipped when $out/web is newer than every web input.
build_web() {
  local web="$out/web" webstamp="$out/.r2d1-web"
  if [ -f "$webstamp" ] && [ -d "$web" ] && [ -z "$(find web scripts/build.sh openapi.json -newer "$webstamp" -print -quit)" ]; then
    return 0
  fi
  rm -rf "$web"
  mkdir -p "$web"
  node_modules/.bin/esbuild web/app.js web/style.css web/reference.js --bundle --minify --format=esm --target=es2020 \
    --outdir="$web" --log-level=warning >&2
  cp web/index.html "$web/index.html"
  cp web/_headers "$web/_headers" # the dashboard's security headers (Workers static assets)
  # The API reference (reference.html) renders the contract; until the worker serves it at
  # /api/openapi.json the page reads this copy.
  cp web/reference.html "$web/reference.html"
  cp openapi.json "$web/openapi.json"
  touch "$webstamp"
  local gz
  gz=$(cat "$web/index.html" "$web/app.js" "$web/style.css" | gzip -9 | wc -c)
  echo "build: dashboard bundled into $web ($((gz / 1024)) KiB gzipped)" >&2
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$out/entry.mjs" ] &&
  [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh scripts/strip-wasm-names.mjs -newer "$stamp" -print -quit)" ]; then
  echo "build: $out/ is up to date ($want)" >&2
  build_web
  exit 0
fi

if [ ! -d node_modules/binaryen ] || [ ! -d node_modules/wrangler ]; then
  echo "build: installing npm packages" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
fi

# shellcheck source=scripts/toolchain.sh
source scripts/toolchain.sh
r2d1_toolchain

args=(--out-dir "$out")
[ "$profile" = dev ] && args+=(--dev) || args+=(--release)
[ -n "$features" ] && args+=(--features "$features")

echo "build: worker-build ${args[*]}" >&2
started=$(date +%s)
worker-build "${args[@]}" >&2
[ "$profile" = release ] && node scripts/strip-wasm-names.mjs "$out/index_bg.wasm"
cp src/js/entry.mjs "$out/entry.mjs"
build_web
echo "$want" >"$stamp"

wasm="$out/index_bg.wasm"
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "build: done in $(($(date +%s) - started))s; wasm $((raw / 1024)) KiB raw, $((gz / 1024)) KiB gzipped" >&2
