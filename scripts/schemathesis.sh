#!/usr/bin/env bash
# Property-based API tests generated from openapi.json by schemathesis (PyPI), against the test
# build (build-test/, made by scripts/test.sh) in Miniflare on 127.0.0.1 with a little seeded
# data (scripts/schemathesis-worker.mjs). Every operation is exercised, admin and file routes
# included, with these checks: no 5xx (not_a_server_error), statuses, content types, headers
# and bodies as documented. Bounded: at most ST_MAX_EXAMPLES cases per operation and
# ST_MAX_TIME seconds of testing (a request may take up to 60 s: a 1,000-record import on a
# loaded machine). Ends with one line "schemathesis: N passed, M failed" (one
# per operation) that scripts/test.sh adds to its summary; exits non-zero on any failure.
#
# Schemathesis is installed once into a venv beside the other tools
# (${XDG_CACHE_HOME:-~/.cache}/r2d1-toolchain/schemathesis-<version>); only PyPI is needed.
# The full report (JUnit XML, worker log) goes to test-results/schemathesis/.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-25}
MAX_TIME=${ST_MAX_TIME:-90}
SEED=${ST_SEED:-1515}
CHECKS=${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}

venv="${XDG_CACHE_HOME:-$HOME/.cache}/r2d1-toolchain/schemathesis-$VERSION"
out=test-results/schemathesis
mkdir -p "$out"

summary() {
  echo "schemathesis: $1 passed, $2 failed"
}

if [ ! -x "$venv/bin/st" ]; then
  echo "schemathesis: installing $VERSION into $venv (PyPI)"
  rm -rf "$venv"
  # Debian's own python3 needs python3-venv for `-m venv`; the machine's CPython has it.
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get install -y -qq python3-venv >/dev/null 2>&1 || true
  fi
  if ! { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } || ! "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"; then
    echo "schemathesis could not be installed"
    rm -rf "$venv"
    summary 0 1
    exit 1
  fi
fi

if [ ! -f build-test/entry.mjs ]; then
  echo "schemathesis: build-test/ is missing (scripts/test.sh builds it)"
  summary 0 1
  exit 1
fi

# The worker, stopped whatever happens below. Its stdin is a pipe we hold open: when this
# script dies the pipe closes and the worker stops by itself too.
coproc WORKER { exec node scripts/schemathesis-worker.mjs 2>"$out/worker.log"; }
worker_pid=$WORKER_PID
stop_worker() {
  if [ -n "${worker_pid:-}" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null
    wait "$worker_pid" 2>/dev/null
  fi
  worker_pid=
}
trap stop_worker EXIT

ready=
if read -r -t 120 ready <&"${WORKER[0]}"; then :; fi
if [ -z "$ready" ]; then
  echo "schemathesis: the worker did not start; see $out/worker.log"
  tail -n 20 "$out/worker.log"
  summary 0 1
  exit 1
fi
url=$(node -e 'console.log(JSON.parse(process.argv[1]).url)' "$ready")
token=$(node -e 'console.log(JSON.parse(process.argv[1]).token)' "$ready")
echo "schemathesis: $VERSION against $url (at most $MAX_EXAMPLES cases per operation, ${MAX_TIME}s)"

started=$(date +%s)
rm -f "$out/junit.xml"
# `timeout` is the backstop: --max-time bounds the generated phases, not a hung request.
# One worker: hypothesis's lambda introspection is not thread-safe (schemathesis 4.32.5 reported
# "AST constructor recursion depth mismatch" errors with two).
SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py \
  timeout --kill-after=10 $((MAX_TIME + 60)) "$venv/bin/st" run openapi.json \
  --url "$url" \
  --header "Authorization: Bearer $token" \
  --checks "$CHECKS" \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_TIME" \
  --request-timeout 60 \
  --workers 1 \
  --seed "$SEED" \
  --suppress-health-check all \
  --output-truncate true \
  --report junit --report-junit-path "$out/junit.xml" \
  >"$out/output.txt" 2>&1
st_status=$?
elapsed=$(($(date +%s) - started))
stop_worker

# One test case per operation in the JUnit report.
counts=$("$venv/bin/python" - "$out/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0"); sys.exit()
passed = failed = 0
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
    elif case.find("skipped") is None:
        passed += 1
print(passed, failed)
EOF
)
read -r passed failed <<<"$counts"
# Operations the time budget did not reach (a loaded machine): named, not counted as failures.
documented=$(node -e 'const d=require("./openapi.json");let n=0;for(const i of Object.values(d.paths))for(const m of ["get","head","post","put","patch","delete"])if(i[m])n++;console.log(n)')
if [ $((passed + failed)) -lt "$documented" ]; then
  echo "schemathesis: warning: $((documented - passed - failed)) of $documented operations not reached within ${MAX_TIME}s (a loaded machine?)"
fi

# What failed, from schemathesis's own output (the reproducing curl commands are in it).
sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p' "$out/output.txt" | grep -v '^=* WARNINGS =*$' | head -n 200
grep -E '^=+ .* in [0-9.]+s =+$' "$out/output.txt" | tail -n 1
echo "schemathesis: finished in ${elapsed}s (exit $st_status); full output in $out/output.txt"
if [ "$failed" -eq 0 ] && [ "$st_status" -ne 0 ]; then
  failed=1
  echo "schemathesis: exited $st_status with no failing operation in its report"
fi
summary "$passed" "$failed"
[ "$failed" -eq 0 ]
