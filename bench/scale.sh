#!/usr/bin/env bash
# IPQuest at the size of the real game (issue 24): for each size, claims shaped like ipv4.games
# (bench/scale/gen_claims.c: runs inside /24s, Zipf players, 60 days of timestamps) go through
#   claims import (time, peak RSS) -> claims export (time, peak RSS, identical to the input)
#   -> serve: start to listening, scores complete and right (/healthz and the sum of /score),
#      resident memory and bytes per claimed address
#   -> read latency of /score, /api/leaderboard, /players/NAME, /blocks/N (median, p99)
#   -> a trickle of 4 claims/s: server CPU, and the read latency of those pages and / meanwhile
#   -> fresh-address claims/s (loadgen -x, X-Forwarded-For from --trusted-proxy 127.0.0.0/8)
#      on the loaded board and on an empty board started in the same run.
# and prints a table. Release binary: IPQUEST=path, else scripts/build-release.sh ipquest.
#
#   [SIZES="1000000 10000000"] [NAMES=zipf|distinct] [PLAYERS=20000] [ORDER=sorted|blocks|random]
#   [EXTRA_ORDERS="random"] [CONNS=256] [CLAIM_SECS=10] [READS=200] [TRICKLE_SECS=12] [IPQUEST=path]
#   [WORK=dir] [KEEP=1] bench/scale.sh
#
# NAMES=distinct gives every claim its own player (the spam-name shape: 1 M claims, 1 M names).
# ORDER is the order of the imported file (sorted: as `claims export` writes it); EXTRA_ORDERS
# times the import of the same claims in other orders too (into a scratch database).
# Every step has a time limit (STEP_TIMEOUT, default 3600 s); servers are killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"1000000 10000000"}
names=${NAMES:-zipf}
players=${PLAYERS:-20000}
order=${ORDER:-sorted}
extra_orders=${EXTRA_ORDERS:-}
conns=${CONNS:-256}
claim_secs=${CLAIM_SECS:-10}
reads=${READS:-200}
trickle_secs=${TRICKLE_SECS:-12}
step_timeout=${STEP_TIMEOUT:-3600}
out=$(pwd)/bench/out
mkdir -p "$out"
for tool in gcc python3 curl; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 1; }; done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
case "$names" in zipf|distinct) ;; *) echo "NAMES is zipf or distinct" >&2; exit 2;; esac
gcc -O2 -o "$out/gen_claims" bench/scale/gen_claims.c -lm
gcc -O2 -o "$out/loadgen" bench/loadgen.c
bin=${IPQUEST:-}
if [ -z "$bin" ]; then scripts/build-release.sh ipquest >/dev/null; bin=.build/release/ipquest; fi
bin=$(realpath "$bin")
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d /tmp/ipquest-scale.XXXXXX); fi
echo "binary $bin ($("$bin" --version 2>/dev/null || echo "no --version")); work $work; sizes $sizes; names $names; order $order"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || [ -n "${WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$work/serve.yaml" <<YAML
location: { database: "" }
rate_limit: { burst: 1000000, per_second: 1000000 }
limits: { requests_burst: 100000000, requests_per_second: 100000000, strikes_before_ban: 0, max_in_flight: 0 }
durability: full
YAML

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
# Runs a command under /usr/bin/time; sets step_s (wall seconds) and step_mb (peak RSS, MB).
timed() {
    local log=$1; shift
    if ! timeout "$step_timeout" /usr/bin/time -f '%e %M' -o "$work/time.out" "$@" 2> "$log"; then
        echo "failed: $* (log $log):" >&2; tail -5 "$log" >&2; exit 1
    fi
    read -r step_s kb < "$work/time.out"
    step_mb=$(( kb / 1024 ))
}
rate() { python3 -c "import sys; print(f'{float(sys.argv[1]) / max(float(sys.argv[2]), 1e-9) / 1e6:.2f}')" "$1" "$2"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
# Resident memory once a start's transient work (score encoding, freed buffers) is done: the
# lowest of 10 samples a second apart; sets low_kb and low_anon_kb.
low_rss() {
    local r
    low_kb=$(rss_kb "$1"); low_anon_kb=$(anon_kb "$1")
    for _ in $(seq 10); do
        sleep 1; r=$(rss_kb "$1")
        if [ "$r" -lt "$low_kb" ]; then low_kb=$r; low_anon_kb=$(anon_kb "$1"); fi
    done
}
# Waits until the server logging to LOG has written its board checkpoint.
wait_checkpoint() {
    local deadline=$(( $(date +%s) + step_timeout ))
    until grep -q "board checkpoint written" "$1"; do
        [ "$(date +%s)" -lt "$deadline" ] || { echo "no checkpoint written" >&2; break; }
        sleep 0.1
    done
}
players_of() { curl -sf "http://127.0.0.1:$1/healthz" | python3 -c "import sys, json; print(json.load(sys.stdin)['players'])"; }
# Starts a server on DB; sets srv_pid, srv_port and srv_listen_s (start to "ipquest listening").
start_server() {
    local db=$1 log=$2; shift 2
    local t0; t0=$(now)
    "$bin" serve --port 0 --database "$db" --config "$work/serve.yaml" --trusted-proxy 127.0.0.0/8 "$@" > "$log" 2>&1 &
    srv_pid=$!
    pids+=("$srv_pid")
    local deadline=$(( $(date +%s) + step_timeout ))
    until grep -q "ipquest listening" "$log"; do
        kill -0 "$srv_pid" 2>/dev/null || { echo "server exited while starting:" >&2; tail -5 "$log" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "server not listening after ${step_timeout}s" >&2; exit 1; }
        sleep 0.02
    done
    srv_listen_s=$(since "$t0")
    srv_port=$(sed -n 's/.*ipquest listening.*:\([0-9]*\)$/\1/p' "$log" | head -1)
}
# "COUNT SUM_SECONDS" of the server's snapshot rebuilds (ipquest_snapshot_build_duration).
snapshot_builds() {
    curl -sf "http://127.0.0.1:$1/metrics" | awk '/^ipquest_snapshot_build_duration_count/ {c=$2} /^ipquest_snapshot_build_duration_sum/ {s=$2} END {print c+0, s+0}'
}
stop_server() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# Runs loadgen's fresh-address claim storm; sets storm_rate (2xx/s) and storm_p99 (ms).
storm() {
    local line
    line=$(timeout $(( claim_secs + 120 )) "$out/loadgen" -p "$1" -c "$conns" -d "$claim_secs" -P '/claim?name=%n' -n 2 -x)
    echo "    loadgen: $line"
    storm_rate=$(echo "$line" | python3 -c "import sys,re; l=sys.stdin.read(); print(round(int(re.search(r'2xx=(\d+)', l)[1]) / float(re.search(r'seconds=([\d.]+)', l)[1])))")
    storm_p99=$(echo "$line" | sed -n 's/.*ok_p99_ms=\([0-9.]*\).*/\1/p')
}

declare -A R
for n in $sizes; do
    echo "== $n claims ($names names, $order order)"
    gen_args=(-n "$n" -p "$players" -o "$order")
    [ "$names" = distinct ] && gen_args+=(-d)
    input="$work/claims-$n.tsv"
    t0=$(now); "$out/gen_claims" "${gen_args[@]}" > "$input"; echo "  generated $(wc -c < "$input") bytes in $(since "$t0") s"
    db="$work/db-$n.sqlite"
    rm -f "$db" "$db-wal" "$db-shm"

    timed "$work/import-$n.log" "$bin" claims import --database "$db" "$input"
    R[import_s,$n]=$step_s; R[import_mb,$n]=$step_mb; R[import_rate,$n]=$(rate "$n" "$step_s")
    echo "  import: ${step_s} s, ${R[import_rate,$n]} M rows/s, peak ${step_mb} MB; database $(( $(stat -c %s "$db") / 1048576 )) MB"
    for o in $extra_orders; do
        [ "$o" = "$order" ] && continue
        "$out/gen_claims" -n "$n" -p "$players" -o "$o" $([ "$names" = distinct ] && echo -d) > "$work/other.tsv"
        rm -f "$work/other.sqlite"*
        timed "$work/import-$o-$n.log" "$bin" claims import --database "$work/other.sqlite" "$work/other.tsv"
        R[import_${o}_s,$n]=$step_s; R[import_${o}_mb,$n]=$step_mb
        echo "  import ($o order): ${step_s} s, $(rate "$n" "$step_s") M rows/s, peak ${step_mb} MB"
        rm -f "$work/other.tsv" "$work/other.sqlite"*
    done

    timed "$work/export-$n.log" "$bin" claims export --database "$db" -o "$work/export-$n.tsv"
    R[export_s,$n]=$step_s; R[export_mb,$n]=$step_mb; R[export_rate,$n]=$(rate "$n" "$step_s")
    same=differs
    if [ "$order" = sorted ]; then cmp -s "$input" "$work/export-$n.tsv" && same="identical to the input"; else
        [ "$(wc -l < "$work/export-$n.tsv")" = "$(( n + 1 ))" ] && same="$(( n )) rows"; fi
    echo "  export: ${step_s} s, ${R[export_rate,$n]} M rows/s, peak ${step_mb} MB; $same"
    [ "$same" != differs ] || { echo "export does not match the import" >&2; exit 1; }
    rm -f "$work/export-$n.tsv" "$input"

    start_server "$db" "$work/serve-$n.log"
    pid=$srv_pid; port=$srv_port
    R[start_s,$n]=$srv_listen_s
    t0=$(now)
    if python3 bench/scale/check_scores.py "$port" "$n" > "$work/check.out"; then
        R[complete,$n]="at listening"
    else
        deadline=$(( $(date +%s) + step_timeout ))
        until python3 bench/scale/check_scores.py "$port" "$n" > "$work/check.out"; do
            [ "$(date +%s)" -lt "$deadline" ] || { echo "scores never complete:" >&2; cat "$work/check.out" >&2; exit 1; }
            sleep 0.1
        done
        R[complete,$n]="+$(since "$t0") s after"
    fi
    echo "  serve: listening after ${srv_listen_s} s, scores complete ${R[complete,$n]}: $(cat "$work/check.out")"
    # Restart: that first start loaded every row and then checkpointed the board (DATABASE.board);
    # a restart resumes from the checkpoint and replays only the journal after it.
    wait_checkpoint "$work/serve-$n.log"
    stop_server "$pid"
    start_server "$db" "$work/serve-again-$n.log"
    pid=$srv_pid; port=$srv_port
    R[restart_s,$n]=$srv_listen_s
    R[restart_from,$n]=$(sed -n 's/.* from=\([a-z]*\) .*loaded claims.*/\1/p' "$work/serve-again-$n.log" | head -1)
    if python3 bench/scale/check_scores.py "$port" "$n" > "$work/check.out"; then R[restart_complete,$n]="at listening"; else R[restart_complete,$n]="NOT at listening"; fi
    echo "  restart: listening after ${srv_listen_s} s (from ${R[restart_from,$n]}), scores complete ${R[restart_complete,$n]}: $(cat "$work/check.out")"
    # The score snapshots sit in RSS as in production.
    low_rss "$pid"
    R[rss_mb,$n]=$(( low_kb / 1024 )); R[anon_mb,$n]=$(( low_anon_kb / 1024 ))
    R[bpa,$n]=$(( low_kb * 1024 / n ))
    echo "  resident: ${R[rss_mb,$n]} MB (anonymous ${R[anon_mb,$n]} MB), ${R[bpa,$n]} bytes per claimed address"
    if [ "$names" = distinct ]; then
        # Bytes per player: the same claims (same addresses, times and origins) with Zipf names,
        # restarted from a checkpoint and measured the same way; the difference in resident
        # memory over the difference in players. A name of these ("u123456") is a 16-byte
        # String with no storage of its own, so "beyond its name" is that less 16.
        distinct_kb=$low_kb; distinct_players=$(players_of "$port")
        "$out/gen_claims" -n "$n" -p "$players" -o "$order" > "$work/other.tsv"
        rm -f "$work/other.sqlite"*
        timed "$work/import-other-$n.log" "$bin" claims import --database "$work/other.sqlite" "$work/other.tsv"
        start_server "$work/other.sqlite" "$work/serve-other-$n.log"
        wait_checkpoint "$work/serve-other-$n.log"
        stop_server "$srv_pid"
        start_server "$work/other.sqlite" "$work/serve-other-again-$n.log"
        low_rss "$srv_pid"
        few=$(players_of "$srv_port")
        stop_server "$srv_pid"
        rm -f "$work/other.tsv" "$work/other.sqlite"*
        R[bpp,$n]=$(( (distinct_kb - low_kb) * 1024 / (distinct_players - few) ))
        echo "  per player: $distinct_players players ${distinct_kb} kB, the same claims by $few players ${low_kb} kB: ${R[bpp,$n]} bytes a player, $(( R[bpp,$n] - 16 )) beyond its name (target 100)"
    fi

    top=$(curl -sf "http://127.0.0.1:$port/api/leaderboard" | python3 -c "import sys, json; print(json.load(sys.stdin)['players'][0]['name'])")
    block=$(curl -sf "http://127.0.0.1:$port/score" | python3 -c "
import sys, json, collections
c = collections.Counter()
for blocks in json.load(sys.stdin)['score'].values():
    for b, k in blocks: c[b] += k
print(c.most_common(1)[0][0])")
    python3 bench/scale/latency.py "$port" "$reads" /score /api/leaderboard "/players/$top" "/blocks/$block" > "$work/latency-$n.out"
    while IFS=$'\t' read -r path status size median p99; do
        key=${path%%/*}; case "$path" in /score) key=score;; /api/leaderboard) key=leaderboard;; /players/*) key=player;; /blocks/*) key=block;; esac
        R[${key}_ms,$n]="$median / $p99"; R[${key}_size,$n]=$size
        echo "  GET $path: $status, $size bytes, median $median ms, p99 $p99 ms"
    done < "$work/latency-$n.out"

    # A trickle of claims (4 a second): what it costs the server, and read latency meanwhile.
    python3 bench/scale/trickle.py "$port" "$pid" "$trickle_secs" 4 / /score /api/leaderboard "/players/$top" "/blocks/$block" > "$work/trickle-$n.out"
    read -r _ cpu ok refused < <(head -1 "$work/trickle-$n.out")
    R[trickle_cpu,$n]=$cpu
    worst=$(tail -n +2 "$work/trickle-$n.out" | sort -t$'\t' -k4 -g | tail -1)
    R[trickle_p99,$n]="$(cut -f4 <<< "$worst") ms ($(cut -f1 <<< "$worst"))"
    echo "  trickle of 4 claims/s for ${trickle_secs} s: ${cpu} % of a core ($ok claims taken, $refused not); slowest p99 meanwhile: ${R[trickle_p99,$n]}"
    tail -n +2 "$work/trickle-$n.out" | while IFS=$'\t' read -r path count median p99; do echo "    GET $path under the trickle: $count reads, median $median ms, p99 $p99 ms"; done

    # Fresh-address claims on an empty board, then on the loaded one (same loadgen sequence).
    empty_db="$work/empty-$n.sqlite"; rm -f "$empty_db"*
    start_server "$empty_db" "$work/serve-empty-$n.log"
    empty_pid=$srv_pid
    echo "  claims on an empty board:"
    storm "$srv_port"; R[empty_rate,$n]=$storm_rate; R[empty_p99,$n]=$storm_p99
    stop_server "$empty_pid"; rm -f "$empty_db"*
    echo "  claims on the loaded board:"
    snap_before=$(snapshot_builds "$port")
    storm "$port"; R[loaded_rate,$n]=$storm_rate; R[loaded_p99,$n]=$storm_p99
    python3 -c "import sys; (c0, s0), (c1, s1) = [map(float, a.split()) for a in sys.argv[1:3]]; n = c1 - c0; print(f'    snapshot rebuilds during the storm: {n:.0f}, {(s1 - s0) / max(n, 1) * 1e3:.1f} ms each, {(s1 - s0) / $claim_secs * 100:.0f} % of a core')" "$snap_before" "$(snapshot_builds "$port")"
    R[claim_ratio,$n]=$(python3 -c "print(f'{${R[loaded_rate,$n]} / max(${R[empty_rate,$n]}, 1):.2f}')")
    stop_server "$pid"
    [ -n "${KEEP:-}" ] || rm -f "$db" "$db-wal" "$db-shm"
done

# The table (markdown), also kept in bench/out/scale-<date>.md.
cell() {
    local n=$2
    case $1 in
        import) echo "${R[import_s,$n]} s (${R[import_rate,$n]} M rows/s), peak ${R[import_mb,$n]} MB";;
        import-*) local o=${1#import-}; echo "${R[import_${o}_s,$n]} s ($(rate "$n" "${R[import_${o}_s,$n]}") M rows/s), peak ${R[import_${o}_mb,$n]} MB";;
        export) echo "${R[export_s,$n]} s (${R[export_rate,$n]} M rows/s), peak ${R[export_mb,$n]} MB";;
        start) echo "${R[start_s,$n]} s (scores complete ${R[complete,$n]})";;
        restart) echo "${R[restart_s,$n]} s (from ${R[restart_from,$n]}; scores complete ${R[restart_complete,$n]})";;
        rss) echo "${R[rss_mb,$n]} MB (${R[bpa,$n]} B/address; anonymous ${R[anon_mb,$n]} MB)${R[bpp,$n]:+; ${R[bpp,$n]} B a player, $(( ${R[bpp,$n]:-16} - 16 )) beyond its name}";;
        trickle) echo "${R[trickle_cpu,$n]} % of a core; slowest p99 ${R[trickle_p99,$n]}";;
        claims) echo "${R[loaded_rate,$n]} vs ${R[empty_rate,$n]} (${R[claim_ratio,$n]}x), p99 ${R[loaded_p99,$n]} vs ${R[empty_p99,$n]} ms";;
        *) echo "${R[${1}_ms,$n]} (${R[${1}_size,$n]} B)";;
    esac
}
row() { printf '| %s |' "$1"; for n in $sizes; do printf ' %s |' "$(cell "$2" "$n")"; done; echo; }
{
    printf '| claims stored (%s names, %s order) |' "$names" "$order"; for n in $sizes; do printf ' %s |' "$n"; done; echo
    printf '|---|'; for _ in $sizes; do printf -- '---|'; done; echo
    row "claims import" import
    for o in $extra_orders; do [ "$o" = "$order" ] || row "claims import, $o order" "import-$o"; done
    row "claims export" export
    row "serve start to listening" start
    row "serve restart to listening" restart
    row "resident memory loaded" rss
    row "4 claims/s trickle: server CPU; slowest page p99 meanwhile" trickle
    row "fresh-address claims/s, loaded vs empty ($conns clients)" claims
    row "GET /score median / p99 ms" score
    row "GET /api/leaderboard median / p99 ms" leaderboard
    row "GET /players/TOP median / p99 ms" player
    row "GET /blocks/TOP median / p99 ms" block
} | tee "$out/scale-$(date +%Y%m%d-%H%M%S).md"
