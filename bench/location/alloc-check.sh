#!/bin/sh
# Checks that LocationDB lookups do not allocate: counts heap allocations of a run with 1,000
# and with 1,000,000 lookups (LD_PRELOAD shim malloc_count.c); the two counts must be equal.
# Usage: bench/location/alloc-check.sh [DATABASE]
set -eu
cd "$(dirname "$0")"
db="${1:-/var/lib/location/database.db}"
swift build -c release --product LocationBench >&2
gcc -O2 -shared -fPIC -o .build/malloc_count.so malloc_count.c
small=$(LD_PRELOAD="$PWD/.build/malloc_count.so" ./.build/release/LocationBench lookups-only "$db" 1000 2>&1 >/dev/null | sed -n 's/heap allocations: //p')
large=$(LD_PRELOAD="$PWD/.build/malloc_count.so" ./.build/release/LocationBench lookups-only "$db" 1000000 2>&1 >/dev/null | sed -n 's/heap allocations: //p')
echo "heap allocations: $small with 1,000 lookups, $large with 1,000,000 lookups"
[ "$small" = "$large" ] && echo "OK: lookups do not allocate" || { echo "FAIL: allocations grow with the number of lookups"; exit 1; }
