#!/usr/bin/env bash
# The browser side's checks: installs web/'s packages exactly as web/package-lock.json pins them
# (npm ci), type-checks every workspace and runs its unit tests, then the browser tests: the
# built app in Debian's Chromium (/usr/bin/chromium, or CHROMIUM_PATH) against a real server.
# The server is built first and named in DUET_SERVER_BIN (set it yourself to use another
# binary, a release build say, and skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DUET_SERVER_BIN:-}" ]]; then
  cargo build -q -p duet-server
  target="${CARGO_TARGET_DIR:-target}"
  [[ "$target" == /* ]] || target="$(pwd)/$target"
  DUET_SERVER_BIN="$target/debug/duet-server"
fi
export DUET_SERVER_BIN
# Playwright drives the system's Chromium; it must never try to download one.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "web-test: $chromium is missing (apt-get install chromium)" >&2
    exit 1
  fi
  echo "web-test: $chromium is missing; install Debian's chromium package to run the browser tests" >&2
  exit 1
fi
cd web
npm ci --no-audit --no-fund
npm run typecheck --workspaces --if-present
npm test --workspaces --if-present
npm run test:browser --workspace e2e
