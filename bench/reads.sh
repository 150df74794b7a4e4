#!/usr/bin/env bash
# Cached reads (/score, /recent) req/s against nginx (2 workers) serving files of the same size,
# all measured in this run with wrk on loopback. Target: >= 0.8x nginx.
#
#   [ROUNDS=5] bench/reads.sh [SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
out=$(pwd)/bench/out
mkdir -p "$out"
for tool in wrk nginx; do command -v $tool >/dev/null || { echo "installing $tool"; apt-get install -y -qq $tool >/dev/null; }; done
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
work=$(mktemp -d)
# A realistic board: 200k claims by 2,000 players over all blocks.
python3 bench/seed_claims.py "$work/claims.tsv" 200000 2000
"$bin" claims import --database "$work/db.sqlite" "$work/claims.tsv" 2>/dev/null
# wrk comes from one address: lift the per-network limits so they do not shape the figures.
cat > "$work/bench.yaml" <<YAML
limits: { requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0, max_in_flight: 0 }
YAML
"$bin" serve --port 0 --database "$work/db.sqlite" --config "$work/bench.yaml" > "$out/reads-serve.log" 2>&1 &
pid=$!
# The same board served through the router only (http.fast_path off), for the ratio of the
# event-loop answers (FastRoutes) to Hummingbird's router path.
cp "$work/db.sqlite" "$work/router.sqlite"
{ cat "$work/bench.yaml"; echo "http: { fast_path: false }"; } > "$work/router.yaml"
"$bin" serve --port 0 --database "$work/router.sqlite" --config "$work/router.yaml" > "$out/reads-router.log" 2>&1 &
rpid=$!
mkdir -p "$work/www" "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; keepalive_requests 1000000;
  types { application/json json; }
  server { listen 127.0.0.1:18089; root $work/www; }
}
NGINX
nginx -c "$work/nginx/nginx.conf"
trap 'kill $pid $rpid 2>/dev/null || true; kill -QUIT $(cat $work/nginx/nginx.pid) 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q listening "$out/reads-serve.log" && break; sleep 0.1; done
for _ in $(seq 200); do grep -q listening "$out/reads-router.log" && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/reads-serve.log" | head -1)
rport=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/reads-router.log" | head -1)
sleep 1
curl -s "http://127.0.0.1:$port/score" > "$work/www/score.json"
curl -s "http://127.0.0.1:$port/recent" > "$work/www/recent.json"
echo "body sizes: score $(wc -c < "$work/www/score.json") B, recent $(wc -c < "$work/www/recent.json") B"
# nginx's workers run as an unprivileged user: mktemp's 0700 directory would turn every answer
# into a small 403 (and the "peer" figure into nonsense). Open it up and check what nginx serves.
chmod -R a+rX "$work"
for route in score recent; do
  got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:18089/$route.json")
  [ "$got" = "200 $(wc -c < "$work/www/$route.json")" ] || { echo "nginx serves /$route.json as '$got', not the file; stopping" >&2; exit 1; }
done
# Prints req/s; refuses figures that include error answers.
run() { wrk -t1 -c"$conns" -d"${secs}s" --latency "$1" | awk '/Requests\/sec/ {rate=$2} /99%/ {print "p99 " $2 > "/dev/stderr"} /Non-2xx/ {bad=1} END {if (bad) {print "error answers from " ARGV[1] > "/dev/stderr"; exit 1} print rate}'; }
# ROUNDS rounds, each running ipquest, the router path and nginx back to back, so drift on a
# shared machine falls on all three alike; the median ratio over the rounds is the figure.
rounds=${ROUNDS:-5}
for route in score recent; do
  ratios=(); routed_ratios=()
  for round in $(seq "$rounds"); do
    ours=$(run "http://127.0.0.1:$port/$route")
    routed=$(run "http://127.0.0.1:$rport/$route")
    theirs=$(run "http://127.0.0.1:18089/$route.json")
    line=$(python3 -c "import sys; o,r,t=map(float,sys.argv[1:]); print(f'{o/t:.3f} {r/t:.3f} ipquest {o:,.0f} req/s, router {r:,.0f}, nginx {t:,.0f}')" "$ours" "$routed" "$theirs")
    echo "/$route round $round: ${line#* * }"
    ratios+=("${line%% *}"); rest=${line#* }; routed_ratios+=("${rest%% *}")
  done
  python3 -c "import statistics, sys; n=int(sys.argv[1]); a=list(map(float, sys.argv[2:2+n])); b=list(map(float, sys.argv[2+n:])); print(f'/$route: median ratio to nginx (2 workers) over {n} rounds {statistics.median(a):.2f} (range {min(a):.2f}-{max(a):.2f}; target >= 0.80); through the router {statistics.median(b):.2f}')" "$rounds" "${ratios[@]}" "${routed_ratios[@]}"
done
echo "RSS with 200k claims loaded: $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$pid/status) ($(awk '/RssAnon/ {print $2/1024 " MB"}' /proc/$pid/status) anonymous)"
