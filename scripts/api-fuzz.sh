#!/usr/bin/env bash
# `make api-fuzz`: throws generated requests at every HTTP operation of a freshly started
# server, as its own OpenAPI document (/openapi.json) describes them, with schemathesis, and
# fails on any 5xx, and on any status, content type, body or header the document does not
# describe. The server runs on SQLite in a temporary directory with authentication on, and
# schemathesis sends an owner's token for every room.
#
# API_FUZZ_EXAMPLES sets the examples per operation (default 100). schemathesis is installed
# from PyPI into a virtualenv under the target directory, once. Without Python or PyPI the run
# says so loudly and does not happen, unless CI=true, where that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
examples=${API_FUZZ_EXAMPLES:-100}

unavailable() {
  echo "api-fuzz: NOT RUN: $1" >&2
  if [ "${CI:-}" = true ]; then
    exit 1
  fi
  exit 0
}

# Python with venv: as root on Debian (as CI is), installed when missing.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "api-fuzz: installing python3-venv"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
  unavailable "python3 is needed"
venv="$target_dir/api-fuzz/venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "api-fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || unavailable "python3 cannot make a virtualenv (Debian: python3-venv)"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    unavailable "schemathesis $SCHEMATHESIS_VERSION could not be installed from PyPI"
fi

cargo build -q -p duet-server
server="$target_dir/debug/duet-server"

work=$(mktemp -d)
server_pid=
fuzz_pid=
stop() {
  if [ -n "$fuzz_pid" ]; then
    kill "$fuzz_pid" 2>/dev/null || true
    wait "$fuzz_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

# A fresh secret each run: the tokens minted here are worth nothing afterwards.
DUET_AUTH_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
export DUET_AUTH_SECRET
# Every request comes from 127.0.0.1: at the default quota most room creations would be
# answered 429 (documented, so it would pass) and the create path would go untested.
DATABASE_URL="sqlite://$work/duet.db?mode=rwc" DUET_BIND=127.0.0.1:0 RUST_LOG=info \
  DUET_ROOMS_PER_MINUTE=1000000 DUET_MAX_CONNECTIONS_PER_IP=10000 \
  "$server" 2> "$work/server.log" &
server_pid=$!

address=
for _ in $(seq 1 300); do
  address=$(grep -o 'duet-server listening address=[0-9.:]*' "$work/server.log" | head -n 1 | cut -d= -f2 || true)
  [ -n "$address" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$address" ]; then
  echo "api-fuzz: the server did not start:" >&2
  tail -n 20 "$work/server.log" >&2
  exit 1
fi
base="http://$address"

token=$("$server" token --sub ci --room '*' --role owner)
# A room for the operations that take one: the dictionary below offers its id half the time
# (links from POST /rooms give the stateful phase rooms of its own).
room=$(curl -fsS -X POST "$base/rooms" -H "authorization: Bearer $token" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["roomId"])')
curl -fsS -o /dev/null "$base/rooms/$room" -H "authorization: Bearer $token"

cat > "$work/schemathesis.toml" <<EOF
[dictionaries.rooms]
values = ["$room"]

[parameters]
"path.roomId" = { dictionary = "rooms", probability = 0.5 }

# schemathesis cannot open a WebSocket: this operation is tested for its refusals before the
# upgrade (400, 401, 404, 426), which its warnings would report as "mostly rejected".
[[operations]]
include-path = "/ws/{roomId}"
warnings = false
EOF

color=()
if [ "${CI:-}" = true ]; then
  color=(--no-color)
fi
# Read from a copy: given the document's own address, schemathesis leaves out the operation
# that serves it.
curl -fsS -o "$work/openapi.json" "$base/openapi.json"
echo "api-fuzz: schemathesis $SCHEMATHESIS_VERSION against $base, $examples examples per operation"
# In the background, so that an interrupt is handled at once rather than when the run ends;
# its report is shown when it ends (a few seconds at the default).
(cd "$work" && exec "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" \
  run "$work/openapi.json" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$examples" \
  --request-timeout 10 \
  --generation-database none \
  "${color[@]}") > "$work/report.txt" 2>&1 &
fuzz_pid=$!
status=0
wait "$fuzz_pid" || status=$?
fuzz_pid=
cat "$work/report.txt"
# A failure of the server's own is answered 503 and logged; show any, whatever the outcome.
if grep -q ' ERROR ' "$work/server.log"; then
  echo "api-fuzz: the server logged errors:" >&2
  grep ' ERROR ' "$work/server.log" | tail -n 20 >&2
fi
if [ "$status" -ne 0 ]; then
  echo "api-fuzz: schemathesis found failures (exit $status)" >&2
  exit "$status"
fi
# One closing line in the plain form CI reads.
generated=$(grep -Eo '[0-9]+ generated' "$work/report.txt" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)
echo "api-fuzz: $generated passed, 0 failed"
