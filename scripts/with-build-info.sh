#!/usr/bin/env bash
# Runs a build command (`swift build …`) with the git commit baked into the binary:
# writes .build/ipquest-build-info.h for Sources/CIPQuestBuildInfo/BuildInfo.c, runs the
# command, and removes the header afterwards, so that a later plain `swift build` recompiles
# that one file and reports "unknown" rather than a commit it was not built from.
#
#   scripts/with-build-info.sh swift build -c release …
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
case "$commit" in *[!0-9a-zA-Z-]*) commit=unknown ;; esac
header=.build/ipquest-build-info.h
mkdir -p .build
trap 'rm -f "$header"' EXIT
printf '#define IPQUEST_GIT_COMMIT "%s"\n' "$commit" > "$header.tmp"
mv "$header.tmp" "$header"
# The header may be new to the compiler's dependency list (the last build ran without it).
touch Sources/CIPQuestBuildInfo/BuildInfo.c
"$@"
