#!/usr/bin/env bash
# Regenerates scripts/ipquest.symbol-order: the functions of ipquest that run while `serve` starts and
# answers its routes and while `tunnel` (http and tcp) starts and relays, recorded with valgrind's
# callgrind on loopback. The release link (Package.swift) places these functions first and together,
# so the pages a process touches hold code it runs. Without it, each function touched maps the 64 KiB
# around it (the kernel's fault-around) and an idle tunnel had 19 MB of the binary resident.
# Needs valgrind, curl and python3. Takes about a minute after the release build.
#
#   scripts/record-symbol-order.sh          (writes scripts/ipquest.symbol-order; commit it)
#   IPQUEST_BIN=PATH scripts/record-symbol-order.sh   (a binary built by scripts/build-release.sh elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${IPQUEST_BIN:-}
if [ -z "$binary" ]; then scripts/build-release.sh ipquest >/dev/null; binary="$(pwd)/.build/release/ipquest"; fi
binary=$(readlink -f "$binary")
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
# valgrind 3.19 cannot read this toolchain's DWARF; the symbol table is enough.
strip --strip-debug -o "$work/ipquest" "$binary"
cd "$work"
printf 'target_connection:\n  denied_networks: []\n' > tunnel.yaml
python3 -m http.server 18290 --bind 127.0.0.1 >/dev/null 2>&1 &
record() { valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$1" ./ipquest "${@:2}" > "$1.out" 2> "$1.err" & }
wait_for() { for _ in $(seq 120); do grep -q "$2" "$1.out" 2>/dev/null && return 0; sleep 1; done; echo "$1 did not start" >&2; exit 1; }
record http tunnel --config tunnel.yaml --bind 127.0.0.1:18291 http
record tcp tunnel --config tunnel.yaml --bind 127.0.0.1:18292 tcp --destination 127.0.0.1:18290
record serve serve --port 18293 --database "$work/game.sqlite"
wait_for http listening; wait_for tcp listening; wait_for serve listening
for _ in 1 2 3; do
    curl -s -o /dev/null -p -x http://127.0.0.1:18291 http://127.0.0.1:18290/
    curl -s -o /dev/null -x http://127.0.0.1:18291 http://127.0.0.1:18290/   # 405: not CONNECT
    curl -s -o /dev/null http://127.0.0.1:18292/
done
for route in /ip /api/ip /recent /score /score/day "/claim?name=abc" /claim/bob /api/blocks /api/leaderboard \
    /api/players/abc /api/recent /healthz / /players/abc /blocks; do
    curl -s -o /dev/null "http://127.0.0.1:18293$route"
    curl -s -o /dev/null -H 'Accept: application/json' "http://127.0.0.1:18293$route"
done
sleep 1
# The tunnel runs until killed: ask callgrind for its counts first. serve stops on SIGINT.
for name in http tcp; do
    pid=$(pgrep -f "callgrind-out-file=$work/cg.$name ") && callgrind_control -d "$pid" >/dev/null
done
pkill -INT -f "callgrind-out-file=$work/cg.serve " || true
for _ in $(seq 60); do [ -s "$work/cg.http.1" ] && [ -s "$work/cg.tcp.1" ] && ! pgrep -f "cg.serve " >/dev/null && break; sleep 1; done
python3 - "$binary" "$work"/cg.http.1 "$work"/cg.tcp.1 "$work"/cg.serve > "$OLDPWD/scripts/ipquest.symbol-order" <<'PY'
import re, subprocess, sys
defined = set()
for line in subprocess.run(["nm", "--defined-only", sys.argv[1]], capture_output=True, text=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW":
        defined.add(parts[2])
order, seen = [], set()
for path in sys.argv[2:]:
    names = {}
    for line in open(path, errors="replace"):
        match = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not match:
            continue
        if match.group(2):
            names[match.group(1)] = match.group(2)
        name = names.get(match.group(1))
        if name in defined and name not in seen:
            seen.add(name)
            order.append(name)
print("\n".join(order))
print(f"{len(order)} functions of {len(defined)}", file=sys.stderr)
PY
echo "relink to apply it: rm -f .build/release/ipquest && scripts/build-release.sh ipquest" >&2
