#!/usr/bin/env bash
# Resident memory of `ipquest serve` on SQLite: idle on an empty board, and with COUNT claims
# (random addresses, PLAYERS players, the last 40 days) loaded, each after a few claims and
# reads so every route has run once. No location database, so nothing large is mapped: what
# is measured is the process itself. Target (issue #2): <= 32 MB idle, the Rust clone's figure.
#
#   bench/memory.sh [COUNT=1000000] [PLAYERS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
players=${2:-2000}
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
printf 'location: { database: "" }\n' > "$work/plain.yaml"
# Start as after a reboot, not with the binary fresh in the page cache (bench/tunnel/run.py says why).
python3 -c 'import sys; sys.path.insert(0, "bench/tunnel"); import run; run.evict_from_page_cache(sys.argv[1])' "$bin"

rss() {
    awk '/VmRSS/ {t=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%.1f MB (anonymous %.1f MB, file-backed %.1f MB)", t/1024, a/1024, f/1024}' "/proc/$1/status"
}

# Starts serve on $1, touches every hot route, prints its RSS, stops it.
measure() {
    local db=$1 label=$2
    "$bin" serve --port 0 --database "$db" --config "$work/plain.yaml" > "$work/serve.log" 2>&1 &
    local pid=$!
    for _ in $(seq 600); do grep -q "ipquest listening" "$work/serve.log" && break; sleep 0.1; done
    local port
    port=$(grep "ipquest listening" "$work/serve.log" | sed -n 's/.*:\([0-9]*\)$/\1/p' | head -1)
    for path in "/claim?name=memory" /recent /score /score/hour /api/leaderboard /api/blocks /players/memory /ip; do
        curl -s -o /dev/null "http://127.0.0.1:$port$path"
    done
    sleep 2
    echo "$label: $(rss $pid)"
    kill -TERM $pid
    wait $pid 2>/dev/null || true
}

measure "$work/empty.sqlite" "RSS idle, empty board"
python3 bench/seed_claims.py "$work/claims.tsv" "$count" "$players"
started=$(date +%s.%N)
"$bin" claims import --database "$work/full.sqlite" "$work/claims.tsv" > /dev/null
echo "imported $count claims in $(python3 -c "import time; print(f'{time.time() - $started:.1f}')") s"
measure "$work/full.sqlite" "RSS with $count claims loaded"
