#!/usr/bin/env bash
# Slowloris against `ipquest serve` with Debian's slowhttptest: CONNECTIONS connections that
# each send a header line every 5 s and never finish their head, while a normal client asks for
# /healthz every 0.5 s. The server's head deadline (http.idle_timeout_seconds, 5 s here) closes
# the slow connections; the normal client is served throughout.
#
#   bench/slowloris/run.sh [CONNECTIONS=500] [SECONDS=30]
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${1:-500}
secs=${2:-30}
out=$(pwd)/bench/out/slowloris
mkdir -p "$out"
command -v slowhttptest >/dev/null || apt-get install -y -qq slowhttptest >/dev/null
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/c.yaml" <<YAML
http: { idle_timeout_seconds: 5 }
limits: { requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0 }
location: { database: "" }
YAML
"$bin" serve --port 0 --database "$work/db.sqlite" --config "$work/c.yaml" > "$out/serve.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q listening "$out/serve.log" && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/serve.log" | head -1)
# The normal client, in the background: one request every 0.5 s, its status and time.
( end=$((SECONDS + secs)); while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/healthz" || echo "000 5"
    sleep 0.5
  done ) > "$out/normal.txt" &
normal=$!
slowhttptest -H -c "$conns" -r 200 -i 5 -l "$secs" -s 8192 -t GET -u "http://127.0.0.1:$port/healthz" -p 3 -g -o "$out/slowhttptest" > "$out/slowhttptest.txt" 2>&1 || true
wait $normal
python3 - "$out/normal.txt" "$out/slowhttptest.csv" <<'PY'
import csv, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
ok = [float(t) for s, t in rows if s == "200"]
print(f"normal client: {len(ok)}/{len(rows)} requests answered 200, slowest {max(ok) * 1000 if ok else 0:.1f} ms")
try:
    data = list(csv.DictReader(open(sys.argv[2])))
    peak = max(int(r["Connected"]) for r in data)
    closed = max(int(r["Closed"]) for r in data)
    first = next((int(r["Seconds"]) for r in data if int(r["Closed"]) > 0), None)
    print(f"slowhttptest: peak {peak} slow connections open at once; {closed} closed by the server, the first at {first} s; "
          f"{data[-1]['Connected']} still open at {data[-1]['Seconds']} s")
except (OSError, KeyError, ValueError) as e:
    print(f"slowhttptest: no CSV ({e}); see {sys.argv[2]}")
PY
