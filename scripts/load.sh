#!/usr/bin/env bash
# `make load`: a short standard load run against a freshly started server on SQLite, with the
# bare-relay baseline, printed as tables. Extra arguments go to duet-loadgen, e.g.
#   scripts/load.sh --rooms 1 --clients-per-room 400 --rate 5 --duration 20
# LOAD_DATABASE_URL runs the server on another database (an empty PostgreSQL one, say).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p duet-server -p duet-loadgen
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
# Every typist comes from 127.0.0.1: the per-address quotas would hold the whole load to one
# client's share.
DATABASE_URL="${LOAD_DATABASE_URL:-sqlite://$work/duet.db?mode=rwc}" DUET_BIND="127.0.0.1:$port" RUST_LOG=warn \
  DUET_MAX_CONNECTIONS_PER_IP=10000 DUET_ROOMS_PER_MINUTE=100000 \
  target/release/duet-server 2> "$work/server.log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" > /dev/null && break
  sleep 0.1
done
target/release/duet-loadgen --url "http://127.0.0.1:$port" \
  --rooms 10 --clients-per-room 4 --rate 5 --duration 10 --warmup 2 --baseline "$@"
