#!/usr/bin/env bash
# Durable claims/s over HTTP from many source addresses, next to the same server's /ip route
# (pure HTTP, no storage) measured in the same run. Also RSS idle and after the storm.
#
#   [ROUNDS=2] bench/claims.sh [CONNECTIONS=1000] [SECONDS=15]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-1000}
secs=${2:-15}
out=bench/out
mkdir -p "$out"
command -v gcc >/dev/null || { echo "needs gcc"; exit 1; }
gcc -O2 -o "$out/loadgen" bench/loadgen.c
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
db=$(mktemp -d)/bench.sqlite
cat > "$out/bench.yaml" <<YAML
rate_limit: { burst: 1000000, per_second: 1000000 }
limits: { requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0 }
durability: full
YAML
# Idle RSS of the plain game (no location database mapped: the Rust clone's configuration).
printf 'location: { database: "" }\n' > "$out/plain.yaml"
"$bin" serve --port 0 --database "$(dirname "$db")/plain.sqlite" --config "$out/plain.yaml" > "$out/plain.log" 2>&1 &
plain=$!
for _ in $(seq 100); do grep -q "ipquest listening" "$out/plain.log" && break; sleep 0.1; done
sleep 1
plain_rss=$(awk '/VmRSS/ {t=$2} /RssAnon/ {a=$2} END {printf "%.1f MB (anonymous %.1f MB)", t/1024, a/1024}' /proc/$plain/status)
kill $plain; wait $plain 2>/dev/null || true
echo "RSS idle without a location database: $plain_rss (target <= 32 MB)"

"$bin" serve --port 0 --database "$db" --config "$out/bench.yaml" > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$out/serve.log" && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/serve.log" | head -1)
rss() { awk '/VmRSS/ {t=$2} /RssAnon/ {a=$2} /RssFile/ {f=$2} END {printf "%.1f MB (anonymous %.1f MB, file-backed %.1f MB: mapped location database and binary)", t/1024, a/1024, f/1024}' /proc/$pid/status; }
echo "server pid $pid port $port; RSS idle: $(rss)"

# Server CPU (user + system, all threads) per answered request over one load run.
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
per_request() { python3 -c "import sys; t, n = map(float, sys.argv[1:3]); print(f'server CPU {t * 1e6 / $(getconf CLK_TCK) / n:.1f} us per request')" "$1" "$(echo "$2" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')"; }
# /ip and /claim alternate for ROUNDS rounds (default 2), so that a slow spell of this shared
# machine weighs on both; the ratio is over the totals, and each round's is printed too.
rounds=${ROUNDS:-2}
ip_total=0; claim_total=0
for round in $(seq "$rounds"); do
    echo "== round $round: /ip (HTTP only, no storage), $conns connections from distinct addresses, ${secs}s"
    t0=$(ticks)
    ip_line=$("$out/loadgen" -p "$port" -c "$conns" -d "$secs" -P /ip)
    echo "$ip_line"
    per_request $(( $(ticks) - t0 )) "$ip_line"
    echo "== round $round: /claim (durable: committed before 2xx), $conns connections, ${secs}s"
    t0=$(ticks)
    claim_line=$("$out/loadgen" -p "$port" -c "$conns" -d "$secs" -P '/claim?name=%n' -n 2)
    echo "$claim_line"
    per_request $(( $(ticks) - t0 )) "$claim_line"
    ip_n=$(echo "$ip_line" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
    claim_n=$(echo "$claim_line" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
    echo "round $round ratio: $(python3 -c "print(f'{$claim_n / $ip_n:.2f}')")"
    ip_total=$((ip_total + ip_n)); claim_total=$((claim_total + claim_n))
done
sleep 1
echo "RSS after claims: $(rss)"
curl -s "http://127.0.0.1:$port/metrics" | awk '/^ipquest_claim_batch_size_sum/ {s=$2} /^ipquest_claim_batch_size_count/ {c=$2} END {if (c > 0) printf "claims per transaction: %.0f on average over %d transactions\n", s/c, c}'
python3 - "$ip_total" "$claim_total" "$secs" "$rounds" <<'PY'
import sys
ip, claim, secs, rounds = map(float, sys.argv[1:5])
ip, claim = ip / (secs * rounds), claim / (secs * rounds)
print(f"claims/s {claim:,.0f} vs /ip {ip:,.0f} req/s: ratio {claim/ip:.2f} (durability costs {100*(1-claim/ip):.0f}% of the HTTP ceiling; target <= 30%)")
PY
curl -s "http://127.0.0.1:$port/healthz"; echo
kill -TERM $pid; wait $pid || true
