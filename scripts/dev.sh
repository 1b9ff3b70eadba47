#!/usr/bin/env bash
# npm run dev: builds the worker (release unless R2D1_PROFILE=dev), applies the D1 migrations
# to the local database and serves the worker with `wrangler dev` on 127.0.0.1:${PORT:-8787},
# with local R2 and D1 kept under .wrangler/state (so data survives a restart).
# On first run it writes .dev.vars with random API_TOKEN and OMI_WEBHOOK_TOKEN.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${PORT:-8787}
inspector_port=${INSPECTOR_PORT:-$((port + 1000))}
# Wrangler must not reach out to the internet: no metrics, banners, error reports or cf fetches.
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true WRANGLER_SEND_ERROR_REPORTS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f .dev.vars ]; then
  node -e '
    const { randomBytes } = require("node:crypto");
    const t = () => randomBytes(24).toString("base64url");
    require("node:fs").writeFileSync(".dev.vars",
      `# Local secrets for wrangler dev (git-ignored). Production: wrangler secret put NAME\nAPI_TOKEN=${t()}\nOMI_WEBHOOK_TOKEN=${t()}\n`,
      { mode: 0o600 });'
  echo "dev: wrote .dev.vars with fresh random tokens"
fi

bash scripts/build.sh

echo "dev: applying D1 migrations to the local database"
CI=true npx wrangler d1 migrations apply DB --local >/dev/null

token() { sed -n "s/^$1=//p" .dev.vars | tail -n 1; }
cat <<MSG

  r2d1 is starting at http://127.0.0.1:$port
  API_TOKEN=$(token API_TOKEN)
  OMI_WEBHOOK_TOKEN=$(token OMI_WEBHOOK_TOKEN)
  Omi webhook URL: http://127.0.0.1:$port/api/omi/memory?token=$(token OMI_WEBHOOK_TOKEN)
  Try: curl -s http://127.0.0.1:$port/api/health

MSG
exec npx wrangler dev --ip 127.0.0.1 --port "$port" --inspector-port "$inspector_port" --show-interactive-dev-session=false
