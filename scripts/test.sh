#!/usr/bin/env bash
# npm test: installs what is missing, runs the host unit tests, builds the worker once (with
# the fault-injection feature, into build-test/), runs the Miniflare integration tests against
# it, then schemathesis from openapi.json (scripts/schemathesis.sh), and ends with one
# "N passed, M failed" line. Exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
passed=0
failed=0
broken=()
started=$(date +%s)

# --- npm packages -----------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error || { echo "npm ci failed"; exit 1; }
fi

# --- a browser for the dashboard tests -------------------------------------------------
# Playwright (playwright-core) drives Debian's chromium; Playwright's own browser downloads do
# not work without internet. The emoji font only makes the screenshots look right.
if [ ! -x /usr/bin/chromium ] && [ -z "${R2D1_CHROMIUM:-}" ]; then
  echo "== installing chromium (apt-get)"
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null ||
    echo "chromium could not be installed: the dashboard tests will fail"
fi

# --- host unit tests (the pure core) ----------------------------------------------------
echo "== cargo test (host)"
cargo test --locked 2>&1 | tee "$logdir/cargo.log"
cargo_status=${PIPESTATUS[0]}
cargo_pass=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$logdir/cargo.log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
cargo_fail=$(grep -Eo '[0-9]+ failed' "$logdir/cargo.log" | awk '{s+=$1} END {print s+0}')
passed=$((passed + cargo_pass))
failed=$((failed + cargo_fail))
if [ "$cargo_status" -ne 0 ] && [ "$cargo_fail" -eq 0 ]; then
  failed=$((failed + 1))
  broken+=("cargo test exited $cargo_status")
fi

# --- formatting and lints (host only; each counts as one check) ----------------------------
echo "== cargo fmt --check, cargo clippy -D warnings"
for check in "cargo fmt --check" "cargo clippy --all-targets --locked --quiet -- -D warnings"; do
  if $check; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    broken+=("$check failed")
  fi
done

# --- the worker, built once ---------------------------------------------------------------
echo "== build (release, fault-injection) into build-test/"
if ! R2D1_FEATURES=fault-injection R2D1_OUT=build-test bash scripts/build.sh; then
  echo "build failed: integration tests cannot run"
  echo "$passed passed, $((failed + 1)) failed"
  exit 1
fi

# --- integration tests in Miniflare -------------------------------------------------------
echo "== integration tests (node --test, Miniflare)"
files=(tests/*.test.mjs)
if [ -n "${R2D1_TEST_FILES:-}" ]; then read -r -a files <<<"$R2D1_TEST_FILES"; fi
node --test --test-timeout=600000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$logdir/node.tap" \
  "${files[@]}"
node_status=$?
node_pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$logdir/node.tap" | tail -n 1)
node_fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$logdir/node.tap" | tail -n 1)
node_pass=${node_pass:-0}
node_fail=${node_fail:-0}
passed=$((passed + node_pass))
failed=$((failed + node_fail))
if [ "$node_status" -ne 0 ] && [ "$node_fail" -eq 0 ]; then
  failed=$((failed + 1))
  broken+=("node --test exited $node_status")
fi

# --- property-based API tests from openapi.json (schemathesis) ------------------------------
# Skipped when R2D1_TEST_FILES picks a subset, unless R2D1_SCHEMATHESIS=1 asks for it.
st_line=""
if [ -z "${R2D1_TEST_FILES:-}" ] || [ "${R2D1_SCHEMATHESIS:-}" = 1 ]; then
  echo "== schemathesis (openapi.json against the worker)"
  bash scripts/schemathesis.sh | tee "$logdir/schemathesis.log"
  st_status=${PIPESTATUS[0]}
  st_pass=$(sed -n 's/^schemathesis: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$logdir/schemathesis.log" | tail -n 1)
  st_fail=$(sed -n 's/^schemathesis: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$logdir/schemathesis.log" | tail -n 1)
  st_pass=${st_pass:-0}
  st_fail=${st_fail:-0}
  passed=$((passed + st_pass))
  failed=$((failed + st_fail))
  if [ "$st_status" -ne 0 ] && [ "$st_fail" -eq 0 ]; then
    failed=$((failed + 1))
    broken+=("schemathesis exited $st_status")
  fi
  st_line="schemathesis:    $st_pass passed, $st_fail failed (one per operation)"
fi

echo
echo "== summary ($(($(date +%s) - started))s)"
echo "host cargo test: $cargo_pass passed, $cargo_fail failed"
echo "integration:     $node_pass passed, $node_fail failed"
[ -n "$st_line" ] && echo "$st_line"
for b in "${broken[@]}"; do echo "also: $b"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
