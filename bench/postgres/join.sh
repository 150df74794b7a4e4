#!/usr/bin/env bash
# How long a PostgreSQL instance takes to join (issue 24): start to listening with complete
# scores, first without a checkpoint (every row loaded) and then again from its own checkpoint
# plus the rows other instances committed meanwhile. See join.py. Needs gcc, PostgreSQL server
# binaries and psql; starts its own throw-away cluster.
#   [LATER=100000] [IPQUEST_BIN=path] bench/postgres/join.sh [SIZE…]   (default: 1000000 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${IPQUEST_POSTGRES_URL:-}" ]; then exec scripts/with-postgres.sh "$0" "$@"; fi
if [ -z "${IPQUEST_BIN:-}" ]; then
  scripts/build-release.sh ipquest >/dev/null
  export IPQUEST_BIN=.build/release/ipquest
fi
mkdir -p bench/out/postgres
gcc -O2 -o bench/out/postgres/gen_claims bench/scale/gen_claims.c -lm
exec python3 bench/postgres/join.py "$@"
