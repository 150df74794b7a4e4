#!/usr/bin/env bash
# Durable claims/s on PostgreSQL: one `ipquest serve` instance, then two on the same database,
# next to the naive baseline (one INSERT … ON CONFLICT per request, autocommit, measured with
# pgbench at the same concurrency) — all against the same throw-away cluster, in one run.
# Also: how long one instance takes to load N claims at start and to fold a feed batch.
#
#   bench/postgres/run.sh [CONNECTIONS=1024] [SECONDS=10]   (one source address per connection, as in bench/claims.sh)
# Needs: gcc, PostgreSQL server binaries (apt-get install postgresql), pgbench.
# IPQUEST_BIN overrides the binary (default: a release build in .build-pg).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${IPQUEST_POSTGRES_URL:-}" ]; then exec scripts/with-postgres.sh "$0" "$@"; fi
conns=${1:-1024}
secs=${2:-10}
out=bench/out/postgres
mkdir -p "$out"
gcc -O2 -o "$out/loadgen" bench/loadgen.c
bin=${IPQUEST_BIN:-}
if [ -z "$bin" ]; then
  swift build -c release --scratch-path .build-pg --product ipquest >/dev/null
  bin=.build-pg/release/ipquest
fi
base=${IPQUEST_POSTGRES_URL%%\?*}
base=${base%/*}
psql_url() { echo "$base/$1"; }
cat > "$out/bench.yaml" <<YAML
rate_limit: { burst: 1000000, per_second: 1000000 }
trusted_proxies: ["127.0.0.0/8"]
YAML

start() { # start DB LABEL -> sets pid_LABEL, port_LABEL
  "$bin" serve --port 0 --database "$(psql_url "$1")?sslmode=disable&pool_size=4" --config "$out/bench.yaml" >"$out/$2.out" 2>"$out/$2.log" &
  eval "pid_$2=$!"
  for _ in $(seq 300); do grep -qs listening "$out/$2.out" && break; sleep 0.1; done
  eval "port_$2=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$out/$2.out" | head -1)"
}
rps() { sed -n 's/.*rps=\([0-9]*\).*/\1/p'; }
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done' EXIT

echo "== one instance: $conns connections, ${secs}s, every claim changes owner (durable before 2xx)"
psql -q "$(psql_url postgres)" -c "CREATE DATABASE one"
start one a; pids+=("$pid_a")
one=$("$out/loadgen" -p "$port_a" -c "$conns" -d "$secs" -P '/claim?name=%n' -n 2)
echo "$one"
kill -TERM "$pid_a"; wait "$pid_a" || true

echo "== one instance, fresh addresses: every claim comes from a new random address (X-Forwarded-For from a trusted proxy)"
psql -q "$(psql_url postgres)" -c "CREATE DATABASE fresh"
start fresh f; pids+=("$pid_f")
fresh=$("$out/loadgen" -p "$port_f" -c "$conns" -d "$secs" -P '/claim?name=%n' -n 2 -x)
echo "$fresh"
rows=$(psql -At "$(psql_url fresh)" -c "SELECT count(*) FROM claims")
echo "claims table after the run: $rows rows"
kill -TERM "$pid_f"; wait "$pid_f" || true

echo "== two instances on one database: $((conns / 2)) connections each, ${secs}s"
psql -q "$(psql_url postgres)" -c "CREATE DATABASE two"
start two b; pids+=("$pid_b")
start two c; pids+=("$pid_c")
"$out/loadgen" -p "$port_b" -c "$((conns / 2))" -d "$secs" -P '/claim?name=%n' -n 2 >"$out/b.txt" &
lb=$!
"$out/loadgen" -p "$port_c" -c "$((conns / 2))" -d "$secs" -P '/claim?name=%n' -n 2 >"$out/c.txt"
wait $lb
cat "$out/b.txt" "$out/c.txt"
sleep 1
hb=$(curl -s "http://127.0.0.1:$port_b/healthz"); hc=$(curl -s "http://127.0.0.1:$port_c/healthz")
echo "instance b: $hb"; echo "instance c: $hc"
[ "$hb" = "$hc" ] && echo "converged: identical /healthz" || echo "NOT converged"
kill -TERM "$pid_b" "$pid_c"; wait "$pid_b" "$pid_c" || true

echo "== naive baseline: one autocommit upsert per request (pgbench, $conns clients, ${secs}s)"
psql -q "$(psql_url postgres)" -c "CREATE DATABASE naive"
"$bin" migrate --database "$(psql_url naive)?sslmode=disable" >/dev/null
cat > "$out/naive.sql" <<'SQL'
\set ip random(0, 4294967295)
\set n random(0, 1)
INSERT INTO claims (ip, name, claimed_at, seq) VALUES (:ip, 'p' || :n, extract(epoch from now())::bigint, 0)
  ON CONFLICT (ip) DO UPDATE SET name = excluded.name, claimed_at = excluded.claimed_at;
SQL
pgbench=$(command -v pgbench || echo "$IPQUEST_PG_BIN/pgbench")
naive=$("$pgbench" -n -c "$conns" -j 2 -T "$secs" -f "$out/naive.sql" "$(psql_url naive)" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
echo "naive tps=$naive"

r1=$(echo "$one" | rps)
rf=$(echo "$fresh" | rps)
r2=$(( $(rps <"$out/b.txt") + $(rps <"$out/c.txt") ))
python3 - "$r1" "$r2" "$naive" "$rf" <<'PY'
import sys
one, two, naive, fresh = map(float, sys.argv[1:5])
print(f"claims/s: one instance {one:,.0f} (same addresses re-claimed), {fresh:,.0f} (fresh addresses); "
      f"two instances {two:,.0f}; naive one-upsert-per-request {naive:,.0f}/s (group commit x{one/naive:.1f}); "
      f"target >= 20,000")
PY
