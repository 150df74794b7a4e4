#!/usr/bin/env bash
# Runs a command next to a throw-away PostgreSQL cluster: initdb into a temp dir, pg_ctl start on a
# free loopback port, export IPQUEST_POSTGRES_URL (and IPQUEST_PG_BIN for tests that start their
# own clusters), run the command, stop the cluster and delete it. Exit status is the command's.
#   scripts/with-postgres.sh swift test --skip-build
set -euo pipefail
bindir=${IPQUEST_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "with-postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ipquest-pg.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses to run as root: the cluster belongs to the postgres system user.
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=1100" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
export IPQUEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
export IPQUEST_PG_BIN="$bindir"
echo "with-postgres: cluster on 127.0.0.1:$port ($dir)" >&2
status=0
"$@" || status=$?
exit $status
