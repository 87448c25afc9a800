#!/usr/bin/env bash
# `make memory`: the server's resident memory (VmRSS) for idle connections and for an idle
# loaded room, on a fresh SQLite database.
#   IDLE_CLIENTS   idle duet.v1 connections held open (default 1000, in rooms of 10)
#   ROOM_BYTES     size of the loaded room's code (default 4,000,000)
# A figure is the growth of VmRSS while the connections are held, read once every client is
# connected (the load generator's first progress line says so).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p duet-server -p duet-loadgen
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
idle=${IDLE_CLIENTS:-1000}
bytes=${ROOM_BYTES:-4000000}
server=
start_server() {
  # Every client comes from 127.0.0.1: the per-address quotas would stop them.
  DATABASE_URL="sqlite://$work/duet.db?mode=rwc" DUET_BIND="127.0.0.1:$port" RUST_LOG=warn \
    DUET_MAX_CONNECTIONS_PER_IP=10000 DUET_ROOMS_PER_MINUTE=100000 \
    DUET_MAX_BODY_BYTES=$((bytes * 2 + 1024)) DUET_MAX_FRAME_BYTES=$((bytes * 2 + 1024)) \
    target/release/duet-server 2>> "$work/server.log" &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" > /dev/null && return
    sleep 0.1
  done
  echo "the server did not start" >&2
  exit 1
}
stop_server() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap 'stop_server; rm -rf "$work"' EXIT
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
# Holds `$@` idle connections open and prints the server's VmRSS once all are connected.
rss_while_connected() {
  target/release/duet-loadgen --url "http://127.0.0.1:$port" --rate 0 --duration 30 --warmup 0 \
    "$@" > /dev/null 2> "$work/loadgen.log" &
  local loadgen=$!
  for _ in $(seq 1 600); do
    grep -q '^\[' "$work/loadgen.log" && break
    sleep 0.1
  done
  rss_kb
  kill "$loadgen" 2>/dev/null || true
  wait "$loadgen" 2>/dev/null || true
}

start_server
before=$(rss_kb)
during=$(rss_while_connected --rooms $((idle / 10)) --clients-per-room 10)
echo "idle connections: $idle · server VmRSS ${before} kB → ${during} kB · $(((during - before) * 1000 / idle)) bytes each"

# The loaded room: stored first, then the server restarted, so that what is measured is the
# room as a client finds it (loaded from the database, its text sent once).
python3 -c "
import json, sys
line = 'fn line_{:07}() -> u64 {{ 42 }} // ünïcödé\n'
text = ''.join(line.format(i) for i in range($bytes // len(line.format(0).encode())))
json.dump({'language': 'rust', 'code': text}, sys.stdout)
" > "$work/room.json"
room=$(curl -fs -X POST -H 'content-type: application/json' --data-binary "@$work/room.json" \
  "http://127.0.0.1:$port/rooms" | python3 -c 'import json,sys; print(json.load(sys.stdin)["roomId"])')
text=$(curl -fs "http://127.0.0.1:$port/rooms/$room" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["code"].encode()))')
stop_server
start_server
before=$(rss_kb)
during=$(rss_while_connected --room "$room" --clients-per-room 1)
growth=$(((during - before) * 1024))
echo "idle loaded room: ${text} bytes of text · server VmRSS ${before} kB → ${during} kB · grew ${growth} bytes = $(python3 -c "print(f'{$growth / $text:.2f}')")× the text (target < 2× + 4 kB)"
