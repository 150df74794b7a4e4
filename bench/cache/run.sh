#!/usr/bin/env bash
# The response cache on the costliest pages: a player page, a block page and the player API,
# computed per request from the live board, with the cache off (cache.ttl_seconds: 0) and on
# (1 s), same binary, same board (200k claims by 2,000 players), same wrk run shape.
# Seed 001's origin went from 88 to 34,000 req/s on its costliest page by caching it whole.
#
#   bench/cache/run.sh [SECONDS=8] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-8}
conns=${2:-64}
out=$(pwd)/bench/out/cache
mkdir -p "$out"
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
python3 bench/seed_claims.py "$work/claims.tsv" 200000 2000
"$bin" claims import --database "$work/db.sqlite" "$work/claims.tsv" 2>/dev/null
start() { # TTL -> port in $port
  cat > "$work/c$1.yaml" <<YAML
limits: { requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0, max_in_flight: 0 }
cache: { ttl_seconds: $1 }
location: { database: "" }
YAML
  "$bin" serve --port 0 --database "$work/db.sqlite" --config "$work/c$1.yaml" > "$out/serve-$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q listening "$out/serve-$1.log" && break; sleep 0.1; done
  port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/serve-$1.log" | head -1)
}
run() { wrk -t1 -c"$conns" -d"${secs}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
start 0; off=$port
declare -A uncached
for path in /players/player7 /blocks/10 /api/players/player7; do uncached[$path]=$(run "http://127.0.0.1:$off$path"); done
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
start 1; on=$port
for path in /players/player7 /blocks/10 /api/players/player7; do
  cached=$(run "http://127.0.0.1:$on$path")
  python3 -c "import sys; u,c=map(float,sys.argv[2:]); print(f'{sys.argv[1]:<22} uncached {u:>9,.0f} req/s   cached (1 s TTL) {c:>9,.0f} req/s   x{c/u:.1f}')" "$path" "${uncached[$path]}" "$cached"
done
curl -s "http://127.0.0.1:$on/metrics" | grep -E "^ipquest_cache_(hits|misses|coalesced)_total" || true
