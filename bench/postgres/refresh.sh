#!/usr/bin/env bash
# Score refresh time at 1 M and 10 M stored claims (see refresh.py). Needs PostgreSQL server
# binaries and psql; starts its own throw-away cluster.
#   bench/postgres/refresh.sh [SIZE…]     (default: 1000000 10000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${IPQUEST_POSTGRES_URL:-}" ]; then exec scripts/with-postgres.sh "$0" "$@"; fi
if [ -z "${IPQUEST_BIN:-}" ]; then
  swift build -c release --scratch-path .build-pg --product ipquest >/dev/null
  export IPQUEST_BIN=.build-pg/release/ipquest
fi
exec python3 bench/postgres/refresh.py "$@"
