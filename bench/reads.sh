#!/usr/bin/env bash
# Cached reads (/score, /recent) req/s against nginx (2 workers) serving files of the same size,
# all measured in this run with wrk on loopback. Target: >= 0.8x nginx.
#
#   bench/reads.sh [SECONDS=10] [CONNECTIONS=64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
out=$(pwd)/bench/out
mkdir -p "$out"
for tool in wrk nginx; do command -v $tool >/dev/null || { echo "installing $tool"; apt-get install -y -qq $tool >/dev/null; }; done
swift build -c release --product ipquest >/dev/null
bin=.build/release/ipquest
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
trap 'kill $pid 2>/dev/null || true; kill -QUIT $(cat $work/nginx/nginx.pid) 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q listening "$out/reads-serve.log" && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/reads-serve.log" | head -1)
sleep 1
curl -s "http://127.0.0.1:$port/score" > "$work/www/score.json"
curl -s "http://127.0.0.1:$port/recent" > "$work/www/recent.json"
echo "body sizes: score $(wc -c < "$work/www/score.json") B, recent $(wc -c < "$work/www/recent.json") B"
run() { wrk -t1 -c"$conns" -d"${secs}s" --latency "$1" | awk '/Requests\/sec/ {print $2} /99%/ {print "p99 " $2 > "/dev/stderr"}'; }
for route in score recent; do
  ours=$(run "http://127.0.0.1:$port/$route")
  theirs=$(run "http://127.0.0.1:18089/$route.json")
  python3 -c "import sys; o,t=map(float,sys.argv[1:]); print(f'/$route: ipquest {o:,.0f} req/s, nginx(2 workers) {t:,.0f} req/s, ratio {o/t:.2f} (target >= 0.80)')" "$ours" "$theirs"
done
echo "RSS with 200k claims loaded: $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/$pid/status)"
