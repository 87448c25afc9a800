#!/usr/bin/env bash
# The browser side's checks: installs web/'s packages exactly as web/package-lock.json pins them
# (npm ci), type-checks every workspace and runs its tests. The client library's interop test
# runs the real server, so the server is built first and named in DUET_SERVER_BIN (set it
# yourself to use another binary and skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${DUET_SERVER_BIN:-}" ]]; then
  cargo build -q -p duet-server
  target="${CARGO_TARGET_DIR:-target}"
  [[ "$target" == /* ]] || target="$(pwd)/$target"
  DUET_SERVER_BIN="$target/debug/duet-server"
fi
export DUET_SERVER_BIN
cd web
npm ci --no-audit --no-fund
npm run typecheck --workspaces --if-present
npm test --workspaces
