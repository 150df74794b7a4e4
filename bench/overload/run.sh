#!/usr/bin/env bash
# Load shedding under overload: offered load at 1x, 2x, 5x and 10x capacity on a costly route
# (/api/players/NAME, computed per request, cache off), against the same binary guarded
# (limits.max_in_flight = CAPACITY, default 4; the rest gets 503 at once) and unguarded (no
# in-flight limit: every request queues). Closed-loop load from distinct 127.x sources
# (bench/loadgen.c; a 503 is retried at once, the harshest client), offered = k x CAPACITY
# connections. Prints success rate, p50/p99 of admitted (2xx) requests and RSS; the guard's
# target: admitted p99 at 10x within 3x of its 1x p99.
#
#   bench/overload/run.sh [SECONDS=6]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-6}
out=$(pwd)/bench/out/overload
mkdir -p "$out"
gcc -O2 -o "$out/loadgen" bench/loadgen.c
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
python3 bench/seed_claims.py "$work/claims.tsv" 200000 2000
"$bin" claims import --database "$work/db.sqlite" "$work/claims.tsv" 2>/dev/null
capacity=${CAPACITY:-4}
run_server() { # LABEL IN_FLIGHT
  cat > "$work/$1.yaml" <<YAML
limits: { max_in_flight: $2, requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0, max_connections: 100000 }
cache: { ttl_seconds: 0 }
location: { database: "" }
YAML
  "$bin" serve --port 0 --database "$work/db.sqlite" --config "$work/$1.yaml" > "$out/serve-$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do grep -q listening "$out/serve-$1.log" && break; sleep 0.1; done
  port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/serve-$1.log" | head -1)
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
printf "%-10s %5s %6s %9s %9s %12s %12s %8s\n" server load conns "req/s" "success" "ok p50 ms" "ok p99 ms" "RSS MB"
for label in guarded unguarded; do
  if [ $label = guarded ]; then run_server guarded $capacity; else run_server unguarded 0; fi
  "$out/loadgen" -p "$port" -c 4 -d 2 -P /api/players/player7 >/dev/null # warm up
  for k in 1 2 5 10; do
    conns=$((k * capacity))
    line=$("$out/loadgen" -p "$port" -c "$conns" -d "$secs" -P /api/players/player7)
    echo "$line" >> "$out/$label.txt"
    rss=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status)
    python3 - "$label" "$k" "$conns" "$line" "$rss" <<'PY'
import re, sys
label, k, conns, line, rss = sys.argv[1:6]
f = {m[0]: float(m[1]) for m in re.findall(r"(\w+)=([0-9.]+)", line)}
ok = f["2xx"] / max(f["requests"], 1)
print(f"{label:<10} {k + 'x':>5} {conns:>6} {f['rps']:>9,.0f} {ok:>8.1%} {f['ok_p50_ms']:>12.2f} {f['ok_p99_ms']:>12.2f} {rss:>8}")
PY
  done
  kill $pid; wait $pid 2>/dev/null || true; pid=
done
