#!/bin/sh
# Builds the benchmark in release mode and runs it.
# Usage: bench/location/run.sh [DATABASE] [LOOKUPS]   (defaults: Debian's database, 1000000)
# Needs the Debian packages libloc1 (the reference library) and libloc-database.
set -eu
cd "$(dirname "$0")"
swift build -c release --product LocationBench >&2
exec ./.build/release/LocationBench "$@"
